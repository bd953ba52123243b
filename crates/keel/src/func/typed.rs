//! Statically typed calls: [`TypedFunc`] and the traits that map Rust
//! types to wasm types.
//!
//! On x86-64 Unix, a call whose parameters and results are all scalars,
//! with at most four parameters and one result, jumps straight into the
//! function's wasm entry through an `extern "C"` pointer: no argument
//! array, no allocation, no lock. That is where Cranelift's `tail`
//! convention, which wasm functions use, and the C one agree (see
//! `keel_cranelift::signatures`); elsewhere (aarch64's `tail` convention
//! keeps `x0` and `x1` back) and for other shapes the call goes through the
//! array entry.

use super::Func;
use crate::store::{AsContextMut, StoreOpaque};
use crate::vm::ValRaw;
use crate::vm::traphandlers::catch_traps;
use crate::vm::vmcontext::VMOpaqueContext;
use crate::{V128, ValType};
use keel_environ::WasmValType;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ptr::NonNull;

/// A Rust type that is a wasm value type.
///
/// # Safety
///
/// Implemented inside Keel only: `Abi` must be the exact native
/// representation Cranelift uses for `valtype()` when `NATIVE` is true.
pub unsafe trait WasmTy: Send + 'static {
    #[doc(hidden)]
    type Abi: Copy;
    #[doc(hidden)]
    const NATIVE: bool = true;
    #[doc(hidden)]
    fn valtype() -> ValType;
    #[doc(hidden)]
    #[inline]
    fn check_store(&self, _store: &StoreOpaque) -> crate::Result<()> {
        Ok(())
    }
    #[doc(hidden)]
    fn into_abi(self, store: &StoreOpaque) -> Self::Abi;
    /// The value in its native form.
    ///
    /// # Safety
    ///
    /// `abi` must be a value of `valtype()` that wasm of `store` produced
    /// (or [`WasmTy::into_abi`] did); a reference must be one the store
    /// keeps alive, as `Ref::from_raw` requires.
    #[doc(hidden)]
    unsafe fn from_abi(abi: Self::Abi, store: &mut StoreOpaque) -> Self;
    #[doc(hidden)]
    fn into_raw(self, store: &StoreOpaque) -> ValRaw;
    /// The value in a raw slot.
    ///
    /// # Safety
    ///
    /// As for [`WasmTy::from_abi`], for the slot's contents.
    #[doc(hidden)]
    unsafe fn from_raw(raw: ValRaw, store: &mut StoreOpaque) -> Self;
}

macro_rules! scalar {
    ($($ty:ty, $abi:ty, $vt:ident, $to:expr, $from:expr, $raw:ident, $get:ident;)*) => {$(
        // SAFETY: the ABI type is how Cranelift passes this value type.
        unsafe impl WasmTy for $ty {
            type Abi = $abi;
            fn valtype() -> ValType {
                ValType::$vt
            }
            #[inline]
            fn into_abi(self, _: &StoreOpaque) -> $abi {
                #[allow(clippy::redundant_closure_call, reason = "macro-supplied conversion")]
                ($to)(self)
            }
            #[inline]
            unsafe fn from_abi(abi: $abi, _: &mut StoreOpaque) -> Self {
                #[allow(clippy::redundant_closure_call, reason = "macro-supplied conversion")]
                ($from)(abi)
            }
            #[inline]
            fn into_raw(self, s: &StoreOpaque) -> ValRaw {
                ValRaw::$raw(WasmTy::into_abi(self, s) as _)
            }
            #[inline]
            unsafe fn from_raw(raw: ValRaw, s: &mut StoreOpaque) -> Self {
                // SAFETY: a number: any bits are a value.
                unsafe { <Self as WasmTy>::from_abi(raw.$get() as _, s) }
            }
        }
    )*};
}

scalar! {
    i32, i32, I32, |v| v, |v| v, i32, get_i32;
    u32, i32, I32, |v: u32| v as i32, |v: i32| v as u32, i32, get_i32;
    i64, i64, I64, |v| v, |v| v, i64, get_i64;
    u64, i64, I64, |v: u64| v as i64, |v: i64| v as u64, i64, get_i64;
}

// SAFETY: floats travel in float registers, as `f32` in Rust.
unsafe impl WasmTy for f32 {
    type Abi = f32;
    fn valtype() -> ValType {
        ValType::F32
    }
    #[inline]
    fn into_abi(self, _: &StoreOpaque) -> f32 {
        self
    }
    #[inline]
    unsafe fn from_abi(abi: f32, _: &mut StoreOpaque) -> f32 {
        abi
    }
    #[inline]
    fn into_raw(self, _: &StoreOpaque) -> ValRaw {
        ValRaw::f32(self.to_bits())
    }
    #[inline]
    unsafe fn from_raw(raw: ValRaw, _: &mut StoreOpaque) -> f32 {
        f32::from_bits(raw.get_f32())
    }
}

// SAFETY: as for `f32`.
unsafe impl WasmTy for f64 {
    type Abi = f64;
    fn valtype() -> ValType {
        ValType::F64
    }
    #[inline]
    fn into_abi(self, _: &StoreOpaque) -> f64 {
        self
    }
    #[inline]
    unsafe fn from_abi(abi: f64, _: &mut StoreOpaque) -> f64 {
        abi
    }
    #[inline]
    fn into_raw(self, _: &StoreOpaque) -> ValRaw {
        ValRaw::f64(self.to_bits())
    }
    #[inline]
    unsafe fn from_raw(raw: ValRaw, _: &mut StoreOpaque) -> f64 {
        f64::from_bits(raw.get_f64())
    }
}

// SAFETY: `NATIVE` is false: vectors only travel through arrays.
unsafe impl WasmTy for V128 {
    type Abi = u128;
    const NATIVE: bool = false;
    fn valtype() -> ValType {
        ValType::V128
    }
    #[inline]
    fn into_abi(self, _: &StoreOpaque) -> u128 {
        self.as_u128()
    }
    #[inline]
    unsafe fn from_abi(abi: u128, _: &mut StoreOpaque) -> V128 {
        V128::from(abi)
    }
    #[inline]
    fn into_raw(self, _: &StoreOpaque) -> ValRaw {
        ValRaw::v128(self.as_u128())
    }
    #[inline]
    unsafe fn from_raw(raw: ValRaw, _: &mut StoreOpaque) -> V128 {
        V128::from(raw.get_v128())
    }
}

// SAFETY: a funcref is a pointer-sized integer in generated code.
unsafe impl WasmTy for Option<Func> {
    type Abi = *mut u8;
    fn valtype() -> ValType {
        ValType::FUNCREF
    }
    #[inline]
    fn check_store(&self, store: &StoreOpaque) -> crate::Result<()> {
        match self {
            Some(f) if f.0.store != store.id() => {
                Err(anyhow::anyhow!("function used with the wrong store"))
            }
            _ => Ok(()),
        }
    }
    #[inline]
    fn into_abi(self, store: &StoreOpaque) -> *mut u8 {
        self.map_or(std::ptr::null_mut(), |f| f.func_ref(store).as_ptr().cast())
    }
    #[inline]
    unsafe fn from_abi(abi: *mut u8, store: &mut StoreOpaque) -> Option<Func> {
        NonNull::new(abi.cast()).map(|r| {
            // SAFETY: per the contract, a funcref the store keeps alive.
            unsafe { store.func_from_ref(r) }
        })
    }
    #[inline]
    fn into_raw(self, s: &StoreOpaque) -> ValRaw {
        ValRaw::ptr(WasmTy::into_abi(self, s))
    }
    #[inline]
    unsafe fn from_raw(raw: ValRaw, s: &mut StoreOpaque) -> Self {
        // SAFETY: per the contract, for the slot's word.
        unsafe { <Self as WasmTy>::from_abi(raw.get_ptr(), s) }
    }
}

// SAFETY: an externref is a pointer-sized integer in generated code.
unsafe impl WasmTy for Option<crate::ExternRef> {
    type Abi = *mut u8;
    fn valtype() -> ValType {
        ValType::EXTERNREF
    }
    #[inline]
    fn into_abi(self, store: &StoreOpaque) -> *mut u8 {
        self.map_or(std::ptr::null_mut(), |e| e.to_raw(store))
    }
    #[inline]
    unsafe fn from_abi(abi: *mut u8, _: &mut StoreOpaque) -> Self {
        // SAFETY: per the contract, an externref the store's set holds.
        unsafe { crate::ExternRef::from_raw(abi) }
    }
    #[inline]
    fn into_raw(self, s: &StoreOpaque) -> ValRaw {
        ValRaw::ptr(WasmTy::into_abi(self, s))
    }
    #[inline]
    unsafe fn from_raw(raw: ValRaw, s: &mut StoreOpaque) -> Self {
        // SAFETY: per the contract, for the slot's word.
        unsafe { <Self as WasmTy>::from_abi(raw.get_ptr(), s) }
    }
}

/// Whether wasm functions can be called through `extern "C"` pointers at
/// all: where the `tail` convention passes register arguments and returns
/// one result as the C convention does.
const DIRECT_CALLS: bool = cfg!(all(target_arch = "x86_64", not(windows)));

fn check_types(expected: &[ValType], actual: &[WasmValType]) -> Result<(), String> {
    if expected.len() != actual.len() {
        return Err(format!(
            "expected {} values, found {}",
            expected.len(),
            actual.len()
        ));
    }
    for (i, (e, a)) in expected.iter().zip(actual).enumerate() {
        let a = ValType::from_wasm(*a);
        if a != *e {
            return Err(format!("value {i}: expected {e}, found {a}"));
        }
    }
    Ok(())
}

/// Parameters of a typed call: `()`, a [`WasmTy`], or a tuple of them.
///
/// # Safety
///
/// Implemented inside Keel only; `invoke` must call with the ABI that
/// Cranelift uses for the signature `typecheck` accepted.
pub unsafe trait WasmParams: Send {
    #[doc(hidden)]
    type Abi: Copy;
    #[doc(hidden)]
    const NATIVE: bool;
    #[doc(hidden)]
    fn valtypes() -> Vec<ValType>;
    #[doc(hidden)]
    fn typecheck(params: &[WasmValType]) -> Result<(), String> {
        check_types(&Self::valtypes(), params)
    }
    #[doc(hidden)]
    fn into_abi(self, store: &StoreOpaque) -> crate::Result<Self::Abi>;
    #[doc(hidden)]
    fn store_raw(self, store: &StoreOpaque, values: &mut [ValRaw]) -> crate::Result<()>;
    #[doc(hidden)]
    unsafe fn invoke<R: Copy>(
        code: *const u8,
        callee: *mut VMOpaqueContext,
        caller: *mut VMOpaqueContext,
        abi: Self::Abi,
    ) -> R;
}

/// Results of a typed call: `()`, a [`WasmTy`], or a tuple of them.
///
/// # Safety
///
/// Implemented inside Keel only: `Abi` must be how Cranelift returns the
/// results when `NATIVE` is true.
pub unsafe trait WasmResults: Sized + Send {
    #[doc(hidden)]
    type Abi: Copy;
    #[doc(hidden)]
    const NATIVE: bool;
    #[doc(hidden)]
    fn valtypes() -> Vec<ValType>;
    #[doc(hidden)]
    fn typecheck(results: &[WasmValType]) -> Result<(), String> {
        check_types(&Self::valtypes(), results)
    }
    /// The results a native call returned.
    ///
    /// # Safety
    ///
    /// `abi` must be what a function of this result type, run by wasm of
    /// `store`, returned (see [`WasmTy::from_abi`]).
    #[doc(hidden)]
    unsafe fn from_abi(abi: Self::Abi, store: &mut StoreOpaque) -> Self;
    /// The results an array call left in its slots.
    ///
    /// # Safety
    ///
    /// The first slots of `values` must hold results of this type (see
    /// [`WasmTy::from_raw`]).
    #[doc(hidden)]
    unsafe fn load_raw(store: &mut StoreOpaque, values: &[ValRaw]) -> Self;
    #[doc(hidden)]
    fn store_raw(self, store: &StoreOpaque, values: &mut [ValRaw]) -> crate::Result<()>;
}

/// What a host function may return: results, or `Result` of results.
pub trait WasmRet {
    #[doc(hidden)]
    type Ok: WasmResults;
    #[doc(hidden)]
    fn into_result(self) -> crate::Result<Self::Ok>;
}

impl<R: WasmResults> WasmRet for R {
    type Ok = R;
    #[inline]
    fn into_result(self) -> crate::Result<R> {
        Ok(self)
    }
}

impl<R: WasmResults> WasmRet for crate::Result<R> {
    type Ok = R;
    #[inline]
    fn into_result(self) -> crate::Result<R> {
        self
    }
}

// SAFETY: one value is passed and returned natively when its type is.
unsafe impl<T: WasmTy> WasmParams for T {
    type Abi = T::Abi;
    const NATIVE: bool = T::NATIVE;
    fn valtypes() -> Vec<ValType> {
        vec![T::valtype()]
    }
    #[inline]
    fn into_abi(self, store: &StoreOpaque) -> crate::Result<T::Abi> {
        self.check_store(store)?;
        Ok(WasmTy::into_abi(self, store))
    }
    #[inline]
    fn store_raw(self, store: &StoreOpaque, values: &mut [ValRaw]) -> crate::Result<()> {
        self.check_store(store)?;
        values[0] = self.into_raw(store);
        Ok(())
    }
    #[inline]
    unsafe fn invoke<R: Copy>(
        code: *const u8,
        callee: *mut VMOpaqueContext,
        caller: *mut VMOpaqueContext,
        a: T::Abi,
    ) -> R {
        // SAFETY: the caller checked the signature is `(T) -> R`.
        unsafe {
            let f: unsafe extern "C" fn(*mut VMOpaqueContext, *mut VMOpaqueContext, T::Abi) -> R =
                std::mem::transmute(code);
            f(callee, caller, a)
        }
    }
}

// SAFETY: one result comes back natively when its type is.
unsafe impl<T: WasmTy> WasmResults for T {
    type Abi = T::Abi;
    const NATIVE: bool = T::NATIVE;
    fn valtypes() -> Vec<ValType> {
        vec![T::valtype()]
    }
    #[inline]
    unsafe fn from_abi(abi: T::Abi, store: &mut StoreOpaque) -> T {
        // SAFETY: per the contract.
        unsafe { T::from_abi(abi, store) }
    }
    #[inline]
    unsafe fn load_raw(store: &mut StoreOpaque, values: &[ValRaw]) -> T {
        // SAFETY: per the contract.
        unsafe { T::from_raw(values[0], store) }
    }
    #[inline]
    fn store_raw(self, store: &StoreOpaque, values: &mut [ValRaw]) -> crate::Result<()> {
        self.check_store(store)?;
        values[0] = self.into_raw(store);
        Ok(())
    }
}

macro_rules! tuple_impls {
    ($( ($($t:ident $i:tt),*); )*) => {$(
        // SAFETY: every element is passed as its own native argument, and
        // natively only while all of them travel in registers, where the
        // `tail` convention of wasm functions and the C one agree (with the
        // two contexts, at most four parameters take the six integer
        // registers; see `keel_cranelift::signatures`).
        unsafe impl<$($t: WasmTy),*> WasmParams for ($($t,)*) {
            type Abi = ($($t::Abi,)*);
            const NATIVE: bool = true $(&& $t::NATIVE)* && (0 $(+ tuple_impls!(@one $t))*) <= 4;
            fn valtypes() -> Vec<ValType> {
                vec![$($t::valtype()),*]
            }
            #[allow(unused_variables, reason = "empty tuple")]
            #[inline]
            fn into_abi(self, store: &StoreOpaque) -> crate::Result<Self::Abi> {
                $(self.$i.check_store(store)?;)*
                Ok(($(WasmTy::into_abi(self.$i, store),)*))
            }
            #[allow(unused_variables, reason = "empty tuple")]
            #[inline]
            fn store_raw(self, store: &StoreOpaque, values: &mut [ValRaw]) -> crate::Result<()> {
                $(
                    self.$i.check_store(store)?;
                    values[$i] = self.$i.into_raw(store);
                )*
                Ok(())
            }
            #[allow(unused_variables, non_snake_case, reason = "empty tuple")]
            #[inline]
            unsafe fn invoke<R: Copy>(code: *const u8, callee: *mut VMOpaqueContext, caller: *mut VMOpaqueContext, abi: Self::Abi) -> R {
                // SAFETY: the caller checked the signature matches.
                unsafe {
                    let f: unsafe extern "C" fn(*mut VMOpaqueContext, *mut VMOpaqueContext, $($t::Abi),*) -> R =
                        std::mem::transmute(code);
                    f(callee, caller, $(abi.$i),*)
                }
            }
        }

        // SAFETY: only `()` and 1-tuples are native; others use arrays.
        unsafe impl<$($t: WasmTy),*> WasmResults for ($($t,)*) {
            type Abi = tuple_impls!(@abi $($t)*);
            const NATIVE: bool = tuple_impls!(@native $($t)*);
            fn valtypes() -> Vec<ValType> {
                vec![$($t::valtype()),*]
            }
            #[allow(unused_variables, reason = "empty tuple")]
            #[inline]
            unsafe fn from_abi(abi: Self::Abi, store: &mut StoreOpaque) -> Self {
                tuple_impls!(@from_abi abi store $($t)*)
            }
            #[allow(unused_variables, clippy::unused_unit, reason = "empty tuple")]
            #[inline]
            unsafe fn load_raw(store: &mut StoreOpaque, values: &[ValRaw]) -> Self {
                // SAFETY: per the contract, slot `i` holds element `i`.
                ($(unsafe { $t::from_raw(values[$i], store) },)*)
            }
            #[allow(unused_variables, reason = "empty tuple")]
            #[inline]
            fn store_raw(self, store: &StoreOpaque, values: &mut [ValRaw]) -> crate::Result<()> {
                $(
                    self.$i.check_store(store)?;
                    values[$i] = self.$i.into_raw(store);
                )*
                Ok(())
            }
        }
    )*};
    (@one $t:ident) => { 1 };
    (@abi) => { () };
    (@abi $a:ident) => { $a::Abi };
    (@abi $($t:ident)*) => { () };
    (@native) => { true };
    (@native $a:ident) => { $a::NATIVE };
    (@native $($t:ident)*) => { false };
    (@from_abi $abi:ident $store:ident) => { () };
    (@from_abi $abi:ident $store:ident $a:ident) => {
        // SAFETY: per the contract of `WasmResults::from_abi`.
        (unsafe { $a::from_abi($abi, $store) },)
    };
    (@from_abi $abi:ident $store:ident $($t:ident)*) => { unreachable!("multi-value results use arrays") };
}

tuple_impls! {
    ();
    (A0 0);
    (A0 0, A1 1);
    (A0 0, A1 1, A2 2);
    (A0 0, A1 1, A2 2, A3 3);
    (A0 0, A1 1, A2 2, A3 3, A4 4);
    (A0 0, A1 1, A2 2, A3 3, A4 4, A5 5);
    (A0 0, A1 1, A2 2, A3 3, A4 4, A5 5, A6 6);
    (A0 0, A1 1, A2 2, A3 3, A4 4, A5 5, A6 6, A7 7);
    (A0 0, A1 1, A2 2, A3 3, A4 4, A5 5, A6 6, A7 7, A8 8);
    (A0 0, A1 1, A2 2, A3 3, A4 4, A5 5, A6 6, A7 7, A8 8, A9 9);
    (A0 0, A1 1, A2 2, A3 3, A4 4, A5 5, A6 6, A7 7, A8 8, A9 9, A10 10);
    (A0 0, A1 1, A2 2, A3 3, A4 4, A5 5, A6 6, A7 7, A8 8, A9 9, A10 10, A11 11);
}

/// A function with a signature known at compile time.
pub struct TypedFunc<Params, Results> {
    func: Func,
    _marker: PhantomData<fn(Params) -> Results>,
}

impl<P, R> Clone for TypedFunc<P, R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<P, R> Copy for TypedFunc<P, R> {}

impl<Params: WasmParams, Results: WasmResults> TypedFunc<Params, Results> {
    /// Wraps `func` without checking its type.
    ///
    /// # Safety
    ///
    /// `func`'s signature must be `Params -> Results`.
    pub unsafe fn new_unchecked(func: Func) -> Self {
        TypedFunc {
            func,
            _marker: PhantomData,
        }
    }

    /// The untyped function.
    pub fn func(&self) -> &Func {
        &self.func
    }

    /// Calls the function.
    pub fn call(&self, mut store: impl AsContextMut, params: Params) -> crate::Result<Results> {
        let store = &mut store.as_context_mut().0.opaque;
        // With fuel in a register, wasm expects the count there, which only
        // the array trampoline sets up.
        if DIRECT_CALLS && Params::NATIVE && Results::NATIVE && !store.fuel_in_register() {
            self.call_native(store, params)
        } else {
            self.call_array(store, params)
        }
    }

    fn call_native(&self, store: &mut StoreOpaque, params: Params) -> crate::Result<Results> {
        // SAFETY: funcrefs of a store are live while the store is.
        let func_ref = unsafe { *self.func.func_ref(store).as_ptr() };
        let abi = params.into_abi(store)?;
        let caller = store.host_caller_ptr();
        let max_stack = store.max_wasm_stack();
        let mut ret = MaybeUninit::<Results::Abi>::uninit();
        let slot = &mut ret;
        let call = || {
            // SAFETY: the signature was checked when this was created, and
            // the contexts are live.
            let ret = unsafe {
                Params::invoke::<Results::Abi>(func_ref.wasm_call, func_ref.vmctx, caller, abi)
            };
            slot.write(ret);
        };
        // SAFETY: the store context is live; `call` owns nothing with a
        // destructor.
        unsafe { catch_traps(store.store_context_ptr(), max_stack, call) }
            .map_err(|record| store.trap_to_error(record))?;
        // SAFETY: the call completed, so it wrote the result, of the type
        // checked when this was created, produced by wasm of this store.
        Ok(unsafe { Results::from_abi(ret.assume_init(), store) })
    }

    fn call_array(&self, store: &mut StoreOpaque, params: Params) -> crate::Result<Results> {
        let n = Params::valtypes()
            .len()
            .max(Results::valtypes().len())
            .max(1);
        let mut values = vec![ValRaw::default(); n];
        params.store_raw(store, &mut values)?;
        self.func.call_raw(store, &mut values)?;
        // SAFETY: the call completed, so the slots hold its results, of the
        // type checked when this was created.
        Ok(unsafe { Results::load_raw(store, &values) })
    }
}
