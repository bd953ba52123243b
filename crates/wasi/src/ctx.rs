//! The WASI context of one store: arguments, environment, standard
//! streams, preopened directories and sockets, and the descriptor table.

use crate::abi::rights;
use crate::table::{Descriptor, DirDesc, FdTable, Kind};
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Captures what a guest writes to a standard stream, for embedders and
/// tests. Clones share the same buffer.
#[derive(Clone, Debug, Default)]
pub struct MemoryOutputPipe(Arc<Mutex<Vec<u8>>>);

impl MemoryOutputPipe {
    /// An empty pipe.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything written so far.
    pub fn contents(&self) -> Vec<u8> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn write(&self, data: &[u8]) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(data);
    }
}

/// Feeds fixed bytes to a guest's standard input.
#[derive(Clone, Debug, Default)]
pub struct MemoryInputPipe(Arc<Mutex<io::Cursor<Vec<u8>>>>);

impl MemoryInputPipe {
    /// A pipe that yields `bytes`, then end of file.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        MemoryInputPipe(Arc::new(Mutex::new(io::Cursor::new(bytes.into()))))
    }

    pub(crate) fn read(&self, buf: &mut [u8]) -> usize {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .read(buf)
            .unwrap_or(0)
    }
}

/// Where a standard input comes from.
#[derive(Clone, Debug)]
pub enum InputStream {
    /// The host process's stdin.
    Inherit,
    /// Always at end of file.
    Null,
    /// Bytes given by the embedder.
    Memory(MemoryInputPipe),
}

/// Where a standard output or error goes.
#[derive(Clone, Debug)]
pub enum OutputStream {
    /// The host process's stdout (for fd 1) or stderr (for fd 2).
    Inherit,
    /// Discarded.
    Null,
    /// Captured for the embedder.
    Memory(MemoryOutputPipe),
}

impl OutputStream {
    pub(crate) fn write(&self, fd: u32, data: &[u8]) -> io::Result<usize> {
        match self {
            OutputStream::Inherit if fd == 2 => {
                let mut e = io::stderr().lock();
                e.write_all(data)?;
                e.flush()?;
            }
            OutputStream::Inherit => {
                let mut o = io::stdout().lock();
                o.write_all(data)?;
                o.flush()?;
            }
            OutputStream::Null => {}
            OutputStream::Memory(p) => p.write(data),
        }
        Ok(data.len())
    }
}

/// What a preopened directory lets the guest do.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum DirPerms {
    /// Read and change files and directories beneath it.
    ReadWrite,
    /// Only read: every right that changes the file system is withheld.
    ReadOnly,
}

/// The WASI state of one store.
pub struct WasiCtx {
    pub(crate) args: Vec<Vec<u8>>,
    pub(crate) env: Vec<Vec<u8>>,
    pub(crate) table: FdTable,
}

impl WasiCtx {
    /// A builder with no arguments, no environment, null stdio and no
    /// preopens: a guest built from it can reach nothing.
    pub fn builder() -> WasiCtxBuilder {
        WasiCtxBuilder::new()
    }
}

/// Builds a [`WasiCtx`].
pub struct WasiCtxBuilder {
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: InputStream,
    stdout: OutputStream,
    stderr: OutputStream,
    preopens: Vec<(cap_std::fs::Dir, String, DirPerms)>,
    sockets: Vec<TcpListener>,
}

impl Default for WasiCtxBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl WasiCtxBuilder {
    /// Nothing given to the guest yet.
    pub fn new() -> Self {
        WasiCtxBuilder {
            args: Vec::new(),
            env: Vec::new(),
            stdin: InputStream::Null,
            stdout: OutputStream::Null,
            stderr: OutputStream::Null,
            preopens: Vec::new(),
            sockets: Vec::new(),
        }
    }

    /// Appends one argument (the first is the program name).
    pub fn arg(&mut self, arg: impl Into<String>) -> &mut Self {
        self.args.push(arg.into());
        self
    }

    /// Appends arguments.
    pub fn args(&mut self, args: &[impl AsRef<str>]) -> &mut Self {
        self.args
            .extend(args.iter().map(|a| a.as_ref().to_string()));
        self
    }

    /// Sets one environment variable.
    pub fn env(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Passes the host's whole environment.
    pub fn inherit_env(&mut self) -> &mut Self {
        self.env.extend(std::env::vars());
        self
    }

    /// Uses the host process's stdin, stdout and stderr.
    pub fn inherit_stdio(&mut self) -> &mut Self {
        self.stdin = InputStream::Inherit;
        self.stdout = OutputStream::Inherit;
        self.stderr = OutputStream::Inherit;
        self
    }

    /// Sets the guest's stdin.
    pub fn stdin(&mut self, s: InputStream) -> &mut Self {
        self.stdin = s;
        self
    }

    /// Sets the guest's stdout.
    pub fn stdout(&mut self, s: OutputStream) -> &mut Self {
        self.stdout = s;
        self
    }

    /// Sets the guest's stderr.
    pub fn stderr(&mut self, s: OutputStream) -> &mut Self {
        self.stderr = s;
        self
    }

    /// Gives the guest the host directory `host`, seen as `guest`. The guest
    /// can reach nothing outside it: paths are resolved beneath the
    /// directory's handle, refusing `..`, absolute paths and symlinks that
    /// would leave it.
    pub fn preopened_dir(
        &mut self,
        host: impl AsRef<Path>,
        guest: impl Into<String>,
        perms: DirPerms,
    ) -> io::Result<&mut Self> {
        let dir = cap_std::fs::Dir::open_ambient_dir(host.as_ref(), cap_std::ambient_authority())?;
        self.preopens.push((dir, guest.into(), perms));
        Ok(self)
    }

    /// Gives the guest a listening TCP socket (for `sock_accept`).
    pub fn preopened_socket(&mut self, listener: TcpListener) -> &mut Self {
        self.sockets.push(listener);
        self
    }

    /// The context.
    pub fn build(&mut self) -> WasiCtx {
        let mut table = FdTable::default();
        let stdio_rights =
            rights::FD_FILESTAT_GET | rights::POLL_FD_READWRITE | rights::FD_FDSTAT_SET_FLAGS;
        table.insert_at(
            0,
            Descriptor::new(
                Kind::Input(self.stdin.clone()),
                stdio_rights | rights::FD_READ,
                0,
            ),
        );
        table.insert_at(
            1,
            Descriptor::new(
                Kind::Output(self.stdout.clone()),
                stdio_rights | rights::FD_WRITE,
                0,
            ),
        );
        table.insert_at(
            2,
            Descriptor::new(
                Kind::Output(self.stderr.clone()),
                stdio_rights | rights::FD_WRITE,
                0,
            ),
        );
        for (dir, guest, perms) in self.preopens.drain(..) {
            let mask = match perms {
                DirPerms::ReadWrite => u64::MAX,
                DirPerms::ReadOnly => !rights::MUTATING,
            };
            table.push(Descriptor::new(
                Kind::Dir(DirDesc {
                    dir,
                    preopen: Some(guest),
                }),
                rights::DIRECTORY & mask,
                (rights::DIRECTORY | rights::FILE) & mask,
            ));
        }
        for l in self.sockets.drain(..) {
            table.push(Descriptor::new(
                Kind::Listener(l),
                rights::LISTENER,
                rights::SOCKET,
            ));
        }
        let cstr = |s: &str| {
            let mut v = s.as_bytes().to_vec();
            v.push(0);
            v
        };
        WasiCtx {
            args: self.args.iter().map(|a| cstr(a)).collect(),
            env: self
                .env
                .iter()
                .map(|(k, v)| cstr(&format!("{k}={v}")))
                .collect(),
            table,
        }
    }
}
