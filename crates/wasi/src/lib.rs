//! WASI preview 1 (`wasi_snapshot_preview1`) for Keel, with a capability
//! sandbox for the file system.
//!
//! A guest reaches only what the embedder hands it in its [`WasiCtx`]:
//! arguments, environment variables, standard streams, preopened
//! directories (read-write or read-only) and preopened listening sockets.
//! Paths are resolved beneath a preopened directory's handle with cap-std,
//! so `..`, absolute paths, symlinks and hard links cannot reach outside it,
//! even racing against renames. Every error is a WASI `errno` returned to
//! the guest; a bad pointer is `EFAULT`, never a crash.
//!
//! ```
//! use keel::{Engine, Linker, Module, Store};
//! use keel_wasi::{MemoryOutputPipe, OutputStream, WasiCtx};
//!
//! # fn main() -> keel::Result<()> {
//! let engine = Engine::default();
//! let module = Module::new(&engine, r#"(module
//!     (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
//!     (memory (export "memory") 1)
//!     (data (i32.const 8) "\10\00\00\00\03\00\00\00hi\n")
//!     (func (export "_start") (drop (call $w (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 0)))))"#)?;
//! let out = MemoryOutputPipe::new();
//! let ctx = WasiCtx::builder().stdout(OutputStream::Memory(out.clone())).build()?;
//! let mut linker = Linker::new(&engine);
//! keel_wasi::add_to_linker(&mut linker, |ctx: &mut WasiCtx| ctx)?;
//! let mut store = Store::new(&engine, ctx);
//! let instance = linker.instantiate(&mut store, &module)?;
//! instance.get_typed_func::<(), ()>(&mut store, "_start")?.call(&mut store, ())?;
//! assert_eq!(out.contents(), b"hi\n");
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

mod abi;
mod ctx;
mod errno;
mod funcs;
mod table;
mod wait;

pub use ctx::{
    DirPerms, InputStream, MemoryInputPipe, MemoryOutputPipe, OutputStream, WasiCtx,
    WasiCtxBuilder, WasiCtxError,
};
pub use errno::Errno;
pub use funcs::I32Exit;

use abi::GuestMemory;
use errno::WasiResult;
use keel::{Caller, Extern, Linker};

/// The module name of WASI preview 1.
pub const PREVIEW1: &str = "wasi_snapshot_preview1";
/// The older module name, for functions whose signature and meaning did not
/// change (those that did are not offered under it).
pub const UNSTABLE: &str = "wasi_unstable";

/// The guest's exported memory and the store's data.
fn memory_and_data<'a, T: 'static>(
    caller: &'a mut Caller<'_, T>,
) -> keel::Result<(&'a mut [u8], &'a mut T)> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Ok(m.data_and_store_mut(caller)),
        _ => keel::bail!("a WASI program must export its memory as `memory`"),
    }
}

fn errno(r: WasiResult<()>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => e.raw(),
    }
}

macro_rules! wasi_functions {
    ($linker:ident, $get:ident, $module:expr; $( $name:ident ( $($arg:ident : $ty:ty),* ) ;)*) => {$(
        $linker.func_wrap(
            $module,
            stringify!($name),
            move |mut caller: Caller<'_, T>, $($arg: $ty),*| -> keel::Result<i32> {
                let (mem, data) = memory_and_data(&mut caller)?;
                let mut mem = GuestMemory::new(mem);
                Ok(errno($get(data).$name(&mut mem, $($arg),*)))
            },
        )?;
    )*};
}

/// Functions that may wait on a descriptor, for the async linker: each
/// first awaits, off the executor's thread, the descriptor it would block
/// on (see `wait.rs`), then runs as the synchronous one does.
macro_rules! wasi_functions_async {
    ($linker:ident, $get:ident, $module:expr; $( $name:ident ( $fd:ident : u32 $(, $arg:ident : $ty:ty)* ) ;)*) => {$(
        $linker.func_wrap_async(
            $module,
            stringify!($name),
            move |mut caller: Caller<'_, T>, ($fd, $($arg,)*): (u32, $($ty,)*)| {
                Box::new(async move {
                    let (_, data) = memory_and_data(&mut caller)?;
                    if let Some(host) = $get(data).read_may_block($fd) {
                        wait::readable(host).await;
                    }
                    let (mem, data) = memory_and_data(&mut caller)?;
                    let mut mem = GuestMemory::new(mem);
                    keel::Result::<i32>::Ok(errno($get(data).$name(&mut mem, $fd, $($arg),*)))
                })
            },
        )?;
    )*};
}

/// The functions of both module names that may wait on a descriptor, as
/// `wasi_functions` (blocking the thread) or `wasi_functions_async`.
macro_rules! shared_waiting_functions {
    ($how:ident, $linker:ident, $get:ident, $module:expr) => {
        $how! { $linker, $get, $module;
            fd_read(fd: u32, iovs: u32, count: u32, nread: u32);
            sock_recv(fd: u32, iovs: u32, count: u32, flags: u32, out_len: u32, out_flags: u32);
        }
    };
}

/// The functions whose signature and meaning agree between preview 1 and
/// `wasi_unstable` (snapshot 0), except those that may wait.
macro_rules! shared_functions {
    ($linker:ident, $get:ident, $module:expr) => {
        wasi_functions! { $linker, $get, $module;
            args_get(argv: u32, buf: u32);
            args_sizes_get(count: u32, size: u32);
            environ_get(environ: u32, buf: u32);
            environ_sizes_get(count: u32, size: u32);
            clock_res_get(id: u32, res: u32);
            clock_time_get(id: u32, precision: u64, time: u32);
            fd_advise(fd: u32, offset: u64, len: u64, advice: u32);
            fd_allocate(fd: u32, offset: u64, len: u64);
            fd_close(fd: u32);
            fd_datasync(fd: u32);
            fd_fdstat_get(fd: u32, out: u32);
            fd_fdstat_set_flags(fd: u32, flags: u32);
            fd_fdstat_set_rights(fd: u32, base: u64, inheriting: u64);
            fd_filestat_set_size(fd: u32, size: u64);
            fd_filestat_set_times(fd: u32, atim: u64, mtim: u64, flags: u32);
            fd_pread(fd: u32, iovs: u32, count: u32, offset: u64, nread: u32);
            fd_prestat_get(fd: u32, out: u32);
            fd_prestat_dir_name(fd: u32, path: u32, len: u32);
            fd_pwrite(fd: u32, iovs: u32, count: u32, offset: u64, nwritten: u32);
            fd_readdir(fd: u32, buf: u32, len: u32, cookie: u64, used: u32);
            fd_renumber(fd: u32, to: u32);
            fd_sync(fd: u32);
            fd_tell(fd: u32, out: u32);
            fd_write(fd: u32, iovs: u32, count: u32, nwritten: u32);
            path_create_directory(fd: u32, path: u32, len: u32);
            path_filestat_set_times(fd: u32, flags: u32, path: u32, len: u32, atim: u64, mtim: u64, fst: u32);
            path_link(old_fd: u32, old_flags: u32, old: u32, old_len: u32, new_fd: u32, new: u32, new_len: u32);
            path_open(fd: u32, dirflags: u32, path: u32, len: u32, oflags: u32, base: u64, inheriting: u64, fdflags: u32, out: u32);
            path_readlink(fd: u32, path: u32, len: u32, buf: u32, buf_len: u32, used: u32);
            path_remove_directory(fd: u32, path: u32, len: u32);
            path_rename(fd: u32, old: u32, old_len: u32, new_fd: u32, new: u32, new_len: u32);
            path_symlink(old: u32, old_len: u32, fd: u32, new: u32, new_len: u32);
            path_unlink_file(fd: u32, path: u32, len: u32);
            random_get(buf: u32, len: u32);
            sched_yield();
            sock_send(fd: u32, iovs: u32, count: u32, flags: u32, out_len: u32);
            sock_shutdown(fd: u32, how: u32);
        }
        $linker.func_wrap($module, "proc_exit", |code: u32| -> keel::Result<()> {
            Err(I32Exit(code as i32).into())
        })?;
        $linker.func_wrap(
            $module,
            "proc_raise",
            move |mut caller: Caller<'_, T>, sig: u32| -> keel::Result<i32> {
                let (mem, data) = memory_and_data(&mut caller)?;
                match $get(data).proc_raise(&mut GuestMemory::new(mem), sig) {
                    Ok(()) => Ok(0),
                    Err(funcs::RaiseOutcome::Errno(e)) => Ok(e.raw()),
                    Err(funcs::RaiseOutcome::Terminate(s)) => keel::bail!("the guest raised signal {s}"),
                }
            },
        )?;
    };
}

/// The preview 1 functions that never wait and are not offered under
/// `wasi_unstable`: snapshot 0 lays out `filestat` differently and numbers
/// `whence` differently.
macro_rules! preview1_functions {
    ($linker:ident, $get:ident) => {
        wasi_functions! { $linker, $get, PREVIEW1;
            fd_filestat_get(fd: u32, out: u32);
            fd_seek(fd: u32, offset: i64, whence: u32, out: u32);
            path_filestat_get(fd: u32, flags: u32, path: u32, len: u32, out: u32);
        }
    };
}

/// Defines every WASI preview 1 function in `linker`, under
/// `wasi_snapshot_preview1` and (where unchanged) `wasi_unstable`. `get`
/// finds the [`WasiCtx`] in the store's data.
pub fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get: impl Fn(&mut T) -> &mut WasiCtx + Send + Sync + Copy + 'static,
) -> keel::Result<()> {
    shared_functions!(linker, get, PREVIEW1);
    shared_waiting_functions!(wasi_functions, linker, get, PREVIEW1);
    preview1_functions!(linker, get);
    wasi_functions! { linker, get, PREVIEW1;
        poll_oneoff(subs: u32, events: u32, count: u32, nevents: u32);
        sock_accept(fd: u32, flags: u32, out: u32);
    }
    shared_functions!(linker, get, UNSTABLE);
    shared_waiting_functions!(wasi_functions, linker, get, UNSTABLE);
    Ok(())
}

/// [`add_to_linker`] for guests run with Keel's async calls
/// (`call_async`, `instantiate_async`): the functions that can wait
/// (`poll_oneoff` on clocks and descriptors, `fd_read` and `sock_recv` on
/// blocking sockets and the host's stdin, `sock_accept`) suspend the
/// guest's fiber instead of blocking the thread, so that the executor runs
/// other tasks meanwhile. Clocks wait on tokio's timer (the runtime must
/// have time enabled), descriptors on tokio's blocking pool. Everything
/// else behaves exactly as with [`add_to_linker`].
pub fn add_to_linker_async<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: impl Fn(&mut T) -> &mut WasiCtx + Send + Sync + Copy + 'static,
) -> keel::Result<()> {
    shared_functions!(linker, get, PREVIEW1);
    shared_waiting_functions!(wasi_functions_async, linker, get, PREVIEW1);
    preview1_functions!(linker, get);
    wasi_functions_async! { linker, get, PREVIEW1;
        sock_accept(fd: u32, flags: u32, out: u32);
    }
    linker.func_wrap_async(
        PREVIEW1,
        "poll_oneoff",
        move |mut caller: Caller<'_, T>, (subs, events, count, nevents): (u32, u32, u32, u32)| {
            Box::new(async move {
                let started = std::time::Instant::now();
                loop {
                    let (mem, data) = memory_and_data(&mut caller)?;
                    let mut mem = GuestMemory::new(mem);
                    match get(data).poll_oneoff_now(&mut mem, subs, events, count, nevents, started)
                    {
                        Ok(None) => return keel::Result::<i32>::Ok(0),
                        Err(e) => return Ok(e.raw()),
                        Ok(Some(plan)) => wait::until(plan).await,
                    }
                }
            })
        },
    )?;
    shared_functions!(linker, get, UNSTABLE);
    shared_waiting_functions!(wasi_functions_async, linker, get, UNSTABLE);
    Ok(())
}
