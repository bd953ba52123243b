//! The `wasi_iovec` oracle: `iovec` arrays with hostile counts and lengths
//! through `keel-wasi`, against a model, with bounded host memory.
//!
//! The input decodes into up to 32 (`MAX_OPS`) calls of `fd_write` (to a
//! captured stdout with a 1 MiB limit), `fd_read` (from a small stdin),
//! `fd_pwrite` and `fd_pread` (on a file in a scratch preopen), each with an
//! iovec count chosen among the interesting ones (0, `IOV_MAX` and one
//! more, `0x1FFFFFFF`, `u32::MAX`, anything) and an array placed where it
//! fits, where it runs off the end of memory, or anywhere; its entries
//! point anywhere, with lengths up to `u32::MAX`. The guest's memory is
//! 4 GiB, almost none of it touched, so that huge counts and lengths are
//! in bounds and reach the host's code rather than failing at once.
//!
//! A model computes each call's answer from guest memory first: `EINVAL`
//! above `IOV_MAX` entries or 4 GiB in total, `EFAULT` for an entry or a
//! buffer outside memory, else the bytes moved (all of them for files,
//! what fits for the limited pipe, what is left for reads); every call
//! must answer exactly that, and the pipe and the file must end up holding
//! what the model wrote. (A `fd_pwrite` the model finds larger than 1 MiB
//! is skipped: it would only be slow.) Over the whole input, the peak RSS
//! of the process may grow by at most 256 MiB (`MAX_RSS_GROWTH`): a host
//! that copied an iovec array or a payload of guest-chosen size would not
//! stay under that.

use crate::{Finding, Stats, Verdict};
use arbitrary::Unstructured;
use keel::{Engine, Linker, Module, Store};
use keel_wasi::{DirPerms, InputStream, MemoryInputPipe, MemoryOutputPipe, OutputStream, WasiCtx};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Most calls per input.
const MAX_OPS: usize = 32;
/// The largest count `keel-wasi` takes (wasi-libc's `IOV_MAX`).
const IOV_MAX: u32 = 1024;
/// Bytes the captured stdout keeps.
const PIPE_LIMIT: usize = 1 << 20;
/// Largest `fd_pwrite` the oracle lets through.
const MAX_PWRITE: u64 = 1 << 20;
/// Most the process's peak RSS may grow over one input.
const MAX_RSS_GROWTH: u64 = 256 << 20;
/// The guest memory's size: 65536 pages.
const MEM_END: u64 = 1 << 32;
/// Where the oracle lays out iovec arrays.
const TABLE: u32 = 0x1_0000;
/// Where the oracle puts recognizable bytes for the buffers to point at.
const DATA: u32 = 0x10_0000;
/// How many bytes of `DATA` hold a pattern.
const DATA_LEN: u32 = 0x1_0000;
/// Where results are written.
const RESULT: u32 = 8;
/// The file's descriptor: opened by the guest beneath the preopen (fd 3).
const FILE_FD: i32 = 4;

const EINVAL: i32 = 28;
const EFAULT: i32 = 21;
const ENOSPC: i32 = 51;

const GUEST: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_pread" (func $fd_pread (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_pwrite" (func $fd_pwrite (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (memory (export "memory") 65536)
  (func (export "fd_write") (param i32 i32 i32 i32) (result i32)
    (call $fd_write (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "fd_read") (param i32 i32 i32 i32) (result i32)
    (call $fd_read (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "fd_pread") (param i32 i32 i32 i64 i32) (result i32)
    (call $fd_pread (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4)))
  (func (export "fd_pwrite") (param i32 i32 i32 i64 i32) (result i32)
    (call $fd_pwrite (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4)))
  (func (export "open") (param i32 i32) (result i32)
    ;; path_open(3, 0, path, len, CREAT | TRUNC, READ | SEEK | WRITE, 0, 0, out)
    (call $path_open (i32.const 3) (i32.const 0) (local.get 0) (local.get 1) (i32.const 9)
      (i64.const 70) (i64.const 0) (i32.const 0) (i32.const 8))))"#;

fn guest() -> &'static (Engine, Module) {
    static GUEST_MODULE: OnceLock<(Engine, Module)> = OnceLock::new();
    GUEST_MODULE.get_or_init(|| {
        let engine = Engine::default();
        let module = Module::new(&engine, GUEST).expect("the wasi_iovec guest compiles");
        (engine, module)
    })
}

/// Which function a call goes to.
#[derive(Debug, Clone, Copy)]
enum Call {
    Write,
    Read,
    Pwrite(u16),
    Pread(u16),
}

/// One call: the function, the array's place and count, and the entries
/// the oracle writes there first (only when the array is at `TABLE`).
#[derive(Debug)]
struct Op {
    call: Call,
    iovs: u32,
    count: u32,
    entries: Vec<(u32, u32)>,
}

fn arbitrary_op(u: &mut Unstructured<'_>) -> arbitrary::Result<Op> {
    let call = match u.int_in_range(0..=3u8)? {
        0 => Call::Write,
        1 => Call::Read,
        2 => Call::Pwrite(u.arbitrary()?),
        _ => Call::Pread(u.arbitrary()?),
    };
    let count = match u.int_in_range(0..=9u8)? {
        0 => 0,
        1 => 1,
        2 => u.int_in_range(2..=64)?,
        3 => IOV_MAX - 1,
        4 => IOV_MAX,
        5 => IOV_MAX + 1,
        6 => 0x1FFF_FFFF,
        7 => u32::MAX,
        8 => u.int_in_range(IOV_MAX..=0x0100_0000)?,
        _ => u.arbitrary()?,
    };
    let iovs = match u.int_in_range(0..=5u8)? {
        0..=2 => TABLE,
        3 => (MEM_END - 8 * u64::from(u.int_in_range(1..=4u32)?)) as u32,
        4 => u32::MAX - 3,
        _ => u.arbitrary()?,
    };
    let mut entries = Vec::new();
    if iovs == TABLE && count <= IOV_MAX {
        for _ in 0..count {
            if u.is_empty() {
                break;
            }
            entries.push(arbitrary_entry(u)?);
        }
    }
    Ok(Op {
        call,
        iovs,
        count,
        entries,
    })
}

fn arbitrary_entry(u: &mut Unstructured<'_>) -> arbitrary::Result<(u32, u32)> {
    let buf = match u.int_in_range(0..=4u8)? {
        0 | 1 => DATA + u.int_in_range(0..=DATA_LEN)?,
        2 => 0,
        3 => (MEM_END - u64::from(u.int_in_range(0..=64u32)?)) as u32,
        _ => u.arbitrary()?,
    };
    let to_end = (MEM_END - u64::from(buf)) as u32;
    let len = match u.int_in_range(0..=7u8)? {
        0 => 0,
        1 => u.int_in_range(1..=4096)?,
        2 => 1 << 16,
        3 => u32::MAX,
        4 => to_end,
        5 => to_end.wrapping_add(1),
        6 => u.int_in_range(0..=1 << 20)?,
        _ => u.arbitrary()?,
    };
    Ok((buf, len))
}

/// What `keel-wasi` must make of the array: its entries, or an errno.
fn model_iovecs(mem: &[u8], iovs: u32, count: u32) -> Result<Vec<(u32, u32)>, i32> {
    if count > IOV_MAX {
        return Err(EINVAL);
    }
    let word = |at: u64| -> Result<u32, i32> {
        let at = usize::try_from(at).map_err(|_| EFAULT)?;
        let b = mem.get(at..at + 4).ok_or(EFAULT)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let mut out = Vec::new();
    let mut total = 0u64;
    for i in 0..u64::from(count) {
        let at = u64::from(iovs) + 8 * i;
        let (buf, len) = (word(at)?, word(at + 4)?);
        if u64::from(buf) + u64::from(len) > mem.len() as u64 {
            return Err(EFAULT);
        }
        total += u64::from(len);
        if total > u64::from(u32::MAX) {
            return Err(EINVAL);
        }
        out.push((buf, len));
    }
    Ok(out)
}

/// The bytes the entries point to, in order, at most `limit` of them.
fn gather(mem: &[u8], iovecs: &[(u32, u32)], limit: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for &(buf, len) in iovecs {
        let room = limit - out.len() as u64;
        let n = u64::from(len).min(room) as usize;
        out.extend_from_slice(&mem[buf as usize..buf as usize + n]);
        if out.len() as u64 == limit {
            break;
        }
    }
    out
}

/// A field of `/proc/self/status`, in bytes.
fn status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The RSS now, after restarting the peak from here; `None` where that
/// cannot be done (not Linux, or no `/proc`).
fn restart_peak() -> Option<u64> {
    std::fs::write("/proc/self/clear_refs", "5").ok()?;
    status_bytes("VmRSS:")
}

/// The oracle.
pub fn run(data: &[u8]) -> Verdict {
    let mut u = Unstructured::new(data);
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
    let (engine, module) = guest();
    static RUN: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "keel-fuzz-iovec-{}-{}",
        std::process::id(),
        RUN.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| Finding::new(format!("scratch: {e}")))?;
    let verdict = run_ops(engine, module, &dir, &ops);
    let _ = std::fs::remove_dir_all(&dir);
    verdict
}

fn run_ops(engine: &Engine, module: &Module, dir: &std::path::Path, ops: &[Op]) -> Verdict {
    let fail = |what: &str, e: &dyn std::fmt::Display| Finding::new(format!("{what}: {e:#}"));
    let stdin: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
    let stdout = MemoryOutputPipe::with_limit(PIPE_LIMIT);
    let ctx = WasiCtx::builder()
        .stdin(InputStream::Memory(MemoryInputPipe::new(stdin.clone())))
        .stdout(OutputStream::Memory(stdout.clone()))
        .preopened_dir(dir, "d", DirPerms::ReadWrite)
        .map_err(|e| fail("preopen", &e))?
        .build()
        .map_err(|e| fail("build", &e))?;
    let mut linker = Linker::new(engine);
    keel_wasi::add_to_linker(&mut linker, |c: &mut WasiCtx| c).map_err(|e| fail("link", &e))?;
    let mut store = Store::new(engine, ctx);
    let instance = linker
        .instantiate(&mut store, module)
        .map_err(|e| fail("instantiate", &e))?;
    let memory = instance
        .get_memory(&mut store, "memory")
        .ok_or_else(|| Finding::new("the guest has no memory"))?;
    let mut func = |name: &str| -> Result<keel::Func, Finding> {
        instance
            .get_func(&mut store, name)
            .ok_or_else(|| Finding::new(format!("no {name}")))
    };
    let (write, read) = (func("fd_write")?, func("fd_read")?);
    let (pwrite, pread) = (func("fd_pwrite")?, func("fd_pread")?);
    let typed = |e: keel::Error| fail("typed", &e);
    let write = write
        .typed::<(i32, i32, i32, i32), i32>(&store)
        .map_err(typed)?;
    let read = read
        .typed::<(i32, i32, i32, i32), i32>(&store)
        .map_err(typed)?;
    let pwrite = pwrite
        .typed::<(i32, i32, i32, i64, i32), i32>(&store)
        .map_err(typed)?;
    let pread = pread
        .typed::<(i32, i32, i32, i64, i32), i32>(&store)
        .map_err(typed)?;
    let open = instance
        .get_typed_func::<(i32, i32), i32>(&mut store, "open")
        .map_err(|e| fail("open", &e))?;
    let pattern: Vec<u8> = (0..DATA_LEN)
        .map(|i| (i.wrapping_mul(31) >> 3) as u8 | 1)
        .collect();
    memory
        .write(&mut store, DATA as usize, &pattern)
        .and_then(|()| memory.write(&mut store, 64, b"f"))
        .map_err(|e| fail("setup", &e))?;
    let opened = open
        .call(&mut store, (64, 1))
        .map_err(|e| fail("open", &e))?;
    if opened != 0 || memory.data(&store)[RESULT as usize] != FILE_FD as u8 {
        return Err(Finding::new(format!(
            "cannot open the file: errno {opened}"
        )));
    }

    let base = restart_peak();
    // What the pipe, stdin and the file hold, per the model.
    let (mut piped, mut stdin_left, mut file) = (Vec::new(), stdin.len() as u64, Vec::new());
    let mut compared = 0;
    for op in ops {
        let mut table = Vec::with_capacity(op.entries.len() * 8);
        for (buf, len) in &op.entries {
            table.extend_from_slice(&buf.to_le_bytes());
            table.extend_from_slice(&len.to_le_bytes());
        }
        memory
            .write(&mut store, op.iovs as usize, &table)
            .map_err(|e| fail("table", &e))?;
        let mem = memory.data(&store);
        let expected = model_iovecs(mem, op.iovs, op.count);
        let total = expected
            .as_ref()
            .map_or(0, |v| v.iter().map(|&(_, l)| u64::from(l)).sum::<u64>());
        let (iovs, count) = (op.iovs as i32, op.count as i32);
        let (answer, want) = match op.call {
            Call::Write => {
                let room = (PIPE_LIMIT - piped.len()) as u64;
                let want = expected.map(|v| {
                    let data = gather(mem, &v, room);
                    piped.extend_from_slice(&data);
                    data.len() as u64
                });
                let want = match want {
                    Ok(0) if total > 0 => Err(ENOSPC),
                    w => w,
                };
                (
                    write.call(&mut store, (1, iovs, count, RESULT as i32)),
                    want,
                )
            }
            Call::Read => {
                let want = expected.map(|_| {
                    let n = total.min(stdin_left);
                    stdin_left -= n;
                    n
                });
                (read.call(&mut store, (0, iovs, count, RESULT as i32)), want)
            }
            Call::Pwrite(offset) => {
                if total > MAX_PWRITE {
                    continue;
                }
                let want = expected.map(|v| {
                    let data = gather(mem, &v, total);
                    let at = usize::from(offset);
                    // Writing nothing does not extend the file.
                    if !data.is_empty() {
                        if file.len() < at + data.len() {
                            file.resize(at + data.len(), 0);
                        }
                        file[at..at + data.len()].copy_from_slice(&data);
                    }
                    data.len() as u64
                });
                let args = (FILE_FD, iovs, count, i64::from(offset), RESULT as i32);
                (pwrite.call(&mut store, args), want)
            }
            Call::Pread(offset) => {
                let left = (file.len() as u64).saturating_sub(u64::from(offset));
                let want = expected.map(|_| total.min(left));
                let args = (FILE_FD, iovs, count, i64::from(offset), RESULT as i32);
                (pread.call(&mut store, args), want)
            }
        };
        let errno = answer.map_err(|e| fail(&format!("{op:?} trapped"), &e))?;
        let got = match errno {
            0 => {
                let mut b = [0u8; 4];
                memory
                    .read(&store, RESULT as usize, &mut b)
                    .map_err(|e| fail("result", &e))?;
                Ok(u64::from(u32::from_le_bytes(b)))
            }
            e => Err(e),
        };
        if got != want {
            return Err(Finding::new(format!(
                "{op:?}: keel-wasi answered {got:?} (Ok: bytes moved, Err: errno), \
                 the model {want:?}"
            )));
        }
        compared += 1;
    }
    if stdout.contents() != piped {
        return Err(Finding::new("stdout does not hold what the model wrote"));
    }
    let on_disk = std::fs::read(dir.join("f")).map_err(|e| fail("read back", &e))?;
    if on_disk != file {
        return Err(Finding::new(format!(
            "the file holds {} bytes, not the {} the model wrote (or not the same)",
            on_disk.len(),
            file.len()
        )));
    }
    if let (Some(base), Some(peak)) = (base, status_bytes("VmHWM:")) {
        let grew = peak.saturating_sub(base);
        if grew > MAX_RSS_GROWTH {
            return Err(Finding::new(format!(
                "the host's peak RSS grew by {} MiB over {} calls",
                grew >> 20,
                ops.len()
            )));
        }
    }
    Ok(Stats {
        calls_compared: compared,
        ..Stats::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An input that decodes to exactly `ops`-shaped bytes is hard to
    /// write by hand; pseudo-random inputs cover the choices instead.
    fn inputs() -> impl Iterator<Item = Vec<u8>> {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        (0..64).map(move |_| {
            (0..512)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 24) as u8
                })
                .collect()
        })
    }

    #[test]
    fn random_inputs_agree_with_the_model() {
        let mut compared = 0;
        for input in inputs() {
            match run(&input) {
                Ok(stats) => compared += stats.calls_compared,
                Err(f) => panic!("{f}"),
            }
        }
        assert!(compared > 200, "only {compared} calls compared");
    }

    #[test]
    fn hostile_counts_are_refused_and_cheap() {
        // Every op: fd_write (0), count 0x1FFFFFFF (6), array at TABLE (0).
        let input = [0u8, 6, 0].repeat(MAX_OPS);
        let stats = run(&input).unwrap_or_else(|f| panic!("{f}"));
        assert_eq!(stats.calls_compared, MAX_OPS);
    }
}
