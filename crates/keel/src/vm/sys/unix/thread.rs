//! Per-thread setup: an alternate signal stack big enough for the trap
//! handler, and the bounds of the thread's stack.

use crate::vm::mmap::{Mmap, page_size};
use std::cell::RefCell;

/// Size of the alternate signal stack Keel installs when the thread has
/// none, or a smaller one.
const ALTSTACK_SIZE: usize = 64 * 1024;

/// Stack bytes kept free below the wasm stack limit for the host code that
/// wasm calls (and the signal handler when it runs without an alternate
/// stack).
pub const STACK_SLACK: usize = 128 * 1024;

/// What Keel knows about the current thread.
pub struct ThreadInfo {
    /// Lowest address of the thread's stack (0 if unknown).
    pub stack_low: usize,
    /// The thread's Linux thread id, which `tgkill` takes.
    pub tid: i32,
    altstack: Option<Mmap>,
}

impl Drop for ThreadInfo {
    fn drop(&mut self) {
        if let Some(stack) = &self.altstack {
            // SAFETY: disabling the alternate stack before unmapping it, on
            // the thread that installed it, so no handler can run on freed
            // memory. The null pointer means "do not report the old one".
            unsafe {
                let ss = libc::stack_t {
                    ss_sp: std::ptr::null_mut(),
                    ss_flags: libc::SS_DISABLE,
                    ss_size: ALTSTACK_SIZE,
                };
                let mut current: libc::stack_t = std::mem::zeroed();
                libc::sigaltstack(std::ptr::null(), &mut current);
                // Only disable it if it is still ours.
                if current.ss_sp == stack.as_ptr().add(page_size()).cast() {
                    libc::sigaltstack(&ss, std::ptr::null_mut());
                }
            }
        }
    }
}

thread_local! {
    static THREAD: RefCell<Option<ThreadInfo>> = const { RefCell::new(None) };
}

thread_local! {
    /// `(stack_low, tid)` once the thread is set up: a plain value with no
    /// destructor, so reading it on every entry into wasm is one load.
    static STACK_AND_TID: std::cell::Cell<(usize, i32)> = const { std::cell::Cell::new((0, 0)) };
}

/// This thread's stack bottom and thread id, setting the thread up on first
/// use.
#[inline]
pub fn stack_low_and_tid() -> (usize, i32) {
    let cached = STACK_AND_TID.get();
    if cached.1 != 0 {
        return cached;
    }
    let info = with_thread_info(|t| (t.stack_low, t.tid));
    STACK_AND_TID.set(info);
    info
}

/// Records `low` as the bottom of the stack this thread now runs on: a
/// fiber's while it runs (see `vm/fiber.rs`), the thread's own again after.
/// The thread must have been set up ([`stack_low_and_tid`] called).
///
/// # Safety
///
/// `low` must be the bottom of the stack the thread runs wasm on until the
/// next call: the wasm stack limit is computed from it, and a wrong one
/// lets wasm run past the end of its stack.
pub unsafe fn set_stack_low(low: usize) {
    let (_, tid) = STACK_AND_TID.get();
    STACK_AND_TID.set((low, tid));
}

/// Runs `f` with this thread's info, setting the thread up on first use.
#[cold]
fn with_thread_info<R>(f: impl FnOnce(&ThreadInfo) -> R) -> R {
    THREAD.with(|t| {
        let mut t = t.borrow_mut();
        let info = t.get_or_insert_with(|| ThreadInfo {
            stack_low: stack_low(),
            // SAFETY: gettid has no preconditions.
            tid: unsafe { libc::gettid() },
            altstack: install_altstack(),
        });
        f(info)
    })
}

fn stack_low() -> usize {
    // SAFETY: `attr` is initialized by `pthread_getattr_np` before use and
    // destroyed after; the out-pointers are valid locals.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return 0;
        }
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let r = libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        if r != 0 { 0 } else { addr as usize }
    }
}

/// Installs an alternate signal stack unless one of at least
/// `ALTSTACK_SIZE` is already there. Returns the mapping if it installed one.
fn install_altstack() -> Option<Mmap> {
    // SAFETY: querying the current alternate stack into a local.
    let current = unsafe {
        let mut current: libc::stack_t = std::mem::zeroed();
        if libc::sigaltstack(std::ptr::null(), &mut current) != 0 {
            return None;
        }
        current
    };
    if current.ss_flags & libc::SS_DISABLE == 0 && current.ss_size >= ALTSTACK_SIZE {
        return None;
    }
    // A guard page below the stack turns an overflow of the handler into a
    // crash rather than silent corruption.
    let mut mmap = Mmap::reserve(ALTSTACK_SIZE + page_size()).ok()?;
    mmap.make_accessible(page_size(), ALTSTACK_SIZE).ok()?;
    let ss = libc::stack_t {
        // SAFETY: the offset is inside the mapping.
        ss_sp: unsafe { mmap.as_ptr().add(page_size()) }.cast(),
        ss_flags: 0,
        ss_size: ALTSTACK_SIZE,
    };
    // SAFETY: `ss` describes a mapping that lives as long as this thread's
    // `ThreadInfo`, whose drop disables it first.
    if unsafe { libc::sigaltstack(&ss, std::ptr::null_mut()) } != 0 {
        return None;
    }
    Some(mmap)
}
