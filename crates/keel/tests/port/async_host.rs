//! A host program written for the `wasmtime` 48 crate's async API, as a
//! Wasmtime user on tokio writes one: async host functions
//! (`func_wrap_async`), `instantiate_async`, `call_async`, and epoch
//! deadlines that yield (`epoch_deadline_async_yield_and_update`). It
//! returns what it observed, one line per fact; the facts that involve
//! time are stated with margins wide enough for a loaded machine.
//!
//! It names only `wasmtime`. `crates/keel/tests/port_async.rs` compiles it
//! against Keel by renaming the crate (`extern crate keel as wasmtime;`);
//! `bench/src/bin/port-async.rs` compiles it against Wasmtime 48 itself.
//! Both check the lines against `async_host.expected`, which holds what
//! Wasmtime prints.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use wasmtime::{Caller, Config, Engine, Linker, Module, Store, Trap};

const GUEST: &str = r#"
(module
  (import "host" "sleep_then_double" (func $sleep (param i32) (result i32)))
  (import "host" "refuse" (func $refuse (param i32)))
  (global $spins (mut i64) (i64.const 0))
  (func (export "run") (param i32) (result i32)
    (i32.add (call $sleep (local.get 0)) (i32.const 1)))
  ;; Spins $n times (a long while), then returns $n.
  (func (export "spin") (param $n i64) (result i64)
    (loop
      (global.set $spins (i64.add (global.get $spins) (i64.const 1)))
      (br_if 0 (i64.lt_u (global.get $spins) (local.get $n))))
    (global.get $spins))
  (func (export "spins") (result i64) (global.get $spins))
  (func (export "divide") (param i32) (result i32)
    (i32.div_u (call $sleep (local.get 0)) (local.get 0)))
  (func (export "refused") (param i32) (call $refuse (local.get 0))))
"#;

/// Runs every part of the program and returns the lines it observed.
pub fn run() -> wasmtime::Result<Vec<String>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    runtime.block_on(run_async())
}

fn engine() -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    Engine::new(&config)
}

fn linker(engine: &Engine) -> wasmtime::Result<Linker<u32>> {
    let mut linker = Linker::new(engine);
    linker.func_wrap_async(
        "host",
        "sleep_then_double",
        |mut caller: Caller<'_, u32>, (x,): (i32,)| {
            Box::new(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                *caller.data_mut() += 1;
                x * 2
            })
        },
    )?;
    linker.func_wrap_async("host", "refuse", |_: Caller<'_, u32>, (x,): (i32,)| {
        Box::new(async move {
            tokio::task::yield_now().await;
            Err::<(), _>(wasmtime::Error::msg(format!("the host refused {x}")))
        })
    })?;
    Ok(linker)
}

async fn run_async() -> wasmtime::Result<Vec<String>> {
    let mut out = Vec::new();
    let engine = engine()?;
    let module = Module::new(&engine, GUEST)?;
    let linker = Arc::new(linker(&engine)?);
    // A ticker thread, as a host with epoch deadlines has.
    let stop = Arc::new(AtomicBool::new(false));
    let ticker = {
        let (engine, stop) = (engine.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(1));
                engine.increment_epoch();
            }
        })
    };
    let new_store = || {
        let mut store = Store::new(&engine, 0u32);
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        store
    };

    // One guest awaiting a host call.
    let mut store = new_store();
    let instance = linker.instantiate_async(&mut store, &module).await?;
    let run = instance.get_typed_func::<i32, i32>(&mut store, "run")?;
    out.push(format!(
        "run(20) = {}",
        run.call_async(&mut store, 20).await?
    ));
    out.push(format!("host calls seen by the store: {}", store.data()));

    // A hundred guests awaiting together on one thread.
    let started = Instant::now();
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let (linker, module, mut store) = (linker.clone(), module.clone(), new_store());
            tokio::spawn(async move {
                let instance = linker.instantiate_async(&mut store, &module).await?;
                let run = instance.get_typed_func::<i32, i32>(&mut store, "run")?;
                run.call_async(&mut store, i).await
            })
        })
        .collect();
    let mut sum = 0;
    for task in tasks {
        sum += task.await??;
    }
    out.push(format!("100 guests: sum {sum}"));
    out.push(format!(
        "100 guests of 100 ms each took under 2 s: {}",
        started.elapsed() < Duration::from_secs(2)
    ));

    // A spinning guest yields at its deadlines, so another task runs.
    let ticks = Arc::new(AtomicU64::new(0));
    let counter = {
        let ticks = ticks.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(1)).await;
                ticks.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let mut store = new_store();
    let instance = linker.instantiate_async(&mut store, &module).await?;
    let spin = instance.get_typed_func::<i64, i64>(&mut store, "spin")?;
    let spun = spin.call_async(&mut store, 200_000_000).await?;
    counter.abort();
    out.push(format!("spin returned {spun}"));
    out.push(format!(
        "another task ran while it spun: {}",
        ticks.load(Ordering::Relaxed) > 0
    ));

    // Dropping the future of a spinning call cancels it; the store goes
    // on.
    let mut store = new_store();
    let instance = linker.instantiate_async(&mut store, &module).await?;
    let spin = instance.get_typed_func::<i64, i64>(&mut store, "spin")?;
    let spins = instance.get_typed_func::<(), i64>(&mut store, "spins")?;
    let cancelled = tokio::time::timeout(
        Duration::from_millis(50),
        spin.call_async(&mut store, i64::MAX),
    )
    .await
    .is_err();
    out.push(format!("the endless spin was cancelled: {cancelled}"));
    let reached = spins.call_async(&mut store, ()).await?;
    out.push(format!("the store answers after: {}", reached > 0));
    let run = instance.get_typed_func::<i32, i32>(&mut store, "run")?;
    out.push(format!(
        "run(1) after the cancellation = {}",
        run.call_async(&mut store, 1).await?
    ));

    // Dropping the future of a call waiting on the host cancels it too.
    let cancelled = tokio::time::timeout(Duration::from_millis(10), run.call_async(&mut store, 2))
        .await
        .is_err();
    out.push(format!("the waiting call was cancelled: {cancelled}"));
    out.push(format!(
        "run(3) after = {}",
        run.call_async(&mut store, 3).await?
    ));

    // Traps and host errors.
    let divide = instance.get_typed_func::<i32, i32>(&mut store, "divide")?;
    let err = divide.call_async(&mut store, 0).await.unwrap_err();
    out.push(format!("divide(0): trap {:?}", err.downcast_ref::<Trap>()));
    let refused = instance.get_typed_func::<i32, ()>(&mut store, "refused")?;
    let err = refused.call_async(&mut store, 7).await.unwrap_err();
    out.push(format!(
        "refused(7): host error {}",
        format!("{err:?}").contains("the host refused 7")
    ));

    stop.store(true, Ordering::Relaxed);
    ticker.join().ok();
    fuel_yields(&mut out).await?;
    Ok(out)
}

const COUNTER: &str = r#"
(module
  (func (export "count") (param $n i32) (result i32) (local $i i32)
    (loop
      (br_if 0 (i32.lt_u
        (local.tee $i (i32.add (local.get $i) (i32.const 1)))
        (local.get $n))))
    (local.get $i))
  (func (export "spin") (loop (br 0))))
"#;

/// Fuel handed out a slice at a time, with a yield after each.
async fn fuel_yields(out: &mut Vec<String>) -> wasmtime::Result<()> {
    let mut config = Config::new();
    config.consume_fuel(true);
    // A no-op in Wasmtime 48, where every store can yield on fuel; Keel
    // compiles fuel checks that can resume only with it.
    #[allow(deprecated)]
    config.async_support(true);
    let engine = Engine::new(&config)?;
    let module = Module::new(&engine, COUNTER)?;
    let mut store = Store::new(&engine, ());
    store.set_fuel(10_000_000)?;
    store.fuel_async_yield_interval(Some(10_000))?;
    out.push(format!("fuel with an interval: {}", store.get_fuel()?));
    let instance = wasmtime::Instance::new_async(&mut store, &module, &[]).await?;
    let count = instance.get_typed_func::<i32, i32>(&mut store, "count")?;
    let n = count.call_async(&mut store, 100_000).await?;
    out.push(format!(
        "count({n}) spent {} fuel in slices",
        10_000_000 - store.get_fuel()?
    ));
    let turns = Arc::new(AtomicU64::new(0));
    let other = {
        let turns = turns.clone();
        tokio::spawn(async move {
            loop {
                tokio::task::yield_now().await;
                turns.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let spin = instance.get_typed_func::<(), ()>(&mut store, "spin")?;
    let err = spin.call_async(&mut store, ()).await.unwrap_err();
    other.abort();
    out.push(format!("spin: trap {:?}", err.downcast_ref::<Trap>()));
    out.push(format!(
        "another task ran while it spun on fuel: {}",
        turns.load(Ordering::Relaxed) > 0
    ));
    out.push(format!("fuel after: {}", store.get_fuel()?));
    Ok(())
}
