//! The process-wide signal handlers: one for SIGSEGV, SIGBUS, SIGILL and
//! SIGFPE, one for the interrupt signal a tick sends (`SIGURG`).
//!
//! When a faulting instruction is a trap site in Keel's code and the
//! thread is inside `catch_traps`, the handler records the trap and jumps
//! back to the entry point. A fault at an epoch check, or the interrupt
//! signal finding wasm past its deadline, instead sends the thread to the
//! resume stub (`epoch_resume.rs`). Anything else is handed to whatever
//! handler was installed before (Rust's stack-overflow reporter, a
//! profiler, the default action), so Keel never swallows a signal that is
//! not its own.

use crate::vm::traphandlers::handle_wasm_fault;
use std::cell::UnsafeCell;
use std::sync::Once;

/// The signal a tick sends to a thread running wasm past its store's
/// deadline (see `vm/epoch.rs`). `SIGURG` is ignored by default, and
/// runtimes that preempt threads by signal (Go's) use it for the same
/// purpose.
pub const INTERRUPT_SIGNAL: libc::c_int = libc::SIGURG;

/// The signals Keel handles: the four faults, then the interrupt signal.
const SIGNALS: [libc::c_int; 5] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    INTERRUPT_SIGNAL,
];

/// The handlers that were installed before ours, indexed like `SIGNALS`.
struct Previous(UnsafeCell<[Option<libc::sigaction>; 5]>);

// SAFETY: written once inside `Once::call_once` before our handlers are
// installed, only read afterwards.
unsafe impl Sync for Previous {}

static PREVIOUS: Previous = Previous(UnsafeCell::new([None; 5]));

/// Sends the interrupt signal to thread `tid` of this process. A thread
/// that has exited, or one whose id was reused by another thread of this
/// process, is harmless to signal: the handler ignores a signal that does
/// not find wasm past its deadline.
pub fn send_interrupt(tid: i32) {
    // SAFETY: `tgkill` has no memory-safety preconditions; it fails
    // harmlessly for a thread that no longer exists.
    unsafe {
        libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, INTERRUPT_SIGNAL);
    }
}

/// Installs the handlers once per process.
pub fn install_signal_handlers() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        for (i, &signum) in SIGNALS.iter().enumerate() {
            let (handler, flags) = if signum == INTERRUPT_SIGNAL {
                // SA_RESTART: a host function's system call that the
                // signal interrupts is restarted rather than failing with
                // EINTR.
                (interrupt_handler as *const () as usize, libc::SA_RESTART)
            } else {
                // SA_NODEFER: the handler may jump out instead of
                // returning, and must not leave the signal blocked when it
                // does.
                (trap_handler as *const () as usize, libc::SA_NODEFER)
            };
            // SAFETY: `sigaction` structs are plain data; zeroed is a valid
            // empty mask. We record the previous action before installing
            // ours, inside `call_once`, so no handler reads it concurrently.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = handler;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | flags;
                libc::sigemptyset(&mut action.sa_mask);
                let mut previous: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(signum, &action, &mut previous) == 0 {
                    (*PREVIOUS.0.get())[i] = Some(previous);
                }
            }
        }
    });
}

/// The faulting program counter and frame pointer from a signal context.
///
/// # Safety
///
/// `context` must be the `ucontext_t` the kernel passed to the handler.
unsafe fn pc_and_fp(context: *mut libc::c_void) -> (usize, usize) {
    let cx = context.cast::<libc::ucontext_t>();
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        // SAFETY: the caller guarantees `cx` is the kernel's context.
        let gregs = unsafe { &(*cx).uc_mcontext.gregs };
        (
            gregs[libc::REG_RIP as usize] as usize,
            gregs[libc::REG_RBP as usize] as usize,
        )
    }
    #[cfg(all(target_os = "linux", target_arch = "aarch64"))]
    {
        // SAFETY: the caller guarantees `cx` is the kernel's context.
        let mc = unsafe { &(*cx).uc_mcontext };
        (mc.pc as usize, mc.regs[29] as usize)
    }
}

/// The fuel register (`Tunables::fuel_in_register`) from a signal context,
/// where the platform has one.
///
/// # Safety
///
/// `context` must be the `ucontext_t` the kernel passed to the handler.
unsafe fn fuel_register(context: *mut libc::c_void) -> Option<i64> {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        let cx = context.cast::<libc::ucontext_t>();
        // SAFETY: the caller guarantees `cx` is the kernel's context.
        Some(unsafe { (*cx).uc_mcontext.gregs[libc::REG_R15 as usize] })
    }
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    {
        let _ = context;
        None
    }
}

/// The handler of [`INTERRUPT_SIGNAL`]: sends a thread it finds in wasm
/// past its deadline to the runtime, as a faulted epoch check would;
/// otherwise hands the signal on.
unsafe extern "C" fn interrupt_handler(
    signum: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid context to an SA_SIGINFO handler.
    let (pc, _) = unsafe { pc_and_fp(context) };
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    if crate::vm::traphandlers::should_interrupt_at(pc) {
        // SAFETY: the thread is stopped at an instruction boundary in
        // compiled module code, which resumes like a faulted check.
        unsafe { super::epoch_resume::redirect_to_resume(context, pc) };
        return;
    }
    // SAFETY: the kernel's arguments, handed on.
    unsafe { call_previous(signum, info, context) };
}

unsafe extern "C" fn trap_handler(
    signum: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid context to an SA_SIGINFO handler.
    let (pc, fp) = unsafe { pc_and_fp(context) };
    // An epoch check that found its store's interrupt page protected:
    // not a trap, but a call into the runtime from the check.
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    if signum == libc::SIGSEGV || signum == libc::SIGBUS {
        // SAFETY: the kernel passes valid siginfo for a fault.
        let address = unsafe { (*info).si_addr() } as usize;
        if crate::vm::traphandlers::is_epoch_check_fault(pc, address) {
            // SAFETY: a fault at an epoch check in wasm code (checked
            // above), with the kernel's context.
            unsafe { super::epoch_resume::redirect_to_resume(context, pc) };
            return;
        }
    }
    // SAFETY: the kernel's context, as above.
    let fuel = unsafe { fuel_register(context) };
    // SAFETY: we are in a signal handler for a fault at `pc` with frame
    // pointer `fp` and the fuel register's value `fuel`;
    // `handle_wasm_fault` only returns if the fault is not a trap of
    // Keel's code.
    unsafe { handle_wasm_fault(pc, fp, fuel) };
    // SAFETY: the kernel's arguments, handed on.
    unsafe { call_previous(signum, info, context) };
}

/// Hands a signal that is not Keel's to the handler installed before ours.
///
/// # Safety
///
/// Must be called from our handler of `signum` with the kernel's arguments.
unsafe fn call_previous(
    signum: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    let Some(i) = SIGNALS.iter().position(|s| *s == signum) else {
        return;
    };
    // SAFETY: written before our handler was installed (see `PREVIOUS`).
    let Some(previous) = (unsafe { (*PREVIOUS.0.get())[i] }) else {
        return;
    };
    if previous.sa_flags & libc::SA_SIGINFO != 0 {
        let f: unsafe extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            // SAFETY: with SA_SIGINFO, `sa_sigaction` is a three-argument
            // handler installed by someone else.
            unsafe { std::mem::transmute(previous.sa_sigaction) };
        // SAFETY: calling the previous handler as the kernel would have.
        unsafe { f(signum, info, context) };
    } else if previous.sa_sigaction == libc::SIG_DFL || previous.sa_sigaction == libc::SIG_IGN {
        if signum == INTERRUPT_SIGNAL {
            // Ignored, as SIGURG is by default.
            return;
        }
        // Restore the previous disposition and return: the instruction
        // faults again and the default action (usually a core dump) runs.
        // SAFETY: reinstalling a disposition that was installed before.
        unsafe { libc::sigaction(signum, &previous, std::ptr::null_mut()) };
    } else {
        let f: unsafe extern "C" fn(libc::c_int) =
            // SAFETY: without SA_SIGINFO, `sa_sigaction` is a one-argument
            // handler.
            unsafe { std::mem::transmute(previous.sa_sigaction) };
        // SAFETY: calling the previous handler as the kernel would have.
        unsafe { f(signum) };
    }
}
