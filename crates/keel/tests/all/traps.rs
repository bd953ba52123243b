//! Every trap kind is reported with its kind and a backtrace, from wasm and
//! from host functions, and the process carries on.

use keel::*;

fn instance(wat: &str) -> (Store<()>, Instance) {
    let engine = Engine::default();
    let module = Module::new(&engine, wat).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    (store, instance)
}

fn trap_of(e: &Error) -> Trap {
    *e.downcast_ref::<Trap>()
        .unwrap_or_else(|| panic!("not a trap: {e:?}"))
}

#[test]
fn each_trap_kind() {
    let (mut store, i) = instance(
        r#"(module
            (type $t (func (result i32)))
            (memory 1)
            (table 2 funcref)
            (elem (i32.const 1) $other)
            (func $other (param i32))
            (func (export "unreachable") unreachable)
            (func (export "div0") (result i32) (i32.div_s (i32.const 1) (i32.const 0)))
            (func (export "rem0") (result i64) (i64.rem_u (i64.const 1) (i64.const 0)))
            (func (export "overflow") (result i32) (i32.div_s (i32.const 0x80000000) (i32.const -1)))
            (func (export "rem_overflow") (result i32) (i32.rem_s (i32.const 0x80000000) (i32.const -1)))
            (func (export "nan") (result i32) (i32.trunc_f32_s (f32.const nan)))
            (func (export "big") (result i32) (i32.trunc_f64_u (f64.const 1e30)))
            (func (export "oob") (result i32) (i32.load (i32.const 65535)))
            (func (export "oob_offset") (result i32) (i32.load offset=0xffffffff (i32.const 1)))
            (func (export "null") (result i32) (call_indirect (type $t) (i32.const 0)))
            (func (export "past_end") (result i32) (call_indirect (type $t) (i32.const 9)))
            (func (export "bad_sig") (result i32) (call_indirect (type $t) (i32.const 1)))
            (func $r (export "recurse") (call $r)))"#,
    );
    let cases = [
        ("unreachable", Trap::UnreachableCodeReached),
        ("div0", Trap::IntegerDivisionByZero),
        ("rem0", Trap::IntegerDivisionByZero),
        ("overflow", Trap::IntegerOverflow),
        ("nan", Trap::BadConversionToInteger),
        ("big", Trap::IntegerOverflow),
        ("oob", Trap::MemoryOutOfBounds),
        ("oob_offset", Trap::MemoryOutOfBounds),
        ("null", Trap::IndirectCallToNull),
        ("past_end", Trap::TableOutOfBounds),
        ("bad_sig", Trap::BadSignature),
        ("recurse", Trap::StackOverflow),
    ];
    for (name, expected) in cases {
        let f = i.get_func(&mut store, name).unwrap();
        let mut results = vec![Val::I32(0); f.ty(&store).results().len()];
        let err = f.call(&mut store, &[], &mut results).unwrap_err();
        assert_eq!(trap_of(&err), expected, "{name}");
        let bt = err.downcast_ref::<WasmBacktrace>().expect("a backtrace");
        assert!(!bt.frames().is_empty(), "{name} has frames");
    }
    // INT_MIN % -1 is 0, not a trap.
    let rem = i
        .get_typed_func::<(), i32>(&mut store, "rem_overflow")
        .unwrap();
    assert_eq!(rem.call(&mut store, ()).unwrap(), 0);
}

#[test]
fn backtrace_names_frames_innermost_first() {
    let (mut store, i) = instance(
        r#"(module
            (func $inner (unreachable))
            (func $middle (call $inner))
            (func $outer (export "outer") (call $middle)))"#,
    );
    let f = i.get_typed_func::<(), ()>(&mut store, "outer").unwrap();
    let err = f.call(&mut store, ()).unwrap_err();
    let bt = err.downcast_ref::<WasmBacktrace>().unwrap();
    let names: Vec<_> = bt
        .frames()
        .iter()
        .map(|f| f.func_name().unwrap_or("?"))
        .collect();
    assert_eq!(names, ["inner", "middle", "outer"]);
    assert!(bt.frames().iter().all(|f| f.module_offset().is_some()));
    assert!(bt.to_string().contains("inner"));
}

#[test]
fn host_error_becomes_error_with_backtrace() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
            (import "host" "fail" (func $fail (param i32)))
            (func $w (export "run") (call $fail (i32.const 7))))"#,
    )
    .unwrap();
    let mut linker = Linker::<()>::new(&engine);
    linker
        .func_wrap("host", "fail", |x: i32| -> Result<()> {
            bail!("host refused {x}")
        })
        .unwrap();
    let mut store = Store::new(&engine, ());
    let i = linker.instantiate(&mut store, &module).unwrap();
    let run = i.get_typed_func::<(), ()>(&mut store, "run").unwrap();
    let err = run.call(&mut store, ()).unwrap_err();
    assert!(format!("{err:#}").contains("host refused 7"), "{err:#}");
    let bt = err.downcast_ref::<WasmBacktrace>().unwrap();
    assert_eq!(bt.frames().len(), 1);
    assert_eq!(bt.frames()[0].func_name(), Some("w"));
    // The store is usable afterwards.
    assert!(run.call(&mut store, ()).is_err());
}

#[test]
fn host_panic_resumes_in_the_host() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module (import "host" "boom" (func)) (func (export "run") (call 0)))"#,
    )
    .unwrap();
    let mut linker = Linker::<()>::new(&engine);
    linker
        .func_wrap("host", "boom", || -> () { panic!("boom from host") })
        .unwrap();
    let mut store = Store::new(&engine, ());
    let i = linker.instantiate(&mut store, &module).unwrap();
    let run = i.get_typed_func::<(), ()>(&mut store, "run").unwrap();
    let payload =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run.call(&mut store, ())))
            .unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom from host"));
    // Wasm still runs in this store.
    let module2 = Module::new(
        &engine,
        r#"(module (func (export "ok") (result i32) (i32.const 5)))"#,
    )
    .unwrap();
    let i2 = Instance::new(&mut store, &module2, &[]).unwrap();
    assert_eq!(
        i2.get_typed_func::<(), i32>(&mut store, "ok")
            .unwrap()
            .call(&mut store, ())
            .unwrap(),
        5
    );
}

#[test]
fn nested_host_and_wasm_traps_unwind_to_the_innermost_entry() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
            (import "host" "reenter" (func $reenter (result i32)))
            (func (export "trap") (result i32) (i32.div_u (i32.const 1) (i32.const 0)))
            (func (export "outer") (result i32) (i32.add (call $reenter) (i32.const 1))))"#,
    )
    .unwrap();
    let mut linker = Linker::<()>::new(&engine);
    linker
        .func_wrap("host", "reenter", |mut caller: Caller<'_, ()>| -> i32 {
            let f = caller.get_export("trap").unwrap().into_func().unwrap();
            let f = f.typed::<(), i32>(&caller).unwrap();
            let err = f.call(&mut caller, ()).unwrap_err();
            assert_eq!(
                err.downcast_ref::<Trap>(),
                Some(&Trap::IntegerDivisionByZero)
            );
            41
        })
        .unwrap();
    let mut store = Store::new(&engine, ());
    let i = linker.instantiate(&mut store, &module).unwrap();
    let outer = i.get_typed_func::<(), i32>(&mut store, "outer").unwrap();
    assert_eq!(outer.call(&mut store, ()).unwrap(), 42);
}

#[test]
fn traps_on_other_threads() {
    let handles: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                let (mut store, i) = instance(
                    r#"(module (func $r (export "r") (call $r)) (func (export "u") unreachable))"#,
                );
                for name in ["r", "u", "r"] {
                    let f = i.get_typed_func::<(), ()>(&mut store, name).unwrap();
                    assert!(f.call(&mut store, ()).is_err());
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn start_function_trap_fails_instantiation() {
    let engine = Engine::default();
    let module = Module::new(&engine, r#"(module (func $s unreachable) (start $s))"#).unwrap();
    let mut store = Store::new(&engine, ());
    let err = Instance::new(&mut store, &module, &[]).unwrap_err();
    assert_eq!(trap_of(&err), Trap::UnreachableCodeReached);
}

#[test]
fn segment_out_of_bounds_fails_instantiation() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let module = Module::new(
        &engine,
        r#"(module (memory 1) (data (i32.const 65535) "ab"))"#,
    )
    .unwrap();
    let err = Instance::new(&mut store, &module, &[]).unwrap_err();
    assert_eq!(trap_of(&err), Trap::MemoryOutOfBounds);
    let module = Module::new(
        &engine,
        r#"(module (table 1 funcref) (func) (elem (i32.const 1) 0))"#,
    )
    .unwrap();
    let err = Instance::new(&mut store, &module, &[]).unwrap_err();
    assert_eq!(trap_of(&err), Trap::TableOutOfBounds);
}
