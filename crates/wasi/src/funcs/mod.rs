//! The WASI functions, one file per family. Each is a method of
//! [`WasiCtx`](crate::WasiCtx) taking guest memory and the raw arguments,
//! returning `Ok` or an [`Errno`](crate::Errno).

mod fd;
mod misc;
mod path;
mod poll;
mod sock;

use crate::abi::{GuestMemory, filetype};
use crate::errno::{Errno, WasiResult};
use std::time::SystemTime;

pub use misc::I32Exit;
pub(crate) use misc::RaiseOutcome;
pub(crate) use poll::PollWait;

/// Largest single write done on the host at once: a guest asking for
/// gigabytes gets them written piece by piece, straight from its memory,
/// never gathered into a host buffer.
const MAX_IO_CHUNK: usize = 16 << 20;

/// Writes what the `iovecs` point to, in order, with `write` (one host
/// write of at most [`MAX_IO_CHUNK`] bytes, answering how many it took),
/// and answers how many bytes were written. As `writev` does, a short
/// write ends the call, and an error after some bytes were written reports
/// those bytes (the error comes again on the next call).
pub(crate) fn write_iovecs(
    mem: &GuestMemory<'_>,
    iovecs: &[(u32, u32)],
    mut write: impl FnMut(&[u8]) -> WasiResult<usize>,
) -> WasiResult<usize> {
    let mut written = 0usize;
    for &(ptr, len) in iovecs {
        let mut data = mem.slice(ptr, len)?;
        while !data.is_empty() {
            let chunk = &data[..data.len().min(MAX_IO_CHUNK)];
            let n = match write(chunk) {
                Ok(n) => n.min(chunk.len()),
                Err(_) if written > 0 => return Ok(written),
                Err(e) => return Err(e),
            };
            written += n;
            if n < chunk.len() {
                return Ok(written);
            }
            data = &data[n..];
        }
    }
    Ok(written)
}

/// The WASI file type of a host file type.
pub(crate) fn filetype_of(t: &std::fs::FileType) -> u8 {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        filetype::DIRECTORY
    } else if t.is_file() {
        filetype::REGULAR_FILE
    } else if t.is_symlink() {
        filetype::SYMBOLIC_LINK
    } else if t.is_char_device() {
        filetype::CHARACTER_DEVICE
    } else if t.is_block_device() {
        filetype::BLOCK_DEVICE
    } else if t.is_socket() {
        filetype::SOCKET_STREAM
    } else {
        filetype::UNKNOWN
    }
}

/// The parts of a `filestat` we fill in.
pub(crate) struct Filestat {
    pub dev: u64,
    pub ino: u64,
    pub filetype: u8,
    pub nlink: u64,
    pub size: u64,
    pub atim: u64,
    pub mtim: u64,
    pub ctim: u64,
}

impl Filestat {
    /// Writes the 64-byte `filestat` at `ptr`.
    pub fn write(&self, mem: &mut GuestMemory<'_>, ptr: u32) -> WasiResult<()> {
        let mut b = [0u8; 64];
        b[0..8].copy_from_slice(&self.dev.to_le_bytes());
        b[8..16].copy_from_slice(&self.ino.to_le_bytes());
        b[16] = self.filetype;
        b[24..32].copy_from_slice(&self.nlink.to_le_bytes());
        b[32..40].copy_from_slice(&self.size.to_le_bytes());
        b[40..48].copy_from_slice(&self.atim.to_le_bytes());
        b[48..56].copy_from_slice(&self.mtim.to_le_bytes());
        b[56..64].copy_from_slice(&self.ctim.to_le_bytes());
        mem.write(ptr, &b)
    }
}

fn nanos(secs: i64, nsec: i64) -> u64 {
    (secs.max(0) as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(nsec.max(0) as u64)
}

/// A `filestat` from host metadata.
pub(crate) fn filestat_of_std(m: &std::fs::Metadata) -> Filestat {
    use std::os::unix::fs::MetadataExt;
    Filestat {
        dev: m.dev(),
        ino: m.ino(),
        filetype: filetype_of(&m.file_type()),
        nlink: m.nlink(),
        size: m.size(),
        atim: nanos(m.atime(), m.atime_nsec()),
        mtim: nanos(m.mtime(), m.mtime_nsec()),
        ctim: nanos(m.ctime(), m.ctime_nsec()),
    }
}

/// A `filestat` from metadata read through a capability.
pub(crate) fn filestat_of_cap(m: &cap_std::fs::Metadata) -> Filestat {
    use cap_std::fs::MetadataExt;
    let t = m.file_type();
    let filetype = if t.is_dir() {
        filetype::DIRECTORY
    } else if t.is_file() {
        filetype::REGULAR_FILE
    } else if t.is_symlink() {
        filetype::SYMBOLIC_LINK
    } else {
        filetype::UNKNOWN
    };
    Filestat {
        dev: m.dev(),
        ino: m.ino(),
        filetype,
        nlink: m.nlink(),
        size: m.len(),
        atim: nanos(m.atime(), m.atime_nsec()),
        mtim: nanos(m.mtime(), m.mtime_nsec()),
        ctim: nanos(m.ctime(), m.ctime_nsec()),
    }
}

/// Which times a `*_set_times` call sets, from its `fst_flags`.
pub(crate) fn time_specs(
    atim: u64,
    mtim: u64,
    flags: u16,
) -> WasiResult<(
    Option<fs_set_times::SystemTimeSpec>,
    Option<fs_set_times::SystemTimeSpec>,
)> {
    use crate::abi::fstflags::*;
    use fs_set_times::SystemTimeSpec;
    if flags & !(ATIM | ATIM_NOW | MTIM | MTIM_NOW) != 0
        || (flags & ATIM != 0 && flags & ATIM_NOW != 0)
        || (flags & MTIM != 0 && flags & MTIM_NOW != 0)
    {
        return Err(Errno::Inval);
    }
    let at = |t: u64| {
        SystemTimeSpec::Absolute(SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos(t))
    };
    let a = if flags & ATIM_NOW != 0 {
        Some(SystemTimeSpec::SymbolicNow)
    } else if flags & ATIM != 0 {
        Some(at(atim))
    } else {
        None
    };
    let m = if flags & MTIM_NOW != 0 {
        Some(SystemTimeSpec::SymbolicNow)
    } else if flags & MTIM != 0 {
        Some(at(mtim))
    } else {
        None
    };
    Ok((a, m))
}
