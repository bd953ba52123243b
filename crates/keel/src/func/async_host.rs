//! Async host functions: a closure returning a future, awaited on the
//! fiber of the async call that reached it (see `store/async_calls.rs`).

use super::typed::{WasmResults, WasmRet};
use super::{Caller, HostCallFrame, HostFunc, run_host};
use crate::store::{AsContextMut, StoreContextMut};
use crate::vm::ValRaw;
use crate::vm::vmcontext::VMOpaqueContext;
use crate::{Engine, Func, Linker};
use keel_environ::WasmFuncType;
use std::future::Future;
use std::sync::Arc;

/// The arguments of an async host function, as a tuple: `()`, `(i32,)`,
/// `(i32, i64)`, ... of [`WasmTy`](crate::WasmTy) types.
pub trait WasmTyList: WasmResults {}

impl<P: WasmResults> WasmTyList for P {}

/// The closures [`Linker::func_wrap_async`] takes, named once for Keel's
/// own signatures (the public ones spell the bound out, as Wasmtime's do,
/// so that closures passed to them get their signature inferred).
trait AsyncHostFn<T, P, R>:
    for<'a> Fn(Caller<'a, T>, P) -> Box<dyn Future<Output = R> + Send + 'a> + Send + Sync + 'static
{
}

impl<T, P, R, F> AsyncHostFn<T, P, R> for F where
    F: for<'a> Fn(Caller<'a, T>, P) -> Box<dyn Future<Output = R> + Send + 'a>
        + Send
        + Sync
        + 'static
{
}

impl HostFunc {
    /// A host function whose closure returns a future, awaited on the
    /// calling fiber.
    fn wrap_async<T, F, P, R>(engine: &Engine, func: F) -> crate::Result<Arc<HostFunc>>
    where
        T: Send + 'static,
        F: AsyncHostFn<T, P, R>,
        P: WasmTyList,
        R: WasmRet,
    {
        unsafe extern "C" fn array_call<T, F, P, R>(
            callee: *mut VMOpaqueContext,
            caller: *mut VMOpaqueContext,
            values: *mut ValRaw,
            len: usize,
        ) where
            T: Send + 'static,
            F: AsyncHostFn<T, P, R>,
            P: WasmTyList,
            R: WasmRet,
        {
            // SAFETY: generated code or `Func::call` passes live contexts
            // of a `Store<T>`.
            let frame = unsafe { HostCallFrame::<T>::new(callee, caller) };
            // SAFETY: `values` has `len` slots, enough for the parameters
            // and results of this signature.
            let values = unsafe { std::slice::from_raw_parts_mut(values, len) };
            // SAFETY: this entry was created with an `F`.
            let f = unsafe { frame.state::<F>() };
            let HostCallFrame {
                store,
                caller_instance,
                exit,
                ..
            } = frame;
            let body = move || {
                let async_cx = store.opaque.async_cx;
                // SAFETY: the slots hold arguments of this signature,
                // written by wasm of this store (or by `Func::call` after
                // its type check).
                let params = unsafe { P::load_raw(&mut store.opaque, values) };
                let ret = {
                    let caller = Caller {
                        store: StoreContextMut(&mut *store),
                        caller: caller_instance,
                    };
                    let mut future = Box::into_pin(f(caller, params));
                    crate::store::async_calls::wait_in_call(async_cx, future.as_mut())?
                };
                ret.into_result()?.store_raw(&store.opaque, values)
            };
            // SAFETY: called from an array entry with `exit` from its
            // frame; nothing is left to drop once `body` has returned an
            // error (the future is dropped inside it).
            unsafe { run_host(exit, body) }
        }
        let ty = WasmFuncType::new(
            P::valtypes().into_iter().map(crate::ValType::to_wasm),
            R::Ok::valtypes().into_iter().map(crate::ValType::to_wasm),
        );
        HostFunc::new(engine, &ty, array_call::<T, F, P, R>, Box::new(func))
    }
}

impl Func {
    /// A host function whose closure returns a future: wasm called with the
    /// `_async` methods waits for it without blocking the thread. (A
    /// synchronous call polls it once, and fails if it is not ready.)
    pub fn wrap_async<T, F, P, R>(mut store: impl AsContextMut<Data = T>, func: F) -> Func
    where
        T: Send + 'static,
        F: for<'a> Fn(Caller<'a, T>, P) -> Box<dyn Future<Output = R> + Send + 'a>
            + Send
            + Sync
            + 'static,
        P: WasmTyList,
        R: WasmRet,
    {
        let store = &mut store.as_context_mut().0.opaque;
        let host = HostFunc::wrap_async(store.engine(), func)
            .expect("compiling a host trampoline cannot fail for a valid type");
        store.add_host_func(host)
    }
}

impl<T: Send + 'static> Linker<T> {
    /// Defines `module`.`name` as a host function whose closure takes the
    /// caller and its arguments as a tuple and returns a future; wasm
    /// called with the `_async` methods waits for it on its fiber, and the
    /// call's future is pending meanwhile. (A synchronous call polls the
    /// future once and fails if it is not ready.)
    ///
    /// ```
    /// # fn main() -> keel::Result<()> {
    /// use keel::{Caller, Engine, Linker, Module, Store};
    /// let engine = Engine::default();
    /// let module = Module::new(
    ///     &engine,
    ///     r#"(module
    ///         (import "host" "fetch" (func $fetch (param i32) (result i32)))
    ///         (func (export "run") (param i32) (result i32)
    ///             (i32.add (call $fetch (local.get 0)) (i32.const 1))))"#,
    /// )?;
    /// let mut linker = Linker::<()>::new(&engine);
    /// linker.func_wrap_async("host", "fetch", |_caller: Caller<'_, ()>, (x,): (i32,)| {
    ///     Box::new(async move { x * 10 })
    /// })?;
    /// let mut store = Store::new(&engine, ());
    /// let call = async {
    ///     let instance = linker.instantiate_async(&mut store, &module).await?;
    ///     let run = instance.get_typed_func::<i32, i32>(&mut store, "run")?;
    ///     run.call_async(&mut store, 4).await
    /// };
    /// // Any executor drives it; here, polling once is enough.
    /// let mut call = std::pin::pin!(call);
    /// let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// let std::task::Poll::Ready(answer) = call.as_mut().poll(&mut cx) else {
    ///     unreachable!("nothing in this call waits")
    /// };
    /// assert_eq!(answer?, 41);
    /// # Ok(())
    /// # }
    /// ```
    pub fn func_wrap_async<F, Params: WasmTyList, Args: WasmRet>(
        &mut self,
        module: &str,
        name: &str,
        func: F,
    ) -> crate::Result<&mut Self>
    where
        F: for<'a> Fn(Caller<'a, T>, Params) -> Box<dyn Future<Output = Args> + Send + 'a>
            + Send
            + Sync
            + 'static,
    {
        let host = HostFunc::wrap_async(self.engine(), func)?;
        self.define_host_func(module, name, host)?;
        Ok(self)
    }
}
