//! Resource control: fuel, epoch deadlines and growth limits stop guests of
//! every shape, with the right trap, and cost exactly what the model says.

use keel::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Guests that never finish on their own, one per shape of loop a deadline
/// must catch. Each exports `run`.
const RUNAWAYS: &[(&str, &str)] = &[
    ("loop", r#"(module (func (export "run") (loop (br 0))))"#),
    (
        "recursion inside a loop",
        r#"(module
            (func $deep (param i32) (result i32)
              (if (result i32) (i32.eqz (local.get 0))
                (then (i32.const 0))
                (else (call $deep (i32.sub (local.get 0) (i32.const 1))))))
            (func (export "run") (loop (drop (call $deep (i32.const 1000))) (br 0))))"#,
    ),
    (
        "indirect-call loop",
        r#"(module
            (type $t (func (param i32) (result i32)))
            (table 1 funcref)
            (elem (i32.const 0) $step)
            (func $step (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
            (func (export "run") (local i32)
              (loop
                (local.set 0 (call_indirect (type $t) (local.get 0) (i32.const 0)))
                (br 0))))"#,
    ),
    (
        "repeated memory.fill of the whole memory",
        r#"(module
            (memory 16)
            (func (export "run")
              (loop
                (memory.fill (i32.const 0) (i32.const 7) (i32.mul (memory.size) (i32.const 65536)))
                (br 0))))"#,
    ),
];

fn run_export(store: &mut Store<()>, module: &Module) -> Result<()> {
    let instance = Instance::new(&mut *store, module, &[])?;
    let run = instance.get_typed_func::<(), ()>(&mut *store, "run")?;
    run.call(&mut *store, ())
}

fn trap_of(err: &Error) -> Option<Trap> {
    err.downcast_ref::<Trap>().copied()
}

/// A thread that ticks `engine`'s epoch once, after `delay`.
fn tick_once_after(engine: &Engine, delay: Duration) -> std::thread::JoinHandle<()> {
    let engine = engine.clone();
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        engine.increment_epoch();
    })
}

/// A thread that ticks an engine's epoch every `period` until dropped.
struct Ticker {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    fn start(engine: &Engine, period: Duration) -> Ticker {
        let done = Arc::new(AtomicBool::new(false));
        let thread = {
            let (engine, done) = (engine.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    std::thread::sleep(period);
                    engine.increment_epoch();
                }
            })
        };
        Ticker {
            done,
            thread: Some(thread),
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

#[test]
fn fuel_stops_every_runaway() {
    let mut config = Config::new();
    config.consume_fuel(true);
    let engine = Engine::new(&config).unwrap();
    for (name, wat) in RUNAWAYS {
        let module = Module::new(&engine, wat).unwrap();
        let mut store = Store::new(&engine, ());
        store.set_fuel(2_000_000).unwrap();
        let err = run_export(&mut store, &module).unwrap_err();
        assert_eq!(trap_of(&err), Some(Trap::OutOfFuel), "{name}: {err:?}");
        assert!(
            format!("{err:?}").contains("all fuel consumed"),
            "{name}: {err:?}"
        );
        assert_eq!(store.get_fuel().unwrap(), 0, "{name}");
    }
}

/// Engines with epoch interruption, one per way of checking the deadline
/// (a load from the interrupt page where supported, and the interrupt word
/// and branch): both must stop guests at the same places.
fn epoch_engines() -> Vec<Engine> {
    [true, false]
        .into_iter()
        .map(|by_fault| {
            let mut config = Config::new();
            config.epoch_interruption(true).epoch_by_signal(by_fault);
            Engine::new(&config).unwrap()
        })
        .collect()
}

#[test]
fn an_epoch_tick_stops_every_runaway() {
    for engine in epoch_engines() {
        for (name, wat) in RUNAWAYS {
            let module = Module::new(&engine, wat).unwrap();
            let mut store = Store::new(&engine, ());
            store.set_epoch_deadline(1);
            let ticker = tick_once_after(&engine, Duration::from_millis(50));
            let start = Instant::now();
            let err = run_export(&mut store, &module).unwrap_err();
            ticker.join().unwrap();
            assert_eq!(trap_of(&err), Some(Trap::Interrupt), "{name}: {err:?}");
            assert!(start.elapsed() < Duration::from_secs(5), "{name}");
            assert!(err.downcast_ref::<WasmBacktrace>().is_some(), "{name}");
        }
    }
}

#[test]
fn a_store_without_a_deadline_traps_at_once_and_runs_again_after_one() {
    for engine in epoch_engines() {
        let module = Module::new(
            &engine,
            r#"(module (func (export "run") (param i32) (result i32)
             (local i32)
             (loop
               (local.set 1 (i32.add (local.get 1) (i32.const 1)))
               (br_if 0 (i32.lt_u (local.get 1) (local.get 0))))
             (local.get 1)))"#,
        )
        .unwrap();
        let mut store = Store::new(&engine, ());
        let instance = Instance::new(&mut store, &module, &[]).unwrap();
        let run = instance
            .get_typed_func::<i32, i32>(&mut store, "run")
            .unwrap();
        // The deadline starts at 0 ticks, as in Wasmtime.
        let err = run.call(&mut store, 10).unwrap_err();
        assert_eq!(trap_of(&err), Some(Trap::Interrupt));
        store.set_epoch_deadline(1);
        assert_eq!(run.call(&mut store, 1000).unwrap(), 1000);
        engine.increment_epoch();
        assert_eq!(
            trap_of(&run.call(&mut store, 10).unwrap_err()),
            Some(Trap::Interrupt)
        );
        store.set_epoch_deadline(5);
        assert_eq!(run.call(&mut store, 10).unwrap(), 10);
    }
}

#[test]
fn one_tick_interrupts_guests_on_eight_threads() {
    for engine in epoch_engines() {
        let module = Module::new(&engine, RUNAWAYS[0].1).unwrap();
        let started = Arc::new(std::sync::Barrier::new(9));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (engine, module, started) = (engine.clone(), module.clone(), started.clone());
                std::thread::spawn(move || {
                    let mut store = Store::new(&engine, ());
                    store.set_epoch_deadline(1);
                    let instance = Instance::new(&mut store, &module, &[]).unwrap();
                    let run = instance
                        .get_typed_func::<(), ()>(&mut store, "run")
                        .unwrap();
                    started.wait();
                    let err = run.call(&mut store, ()).unwrap_err();
                    trap_of(&err)
                })
            })
            .collect();
        started.wait();
        std::thread::sleep(Duration::from_millis(100));
        engine.increment_epoch();
        for t in threads {
            assert_eq!(t.join().unwrap(), Some(Trap::Interrupt));
        }
    }
}

#[test]
fn a_deadline_callback_extends_interrupts_or_fails() {
    for engine in epoch_engines() {
        let module = Module::new(&engine, RUNAWAYS[0].1).unwrap();

        // Continue a few times, then stop: the callback sees every tick.
        let mut store = Store::new(&engine, 0u32);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut ctx| {
            *ctx.data_mut() += 1;
            Ok(if *ctx.data() < 3 {
                UpdateDeadline::Continue(1)
            } else {
                UpdateDeadline::Interrupt
            })
        });
        let ticker = Ticker::start(&engine, Duration::from_millis(5));
        let instance = Instance::new(&mut store, &module, &[]).unwrap();
        let run = instance
            .get_typed_func::<(), ()>(&mut store, "run")
            .unwrap();
        let err = run.call(&mut store, ()).unwrap_err();
        assert_eq!(trap_of(&err), Some(Trap::Interrupt));
        assert_eq!(*store.data(), 3);

        // An error from the callback is what the call returns.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|_| Err(anyhow::anyhow!("tenant over budget")));
        let err = run.call(&mut store, ()).unwrap_err();
        drop(ticker);
        assert!(format!("{err:?}").contains("tenant over budget"), "{err:?}");
        assert!(err.downcast_ref::<WasmBacktrace>().is_some());
    }
}

/// One call of `f(arg)` with fuel on, from a fresh store given `fuel`: its
/// result, and the fuel left after it.
fn call_with_fuel(wat: &str, arg: i32, fuel: u64) -> (Result<i32>, u64) {
    let mut config = Config::new();
    config.consume_fuel(true);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(&engine, wat).unwrap();
    let mut store = Store::new(&engine, ());
    store.set_fuel(fuel).unwrap();
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let f = instance
        .get_typed_func::<i32, i32>(&mut store, "f")
        .unwrap();
    let result = f.call(&mut store, arg);
    (result, store.get_fuel().unwrap())
}

/// Fuel plenty for every guest here.
const PLENTY: u64 = 1_000_000_000;

/// Fuel spent by one call of `f` with fuel on, from a fresh store.
fn fuel_spent(wat: &str, arg: i32) -> u64 {
    let (result, left) = call_with_fuel(wat, arg, PLENTY);
    result.unwrap();
    PLENTY - left
}

/// The cost model, pinned: a change to any of these counts changes what
/// every host's guests pay, so it must be deliberate (and match Wasmtime 48,
/// which charges the same; `bench` checks that side by side).
#[test]
fn fuel_counts_are_pinned() {
    // Entry 1, `local.get` 1, `i32.const` 1, `i32.add` 1; `end` is free.
    let add = r#"(module (func (export "f") (param i32) (result i32)
        (i32.add (local.get 0) (i32.const 1))))"#;
    assert_eq!(fuel_spent(add, 0), 4);
    // Per iteration: local.get, i32.const, i32.add, local.tee, local.get,
    // i32.lt_u, br_if = 7; plus entry 1 and the final local.get 1.
    let count = r#"(module (func (export "f") (param i32) (result i32) (local i32)
        (loop
          (br_if 0 (i32.lt_u (local.tee 1 (i32.add (local.get 1) (i32.const 1))) (local.get 0))))
        (local.get 1)))"#;
    assert_eq!(fuel_spent(count, 1), 9);
    assert_eq!(fuel_spent(count, 100), 702);
    assert_eq!(fuel_spent(count, 100_000), 700_002);
    // A call: the caller's entry, `local.get`, `call`, then the callee's
    // entry and its `local.get`: 5. `nop` and `drop` are free.
    let call = r#"(module
        (func $id (param i32) (result i32) (local.get 0))
        (func (export "f") (param i32) (result i32) nop (call $id (local.get 0)) (drop (i32.const 0))))"#;
    assert_eq!(fuel_spent(call, 3), 6);
    // Bulk operations cost one unit per byte on top of the instruction.
    let fill = r#"(module (memory 1) (func (export "f") (param i32) (result i32)
        (memory.fill (i32.const 0) (i32.const 1) (local.get 0)) (i32.const 0)))"#;
    assert_eq!(fuel_spent(fill, 0), 6);
    assert_eq!(fuel_spent(fill, 1000), 1006);
    assert_eq!(fuel_spent(fill, 65536), 65542);
}

/// Whether one call of `f(arg)` completes on exactly `fuel`, and the fuel
/// left after it.
fn completes_on(wat: &str, arg: i32, fuel: u64) -> (bool, u64) {
    let (result, left) = call_with_fuel(wat, arg, fuel);
    if let Err(err) = &result {
        assert_eq!(trap_of(err), Some(Trap::OutOfFuel), "{err:?}");
    }
    (result.is_ok(), left)
}

/// Every charge is checked, not only those at loop headers and function
/// entries (as in Wasmtime): a guest completes exactly when its fuel covers
/// what it spends, and one unit less stops it with none left.
#[test]
fn a_guest_completes_exactly_on_the_fuel_it_spends() {
    let guests = [
        // Straight-line code after the entry.
        r#"(module (func (export "f") (param i32) (result i32)
            (i32.mul (i32.add (local.get 0) (i32.const 1)) (i32.const 3))))"#,
        // A loop, then straight-line code after it.
        r#"(module (func (export "f") (param i32) (result i32) (local i32)
            (loop
              (br_if 0 (i32.lt_u (local.tee 1 (i32.add (local.get 1) (i32.const 1))) (local.get 0))))
            (i32.add (local.get 1) (i32.const 5))))"#,
        // A loop whose exit is a branch out of a block.
        r#"(module (func (export "f") (param i32) (result i32) (local i32)
            (block (loop
              (br_if 1 (i32.ge_u (local.get 1) (local.get 0)))
              (local.set 1 (i32.add (local.get 1) (i32.const 1)))
              (br 0)))
            (local.get 1)))"#,
        // Calls, and a bulk operation.
        r#"(module (memory 1)
            (func $g (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
            (func (export "f") (param i32) (result i32)
              (memory.fill (i32.const 0) (i32.const 1) (local.get 0))
              (call $g (call $g (local.get 0)))))"#,
    ];
    for wat in guests {
        for arg in [0, 1, 10, 100] {
            let spent = fuel_spent(wat, arg);
            assert_eq!(completes_on(wat, arg, spent), (true, 0), "{wat} {arg}");
            assert_eq!(completes_on(wat, arg, spent + 1), (true, 1), "{wat} {arg}");
            assert_eq!(completes_on(wat, arg, spent - 1), (false, 0), "{wat} {arg}");
        }
    }
}

/// A function's entry is charged before its first instruction runs: with
/// no fuel left, a call changes nothing (here: writes no memory).
#[test]
fn a_call_with_no_fuel_left_runs_nothing() {
    let mut config = Config::new();
    config.consume_fuel(true);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(
        &engine,
        r#"(module (memory (export "m") 1)
             (func (export "f") (i32.store8 (i32.const 0) (i32.const 9))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    store.set_fuel(0).unwrap();
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let f = instance.get_typed_func::<(), ()>(&mut store, "f").unwrap();
    let err = f.call(&mut store, ()).unwrap_err();
    assert_eq!(trap_of(&err), Some(Trap::OutOfFuel));
    let memory = instance.get_memory(&mut store, "m").unwrap();
    assert_eq!(memory.data(&store)[0], 0, "the store ran");
}

#[test]
fn a_bulk_operation_never_runs_on_fuel_it_does_not_have() {
    let mut config = Config::new();
    config.consume_fuel(true);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(
        &engine,
        r#"(module (memory (export "m") 1)
             (func (export "f") (param i32)
               (memory.fill (i32.const 0) (i32.const 9) (local.get 0))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    store.set_fuel(1000).unwrap();
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let f = instance.get_typed_func::<i32, ()>(&mut store, "f").unwrap();
    let err = f.call(&mut store, 65536).unwrap_err();
    assert_eq!(trap_of(&err), Some(Trap::OutOfFuel));
    let memory = instance.get_memory(&mut store, "m").unwrap();
    assert!(memory.data(&store).iter().all(|b| *b == 0), "the fill ran");
}

#[test]
fn a_host_function_reads_and_charges_fuel() {
    let mut config = Config::new();
    config.consume_fuel(true);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(
        &engine,
        r#"(module (import "host" "charge" (func $charge (result i64)))
             (func (export "f") (result i64) (call $charge)))"#,
    )
    .unwrap();
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap(
            "host",
            "charge",
            |mut caller: Caller<'_, ()>| -> Result<i64> {
                let left = caller.get_fuel()?;
                let left_after = left
                    .checked_sub(500)
                    .ok_or_else(|| anyhow::anyhow!("cannot afford the host call"))?;
                caller.set_fuel(left_after)?;
                Ok(left as i64)
            },
        )
        .unwrap();
    let mut store = Store::new(&engine, ());
    store.set_fuel(10_000).unwrap();
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let f = instance.get_typed_func::<(), i64>(&mut store, "f").unwrap();
    // The host sees what the guest spent before the call (entry and `call`).
    assert_eq!(f.call(&mut store, ()).unwrap(), 9_998);
    assert_eq!(store.get_fuel().unwrap(), 9_498);
    // Without enough fuel left, the charge itself fails the call.
    store.set_fuel(100).unwrap();
    let err = f.call(&mut store, ()).unwrap_err();
    assert!(format!("{err:?}").contains("cannot afford"), "{err:?}");
}

#[test]
fn fuel_apis_fail_without_fuel_configured() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    assert!(store.set_fuel(1).is_err());
    assert!(store.get_fuel().is_err());
}

#[test]
fn trap_on_grow_failure_stops_the_guest_with_the_limit() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module (memory 1)
             (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))"#,
    )
    .unwrap();
    for trap in [false, true] {
        let limits = StoreLimitsBuilder::new()
            .memory_size(4 << 16)
            .trap_on_grow_failure(trap)
            .build();
        let mut store = Store::new(&engine, limits);
        store.limiter(|l| l);
        let instance = Instance::new(&mut store, &module, &[]).unwrap();
        let grow = instance
            .get_typed_func::<i32, i32>(&mut store, "grow")
            .unwrap();
        assert_eq!(grow.call(&mut store, 3).unwrap(), 1);
        let result = grow.call(&mut store, 1);
        if trap {
            let err = result.unwrap_err();
            assert!(
                format!("{err:?}").contains("limit of 262144 bytes"),
                "{err:?}"
            );
            assert!(err.downcast_ref::<WasmBacktrace>().is_some());
        } else {
            assert_eq!(result.unwrap(), -1);
        }
    }
}

/// A guest that keeps values in many integer, float and vector registers
/// across a loop that a ticking thread interrupts fifty times, each time
/// running a deadline callback that itself uses those registers: the
/// detour through the runtime (a signal anywhere in the loop, or a check,
/// depending on the design) must leave every value as it was.
#[test]
fn a_deadline_callback_preserves_every_register_of_the_guest() {
    let wat = r#"(module
      (func (export "run") (param $n i32) (result f64)
        (local $i i32) (local $a i64) (local $b i64) (local $c i64) (local $d i64)
        (local $e i64) (local $f i64) (local $g i64) (local $h i64)
        (local $x f64) (local $y f64) (local $z f64) (local $v v128) (local $w v128)
        (loop $l
          (local.set $a (i64.add (local.get $a) (i64.const 1)))
          (local.set $b (i64.add (local.get $b) (i64.const 3)))
          (local.set $c (i64.xor (local.get $c) (i64.extend_i32_u (local.get $i))))
          (local.set $d (i64.add (local.get $d) (local.get $a)))
          (local.set $e (i64.sub (local.get $e) (local.get $b)))
          (local.set $f (i64.add (local.get $f) (local.get $c)))
          (local.set $g (i64.mul (i64.or (local.get $g) (i64.const 1)) (i64.const 3)))
          (local.set $h (i64.rotl (i64.add (local.get $h) (local.get $d)) (i64.const 7)))
          (local.set $x (f64.add (local.get $x) (f64.const 0.5)))
          (local.set $y (f64.add (local.get $y) (local.get $x)))
          (local.set $z (f64.mul (f64.add (local.get $z) (f64.const 1)) (f64.const 0.999)))
          (local.set $v (i32x4.add (local.get $v) (v128.const i32x4 1 2 3 4)))
          (local.set $w (f32x4.add (local.get $w) (f32x4.splat (f32.const 0.25))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
        (f64.add
          (f64.add (local.get $x) (f64.add (local.get $y) (local.get $z)))
          (f64.add
            (f64.convert_i64_s (i64.add (i64.add (local.get $a) (local.get $b))
                                        (i64.add (local.get $c) (local.get $d))))
            (f64.add
              (f64.convert_i64_s (i64.add (i64.add (local.get $e) (local.get $f))
                                          (i64.add (local.get $g) (local.get $h))))
              (f64.add
                (f64.convert_i32_s (i32.add (i32x4.extract_lane 0 (local.get $v))
                                            (i32x4.extract_lane 3 (local.get $v))))
                (f64.promote_f32 (f32x4.extract_lane 2 (local.get $w)))))))))"#;
    let n = 40_000_000;
    let expected = {
        let engine = Engine::default();
        let module = Module::new(&engine, wat).unwrap();
        let mut store = Store::new(&engine, 0u32);
        let instance = Instance::new(&mut store, &module, &[]).unwrap();
        let run = instance
            .get_typed_func::<i32, f64>(&mut store, "run")
            .unwrap();
        run.call(&mut store, n).unwrap()
    };
    for engine in epoch_engines() {
        let module = Module::new(&engine, wat).unwrap();
        let mut store = Store::new(&engine, 0u32);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut ctx| {
            *ctx.data_mut() += 1;
            // Work that uses the registers the guest holds values in.
            let v: Vec<f64> = (0..64).map(|i| f64::from(i).sqrt()).collect();
            let text = format!("{:.3}", v.iter().sum::<f64>());
            std::hint::black_box((v, text));
            clobber_vector_registers();
            Ok(UpdateDeadline::Continue(if *ctx.data() < 50 {
                1
            } else {
                u64::MAX / 2
            }))
        });
        let ticker = Ticker::start(&engine, Duration::from_micros(500));
        let instance = Instance::new(&mut store, &module, &[]).unwrap();
        let run = instance
            .get_typed_func::<i32, f64>(&mut store, "run")
            .unwrap();
        let got = run.call(&mut store, n);
        drop(ticker);
        assert_eq!(got.unwrap().to_bits(), expected.to_bits());
        assert_eq!(*store.data(), 50, "the guest ran past fifty ticks");
    }
}

/// A trap at a deadline names the function it stopped, whatever the design.
#[test]
fn an_interrupt_has_a_backtrace_through_the_guest() {
    let wat = r#"(module
      (func $spin (loop (br 0)))
      (func $outer (call $spin))
      (func (export "run") (call $outer)))"#;
    for engine in epoch_engines() {
        let module = Module::new(&engine, wat).unwrap();
        let mut store = Store::new(&engine, ());
        store.set_epoch_deadline(1);
        let ticker = tick_once_after(&engine, Duration::from_millis(20));
        let err = run_export(&mut store, &module).unwrap_err();
        ticker.join().unwrap();
        assert_eq!(trap_of(&err), Some(Trap::Interrupt));
        let trace = err.downcast_ref::<WasmBacktrace>().unwrap();
        let names: Vec<_> = trace
            .frames()
            .iter()
            .map(|f| f.func_name().unwrap_or("?").to_string())
            .collect();
        assert_eq!(names, ["spin", "outer", "?"], "{trace:?}");
    }
}

/// Overwrites every vector register, as a callback using wide vector code
/// (an optimized `memcpy`, say) may.
fn clobber_vector_registers() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: only writes registers declared clobbered.
    unsafe {
        std::arch::asm!(
            "pcmpeqd xmm0, xmm0", "pcmpeqd xmm1, xmm1", "pcmpeqd xmm2, xmm2",
            "pcmpeqd xmm3, xmm3", "pcmpeqd xmm4, xmm4", "pcmpeqd xmm5, xmm5",
            "pcmpeqd xmm6, xmm6", "pcmpeqd xmm7, xmm7", "pcmpeqd xmm8, xmm8",
            "pcmpeqd xmm9, xmm9", "pcmpeqd xmm10, xmm10", "pcmpeqd xmm11, xmm11",
            "pcmpeqd xmm12, xmm12", "pcmpeqd xmm13, xmm13", "pcmpeqd xmm14, xmm14",
            "pcmpeqd xmm15, xmm15",
            out("xmm0") _, out("xmm1") _, out("xmm2") _, out("xmm3") _,
            out("xmm4") _, out("xmm5") _, out("xmm6") _, out("xmm7") _,
            out("xmm8") _, out("xmm9") _, out("xmm10") _, out("xmm11") _,
            out("xmm12") _, out("xmm13") _, out("xmm14") _, out("xmm15") _,
            options(nostack, nomem, preserves_flags),
        );
    }
}

/// A callback that answers `Continue(0)` (a deadline already reached) lets
/// the guest go on to its next check, as in Wasmtime, rather than stopping
/// it for good at the one it is at: the call finishes.
#[test]
fn a_callback_continuing_at_the_same_epoch_lets_the_guest_finish() {
    let wat = r#"(module
      (import "host" "step" (func $step))
      (func (export "run") (local i32)
        (loop
          (call $step)
          (local.set 0 (i32.add (local.get 0) (i32.const 1)))
          (br_if 0 (i32.lt_u (local.get 0) (i32.const 100))))))"#;
    for engine in epoch_engines() {
        let module = Module::new(&engine, wat).unwrap();
        let mut store = Store::new(&engine, (0u32, 0u32));
        store.set_epoch_deadline(0);
        store.epoch_deadline_callback(|mut ctx| {
            ctx.data_mut().0 += 1;
            Ok(UpdateDeadline::Continue(0))
        });
        let mut linker = Linker::new(&engine);
        linker
            .func_wrap("host", "step", |mut caller: Caller<'_, (u32, u32)>| {
                caller.data_mut().1 += 1;
            })
            .unwrap();
        let instance = linker.instantiate(&mut store, &module).unwrap();
        let run = instance
            .get_typed_func::<(), ()>(&mut store, "run")
            .unwrap();
        run.call(&mut store, ()).unwrap();
        let (callbacks, steps) = *store.data();
        assert_eq!(steps, 100);
        assert!((1..=202).contains(&callbacks), "{callbacks} callbacks");
    }
}

/// The one tick of a deadline arrives while the guest is in a host call
/// (where a signal cannot stop it), and the guest goes on to a loop without
/// calls: the check on the way back from the host must catch it, since no
/// later tick would come in time.
#[test]
fn a_tick_during_a_host_call_stops_the_loop_after_it() {
    let wat = r#"(module
      (import "host" "slow" (func $slow))
      (func (export "run")
        (call $slow)
        (loop (br 0))))"#;
    for engine in epoch_engines() {
        let module = Module::new(&engine, wat).unwrap();
        let mut store = Store::new(&engine, ());
        store.set_epoch_deadline(1);
        let mut linker = Linker::new(&engine);
        linker
            .func_wrap("host", "slow", || {
                std::thread::sleep(Duration::from_millis(100))
            })
            .unwrap();
        let instance = linker.instantiate(&mut store, &module).unwrap();
        let run = instance
            .get_typed_func::<(), ()>(&mut store, "run")
            .unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let ticker = {
            let (engine, done) = (engine.clone(), done.clone());
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(30));
                engine.increment_epoch();
                // A watchdog, so that a failure is a failed assertion and
                // not a hung test: tick again much later.
                for _ in 0..100 {
                    if done.load(Ordering::SeqCst) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                engine.increment_epoch();
            })
        };
        let start = Instant::now();
        let err = run.call(&mut store, ()).unwrap_err();
        done.store(true, Ordering::SeqCst);
        ticker.join().unwrap();
        assert_eq!(trap_of(&err), Some(Trap::Interrupt));
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "stopped only by the watchdog's tick, after {:?}",
            start.elapsed()
        );
    }
}

/// What one scenario of [`fuel_in_a_register_counts_what_fuel_in_the_store_counts`]
/// ended with: its result or trap, and the fuel left.
fn fuel_scenario(fuel_in_register: bool, export: &str, arg: i32, fuel: u64) -> (String, u64) {
    let mut config = Config::new();
    config.consume_fuel(true).fuel_in_register(fuel_in_register);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(
        &engine,
        r#"(module
            (import "host" "charge" (func $charge (param i32)))
            (import "host" "reenter" (func $reenter (param i32) (result i32)))
            (memory 1)
            (table 2 funcref)
            (elem (i32.const 0) $fib $charge)
            (type $unary (func (param i32) (result i32)))
            (type $sink (func (param i32)))
            (func $fib (export "fib") (param i32) (result i32)
              (if (result i32) (i32.lt_u (local.get 0) (i32.const 2))
                (then (local.get 0))
                (else (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1)))
                               (call $fib (i32.sub (local.get 0) (i32.const 2)))))))
            (func (export "fib_indirect") (param i32) (result i32)
              (call_indirect (type $unary) (local.get 0) (i32.const 0)))
            (func (export "unreachable_after_calls") (param i32) (result i32)
              (drop (call $fib (local.get 0)))
              unreachable)
            (func (export "out_of_bounds_after_calls") (param i32) (result i32)
              (drop (call $fib (local.get 0)))
              (i32.load (i32.const -4)))
            (func (export "divide_by_zero_after_calls") (param i32) (result i32)
              (i32.div_u (call $fib (local.get 0)) (i32.const 0)))
            (func (export "host_charges") (param i32) (result i32)
              (call $charge (local.get 0))
              (call_indirect (type $sink) (local.get 0) (i32.const 1))
              (call $fib (i32.const 5)))
            (func (export "host_reenters") (param i32) (result i32)
              (i32.add (call $reenter (local.get 0)) (call $fib (i32.const 3)))))"#,
    )
    .unwrap();
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap(
            "host",
            "charge",
            |mut caller: Caller<'_, ()>, amount: i32| -> Result<()> {
                let left = caller.get_fuel()?;
                caller.set_fuel(left.saturating_sub(amount as u64))?;
                Ok(())
            },
        )
        .unwrap();
    linker
        .func_wrap(
            "host",
            "reenter",
            |mut caller: Caller<'_, ()>, n: i32| -> Result<i32> {
                let fib = caller.get_export("fib").unwrap().into_func().unwrap();
                let fib = fib.typed::<i32, i32>(&caller)?;
                let inner = fib.call(&mut caller, n)?;
                Ok(inner + caller.get_fuel()? as i32 % 2)
            },
        )
        .unwrap();
    let mut store = Store::new(&engine, ());
    store.set_fuel(fuel).unwrap();
    let instance = linker.instantiate(&mut store, &module).unwrap();
    // Typed and untyped entries alike.
    let outcome = if arg >= 0 {
        let f = instance
            .get_typed_func::<i32, i32>(&mut store, export)
            .unwrap();
        f.call(&mut store, arg).map(|v| v.to_string())
    } else {
        let f = instance.get_func(&mut store, export).unwrap();
        let mut results = [Val::I32(0)];
        f.call(&mut store, &[Val::I32(-arg)], &mut results)
            .map(|()| format!("{:?}", results[0].i32()))
    };
    let outcome = outcome.unwrap_or_else(|err| match trap_of(&err) {
        Some(trap) => format!("trap {trap:?}"),
        None => format!("error {err}"),
    });
    (outcome, store.get_fuel().unwrap())
}

/// Fuel kept in a register (`Config::fuel_in_register`) is an
/// implementation choice: every count, through host calls that read and
/// set fuel, re-entries, indirect calls to the host, traps of every kind
/// and running out, is the one fuel kept in the store gives.
#[test]
fn fuel_in_a_register_counts_what_fuel_in_the_store_counts() {
    let exports = [
        "fib",
        "fib_indirect",
        "unreachable_after_calls",
        "out_of_bounds_after_calls",
        "divide_by_zero_after_calls",
        "host_charges",
        "host_reenters",
    ];
    for export in exports {
        for arg in [7, -7, 15] {
            for fuel in [0, 10, 100, 1_000, 1_000_000] {
                let in_store = fuel_scenario(false, export, arg, fuel);
                let in_register = fuel_scenario(true, export, arg, fuel);
                assert_eq!(in_register, in_store, "{export}({arg}) on {fuel}");
                if fuel == 1_000_000 {
                    assert!(in_store.1 < fuel, "{export}({arg}) spent nothing");
                }
            }
        }
    }
    // A trap after calls keeps what the calls spent.
    let (outcome, left) = fuel_scenario(true, "unreachable_after_calls", 10, 1_000_000);
    assert_eq!(outcome, "trap UnreachableCodeReached");
    let (_, fib_left) = fuel_scenario(true, "fib", 10, 1_000_000);
    assert!(left < fib_left, "{left} {fib_left}");
}

/// Small loops are charged a batch of iterations at a time (`batch.rs` in
/// the compiler), with the part not run refunded on the way out: whichever
/// iteration a loop leaves at, and by whichever branch, a guest completes
/// exactly when its fuel covers what it spends, and its result is the
/// unmetered one.
#[test]
fn a_batched_loop_charges_exactly_what_it_runs() {
    let guests = [
        // A loop that falls out at its end (`br_if 0`).
        r#"(module (func (export "f") (param i32) (result i32) (local i32)
            (loop
              (local.set 1 (i32.add (local.get 1) (i32.const 3)))
              (br_if 0 (i32.gt_s (local.tee 0 (i32.sub (local.get 0) (i32.const 1))) (i32.const 0))))
            (local.get 1)))"#,
        // Branches out of the middle of the body to a block carrying a
        // value, and to an outer loop's header; stores in the body.
        r#"(module (memory 1)
            (func (export "f") (param i32) (result i32) (local i32 i32)
              (block $done
                (loop $outer
                  (br_if $done (i32.eqz (local.get 0)))
                  (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
                  (local.set 1 (i32.const 0))
                  (loop $inner
                    (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (local.get 1)))
                    (local.set 1 (i32.add (local.get 1) (i32.const 1)))
                    (br_if $outer (i32.ge_u (local.get 1) (local.get 0)))
                    (local.set 2 (i32.add (local.get 2) (i32.const 3)))
                    (br $inner))))
              (i32.add (i32.load (i32.const 0)) (local.get 2))))"#,
        r#"(module (func (export "f") (param i32) (result i32) (local i32)
            (block $out (result i32)
              (loop $l
                (local.set 1 (i32.add (local.get 1) (i32.const 1)))
                (br_if $out (i32.mul (local.get 1) (i32.const 7)) (i32.ge_u (local.get 1) (local.get 0)))
                (br $l))
              (i32.const -1))))"#,
        // `if`s in the body, with and without else, nested, one with a
        // value, one with a branch out of an arm: each charged as its
        // dearer arm, the other refunding.
        r#"(module (func (export "f") (param i32) (result i32) (local i32 i32)
            (block $out
              (loop $l
                (if (i32.and (local.get 1) (i32.const 1))
                  (then (local.set 2 (i32.add (local.get 2) (i32.mul (local.get 1) (i32.const 3))))))
                (local.set 2 (i32.add (local.get 2)
                  (if (result i32) (i32.lt_u (local.get 1) (i32.const 5))
                    (then (i32.const 1))
                    (else
                      (br_if $out (i32.eq (local.get 1) (i32.add (local.get 0) (i32.const 0))))
                      (if (result i32) (i32.and (local.get 1) (i32.const 2))
                        (then (i32.const 2))
                        (else (i32.sub (i32.const 0) (local.get 1))))))))
                (local.set 1 (i32.add (local.get 1) (i32.const 1)))
                (br_if $l (i32.le_u (local.get 1) (local.get 0)))))
            (i32.add (local.get 2) (i32.mul (local.get 1) (i32.const 1000)))))"#,
    ];
    for wat in guests {
        let engine = Engine::default();
        let unmetered = Module::new(&engine, wat).unwrap();
        for arg in 0..=13 {
            let spent = fuel_spent(wat, arg);
            assert_eq!(completes_on(wat, arg, spent), (true, 0), "{wat} {arg}");
            assert_eq!(completes_on(wat, arg, spent + 1), (true, 1), "{wat} {arg}");
            assert_eq!(completes_on(wat, arg, spent + 7), (true, 7), "{wat} {arg}");
            if spent > 0 {
                assert_eq!(completes_on(wat, arg, spent - 1), (false, 0), "{wat} {arg}");
            }
            let mut store = Store::new(&engine, ());
            let instance = Instance::new(&mut store, &unmetered, &[]).unwrap();
            let expected = instance
                .get_typed_func::<i32, i32>(&mut store, "f")
                .unwrap()
                .call(&mut store, arg)
                .unwrap();
            let metered = call_with_fuel(wat, arg, PLENTY).0.unwrap();
            assert_eq!(metered, expected, "{wat} {arg}");
        }
    }
}

/// A trap keeps what the guest spent before it: with fuel in a register,
/// every charge reaches the register the trap handler reads, so a guest
/// that burns fuel in a loop and then traps on purpose is forgiven at most
/// the block it trapped in (with fuel in the store, as in Wasmtime, the
/// count is the one of the last call).
#[test]
fn a_trap_keeps_what_the_guest_spent() {
    let body = |end: &str| {
        format!(
            r#"(module (memory 1) (func (export "f") (param i32) (result i32) (local i32)
                (block $done (loop $l
                  (br_if $done (i32.ge_u (local.get 1) (local.get 0)))
                  (if (i32.and (local.get 1) (i32.const 1))
                    (then (i32.store (i32.const 0) (local.get 1))))
                  (local.set 1 (i32.add (local.get 1) (i32.const 1)))
                  (br $l)))
                {end}))"#
        )
    };
    let returns = body("(local.get 1)");
    let traps = body("(i32.load (i32.const -4))");
    for n in [0, 1, 7, 1000, 100_000] {
        let spent = fuel_spent(&returns, n);
        let (result, left) = call_with_fuel(&traps, n, PLENTY);
        let err = result.unwrap_err();
        assert_eq!(trap_of(&err), Some(Trap::MemoryOutOfBounds), "{err:?}");
        let spent_trapping = PLENTY - left;
        // The two differ only in their last block (a `local.get` against
        // an `i32.const` and a load), which a trap may leave uncharged; a
        // trap may also find the last batch of the loop (four iterations
        // of 15 units) charged whole, never less than was run.
        assert!(
            spent_trapping + 4 >= spent && spent_trapping <= spent + 4 + 4 * 15,
            "{n}: {spent_trapping} spent trapping, {spent} returning"
        );
    }
}

/// Side effects never run more than one basic block ahead of their charge:
/// an `if` after stores charges them before either arm runs.
#[test]
fn an_if_after_side_effects_charges_them_first() {
    let mut config = Config::new();
    config.consume_fuel(true);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(
        &engine,
        r#"(module (memory (export "m") 1)
             (func (export "f")
               (i32.store (i32.const 0) (i32.const 1))
               (i32.store (i32.const 4) (i32.const 1))
               (if (i32.const 1) (then (i32.store (i32.const 8) (i32.const 1))))))"#,
    )
    .unwrap();
    // Entry 1, two stores of 3, the condition and the `if`: 9 before the
    // then arm may run.
    for fuel in 0..9 {
        let mut store = Store::new(&engine, ());
        store.set_fuel(fuel).unwrap();
        let instance = Instance::new(&mut store, &module, &[]).unwrap();
        let f = instance.get_typed_func::<(), ()>(&mut store, "f").unwrap();
        let err = f.call(&mut store, ()).unwrap_err();
        assert_eq!(trap_of(&err), Some(Trap::OutOfFuel), "{fuel}");
        let memory = instance.get_memory(&mut store, "m").unwrap();
        assert_eq!(memory.data(&store)[8], 0, "the then arm ran on {fuel}");
    }
}
