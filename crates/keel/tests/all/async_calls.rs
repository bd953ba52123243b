//! Async calls on a tokio runtime: guests waiting on async host functions
//! without blocking the thread, guests yielding at epoch deadlines,
//! cancellation, and errors that match the synchronous ones.

use keel::{Caller, Config, Engine, Instance, Linker, Module, Store, Trap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A guest that calls `host.wait` and adds one to its answer, plus a few
/// ways to fail.
const GUEST: &str = r#"(module
    (import "host" "wait" (func $wait (param i32) (result i32)))
    (import "host" "fail" (func $fail))
    (memory 1)
    (func (export "run") (param i32) (result i32)
        (i32.add (call $wait (local.get 0)) (i32.const 1)))
    (func (export "spin") (loop (br 0)))
    (func (export "trap") (param i32) (result i32)
        (drop (call $wait (local.get 0)))
        (i32.div_u (i32.const 1) (i32.const 0)))
    (func $deep (export "deep") (param i32) (result i32)
        (i32.add (call $deep (local.get 0)) (i32.const 1)))
    (func (export "host_error") (call $fail))
    (func (export "peek") (result i32) (i32.load (i32.const 0)))
    (func (export "poke") (i32.store (i32.const 0) (i32.const 7))))"#;

fn linker(engine: &Engine, delay: Duration) -> Linker<()> {
    let mut linker = Linker::new(engine);
    linker
        .func_wrap_async("host", "wait", move |_: Caller<'_, ()>, (x,): (i32,)| {
            Box::new(async move {
                tokio::time::sleep(delay).await;
                x * 2
            })
        })
        .unwrap();
    linker
        .func_wrap_async("host", "fail", |_: Caller<'_, ()>, (): ()| {
            Box::new(async {
                tokio::task::yield_now().await;
                Err::<(), _>(keel::anyhow::anyhow!("the host said no"))
            })
        })
        .unwrap();
    linker
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

#[test]
fn a_thousand_guests_awaiting_a_slow_host_call_finish_together() {
    let engine = Engine::default();
    let module = Module::new(&engine, GUEST).unwrap();
    let linker = Arc::new(linker(&engine, Duration::from_millis(200)));
    let rt = current_thread();
    let started = Instant::now();
    let sum: i64 = rt.block_on(async {
        let tasks: Vec<_> = (0..1000)
            .map(|i| {
                let (engine, module, linker) = (engine.clone(), module.clone(), linker.clone());
                tokio::spawn(async move {
                    let mut store = Store::new(&engine, ());
                    let instance = linker.instantiate_async(&mut store, &module).await?;
                    let run = instance.get_typed_func::<i32, i32>(&mut store, "run")?;
                    run.call_async(&mut store, i).await
                })
            })
            .collect();
        let mut sum = 0i64;
        for task in tasks {
            sum += i64::from(task.await.unwrap().unwrap());
        }
        sum
    });
    let elapsed = started.elapsed();
    eprintln!("1,000 guests each awaiting 200 ms: {elapsed:?}");
    // Each answers 2i + 1.
    assert_eq!(sum, (0..1000).map(|i| 2 * i + 1).sum::<i64>());
    // One thread: the waits overlapped, or this would take 200 s.
    assert!(
        elapsed < Duration::from_millis(1500),
        "1,000 guests took {elapsed:?}"
    );
}

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

#[test]
fn a_spinning_guest_with_epoch_yields_lets_another_task_run() {
    let (engine, stop) = ticking_engine();
    let module = Module::new(&engine, GUEST).unwrap();
    let linker = Arc::new(linker(&engine, Duration::ZERO));
    let rt = current_thread();
    rt.block_on(async {
        let mut store = Store::new(&engine, ());
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        let instance = linker.instantiate_async(&mut store, &module).await.unwrap();
        let spin = instance
            .get_typed_func::<(), ()>(&mut store, "spin")
            .unwrap();
        let other_ran = Arc::new(AtomicUsize::new(0));
        let counter = other_ran.clone();
        let other = tokio::spawn(async move {
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_millis(2)).await;
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        // The guest never returns: it is stopped by dropping its future.
        let spun =
            tokio::time::timeout(Duration::from_millis(300), spin.call_async(&mut store, ()));
        assert!(spun.await.is_err(), "the spinning guest returned");
        other.await.unwrap();
        assert_eq!(other_ran.load(Ordering::SeqCst), 10);
        // Cancelled, the store is still usable.
        let poke = instance
            .get_typed_func::<(), ()>(&mut store, "poke")
            .unwrap();
        let peek = instance
            .get_typed_func::<(), i32>(&mut store, "peek")
            .unwrap();
        poke.call_async(&mut store, ()).await.unwrap();
        assert_eq!(peek.call_async(&mut store, ()).await.unwrap(), 7);
    });
    stop.store(true, Ordering::Relaxed);
}

/// The error of a call, as the embedder sees it: its trap (if any) and
/// its first line.
fn describe(e: &keel::Error) -> (Option<Trap>, String) {
    let text = format!("{e:#}");
    (
        e.downcast_ref::<Trap>().copied(),
        text.lines().next().unwrap_or("").to_string(),
    )
}

#[test]
fn errors_in_async_calls_are_those_of_sync_calls() {
    let engine = Engine::default();
    let module = Module::new(&engine, GUEST).unwrap();
    // Host functions ready at once, so that the synchronous calls can
    // reach them too.
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap_async("host", "wait", |_: Caller<'_, ()>, (x,): (i32,)| {
            Box::new(std::future::ready(x))
        })
        .unwrap();
    linker
        .func_wrap_async("host", "fail", |_: Caller<'_, ()>, (): ()| {
            Box::new(std::future::ready(Err::<(), _>(keel::anyhow::anyhow!(
                "the host said no"
            ))))
        })
        .unwrap();
    let rt = current_thread();
    for (export, arg) in [("trap", Some(3)), ("deep", Some(0)), ("host_error", None)] {
        let mut store = Store::new(&engine, ());
        let instance = linker.instantiate(&mut store, &module).unwrap();
        let func = instance.get_func(&mut store, export).unwrap();
        let params: Vec<keel::Val> = arg.into_iter().map(keel::Val::I32).collect();
        let mut results = vec![keel::Val::I32(0); func.ty(&store).results().len()];
        let sync = func.call(&mut store, &params, &mut results).unwrap_err();
        let asynchronous = rt
            .block_on(func.call_async(&mut store, &params, &mut results))
            .unwrap_err();
        assert_eq!(describe(&sync), describe(&asynchronous), "{export}");
        // And the store goes on working after each.
        let poke = instance
            .get_typed_func::<(), ()>(&mut store, "poke")
            .unwrap();
        rt.block_on(poke.call_async(&mut store, ())).unwrap();
    }
    let trap = |e: keel::Error| e.downcast_ref::<Trap>().copied();
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let deep = instance
        .get_typed_func::<i32, i32>(&mut store, "deep")
        .unwrap();
    let e = rt.block_on(deep.call_async(&mut store, 0)).unwrap_err();
    assert_eq!(trap(e), Some(Trap::StackOverflow));
    let div = instance
        .get_typed_func::<i32, i32>(&mut store, "trap")
        .unwrap();
    let e = rt.block_on(div.call_async(&mut store, 0)).unwrap_err();
    assert_eq!(trap(e), Some(Trap::IntegerDivisionByZero));
}

#[test]
fn a_trap_has_its_wasm_backtrace_on_a_fiber() {
    let engine = Engine::default();
    let module = Module::new(&engine, GUEST).unwrap();
    let linker = linker(&engine, Duration::from_millis(1));
    let rt = current_thread();
    let mut store = Store::new(&engine, ());
    let e = rt.block_on(async {
        let instance = linker.instantiate_async(&mut store, &module).await.unwrap();
        let div = instance
            .get_typed_func::<i32, i32>(&mut store, "trap")
            .unwrap();
        div.call_async(&mut store, 0).await.unwrap_err()
    });
    let text = format!("{e:?}");
    assert!(text.contains("wasm backtrace"), "{text}");
    assert!(text.contains("trap"), "{text}");
}

#[test]
fn a_pending_host_call_fails_a_sync_call_clearly() {
    let engine = Engine::default();
    let module = Module::new(&engine, GUEST).unwrap();
    let linker = linker(&engine, Duration::from_millis(1));
    let rt = current_thread();
    let _runtime = rt.enter();
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    let e = run.call(&mut store, 1).unwrap_err();
    assert!(format!("{e:#}").contains("_async"), "{e:#}");
}

#[test]
fn a_yield_in_a_sync_call_fails_clearly() {
    let (engine, stop) = ticking_engine();
    let module = Module::new(&engine, GUEST).unwrap();
    let linker = linker(&engine, Duration::ZERO);
    let mut store = Store::new(&engine, ());
    store.set_epoch_deadline(1);
    store.epoch_deadline_async_yield_and_update(1);
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let spin = instance
        .get_typed_func::<(), ()>(&mut store, "spin")
        .unwrap();
    let e = spin.call(&mut store, ()).unwrap_err();
    stop.store(true, Ordering::Relaxed);
    assert!(format!("{e:#}").contains("yield"), "{e:#}");
}

#[test]
fn guests_move_between_threads_while_suspended() {
    let (engine, stop) = ticking_engine();
    let module = Module::new(&engine, GUEST).unwrap();
    let linker = Arc::new(linker(&engine, Duration::from_millis(1)));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let (engine, module, linker) = (engine.clone(), module.clone(), linker.clone());
                tokio::spawn(async move {
                    let mut store = Store::new(&engine, ());
                    store.set_epoch_deadline(1);
                    store.epoch_deadline_async_yield_and_update(1);
                    let instance = linker.instantiate_async(&mut store, &module).await?;
                    let run = instance.get_typed_func::<i32, i32>(&mut store, "run")?;
                    let mut sum = 0;
                    for _ in 0..20 {
                        sum += run.call_async(&mut store, i).await?;
                    }
                    // A trap on whichever thread the fiber ended up on.
                    let div = instance.get_typed_func::<i32, i32>(&mut store, "trap")?;
                    let e = div.call_async(&mut store, i).await.unwrap_err();
                    assert_eq!(e.downcast_ref::<Trap>(), Some(&Trap::IntegerDivisionByZero));
                    keel::Result::<i32>::Ok(sum)
                })
            })
            .collect();
        for (i, task) in tasks.into_iter().enumerate() {
            let i = i as i32;
            assert_eq!(task.await.unwrap().unwrap(), 20 * (2 * i + 1));
        }
    });
    stop.store(true, Ordering::Relaxed);
}

/// `outer` calls the host's `reenter`, which is to call `inner` (5).
fn reentering_module(engine: &Engine) -> Module {
    Module::new(
        engine,
        r#"(module
            (import "host" "reenter" (func $reenter (result i32)))
            (func (export "outer") (result i32) (call $reenter))
            (func (export "inner") (result i32) (i32.const 5)))"#,
    )
    .unwrap()
}

/// The typed `inner` export of the caller's instance.
fn inner(caller: &mut Caller<'_, ()>) -> keel::TypedFunc<(), i32> {
    let inner = caller.get_export("inner").unwrap().into_func().unwrap();
    inner.typed::<(), i32>(&*caller).unwrap()
}

#[test]
fn an_async_call_inside_an_async_call_of_the_same_store_is_refused() {
    let engine = Engine::default();
    let module = reentering_module(&engine);
    let mut linker = Linker::<()>::new(&engine);
    linker
        .func_wrap_async("host", "reenter", |mut caller: Caller<'_, ()>, (): ()| {
            Box::new(async move { inner(&mut caller).call_async(&mut caller, ()).await })
        })
        .unwrap();
    let rt = current_thread();
    let mut store = Store::new(&engine, ());
    let e = rt
        .block_on(async {
            let instance = Instance::new_async(&mut store, &module, &[]).await;
            assert!(instance.is_err(), "the import is missing");
            let instance = linker.instantiate_async(&mut store, &module).await?;
            let outer = instance.get_typed_func::<(), i32>(&mut store, "outer")?;
            outer.call_async(&mut store, ()).await
        })
        .unwrap_err();
    assert!(format!("{e:#}").contains("already running"), "{e:#}");
}

#[test]
fn pooled_stacks_run_out_with_a_clear_error_and_come_back() {
    let mut pooling = keel::PoolingAllocationConfig::new();
    pooling
        .total_stacks(2)
        .total_core_instances(10)
        .total_memories(10)
        .total_tables(10);
    let mut config = Config::new();
    config.allocation_strategy(keel::InstanceAllocationStrategy::Pooling(pooling));
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(&engine, GUEST).unwrap();
    let linker = linker(&engine, Duration::ZERO);
    let rt = current_thread();
    let mut stores: Vec<Store<()>> = Vec::new();
    let instantiate = |stores: &mut Vec<Store<()>>| {
        let mut store = Store::new(&engine, ());
        let r = rt.block_on(linker.instantiate_async(&mut store, &module));
        stores.push(store);
        r
    };
    // Each store keeps the stack of its async call.
    instantiate(&mut stores).unwrap();
    instantiate(&mut stores).unwrap();
    let e = instantiate(&mut stores).unwrap_err();
    assert!(format!("{e:#}").contains("total_stacks"), "{e:#}");
    // A store dropped gives its stack back.
    stores.clear();
    instantiate(&mut stores).unwrap();
}

#[test]
fn an_async_call_inside_a_sync_call_of_the_same_store_is_refused() {
    let engine = Engine::default();
    let module = reentering_module(&engine);
    let mut linker = Linker::<()>::new(&engine);
    linker
        .func_wrap("host", "reenter", |mut caller: Caller<'_, ()>| {
            let inner = inner(&mut caller);
            current_thread().block_on(inner.call_async(&mut caller, ()))
        })
        .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let outer = instance
        .get_typed_func::<(), i32>(&mut store, "outer")
        .unwrap();
    let e = outer.call(&mut store, ()).unwrap_err();
    assert!(
        format!("{e:#}").contains("synchronous call of the same store"),
        "{e:#}"
    );
    // A sync call from a host function of an async call is fine.
    let mut linker = Linker::<()>::new(&engine);
    linker
        .func_wrap_async("host", "reenter", |mut caller: Caller<'_, ()>, (): ()| {
            Box::new(async move { inner(&mut caller).call(&mut caller, ()) })
        })
        .unwrap();
    let mut store = Store::new(&engine, ());
    let rt = current_thread();
    let five = rt.block_on(async {
        let instance = linker.instantiate_async(&mut store, &module).await?;
        let outer = instance.get_typed_func::<(), i32>(&mut store, "outer")?;
        outer.call_async(&mut store, ()).await
    });
    assert_eq!(five.unwrap(), 5);
}

#[test]
fn a_panic_in_an_async_host_function_reaches_the_caller_and_the_store_goes_on() {
    let engine = Engine::default();
    let module = Module::new(&engine, GUEST).unwrap();
    let mut linker = Linker::<()>::new(&engine);
    linker
        .func_wrap_async("host", "wait", |_: Caller<'_, ()>, (x,): (i32,)| {
            Box::new(async move {
                tokio::task::yield_now().await;
                if x == 13 {
                    panic!("the host function panicked on purpose");
                }
                x
            })
        })
        .unwrap();
    linker.func_wrap("host", "fail", || {}).unwrap();
    let rt = current_thread();
    let mut store = Store::new(&engine, ());
    let instance = rt
        .block_on(linker.instantiate_async(&mut store, &module))
        .unwrap();
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(run.call_async(&mut store, 13))
    }));
    let payload = caught.expect_err("the panic reaches the caller");
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"the host function panicked on purpose")
    );
    assert_eq!(rt.block_on(run.call_async(&mut store, 2)).unwrap(), 3);
}

/// Counts to its argument: 7 units of fuel per iteration.
const COUNTER: &str = r#"(module
    (func (export "count") (param $n i32) (result i32) (local $i i32)
      (loop
        (br_if 0 (i32.lt_u
          (local.tee $i (i32.add (local.get $i) (i32.const 1)))
          (local.get $n))))
      (local.get $i))
    (func (export "spin") (loop (br 0))))"#;

fn fuel_engine(async_support: bool) -> Engine {
    let mut config = Config::new();
    config.consume_fuel(true).async_support(async_support);
    Engine::new(&config).unwrap()
}

#[test]
fn fuel_yields_let_a_spinning_guest_share_its_thread() {
    let engine = fuel_engine(true);
    let module = Module::new(&engine, COUNTER).unwrap();
    let rt = current_thread();
    let mut store = Store::new(&engine, ());
    store.set_fuel(200_000_000).unwrap();
    store.fuel_async_yield_interval(Some(100_000)).unwrap();
    assert_eq!(store.get_fuel().unwrap(), 200_000_000);
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let spin = instance
        .get_typed_func::<(), ()>(&mut store, "spin")
        .unwrap();
    let ticks = Arc::new(AtomicUsize::new(0));
    let e = rt.block_on(async {
        let counter = ticks.clone();
        let other = tokio::spawn(async move {
            loop {
                tokio::task::yield_now().await;
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        let e = spin.call_async(&mut store, ()).await.unwrap_err();
        other.abort();
        e
    });
    assert_eq!(e.downcast_ref::<Trap>(), Some(&Trap::OutOfFuel));
    assert_eq!(store.get_fuel().unwrap(), 0);
    // One yield per slice spent: about 2,000 of them, each letting the
    // other task run once.
    let ticks = ticks.load(Ordering::SeqCst);
    assert!(
        (1_000..=4_000).contains(&ticks),
        "{ticks} turns of the other task"
    );
}

#[test]
fn fuel_given_in_slices_is_spent_exactly_as_at_once() {
    let spent = |engine: &Engine, interval: Option<u64>, asynchronous: bool| {
        let module = Module::new(engine, COUNTER).unwrap();
        let mut store = Store::new(engine, ());
        store.set_fuel(1_000_000).unwrap();
        store.fuel_async_yield_interval(interval).unwrap();
        let instance = Instance::new(&mut store, &module, &[]).unwrap();
        let count = instance
            .get_typed_func::<i32, i32>(&mut store, "count")
            .unwrap();
        let n = if asynchronous {
            current_thread().block_on(count.call_async(&mut store, 100_000))
        } else {
            count.call(&mut store, 100_000)
        };
        assert_eq!(n.unwrap(), 100_000);
        1_000_000 - store.get_fuel().unwrap()
    };
    let plain = spent(&fuel_engine(false), None, false);
    let engine = fuel_engine(true);
    assert_eq!(spent(&engine, None, false), plain);
    // Slices smaller than one charge, and larger.
    for interval in [3, 1_000, 999_999] {
        assert_eq!(
            spent(&engine, Some(interval), true),
            plain,
            "interval {interval}"
        );
        assert_eq!(
            spent(&engine, Some(interval), false),
            plain,
            "interval {interval}, sync"
        );
    }
}

#[test]
fn a_fuel_yield_interval_needs_async_support() {
    let engine = fuel_engine(false);
    let mut store = Store::new(&engine, ());
    let e = store.fuel_async_yield_interval(Some(1_000)).unwrap_err();
    assert!(format!("{e:#}").contains("async_support"), "{e:#}");
    assert!(store.fuel_async_yield_interval(None).is_ok());
    let mut store = Store::new(&fuel_engine(true), ());
    assert!(store.fuel_async_yield_interval(Some(0)).is_err());
}
