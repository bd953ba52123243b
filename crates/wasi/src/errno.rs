//! WASI error numbers, and how host errors map to them.

use std::io;

/// A WASI `errno`. Host functions return these to the guest; none is a
/// trap or a host panic.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u16)]
#[allow(missing_docs, reason = "the names are the WASI specification's")]
pub enum Errno {
    TooBig = 1,
    Acces = 2,
    Addrinuse = 3,
    Addrnotavail = 4,
    Again = 6,
    Badf = 8,
    Busy = 10,
    Connaborted = 13,
    Connrefused = 14,
    Connreset = 15,
    Exist = 20,
    Fault = 21,
    Fbig = 22,
    Ilseq = 25,
    Intr = 27,
    Inval = 28,
    Io = 29,
    Isdir = 31,
    Loop = 32,
    Mfile = 33,
    Mlink = 34,
    Nametoolong = 37,
    Noent = 44,
    Nomem = 48,
    Nospc = 51,
    Nosys = 52,
    Notconn = 53,
    Notdir = 54,
    Notempty = 55,
    Notsock = 57,
    Notsup = 58,
    Overflow = 61,
    Perm = 63,
    Pipe = 64,
    Rofs = 69,
    Spipe = 70,
    Timedout = 73,
    Txtbsy = 74,
    Xdev = 75,
    Notcapable = 76,
}

impl Errno {
    /// The number the guest sees.
    pub fn raw(self) -> i32 {
        self as u16 as i32
    }
}

/// Result of a WASI function body.
pub type WasiResult<T> = Result<T, Errno>;

impl From<io::Error> for Errno {
    fn from(e: io::Error) -> Errno {
        if let Some(code) = e.raw_os_error() {
            return from_os_error(code);
        }
        match e.kind() {
            // cap-std reports a path that would leave the directory it is
            // resolved beneath as a bare PermissionDenied. Wasmtime answers
            // `EPERM` there, and programs print the message of the errno
            // they get, so Keel answers the same. (`ENOTCAPABLE` remains
            // the answer to a descriptor lacking a right.)
            io::ErrorKind::PermissionDenied => Errno::Perm,
            io::ErrorKind::NotFound => Errno::Noent,
            io::ErrorKind::AlreadyExists => Errno::Exist,
            io::ErrorKind::InvalidInput => Errno::Inval,
            io::ErrorKind::WouldBlock => Errno::Again,
            io::ErrorKind::Interrupted => Errno::Intr,
            io::ErrorKind::BrokenPipe => Errno::Pipe,
            io::ErrorKind::OutOfMemory => Errno::Nomem,
            io::ErrorKind::Unsupported => Errno::Notsup,
            io::ErrorKind::NotADirectory => Errno::Notdir,
            io::ErrorKind::IsADirectory => Errno::Isdir,
            io::ErrorKind::DirectoryNotEmpty => Errno::Notempty,
            io::ErrorKind::ReadOnlyFilesystem => Errno::Rofs,
            io::ErrorKind::TimedOut => Errno::Timedout,
            _ => Errno::Io,
        }
    }
}

fn from_os_error(code: i32) -> Errno {
    match code {
        libc::E2BIG => Errno::TooBig,
        libc::EACCES => Errno::Acces,
        libc::EADDRINUSE => Errno::Addrinuse,
        libc::EADDRNOTAVAIL => Errno::Addrnotavail,
        libc::EAGAIN => Errno::Again,
        libc::EBADF => Errno::Badf,
        libc::EBUSY => Errno::Busy,
        libc::ECONNABORTED => Errno::Connaborted,
        libc::ECONNREFUSED => Errno::Connrefused,
        libc::ECONNRESET => Errno::Connreset,
        libc::EEXIST => Errno::Exist,
        libc::EFAULT => Errno::Fault,
        libc::EFBIG => Errno::Fbig,
        libc::EILSEQ => Errno::Ilseq,
        libc::EINTR => Errno::Intr,
        libc::EINVAL => Errno::Inval,
        libc::EISDIR => Errno::Isdir,
        libc::ELOOP => Errno::Loop,
        libc::EMFILE | libc::ENFILE => Errno::Mfile,
        libc::EMLINK => Errno::Mlink,
        libc::ENAMETOOLONG => Errno::Nametoolong,
        libc::ENOENT => Errno::Noent,
        libc::ENOMEM => Errno::Nomem,
        libc::ENOSPC | libc::EDQUOT => Errno::Nospc,
        libc::ENOSYS => Errno::Nosys,
        libc::ENOTCONN => Errno::Notconn,
        libc::ENOTDIR => Errno::Notdir,
        libc::ENOTEMPTY => Errno::Notempty,
        libc::ENOTSOCK => Errno::Notsock,
        libc::EOPNOTSUPP => Errno::Notsup,
        libc::EOVERFLOW => Errno::Overflow,
        libc::EPERM => Errno::Perm,
        libc::EPIPE => Errno::Pipe,
        libc::EROFS => Errno::Rofs,
        libc::ESPIPE => Errno::Spipe,
        libc::ETIMEDOUT => Errno::Timedout,
        libc::ETXTBSY => Errno::Txtbsy,
        // An `openat2(RESOLVE_BENEATH)` escape attempt.
        libc::EXDEV => Errno::Notcapable,
        _ => Errno::Io,
    }
}
