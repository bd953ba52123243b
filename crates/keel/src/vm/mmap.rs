//! Memory mappings: the only place that calls `mmap`, `mprotect`,
//! `madvise` and `munmap`.

use std::io;
use std::ptr::NonNull;
use std::sync::OnceLock;

/// The host page size.
pub fn page_size() -> usize {
    static PAGE_SIZE: OnceLock<usize> = OnceLock::new();
    *PAGE_SIZE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(size).unwrap_or(4096)
    })
}

/// Rounds `n` up to a multiple of the page size.
pub fn round_up_to_page(n: usize) -> Option<usize> {
    let p = page_size();
    n.checked_add(p - 1).map(|n| n & !(p - 1))
}

/// An owned, page-aligned anonymous mapping. Unmapped on drop.
///
/// Invariant: `ptr..ptr+len` is a mapping this value created and nothing
/// else unmaps.
#[derive(Debug)]
pub struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; moving the owner
// to another thread moves nothing but the address.
unsafe impl Send for Mmap {}
// SAFETY: `&Mmap` only exposes the address and length.
unsafe impl Sync for Mmap {}

impl Mmap {
    /// Reserves `len` bytes (rounded up to pages) of inaccessible address
    /// space. Costs no memory until parts are made accessible and touched.
    pub fn reserve(len: usize) -> io::Result<Mmap> {
        Self::map(len, libc::PROT_NONE, 0)
    }

    /// Maps `len` bytes (rounded up to pages) of zeroed read-write memory.
    pub fn accessible(len: usize) -> io::Result<Mmap> {
        Self::map(len, libc::PROT_READ | libc::PROT_WRITE, 0)
    }

    /// Maps `len` bytes (rounded up to pages) of zeroed read-write memory
    /// whose pages are all allocated at once: for memory about to be
    /// written whole, one system call instead of a page fault per page
    /// (on this project's machines, a third of the time of copying text in).
    pub fn populated(len: usize) -> io::Result<Mmap> {
        Self::map(len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_POPULATE)
    }

    fn map(len: usize, prot: i32, flags: i32) -> io::Result<Mmap> {
        let len = round_up_to_page(len.max(1))
            .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
        // SAFETY: a fresh anonymous private mapping at an address the
        // kernel chooses cannot overlap anything Rust owns.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | flags,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr =
            NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::from(io::ErrorKind::Other))?;
        Ok(Mmap { ptr, len })
    }

    /// The first byte.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether `start..start+len` is a page-aligned range inside the mapping.
    fn check_range(&self, start: usize, len: usize) -> io::Result<()> {
        let p = page_size();
        let ok = start.is_multiple_of(p)
            && len.is_multiple_of(p)
            && start.checked_add(len).is_some_and(|end| end <= self.len);
        if ok {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "range outside mapping",
            ))
        }
    }

    fn protect(&mut self, start: usize, len: usize, prot: i32) -> io::Result<()> {
        // SAFETY: `&mut self`: no other holder relies on the range.
        unsafe { self.protect_shared(start, len, prot) }
    }

    /// Changes the protection of a page-aligned range of a mapping that
    /// others may hold.
    ///
    /// # Safety
    ///
    /// Nothing may be reading, writing or running the range, or rely on
    /// its protection, while it changes.
    unsafe fn protect_shared(&self, start: usize, len: usize, prot: i32) -> io::Result<()> {
        self.check_range(start, len)?;
        if len == 0 {
            return Ok(());
        }
        // SAFETY: the range is inside our own mapping (checked above).
        let r = unsafe { libc::mprotect(self.ptr.as_ptr().add(start).cast(), len, prot) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Makes a page-aligned range readable and writable.
    pub fn make_accessible(&mut self, start: usize, len: usize) -> io::Result<()> {
        self.protect(start, len, libc::PROT_READ | libc::PROT_WRITE)
    }

    /// Maps `len` bytes of `fd` from page-aligned `file_offset`,
    /// copy-on-write and read-write, at page-aligned `start`, replacing
    /// what was there. Writes go to private pages; the file never changes.
    pub fn map_file_private(
        &mut self,
        start: usize,
        len: usize,
        fd: std::os::fd::BorrowedFd<'_>,
        file_offset: u64,
    ) -> io::Result<()> {
        self.map_file(
            start,
            len,
            fd,
            file_offset,
            libc::PROT_READ | libc::PROT_WRITE,
        )
    }

    /// [`Mmap::map_file_private`] with another protection.
    fn map_file(
        &mut self,
        start: usize,
        len: usize,
        fd: std::os::fd::BorrowedFd<'_>,
        file_offset: u64,
        prot: i32,
    ) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        self.check_range(start, len)?;
        if len == 0 {
            return Ok(());
        }
        // SAFETY: MAP_FIXED replaces pages inside our own mapping (range
        // checked above), which no Rust reference points into while the
        // owner is mutably borrowed.
        let ptr = unsafe {
            libc::mmap(
                self.ptr.as_ptr().add(start).cast(),
                len,
                prot,
                libc::MAP_PRIVATE | libc::MAP_FIXED,
                fd.as_raw_fd(),
                libc::off_t::try_from(file_offset)
                    .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Replaces a page-aligned range with fresh inaccessible, unbacked
    /// pages: whatever was mapped or written there is gone.
    pub fn reset_to_reserved(&mut self, start: usize, len: usize) -> io::Result<()> {
        self.check_range(start, len)?;
        if len == 0 {
            return Ok(());
        }
        // SAFETY: as in `map_file_private`: a fixed mapping inside our own.
        let ptr = unsafe {
            libc::mmap(
                self.ptr.as_ptr().add(start).cast(),
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Throws away the private contents of a page-aligned range: anonymous
    /// pages read as zero again and copy-on-write pages of a file mapping
    /// as the file again, with no copying. Protection is unchanged.
    pub fn discard(&mut self, start: usize, len: usize) -> io::Result<()> {
        self.check_range(start, len)?;
        if len == 0 {
            return Ok(());
        }
        // SAFETY: the range is inside our own private mapping; the owner's
        // exclusive borrow means no Rust reference reads those pages.
        let r = unsafe {
            libc::madvise(
                self.ptr.as_ptr().add(start).cast(),
                len,
                libc::MADV_DONTNEED,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Makes a page-aligned range inaccessible (its contents stay).
    pub fn make_inaccessible(&mut self, start: usize, len: usize) -> io::Result<()> {
        self.protect(start, len, libc::PROT_NONE)
    }

    /// Makes a page-aligned range readable and executable (and no longer
    /// writable).
    pub fn make_executable(&mut self, start: usize, len: usize) -> io::Result<()> {
        self.protect(start, len, libc::PROT_READ | libc::PROT_EXEC)
    }

    /// [`Mmap::make_accessible`] through a shared reference.
    ///
    /// # Safety
    ///
    /// Nothing may be using the range (see `protect_shared`).
    pub unsafe fn make_accessible_shared(&self, start: usize, len: usize) -> io::Result<()> {
        // SAFETY: per the contract.
        unsafe { self.protect_shared(start, len, libc::PROT_READ | libc::PROT_WRITE) }
    }

    /// [`Mmap::make_executable`] through a shared reference.
    ///
    /// # Safety
    ///
    /// Nothing may be using the range (see `protect_shared`).
    pub unsafe fn make_executable_shared(&self, start: usize, len: usize) -> io::Result<()> {
        // SAFETY: per the contract.
        unsafe { self.protect_shared(start, len, libc::PROT_READ | libc::PROT_EXEC) }
    }
}

impl Mmap {
    /// Splits the mapping at page-aligned `at`: `self` keeps the pages
    /// before it, the returned mapping owns the rest.
    pub fn split_off(&mut self, at: usize) -> io::Result<Mmap> {
        if at == 0 || at >= self.len || !at.is_multiple_of(page_size()) {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        // SAFETY: `at < len`, so the address is inside our mapping, and
        // not null.
        let tail = unsafe { NonNull::new_unchecked(self.ptr.as_ptr().add(at)) };
        let tail = Mmap {
            ptr: tail,
            len: self.len - at,
        };
        // The two halves own disjoint page ranges of the one mapping, each
        // unmapped on its own (munmap takes any page-aligned range).
        self.len = at;
        Ok(tail)
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: we own exactly this mapping (the type's invariant).
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// The length of `file` now, as a `usize`.
fn file_len(file: &std::fs::File) -> io::Result<usize> {
    usize::try_from(file.metadata()?.len())
        .map_err(|_| io::Error::from(io::ErrorKind::FileTooLarge))
}

/// A whole file mapped read-only into memory (copy on write: nothing is
/// ever written to it), for reading it without copying.
pub struct MappedFile {
    mmap: Mmap,
    len: usize,
}

impl MappedFile {
    /// Maps `file` from its start to its current end.
    pub fn new(file: &std::fs::File) -> io::Result<MappedFile> {
        use std::os::fd::AsFd;
        let len = file_len(file)?;
        let reserved = round_up_to_page(len.max(1))
            .ok_or_else(|| io::Error::from(io::ErrorKind::FileTooLarge))?;
        let mut mmap = Mmap::reserve(reserved)?;
        // Whole pages: the last one's tail past the end of the file reads
        // as zeros. Read-only: nothing writes it.
        mmap.map_file(0, reserved, file.as_fd(), 0, libc::PROT_READ)?;
        Ok(MappedFile { mmap, len })
    }

    /// The file's bytes. (Should the file shrink while mapped, reading past
    /// its new end faults: callers map only files they own.)
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `len` bytes from the start of the mapping are the file's,
        // readable for as long as `self` lives; nothing writes them.
        unsafe { std::slice::from_raw_parts(self.mmap.as_ptr(), self.len) }
    }
}

impl AsRef<[u8]> for MappedFile {
    fn as_ref(&self) -> &[u8] {
        self.bytes()
    }
}

/// A file read whole into fresh page-aligned memory: unlike a mapping of
/// the file, a copy that later changes to the file cannot reach, whose
/// pages can then be made executable where they are (see
/// `code_memory::load_code_in_place`).
pub struct FileCopy {
    mmap: Mmap,
    len: usize,
}

impl FileCopy {
    /// Reads `file` from its start to its present length (a file that
    /// shrinks meanwhile is an error; one that grows is read as it was).
    pub fn read(file: &std::fs::File) -> io::Result<FileCopy> {
        use std::io::Read as _;
        let len = file_len(file)?;
        // Populated: every page is about to be written.
        let mmap = Mmap::populated(len)?;
        // SAFETY: the mapping is fresh, read-write and at least `len` bytes
        // long; nothing else refers to it while this borrow lives.
        let buffer = unsafe { std::slice::from_raw_parts_mut(mmap.as_ptr(), len) };
        let mut reader = file;
        reader.read_exact(buffer)?;
        Ok(FileCopy { mmap, len })
    }

    /// The file's bytes as read.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `len` bytes from the start of the mapping were read into
        // it; nothing writes them while `self` is borrowed.
        unsafe { std::slice::from_raw_parts(self.mmap.as_ptr(), self.len) }
    }

    /// The pages from page-aligned `offset` on, as a writable mapping of
    /// their own; the pages before it are unmapped.
    pub fn into_pages_from(mut self, offset: usize) -> io::Result<Mmap> {
        if offset == 0 {
            return Ok(self.mmap);
        }
        self.mmap.split_off(offset)
    }
}
