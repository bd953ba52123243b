//! Conversions between API values ([`Val`], [`Ref`]) and the raw slots and
//! words of the ABI that generated code reads and writes.
//!
//! Going to raw is safe: it hands the store's references to wasm (keeping
//! externrefs alive in the store's set). Coming back from raw is `unsafe`:
//! a raw word is only a reference if the caller knows where it came from.

use crate::store::StoreOpaque;
use crate::vm::ValRaw;
use crate::{ExnRef, ExternRef, HeapType, Ref, V128, Val, ValType};
use std::ptr::NonNull;

impl Ref {
    /// The word wasm sees for this reference (null for null).
    pub(crate) fn to_raw(&self, store: &StoreOpaque) -> *mut u8 {
        match self {
            Ref::Func(None) | Ref::Extern(None) | Ref::Exn(None) => std::ptr::null_mut(),
            Ref::Func(Some(f)) => f.func_ref(store).as_ptr().cast(),
            Ref::Extern(Some(e)) => e.to_raw(store),
            Ref::Exn(Some(e)) => e.to_raw(store),
        }
    }

    /// The reference behind a word of heap type `heap` that wasm of
    /// `store` handed back.
    ///
    /// # Safety
    ///
    /// `raw` must be null or a reference of heap type `heap` that `store`
    /// keeps alive: a funcref of one of its instances or host functions,
    /// or an externref as [`ExternRef::from_raw`] requires.
    pub(crate) unsafe fn from_raw(store: &mut StoreOpaque, raw: *mut u8, heap: HeapType) -> Ref {
        match heap {
            HeapType::Func | HeapType::ConcreteFunc(_) => {
                Ref::Func(NonNull::new(raw.cast()).map(|r| {
                    // SAFETY: per the contract, a funcref the store keeps alive.
                    unsafe { store.func_from_ref(r) }
                }))
            }
            // SAFETY: per the contract.
            HeapType::Extern => Ref::Extern(unsafe { ExternRef::from_raw(raw) }),
            HeapType::Exn => Ref::Exn(ExnRef::from_raw(store, raw)),
        }
    }
}

impl Val {
    /// The slot wasm sees for this value.
    pub(crate) fn to_raw(&self, store: &StoreOpaque) -> ValRaw {
        match self {
            Val::I32(v) => ValRaw::i32(*v),
            Val::I64(v) => ValRaw::i64(*v),
            Val::F32(v) => ValRaw::f32(*v),
            Val::F64(v) => ValRaw::f64(*v),
            Val::V128(v) => ValRaw::v128(v.as_u128()),
            Val::FuncRef(f) => ValRaw::ptr(Ref::Func(*f).to_raw(store)),
            Val::ExternRef(e) => {
                ValRaw::ptr(e.as_ref().map_or(std::ptr::null_mut(), |e| e.to_raw(store)))
            }
            Val::ExnRef(e) => {
                ValRaw::ptr(e.as_ref().map_or(std::ptr::null_mut(), |e| e.to_raw(store)))
            }
        }
    }

    /// The value of type `ty` in a slot that wasm of `store` (or the host,
    /// through [`Val::to_raw`]) wrote.
    ///
    /// # Safety
    ///
    /// `raw` must hold a value of type `ty`; if `ty` is a reference type,
    /// as [`Ref::from_raw`] requires.
    pub(crate) unsafe fn from_raw(store: &mut StoreOpaque, raw: ValRaw, ty: &ValType) -> Val {
        match ty {
            ValType::I32 => Val::I32(raw.get_i32()),
            ValType::I64 => Val::I64(raw.get_i64()),
            ValType::F32 => Val::F32(raw.get_f32()),
            ValType::F64 => Val::F64(raw.get_f64()),
            ValType::V128 => Val::V128(V128::from(raw.get_v128())),
            ValType::Ref(r) => {
                // SAFETY: per the contract, a reference of this heap type
                // that the store keeps alive.
                Val::from(unsafe { Ref::from_raw(store, raw.get_ptr(), *r.heap_type()) })
            }
        }
    }
}

/// The fields of an exception of a tag of type `ty`, as values.
pub(crate) fn exception_fields(
    store: &mut StoreOpaque,
    object: &crate::vm::exception::ExnObject,
    ty: &crate::FuncType,
) -> Vec<Val> {
    object
        .fields()
        .iter()
        .zip(ty.params())
        .map(|(raw, t)| {
            // SAFETY: the fields hold values of the tag's types, written by
            // wasm of this store or by `ExnRef::new`; the references among
            // them are kept alive by the object (`exnref.rs`, `externref.rs`).
            unsafe { Val::from_raw(store, *raw, &t) }
        })
        .collect()
}
