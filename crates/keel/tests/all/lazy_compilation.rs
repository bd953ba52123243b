//! `Config::lazy_compilation`: functions compile at their first call, and
//! nothing a host can observe differs from eager compilation (results,
//! traps and their backtraces, fuel, host calls, threads, artifacts); an
//! invalid module is still refused whole, up front.

use keel::*;

fn lazy_engine() -> Engine {
    let mut config = Config::new();
    config.lazy_compilation(true);
    Engine::new(&config).unwrap()
}

/// Functions compile at their first call only, so that what is compiled
/// when is deterministic.
fn on_demand_engine() -> Engine {
    let mut config = Config::new();
    config
        .lazy_compilation(true)
        .lazy_compilation_in_background(false);
    Engine::new(&config).unwrap()
}

fn trap_of(e: &Error) -> Trap {
    *e.downcast_ref::<Trap>()
        .unwrap_or_else(|| panic!("not a trap: {e:?}"))
}

const PROGRAM: &str = r#"(module
    (import "host" "double" (func $double (param i64) (result i64)))
    (type $binop (func (param i32 i32) (result i32)))
    (memory 1)
    (table funcref (elem $add $sub $mul))
    (func $fib (export "fib") (param i32) (result i32)
      (if (result i32) (i32.lt_u (local.get 0) (i32.const 2))
        (then (local.get 0))
        (else (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1)))
                       (call $fib (i32.sub (local.get 0) (i32.const 2)))))))
    (func $add (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
    (func $sub (param i32 i32) (result i32) (i32.sub (local.get 0) (local.get 1)))
    (func $mul (param i32 i32) (result i32) (i32.mul (local.get 0) (local.get 1)))
    (func (export "apply") (param i32 i32 i32) (result i32)
      (call_indirect (type $binop) (local.get 1) (local.get 2) (local.get 0)))
    (func (export "floats") (param f64 f32 i64 v128) (result f64)
      (f64.add (f64.add (local.get 0) (f64.promote_f32 (local.get 1)))
               (f64.add (f64.convert_i64_s (call $double (local.get 2)))
                        (f64x2.extract_lane 1 (local.get 3)))))
    (func (export "many") (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
      (call $sum10 (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4)
                   (local.get 5) (local.get 6) (local.get 7) (local.get 8) (local.get 9)))
    (func $sum10 (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
      (i32.add (local.get 0) (i32.add (local.get 1) (i32.add (local.get 2) (i32.add (local.get 3)
      (i32.add (local.get 4) (i32.add (local.get 5) (i32.add (local.get 6) (i32.add (local.get 7)
      (i32.add (local.get 8) (local.get 9)))))))))))
    (func $deep (export "oob") (param i32) (result i32)
      (if (result i32) (local.get 0)
        (then (call $deep (i32.sub (local.get 0) (i32.const 1))))
        (else (i32.load (i32.const 70000)))))
    (func $forever (export "recurse") (call $forever))
    ;; Several results come back through a return area, whose address is
    ;; the first argument (a stub must not take it for the context).
    (func $three (export "three") (param i32) (result i32 i32 i64)
      (local.get 0) (i32.const 3) (i64.const 2))
    (func (export "sum_three") (param i32) (result i32)
      (call $three (local.get 0))
      (drop) (i32.add)))"#;

fn instantiate(engine: &Engine) -> (Store<()>, Instance) {
    let module = Module::new(engine, PROGRAM).unwrap();
    let mut store = Store::new(engine, ());
    let double = Func::wrap(&mut store, |x: i64| x * 2);
    let instance = Instance::new(&mut store, &module, &[double.into()]).unwrap();
    (store, instance)
}

#[test]
fn results_equal_eager_compilation() {
    let eager = Engine::default();
    let lazy = on_demand_engine();
    let mut outputs = Vec::new();
    for engine in [&eager, &lazy] {
        let module = Module::new(engine, PROGRAM).unwrap();
        let mut store = Store::new(engine, ());
        let double = Func::wrap(&mut store, |x: i64| x * 2);
        let i = Instance::new(&mut store, &module, &[double.into()]).unwrap();
        let before = module.lazy_compilation_progress();
        let fib = i.get_typed_func::<i32, i32>(&mut store, "fib").unwrap();
        assert_eq!(fib.call(&mut store, 1).unwrap(), 1);
        let after_one_call = module.lazy_compilation_progress();
        let apply = i
            .get_typed_func::<(i32, i32, i32), i32>(&mut store, "apply")
            .unwrap();
        let floats = i
            .get_typed_func::<(f64, f32, i64, V128), f64>(&mut store, "floats")
            .unwrap();
        let many = i
            .get_typed_func::<(i32, i32, i32, i32, i32, i32, i32, i32, i32, i32), i32>(
                &mut store, "many",
            )
            .unwrap();
        let three = i
            .get_typed_func::<i32, (i32, i32, i64)>(&mut store, "three")
            .unwrap();
        let sum_three = i
            .get_typed_func::<i32, i32>(&mut store, "sum_three")
            .unwrap();
        let lanes = (1.5f64.to_bits() as u128) | ((2.25f64.to_bits() as u128) << 64);
        outputs.push((
            fib.call(&mut store, 20).unwrap(),
            (0..3)
                .map(|op| apply.call(&mut store, (op, 7, 5)).unwrap())
                .collect::<Vec<_>>(),
            floats
                .call(&mut store, (0.5, 0.25, 21, V128::from(lanes)))
                .unwrap(),
            many.call(&mut store, (1, 2, 3, 4, 5, 6, 7, 8, 9, 10))
                .unwrap(),
            sum_three.call(&mut store, 40).unwrap(),
            three.call(&mut store, 9).unwrap(),
        ));
        if std::ptr::eq(engine, &lazy) {
            // Nothing compiled at first; one call compiles one function;
            // the functions never called stay uncompiled.
            assert_eq!(before, Some((0, 12)));
            assert_eq!(after_one_call, Some((1, 12)));
            assert_eq!(module.lazy_compilation_progress(), Some((10, 12)));
        } else {
            assert_eq!(before, None);
        }
    }
    assert_eq!(outputs[0], (6765, vec![12, 2, 35], 45.0, 55, 43, (9, 3, 2)));
    assert_eq!(outputs[0], outputs[1]);
}

#[test]
fn untyped_calls_reach_lazily_compiled_functions() {
    let (mut store, i) = instantiate(&lazy_engine());
    let fib = i.get_func(&mut store, "fib").unwrap();
    let mut out = [Val::I32(0)];
    fib.call(&mut store, &[Val::I32(15)], &mut out).unwrap();
    assert_eq!(out[0].unwrap_i32(), 610);
}

#[test]
fn traps_in_lazily_compiled_code_have_their_kind_and_backtrace() {
    let (mut store, i) = instantiate(&lazy_engine());
    let oob = i.get_typed_func::<i32, i32>(&mut store, "oob").unwrap();
    let err = oob.call(&mut store, 3).unwrap_err();
    assert_eq!(trap_of(&err), Trap::MemoryOutOfBounds);
    let trace = err.downcast_ref::<WasmBacktrace>().expect("a backtrace");
    let names: Vec<_> = trace.frames().iter().map(|f| f.func_name()).collect();
    assert_eq!(names, vec![Some("deep"); 4], "{trace:?}");
    assert!(trace.frames()[0].module_offset().is_some());
    let recurse = i.get_typed_func::<(), ()>(&mut store, "recurse").unwrap();
    assert_eq!(
        trap_of(&recurse.call(&mut store, ()).unwrap_err()),
        Trap::StackOverflow
    );
    // The store is still usable.
    let fib = i.get_typed_func::<i32, i32>(&mut store, "fib").unwrap();
    assert_eq!(fib.call(&mut store, 10).unwrap(), 55);
}

#[test]
fn fuel_is_the_same_as_with_eager_compilation() {
    let spent = |lazy: bool| {
        let mut config = Config::new();
        config.consume_fuel(true).lazy_compilation(lazy);
        let engine = Engine::new(&config).unwrap();
        let (mut store, i) = instantiate(&engine);
        store.set_fuel(1_000_000).unwrap();
        let fib = i.get_typed_func::<i32, i32>(&mut store, "fib").unwrap();
        assert_eq!(fib.call(&mut store, 15).unwrap(), 610);
        1_000_000 - store.get_fuel().unwrap()
    };
    assert_eq!(spent(true), spent(false));
}

#[test]
fn threads_share_one_compilation() {
    let engine = lazy_engine();
    let module = Module::new(&engine, PROGRAM).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (engine, module) = (engine.clone(), module.clone());
            std::thread::spawn(move || {
                let mut store = Store::new(&engine, ());
                let double = Func::wrap(&mut store, |x: i64| x * 2);
                let i = Instance::new(&mut store, &module, &[double.into()]).unwrap();
                let fib = i.get_typed_func::<i32, i32>(&mut store, "fib").unwrap();
                let apply = i
                    .get_typed_func::<(i32, i32, i32), i32>(&mut store, "apply")
                    .unwrap();
                (0..50)
                    .map(|k| {
                        fib.call(&mut store, 10 + (k + t) % 5).unwrap()
                            + apply.call(&mut store, (k % 3, t, 2)).unwrap()
                    })
                    .sum::<i32>()
            })
        })
        .collect();
    let sums: Vec<i32> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let expected = |t: i32| {
        let fib = [55, 89, 144, 233, 377];
        (0..50)
            .map(|k| fib[((k + t) % 5) as usize] + [t + 2, t - 2, t * 2][(k % 3) as usize])
            .sum::<i32>()
    };
    assert_eq!(sums, (0..8).map(expected).collect::<Vec<_>>());
}

#[test]
fn an_invalid_body_is_refused_up_front() {
    let engine = lazy_engine();
    let err = Module::new(
        &engine,
        r#"(module
            (func (export "fine") (result i32) (i32.const 1))
            (func (result i32) (i64.const 1)))"#,
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("type mismatch"), "{err:#}");
}

#[test]
fn a_lazily_compiled_module_serializes_whole() {
    let engine = on_demand_engine();
    let module = Module::new(&engine, PROGRAM).unwrap();
    let bytes = module.serialize().unwrap();
    // Every function compiled on its own and laid out as eager compilation
    // lays them out: the very same artifact.
    assert_eq!(module.lazy_compilation_progress(), Some((12, 12)));
    let eager = Module::new(&Engine::default(), PROGRAM).unwrap();
    assert!(bytes == eager.serialize().unwrap());
    // SAFETY: the artifact was just made by this engine.
    let loaded = unsafe { Module::deserialize(&engine, &bytes) }.unwrap();
    let mut store = Store::new(&engine, ());
    let double = Func::wrap(&mut store, |x: i64| x * 2);
    let i = Instance::new(&mut store, &loaded, &[double.into()]).unwrap();
    let fib = i.get_typed_func::<i32, i32>(&mut store, "fib").unwrap();
    assert_eq!(fib.call(&mut store, 20).unwrap(), 6765);
}

#[test]
fn a_host_error_inside_a_first_call_unwinds_cleanly() {
    // The host function fails while wasm is inside functions that were
    // compiled on the way in; the next call works.
    let engine = lazy_engine();
    let module = Module::new(
        &engine,
        r#"(module
            (import "host" "fail" (func $fail (param i32)))
            (func $inner (param i32) (call $fail (local.get 0)))
            (func (export "run") (param i32) (call $inner (local.get 0))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let fail = Func::wrap(&mut store, |x: i32| -> Result<()> {
        if x != 0 {
            bail!("host says no to {x}")
        }
        Ok(())
    });
    let i = Instance::new(&mut store, &module, &[fail.into()]).unwrap();
    let run = i.get_typed_func::<i32, ()>(&mut store, "run").unwrap();
    let err = run.call(&mut store, 7).unwrap_err();
    assert!(format!("{err:#}").contains("host says no to 7"), "{err:#}");
    run.call(&mut store, 0).unwrap();
}

#[test]
fn the_background_compiles_what_no_call_needed() {
    let engine = lazy_engine();
    let module = Module::new(&engine, PROGRAM).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while module.lazy_compilation_progress() != Some((12, 12)) {
        assert!(
            std::time::Instant::now() < deadline,
            "the background compiler stalled at {:?}",
            module.lazy_compilation_progress()
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let (mut store, i) = instantiate(&engine);
    let fib = i.get_typed_func::<i32, i32>(&mut store, "fib").unwrap();
    assert_eq!(fib.call(&mut store, 12).unwrap(), 144);
}

#[test]
fn code_switched_to_its_linked_form_runs_and_traps_the_same() {
    // Once every function is compiled (here: by serializing), the module
    // runs its code linked as eager compilation links it; an instance
    // made before the switch and one made after behave alike.
    let engine = on_demand_engine();
    let module = Module::new(&engine, PROGRAM).unwrap();
    let mut store = Store::new(&engine, ());
    let double = Func::wrap(&mut store, |x: i64| x * 2);
    let before = Instance::new(&mut store, &module, &[double.into()]).unwrap();
    let fib = before
        .get_typed_func::<i32, i32>(&mut store, "fib")
        .unwrap();
    assert_eq!(fib.call(&mut store, 5).unwrap(), 5);
    module.serialize().unwrap();
    assert_eq!(module.lazy_compilation_progress(), Some((12, 12)));
    let after = Instance::new(&mut store, &module, &[double.into()]).unwrap();
    for instance in [before, after] {
        let fib = instance
            .get_typed_func::<i32, i32>(&mut store, "fib")
            .unwrap();
        assert_eq!(fib.call(&mut store, 20).unwrap(), 6765);
        let oob = instance
            .get_typed_func::<i32, i32>(&mut store, "oob")
            .unwrap();
        let err = oob.call(&mut store, 2).unwrap_err();
        assert_eq!(trap_of(&err), Trap::MemoryOutOfBounds);
        let trace = err.downcast_ref::<WasmBacktrace>().expect("a backtrace");
        let names: Vec<_> = trace.frames().iter().map(|f| f.func_name()).collect();
        assert_eq!(names, vec![Some("deep"); 3], "{trace:?}");
        let apply = instance
            .get_typed_func::<(i32, i32, i32), i32>(&mut store, "apply")
            .unwrap();
        assert_eq!(apply.call(&mut store, (2, 6, 7)).unwrap(), 42);
    }
}
