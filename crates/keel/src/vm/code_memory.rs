//! Loading compiled text into executable memory.

use super::code_registry::CodeObject;
use super::libcalls::libcall_address;
use super::mmap::Mmap;
use keel_environ::{CompiledModuleInfo, Module};
use std::io;
use std::sync::Arc;

/// Copies `text` into fresh pages, writes the load-time relocations, and
/// makes the pages executable (no longer writable).
pub fn load_code(
    text: &[u8],
    info: CompiledModuleInfo,
    module: Arc<Module>,
) -> io::Result<CodeObject> {
    let mut mmap = Mmap::accessible(text.len())?;
    // SAFETY: the mapping is fresh, read-write, at least `text.len()` bytes,
    // and not shared with anything yet.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), mmap.as_ptr(), text.len());
    }
    for r in &info.relocations {
        let offset = r.offset as usize;
        if offset.checked_add(8).is_none_or(|end| end > text.len()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "relocation outside text",
            ));
        }
        let value = (libcall_address(r.target) as i64).wrapping_add(r.addend) as u64;
        // SAFETY: checked above that the 8 bytes are inside the mapping,
        // which is still writable.
        unsafe {
            std::ptr::write_unaligned(mmap.as_ptr().add(offset).cast::<u64>(), value);
        }
    }
    let len = mmap.len();
    mmap.make_executable(0, len)?;
    flush_icache(&mmap);
    Ok(CodeObject::new(mmap, text.len(), info, module))
}

/// Makes the instruction cache see what was written to `mmap`. Takes the
/// mapping rather than a raw range so that the range is always one we own.
#[cfg(target_arch = "aarch64")]
fn flush_icache(mmap: &Mmap) {
    unsafe extern "C" {
        fn __clear_cache(start: *mut libc::c_char, end: *mut libc::c_char);
    }
    let start = mmap.as_ptr();
    // SAFETY: `start..start + len` is exactly the live mapping `mmap`;
    // `__clear_cache` only synchronizes caches for it.
    unsafe { __clear_cache(start.cast(), start.add(mmap.len()).cast()) }
}

/// Makes the instruction cache see what was written to `mmap`.
#[cfg(not(target_arch = "aarch64"))]
fn flush_icache(_mmap: &Mmap) {
    // x86-64 keeps instruction and data caches coherent.
}

/// Maps a small piece of position-independent code (a trampoline)
/// executable.
pub fn load_trampoline(code: &[u8]) -> io::Result<Mmap> {
    let mut mmap = Mmap::accessible(code.len())?;
    // SAFETY: fresh writable mapping of at least `code.len()` bytes.
    unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), mmap.as_ptr(), code.len()) };
    let len = mmap.len();
    mmap.make_executable(0, len)?;
    flush_icache(&mmap);
    Ok(mmap)
}
