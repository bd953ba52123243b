//! Async calls: wasm on a fiber, so that a host function can await and a
//! long-running guest can yield without blocking the executor's thread.
//!
//! Every `_async` method runs its synchronous counterpart on a fiber (see
//! `vm/fiber.rs`) and returns a future that resumes the fiber each time it
//! is polled. On the fiber, the store records the fiber's context
//! ([`AsyncCx`]); an async host function ([`Linker::func_wrap_async`]) or a
//! deadline callback answering [`UpdateDeadline::Yield`] waits through it,
//! suspending the fiber, and the call's future returns `Pending`.
//!
//! ```
//! # fn main() -> keel::Result<()> {
//! use keel::{Caller, Engine, Linker, Module, Store};
//! let engine = Engine::default();
//! let module = Module::new(
//!     &engine,
//!     r#"(module
//!         (import "host" "fetch" (func $fetch (param i32) (result i32)))
//!         (func (export "run") (param i32) (result i32)
//!             (i32.add (call $fetch (local.get 0)) (i32.const 1))))"#,
//! )?;
//! let mut linker = Linker::<()>::new(&engine);
//! linker.func_wrap_async("host", "fetch", |_caller: Caller<'_, ()>, (x,): (i32,)| {
//!     Box::new(async move {
//!         // Awaits without blocking the thread: the guest's fiber is
//!         // suspended meanwhile.
//!         std::future::ready(()).await;
//!         x * 10
//!     })
//! })?;
//! let mut store = Store::new(&engine, ());
//! let answer = futures_lite_block_on(async {
//!     let instance = linker.instantiate_async(&mut store, &module).await?;
//!     let run = instance.get_typed_func::<i32, i32>(&mut store, "run")?;
//!     run.call_async(&mut store, 4).await
//! })?;
//! assert_eq!(answer, 41);
//! # Ok(())
//! # }
//! # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     let mut f = std::pin::pin!(f);
//! #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
//! #     loop {
//! #         if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; }
//! #     }
//! # }
//! ```
//!
//! **Cancellation.** Dropping the future of a call that waits (in a host
//! function, or at a yield) resumes its fiber once more, telling it to
//! leave: the wait fails, which unwinds the guest's frames as a trap would,
//! the fiber's stack is freed (or kept for the store's next async call),
//! and the store stays usable, with whatever state the guest had reached.
//! Nothing leaks and no frame is left behind.
//!
//! **Synchronous calls** still run on the caller's stack, as fast as ever.
//! An async host function reached by one is polled once: if its future is
//! not ready at once, the call fails with an error saying to use the async
//! call; a deadline callback answering `Yield` fails it the same way.

use crate::func::{Func, TypedFunc, WasmParams, WasmResults};
use crate::metering::UpdateDeadline;
use crate::store::{AsContextMut, StoreContextMut, StoreInner};
use crate::vm::fiber::{Cancelled, Fiber, FiberContext};
use crate::vm::vmcontext::VMStoreContext;
use crate::{Extern, Instance, InstancePre, Linker, Module, Store, Val};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// The fiber the store's current async call runs on, as the code running
/// on it (host functions, deadline hooks) sees it.
///
/// Invariant: a store holds one only while the body of its async call runs
/// on the fiber (set as the body starts, cleared as it ends), and whatever
/// borrows the store meanwhile is code that body called, on the fiber.
#[derive(Copy, Clone, Debug)]
pub(crate) struct AsyncCx {
    fiber: FiberContext,
    store_context: *mut VMStoreContext,
}

impl AsyncCx {
    /// Polls `future` to completion, suspending the fiber while it is
    /// pending.
    pub(crate) fn block_on<F: Future + ?Sized>(
        self,
        future: Pin<&mut F>,
    ) -> Result<F::Output, Cancelled> {
        // SAFETY: per the invariant, this runs on the fiber while its body
        // runs, and `store_context` is the store's.
        unsafe { self.fiber.block_on(self.store_context, future) }
    }

    /// Lets the executor run other tasks before the fiber goes on.
    pub(crate) fn yield_now(self) -> Result<(), Cancelled> {
        // SAFETY: as in `block_on`.
        unsafe { self.fiber.yield_now(self.store_context) }
    }
}

/// Waits for `future` from code of a call that may be synchronous: on the
/// call's fiber if it is async, else by polling it once.
pub(crate) fn wait_in_call<F: Future + ?Sized>(
    async_cx: Option<AsyncCx>,
    mut future: Pin<&mut F>,
) -> crate::Result<F::Output> {
    match async_cx {
        Some(cx) => Ok(cx.block_on(future)?),
        None => {
            let mut cx = Context::from_waker(Waker::noop());
            match future.as_mut().poll(&mut cx) {
                Poll::Ready(v) => Ok(v),
                Poll::Pending => crate::bail!(
                    "an async host function did not complete at once in a synchronous call: \
                     call wasm with the `_async` methods to let it wait"
                ),
            }
        }
    }
}

/// Runs `body` with the store on a fiber, as a future.
async fn on_fiber<T: Send + 'static, R: Send>(
    store: &mut StoreInner<T>,
    body: impl FnOnce(&mut StoreInner<T>) -> R + Send,
) -> crate::Result<R> {
    if store.opaque.async_cx.is_some() {
        crate::bail!("an async call is already running in this store: await it instead");
    }
    // Wasm of this store running on another stack (a host function of a
    // synchronous call that drives an async call of its own store): the
    // fiber could not see that stack's frames (their externrefs, its
    // activations), so this is refused.
    if store.opaque.vm_store_context.stack_limit != usize::MAX {
        crate::bail!(
            "an async call cannot be made from inside a synchronous call of the same store"
        );
    }
    let stack = match store.opaque.spare_fiber_stack.take() {
        Some(stack) => stack,
        None => store.opaque.engine().take_fiber_stack()?,
    };
    // An address, not a reference: the fiber uses the store while this
    // future holds the `&mut` (dropping the future finishes the fiber
    // first), and nothing else touches it meanwhile.
    let store_addr = store as *mut StoreInner<T> as usize;
    let mut fiber = Fiber::new(stack, move |fiber: FiberContext| {
        // SAFETY: see `store_addr`: only the fiber uses the store now.
        let store = unsafe { &mut *(store_addr as *mut StoreInner<T>) };
        store.opaque.async_cx = Some(AsyncCx {
            fiber,
            store_context: store.opaque.store_context_ptr(),
        });
        // Cleared however the body ends: a host function's panic resumes
        // in the body (once its wasm frames are gone) and unwinds out of
        // the fiber into the caller of `poll`.
        let _clear = ClearAsyncCx::<T>(store_addr, PhantomData);
        body(store)
    });
    let r = (&mut fiber).await;
    // The fiber has finished: keep its stack for the next call.
    store.opaque.spare_fiber_stack = fiber.into_stack();
    Ok(r)
}

/// Clears the store's fiber context when the body of its async call ends.
struct ClearAsyncCx<T: 'static>(usize, PhantomData<fn() -> T>);

impl<T: 'static> Drop for ClearAsyncCx<T> {
    fn drop(&mut self) {
        // SAFETY: the store address of `on_fiber`, used only by the fiber,
        // on which this runs as the body ends.
        let store = unsafe { &mut *(self.0 as *mut StoreInner<T>) };
        store.opaque.async_cx = None;
    }
}

impl Func {
    /// Calls the function on a fiber, as [`Func::call`] does on the
    /// caller's stack: async host functions it reaches may wait, and epoch
    /// deadlines may yield.
    pub async fn call_async(
        &self,
        mut store: impl AsContextMut<Data: Send>,
        params: &[Val],
        results: &mut [Val],
    ) -> crate::Result<()> {
        let store = store.as_context_mut().0;
        on_fiber(store, |store| {
            self.call(StoreContextMut(store), params, results)
        })
        .await?
    }
}

impl<Params: WasmParams, Results: WasmResults> TypedFunc<Params, Results> {
    /// Calls the function on a fiber, as [`TypedFunc::call`] does on the
    /// caller's stack: async host functions it reaches
    /// ([`Linker::func_wrap_async`]) may wait, and epoch deadlines may
    /// yield ([`Store::epoch_deadline_async_yield_and_update`]); the
    /// future is pending meanwhile. Traps, stack exhaustion and host
    /// errors are the same errors as those of [`TypedFunc::call`].
    ///
    /// Dropping the future before it completes cancels the call: the
    /// guest's frames are unwound as a trap would unwind them, its fiber
    /// stack is freed (or kept for the store's next async call), and the
    /// store stays usable, with the state the guest had reached. Fails at
    /// once if another async call of the store is in progress, or if wasm
    /// of the store is running in a synchronous call below this one.
    pub async fn call_async(
        &self,
        mut store: impl AsContextMut<Data: Send>,
        params: Params,
    ) -> crate::Result<Results>
    where
        Params: Sync,
        Results: Sync,
    {
        let store = store.as_context_mut().0;
        on_fiber(store, |store| self.call(StoreContextMut(store), params)).await?
    }
}

impl Instance {
    /// [`Instance::new`] on a fiber: the start function may call async host
    /// functions and yield.
    pub async fn new_async(
        mut store: impl AsContextMut<Data: Send>,
        module: &Module,
        imports: &[Extern],
    ) -> crate::Result<Instance> {
        let store = store.as_context_mut().0;
        on_fiber(store, |store| Instance::new_inner(store, module, imports)).await?
    }
}

impl<T: Send + 'static> Linker<T> {
    /// [`Linker::instantiate`] on a fiber: the start function may call
    /// async host functions and yield.
    pub async fn instantiate_async(
        &self,
        mut store: impl AsContextMut<Data = T>,
        module: &Module,
    ) -> crate::Result<Instance> {
        let store = store.as_context_mut().0;
        on_fiber(store, |store| {
            self.instantiate(StoreContextMut(store), module)
        })
        .await?
    }
}

impl<T: Send + 'static> InstancePre<T> {
    /// [`InstancePre::instantiate`] on a fiber: the start function may call
    /// async host functions and yield.
    pub async fn instantiate_async(
        &self,
        mut store: impl AsContextMut<Data = T>,
    ) -> crate::Result<Instance> {
        let store = store.as_context_mut().0;
        on_fiber(store, |store| self.instantiate(StoreContextMut(store))).await?
    }
}

impl<T: 'static> Store<T> {
    /// Wasm past its epoch deadline yields to the executor, then goes on
    /// with a deadline `delta` ticks beyond the epoch it resumes at: a
    /// cooperative time slice for guests run with the `_async` methods.
    /// (In a synchronous call, reaching the deadline fails the call.)
    pub fn epoch_deadline_async_yield_and_update(&mut self, delta: u64) {
        self.epoch_deadline_callback(move |_| Ok(UpdateDeadline::Yield(delta)));
    }
}
