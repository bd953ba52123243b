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
#[derive(Clone, Debug)]
pub struct MemoryOutputPipe {
    buf: Arc<Mutex<Vec<u8>>>,
    limit: usize,
}

impl Default for MemoryOutputPipe {
    fn default() -> Self {
        MemoryOutputPipe::with_limit(usize::MAX)
    }
}

impl MemoryOutputPipe {
    /// An empty pipe that keeps everything the guest writes: as much host
    /// memory as the guest cares to write. See
    /// [`with_limit`](MemoryOutputPipe::with_limit) for a bounded one.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty pipe that keeps at most `limit` bytes, as Wasmtime's
    /// `MemoryOutputPipe::new(capacity)` does: a write that does not fit
    /// is cut short, and one to a full pipe fails with `ENOSPC`.
    pub fn with_limit(limit: usize) -> Self {
        MemoryOutputPipe {
            buf: Arc::default(),
            limit,
        }
    }

    /// Everything written so far.
    pub fn contents(&self) -> Vec<u8> {
        self.buf.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn write(&self, data: &[u8]) -> io::Result<usize> {
        let mut buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        let room = self.limit.saturating_sub(buf.len());
        if room == 0 && !data.is_empty() {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        let n = data.len().min(room);
        buf.extend_from_slice(&data[..n]);
        Ok(n)
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
            OutputStream::Memory(p) => return p.write(data),
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

/// An argument or environment variable that [`WasiCtxBuilder::build`]
/// refuses, because the guest could not see it as given: it receives each
/// as a NUL-terminated string, and each variable as one `NAME=VALUE`
/// string that it splits at the first `=`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WasiCtxError {
    /// An argument contains a NUL byte: the guest would see it end there.
    #[error("invalid WASI argument {index} {arg:?}: it contains a NUL byte")]
    ArgNul {
        /// Its position (the program name is 0).
        index: usize,
        /// The argument.
        arg: String,
    },
    /// An environment variable has an empty name.
    #[error("invalid WASI environment variable {:?}: its name is empty", format!("={value}"))]
    EnvEmptyName {
        /// Its value.
        value: String,
    },
    /// An environment variable's name contains `=`: the guest would split
    /// it there, seeing another name and value.
    #[error("invalid WASI environment variable name {name:?}: it contains `=`")]
    EnvNameEquals {
        /// The name.
        name: String,
    },
    /// An environment variable's name or value contains a NUL byte: the
    /// guest would see it end there.
    #[error("invalid WASI environment variable {:?}: it contains a NUL byte", format!("{name}={value}"))]
    EnvNul {
        /// The name.
        name: String,
        /// The value.
        value: String,
    },
}

/// Builds a [`WasiCtx`].
///
/// As in Wasmtime, adding arguments and environment variables cannot fail;
/// the first one a guest could not see as given (see [`WasiCtxError`]) is
/// remembered, and [`build`](WasiCtxBuilder::build) reports it.
pub struct WasiCtxBuilder {
    args: Vec<String>,
    env: Vec<(String, String)>,
    invalid: Option<WasiCtxError>,
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
            invalid: None,
            stdin: InputStream::Null,
            stdout: OutputStream::Null,
            stderr: OutputStream::Null,
            preopens: Vec::new(),
            sockets: Vec::new(),
        }
    }

    /// Appends one argument (the first is the program name). One that
    /// contains a NUL byte makes [`build`](WasiCtxBuilder::build) fail.
    pub fn arg(&mut self, arg: impl Into<String>) -> &mut Self {
        let arg = arg.into();
        if arg.contains('\0') {
            let index = self.args.len();
            self.refuse(WasiCtxError::ArgNul {
                index,
                arg: arg.clone(),
            });
        }
        self.args.push(arg);
        self
    }

    /// Appends arguments, as [`arg`](WasiCtxBuilder::arg) does.
    pub fn args(&mut self, args: &[impl AsRef<str>]) -> &mut Self {
        for a in args {
            self.arg(a.as_ref());
        }
        self
    }

    /// Sets one environment variable. An empty name, a name containing
    /// `=`, or a NUL byte anywhere makes [`build`](WasiCtxBuilder::build)
    /// fail.
    pub fn env(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        let (name, value) = (key.into(), value.into());
        if name.is_empty() {
            self.refuse(WasiCtxError::EnvEmptyName {
                value: value.clone(),
            });
        } else if name.contains('=') {
            self.refuse(WasiCtxError::EnvNameEquals { name: name.clone() });
        } else if name.contains('\0') || value.contains('\0') {
            self.refuse(WasiCtxError::EnvNul {
                name: name.clone(),
                value: value.clone(),
            });
        }
        self.env.push((name, value));
        self
    }

    /// Passes the host's whole environment, as [`env`](WasiCtxBuilder::env)
    /// does.
    pub fn inherit_env(&mut self) -> &mut Self {
        for (k, v) in std::env::vars() {
            self.env(k, v);
        }
        self
    }

    /// Remembers the first invalid entry, for `build` to report.
    fn refuse(&mut self, e: WasiCtxError) {
        self.invalid.get_or_insert(e);
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

    /// The context, or the first argument or environment variable that
    /// the guest could not see as given.
    pub fn build(&mut self) -> Result<WasiCtx, WasiCtxError> {
        if let Some(e) = &self.invalid {
            return Err(e.clone());
        }
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
        Ok(WasiCtx {
            args: self.args.iter().map(|a| cstr(a)).collect(),
            env: self
                .env
                .iter()
                .map(|(k, v)| cstr(&format!("{k}={v}")))
                .collect(),
            table,
        })
    }
}
