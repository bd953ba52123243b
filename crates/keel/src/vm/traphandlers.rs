//! Entering wasm and getting out of it when it traps.
//!
//! Every call from the host into wasm goes through [`catch_traps`]: it sets
//! the store's stack limit, pushes a `CallThreadState` on this thread's
//! chain of activations and runs the call under `keel_call_with_catch`
//! (`__builtin_setjmp`). A trap comes back here by `keel_unwind`
//! (`__builtin_longjmp`),
//! from one of two places:
//!
//! - the signal handler, for a fault or a trap instruction in wasm code
//!   ([`handle_wasm_fault`]);
//! - a host function that returned an error or panicked ([`raise`]).
//!
//! Both capture the wasm backtrace first, by walking frame pointers, while
//! the wasm frames still exist. The frames skipped by the jump are wasm
//! frames and the host function's shim, which has no values left to drop
//! when it raises: no Rust destructor is ever skipped.
//!
//! Activations nest (host → wasm → host → wasm): a trap unwinds to the
//! innermost entry only.

use super::code_registry;
use super::sys::unix::thread::{STACK_SLACK, stack_low_and_tid};
use super::vmcontext::VMStoreContext;
use keel_environ::TrapKind;
use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::ffi::c_void;
use std::mem::MaybeUninit;

unsafe extern "C" {
    fn keel_call_with_catch(
        slot: *mut *mut c_void,
        body: unsafe extern "C" fn(*mut c_void),
        payload: *mut c_void,
    ) -> i32;
    fn keel_unwind(buf: *mut c_void) -> !;
}

/// Most frames a backtrace records; deeper ones are counted, not kept.
pub const MAX_BACKTRACE_FRAMES: usize = 256;

/// Why wasm stopped early.
pub enum UnwindReason {
    /// A wasm trap.
    Trap(TrapKind),
    /// A host function returned an error.
    User(anyhow::Error),
    /// A host function panicked; the panic resumes once back in the host.
    Panic(Box<dyn Any + Send>),
}

/// A trap, with the program counters of the wasm frames it went through
/// (innermost first).
pub struct TrapRecord {
    /// Why.
    pub reason: UnwindReason,
    /// Return addresses (and the faulting pc first, for a fault).
    pub pcs: Vec<usize>,
    /// Whether the first pc is the faulting instruction itself rather than
    /// a return address.
    pub first_pc_is_fault: bool,
    /// Frames beyond `MAX_BACKTRACE_FRAMES` that were not recorded.
    pub frames_elided: usize,
}

/// One activation of wasm on this thread. Kept small: it sits on the
/// native stack at every level of a wasm → host → wasm recursion.
struct CallThreadState {
    jmp_buf: Cell<*mut c_void>,
    /// An address in `catch_traps`'s frame: every wasm frame of this
    /// activation lies below it.
    entry_sp: usize,
    prev: *const CallThreadState,
    /// When this activation was entered by a host function that wasm of
    /// the previous activation called: that call's wasm-to-host trampoline
    /// frame, where the backtrace continues past the host frames. 0 when
    /// there is none.
    caller_exit_fp: usize,
    reason: UnsafeCell<Option<UnwindReason>>,
    /// The store whose wasm this activation runs.
    store_context: *mut VMStoreContext,
}

/// The backtrace being captured: written by the signal handler or `raise`
/// for the innermost activation, then copied out by its `catch_traps`
/// before anything can trap again, so one buffer per thread serves every
/// activation. Left uninitialized: only `pcs[..len]` is ever read.
struct BacktraceBuffer {
    pcs: UnsafeCell<[MaybeUninit<usize>; MAX_BACKTRACE_FRAMES]>,
    len: Cell<usize>,
    elided: Cell<usize>,
    first_pc_is_fault: Cell<bool>,
}

thread_local! {
    static CURRENT: Cell<*const CallThreadState> = const { Cell::new(std::ptr::null()) };
    static BACKTRACE: BacktraceBuffer = const {
        BacktraceBuffer {
            pcs: UnsafeCell::new([MaybeUninit::uninit(); MAX_BACKTRACE_FRAMES]),
            len: Cell::new(0),
            elided: Cell::new(0),
            first_pc_is_fault: Cell::new(false),
        }
    };
}

/// A thread's chain of activations, taken off the thread while the stack
/// they live on is not running: a suspended fiber's (see `vm/fiber.rs`),
/// or the thread's own while a fiber runs on it.
#[derive(Debug, Default)]
pub struct ActivationChain(usize);

impl ActivationChain {
    /// No activations.
    pub const EMPTY: ActivationChain = ActivationChain(0);
}

/// Makes `chain` this thread's chain of activations and returns the one it
/// replaces.
///
/// # Safety
///
/// Only at a stack switch: `chain` must be the one taken off when the
/// stack the thread is about to run was last switched away from (or empty
/// for a fresh stack), so that every activation on the chain is a live
/// frame of the stack the thread runs on next.
pub unsafe fn swap_activations(chain: ActivationChain) -> ActivationChain {
    let old = CURRENT.replace(chain.0 as *const CallThreadState);
    ActivationChain(old as usize)
}

/// Runs `f` (a call into wasm) so that a trap inside returns an error
/// instead of crashing.
///
/// # Safety
///
/// - `store_context` must point to the live `VMStoreContext` of the store
///   whose code `f` runs.
/// - `f` must own nothing with a destructor: if wasm traps, `f`'s frame is
///   skipped, not unwound.
pub unsafe fn catch_traps<F: FnOnce()>(
    store_context: *mut VMStoreContext,
    max_wasm_stack: usize,
    f: F,
) -> Result<(), Box<TrapRecord>> {
    let (stack_low, tid) = stack_low_and_tid();
    // The store context is only ever accessed through the raw pointer here:
    // generated code and `call_closure` write it while the call runs.
    // SAFETY: the caller guarantees the pointer is live.
    let (old_limit, old_exit_fp) = unsafe {
        (
            (*store_context).stack_limit,
            (*store_context).last_wasm_exit_fp,
        )
    };
    // Before anything runs: the pool trusts a clear flag to mean that no
    // guest code wrote the store's memories and tables.
    // SAFETY: as above.
    unsafe { (*store_context).wasm_entered = true };
    let marker = 0u8;
    let sp = &marker as *const u8 as usize;
    let prev = CURRENT.get();
    // SAFETY: activations on the chain are live frames of this thread.
    let prev_entry_sp = unsafe { prev.as_ref() }.map_or(usize::MAX, |p| p.entry_sp);
    // A nested entry of this store from a host function that its wasm
    // called: the trampoline frame lies between here and the previous
    // activation (a value outside that range is stale, from a call that has
    // returned).
    let caller_exit_fp =
        if old_limit != usize::MAX && sp < old_exit_fp && old_exit_fp < prev_entry_sp {
            old_exit_fp
        } else {
            0
        };
    // The limit counts wasm frames only: the outermost entry sets it
    // `max_wasm_stack` below itself; a nested entry from a host function
    // keeps the budget that was left when wasm called out, counted from
    // just before wasm is entered again (in `call_closure`), so the host
    // frames in between (several KiB in a debug build) are not charged to
    // the guest. Host frames still use real stack, which the floor
    // protects.
    let floor = if stack_low != 0 {
        stack_low + STACK_SLACK
    } else {
        0
    };
    // The outermost entry records this thread as the one running the
    // store's wasm, for a tick to signal (before any wasm runs: a tick that
    // protects the page later finds the thread, an earlier one's page makes
    // the entry check fault).
    // SAFETY: as above.
    let epoch_thread = unsafe { (*store_context).epoch_thread };
    // SAFETY: a non-null `epoch_thread` points into the store's epoch
    // state, which lives as long as the store context.
    let epoch_thread = unsafe { epoch_thread.as_ref() }.filter(|_| old_limit == usize::MAX);
    if let Some(thread) = epoch_thread {
        thread.store(tid, std::sync::atomic::Ordering::SeqCst);
    }
    let budget = if old_limit == usize::MAX {
        // SAFETY: as above.
        unsafe { (*store_context).stack_limit = sp.saturating_sub(max_wasm_stack).max(floor) };
        None
    } else if caller_exit_fp != 0 {
        Some(caller_exit_fp.saturating_sub(old_limit))
    } else {
        None
    };

    let state = CallThreadState {
        jmp_buf: Cell::new(std::ptr::null_mut()),
        entry_sp: sp,
        prev,
        caller_exit_fp,
        reason: UnsafeCell::new(None),
        store_context,
    };
    CURRENT.set(&state);

    /// What `call_closure` needs: the call, and for a nested entry the
    /// wasm stack budget to set the limit from.
    struct Payload<F> {
        f: Option<F>,
        ctx: *mut VMStoreContext,
        budget: Option<usize>,
        floor: usize,
    }
    unsafe extern "C" fn call_closure<F: FnOnce()>(payload: *mut c_void) {
        // SAFETY: `payload` is the `Payload<F>` below, alive for the call.
        let p = unsafe { &mut *payload.cast::<Payload<F>>() };
        if let Some(budget) = p.budget {
            let marker = 0u8;
            let sp = std::hint::black_box(&marker) as *const u8 as usize;
            // SAFETY: the store context is live (`catch_traps`' contract)
            // and no reference to it is held across this write.
            unsafe { (*p.ctx).stack_limit = sp.saturating_sub(budget).max(p.floor) };
        }
        if let Some(f) = p.f.take() {
            f();
        }
    }
    let mut payload = Payload {
        f: Some(f),
        ctx: store_context,
        budget,
        floor,
    };
    // SAFETY: the slot, body and payload are valid for the whole call; a
    // jump back lands inside `keel_call_with_catch`, whose frame is live.
    let completed = unsafe {
        keel_call_with_catch(
            state.jmp_buf.as_ptr(),
            call_closure::<F>,
            (&mut payload as *mut Payload<F>).cast(),
        )
    };

    CURRENT.set(state.prev);
    if let Some(thread) = epoch_thread {
        thread.store(0, std::sync::atomic::Ordering::SeqCst);
    }
    // SAFETY: as above; the call is over.
    unsafe {
        (*store_context).stack_limit = old_limit;
        (*store_context).last_wasm_exit_fp = old_exit_fp;
    }
    if completed == 1 {
        return Ok(());
    }
    let reason = state
        .reason
        .into_inner()
        .unwrap_or(UnwindReason::Trap(TrapKind::UnreachableCodeReached));
    // Copied out now, before anything can trap again on this thread.
    let (pcs, first_pc_is_fault, frames_elided) = BACKTRACE.with(|b| {
        // SAFETY: the capture for this activation is finished and nothing
        // else on this thread touches the buffer until the copy is done.
        let all = unsafe { &*b.pcs.get() };
        let pcs = all[..b.len.get()]
            .iter()
            // SAFETY: `capture_backtrace` initialized the first `len` entries.
            .map(|pc| unsafe { pc.assume_init() })
            .collect();
        (pcs, b.first_pc_is_fault.get(), b.elided.get())
    });
    Err(Box::new(TrapRecord {
        reason,
        pcs,
        first_pc_is_fault,
        frames_elided,
    }))
}

/// Records the wasm frames from `fp` upwards, then those of each enclosing
/// activation that a host function entered from wasm, across the host
/// frames in between. With `first_pc`, that pc (the faulting instruction)
/// comes first.
///
/// # Safety
///
/// `fp` must be the frame pointer of a wasm frame (or of a Keel trampoline
/// called by wasm) of `state`'s activation on this thread's live stack.
unsafe fn capture_backtrace(state: &CallThreadState, first_pc: Option<usize>, fp: usize) {
    BACKTRACE.with(|b| {
        // SAFETY: only this thread touches the buffer, and no reference to
        // it is held elsewhere during capture.
        let pcs = unsafe { &mut *b.pcs.get() };
        let mut len = 0;
        let mut elided = 0;
        let mut record = |pc: usize| {
            if len < MAX_BACKTRACE_FRAMES {
                pcs[len] = MaybeUninit::new(pc);
                len += 1;
            } else {
                elided += 1;
            }
        };
        if let Some(pc) = first_pc {
            record(pc);
        }
        let mut activation = state;
        let mut fp = fp;
        loop {
            // SAFETY: `fp` is a wasm or trampoline frame of `activation`
            // (per the contract, or its recorded trampoline frame).
            unsafe { walk_frames(fp, activation.entry_sp, &mut record) };
            // SAFETY: activations on the chain are live frames of this
            // thread.
            match unsafe { activation.prev.as_ref() } {
                Some(prev) if activation.caller_exit_fp != 0 => {
                    fp = activation.caller_exit_fp;
                    activation = prev;
                }
                _ => break,
            }
        }
        b.len.set(len);
        b.elided.set(elided);
        b.first_pc_is_fault.set(first_pc.is_some());
    });
}

/// Follows the frame-pointer chain from `fp` while return addresses are in
/// wasm function bodies and frames stay below `bound` (the activation's
/// entry), recording each return address.
///
/// # Safety
///
/// `fp` must be a frame pointer on this thread's live stack below `bound`.
unsafe fn walk_frames(mut fp: usize, bound: usize, record: &mut impl FnMut(usize)) {
    while fp != 0 && fp < bound {
        // SAFETY: `fp` is a frame pointer of a wasm frame or trampoline
        // below the activation's entry (the loop only continues past
        // frames whose return address is in wasm code, whose caller
        // maintains the chain); the saved frame pointer and return address
        // sit at `fp` and `fp + 8`.
        let (next_fp, ret) = unsafe { (*(fp as *const usize), *((fp + 8) as *const usize)) };
        if !code_registry::is_wasm_function_pc(ret.wrapping_sub(1)) {
            break;
        }
        record(ret);
        if next_fp <= fp {
            // Frames only ever get older going up; anything else is not a
            // chain to follow.
            break;
        }
        fp = next_fp;
    }
}

/// The first landing pad above `fp` in the innermost activation: follows
/// the frame-pointer chain from `fp` (a wasm frame, or the wasm-to-host
/// trampoline of a host function that throws) while return addresses are
/// in wasm functions, and stops at the first call site with a landing pad.
/// `None` when no frame of the activation catches.
///
/// # Safety
///
/// `fp` must be a frame pointer of a wasm frame (or of a Keel trampoline
/// called by wasm) of the innermost activation on this thread's live
/// stack, or 0.
pub unsafe fn find_handler(fp: usize) -> Option<super::exception::Handler> {
    let state = CURRENT.get();
    // SAFETY: activations on the chain are live frames of this thread.
    let bound = unsafe { state.as_ref() }?.entry_sp;
    let mut fp = fp;
    while fp != 0 && fp < bound {
        // SAFETY: as in `walk_frames`: `fp` is a frame of the activation,
        // whose saved frame pointer and return address sit at `fp` and
        // `fp + 8`.
        let (caller_fp, ret) = unsafe { (*(fp as *const usize), *((fp + 8) as *const usize)) };
        if !code_registry::is_wasm_function_pc(ret.wrapping_sub(1)) {
            return None;
        }
        if let Some((pc, frame_offset)) = code_registry::lookup_handler(ret) {
            return Some(super::exception::Handler {
                pc,
                sp: caller_fp.checked_sub(frame_offset as usize)?,
                fp: caller_fp,
            });
        }
        if caller_fp <= fp {
            return None;
        }
        fp = caller_fp;
    }
    None
}

/// Called by the signal handler: if `pc` is a trap site in Keel's code and
/// this thread is running wasm, records the trap and jumps to the entry.
/// Returns only when the fault is not Keel's.
///
/// # Safety
///
/// Must be called from a signal handler for a synchronous fault at `pc`
/// with frame pointer `fp`; `fuel_register` is the value the fault's
/// context holds in the fuel register, where the platform has one.
pub unsafe fn handle_wasm_fault(pc: usize, fp: usize, fuel_register: Option<i64>) {
    let state = CURRENT.get();
    if state.is_null() {
        return;
    }
    let Some(kind) = code_registry::lookup_trap(pc) else {
        return;
    };
    // SAFETY: `state` is the innermost live activation on this thread (it
    // is popped before `catch_traps` returns).
    let state = unsafe { &*state };
    // SAFETY: `pc` is in a wasm function and `fp` is its frame pointer: a
    // trap site always comes after the prologue has set the frame up.
    unsafe { capture_backtrace(state, Some(pc), fp) };
    // The count as of wasm's last charge, which it keeps in the register,
    // goes back to the store, as it would have on the way out (trap sites
    // are all in wasm function bodies, where the register holds the
    // count): a trapping guest is forgiven at most its current block.
    // SAFETY: the store context outlives the activation, and nothing holds
    // a reference into it while its wasm runs.
    unsafe {
        let ctx = state.store_context;
        if (*ctx).fuel_in_register
            && let Some(fuel) = fuel_register
        {
            (*ctx).fuel_consumed = fuel;
        }
    }
    // SAFETY: nothing else references the reason while wasm runs; the
    // previous value is `None`, so nothing is dropped here.
    unsafe { *state.reason.get() = Some(UnwindReason::Trap(kind)) };
    // SAFETY: the jump buffer belongs to the live `keel_call_with_catch`
    // frame of this activation.
    unsafe { keel_unwind(state.jmp_buf.get()) }
}

/// Whether a fault at `pc` on `address` is an epoch check of the running
/// store that found its interrupt page protected: the store's deadline has
/// passed, and the fault handler should send the thread to
/// [`epoch_check_resume`] rather than trap.
pub fn is_epoch_check_fault(pc: usize, address: usize) -> bool {
    let state = CURRENT.get();
    if state.is_null() {
        return false;
    }
    // SAFETY: `state` is the innermost live activation on this thread, and
    // its store context outlives it (`catch_traps`' contract).
    let page = unsafe { (*(*state).store_context).epoch_page } as usize;
    page != 0 && address == page && code_registry::lookup_trap(pc) == Some(TrapKind::EpochCheck)
}

/// Whether the interrupt signal, arriving with the thread at `pc`, should
/// send it to [`epoch_check_resume`]: the thread runs wasm of a store whose
/// deadline has passed, and `pc` is in compiled module code (a wasm
/// function body or a host-to-wasm trampoline), where every instruction
/// boundary is a place to stop: the resume stub preserves every register
/// and a trap skips only compiled frames. Anywhere else (host code, a
/// builtin, the wasm-to-host trampoline, another handler) the signal is
/// ignored; compiled code checks the interrupt page when it comes back.
///
/// Safe to call from a signal handler: it reads thread-locals that need no
/// initialization and never waits for a lock.
pub fn should_interrupt_at(pc: usize) -> bool {
    let state = CURRENT.get();
    if state.is_null() {
        return false;
    }
    // SAFETY: `state` is the innermost live activation on this thread; its
    // store context, and the interrupt word that points into the store's
    // epoch state, outlive it.
    let interrupted = unsafe {
        let ctx = (*state).store_context;
        !(*ctx).epoch_page.is_null()
            && (*(*ctx).epoch_interrupt).load(std::sync::atomic::Ordering::SeqCst) != 0
    };
    interrupted && code_registry::try_is_module_code_pc(pc)
}

/// Where the fault handler sends a thread whose epoch check faulted (see
/// [`is_epoch_check_fault`]), through the register-preserving stub
/// `keel_epoch_resume` that it makes the faulting code appear to call.
/// Asks the store what to do at its deadline: on `Continue` returns, and
/// the stub returns to the check, which runs again (and passes if the
/// deadline moved ahead); otherwise unwinds the activation as a trap at the
/// check.
///
/// # Safety
///
/// Only the stub calls this, with `frame` its frame pointer: the faulting
/// wasm frame's frame pointer is saved at `frame` and the faulting pc at
/// `frame + 8`, on a thread inside [`catch_traps`].
pub unsafe extern "C" fn epoch_check_resume(frame: usize) {
    let state = CURRENT.get();
    if state.is_null() {
        // Only a fault inside an activation is sent here.
        std::process::abort();
    }
    // SAFETY: as in `handle_wasm_fault`.
    let state = unsafe { &*state };
    // The stub's frame: the wasm frame pointer at `frame`, the pc it
    // returns to (where wasm stopped) at `frame + 8`.
    let return_slot = (frame + 8) as *mut usize;
    // SAFETY: per the contract.
    let (wasm_fp, pc) = unsafe { (*(frame as *const usize), *return_slot) };
    // SAFETY: the store context outlives the activation; its hooks point to
    // the store that owns them, which nothing else borrows while its wasm
    // runs (the same contract as the builtins').
    let answer = unsafe {
        match (*state.store_context).hooks {
            Some(hooks) => (*hooks.as_ptr()).new_epoch(),
            None => super::libcalls::Resume::Trap,
        }
    };
    let kind = match answer {
        super::libcalls::Resume::Continue => {
            // Stopped at a check (rather than anywhere by the signal): the
            // check has passed, as in Wasmtime, whatever the new deadline;
            // the stub returns past it. (A deadline already reached again
            // is caught at the next check or tick, so a callback answering
            // `Continue(0)` lets the guest go on rather than call it again
            // at the same place.)
            #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
            if code_registry::lookup_trap(pc) == Some(TrapKind::EpochCheck) {
                // SAFETY: `pc` is an epoch check site in loaded code.
                let len = unsafe { super::sys::unix::epoch_resume::epoch_check_len(pc) };
                if let Some(len) = len {
                    // SAFETY: the stub's return address, which it pops next.
                    unsafe { *return_slot = pc + len };
                }
            }
            return;
        }
        super::libcalls::Resume::Trap => TrapKind::Interrupt,
        super::libcalls::Resume::Fail => TrapKind::HostError,
    };
    // Stopped in a host-to-wasm trampoline (before its frame is set up or
    // after it is gone), `rbp` may be the host's, which need not be a frame
    // pointer: the backtrace is the pc alone.
    let wasm_fp = if code_registry::is_wasm_function_pc(pc) {
        wasm_fp
    } else {
        0
    };
    // SAFETY: `wasm_fp` is the frame pointer of the wasm function whose
    // check faulted, a live frame of this activation.
    unsafe { capture_backtrace(state, Some(pc), wasm_fp) };
    // SAFETY: as in `handle_wasm_fault`.
    unsafe { *state.reason.get() = Some(UnwindReason::Trap(kind)) };
    // SAFETY: as in `handle_wasm_fault`; the frames skipped are this one
    // (nothing left to drop), the stub's and wasm's.
    unsafe { keel_unwind(state.jmp_buf.get()) }
}

/// Unwinds the innermost activation with `reason`, from a host function
/// called by wasm whose wasm-to-host trampoline saved `exit_fp`.
///
/// # Safety
///
/// Must be called on a thread inside [`catch_traps`], from a host function
/// shim that has nothing left to drop. `exit_fp` must be the store's
/// `last_wasm_exit_fp` when that shim was entered from wasm (or 0).
pub unsafe fn raise(reason: UnwindReason, exit_fp: usize) -> ! {
    let state = CURRENT.get();
    if state.is_null() {
        // No activation: a shim was called outside `catch_traps`, which the
        // API never does. Aborting is the only sound option.
        std::process::abort();
    }
    // SAFETY: as in `handle_wasm_fault`.
    let state = unsafe { &*state };
    // SAFETY: `exit_fp` is the trampoline's frame pointer, whose frame
    // is still live below the host function (see the contract).
    unsafe { capture_backtrace(state, None, exit_fp) };
    // SAFETY: nothing else references the reason while the host runs.
    unsafe { *state.reason.get() = Some(reason) };
    // SAFETY: as in `handle_wasm_fault`.
    unsafe { keel_unwind(state.jmp_buf.get()) }
}

/// Calls `visit` with every word of this thread's stack between here and
/// the outermost wasm entry, and with the callee-saved registers: every
/// place a live wasm value can be while the host runs. Nothing is visited
/// when no wasm runs on this thread.
///
/// Values wasm keeps in caller-saved registers are dead across the call
/// that led here (the calling convention says so); callee-saved ones are
/// either still in their register (captured below) or saved by a callee in
/// a frame inside the scanned range.
#[inline(never)]
pub fn scan_stack_conservatively(visit: &mut dyn FnMut(usize)) {
    let mut top = 0usize;
    let mut state = CURRENT.get();
    while !state.is_null() {
        // SAFETY: activations on the chain are live frames of this thread.
        let s = unsafe { &*state };
        top = top.max(s.entry_sp);
        state = s.prev;
    }
    if top == 0 {
        return;
    }
    let regs = callee_saved_registers();
    let here = std::hint::black_box(&regs) as *const _ as usize;
    for r in regs {
        visit(r);
    }
    let mut addr = here & !7;
    while addr < top {
        // SAFETY: `here..top` is this thread's live stack (between this
        // frame and an older frame on the same stack), mapped and
        // machine-initialized; the word is read as an opaque integer and
        // never dereferenced.
        visit(unsafe { std::ptr::read_volatile(addr as *const usize) });
        addr += 8;
    }
}

/// The callee-saved general-purpose registers, as they are now.
#[inline(never)]
fn callee_saved_registers() -> [usize; 11] {
    let mut regs = [0usize; 11];
    let p = regs.as_mut_ptr();
    #[cfg(target_arch = "x86_64")]
    // SAFETY: stores six registers into the first six slots of `regs`,
    // which `p` points to; touches nothing else.
    unsafe {
        std::arch::asm!(
            "mov [{p}], rbx",
            "mov [{p} + 8], rbp",
            "mov [{p} + 16], r12",
            "mov [{p} + 24], r13",
            "mov [{p} + 32], r14",
            "mov [{p} + 40], r15",
            p = in(reg) p,
            options(nostack, preserves_flags),
        );
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: stores x19..x29 into the eleven slots of `regs`.
    unsafe {
        std::arch::asm!(
            "stp x19, x20, [{p}]",
            "stp x21, x22, [{p}, #16]",
            "stp x23, x24, [{p}, #32]",
            "stp x25, x26, [{p}, #48]",
            "stp x27, x28, [{p}, #64]",
            "str x29, [{p}, #80]",
            p = in(reg) p,
            options(nostack, preserves_flags),
        );
    }
    regs
}
