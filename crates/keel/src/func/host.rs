//! Host functions from Rust closures with typed arguments.
//!
//! [`IntoFunc`] is implemented for closures `Fn(A1, .., An) -> R` and
//! `Fn(Caller<'_, T>, A1, .., An) -> R` where every `Ai` is a [`WasmTy`] and
//! `R` is a [`WasmRet`]. Each closure gets a monomorphized array entry that
//! reads its arguments from the slots, calls it, and writes the results back.

use super::typed::{WasmResults, WasmRet, WasmTy};
use super::{Caller, HostCallFrame, HostFunc, run_host};
use crate::Engine;
use crate::store::StoreContextMut;
use crate::vm::ValRaw;
use crate::vm::vmcontext::VMOpaqueContext;
use keel_environ::WasmFuncType;
use std::sync::Arc;

/// A closure that can become a host function of store data `T`.
pub trait IntoFunc<T, Params, Results>: Send + Sync + 'static {
    #[doc(hidden)]
    fn into_host_func(self, engine: &Engine) -> crate::Result<Arc<HostFunc>>;
}

fn signature<R: WasmResults>(params: Vec<crate::ValType>) -> WasmFuncType {
    WasmFuncType::new(
        params.into_iter().map(crate::ValType::to_wasm),
        R::valtypes().into_iter().map(crate::ValType::to_wasm),
    )
}

macro_rules! into_func_impls {
    ($( ($($a:ident $i:tt),*); )*) => {$(
        impl<T, F, $($a,)* R> IntoFunc<T, ($($a,)*), R> for F
        where
            T: 'static,
            F: Fn($($a),*) -> R + Send + Sync + 'static,
            $($a: WasmTy,)*
            R: WasmRet,
        {
            fn into_host_func(self, engine: &Engine) -> crate::Result<Arc<HostFunc>> {
                #[allow(non_snake_case, unused_variables, unused_mut, reason = "macro-generated")]
                unsafe extern "C" fn array_call<T: 'static, F, $($a,)* R>(
                    callee: *mut VMOpaqueContext,
                    caller: *mut VMOpaqueContext,
                    values: *mut ValRaw,
                    len: usize,
                ) where
                    F: Fn($($a),*) -> R + Send + Sync + 'static,
                    $($a: WasmTy,)*
                    R: WasmRet,
                {
                    // SAFETY: generated code or `Func::call` passes live
                    // contexts of a `Store<T>`.
                    let frame = unsafe { HostCallFrame::<T>::new(callee, caller) };
                    // SAFETY: `values` has `len` slots, enough for the
                    // parameters and results of this signature.
                    let values = unsafe { std::slice::from_raw_parts_mut(values, len) };
                    // SAFETY: this entry was created with an `F`.
                    let f = unsafe { frame.state::<F>() };
                    let exit = frame.exit;
                    let store = &mut frame.store.opaque;
                    let body = move || {
                        $(
                            // SAFETY: slot `$i` holds an argument of type
                            // `$a`, written by wasm of this store (or by
                            // `Func::call` after its type check).
                            let $a = unsafe { $a::from_raw(values[$i], store) };
                        )*
                        let ret = f($($a),*).into_result()?;
                        ret.store_raw(store, values)
                    };
                    // SAFETY: called from an array entry with `exit` from
                    // its frame; nothing is left to drop here once `body`
                    // has returned an error.
                    unsafe { run_host(exit, body) }
                }
                let ty = signature::<R::Ok>(vec![$($a::valtype()),*]);
                HostFunc::new(engine, &ty, array_call::<T, F, $($a,)* R>, Box::new(self))
            }
        }

        impl<T, F, $($a,)* R> IntoFunc<T, (Caller<'_, T>, $($a,)*), R> for F
        where
            T: 'static,
            F: Fn(Caller<'_, T>, $($a),*) -> R + Send + Sync + 'static,
            $($a: WasmTy,)*
            R: WasmRet,
        {
            fn into_host_func(self, engine: &Engine) -> crate::Result<Arc<HostFunc>> {
                #[allow(non_snake_case, unused_variables, unused_mut, reason = "macro-generated")]
                unsafe extern "C" fn array_call<T: 'static, F, $($a,)* R>(
                    callee: *mut VMOpaqueContext,
                    caller: *mut VMOpaqueContext,
                    values: *mut ValRaw,
                    len: usize,
                ) where
                    F: Fn(Caller<'_, T>, $($a),*) -> R + Send + Sync + 'static,
                    $($a: WasmTy,)*
                    R: WasmRet,
                {
                    // SAFETY: as above.
                    let frame = unsafe { HostCallFrame::<T>::new(callee, caller) };
                    // SAFETY: as above.
                    let values = unsafe { std::slice::from_raw_parts_mut(values, len) };
                    // SAFETY: this entry was created with an `F`.
                    let f = unsafe { frame.state::<F>() };
                    let HostCallFrame { store, caller_instance, exit, .. } = frame;
                    let body = move || {
                        $(
                            // SAFETY: as above.
                            let $a = unsafe { $a::from_raw(values[$i], &mut store.opaque) };
                        )*
                        let caller = Caller {
                            store: StoreContextMut(&mut *store),
                            caller: caller_instance,
                        };
                        let ret = f(caller, $($a),*).into_result()?;
                        ret.store_raw(&store.opaque, values)
                    };
                    // SAFETY: as above.
                    unsafe { run_host(exit, body) }
                }
                let ty = signature::<R::Ok>(vec![$($a::valtype()),*]);
                HostFunc::new(engine, &ty, array_call::<T, F, $($a,)* R>, Box::new(self))
            }
        }
    )*};
}

into_func_impls! {
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
}
