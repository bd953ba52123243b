//! Functions: wasm exports and host functions, called typed or untyped.

mod async_host;
mod host;
mod raw;
mod typed;

pub use async_host::WasmTyList;
pub use host::IntoFunc;
pub(crate) use raw::exception_fields;
pub use typed::{TypedFunc, WasmParams, WasmResults, WasmRet, WasmTy};

use crate::store::{AsContext, AsContextMut, StoreContextMut, StoreInner, StoreOpaque, Stored};
use crate::vm::traphandlers::{UnwindReason, catch_traps, raise};
use crate::vm::vmcontext::{
    VMArrayCallFunction, VMContextHeader, VMFuncRef, VMHostFuncContext, VMOpaqueContext,
};
use crate::vm::{Instance as VmInstance, ValRaw};
use crate::{Engine, Extern, FuncType, Instance, Val};
use anyhow::bail;
use keel_environ::{SharedTypeIndex, VMHOSTFUNC_MAGIC, WasmFuncType};
use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;
use std::sync::Arc;

/// A function in a store: a wasm function exported by an instance, or a
/// host function.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Func(pub(crate) Stored);

/// What a [`Func`] handle refers to.
pub(crate) struct FuncData {
    pub func_ref: NonNull<VMFuncRef>,
}

/// A host function's context, shared by every store it is used in.
#[doc(hidden)]
pub struct HostFunc {
    ctx: Box<VMHostFuncContext>,
    _engine: Engine,
}

// SAFETY: the context's raw pointers point into itself or to engine-owned
// code; the host state is `Send + Sync`.
unsafe impl Send for HostFunc {}
// SAFETY: as above; shared access only reads.
unsafe impl Sync for HostFunc {}

impl HostFunc {
    /// Wraps `state` (the closure) behind `array_call`, its array entry.
    pub(crate) fn new(
        engine: &Engine,
        ty: &WasmFuncType,
        array_call: VMArrayCallFunction,
        state: Box<dyn Any + Send + Sync>,
    ) -> crate::Result<Arc<HostFunc>> {
        let type_index = engine.register_type(ty);
        let wasm_call = engine.wasm_to_host_trampoline(type_index)?;
        let mut ctx = Box::new(VMHostFuncContext {
            magic: VMHOSTFUNC_MAGIC,
            func_ref: VMFuncRef {
                wasm_call,
                array_call,
                vmctx: std::ptr::null_mut(),
                type_index,
            },
            host_state: state,
        });
        ctx.func_ref.vmctx = (&mut *ctx as *mut VMHostFuncContext).cast();
        Ok(Arc::new(HostFunc {
            ctx,
            _engine: engine.clone(),
        }))
    }

    pub(crate) fn func_ref(&self) -> NonNull<VMFuncRef> {
        NonNull::from(&self.ctx.func_ref)
    }

    /// The engine-wide id of its signature.
    pub(crate) fn type_index(&self) -> keel_environ::SharedTypeIndex {
        self.ctx.func_ref.type_index
    }

    /// The record an instance importing it stores.
    pub(crate) fn import(&self) -> crate::vm::vmcontext::VMFunctionImport {
        crate::vm::vmcontext::VMFunctionImport {
            wasm_call: self.ctx.func_ref.wasm_call,
            vmctx: self.ctx.func_ref.vmctx,
            func_ref: &self.ctx.func_ref,
        }
    }
}

/// Everything a host function's array entry needs about its call.
pub(crate) struct HostCallFrame<'a, T: 'static> {
    pub state: &'a (dyn Any + Send + Sync),
    pub store: &'a mut StoreInner<T>,
    pub caller_instance: Option<Instance>,
    pub exit: HostExit,
}

/// Where a host call came from: what [`run_host`] needs to unwind or to
/// throw into the calling wasm.
#[derive(Copy, Clone)]
pub(crate) struct HostExit {
    /// The wasm-to-host trampoline's frame pointer (`last_wasm_exit_fp`).
    fp: usize,
    /// The store, from the caller's context (not from the host function's
    /// borrow of it, which ends before this is used).
    store: *mut StoreOpaque,
}

impl<'a, T: 'static> HostCallFrame<'a, T> {
    /// The host state, as the type `S` its function was created with,
    /// without the dynamic type check of `downcast_ref` (a virtual call on
    /// every host call).
    ///
    /// # Safety
    ///
    /// `S` must be the type of the state the array entry was created with
    /// (each typed entry is monomorphized for its closure type).
    #[inline]
    pub unsafe fn state<S: 'static>(&self) -> &'a S {
        debug_assert!(self.state.is::<S>());
        // SAFETY: per the contract, the data pointer points to an `S`.
        unsafe { &*(self.state as *const (dyn Any + Send + Sync)).cast::<S>() }
    }

    /// Decodes the contexts of a host call.
    ///
    /// # Safety
    ///
    /// `callee` must be a live `VMHostFuncContext` and `caller` a live
    /// context header of a `Store<T>` that nothing else borrows.
    pub unsafe fn new(callee: *mut VMOpaqueContext, caller: *mut VMOpaqueContext) -> Self {
        // SAFETY: per the contract.
        unsafe {
            let host = &*callee.cast::<VMHostFuncContext>();
            let header = &*caller.cast::<VMContextHeader>();
            let exit = HostExit {
                fp: (*header.store_context).last_wasm_exit_fp,
                store: header.store.cast::<StoreOpaque>(),
            };
            let store = StoreInner::<T>::from_raw(header.store);
            let caller_instance = if header.instance.is_null() {
                None
            } else {
                let vm = &*header.instance.cast::<VmInstance>();
                Some(Instance(store.opaque.stored(vm.store_index)))
            };
            HostCallFrame {
                state: &*host.host_state,
                store,
                caller_instance,
                exit,
            }
        }
    }
}

/// Runs a host function body, converting an error or a panic into an
/// unwind back to the wasm entry point, and a thrown exception
/// ([`crate::Store::throw`]) into a jump to the wasm handler that catches
/// it.
///
/// # Safety
///
/// Must be called from a host function's array entry, with `exit` from
/// its [`HostCallFrame`]; the caller must have nothing left to drop after
/// this returns an error (it does not return then).
pub(crate) unsafe fn run_host<R>(exit: HostExit, body: impl FnOnce() -> crate::Result<R>) -> R {
    let reason = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(r)) => return r,
        Ok(Err(e)) if e.is::<crate::ThrownException>() => {
            // Dropped first: the jump below skips this frame.
            drop(e);
            // SAFETY: the body, and its borrow of the store, are over; the
            // store outlives the call.
            unsafe { throw_into_wasm(exit) };
            UnwindReason::User(crate::ThrownException.into())
        }
        Ok(Err(e)) => UnwindReason::User(e),
        Err(panic) => UnwindReason::Panic(panic),
    };
    // SAFETY: per the contract: we are inside a host call made from wasm
    // under `catch_traps`, and nothing of the body is left to drop.
    unsafe { raise(reason, exit.fp) }
}

/// Delivers the store's pending exception to the first wasm frame above
/// the host call that catches it. Returns, leaving the exception pending,
/// when none does.
///
/// # Safety
///
/// As for [`run_host`], and nothing may borrow the store.
unsafe fn throw_into_wasm(exit: HostExit) {
    // SAFETY: per the contract, the store is live and not borrowed.
    let store = unsafe { &mut *exit.store };
    let Some(exception) = store.pending_exception.take() else {
        return;
    };
    // The heap keeps the object alive once this handle is gone.
    let exn = exception.to_raw(store);
    store.pending_exception = Some(exception);
    // SAFETY: `exit.fp` is the trampoline frame of this host call, in the
    // innermost activation.
    let Some(handler) = (unsafe { crate::vm::traphandlers::find_handler(exit.fp) }) else {
        return;
    };
    store.pending_exception = None;
    let fuel = store.vm_store_context.fuel_consumed;
    // SAFETY: the handler was just found for this activation; the frames
    // skipped are this one and the host function's array entry, which own
    // nothing with a destructor (the handle above is dropped).
    unsafe { crate::vm::exception::resume_at_handler(handler, exn.cast_const().cast(), fuel) }
}

/// The host closure of [`Func::new`].
type DynamicHostFn<T> =
    Box<dyn Fn(Caller<'_, T>, &[Val], &mut [Val]) -> crate::Result<()> + Send + Sync>;

struct DynamicState<T: 'static> {
    ty: FuncType,
    func: DynamicHostFn<T>,
}

/// The array entry of a [`Func::new`] function.
unsafe extern "C" fn dynamic_array_call<T: 'static>(
    callee: *mut VMOpaqueContext,
    caller: *mut VMOpaqueContext,
    values: *mut ValRaw,
    len: usize,
) {
    // SAFETY: generated code or `Func::call` passes live contexts of a
    // `Store<T>` (host functions are only ever created for one `T`).
    let frame = unsafe { HostCallFrame::<T>::new(callee, caller) };
    // SAFETY: `values` has `len` slots, at least as many as the signature's
    // parameters and results.
    let values = unsafe { std::slice::from_raw_parts_mut(values, len) };
    // SAFETY: this entry is only ever created with a `DynamicState<T>`.
    let state = unsafe { frame.state::<DynamicState<T>>() };
    let HostCallFrame {
        store,
        caller_instance,
        exit,
        ..
    } = frame;
    let body = move || {
        let params: Vec<Val> = state
            .ty
            .params()
            .enumerate()
            .map(|(i, t)| {
                // SAFETY: the slots hold arguments of this signature, which
                // wasm of this store wrote (or `Func::call`, after its type
                // check), and nothing has collected externrefs since.
                unsafe { Val::from_raw(&mut store.opaque, values[i], &t) }
            })
            .collect();
        let mut results: Vec<Val> = state
            .ty
            .results()
            .map(|t| Val::default_for_ty(&t).unwrap_or(Val::I32(0)))
            .collect();
        (state.func)(
            Caller {
                store: StoreContextMut(&mut *store),
                caller: caller_instance,
            },
            &params,
            &mut results,
        )?;
        for (i, (r, t)) in results.iter().zip(state.ty.results()).enumerate() {
            if !r.matches(&store.opaque, &t) {
                bail!(
                    "host function returned a {} where its type says {t}",
                    r.ty()
                );
            }
            values[i] = r.to_raw(&store.opaque);
        }
        Ok(())
    };
    // SAFETY: called from an array entry with `exit` from its frame;
    // nothing is left to drop here once `body` has returned an error.
    unsafe { run_host(exit, body) }
}

impl Func {
    /// A host function of type `ty` that takes and returns [`Val`]s.
    pub fn new<T: 'static>(
        mut store: impl AsContextMut<Data = T>,
        ty: FuncType,
        func: impl Fn(Caller<'_, T>, &[Val], &mut [Val]) -> crate::Result<()> + Send + Sync + 'static,
    ) -> Func {
        let store = store.as_context_mut().0;
        let host = Self::host_new(store.opaque.engine(), ty, func)
            .expect("compiling a host trampoline cannot fail for a valid type");
        store.opaque.add_host_func(host)
    }

    pub(crate) fn host_new<T: 'static>(
        engine: &Engine,
        ty: FuncType,
        func: impl Fn(Caller<'_, T>, &[Val], &mut [Val]) -> crate::Result<()> + Send + Sync + 'static,
    ) -> crate::Result<Arc<HostFunc>> {
        let wasm_ty = ty.wasm().clone();
        let state = DynamicState::<T> {
            ty,
            func: Box::new(func),
        };
        HostFunc::new(engine, &wasm_ty, dynamic_array_call::<T>, Box::new(state))
    }

    /// A host function from a Rust closure with typed parameters and
    /// results (see [`IntoFunc`]).
    pub fn wrap<T: 'static, Params, Results>(
        mut store: impl AsContextMut<Data = T>,
        func: impl IntoFunc<T, Params, Results>,
    ) -> Func {
        let store = store.as_context_mut().0;
        let host = func
            .into_host_func(store.opaque.engine())
            .expect("compiling a host trampoline cannot fail for a valid type");
        store.opaque.add_host_func(host)
    }

    pub(crate) fn func_ref(&self, store: &StoreOpaque) -> NonNull<VMFuncRef> {
        store.funcs[store.check(self.0)].func_ref
    }

    pub(crate) fn type_index(&self, store: &StoreOpaque) -> SharedTypeIndex {
        // SAFETY: funcrefs of a store are live while the store is.
        unsafe { self.func_ref(store).as_ref().type_index }
    }

    /// The function's signature.
    pub fn ty(&self, store: impl AsContext) -> FuncType {
        let store = &store.as_context().0.opaque;
        FuncType(store.engine().type_of(self.type_index(store)))
    }

    /// Calls the function with arguments and results as [`Val`]s. Checks
    /// the number and types of both.
    pub fn call(
        &self,
        mut store: impl AsContextMut,
        params: &[Val],
        results: &mut [Val],
    ) -> crate::Result<()> {
        let store = &mut store.as_context_mut().0.opaque;
        let ty = store.engine().type_of(self.type_index(store));
        if params.len() != ty.params().len() {
            bail!(
                "expected {} arguments, got {}",
                ty.params().len(),
                params.len()
            );
        }
        if results.len() != ty.results().len() {
            bail!(
                "expected {} results, got {}",
                ty.results().len(),
                results.len()
            );
        }
        let mut values = std::mem::take(&mut store.call_scratch);
        values.clear();
        values.resize(params.len().max(results.len()).max(1), ValRaw::default());
        for (i, (p, t)) in params.iter().zip(ty.params()).enumerate() {
            let t = crate::ValType::from_wasm(*t);
            if !p.matches(store, &t) {
                store.call_scratch = values;
                bail!("argument {i} is a {} where {t} was expected", p.ty());
            }
            if let Val::FuncRef(Some(f)) = p
                && f.0.store != store.id()
            {
                store.call_scratch = values;
                bail!("argument {i} is a function from another store");
            }
            values[i] = p.to_raw(store);
        }
        let r = self.call_raw(store, &mut values);
        if r.is_ok() {
            for (i, t) in ty.results().iter().enumerate() {
                let t = crate::ValType::from_wasm(*t);
                // SAFETY: the call completed, so the slots hold its results,
                // of this type, written by wasm of this store (or a host
                // function), with no collection since.
                results[i] = unsafe { Val::from_raw(store, values[i], &t) };
            }
        }
        store.call_scratch = values;
        r
    }

    /// Calls through the array entry with arguments in `values`; results
    /// replace them.
    pub(crate) fn call_raw(
        &self,
        store: &mut StoreOpaque,
        values: &mut [ValRaw],
    ) -> crate::Result<()> {
        // SAFETY: funcrefs of a store are live while the store is.
        let func_ref = unsafe { *self.func_ref(store).as_ptr() };
        let caller = store.host_caller_ptr();
        let ptr = values.as_mut_ptr();
        let len = values.len();
        let max_stack = store.max_wasm_stack();
        let call = || {
            // SAFETY: the entry matches the funcref's type, for which
            // `values` has enough slots (checked by the caller), and the
            // contexts are live.
            unsafe { (func_ref.array_call)(func_ref.vmctx, caller, ptr, len) }
        };
        // SAFETY: the store context is live; `call` owns nothing with a
        // destructor.
        unsafe { catch_traps(store.store_context_ptr(), max_stack, call) }
            .map_err(|record| store.trap_to_error(record))
    }

    /// This function with a static signature, for fast calls. Fails if the
    /// signature does not match `Params` and `Results`.
    pub fn typed<Params: WasmParams, Results: WasmResults>(
        &self,
        store: impl AsContext,
    ) -> crate::Result<TypedFunc<Params, Results>> {
        let store = &store.as_context().0.opaque;
        let ty = store.engine().type_of(self.type_index(store));
        Params::typecheck(ty.params())
            .map_err(|e| anyhow::anyhow!("type mismatch with parameters: {e}"))?;
        Results::typecheck(ty.results())
            .map_err(|e| anyhow::anyhow!("type mismatch with results: {e}"))?;
        // SAFETY: the signature was checked just above.
        Ok(unsafe { TypedFunc::new_unchecked(*self) })
    }
}

/// The context of a host function call: the store, and the instance that
/// called (if wasm did).
pub struct Caller<'a, T: 'static> {
    pub(crate) store: StoreContextMut<'a, T>,
    pub(crate) caller: Option<Instance>,
}

impl<T: 'static> Caller<'_, T> {
    /// The host data.
    pub fn data(&self) -> &T {
        self.store.data()
    }

    /// The host data, mutably.
    pub fn data_mut(&mut self) -> &mut T {
        self.store.data_mut()
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        self.store.engine()
    }

    /// As [`Store::throw`](crate::Store::throw): `return caller.throw(exn)`
    /// raises `exn` in the calling wasm.
    pub fn throw<R>(&mut self, exception: crate::ExnRef) -> crate::Result<R> {
        self.store.throw(exception)
    }

    /// As [`Store::take_pending_exception`](crate::Store::take_pending_exception).
    pub fn take_pending_exception(&mut self) -> Option<crate::ExnRef> {
        self.store.take_pending_exception()
    }

    /// An export of the calling instance (typically its `"memory"`).
    pub fn get_export(&mut self, name: &str) -> Option<Extern> {
        let instance = self.caller?;
        instance.get_export(&mut self.store, name)
    }
}

impl<T: 'static> AsContext for Caller<'_, T> {
    type Data = T;
    fn as_context(&self) -> crate::StoreContext<'_, T> {
        self.store.as_context()
    }
}

impl<T: 'static> AsContextMut for Caller<'_, T> {
    fn as_context_mut(&mut self) -> StoreContextMut<'_, T> {
        self.store.as_context_mut()
    }
}
