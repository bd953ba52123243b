//! Wasm exceptions at run time: the objects `exnref` points to, and the
//! jump that delivers a thrown exception to the wasm frame that catches it.
//!
//! Generated code creates an object with the `exn_new` builtin, writes its
//! fields and then either jumps to a landing pad of its own function or
//! calls `throw_ref`, which finds the first calling frame whose call site
//! has a landing pad ([`super::traphandlers::find_handler`]) and jumps
//! there with [`resume_at_handler`]. Landing pads do the tag matching, so
//! the search is only "which call site has a pad". The frames skipped are
//! wasm frames and the builtin's (or a host function shim's), which own
//! nothing with a destructor by then: the same rule as a trap's jump.

use super::val_raw::ValRaw;
use super::vmcontext::VMTagDefinition;

/// An exception: what `exnref` points to. Immutable once thrown (generated
/// code writes the fields between `exn_new` and the throw, before anything
/// else can see it).
#[repr(C)]
#[derive(Debug)]
pub struct ExnObject {
    /// The identity of its tag (`vm_exception::TAG`).
    tag: *const VMTagDefinition,
    /// Its fields (`vm_exception::FIELDS`), `len` of them, owned.
    fields: *mut ValRaw,
    len: usize,
    /// The store that owns it (an opaque id, 0 until adopted): its fields
    /// hold that store's references, meaningless in any other.
    owner: u64,
}

// SAFETY: the fields are owned by the object and only written before it is
// shared; the tag pointer is an identity, read through only by the store
// that owns the tag (which outlives its exceptions' use in wasm).
unsafe impl Send for ExnObject {}
// SAFETY: as above: shared access only reads.
unsafe impl Sync for ExnObject {}

impl ExnObject {
    /// An exception of the tag at `tag` with `fields`.
    pub fn new(tag: *const VMTagDefinition, fields: Vec<ValRaw>) -> ExnObject {
        let fields = fields.into_boxed_slice();
        let len = fields.len();
        ExnObject {
            tag,
            fields: Box::into_raw(fields).cast::<ValRaw>(),
            len,
            owner: 0,
        }
    }

    /// The id of the store that owns it.
    pub fn owner(&self) -> u64 {
        self.owner
    }

    /// Gives it to the store with id `owner`, before it is shared.
    pub fn set_owner(&mut self, owner: u64) {
        self.owner = owner;
    }

    /// The bytes it takes, for the store's accounting.
    pub fn size(&self) -> usize {
        std::mem::size_of::<ExnObject>() + self.len * std::mem::size_of::<ValRaw>()
    }

    /// The identity of its tag.
    pub fn tag(&self) -> *const VMTagDefinition {
        self.tag
    }

    /// Its fields.
    pub fn fields(&self) -> &[ValRaw] {
        // SAFETY: `fields` owns `len` initialized values (from `new`).
        unsafe { std::slice::from_raw_parts(self.fields, self.len) }
    }
}

impl Drop for ExnObject {
    fn drop(&mut self) {
        let slice = std::ptr::slice_from_raw_parts_mut(self.fields, self.len);
        // SAFETY: `fields` came from `Box::into_raw` of a boxed slice of
        // `len` values in `new`, and is released once, here.
        drop(unsafe { Box::from_raw(slice) });
    }
}

/// Where a caught exception resumes: a landing pad, with the stack and
/// frame pointers of the frame it belongs to.
#[derive(Copy, Clone, Debug)]
pub struct Handler {
    /// The landing pad.
    pub pc: usize,
    /// The frame's stack pointer at the call that caught.
    pub sp: usize,
    /// The frame's frame pointer.
    pub fp: usize,
}

/// Whether this platform can deliver exceptions to wasm handlers.
pub fn exceptions_supported() -> bool {
    cfg!(target_arch = "x86_64")
}

/// Jumps to `handler` with the exception object in the first payload
/// register and `fuel` in the fuel register. Cranelift's exceptional
/// edges from `tail`-convention calls assume every other register
/// clobbered, so nothing else is restored.
///
/// # Safety
///
/// `handler` must come from [`super::traphandlers::find_handler`] for the
/// running activation, with nothing found since that frames were pushed
/// or popped; every frame above the handler's (this one included) must
/// own nothing with a destructor. `exn` must be a live exception object of
/// the store whose wasm runs, and `fuel` its fuel count.
#[cfg(target_arch = "x86_64")]
pub unsafe fn resume_at_handler(handler: Handler, exn: *const ExnObject, fuel: i64) -> ! {
    // SAFETY: per the contract, the handler's frame is live and expects
    // exactly this state: its stack and frame pointers, the payload in
    // `rax` (and `rdx`, unused), the fuel count in `r15` (Cranelift's
    // pinned register, where `Tunables::fuel_in_register` keeps it).
    unsafe {
        std::arch::asm!(
            "mov rsp, rcx",
            "mov rbp, rsi",
            "jmp rdi",
            in("rax") exn,
            in("rdx") 0usize,
            in("rcx") handler.sp,
            in("rsi") handler.fp,
            in("rdi") handler.pc,
            in("r15") fuel,
            options(noreturn, nostack),
        )
    }
}

/// Elsewhere exceptions are refused by `Config` before any code runs.
///
/// # Safety
///
/// Never called: see the x86-64 version.
#[cfg(not(target_arch = "x86_64"))]
pub unsafe fn resume_at_handler(_handler: Handler, _exn: *const ExnObject, _fuel: i64) -> ! {
    std::process::abort()
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_environ::vm_exception;
    use std::mem::offset_of;

    #[test]
    fn object_layout_matches() {
        assert_eq!(offset_of!(ExnObject, tag) as u32, vm_exception::TAG);
        assert_eq!(offset_of!(ExnObject, fields) as u32, vm_exception::FIELDS);
    }
}
