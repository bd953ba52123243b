//! The `wasi_snapshot_preview1` ABI: constants, struct layouts, and
//! bounds-checked access to guest memory.
//!
//! Layouts follow wasi-libc's `wasi/api.h`. Every read or write of guest
//! memory goes through [`GuestMemory`], which returns `Errno::Fault` for an
//! out-of-bounds pointer instead of trusting it.

use crate::errno::{Errno, WasiResult};

/// File types (`filetype`).
pub mod filetype {
    #![allow(missing_docs, reason = "the names are the WASI specification's")]
    pub const UNKNOWN: u8 = 0;
    pub const BLOCK_DEVICE: u8 = 1;
    pub const CHARACTER_DEVICE: u8 = 2;
    pub const DIRECTORY: u8 = 3;
    pub const REGULAR_FILE: u8 = 4;
    pub const SOCKET_STREAM: u8 = 6;
    pub const SYMBOLIC_LINK: u8 = 7;
}

/// Descriptor flags (`fdflags`).
pub mod fdflags {
    #![allow(missing_docs, reason = "the names are the WASI specification's")]
    pub const APPEND: u16 = 1;
    pub const DSYNC: u16 = 2;
    pub const NONBLOCK: u16 = 4;
    pub const RSYNC: u16 = 8;
    pub const SYNC: u16 = 16;
}

/// `path_open` flags (`oflags`).
pub mod oflags {
    #![allow(missing_docs, reason = "the names are the WASI specification's")]
    pub const CREAT: u16 = 1;
    pub const DIRECTORY: u16 = 2;
    pub const EXCL: u16 = 4;
    pub const TRUNC: u16 = 8;
}

/// Path lookup flags: follow a final symlink.
pub const LOOKUP_SYMLINK_FOLLOW: u32 = 1;

/// `fst_flags` of the `*_set_times` functions.
pub mod fstflags {
    #![allow(missing_docs, reason = "the names are the WASI specification's")]
    pub const ATIM: u16 = 1;
    pub const ATIM_NOW: u16 = 2;
    pub const MTIM: u16 = 4;
    pub const MTIM_NOW: u16 = 8;
}

/// Rights (`rights`): what a descriptor may be used for.
pub mod rights {
    #![allow(missing_docs, reason = "the names are the WASI specification's")]
    pub const FD_DATASYNC: u64 = 1 << 0;
    pub const FD_READ: u64 = 1 << 1;
    pub const FD_SEEK: u64 = 1 << 2;
    pub const FD_FDSTAT_SET_FLAGS: u64 = 1 << 3;
    pub const FD_SYNC: u64 = 1 << 4;
    pub const FD_TELL: u64 = 1 << 5;
    pub const FD_WRITE: u64 = 1 << 6;
    pub const FD_ADVISE: u64 = 1 << 7;
    pub const FD_ALLOCATE: u64 = 1 << 8;
    pub const PATH_CREATE_DIRECTORY: u64 = 1 << 9;
    pub const PATH_CREATE_FILE: u64 = 1 << 10;
    pub const PATH_LINK_SOURCE: u64 = 1 << 11;
    pub const PATH_LINK_TARGET: u64 = 1 << 12;
    pub const PATH_OPEN: u64 = 1 << 13;
    pub const FD_READDIR: u64 = 1 << 14;
    pub const PATH_READLINK: u64 = 1 << 15;
    pub const PATH_RENAME_SOURCE: u64 = 1 << 16;
    pub const PATH_RENAME_TARGET: u64 = 1 << 17;
    pub const PATH_FILESTAT_GET: u64 = 1 << 18;
    pub const PATH_FILESTAT_SET_SIZE: u64 = 1 << 19;
    pub const PATH_FILESTAT_SET_TIMES: u64 = 1 << 20;
    pub const FD_FILESTAT_GET: u64 = 1 << 21;
    pub const FD_FILESTAT_SET_SIZE: u64 = 1 << 22;
    pub const FD_FILESTAT_SET_TIMES: u64 = 1 << 23;
    pub const PATH_SYMLINK: u64 = 1 << 24;
    pub const PATH_REMOVE_DIRECTORY: u64 = 1 << 25;
    pub const PATH_UNLINK_FILE: u64 = 1 << 26;
    pub const POLL_FD_READWRITE: u64 = 1 << 27;
    pub const SOCK_SHUTDOWN: u64 = 1 << 28;
    pub const SOCK_ACCEPT: u64 = 1 << 29;

    /// Everything a regular file supports.
    pub const FILE: u64 = FD_DATASYNC
        | FD_READ
        | FD_SEEK
        | FD_FDSTAT_SET_FLAGS
        | FD_SYNC
        | FD_TELL
        | FD_WRITE
        | FD_ADVISE
        | FD_ALLOCATE
        | FD_FILESTAT_GET
        | FD_FILESTAT_SET_SIZE
        | FD_FILESTAT_SET_TIMES
        | POLL_FD_READWRITE;

    /// Everything a directory supports.
    pub const DIRECTORY: u64 = FD_FDSTAT_SET_FLAGS
        | FD_SYNC
        | FD_DATASYNC
        | PATH_CREATE_DIRECTORY
        | PATH_CREATE_FILE
        | PATH_LINK_SOURCE
        | PATH_LINK_TARGET
        | PATH_OPEN
        | FD_READDIR
        | PATH_READLINK
        | PATH_RENAME_SOURCE
        | PATH_RENAME_TARGET
        | PATH_FILESTAT_GET
        | PATH_FILESTAT_SET_SIZE
        | PATH_FILESTAT_SET_TIMES
        | FD_FILESTAT_GET
        | FD_FILESTAT_SET_TIMES
        | PATH_SYMLINK
        | PATH_REMOVE_DIRECTORY
        | PATH_UNLINK_FILE;

    /// Rights that change the file system: withheld by read-only preopens.
    pub const MUTATING: u64 = FD_WRITE
        | FD_DATASYNC
        | FD_ALLOCATE
        | FD_FILESTAT_SET_SIZE
        | FD_FILESTAT_SET_TIMES
        | PATH_CREATE_DIRECTORY
        | PATH_CREATE_FILE
        | PATH_LINK_SOURCE
        | PATH_LINK_TARGET
        | PATH_RENAME_SOURCE
        | PATH_RENAME_TARGET
        | PATH_FILESTAT_SET_SIZE
        | PATH_FILESTAT_SET_TIMES
        | PATH_SYMLINK
        | PATH_REMOVE_DIRECTORY
        | PATH_UNLINK_FILE;

    /// A connected socket.
    pub const SOCKET: u64 = FD_READ
        | FD_WRITE
        | FD_FDSTAT_SET_FLAGS
        | FD_FILESTAT_GET
        | POLL_FD_READWRITE
        | SOCK_SHUTDOWN;

    /// A listening socket.
    pub const LISTENER: u64 =
        FD_FDSTAT_SET_FLAGS | FD_FILESTAT_GET | POLL_FD_READWRITE | SOCK_ACCEPT;
}

/// Guest linear memory, with every access checked.
pub struct GuestMemory<'a> {
    bytes: &'a mut [u8],
}

impl<'a> GuestMemory<'a> {
    /// Wraps the guest's memory.
    pub fn new(bytes: &'a mut [u8]) -> Self {
        GuestMemory { bytes }
    }

    fn range(&self, ptr: u32, len: u32) -> WasiResult<std::ops::Range<usize>> {
        let start = ptr as usize;
        let end = start.checked_add(len as usize).ok_or(Errno::Fault)?;
        if end > self.bytes.len() {
            return Err(Errno::Fault);
        }
        Ok(start..end)
    }

    /// `len` bytes at `ptr`.
    pub fn slice(&self, ptr: u32, len: u32) -> WasiResult<&[u8]> {
        let r = self.range(ptr, len)?;
        Ok(&self.bytes[r])
    }

    /// `len` bytes at `ptr`, writable.
    pub fn slice_mut(&mut self, ptr: u32, len: u32) -> WasiResult<&mut [u8]> {
        let r = self.range(ptr, len)?;
        Ok(&mut self.bytes[r])
    }

    /// A UTF-8 string (a path) at `ptr`.
    pub fn str(&self, ptr: u32, len: u32) -> WasiResult<&str> {
        std::str::from_utf8(self.slice(ptr, len)?).map_err(|_| Errno::Ilseq)
    }

    /// Copies `data` to `ptr`.
    pub fn write(&mut self, ptr: u32, data: &[u8]) -> WasiResult<()> {
        self.slice_mut(ptr, data.len() as u32)?
            .copy_from_slice(data);
        Ok(())
    }

    /// Reads a little-endian `u32`.
    pub fn u32(&self, ptr: u32) -> WasiResult<u32> {
        let b = self.slice(ptr, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads a little-endian `u64`.
    pub fn u64(&self, ptr: u32) -> WasiResult<u64> {
        let b = self.slice(ptr, 8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// Reads a little-endian `u16`.
    pub fn u16(&self, ptr: u32) -> WasiResult<u16> {
        let b = self.slice(ptr, 2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    /// Reads a byte.
    pub fn u8(&self, ptr: u32) -> WasiResult<u8> {
        Ok(self.slice(ptr, 1)?[0])
    }

    /// Writes a little-endian `u32`.
    pub fn set_u32(&mut self, ptr: u32, v: u32) -> WasiResult<()> {
        self.write(ptr, &v.to_le_bytes())
    }

    /// Writes a little-endian `u64`.
    pub fn set_u64(&mut self, ptr: u32, v: u64) -> WasiResult<()> {
        self.write(ptr, &v.to_le_bytes())
    }

    /// Writes a little-endian `u16`.
    pub fn set_u16(&mut self, ptr: u32, v: u16) -> WasiResult<()> {
        self.write(ptr, &v.to_le_bytes())
    }

    /// The `(buf, buf_len)` pairs of an `iovec` array, each checked to lie
    /// in memory. At most [`IOV_MAX`] entries (more is `EINVAL`, as for
    /// `readv`), so that neither what the host allocates nor how long it
    /// walks depends on a count the guest chose; the total is capped at
    /// `u32::MAX` (larger is `EINVAL`).
    pub fn iovecs(&self, iovs: u32, count: u32) -> WasiResult<Vec<(u32, u32)>> {
        if count > IOV_MAX {
            return Err(Errno::Inval);
        }
        let mut out = Vec::with_capacity(count as usize);
        let mut total: u64 = 0;
        for i in 0..count {
            let entry = iovs.checked_add(i * 8).ok_or(Errno::Fault)?;
            let buf = self.u32(entry)?;
            let len = self.u32(entry.checked_add(4).ok_or(Errno::Fault)?)?;
            self.range(buf, len)?;
            total += u64::from(len);
            if total > u64::from(u32::MAX) {
                return Err(Errno::Inval);
            }
            out.push((buf, len));
        }
        Ok(out)
    }
}

/// Most entries an `iovec` array may have: wasi-libc's `IOV_MAX`, and
/// Linux's `UIO_MAXIOV`. Linux answers `EINVAL` beyond it, and so do we.
pub const IOV_MAX: u32 = 1024;

/// Longest path a call takes, in bytes: Linux's `PATH_MAX` (which counts
/// the terminating NUL, so a path of this many bytes is already too long).
/// A longer one is `ENAMETOOLONG` before anything is copied or resolved.
pub const PATH_MAX: u32 = 4096;
