//! The `wasi_paths` oracle: hostile file-system calls against a preopen.
//!
//! The input decodes into up to 24 (`MAX_OPS`) WASI path operations (open
//! with any flags, create and remove directories, unlink, symlink, hard
//! link, rename, readlink, stat, set times, write and read through what
//! was opened), each with a path built from `..`, `.`, `/`, names of
//! entries inside and outside the sandbox, symlinks the host planted
//! pointing out, and raw bytes. They run from a wasm module through
//! `keel-wasi`, against a fresh directory tree:
//!
//! ```text
//! base/outside/secret          a file the guest must never see or change
//! base/outside/dir/
//! base/sandbox/                preopened as `/sandbox` (read-only if the input says so)
//! base/sandbox/a.txt, sub/     ordinary entries
//! base/sandbox/up -> ../outside        relative symlink out
//! base/sandbox/abs -> base/outside     absolute symlink out
//! ```
//!
//! Every call must return an errno (never trap or panic), and afterwards:
//! everything under `outside` is exactly as before (names, contents, link
//! targets), `base` holds nothing new, no descriptor the guest obtained
//! refers to an inode outside the sandbox, and nothing read through one
//! contains the secret.

use crate::{Finding, Stats, Verdict};
use arbitrary::Unstructured;
use keel::{Engine, Instance, Linker, Module, Store, TypedFunc};
use keel_wasi::{DirPerms, WasiCtx};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Most operations per input.
const MAX_OPS: usize = 24;
/// What `outside/secret` holds; finding it in guest memory is an escape.
const SECRET: &[u8] = b"KEEL-FUZZ-SECRET-7c1e";
/// The preopen's descriptor (after stdin, stdout and stderr).
const PREOPEN_FD: i32 = 3;

/// The guest: one forwarding function per WASI call, so that the calls
/// come from wasm with the instance's memory, as a real program's would.
const GUEST: &str = r#"(module
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_create_directory" (func $mkdir (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_remove_directory" (func $rmdir (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_unlink_file" (func $unlink (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_symlink" (func $symlink (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_link" (func $link (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_rename" (func $rename (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_readlink" (func $readlink (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_get" (func $stat (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_set_times" (func $times (param i32 i32 i32 i32 i64 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_get" (func $fstat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_readdir" (func $readdir (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $close (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "path_open") (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)
    (call $path_open (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4) (local.get 5) (local.get 6) (local.get 7) (local.get 8)))
  (func (export "mkdir") (param i32 i32 i32) (result i32) (call $mkdir (local.get 0) (local.get 1) (local.get 2)))
  (func (export "rmdir") (param i32 i32 i32) (result i32) (call $rmdir (local.get 0) (local.get 1) (local.get 2)))
  (func (export "unlink") (param i32 i32 i32) (result i32) (call $unlink (local.get 0) (local.get 1) (local.get 2)))
  (func (export "symlink") (param i32 i32 i32 i32 i32) (result i32)
    (call $symlink (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4)))
  (func (export "link") (param i32 i32 i32 i32 i32 i32 i32) (result i32)
    (call $link (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4) (local.get 5) (local.get 6)))
  (func (export "rename") (param i32 i32 i32 i32 i32 i32) (result i32)
    (call $rename (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4) (local.get 5)))
  (func (export "readlink") (param i32 i32 i32 i32 i32 i32) (result i32)
    (call $readlink (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4) (local.get 5)))
  (func (export "stat") (param i32 i32 i32 i32 i32) (result i32)
    (call $stat (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4)))
  (func (export "times") (param i32 i32 i32 i32 i64 i64 i32) (result i32)
    (call $times (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4) (local.get 5) (local.get 6)))
  (func (export "fstat") (param i32 i32) (result i32) (call $fstat (local.get 0) (local.get 1)))
  (func (export "write") (param i32 i32 i32 i32) (result i32) (call $write (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "read") (param i32 i32 i32 i32) (result i32) (call $read (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "readdir") (param i32 i32 i32 i64 i32) (result i32)
    (call $readdir (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4)))
  (func (export "close") (param i32) (result i32) (call $close (local.get 0))))"#;

// Guest memory layout.
const OUT: i32 = 0; // u32 results (fd, counts)
const IOVEC: i32 = 16; // one iovec: ptr, len
const STAT: i32 = 64; // a 64-byte filestat
const PATH_A: i32 = 1024;
const PATH_B: i32 = 2048;
const PAYLOAD: i32 = 3072; // what writes write
const BUF: i32 = 4096; // where reads, readlink and readdir land
const BUF_LEN: i32 = 8192;
const MAX_PATH: usize = 1000;

/// Engine and compiled guest, shared by all inputs.
fn guest() -> &'static (Engine, Module) {
    static GUEST_MODULE: OnceLock<(Engine, Module)> = OnceLock::new();
    GUEST_MODULE.get_or_init(|| {
        let engine = Engine::default();
        let module = Module::new(&engine, GUEST).expect("the wasi_paths guest compiles");
        (engine, module)
    })
}

/// Names the paths are built from: entries that exist, the symlinks out,
/// the way up, and names of things outside.
const COMPONENTS: &[&[u8]] = &[
    b"..", b".", b"a.txt", b"sub", b"up", b"abs", b"outside", b"secret", b"dir", b"sandbox",
    b"new", b"l", b"", b"etc", b"passwd",
];

fn arbitrary_path(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
    let mut path = Vec::new();
    if u.ratio(1, 8)? {
        path.push(b'/');
    }
    let n = u.int_in_range(1..=6)?;
    for i in 0..n {
        if i > 0 {
            path.extend_from_slice(if u.ratio(1, 10)? { b"//" } else { b"/" });
        }
        if u.ratio(1, 10)? {
            // Raw bytes: NULs, invalid UTF-8, long names.
            let raw: Vec<u8> = u.arbitrary()?;
            path.extend(raw.into_iter().take(300));
        } else {
            path.extend_from_slice(u.choose(COMPONENTS)?);
        }
    }
    if u.ratio(1, 10)? {
        path.push(b'/');
    }
    path.truncate(MAX_PATH);
    Ok(path)
}

/// One decoded operation.
#[derive(Debug)]
enum Op {
    Open {
        dir: usize,
        follow: bool,
        path: Vec<u8>,
        oflags: u16,
        rights: u64,
        fdflags: u16,
    },
    Mkdir {
        dir: usize,
        path: Vec<u8>,
    },
    Rmdir {
        dir: usize,
        path: Vec<u8>,
    },
    Unlink {
        dir: usize,
        path: Vec<u8>,
    },
    Symlink {
        target: Vec<u8>,
        dir: usize,
        path: Vec<u8>,
    },
    Link {
        from: usize,
        follow: bool,
        old: Vec<u8>,
        to: usize,
        new: Vec<u8>,
    },
    Rename {
        from: usize,
        old: Vec<u8>,
        to: usize,
        new: Vec<u8>,
    },
    Readlink {
        dir: usize,
        path: Vec<u8>,
    },
    Stat {
        dir: usize,
        follow: bool,
        path: Vec<u8>,
    },
    SetTimes {
        dir: usize,
        follow: bool,
        path: Vec<u8>,
    },
    Write {
        fd: usize,
    },
    Read {
        fd: usize,
    },
    Readdir {
        fd: usize,
    },
    Close {
        fd: usize,
    },
}

fn arbitrary_op(u: &mut Unstructured<'_>) -> arbitrary::Result<Op> {
    let dir = |u: &mut Unstructured<'_>| u.int_in_range(0..=3usize);
    Ok(match u.int_in_range(0..=13u8)? {
        0 | 1 => Op::Open {
            dir: dir(u)?,
            follow: u.arbitrary()?,
            path: arbitrary_path(u)?,
            oflags: u.int_in_range(0..=15)?,
            rights: if u.ratio(3, 4)? {
                u64::MAX
            } else {
                u.arbitrary()?
            },
            fdflags: u.int_in_range(0..=31)?,
        },
        2 => Op::Mkdir {
            dir: dir(u)?,
            path: arbitrary_path(u)?,
        },
        3 => Op::Rmdir {
            dir: dir(u)?,
            path: arbitrary_path(u)?,
        },
        4 => Op::Unlink {
            dir: dir(u)?,
            path: arbitrary_path(u)?,
        },
        5 => Op::Symlink {
            target: arbitrary_path(u)?,
            dir: dir(u)?,
            path: arbitrary_path(u)?,
        },
        6 => Op::Link {
            from: dir(u)?,
            follow: u.arbitrary()?,
            old: arbitrary_path(u)?,
            to: dir(u)?,
            new: arbitrary_path(u)?,
        },
        7 => Op::Rename {
            from: dir(u)?,
            old: arbitrary_path(u)?,
            to: dir(u)?,
            new: arbitrary_path(u)?,
        },
        8 => Op::Readlink {
            dir: dir(u)?,
            path: arbitrary_path(u)?,
        },
        9 => Op::Stat {
            dir: dir(u)?,
            follow: u.arbitrary()?,
            path: arbitrary_path(u)?,
        },
        10 => Op::SetTimes {
            dir: dir(u)?,
            follow: u.arbitrary()?,
            path: arbitrary_path(u)?,
        },
        11 => Op::Write { fd: dir(u)? },
        12 => Op::Read { fd: dir(u)? },
        _ => match u.int_in_range(0..=1u8)? {
            0 => Op::Readdir { fd: dir(u)? },
            _ => Op::Close { fd: dir(u)? },
        },
    })
}

/// The host tree one input runs against; removed when dropped.
struct Tree {
    base: PathBuf,
}

impl Tree {
    fn new() -> std::io::Result<Tree> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let base = std::env::temp_dir().join(format!(
            "keel-fuzz-wasi-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("outside/dir"))?;
        std::fs::write(base.join("outside/secret"), SECRET)?;
        std::fs::create_dir_all(base.join("sandbox/sub"))?;
        std::fs::write(base.join("sandbox/a.txt"), b"inside")?;
        std::os::unix::fs::symlink("../outside", base.join("sandbox/up"))?;
        std::os::unix::fs::symlink(base.join("outside"), base.join("sandbox/abs"))?;
        Ok(Tree { base })
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        // The guest may have left a directory without write permission
        // only through our own API, which cannot chmod; plain removal
        // suffices.
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// Everything observable about a directory tree, without following links.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
            let desc = match std::fs::symlink_metadata(&path) {
                Ok(m) if m.file_type().is_symlink() => {
                    format!("link {:?}", std::fs::read_link(&path).ok())
                }
                Ok(m) if m.is_dir() => {
                    stack.push(path.clone());
                    format!("dir {:o}", m.mode())
                }
                Ok(m) => format!(
                    "file {:o} {} {:?} {}",
                    m.mode(),
                    m.nlink(),
                    std::fs::read(&path).ok(),
                    m.mtime()
                ),
                Err(e) => format!("error {e}"),
            };
            out.insert(rel, desc);
        }
    }
    out
}

/// The guest's entry points.
#[allow(
    clippy::type_complexity,
    reason = "each field spells out one WASI signature"
)]
struct Calls {
    path_open: TypedFunc<(i32, i32, i32, i32, i32, i64, i64, i32, i32), i32>,
    path1: [TypedFunc<(i32, i32, i32), i32>; 3],
    symlink: TypedFunc<(i32, i32, i32, i32, i32), i32>,
    link: TypedFunc<(i32, i32, i32, i32, i32, i32, i32), i32>,
    rename: TypedFunc<(i32, i32, i32, i32, i32, i32), i32>,
    readlink: TypedFunc<(i32, i32, i32, i32, i32, i32), i32>,
    stat: TypedFunc<(i32, i32, i32, i32, i32), i32>,
    times: TypedFunc<(i32, i32, i32, i32, i64, i64, i32), i32>,
    fstat: TypedFunc<(i32, i32), i32>,
    io: [TypedFunc<(i32, i32, i32, i32), i32>; 2],
    readdir: TypedFunc<(i32, i32, i32, i64, i32), i32>,
    close: TypedFunc<(i32,), i32>,
}

impl Calls {
    fn new(store: &mut Store<WasiCtx>, i: &Instance) -> keel::Result<Calls> {
        Ok(Calls {
            path_open: i.get_typed_func(&mut *store, "path_open")?,
            path1: [
                i.get_typed_func(&mut *store, "mkdir")?,
                i.get_typed_func(&mut *store, "rmdir")?,
                i.get_typed_func(&mut *store, "unlink")?,
            ],
            symlink: i.get_typed_func(&mut *store, "symlink")?,
            link: i.get_typed_func(&mut *store, "link")?,
            rename: i.get_typed_func(&mut *store, "rename")?,
            readlink: i.get_typed_func(&mut *store, "readlink")?,
            stat: i.get_typed_func(&mut *store, "stat")?,
            times: i.get_typed_func(&mut *store, "times")?,
            fstat: i.get_typed_func(&mut *store, "fstat")?,
            io: [
                i.get_typed_func(&mut *store, "write")?,
                i.get_typed_func(&mut *store, "read")?,
            ],
            readdir: i.get_typed_func(&mut *store, "readdir")?,
            close: i.get_typed_func(&mut *store, "close")?,
        })
    }
}

/// The oracle.
pub fn run(data: &[u8]) -> Verdict {
    let mut u = Unstructured::new(data);
    let Ok(read_only) = u.ratio(1, 4) else {
        return Ok(Stats::default());
    };
    let mut ops = Vec::new();
    while ops.len() < MAX_OPS && !u.is_empty() {
        match arbitrary_op(&mut u) {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    if ops.is_empty() {
        return Ok(Stats::default());
    }
    let tree = Tree::new().map_err(|e| Finding::new(format!("cannot set up the tree: {e}")))?;
    let outside_before = snapshot(&tree.base.join("outside"));
    let outside_inodes: Vec<u64> = ["", "outside", "outside/secret", "outside/dir"]
        .iter()
        .filter_map(|p| std::fs::metadata(tree.base.join(p)).ok())
        .map(|m| m.ino())
        .collect();

    let (engine, module) = guest();
    let perms = if read_only {
        DirPerms::ReadOnly
    } else {
        DirPerms::ReadWrite
    };
    let ctx = WasiCtx::builder()
        .preopened_dir(tree.base.join("sandbox"), "/sandbox", perms)
        .map_err(|e| Finding::new(format!("cannot preopen: {e}")))?
        .build()
        .map_err(|e| Finding::new(format!("{e}")))?;
    let mut linker = Linker::new(engine);
    keel_wasi::add_to_linker(&mut linker, |c: &mut WasiCtx| c)
        .map_err(|e| Finding::new(format!("{e:#}")))?;
    let mut store = Store::new(engine, ctx);
    let setup = |store: &mut Store<WasiCtx>| -> keel::Result<(Instance, Calls)> {
        let instance = linker.instantiate(&mut *store, module)?;
        let calls = Calls::new(store, &instance)?;
        Ok((instance, calls))
    };
    let (instance, calls) = setup(&mut store).map_err(|e| Finding::new(format!("setup: {e:#}")))?;
    let memory = instance
        .get_memory(&mut store, "memory")
        .ok_or_else(|| Finding::new("the guest has no memory"))?;
    memory
        .write(&mut store, PAYLOAD as usize, b"pwned")
        .map_err(|e| Finding::new(format!("{e}")))?;

    // Descriptors the guest can name: the preopen, then what it opened.
    let mut fds: Vec<i32> = vec![PREOPEN_FD];
    let mut stats = Stats::default();
    for op in &ops {
        let fd = |i: &usize| fds[i % fds.len()];
        let put = |store: &mut Store<WasiCtx>, at: i32, path: &[u8]| -> Result<i32, Finding> {
            memory
                .write(&mut *store, at as usize, path)
                .map_err(|e| Finding::new(format!("{e}")))?;
            Ok(path.len() as i32)
        };
        let result = match op {
            Op::Open {
                dir,
                follow,
                path,
                oflags,
                rights,
                fdflags,
            } => {
                let len = put(&mut store, PATH_A, path)?;
                let r = calls.path_open.call(
                    &mut store,
                    (
                        fd(dir),
                        i32::from(*follow),
                        PATH_A,
                        len,
                        i32::from(*oflags),
                        *rights as i64,
                        *rights as i64,
                        i32::from(*fdflags),
                        OUT,
                    ),
                );
                if let Ok(0) = r {
                    let mut new = [0u8; 4];
                    memory
                        .read(&store, OUT as usize, &mut new)
                        .map_err(|e| Finding::new(format!("{e}")))?;
                    fds.push(i32::from_le_bytes(new));
                }
                r
            }
            Op::Mkdir { dir, path } | Op::Rmdir { dir, path } | Op::Unlink { dir, path } => {
                let which = match op {
                    Op::Mkdir { .. } => 0,
                    Op::Rmdir { .. } => 1,
                    _ => 2,
                };
                let len = put(&mut store, PATH_A, path)?;
                calls.path1[which].call(&mut store, (fd(dir), PATH_A, len))
            }
            Op::Symlink { target, dir, path } => {
                let tl = put(&mut store, PATH_A, target)?;
                let pl = put(&mut store, PATH_B, path)?;
                calls
                    .symlink
                    .call(&mut store, (PATH_A, tl, fd(dir), PATH_B, pl))
            }
            Op::Link {
                from,
                follow,
                old,
                to,
                new,
            } => {
                let ol = put(&mut store, PATH_A, old)?;
                let nl = put(&mut store, PATH_B, new)?;
                calls.link.call(
                    &mut store,
                    (fd(from), i32::from(*follow), PATH_A, ol, fd(to), PATH_B, nl),
                )
            }
            Op::Rename { from, old, to, new } => {
                let ol = put(&mut store, PATH_A, old)?;
                let nl = put(&mut store, PATH_B, new)?;
                calls
                    .rename
                    .call(&mut store, (fd(from), PATH_A, ol, fd(to), PATH_B, nl))
            }
            Op::Readlink { dir, path } => {
                let len = put(&mut store, PATH_A, path)?;
                calls
                    .readlink
                    .call(&mut store, (fd(dir), PATH_A, len, BUF, BUF_LEN, OUT))
            }
            Op::Stat { dir, follow, path } => {
                let len = put(&mut store, PATH_A, path)?;
                let r = calls
                    .stat
                    .call(&mut store, (fd(dir), i32::from(*follow), PATH_A, len, STAT));
                if let Ok(0) = r {
                    check_inode(&memory, &store, &outside_inodes, "path_filestat_get")?;
                }
                r
            }
            Op::SetTimes { dir, follow, path } => {
                let len = put(&mut store, PATH_A, path)?;
                // Explicit times (both `_SET` flags): a change would show in
                // the snapshot's mtime.
                calls.times.call(
                    &mut store,
                    (fd(dir), i32::from(*follow), PATH_A, len, 1, 1, 0b0101),
                )
            }
            Op::Write { fd: f } => {
                memory
                    .write(
                        &mut store,
                        IOVEC as usize,
                        &[&PAYLOAD.to_le_bytes()[..], &5u32.to_le_bytes()].concat(),
                    )
                    .map_err(|e| Finding::new(format!("{e}")))?;
                calls.io[0].call(&mut store, (fd(f), IOVEC, 1, OUT))
            }
            Op::Read { fd: f } => {
                memory
                    .write(
                        &mut store,
                        IOVEC as usize,
                        &[&BUF.to_le_bytes()[..], &BUF_LEN.to_le_bytes()].concat(),
                    )
                    .map_err(|e| Finding::new(format!("{e}")))?;
                calls.io[1].call(&mut store, (fd(f), IOVEC, 1, OUT))
            }
            Op::Readdir { fd: f } => calls
                .readdir
                .call(&mut store, (fd(f), BUF, BUF_LEN, 0, OUT)),
            Op::Close { fd: f } => {
                let n = fd(f);
                // Closing the preopen is allowed and makes later calls fail
                // with EBADF, which is fine to explore.
                calls.close.call(&mut store, (n,))
            }
        };
        match result {
            Ok(errno) if (0..=76).contains(&errno) => {}
            Ok(errno) => {
                return Err(Finding::new(format!(
                    "{op:?} returned {errno}, not a WASI errno"
                )));
            }
            Err(e) => {
                return Err(Finding::new(format!(
                    "{op:?} trapped instead of returning an errno: {e:#}"
                )));
            }
        }
        stats.calls_compared += 1;
        // Whatever a descriptor refers to must be inside the sandbox.
        for &f in &fds {
            if let Ok(0) = calls.fstat.call(&mut store, (f, STAT)) {
                check_inode(&memory, &store, &outside_inodes, "fd_filestat_get")?;
            }
        }
        if memory
            .data(&store)
            .windows(SECRET.len())
            .any(|w| w == SECRET)
        {
            return Err(Finding::new(format!(
                "after {op:?}, guest memory holds the secret from outside the sandbox"
            )));
        }
    }
    drop(store);

    let outside_after = snapshot(&tree.base.join("outside"));
    if outside_after != outside_before {
        return Err(Finding::new(format!(
            "the operations changed what is outside the sandbox:\nbefore {outside_before:?}\nafter  {outside_after:?}\nops {ops:#?}"
        )));
    }
    let mut top: Vec<_> = std::fs::read_dir(&tree.base)
        .map_err(|e| Finding::new(format!("{e}")))?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    top.sort();
    if top != ["outside", "sandbox"] {
        return Err(Finding::new(format!(
            "the operations created {top:?} beside the sandbox; ops {ops:#?}"
        )));
    }
    Ok(stats)
}

/// The filestat at [`STAT`] must not describe an inode outside the sandbox.
fn check_inode(
    memory: &keel::Memory,
    store: &Store<WasiCtx>,
    outside: &[u64],
    what: &str,
) -> Result<(), Finding> {
    let mut ino = [0u8; 8];
    memory
        .read(store, STAT as usize + 8, &mut ino)
        .map_err(|e| Finding::new(format!("{e}")))?;
    let ino = u64::from_le_bytes(ino);
    if ino != 0 && outside.contains(&ino) {
        return Err(Finding::new(format!(
            "{what} reached inode {ino}, which is outside the sandbox"
        )));
    }
    Ok(())
}
