//! Cancelling async calls frees their fibers: 1,000 cancellations, of
//! guests suspended in a host call and of guests spinning with epoch
//! yields, leave the process's memory flat. A binary of its own, so that
//! no other test maps or frees memory while it measures.

use keel::{Caller, Config, Engine, Linker, Module, Store};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// `run` waits on a host call; `spin` never returns.
const GUEST: &str = r#"(module
    (import "host" "wait" (func $wait (param i32) (result i32)))
    (func (export "run") (param i32) (result i32) (call $wait (local.get 0)))
    (func (export "spin") (loop (br 0))))"#;

/// An engine with epochs, ticked every millisecond by a thread until the
/// returned flag is set.
fn ticking_engine() -> (Engine, Arc<AtomicBool>) {
    let mut config = Config::new();
    config.epoch_interruption(true);
    let engine = Engine::new(&config).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (e, s) = (engine.clone(), stop.clone());
    std::thread::spawn(move || {
        while !s.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(1));
            e.increment_epoch();
        }
    });
    (engine, stop)
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// Resident and virtual memory of this process, in bytes.
fn memory_use() -> (usize, usize) {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let mut fields = statm
        .split_whitespace()
        .map(|f| f.parse::<usize>().unwrap());
    let (size, resident) = (fields.next().unwrap(), fields.next().unwrap());
    (resident * 4096, size * 4096)
}

#[test]
fn cancelled_calls_free_their_fibers() {
    let (engine, stop) = ticking_engine();
    let module = Module::new(&engine, GUEST).unwrap();
    // A host call that never completes.
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap_async("host", "wait", |_: Caller<'_, ()>, (_x,): (i32,)| {
            Box::new(std::future::pending::<i32>())
        })
        .unwrap();
    let rt = current_thread();
    let round = |n: usize| {
        rt.block_on(async {
            for i in 0..n {
                let mut store = Store::new(&engine, ());
                store.set_epoch_deadline(1);
                store.epoch_deadline_async_yield_and_update(1);
                let instance = linker.instantiate_async(&mut store, &module).await.unwrap();
                if i % 2 == 0 {
                    let run = instance
                        .get_typed_func::<i32, i32>(&mut store, "run")
                        .unwrap();
                    let call = run.call_async(&mut store, 1);
                    let r = tokio::time::timeout(Duration::from_micros(100), call).await;
                    assert!(r.is_err());
                } else {
                    let spin = instance
                        .get_typed_func::<(), ()>(&mut store, "spin")
                        .unwrap();
                    let call = spin.call_async(&mut store, ());
                    let r = tokio::time::timeout(Duration::from_millis(2), call).await;
                    assert!(r.is_err());
                }
            }
        })
    };
    round(200);
    let (resident_before, virtual_before) = memory_use();
    round(1000);
    let (resident_after, virtual_after) = memory_use();
    stop.store(true, Ordering::Relaxed);
    // A leaked fiber keeps a 2 MiB stack mapped (and its touched pages):
    // 1,000 of them would be 2 GiB of address space.
    let grew = |a: usize, b: usize| b.saturating_sub(a) >> 20;
    eprintln!(
        "over 1,000 cancellations: resident {} -> {} KiB, address space {} -> {} MiB",
        resident_before >> 10,
        resident_after >> 10,
        virtual_before >> 20,
        virtual_after >> 20
    );
    assert!(
        grew(virtual_before, virtual_after) < 64,
        "address space grew by {} MiB over 1,000 cancellations",
        grew(virtual_before, virtual_after)
    );
    assert!(
        grew(resident_before, resident_after) < 32,
        "resident memory grew by {} MiB over 1,000 cancellations",
        grew(resident_before, resident_after)
    );
}
