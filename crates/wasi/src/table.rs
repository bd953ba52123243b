//! The descriptor table: what each guest file descriptor refers to, and
//! what it may be used for.

use crate::abi::filetype;
use crate::ctx::{InputStream, OutputStream};
use crate::errno::{Errno, WasiResult};
use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};

/// Most descriptors a guest may have open at once.
pub const MAX_DESCRIPTORS: usize = 4096;

/// A directory descriptor.
pub struct DirDesc {
    /// The directory; paths are resolved beneath it.
    pub dir: cap_std::fs::Dir,
    /// The guest path, for preopened directories.
    pub preopen: Option<String>,
}

/// What a descriptor refers to.
pub enum Kind {
    /// A standard input.
    Input(InputStream),
    /// A standard output or error.
    Output(OutputStream),
    /// A regular file (or other non-directory).
    File(std::fs::File),
    /// A directory.
    Dir(DirDesc),
    /// A listening socket.
    Listener(TcpListener),
    /// A connected socket.
    Stream(TcpStream),
}

/// One guest file descriptor.
pub struct Descriptor {
    /// What it refers to.
    pub kind: Kind,
    /// Rights of this descriptor.
    pub rights_base: u64,
    /// Rights that descriptors opened through it may have.
    pub rights_inheriting: u64,
    /// `fdflags`.
    pub flags: u16,
}

impl Descriptor {
    /// A descriptor with no flags.
    pub fn new(kind: Kind, rights_base: u64, rights_inheriting: u64) -> Self {
        Descriptor {
            kind,
            rights_base,
            rights_inheriting,
            flags: 0,
        }
    }

    /// Fails with `ENOTCAPABLE` unless the descriptor has all of `needed`.
    pub fn require(&self, needed: u64) -> WasiResult<()> {
        if self.rights_base & needed == needed {
            Ok(())
        } else {
            Err(Errno::Notcapable)
        }
    }

    /// The file, for calls that need a seekable one: a directory is
    /// `EISDIR`, a stream or socket `ESPIPE`.
    pub fn seekable_file(&self) -> WasiResult<&std::fs::File> {
        match &self.kind {
            Kind::File(f) => Ok(f),
            Kind::Dir(_) => Err(Errno::Isdir),
            _ => Err(Errno::Spipe),
        }
    }

    /// The WASI file type of the descriptor numbered `fd`. A standard
    /// stream is a character device only if it is the host's and a
    /// terminal; otherwise its type is unknown, as under Wasmtime. Programs
    /// ask through `isatty` (brotli refuses to write compressed data to a
    /// terminal), so a pipe must not look like one.
    pub fn filetype(&self, fd: u32) -> u8 {
        use std::io::IsTerminal;
        let terminal = |yes: bool| {
            if yes {
                filetype::CHARACTER_DEVICE
            } else {
                filetype::UNKNOWN
            }
        };
        match &self.kind {
            Kind::Input(InputStream::Inherit) => terminal(std::io::stdin().is_terminal()),
            Kind::Output(OutputStream::Inherit) if fd == 2 => {
                terminal(std::io::stderr().is_terminal())
            }
            Kind::Output(OutputStream::Inherit) => terminal(std::io::stdout().is_terminal()),
            Kind::Input(_) | Kind::Output(_) => filetype::UNKNOWN,
            Kind::Dir(_) => filetype::DIRECTORY,
            Kind::Listener(_) | Kind::Stream(_) => filetype::SOCKET_STREAM,
            Kind::File(f) => f
                .metadata()
                .map(|m| crate::funcs::filetype_of(&m.file_type()))
                .unwrap_or(filetype::UNKNOWN),
        }
    }
}

/// Guest file descriptors.
#[derive(Default)]
pub struct FdTable {
    map: BTreeMap<u32, Descriptor>,
}

impl FdTable {
    /// Puts `d` at `fd`, replacing what was there.
    pub fn insert_at(&mut self, fd: u32, d: Descriptor) {
        self.map.insert(fd, d);
    }

    /// Puts `d` at the lowest free descriptor number.
    pub fn push(&mut self, d: Descriptor) -> u32 {
        let mut fd = 0;
        for k in self.map.keys() {
            if *k != fd {
                break;
            }
            fd += 1;
        }
        self.map.insert(fd, d);
        fd
    }

    /// Like [`FdTable::push`], failing with `EMFILE` when the table is full.
    pub fn try_push(&mut self, d: Descriptor) -> WasiResult<u32> {
        if self.map.len() >= MAX_DESCRIPTORS {
            return Err(Errno::Mfile);
        }
        Ok(self.push(d))
    }

    /// The descriptor `fd`.
    pub fn get(&self, fd: u32) -> WasiResult<&Descriptor> {
        self.map.get(&fd).ok_or(Errno::Badf)
    }

    /// The descriptor `fd`, mutably.
    pub fn get_mut(&mut self, fd: u32) -> WasiResult<&mut Descriptor> {
        self.map.get_mut(&fd).ok_or(Errno::Badf)
    }

    /// Removes `fd`.
    pub fn remove(&mut self, fd: u32) -> WasiResult<Descriptor> {
        self.map.remove(&fd).ok_or(Errno::Badf)
    }

    /// The directory `fd`, checking it has `needed` rights.
    pub fn dir(&self, fd: u32, needed: u64) -> WasiResult<&cap_std::fs::Dir> {
        let d = self.get(fd)?;
        match &d.kind {
            Kind::Dir(dd) => {
                d.require(needed)?;
                Ok(&dd.dir)
            }
            _ => Err(Errno::Notdir),
        }
    }
}
