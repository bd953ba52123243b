//! Loading compiled text into executable memory.

use super::code_registry::CodeObject;
use super::lazy::{LazyCode, LazyCompiler};
use super::libcalls::libcall_address;
use super::mmap::{FileCopy, Mmap};
use keel_environ::{CompiledModuleInfo, LAZY_PAGE, Module};
use std::io;
use std::sync::Arc;

/// Copies `text` into fresh pages, writes the load-time relocations, and
/// makes the pages executable (no longer writable).
pub fn load_code(
    text: &[u8],
    info: CompiledModuleInfo,
    module: Arc<Module>,
) -> io::Result<CodeObject> {
    let mmap = Mmap::populated(text.len())?;
    // SAFETY: the mapping is fresh, read-write, at least `text.len()` bytes,
    // and not shared with anything yet.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), mmap.as_ptr(), text.len());
    }
    finish_loading(mmap, text.len(), info, module)
}

/// Maps `len` bytes of `file` from page-aligned `offset` as text, copy on
/// write (the relocations' pages become private, the rest stay shared with
/// the page cache), writes the load-time relocations, and makes the pages
/// executable.
pub fn load_code_from_file(
    file: &std::fs::File,
    offset: u64,
    len: usize,
    info: CompiledModuleInfo,
    module: Arc<Module>,
) -> io::Result<CodeObject> {
    use std::os::fd::AsFd;
    let reserved = super::mmap::round_up_to_page(len.max(1))
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut mmap = Mmap::reserve(reserved)?;
    // Whole pages (the file goes on past the text, or the last page's tail
    // reads as zeros).
    mmap.map_file_private(0, reserved, file.as_fd(), offset)?;
    finish_loading(mmap, len, info, module)
}

/// Makes the `len` bytes of text at page-aligned `offset` in `copy`
/// executable where they are (no copy), after writing the load-time
/// relocations; the pages before the text are unmapped, and bytes after
/// it in its last page are zeroed.
pub fn load_code_in_place(
    copy: FileCopy,
    offset: usize,
    len: usize,
    info: CompiledModuleInfo,
    module: Arc<Module>,
) -> io::Result<CodeObject> {
    let mmap = copy.into_pages_from(offset)?;
    if len > mmap.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "text past the end of the artifact",
        ));
    }
    // SAFETY: `len..mmap.len()` is inside the mapping, which is writable
    // and owned here alone.
    unsafe { std::ptr::write_bytes(mmap.as_ptr().add(len), 0, mmap.len() - len) };
    finish_loading(mmap, len, info, module)
}

/// Loads the text of a lazily compiled module (see `vm/lazy.rs`): maps
/// the text executable, its stubs' slots after it (at `slots_offset`)
/// writable, and reserves `area_len` bytes after them for the bodies
/// `compiler` will compile.
pub fn load_lazy_code(
    text: &[u8],
    info: CompiledModuleInfo,
    module: Arc<Module>,
    slots_offset: usize,
    area_len: usize,
    compiler: Box<dyn LazyCompiler>,
) -> io::Result<CodeObject> {
    let page = LAZY_PAGE as usize;
    let unsupported = |what: &str| io::Error::new(io::ErrorKind::Unsupported, what.to_string());
    #[cfg(all(unix, target_arch = "x86_64"))]
    let entry = super::sys::unix::lazy_entry::lazy_entry_address();
    #[cfg(not(all(unix, target_arch = "x86_64")))]
    let entry: usize = return Err(unsupported("lazy compilation needs x86-64"));
    if super::mmap::page_size() != page {
        return Err(unsupported("lazy compilation needs 4 KiB pages"));
    }
    if slots_offset < text.len() || !slots_offset.is_multiple_of(page) {
        return Err(unsupported("the stubs' slots overlap the text"));
    }
    let slots_len = 8 * (info.functions.len() + 1);
    let area_offset = (slots_offset + slots_len).next_multiple_of(page);
    let area_len = area_len.next_multiple_of(page);
    let lazy = LazyCode::new(
        compiler,
        info.functions.len(),
        slots_offset,
        area_offset,
        area_len,
    );
    let mut mmap = Mmap::reserve(area_offset + area_len)?;
    mmap.make_accessible(0, area_offset)?;
    // SAFETY: the first `area_offset >= text.len()` bytes of the fresh
    // mapping are writable and shared with nothing yet.
    unsafe { std::ptr::copy_nonoverlapping(text.as_ptr(), mmap.as_ptr(), text.len()) };
    write_relocations(&mmap, text.len(), &info)?;
    mmap.make_executable(0, slots_offset)?;
    let code = CodeObject::new_lazy(mmap, text.len(), info, module, lazy);
    if let Some(lazy) = &code.lazy {
        lazy.init_slots(&code, entry);
    }
    Ok(code)
}

/// Writes the load-time relocations into the `text_len` bytes of text at
/// the start of the writable `mmap`.
fn write_relocations(mmap: &Mmap, text_len: usize, info: &CompiledModuleInfo) -> io::Result<()> {
    for r in &info.relocations {
        let offset = r.offset as usize;
        if offset.checked_add(8).is_none_or(|end| end > text_len) {
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
    Ok(())
}

/// Writes the relocations into the `text_len` bytes of text at the start
/// of the writable `mmap` and makes it executable.
fn finish_loading(
    mut mmap: Mmap,
    text_len: usize,
    info: CompiledModuleInfo,
    module: Arc<Module>,
) -> io::Result<CodeObject> {
    write_relocations(&mmap, text_len, &info)?;
    let len = mmap.len();
    mmap.make_executable(0, len)?;
    flush_icache(&mmap);
    Ok(CodeObject::new(mmap, text_len, info, module))
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
