//! Values that cross the API: [`Val`], [`Ref`], [`V128`]. Their
//! conversions to and from the raw slots generated code uses are part of
//! the host-call ABI, in `crate::func::raw`.

use crate::store::StoreOpaque;
use crate::{ExnRef, ExternRef, Func, HeapType, RefType, ValType};

/// A 128-bit SIMD value.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct V128(u128);

impl V128 {
    /// The value as an integer (lane 0 in the low bits).
    pub fn as_u128(&self) -> u128 {
        self.0
    }
}

impl From<u128> for V128 {
    fn from(v: u128) -> V128 {
        V128(v)
    }
}

impl From<V128> for u128 {
    fn from(v: V128) -> u128 {
        v.0
    }
}

/// A reference value.
#[derive(Clone, Debug)]
pub enum Ref {
    /// A function reference, or null.
    Func(Option<Func>),
    /// A host reference, or null.
    Extern(Option<ExternRef>),
    /// A caught exception, or null.
    Exn(Option<ExnRef>),
}

impl Ref {
    /// Whether it is null.
    pub fn is_null(&self) -> bool {
        match self {
            Ref::Func(f) => f.is_none(),
            Ref::Extern(e) => e.is_none(),
            Ref::Exn(e) => e.is_none(),
        }
    }

    /// The function, if this is a function reference.
    pub fn as_func(&self) -> Option<Option<&Func>> {
        match self {
            Ref::Func(f) => Some(f.as_ref()),
            _ => None,
        }
    }

    /// The host reference, if this is an `externref`.
    pub fn as_extern(&self) -> Option<Option<&ExternRef>> {
        match self {
            Ref::Extern(e) => Some(e.as_ref()),
            _ => None,
        }
    }

    /// The exception, if this is an `exnref`.
    pub fn as_exn(&self) -> Option<Option<&ExnRef>> {
        match self {
            Ref::Exn(e) => Some(e.as_ref()),
            _ => None,
        }
    }

    /// Whether the reference is a value of type `ty` in `store`: null
    /// only of a nullable type, a function of a concrete type only if its
    /// signature is that type (a function of another store never is).
    pub(crate) fn matches(&self, store: &StoreOpaque, ty: &RefType) -> bool {
        match self {
            Ref::Func(f) => func_matches(store, f.as_ref(), ty),
            Ref::Extern(e) => nullable_matches(e.is_none(), HeapType::Extern, ty),
            Ref::Exn(e) => exn_matches(store, e.as_ref(), ty),
        }
    }
}

/// Whether a reference of abstract type `heap` (null or not) is of type
/// `ty`.
fn nullable_matches(is_null: bool, heap: HeapType, ty: &RefType) -> bool {
    *ty.heap_type() == heap && (!is_null || ty.is_nullable())
}

/// [`Ref::matches`] for a function reference.
fn func_matches(store: &StoreOpaque, f: Option<&Func>, ty: &RefType) -> bool {
    match (f, ty.heap_type()) {
        (None, heap) => ty.is_nullable() && heap.is_func(),
        (Some(_), HeapType::Func) => true,
        (Some(f), HeapType::ConcreteFunc(id)) => {
            f.0.store == store.id() && f.type_index(store) == id.0
        }
        _ => false,
    }
}

/// [`Ref::matches`] for an exception: one of `store`'s, or null.
fn exn_matches(store: &StoreOpaque, e: Option<&ExnRef>, ty: &RefType) -> bool {
    nullable_matches(e.is_none(), HeapType::Exn, ty) && e.is_none_or(|e| e.comes_from(store))
}

impl From<ExternRef> for Ref {
    fn from(e: ExternRef) -> Ref {
        Ref::Extern(Some(e))
    }
}

impl From<Func> for Ref {
    fn from(f: Func) -> Ref {
        Ref::Func(Some(f))
    }
}

impl From<Option<Func>> for Ref {
    fn from(f: Option<Func>) -> Ref {
        Ref::Func(f)
    }
}

/// A WebAssembly value.
#[derive(Clone, Debug)]
pub enum Val {
    /// An `i32`.
    I32(i32),
    /// An `i64`.
    I64(i64),
    /// An `f32`, as its bits (so NaN payloads survive).
    F32(u32),
    /// An `f64`, as its bits.
    F64(u64),
    /// A `v128`.
    V128(V128),
    /// A `funcref`.
    FuncRef(Option<Func>),
    /// An `externref`.
    ExternRef(Option<ExternRef>),
    /// An `exnref`.
    ExnRef(Option<ExnRef>),
}

macro_rules! accessors {
    ($($get:ident $unwrap:ident $variant:ident $ty:ty;)*) => {$(
        /// The value, if it is of this type.
        pub fn $get(&self) -> Option<$ty> {
            match self {
                Val::$variant(v) => Some(*v),
                _ => None,
            }
        }
        /// The value; panics if it is of another type.
        pub fn $unwrap(&self) -> $ty {
            self.$get().expect(concat!("expected ", stringify!($variant)))
        }
    )*};
}

impl Val {
    accessors! {
        i32 unwrap_i32 I32 i32;
        i64 unwrap_i64 I64 i64;
        v128 unwrap_v128 V128 V128;
    }

    /// The value as an `f32`.
    pub fn f32(&self) -> Option<f32> {
        match self {
            Val::F32(b) => Some(f32::from_bits(*b)),
            _ => None,
        }
    }

    /// The value as an `f32`; panics if it is of another type.
    pub fn unwrap_f32(&self) -> f32 {
        self.f32().expect("expected F32")
    }

    /// The value as an `f64`.
    pub fn f64(&self) -> Option<f64> {
        match self {
            Val::F64(b) => Some(f64::from_bits(*b)),
            _ => None,
        }
    }

    /// The value as an `f64`; panics if it is of another type.
    pub fn unwrap_f64(&self) -> f64 {
        self.f64().expect("expected F64")
    }

    /// The function reference, if this is a `funcref`.
    pub fn funcref(&self) -> Option<Option<&Func>> {
        match self {
            Val::FuncRef(f) => Some(f.as_ref()),
            _ => None,
        }
    }

    /// The host reference, if this is an `externref`.
    pub fn externref(&self) -> Option<Option<&ExternRef>> {
        match self {
            Val::ExternRef(e) => Some(e.as_ref()),
            _ => None,
        }
    }

    /// The exception, if this is an `exnref`.
    pub fn exnref(&self) -> Option<Option<&ExnRef>> {
        match self {
            Val::ExnRef(e) => Some(e.as_ref()),
            _ => None,
        }
    }

    /// A null reference of type `ty`'s heap type, or zero of a number type.
    pub fn default_for_ty(ty: &ValType) -> Option<Val> {
        Some(match ty {
            ValType::I32 => Val::I32(0),
            ValType::I64 => Val::I64(0),
            ValType::F32 => Val::F32(0),
            ValType::F64 => Val::F64(0),
            ValType::V128 => Val::V128(V128(0)),
            ValType::Ref(r) if r.is_nullable() => match r.heap_type() {
                crate::HeapType::Func | crate::HeapType::ConcreteFunc(_) => Val::FuncRef(None),
                crate::HeapType::Extern => Val::ExternRef(None),
                crate::HeapType::Exn => Val::ExnRef(None),
            },
            ValType::Ref(_) => return None,
        })
    }

    /// The value's type.
    pub fn ty(&self) -> ValType {
        match self {
            Val::I32(_) => ValType::I32,
            Val::I64(_) => ValType::I64,
            Val::F32(_) => ValType::F32,
            Val::F64(_) => ValType::F64,
            Val::V128(_) => ValType::V128,
            Val::FuncRef(_) => ValType::FUNCREF,
            Val::ExternRef(_) => ValType::EXTERNREF,
            Val::ExnRef(_) => ValType::EXNREF,
        }
    }

    /// Whether the value is of type `ty` in `store` (see
    /// [`Ref::matches`]).
    pub(crate) fn matches(&self, store: &StoreOpaque, ty: &ValType) -> bool {
        match (self, ty) {
            (Val::FuncRef(f), ValType::Ref(r)) => func_matches(store, f.as_ref(), r),
            (Val::ExternRef(e), ValType::Ref(r)) => {
                nullable_matches(e.is_none(), HeapType::Extern, r)
            }
            (Val::ExnRef(e), ValType::Ref(r)) => exn_matches(store, e.as_ref(), r),
            (v, t) => v.ty() == *t,
        }
    }
}

macro_rules! from_impls {
    ($($ty:ty => $variant:ident $(via $conv:ident)?;)*) => {$(
        impl From<$ty> for Val {
            fn from(v: $ty) -> Val {
                Val::$variant(v $(.$conv())?)
            }
        }
    )*};
}

from_impls! {
    i32 => I32;
    i64 => I64;
    f32 => F32 via to_bits;
    f64 => F64 via to_bits;
    V128 => V128;
}

impl From<Func> for Val {
    fn from(f: Func) -> Val {
        Val::FuncRef(Some(f))
    }
}

impl From<Option<Func>> for Val {
    fn from(f: Option<Func>) -> Val {
        Val::FuncRef(f)
    }
}

impl From<ExternRef> for Val {
    fn from(e: ExternRef) -> Val {
        Val::ExternRef(Some(e))
    }
}

impl From<Option<ExternRef>> for Val {
    fn from(e: Option<ExternRef>) -> Val {
        Val::ExternRef(e)
    }
}

impl From<Ref> for Val {
    fn from(r: Ref) -> Val {
        match r {
            Ref::Func(f) => Val::FuncRef(f),
            Ref::Extern(e) => Val::ExternRef(e),
            Ref::Exn(e) => Val::ExnRef(e),
        }
    }
}

impl From<ExnRef> for Val {
    fn from(e: ExnRef) -> Val {
        Val::ExnRef(Some(e))
    }
}

impl From<ExnRef> for Ref {
    fn from(e: ExnRef) -> Ref {
        Ref::Exn(Some(e))
    }
}
