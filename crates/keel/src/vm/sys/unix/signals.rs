//! The process-wide handler for SIGSEGV, SIGBUS, SIGILL and SIGFPE.
//!
//! When the faulting instruction is a trap site in Keel's code and the
//! thread is inside `catch_traps`, the handler records the trap and jumps
//! back to the entry point. Anything else is handed to whatever handler was
//! installed before (Rust's stack-overflow reporter, a profiler, the
//! default action), so Keel never swallows a crash that is not its own.

use crate::vm::traphandlers::handle_wasm_fault;
use std::cell::UnsafeCell;
use std::sync::Once;

const SIGNALS: [libc::c_int; 4] = [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE];

/// The handlers that were installed before ours, indexed like `SIGNALS`.
struct Previous(UnsafeCell<[Option<libc::sigaction>; 4]>);

// SAFETY: written once inside `Once::call_once` before our handlers are
// installed, only read afterwards.
unsafe impl Sync for Previous {}

static PREVIOUS: Previous = Previous(UnsafeCell::new([None; 4]));

/// Installs the handlers once per process.
pub fn install_signal_handlers() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        for (i, &signum) in SIGNALS.iter().enumerate() {
            // SAFETY: `sigaction` structs are plain data; zeroed is a valid
            // empty mask. We record the previous action before installing
            // ours, inside `call_once`, so no handler reads it concurrently.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = trap_handler as *const () as usize;
                // SA_NODEFER: the handler may jump out instead of returning,
                // and must not leave the signal blocked when it does.
                action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
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

unsafe extern "C" fn trap_handler(
    signum: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid context to an SA_SIGINFO handler.
    let (pc, fp) = unsafe { pc_and_fp(context) };
    // SAFETY: we are in a signal handler for a fault at `pc` with frame
    // pointer `fp`; `handle_wasm_fault` only returns if the fault is not
    // a trap of Keel's code.
    unsafe { handle_wasm_fault(pc, fp) };

    // Not ours: hand the signal to the previous handler.
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
