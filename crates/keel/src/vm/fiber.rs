//! Fibers: wasm on a stack of its own, so that an async call can suspend
//! in the middle of it and give its thread back to the executor.
//!
//! The stack switch itself is `corosensei`'s (x86-64, aarch64 and more,
//! with the unwinding of a panic carried across the switch). What Keel adds
//! is what a fiber means to the trap machinery, kept here so that the rest
//! of the runtime need not know that fibers exist:
//!
//! - **Stacks** ([`FiberStack`]) are mappings with an inaccessible guard
//!   page below them, allocated on demand or carved out of the pool.
//! - **Stack bounds.** While a fiber runs, this thread's recorded stack
//!   bottom is the fiber's ([`super::sys::unix::thread::set_stack_low`]),
//!   so the wasm stack limit that `catch_traps` computes, and its floor,
//!   lie inside the fiber's stack.
//! - **Activations.** The thread's chain of wasm activations (see
//!   `traphandlers`) is swapped on every switch: the fiber starts with an
//!   empty chain, its activations are taken off the thread when it
//!   suspends and put back (on whichever thread) when it resumes. A fault
//!   therefore only ever unwinds to an entry on the stack it happened on,
//!   and a conservative stack scan never walks from one stack into another.
//! - **Leaving.** A fiber is never unwound by a panic of corosensei's
//!   making (that would unwind through wasm frames, which have no unwind
//!   information): dropping a suspended fiber resumes it with
//!   [`Resumption::Cancel`], and every suspension point in Keel answers
//!   that by failing the host call or the epoch check it sits in, which
//!   unwinds the wasm frames as a trap and lets the fiber's body return.

use super::mmap::{Mmap, page_size, round_up_to_page};
use super::pool::InstancePool;
use super::sys::unix::thread::{set_stack_low, stack_low_and_tid};
use super::traphandlers;
use super::vmcontext::VMStoreContext;
use corosensei::stack::{Stack, StackPointer};
use corosensei::{Coroutine, CoroutineResult, Yielder};
use std::cell::Cell;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

/// A stack for a fiber: `size` usable bytes above one inaccessible guard
/// page, which turns an overflow of host code into a fault instead of a
/// write into whatever lies below. (Wasm itself never reaches the guard:
/// its frames are checked against a limit above it.) A stack from the pool
/// goes back to it when dropped.
///
/// Invariant: `mapping` is `page_size()` of guard then the usable pages,
/// accessible, and nothing else runs on them while a fiber owns the stack.
pub struct FiberStack {
    mapping: ManuallyDrop<Mmap>,
    home: Option<Arc<InstancePool>>,
}

impl FiberStack {
    /// A new stack of at least `size` usable bytes (rounded up to pages).
    pub fn new(size: usize) -> std::io::Result<FiberStack> {
        Ok(FiberStack {
            mapping: ManuallyDrop::new(FiberStack::mapping(size)?),
            home: None,
        })
    }

    /// The mapping of a stack of at least `size` usable bytes: a guard
    /// page, then the accessible pages.
    pub fn mapping(size: usize) -> std::io::Result<Mmap> {
        let size = round_up_to_page(size.max(page_size()))
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::OutOfMemory))?;
        let mut mapping = Mmap::reserve(size + page_size())?;
        mapping.make_accessible(page_size(), size)?;
        Ok(mapping)
    }

    /// A stack of the pool that goes back to `home` when dropped.
    ///
    /// # Safety
    ///
    /// `mapping` must be one [`FiberStack::mapping`] made (a guard page
    /// below accessible pages), which nothing else uses.
    pub unsafe fn pooled(mapping: Mmap, home: Arc<InstancePool>) -> FiberStack {
        FiberStack {
            mapping: ManuallyDrop::new(mapping),
            home: Some(home),
        }
    }

    /// The stack's lowest usable address (just above the guard page).
    pub fn low(&self) -> usize {
        self.mapping.as_ptr() as usize + page_size()
    }
}

impl std::fmt::Debug for FiberStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FiberStack")
            .field("mapping", &*self.mapping)
            .field("pooled", &self.home.is_some())
            .finish()
    }
}

impl Drop for FiberStack {
    fn drop(&mut self) {
        // SAFETY: `mapping` is never used again: this is the drop.
        let mapping = unsafe { ManuallyDrop::take(&mut self.mapping) };
        match self.home.take() {
            // SAFETY: a stack with a home came from that pool (`pooled`'s
            // contract), and a stack being dropped has no fiber on it.
            Some(pool) => unsafe { pool.return_stack(mapping) },
            None => drop(mapping),
        }
    }
}

// SAFETY: the mapping is page-aligned (so aligned to `STACK_ALIGNMENT`),
// has a guard page at its bottom, which `limit` includes, and at least one
// usable page above it (`new` asks for at least one).
unsafe impl Stack for FiberStack {
    fn base(&self) -> StackPointer {
        let top = self.mapping.as_ptr() as usize + self.mapping.len();
        StackPointer::new(top).unwrap_or(StackPointer::MIN)
    }

    fn limit(&self) -> StackPointer {
        StackPointer::new(self.mapping.as_ptr() as usize).unwrap_or(StackPointer::MIN)
    }
}

/// What a suspended fiber is told when it is resumed.
#[derive(Copy, Clone, Debug)]
enum Resumption {
    /// Carry on; this is the context of the `poll` that resumed it (for a
    /// future the fiber polls to register its waker). Valid until the
    /// fiber next suspends.
    Poll(*mut Context<'static>),
    /// Its future was dropped: leave, failing whatever waits.
    Cancel,
}

/// The fiber's side of the switch, on the fiber's stack for as long as
/// its body runs: how code running on it suspends, and the context of the
/// `poll` that last resumed it.
struct FiberShared<'y> {
    yielder: &'y Yielder<Resumption, ()>,
    poll_cx: Cell<*mut Context<'static>>,
}

/// The future of an async call was dropped while its fiber waited: the
/// wait fails with this, and the fiber unwinds.
#[derive(Debug, thiserror::Error)]
#[error("the async call was cancelled: its future was dropped")]
pub struct Cancelled;

/// What code running on a fiber uses to wait: a handle to the fiber's
/// [`FiberShared`], valid while the body runs. The store whose call runs on
/// the fiber keeps it, for the host functions and deadline hooks that
/// suspend.
#[derive(Copy, Clone, Debug)]
pub struct FiberContext(*const FiberShared<'static>);

impl FiberContext {
    /// Polls `future` until it is ready, suspending the fiber each time it
    /// is pending (its waker is registered by then, so the executor will
    /// resume the fiber's future when there is progress to make).
    ///
    /// # Safety
    ///
    /// Must be called on the fiber this context belongs to, while its body
    /// runs (from code the body called). `store_context`, if not null, is
    /// the context of the store running on the fiber.
    pub unsafe fn block_on<F: Future + ?Sized>(
        self,
        store_context: *mut VMStoreContext,
        mut future: Pin<&mut F>,
    ) -> Result<F::Output, Cancelled> {
        // SAFETY: per the contract, the shared state is alive.
        let shared = unsafe { &*self.0 };
        loop {
            // SAFETY: the context of the poll that last resumed the fiber,
            // alive until the fiber suspends again.
            let cx = unsafe { &mut *shared.poll_cx.get() };
            if let Poll::Ready(v) = future.as_mut().poll(cx) {
                return Ok(v);
            }
            // SAFETY: per the contract.
            unsafe { self.suspend(store_context)? };
        }
    }

    /// Suspends the fiber once, waking its future first so that the
    /// executor resumes it after running whatever else is ready.
    ///
    /// # Safety
    ///
    /// As for [`FiberContext::block_on`].
    pub unsafe fn yield_now(self, store_context: *mut VMStoreContext) -> Result<(), Cancelled> {
        // SAFETY: per the contract, the shared state and the poll context
        // are alive.
        unsafe { (*(*self.0).poll_cx.get()).waker().wake_by_ref() };
        // SAFETY: per the contract.
        unsafe { self.suspend(store_context) }
    }

    /// # Safety
    ///
    /// As for [`FiberContext::block_on`].
    unsafe fn suspend(self, store_context: *mut VMStoreContext) -> Result<(), Cancelled> {
        // SAFETY: per the contract.
        let shared = unsafe { &*self.0 };
        // While suspended, the store's wasm runs on no thread: the epoch
        // ticker must not signal the thread, which goes on to run other
        // tasks; once resumed, perhaps on another thread, it signals that.
        // SAFETY: a store context's epoch thread pointer is null or points
        // into the store's epoch state, which outlives it.
        let epoch_thread =
            unsafe { store_context.as_ref() }.and_then(|ctx| unsafe { ctx.epoch_thread.as_ref() });
        let running = epoch_thread.map_or(0, |t| t.swap(0, Ordering::SeqCst));
        let resumed = shared.yielder.suspend(());
        if let Some(thread) = epoch_thread.filter(|_| running != 0) {
            thread.store(stack_low_and_tid().1, Ordering::SeqCst);
        }
        match resumed {
            Resumption::Poll(cx) => {
                shared.poll_cx.set(cx);
                Ok(())
            }
            Resumption::Cancel => Err(Cancelled),
        }
    }
}

/// Where a fiber stands after a resume.
enum FiberState<R> {
    /// It suspended and waits to be resumed.
    Suspended,
    /// Its body returned this.
    Done(R),
}

/// A body running on its own stack, borrowing data of lifetime `'a`.
pub struct Fiber<'a, R> {
    coroutine: Option<Coroutine<Resumption, (), R, FiberStack>>,
    /// The stack's lowest usable address.
    stack_low: usize,
    /// The fiber's own activations while it is suspended (an opaque chain
    /// head, see `traphandlers::swap_activations`).
    activations: traphandlers::ActivationChain,
    _borrow: PhantomData<&'a mut ()>,
}

// SAFETY: what sits on a suspended fiber's stack is the body's captures
// (the body is `Send`), Keel's own frames (raw pointers into the store the
// body borrows, which is `Send`), wasm frames (values, no references to
// thread-local state: the activation chain and stack bounds are taken off
// the thread at every switch, above) and the frames of a host future, which
// must be `Send` (`func_wrap_async`'s contract). Nothing on it refers to
// the thread it last ran on.
unsafe impl<R: Send> Send for Fiber<'_, R> {}

impl<'a, R> Fiber<'a, R> {
    /// A fiber that will run `body` on `stack` when first resumed.
    pub fn new(stack: FiberStack, body: impl FnOnce(FiberContext) -> R + Send + 'a) -> Self {
        let stack_low = stack.low();
        let run = move |yielder: &Yielder<Resumption, ()>, first: Resumption| {
            // A fiber is only ever dropped unstarted, never cancelled
            // before its first resume.
            let poll_cx = match first {
                Resumption::Poll(cx) => cx,
                Resumption::Cancel => std::ptr::null_mut(),
            };
            let shared = FiberShared {
                yielder,
                poll_cx: Cell::new(poll_cx),
            };
            // The lifetime is erased for the store to keep the handle;
            // the handle is only used while `shared` is alive (the store
            // drops it when the body returns, see `FiberContext`).
            let shared_ptr = (&shared as *const FiberShared<'_>).cast::<FiberShared<'static>>();
            body(FiberContext(shared_ptr))
        };
        // SAFETY: what `run` borrows lives for `'a`, which this fiber
        // carries: it cannot outlive the borrow. Dropping it drives the
        // body to its end (see `Drop`); forgetting it leaves the body
        // suspended forever, never to touch what it borrowed again.
        let coroutine = unsafe { Coroutine::with_stack_unchecked(stack, run) };
        Fiber {
            coroutine: Some(coroutine),
            stack_low,
            activations: traphandlers::ActivationChain::EMPTY,
            _borrow: PhantomData,
        }
    }

    /// Runs the fiber until it suspends or its body returns. A panic of the
    /// body continues in the caller. Private: a `Poll` must carry a context
    /// that lives until the fiber suspends, which only `poll` guarantees.
    fn resume(&mut self, how: Resumption) -> FiberState<R> {
        let Some(coroutine) = self.coroutine.as_mut().filter(|c| !c.done()) else {
            // Resuming a finished fiber is a bug in Keel's async layer.
            panic!("resumed a fiber that has finished");
        };
        // SAFETY: the chain given is the fiber's own (taken when it last
        // suspended, or empty before its first run), and the stack bottom
        // is the fiber's, on which it is about to run.
        let switch = unsafe { ThreadSwitch::enter(self.stack_low, &mut self.activations) };
        let result = coroutine.resume(how);
        switch.leave(&mut self.activations);
        match result {
            CoroutineResult::Yield(()) => FiberState::Suspended,
            CoroutineResult::Return(r) => FiberState::Done(r),
        }
    }

    /// Whether the body has returned.
    pub fn done(&self) -> bool {
        self.coroutine.as_ref().is_none_or(|c| c.done())
    }

    /// Takes the stack back from a finished fiber, for reuse; `None` while
    /// the body has not returned.
    pub fn into_stack(mut self) -> Option<FiberStack> {
        if !self.done() {
            return None;
        }
        self.coroutine.take().map(Coroutine::into_stack)
    }
}

/// Polling a fiber resumes it with the poll's context: `Pending` while it
/// waits, its body's result once it returns.
impl<R> Future for Fiber<'_, R> {
    type Output = R;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<R> {
        let cx = (cx as *mut Context<'_>).cast::<Context<'static>>();
        match self.resume(Resumption::Poll(cx)) {
            FiberState::Suspended => Poll::Pending,
            FiberState::Done(r) => Poll::Ready(r),
        }
    }
}

impl<R> Drop for Fiber<'_, R> {
    fn drop(&mut self) {
        let Some(coroutine) = self.coroutine.as_ref() else {
            return;
        };
        if coroutine.started() && !coroutine.done() {
            // Suspended inside the body: let it fail its way out. Every
            // suspension point answers `Cancel` by unwinding its wasm
            // frames, so this ends after as many suspensions as there are
            // nested waits (in practice one).
            while !self.done() {
                if let FiberState::Done(r) = self.resume(Resumption::Cancel) {
                    drop(r);
                }
            }
        }
        // Not started: dropping the coroutine drops the body's captures.
    }
}

/// This thread's state swapped for a fiber's while it runs: the stack
/// bottom and the activation chain. Restored on the way out, including by
/// a panic coming out of the fiber.
struct ThreadSwitch {
    thread_low: usize,
    outer: traphandlers::ActivationChain,
    done: bool,
}

impl ThreadSwitch {
    /// # Safety
    ///
    /// The caller switches to the fiber whose stack starts at `fiber_low`
    /// and whose chain of activations is `fiber_chain`, right after this.
    unsafe fn enter(fiber_low: usize, fiber_chain: &mut traphandlers::ActivationChain) -> Self {
        let (thread_low, _) = stack_low_and_tid();
        // SAFETY: per the contract: the fiber's stack and activations are
        // what the thread runs next, and `leave` or `drop` puts the
        // thread's own back before anything else runs on its stack.
        let outer = unsafe {
            set_stack_low(fiber_low);
            traphandlers::swap_activations(std::mem::take(fiber_chain))
        };
        ThreadSwitch {
            thread_low,
            outer,
            done: false,
        }
    }

    fn leave(mut self, fiber_chain: &mut traphandlers::ActivationChain) {
        // SAFETY: back on the thread's own stack: its own activations and
        // bottom are the ones to put back; the fiber's are kept for its
        // next resume.
        unsafe {
            *fiber_chain = traphandlers::swap_activations(std::mem::take(&mut self.outer));
            set_stack_low(self.thread_low);
        }
        self.done = true;
    }
}

impl Drop for ThreadSwitch {
    fn drop(&mut self) {
        if !self.done {
            // A panic out of the fiber, whose body has returned (by
            // unwinding): its activations are gone.
            // SAFETY: as in `leave`.
            unsafe {
                traphandlers::swap_activations(std::mem::take(&mut self.outer));
                set_stack_low(self.thread_low);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::pool::PoolLimits;

    fn pool(stacks: u32) -> Arc<InstancePool> {
        let limits = PoolLimits {
            total_core_instances: 0,
            total_memories: 0,
            total_tables: 0,
            total_stacks: stacks,
            stack_size: 64 << 10,
            zero_stacks: true,
            ..PoolLimits::default()
        };
        Arc::new(InstancePool::new(limits, 1 << 16).unwrap())
    }

    #[test]
    fn a_pooled_stack_comes_back_zeroed() {
        let pool = pool(1);
        let stack = pool.take_stack().unwrap();
        let (low, top) = (stack.low(), stack.base().get());
        // SAFETY: both addresses are in the stack's usable pages, which
        // nothing runs on.
        unsafe {
            *(low as *mut u8) = 0xAA;
            *((top - 1) as *mut u8) = 0xBB;
        }
        assert!(pool.take_stack().is_err(), "the only stack is taken");
        drop(stack);
        let again = pool.take_stack().unwrap();
        assert_eq!(again.low(), low);
        // SAFETY: as above.
        let bytes = unsafe { (*(low as *const u8), *((top - 1) as *const u8)) };
        assert_eq!(bytes, (0, 0));
    }

    #[test]
    fn a_fiber_runs_on_its_stack_and_returns() {
        let stack = FiberStack::new(64 << 10).unwrap();
        let (low, top) = (stack.low(), stack.base().get());
        let mut fiber = Fiber::new(stack, |_| {
            let marker = 0u8;
            std::hint::black_box(&marker) as *const u8 as usize
        });
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match Pin::new(&mut fiber).poll(&mut cx) {
            Poll::Ready(sp) => assert!(low < sp && sp < top, "{low:x} < {sp:x} < {top:x}"),
            Poll::Pending => panic!("the body does not suspend"),
        }
        assert!(fiber.done());
        assert!(fiber.into_stack().is_some());
    }
}
