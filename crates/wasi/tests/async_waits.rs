//! The async linker (`add_to_linker_async`) waits without blocking the
//! executor's thread: clock sleeps in `poll_oneoff` and reads from
//! sockets suspend the guest, and other tasks run meanwhile.

use keel::{Engine, Linker, Module, Store};
use keel_wasi::WasiCtx;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// `sleep(ns)` sleeps through one relative clock subscription and
/// returns the errno, the number of events and the event's userdata and
/// type; `accept_and_read()` accepts on fd 3 and reads what arrives.
const GUEST: &str = r#"(module
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_accept"
    (func $sock_accept (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_recv"
    (func $sock_recv (param i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; Subscription at 0 (48 bytes), event at 64 (32), nevents at 96.
  (func (export "sleep") (param $ns i64) (result i64)
    (local $errno i32)
    (i64.store (i32.const 0) (i64.const 77))        ;; userdata
    (i32.store8 (i32.const 8) (i32.const 0))        ;; clock
    (i32.store (i32.const 16) (i32.const 1))        ;; monotonic
    (i64.store (i32.const 24) (local.get $ns))      ;; timeout
    (i64.store (i32.const 32) (i64.const 0))        ;; precision
    (i32.store16 (i32.const 40) (i32.const 0))      ;; relative
    (local.set $errno
      (call $poll_oneoff (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 96)))
    ;; errno | nevents << 8 | userdata << 16 | type << 32
    (i64.or
      (i64.or (i64.extend_i32_u (local.get $errno))
              (i64.shl (i64.load32_u (i32.const 96)) (i64.const 8)))
      (i64.or (i64.shl (i64.load (i32.const 64)) (i64.const 16))
              (i64.shl (i64.load8_u (i32.const 74)) (i64.const 32)))))
  ;; Accepts on fd 3 (new fd at 100), then reads up to 16 bytes into 200
  ;; (iovec at 120, length read at 128); returns errno | length << 8.
  (func (export "accept_and_read") (result i32)
    (local $errno i32)
    (local.set $errno (call $sock_accept (i32.const 3) (i32.const 0) (i32.const 100)))
    (if (local.get $errno) (then (return (local.get $errno))))
    (i32.store (i32.const 120) (i32.const 200))
    (i32.store (i32.const 124) (i32.const 16))
    (local.set $errno
      (call $sock_recv (i32.load (i32.const 100)) (i32.const 120) (i32.const 1)
                       (i32.const 0) (i32.const 128) (i32.const 132)))
    (i32.or (local.get $errno) (i32.shl (i32.load (i32.const 128)) (i32.const 8)))))"#;

fn setup() -> (Engine, Module, Arc<Linker<WasiCtx>>) {
    let engine = Engine::default();
    let module = Module::new(&engine, GUEST).unwrap();
    let mut linker = Linker::new(&engine);
    keel_wasi::add_to_linker_async(&mut linker, |c: &mut WasiCtx| c).unwrap();
    (engine, module, Arc::new(linker))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

#[test]
fn a_hundred_guests_sleeping_200_ms_in_poll_oneoff_share_one_thread() {
    let (engine, module, linker) = setup();
    let started = Instant::now();
    let answers = runtime().block_on(async {
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let (engine, module, linker) = (engine.clone(), module.clone(), linker.clone());
                tokio::spawn(async move {
                    let mut store = Store::new(&engine, WasiCtx::builder().build().unwrap());
                    let instance = linker.instantiate_async(&mut store, &module).await?;
                    let sleep = instance.get_typed_func::<i64, i64>(&mut store, "sleep")?;
                    sleep.call_async(&mut store, 200_000_000).await
                })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap().unwrap());
        }
        answers
    });
    let elapsed = started.elapsed();
    // errno 0, one event, userdata 77, type clock (0).
    let expected = (77 << 16) | (1 << 8);
    assert!(answers.iter().all(|a| *a == expected), "{answers:x?}");
    assert!(
        elapsed >= Duration::from_millis(200),
        "woke early: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_millis(1500), "took {elapsed:?}");
}

#[test]
fn a_guest_waiting_on_a_socket_lets_other_tasks_run() {
    let (engine, module, linker) = setup();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let ctx = WasiCtx::builder()
        .preopened_socket(listener)
        .build()
        .unwrap();
    // The peer connects and writes after 100 ms, from its own thread.
    let peer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        let mut s = std::net::TcpStream::connect(address).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        s.write_all(b"hello").unwrap();
        s
    });
    let ticks = Arc::new(AtomicUsize::new(0));
    let answer = runtime().block_on(async {
        let counter = ticks.clone();
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(5)).await;
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        let mut store = Store::new(&engine, ctx);
        let instance = linker.instantiate_async(&mut store, &module).await.unwrap();
        let run = instance
            .get_typed_func::<(), i32>(&mut store, "accept_and_read")
            .unwrap();
        let answer = run.call_async(&mut store, ()).await.unwrap();
        ticker.abort();
        answer
    });
    drop(peer.join().unwrap());
    assert_eq!(answer, 5 << 8, "errno 0 and 5 bytes read");
    // The guest waited about 200 ms for the connection and the data; a
    // thread blocked in accept or recv would have let no tick through.
    let ticks = ticks.load(Ordering::SeqCst);
    assert!(ticks >= 10, "only {ticks} ticks while the guest waited");
}
