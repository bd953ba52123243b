//! Tail calls through the embedding API: endless tail recursion in constant
//! stack (direct, through a table, through a typed reference, into an
//! import), interrupted by fuel and by epochs like any loop; and host calls
//! of every arity, which cross from the C convention to the `tail`
//! convention of wasm functions.

use keel::*;

/// Mutual tail recursion `n` deep, in the three forms of tail call, each
/// returning the number of calls made. With calls that returned, any of
/// them would exhaust a 64 KiB stack long before a million.
const RECURSION: &str = r#"
    (module
      (type $step (func (param i64 i64) (result i64)))
      (table $t 1 funcref)
      (elem (table $t) (i32.const 0) func $indirect)
      (elem declare func $by_ref)
      (func $even (export "direct") (type $step)
        (if (result i64) (i64.eqz (local.get 0)) (then (local.get 1))
          (else (return_call $odd (i64.sub (local.get 0) (i64.const 1))
                                  (i64.add (local.get 1) (i64.const 1))))))
      (func $odd (type $step)
        (return_call $even (local.get 0) (local.get 1)))
      (func $indirect (export "indirect") (type $step)
        (if (result i64) (i64.eqz (local.get 0)) (then (local.get 1))
          (else (return_call_indirect $t (type $step)
                  (i64.sub (local.get 0) (i64.const 1))
                  (i64.add (local.get 1) (i64.const 1))
                  (i32.const 0)))))
      (func $by_ref (export "by_ref") (type $step)
        (if (result i64) (i64.eqz (local.get 0)) (then (local.get 1))
          (else (return_call_ref $step
                  (i64.sub (local.get 0) (i64.const 1))
                  (i64.add (local.get 1) (i64.const 1))
                  (ref.func $by_ref))))))
"#;

/// A thread that advances `engine`'s epoch once, `ms` milliseconds from
/// now.
pub(crate) fn tick_once_after(engine: &Engine, ms: u64) -> std::thread::JoinHandle<()> {
    let engine = engine.clone();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(ms));
        engine.increment_epoch();
    })
}

fn small_stack_engine(configure: impl FnOnce(&mut Config)) -> Engine {
    let mut config = Config::new();
    config.max_wasm_stack(64 << 10);
    configure(&mut config);
    Engine::new(&config).unwrap()
}

#[test]
fn endless_tail_recursion_runs_in_constant_stack() {
    for lazy in [false, true] {
        let engine = small_stack_engine(|c| {
            c.lazy_compilation(lazy);
        });
        let module = Module::new(&engine, RECURSION).unwrap();
        let mut store = Store::new(&engine, ());
        let instance = Instance::new(&mut store, &module, &[]).unwrap();
        for name in ["direct", "indirect", "by_ref"] {
            let f = instance
                .get_typed_func::<(i64, i64), i64>(&mut store, name)
                .unwrap();
            assert_eq!(
                f.call(&mut store, (1_000_000, 0)).unwrap(),
                1_000_000,
                "{name}"
            );
        }
    }
}

#[test]
fn a_tail_call_into_the_host_returns_to_the_wasm_caller() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
             (import "host" "twice" (func $twice (param i32) (result i32)))
             (func $tail (param i32) (result i32)
               (return_call $twice (i32.add (local.get 0) (i32.const 1))))
             (func (export "f") (param i32) (result i32)
               (i32.add (call $tail (local.get 0)) (i32.const 100))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let twice = Func::wrap(&mut store, |x: i32| x * 2);
    let instance = Instance::new(&mut store, &module, &[twice.into()]).unwrap();
    let f = instance
        .get_typed_func::<i32, i32>(&mut store, "f")
        .unwrap();
    assert_eq!(f.call(&mut store, 20).unwrap(), 142);
}

#[test]
fn fuel_and_epochs_stop_endless_tail_recursion() {
    const ENDLESS: &str = r#"
        (module
          (func $a (export "run") (return_call $b))
          (func $b (return_call $a)))"#;

    let engine = small_stack_engine(|c| {
        c.consume_fuel(true);
    });
    let module = Module::new(&engine, ENDLESS).unwrap();
    let mut store = Store::new(&engine, ());
    store.set_fuel(1_000_000).unwrap();
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let run = instance
        .get_typed_func::<(), ()>(&mut store, "run")
        .unwrap();
    let err = run.call(&mut store, ()).unwrap_err();
    assert_eq!(err.downcast_ref::<Trap>(), Some(&Trap::OutOfFuel));

    let engine = small_stack_engine(|c| {
        c.epoch_interruption(true);
    });
    let module = Module::new(&engine, ENDLESS).unwrap();
    let mut store = Store::new(&engine, ());
    store.set_epoch_deadline(1);
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let run = instance
        .get_typed_func::<(), ()>(&mut store, "run")
        .unwrap();
    let ticker = tick_once_after(&engine, 50);
    let err = run.call(&mut store, ()).unwrap_err();
    assert_eq!(err.downcast_ref::<Trap>(), Some(&Trap::Interrupt));
    ticker.join().unwrap();
}

/// With epochs checked by signal, a loop has no check of its own: a tick's
/// signal stops the thread in wasm, and one that finds it in host code is
/// caught by the check on the way back. A host function reached by a tail
/// call returns past the tail caller, so that way back must still check:
/// here nearly every tick lands in the host function, and the loop must
/// still stop at its deadline.
#[test]
fn an_epoch_deadline_stops_a_loop_that_tail_calls_the_host() {
    let mut config = Config::new();
    config.epoch_interruption(true);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(
        &engine,
        r#"(module
             (import "host" "wait" (func $wait))
             (type $wait (func))
             (table $t 1 funcref)
             (elem (table $t) (i32.const 0) func $wait)
             (func $direct (return_call $wait))
             (func $indirect (return_call_indirect $t (type $wait) (i32.const 0)))
             (func (export "run") (param $iterations i32) (param $indirect i32)
               (loop $again
                 (if (local.get $indirect)
                   (then (call $indirect))
                   (else (call $direct)))
                 (local.set $iterations (i32.sub (local.get $iterations) (i32.const 1)))
                 (br_if $again (local.get $iterations)))))"#,
    )
    .unwrap();
    for indirect in [0, 1] {
        let mut store = Store::new(&engine, ());
        store.set_epoch_deadline(1);
        let wait = Func::wrap(&mut store, || {
            std::thread::sleep(std::time::Duration::from_millis(1))
        });
        let instance = Instance::new(&mut store, &module, &[wait.into()]).unwrap();
        let run = instance
            .get_typed_func::<(i32, i32), ()>(&mut store, "run")
            .unwrap();
        let ticker = tick_once_after(&engine, 30);
        // Two seconds of waiting if the deadline were missed.
        let err = run.call(&mut store, (2000, indirect)).unwrap_err();
        assert_eq!(
            err.downcast_ref::<Trap>(),
            Some(&Trap::Interrupt),
            "{err:#}"
        );
        ticker.join().unwrap();
    }
}

#[test]
fn host_calls_of_every_arity_agree_with_wasm_on_the_convention() {
    // Beyond six integer arguments some go on the stack, where the `tail`
    // convention and the C one differ; several results come back in
    // registers the C convention does not use.
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
             (func (export "sum8")
               (param i32 i64 f32 f64 i32 i64 f32 f64) (result f64)
               (f64.add
                 (f64.add
                   (f64.add (f64.convert_i32_s (local.get 0)) (f64.convert_i64_s (local.get 1)))
                   (f64.add (f64.promote_f32 (local.get 2)) (local.get 3)))
                 (f64.add
                   (f64.add (f64.convert_i32_s (local.get 4)) (f64.convert_i64_s (local.get 5)))
                   (f64.add (f64.promote_f32 (local.get 6)) (local.get 7)))))
             (func (export "ints10")
               (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
               (i32.add (i32.mul (local.get 0) (i32.const 1000000000))
                 (i32.add (i32.mul (local.get 8) (i32.const 10)) (local.get 9))))
             (func (export "swap3") (param i32 i64 f64) (result f64 i64 i32)
               (local.get 2) (local.get 1) (local.get 0)))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let sum8 = instance
        .get_typed_func::<(i32, i64, f32, f64, i32, i64, f32, f64), f64>(&mut store, "sum8")
        .unwrap();
    assert_eq!(
        sum8.call(&mut store, (1, 2, 3.0, 4.0, 5, 6, 7.0, 8.0))
            .unwrap(),
        36.0
    );
    let ints10 = instance
        .get_typed_func::<(i32, i32, i32, i32, i32, i32, i32, i32, i32, i32), i32>(
            &mut store, "ints10",
        )
        .unwrap();
    assert_eq!(
        ints10
            .call(&mut store, (1, 0, 0, 0, 0, 0, 0, 0, 4, 2))
            .unwrap(),
        1_000_000_042
    );
    let swap3 = instance
        .get_typed_func::<(i32, i64, f64), (f64, i64, i32)>(&mut store, "swap3")
        .unwrap();
    assert_eq!(swap3.call(&mut store, (1, 2, 3.5)).unwrap(), (3.5, 2, 1));

    // Wasm calling a host function of many parameters and results.
    let module = Module::new(
        &engine,
        r#"(module
             (import "host" "f" (func $f (param i32 i32 i32 i32 i32 i32 i32 i32 i32)
                                         (result i32 i64)))
             (func (export "g") (result i64) (local $high i64)
               (call $f (i32.const 1) (i32.const 2) (i32.const 3) (i32.const 4) (i32.const 5)
                        (i32.const 6) (i32.const 7) (i32.const 8) (i32.const 9))
               (local.set $high)
               (i64.extend_i32_u)
               (i64.add (local.get $high))))"#,
    )
    .unwrap();
    let f = Func::wrap(
        &mut store,
        |a: i32, b: i32, c: i32, d: i32, e: i32, f: i32, g: i32, h: i32, i: i32| {
            (a + b + c + d + e + f + g + h, i64::from(i) * 1000)
        },
    );
    let instance = Instance::new(&mut store, &module, &[f.into()]).unwrap();
    let g = instance.get_typed_func::<(), i64>(&mut store, "g").unwrap();
    assert_eq!(g.call(&mut store, ()).unwrap(), 9036);
}

#[test]
fn tail_calls_can_be_switched_off() {
    let mut config = Config::new();
    config.wasm_tail_call(false);
    let engine = Engine::new(&config).unwrap();
    let err = Module::new(&engine, RECURSION).unwrap_err();
    assert!(format!("{err:#}").contains("tail"), "{err:#}");
}
