//! Hostile sizes and counts: what one WASI call may cost the host. A guest
//! chooses every count and length it passes, so none of them may decide how
//! much host memory a call allocates or how long it runs: iovec counts are
//! bounded as the kernel bounds `IOV_MAX`, payloads move in bounded chunks
//! straight from guest memory, and subscription counts and path lengths have
//! limits. Each call here is measured on a thread of its own: wall time, and
//! growth of the process's peak RSS (`VmHWM`, reset through
//! `/proc/self/clear_refs`). The tests in this file run one at a time so
//! that they do not see each other's memory.
//!
//! Also here: a `MemoryOutputPipe` with a limit, and the arguments and
//! environment variables a `WasiCtxBuilder` refuses (a NUL byte would cut
//! them short in the guest, an `=` in a name would split them differently).

mod common;

use keel::{Instance, Linker, Module, Store};
use keel_wasi::{DirPerms, WasiCtx, WasiCtxBuilder};
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const EINVAL: i32 = 28;
const ENAMETOOLONG: i32 = 37;

/// The largest iovec count a call accepts (wasi-libc's `IOV_MAX`).
const IOV_MAX: i32 = 1024;
/// An iovec array filling the whole 4 GiB memory.
const HUGE_IOV_COUNT: i32 = 0x1FFF_FFFF;
/// Where results are written: past the end of every huge array.
const RESULT: i32 = -8; // 0xFFFF_FFF8
/// Most a call here may take.
const FAST: Duration = Duration::from_secs(1);
/// Most the process's peak RSS may grow during a call.
const SMALL: u64 = 50 << 20;
/// How long a call may run before the test gives up on it.
const WATCHDOG: Duration = Duration::from_secs(30);

const MIB: u32 = 1 << 20;

/// A guest with a 4 GiB memory, none of it touched, that passes its
/// arguments straight to the WASI functions of the same name.
const WAT: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_pread" (func $fd_pread (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_pwrite" (func $fd_pwrite (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_accept" (func $sock_accept (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_recv"
    (func $sock_recv (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_send" (func $sock_send (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_symlink"
    (func $path_symlink (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 65536)
  (func (export "fd_write") (param i32 i32 i32 i32) (result i32)
    (call $fd_write (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "fd_read") (param i32 i32 i32 i32) (result i32)
    (call $fd_read (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "fd_pread") (param i32 i32 i32 i64 i32) (result i32)
    (call $fd_pread (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4)))
  (func (export "fd_pwrite") (param i32 i32 i32 i64 i32) (result i32)
    (call $fd_pwrite (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4)))
  (func (export "sock_accept") (param i32 i32 i32) (result i32)
    (call $sock_accept (local.get 0) (local.get 1) (local.get 2)))
  (func (export "sock_recv") (param i32 i32 i32 i32 i32 i32) (result i32)
    (call $sock_recv (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4)
      (local.get 5)))
  (func (export "sock_send") (param i32 i32 i32 i32 i32) (result i32)
    (call $sock_send (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4)))
  (func (export "poll_oneoff") (param i32 i32 i32 i32) (result i32)
    (call $poll_oneoff (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "path_open") (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)
    (call $path_open (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4)
      (local.get 5) (local.get 6) (local.get 7) (local.get 8)))
  (func (export "path_symlink") (param i32 i32 i32 i32 i32) (result i32)
    (call $path_symlink (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4))))"#;

/// The tests of this file, one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// A field of `/proc/self/status`, in bytes.
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    kb * 1024
}

/// What one call cost.
struct Cost<R> {
    result: R,
    took: Duration,
    /// Growth of the peak RSS during the call, in bytes.
    grew: u64,
}

impl<R: std::fmt::Debug> Cost<R> {
    fn assert_cheap(&self, what: &str) {
        println!(
            "{what}: {:?} in {:?}, peak RSS +{} MB",
            self.result,
            self.took,
            self.grew >> 20
        );
        assert!(self.took < FAST, "{what} took {:?}", self.took);
        assert!(
            self.grew < SMALL,
            "{what} grew the host's peak RSS by {} MB",
            self.grew >> 20
        );
    }
}

/// Runs `setup`, then measures `call` on the result, on a thread of its
/// own; fails if the call runs longer than the watchdog allows.
fn measure<S, R>(
    setup: impl FnOnce() -> S + Send + 'static,
    call: impl FnOnce(&mut S) -> R + Send + 'static,
) -> Cost<R>
where
    R: Send + 'static,
{
    let (base_tx, base_rx) = std::sync::mpsc::channel();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut state = setup();
        // Start the peak from here (Linux 4.0 and later): the call's own
        // growth is what counts.
        std::fs::write("/proc/self/clear_refs", "5").expect("can reset the peak RSS");
        let base = status_bytes("VmRSS:");
        base_tx.send(base).unwrap();
        let start = Instant::now();
        let result = call(&mut state);
        let took = start.elapsed();
        let grew = status_bytes("VmHWM:").saturating_sub(base);
        tx.send(Cost { result, took, grew }).unwrap();
        drop(state);
    });
    let base = base_rx.recv().expect("setup succeeds");
    rx.recv_timeout(WATCHDOG).unwrap_or_else(|_| {
        panic!(
            "the call did not return within {WATCHDOG:?}; peak RSS grew by {} MB meanwhile",
            status_bytes("VmHWM:").saturating_sub(base) >> 20
        )
    })
}

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

struct Guest {
    store: Store<WasiCtx>,
    instance: Instance,
}

impl Guest {
    fn new(b: &mut WasiCtxBuilder) -> Guest {
        let engine = common::engine();
        let module = Module::new(engine, WAT).unwrap();
        let mut linker = Linker::new(engine);
        keel_wasi::add_to_linker(&mut linker, |c: &mut WasiCtx| c).unwrap();
        let mut store = Store::new(engine, b.build().unwrap());
        let instance = linker.instantiate(&mut store, &module).unwrap();
        Guest { store, instance }
    }

    /// A guest whose fd 3 is a fresh scratch directory holding `f.txt`
    /// (64 bytes), and whose fd 4 is that file opened to read and write.
    fn with_file(name: &str) -> (Guest, std::path::PathBuf) {
        let dir = common::scratch(name);
        std::fs::write(dir.join("f.txt"), [b'x'; 64]).unwrap();
        let mut b = WasiCtx::builder();
        b.preopened_dir(&dir, "d", DirPerms::ReadWrite).unwrap();
        let mut g = Guest::new(&mut b);
        assert_eq!(g.open("f.txt", 0), 4);
        (g, dir)
    }

    /// Opens `path` beneath fd 3 to read, write and seek, with `oflags`;
    /// the new descriptor.
    fn open(&mut self, path: &str, oflags: i32) -> i32 {
        let at = 1 << 20;
        self.write(at, path.as_bytes());
        let f = self
            .instance
            .get_typed_func::<(i32, i32, i32, i32, i32, i64, i64, i32, i32), i32>(
                &mut self.store,
                "path_open",
            )
            .unwrap();
        let rights = 2 | 4 | 64; // FD_READ | FD_SEEK | FD_WRITE
        let args = (
            3,
            0,
            at as i32,
            path.len() as i32,
            oflags,
            rights,
            0,
            0,
            RESULT,
        );
        assert_eq!(f.call(&mut self.store, args).unwrap(), 0, "open {path}");
        self.u32(RESULT as u32 as usize) as i32
    }

    fn write(&mut self, at: usize, bytes: &[u8]) {
        let m = self.instance.get_memory(&mut self.store, "memory").unwrap();
        m.write(&mut self.store, at, bytes).unwrap();
    }

    fn u32(&mut self, at: usize) -> u32 {
        let m = self.instance.get_memory(&mut self.store, "memory").unwrap();
        let mut b = [0u8; 4];
        m.read(&self.store, at, &mut b).unwrap();
        u32::from_le_bytes(b)
    }

    fn iovec(&mut self, at: usize, buf: u32, len: u32) {
        let mut b = buf.to_le_bytes().to_vec();
        b.extend_from_slice(&len.to_le_bytes());
        self.write(at, &b);
    }

    fn call<P: keel::WasmParams>(&mut self, name: &str, params: P) -> i32 {
        let f = self
            .instance
            .get_typed_func::<P, i32>(&mut self.store, name)
            .unwrap();
        f.call(&mut self.store, params).unwrap()
    }
}

/// A guest with a connected socket as fd 4 (accepted from its preopened
/// listener, fd 3), and the peer's end.
fn with_socket() -> (Guest, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let mut b = WasiCtx::builder();
    b.preopened_socket(listener);
    let mut g = Guest::new(&mut b);
    assert_eq!(g.call("sock_accept", (3, 0, RESULT)), 0);
    assert_eq!(g.u32(RESULT as u32 as usize), 4);
    (g, peer)
}

#[test]
fn fd_write_with_a_huge_iovec_count_is_refused_at_once() {
    let _s = serial();
    let cost = measure(
        || Guest::new(&mut WasiCtx::builder()),
        |g| g.call("fd_write", (1, 0, HUGE_IOV_COUNT, RESULT)),
    );
    cost.assert_cheap("fd_write of 0x1FFFFFFF iovecs");
    assert_eq!(cost.result, EINVAL);
}

#[test]
fn fd_read_with_a_huge_count_of_empty_iovecs_is_refused_at_once() {
    let _s = serial();
    let cost = measure(
        || Guest::with_file("hostile-read").0,
        |g| g.call("fd_read", (4, 0, HUGE_IOV_COUNT, RESULT)),
    );
    cost.assert_cheap("fd_read of 0x1FFFFFFF empty iovecs");
    assert_eq!(cost.result, EINVAL);
}

#[test]
fn fd_pread_and_fd_pwrite_with_a_huge_iovec_count_are_refused_at_once() {
    let _s = serial();
    for name in ["fd_pread", "fd_pwrite"] {
        let cost = measure(
            || Guest::with_file("hostile-p").0,
            move |g| g.call(name, (4, 0, HUGE_IOV_COUNT, 0i64, RESULT)),
        );
        cost.assert_cheap(&format!("{name} of 0x1FFFFFFF iovecs"));
        assert_eq!(cost.result, EINVAL, "{name}");
    }
}

#[test]
fn sock_recv_and_sock_send_with_a_huge_iovec_count_are_refused_at_once() {
    let _s = serial();
    let cost = measure(with_socket, |(g, _)| {
        g.call("sock_recv", (4, 0, HUGE_IOV_COUNT, 0, RESULT, RESULT))
    });
    cost.assert_cheap("sock_recv of 0x1FFFFFFF iovecs");
    assert_eq!(cost.result, EINVAL);
    let cost = measure(with_socket, |(g, _)| {
        g.call("sock_send", (4, 0, HUGE_IOV_COUNT, 0, RESULT))
    });
    cost.assert_cheap("sock_send of 0x1FFFFFFF iovecs");
    assert_eq!(cost.result, EINVAL);
}

#[test]
fn iov_max_iovecs_are_accepted_and_one_more_is_einval() {
    let _s = serial();
    let (mut g, dir) = Guest::with_file("hostile-iovmax");
    // IOV_MAX entries of one byte each: a gather of all of them.
    let (array, bufs) = (64 << 10, 128 << 10);
    for i in 0..IOV_MAX as usize {
        g.iovec(array + 8 * i, (bufs + i) as u32, 1);
    }
    assert_eq!(
        g.call("fd_pread", (4, array as i32, IOV_MAX, 0i64, RESULT)),
        0
    );
    assert_eq!(g.u32(RESULT as u32 as usize), 64, "the file holds 64 bytes");
    g.write(bufs, &[b'y'; IOV_MAX as usize]);
    assert_eq!(
        g.call("fd_pwrite", (4, array as i32, IOV_MAX, 0i64, RESULT)),
        0
    );
    assert_eq!(g.u32(RESULT as u32 as usize), IOV_MAX as u32);
    assert_eq!(std::fs::read(dir.join("f.txt")).unwrap(), [b'y'; 1024]);
    let one_more = (4, array as i32, IOV_MAX + 1, 0i64, RESULT);
    assert_eq!(g.call("fd_pwrite", one_more), EINVAL);
    assert_eq!(g.call("fd_pread", one_more), EINVAL);
    assert_eq!(
        g.call("fd_write", (1, array as i32, IOV_MAX + 1, RESULT)),
        EINVAL
    );
    assert_eq!(
        g.call("fd_read", (0, array as i32, IOV_MAX + 1, RESULT)),
        EINVAL
    );
    // IOV_MAX empty entries read nothing, without waiting.
    for i in 0..IOV_MAX as usize {
        g.iovec(array + 8 * i, 0, 0);
    }
    assert_eq!(g.call("fd_read", (4, array as i32, IOV_MAX, RESULT)), 0);
    assert_eq!(g.u32(RESULT as u32 as usize), 0);
}

#[test]
fn a_gigabyte_fd_pwrite_of_untouched_memory_is_written_in_bounded_chunks() {
    let _s = serial();
    const PAYLOAD: u32 = 1024 * MIB;
    let cost = measure(
        || {
            let (mut g, dir) = Guest::with_file("hostile-pwrite");
            g.iovec(0, 64 << 10, PAYLOAD);
            (g, dir)
        },
        |(g, dir)| {
            let errno = g.call("fd_pwrite", (4, 0, 1, 16i64, RESULT));
            let written = g.u32(RESULT as u32 as usize);
            let len = std::fs::metadata(dir.join("f.txt")).unwrap().len();
            let _ = std::fs::remove_file(dir.join("f.txt"));
            (errno, written, len)
        },
    );
    println!(
        "fd_pwrite of 1 GiB: {:?} in {:?}, peak RSS +{} MB",
        cost.result,
        cost.took,
        cost.grew >> 20
    );
    assert_eq!(cost.result, (0, PAYLOAD, 16 + u64::from(PAYLOAD)));
    assert!(
        cost.grew < SMALL,
        "a 1 GiB fd_pwrite grew the host's peak RSS by {} MB",
        cost.grew >> 20
    );
}

#[test]
fn a_large_sock_send_of_untouched_memory_is_sent_in_bounded_chunks() {
    let _s = serial();
    const PAYLOAD: u32 = 256 * MIB;
    let cost = measure(
        || {
            let (mut g, peer) = with_socket();
            g.iovec(0, 64 << 10, PAYLOAD);
            // The peer drains everything it is sent, until end of stream.
            let drain = std::thread::spawn(move || {
                let mut peer = peer;
                let mut buf = vec![0u8; 1 << 16];
                let mut total = 0u64;
                loop {
                    match peer.read(&mut buf) {
                        Ok(0) | Err(_) => return total,
                        Ok(n) => total += n as u64,
                    }
                }
            });
            (Some(g), Some(drain))
        },
        |(g, drain)| {
            let mut g = g.take().unwrap();
            let errno = g.call("sock_send", (4, 0, 1, 0, RESULT));
            let sent = g.u32(RESULT as u32 as usize);
            drop(g); // closes the socket: the peer sees the end.
            let received = drain.take().unwrap().join().unwrap();
            (errno, sent, received)
        },
    );
    println!(
        "sock_send of 256 MiB: {:?} in {:?}, peak RSS +{} MB",
        cost.result,
        cost.took,
        cost.grew >> 20
    );
    let (errno, sent, received) = cost.result;
    assert_eq!(errno, 0);
    assert!(sent > 0 && sent <= PAYLOAD, "sent {sent}");
    assert_eq!(received, u64::from(sent));
    assert!(
        cost.grew < SMALL,
        "a 256 MiB sock_send grew the host's peak RSS by {} MB",
        cost.grew >> 20
    );
}

#[test]
fn poll_oneoff_with_a_huge_subscription_count_is_refused_at_once() {
    let _s = serial();
    // As many 48-byte subscriptions as fit in 4 GiB, every one a clock
    // that has already expired (all zeros); the events overwrite them.
    let count = (u32::MAX / 48) as i32;
    let cost = measure(
        || Guest::new(&mut WasiCtx::builder()),
        move |g| g.call("poll_oneoff", (0, 0, count, RESULT)),
    );
    cost.assert_cheap("poll_oneoff of 89 million subscriptions");
    assert_eq!(cost.result, EINVAL);
}

#[test]
fn poll_oneoff_takes_thousands_of_subscriptions() {
    let _s = serial();
    let mut g = Guest::new(&mut WasiCtx::builder());
    let count = 4096;
    let events = 48 * count;
    assert_eq!(g.call("poll_oneoff", (0, events, count, RESULT)), 0);
    assert_eq!(g.u32(RESULT as u32 as usize), count as u32);
}

#[test]
fn a_huge_path_is_refused_before_reaching_the_host() {
    let _s = serial();
    const LEN: u32 = 256 * MIB;
    for name in ["path_open", "path_symlink"] {
        let cost = measure(
            || {
                let mut g = Guest::with_file("hostile-path").0;
                g.write(0, &vec![b'a'; LEN as usize]);
                g
            },
            move |g| match name {
                "path_open" => g.call("path_open", (3, 0, 0, LEN as i32, 0, 2i64, 0i64, 0, RESULT)),
                _ => g.call("path_symlink", (0, LEN as i32, 3, 0, LEN as i32)),
            },
        );
        cost.assert_cheap(&format!("{name} of a 256 MiB path"));
        assert_eq!(cost.result, ENAMETOOLONG, "{name}");
    }
    // The longest path Linux accepts still reaches it.
    let mut g = Guest::with_file("hostile-path").0;
    let long = "a".repeat(4095);
    g.write(0, long.as_bytes());
    let rights = 2i64;
    let errno = g.call("path_open", (3, 0, 0, 4095, 0, rights, 0i64, 0, RESULT));
    assert_eq!(
        errno, ENAMETOOLONG,
        "a 4095-byte name is too long for Linux"
    );
    let nested = "a/".repeat(2047) + "a";
    g.write(0, nested.as_bytes());
    let errno = g.call("path_open", (3, 0, 0, 4095, 0, rights, 0i64, 0, RESULT));
    assert_eq!(errno, 44, "ENOENT: a 4095-byte path is looked up");
    g.write(0, "a/".repeat(2048).as_bytes());
    let errno = g.call("path_open", (3, 0, 0, 4096, 0, rights, 0i64, 0, RESULT));
    assert_eq!(errno, ENAMETOOLONG, "4096 bytes is PATH_MAX");
}

#[test]
fn iovecs_over_4_gib_in_total_are_einval() {
    let _s = serial();
    let mut g = Guest::new(&mut WasiCtx::builder());
    // Two buffers, each all of memory but one byte.
    g.iovec(0, 0, u32::MAX);
    g.iovec(8, 0, u32::MAX);
    assert_eq!(g.call("fd_write", (1, 0, 2, RESULT)), EINVAL);
}

#[test]
fn a_limited_memory_pipe_keeps_what_fits_then_answers_enospc() {
    let _s = serial();
    const ENOSPC: i32 = 51;
    let out = keel_wasi::MemoryOutputPipe::with_limit(10);
    let mut b = WasiCtx::builder();
    b.stdout(keel_wasi::OutputStream::Memory(out.clone()));
    let mut g = Guest::new(&mut b);
    g.write(64, b"0123456789abcdef");
    g.iovec(0, 64, 16);
    assert_eq!(g.call("fd_write", (1, 0, 1, RESULT)), 0);
    assert_eq!(g.u32(RESULT as u32 as usize), 10, "a short write");
    assert_eq!(g.call("fd_write", (1, 0, 1, RESULT)), ENOSPC);
    assert_eq!(out.contents(), b"0123456789");
}

/// The builder's answer for `b`, as text.
fn refusal(b: &mut WasiCtxBuilder) -> String {
    match b.build() {
        Ok(_) => panic!("the builder accepted it"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn arguments_and_variables_the_guest_could_not_see_are_refused() {
    use keel_wasi::WasiCtxError;
    let mut b = WasiCtx::builder();
    b.arg("prog").arg("a\0b");
    assert_eq!(
        refusal(&mut b),
        r#"invalid WASI argument 1 "a\0b": it contains a NUL byte"#
    );
    let mut b = WasiCtx::builder();
    b.args(&["prog", "ok", "x\0"]);
    assert!(matches!(
        b.build(),
        Err(WasiCtxError::ArgNul { index: 2, .. })
    ));

    let mut b = WasiCtx::builder();
    b.env("A", "B\0C");
    assert_eq!(
        refusal(&mut b),
        r#"invalid WASI environment variable "A=B\0C": it contains a NUL byte"#
    );
    let mut b = WasiCtx::builder();
    b.env("A\0B", "C");
    assert!(refusal(&mut b).contains("NUL"));
    let mut b = WasiCtx::builder();
    b.env("A=B", "C");
    assert_eq!(
        refusal(&mut b),
        r#"invalid WASI environment variable name "A=B": it contains `=`"#
    );
    let mut b = WasiCtx::builder();
    b.env("", "C");
    assert_eq!(
        refusal(&mut b),
        r#"invalid WASI environment variable "=C": its name is empty"#
    );

    // The first invalid entry is the one reported; valid ones still build.
    let mut b = WasiCtx::builder();
    b.env("OK", "a=b").env("", "first").arg("x\0second");
    assert!(refusal(&mut b).contains("first"));
    let mut b = WasiCtx::builder();
    b.arg("").env("OK", "=a=b=").env("E", "");
    assert!(b.build().is_ok());
}
