//! Exception handling through the embedding API: exceptions that cross
//! wasm frames with their values, host functions that throw into wasm and
//! see wasm's exceptions as errors, uncaught exceptions left pending in the
//! store, exception memory kept flat by collection, and fuel and epochs
//! that still stop a guest that throws in a loop.

use keel::*;

const THROWER: &str = r#"
    (module
      (import "host" "value" (func $value (result externref)))
      (tag $e (export "e") (param i32 i64 f64 externref))
      (tag $other (param i32))
      ;; Throws from `depth` frames down.
      (func $dive (param $depth i32)
        (if (i32.eqz (local.get $depth))
          (then (throw $e (i32.const -7) (i64.const 1234567890123)
                          (f64.const 2.5) (call $value))))
        (call $dive (i32.sub (local.get $depth) (i32.const 1))))
      ;; Catches at the top, past a handler of another tag in between.
      (func (export "catch") (param i32) (result i32 i64 f64 externref)
        (block $h (result i32 i64 f64 externref)
          (try_table (catch $e $h)
            (block $o (result i32)
              (try_table (catch $other $o) (call $dive (local.get 0)))
              (unreachable))
            (unreachable))
          (unreachable)))
      ;; Catches, then throws the same exception again to an outer handler.
      (func (export "rethrow") (param i32) (result i32)
        (block $outer (result i32 i64 f64 externref)
          (try_table (catch $e $outer)
            (block $inner (result exnref)
              (try_table (catch_all_ref $inner) (call $dive (local.get 0)))
              (unreachable))
            (throw_ref))
          (unreachable))
        (drop) (drop) (drop))
      (func (export "uncaught") (param i32) (call $dive (local.get 0)))
      (func (export "null") (throw_ref (ref.null exn))))
"#;

fn engine() -> Engine {
    Engine::default()
}

fn instantiate(store: &mut Store<()>, wat: &str) -> Instance {
    let module = Module::new(store.engine(), wat).unwrap();
    let mut linker = Linker::new(store.engine());
    linker
        .func_wrap("host", "value", |mut caller: Caller<'_, ()>| {
            Some(ExternRef::new(&mut caller, 99u32).unwrap())
        })
        .unwrap();
    linker.instantiate(store, &module).unwrap()
}

fn host_value(store: &Store<()>, v: &Val) -> Option<u32> {
    let e = v.externref()??;
    e.data(store).ok()??.downcast_ref::<u32>().copied()
}

#[test]
fn exceptions_cross_wasm_frames_with_their_values() {
    let mut store = Store::new(&engine(), ());
    let instance = instantiate(&mut store, THROWER);
    let catch = instance.get_func(&mut store, "catch").unwrap();
    for depth in [0, 1, 1000] {
        let mut results = vec![Val::I32(0), Val::I64(0), Val::F64(0), Val::ExternRef(None)];
        catch
            .call(&mut store, &[Val::I32(depth)], &mut results)
            .unwrap();
        assert_eq!(results[0].unwrap_i32(), -7, "depth {depth}");
        assert_eq!(results[1].unwrap_i64(), 1234567890123);
        assert_eq!(results[2].unwrap_f64(), 2.5);
        assert_eq!(host_value(&store, &results[3]), Some(99));
    }
    let rethrow = instance
        .get_typed_func::<i32, i32>(&mut store, "rethrow")
        .unwrap();
    assert_eq!(rethrow.call(&mut store, 50).unwrap(), -7);
    assert!(!store.has_pending_exception());
}

#[test]
fn an_uncaught_exception_is_an_error_and_stays_in_the_store() {
    let mut store = Store::new(&engine(), ());
    let instance = instantiate(&mut store, THROWER);
    let uncaught = instance
        .get_typed_func::<i32, ()>(&mut store, "uncaught")
        .unwrap();
    let err = uncaught.call(&mut store, 3).unwrap_err();
    assert!(err.is::<ThrownException>(), "{err:?}");
    // The backtrace names the throwing frame and the frames it crossed.
    let trace = err.downcast_ref::<WasmBacktrace>().unwrap();
    assert_eq!(trace.frames().len(), 5, "{trace:?}");
    let exn = store.take_pending_exception().expect("pending exception");
    assert!(!store.has_pending_exception());
    let tag = instance.get_tag(&mut store, "e").unwrap();
    assert!(Tag::eq(&exn.tag(&mut store).unwrap(), &tag, &store));
    let fields: Vec<Val> = exn.fields(&mut store).unwrap().collect();
    assert_eq!(fields[0].unwrap_i32(), -7);
    assert_eq!(fields[1].unwrap_i64(), 1234567890123);
    assert_eq!(host_value(&store, &fields[3]), Some(99));
    // The store goes on working.
    let catch = instance
        .get_typed_func::<i32, (i32, i64, f64, Option<ExternRef>)>(&mut store, "catch")
        .unwrap();
    assert_eq!(catch.call(&mut store, 2).unwrap().0, -7);
    // `throw_ref` of null traps.
    let null = instance
        .get_typed_func::<(), ()>(&mut store, "null")
        .unwrap();
    let err = null.call(&mut store, ()).unwrap_err();
    assert_eq!(err.downcast_ref::<Trap>(), Some(&Trap::NullReference));
}

#[test]
fn host_functions_throw_into_wasm_and_see_wasm_exceptions() {
    let engine = engine();
    let mut store = Store::new(&engine, ());
    let tag = Tag::new(
        &mut store,
        &TagType::new(FuncType::new(&engine, [ValType::I32], [])),
    )
    .unwrap();
    let module = Module::new(
        &engine,
        r#"(module
          (import "host" "tag" (tag $t (param i32)))
          (import "host" "throws" (func $throws (param i32)))
          (import "host" "calls_back" (func $calls_back (param i32)))
          (func (export "thrower") (param i32) (throw $t (local.get 0)))
          ;; Catches what a host function throws, or what passes through it.
          (func (export "catch_host") (param i32) (result i32)
            (block $h (result i32)
              (try_table (catch $t $h) (call $throws (local.get 0)))
              (i32.const -1)))
          (func (export "catch_through_host") (param i32) (result i32)
            (block $h (result i32)
              (try_table (catch $t $h) (call $calls_back (local.get 0)))
              (i32.const -1))))"#,
    )
    .unwrap();
    let mut linker = Linker::new(&engine);
    linker.define(&store, "host", "tag", tag).unwrap();
    linker
        .func_wrap(
            "host",
            "throws",
            move |mut caller: Caller<'_, ()>, x: i32| -> Result<()> {
                let exn = ExnRef::new(&mut caller, &tag, &[Val::I32(x * 10)])?;
                caller.throw(exn)
            },
        )
        .unwrap();
    linker
        .func_wrap(
            "host",
            "calls_back",
            |mut caller: Caller<'_, ()>, x: i32| -> Result<()> {
                let thrower = caller.get_export("thrower").unwrap().into_func().unwrap();
                let err = thrower
                    .call(&mut caller, &[Val::I32(x + 1)], &mut [])
                    .unwrap_err();
                // The host sees wasm's exception, and lets it go on.
                assert!(err.is::<ThrownException>());
                let exn = caller.take_pending_exception().unwrap();
                assert_eq!(exn.field(&mut caller, 0)?.unwrap_i32(), x + 1);
                caller.throw(exn)
            },
        )
        .unwrap();
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let catch_host = instance
        .get_typed_func::<i32, i32>(&mut store, "catch_host")
        .unwrap();
    assert_eq!(catch_host.call(&mut store, 4).unwrap(), 40);
    let through = instance
        .get_typed_func::<i32, i32>(&mut store, "catch_through_host")
        .unwrap();
    assert_eq!(through.call(&mut store, 8).unwrap(), 9);
    // Thrown from the host with nobody to catch: an error for the caller.
    let thrower = instance
        .get_typed_func::<i32, ()>(&mut store, "thrower")
        .unwrap();
    assert!(
        thrower
            .call(&mut store, 1)
            .unwrap_err()
            .is::<ThrownException>()
    );
    let exn = store.take_pending_exception().unwrap();
    assert_eq!(exn.field(&mut store, 0).unwrap().unwrap_i32(), 1);
    // An exception of a tag with other values is refused.
    assert!(ExnRef::new(&mut store, &tag, &[Val::I64(1)]).is_err());
    assert!(ExnRef::new(&mut store, &tag, &[]).is_err());
}

#[test]
fn throwing_in_a_loop_keeps_memory_flat() {
    let mut store = Store::new(&engine(), ());
    let instance = instantiate(
        &mut store,
        r#"(module
          (import "host" "value" (func $value (result externref)))
          (tag $e (param externref))
          (global $last (mut exnref) (ref.null exn))
          (func (export "run") (param $n i32)
            (loop $l
              (block $h (result exnref)
                (try_table (catch_all_ref $h) (throw $e (call $value)))
                (unreachable))
              (global.set $last)
              (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))))"#,
    );
    let run = instance
        .get_typed_func::<i32, ()>(&mut store, "run")
        .unwrap();
    run.call(&mut store, 20_000).unwrap();
    // Each exception held a new externref: collecting the exceptions lets
    // go of all but the last one's (and a few the conservative stack scan
    // may still see).
    let left = store.gc();
    assert!(left < 64, "{left} externrefs still held by exceptions");
}

#[test]
fn fuel_and_epochs_stop_a_guest_that_throws_in_a_loop() {
    const LOOP: &str = r#"(module
        (tag $e)
        (func $throw (throw $e))
        (func (export "run")
          (loop $l
            (block $h (try_table (catch $e $h) (call $throw)))
            (br $l))))"#;
    let mut config = Config::new();
    config.consume_fuel(true);
    let engine = Engine::new(&config).unwrap();
    let mut store = Store::new(&engine, ());
    store.set_fuel(100_000).unwrap();
    let module = Module::new(&engine, LOOP).unwrap();
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let run = instance
        .get_typed_func::<(), ()>(&mut store, "run")
        .unwrap();
    let err = run.call(&mut store, ()).unwrap_err();
    assert_eq!(err.downcast_ref::<Trap>(), Some(&Trap::OutOfFuel));
    assert_eq!(store.get_fuel().unwrap(), 0);

    let mut config = Config::new();
    config.epoch_interruption(true);
    let engine = Engine::new(&config).unwrap();
    let mut store = Store::new(&engine, ());
    store.set_epoch_deadline(1);
    let module = Module::new(&engine, LOOP).unwrap();
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let run = instance
        .get_typed_func::<(), ()>(&mut store, "run")
        .unwrap();
    let ticker = crate::tail_calls::tick_once_after(&engine, 50);
    let err = run.call(&mut store, ()).unwrap_err();
    ticker.join().unwrap();
    assert_eq!(err.downcast_ref::<Trap>(), Some(&Trap::Interrupt));
}

#[test]
fn fuel_spent_before_a_throw_is_counted() {
    let mut config = Config::new();
    config.consume_fuel(true);
    let engine = Engine::new(&config).unwrap();
    let wat = r#"(module
        (tag $e)
        (func $deep (param i32)
          (if (i32.eqz (local.get 0)) (then (throw $e)))
          (call $deep (i32.sub (local.get 0) (i32.const 1))))
        (func (export "run") (param i32)
          (block $h (try_table (catch $e $h) (call $deep (local.get 0))))))"#;
    let module = Module::new(&engine, wat).unwrap();
    let spent = |depth: i32| {
        let mut store = Store::new(&engine, ());
        store.set_fuel(1_000_000).unwrap();
        let instance = Instance::new(&mut store, &module, &[]).unwrap();
        let run = instance
            .get_typed_func::<i32, ()>(&mut store, "run")
            .unwrap();
        run.call(&mut store, depth).unwrap();
        1_000_000 - store.get_fuel().unwrap()
    };
    // Each level costs the same: the fuel the unwound frames spent is not
    // forgotten (it lives in a register until the throw).
    let (a, b, c) = (spent(10), spent(20), spent(30));
    assert!(a > 0 && b > a);
    assert_eq!(b - a, c - b);
}

#[test]
fn exceptions_can_be_switched_off() {
    let mut config = Config::new();
    config.wasm_exceptions(false);
    let engine = Engine::new(&config).unwrap();
    let err = Module::new(&engine, "(module (tag))").unwrap_err();
    assert!(format!("{err:#}").contains("exception"), "{err:#}");

    // The legacy instructions are off by default, as in Wasmtime.
    let legacy = "(module (tag $e) (func try (throw $e) catch_all end))";
    assert!(Module::new(&Engine::default(), legacy).is_err());
    let mut config = Config::new();
    config.wasm_legacy_exceptions(true);
    assert!(Module::new(&Engine::new(&config).unwrap(), legacy).is_ok());
}

#[test]
fn host_made_exceptions_keep_their_fields_and_stay_in_their_store() {
    let engine = engine();
    let mut store = Store::new(&engine, ());
    let ty = TagType::new(FuncType::new(&engine, [ValType::EXTERNREF], []));
    let tag = Tag::new(&mut store, &ty).unwrap();
    let value = ExternRef::new(&mut store, 5u32).unwrap();
    let exn = ExnRef::new(&mut store, &tag, &[Val::ExternRef(Some(value))]).unwrap();
    // The exception alone keeps its externref alive.
    store.gc();
    let field = exn.field(&mut store, 0).unwrap();
    assert_eq!(host_value(&store, &field), Some(5));
    drop(field);

    // Another store refuses it: its fields are the first store's.
    let mut other = Store::new(&engine, ());
    let err = other.throw::<()>(exn.clone()).unwrap_err();
    assert!(!err.is::<ThrownException>(), "{err:#}");
    assert!(exn.fields(&mut other).is_err());
    let module = Module::new(&engine, "(module (func (export \"f\") (param exnref)))").unwrap();
    let instance = Instance::new(&mut other, &module, &[]).unwrap();
    let f = instance.get_func(&mut other, "f").unwrap();
    assert!(
        f.call(&mut other, &[Val::ExnRef(Some(exn.clone()))], &mut [])
            .is_err()
    );

    // Once the host lets go, so does the store.
    drop(exn);
    assert_eq!(store.gc(), 0);
}

#[test]
fn a_guest_that_keeps_too_many_exceptions_traps() {
    // Each exception carries 256 `v128`s (4 KiB): 100,000 of them kept in
    // a table would take 400 MiB, past the store's 256 MiB.
    let fields = "(v128.const i64x2 1 2) ".repeat(256);
    let params = "v128 ".repeat(256);
    let wat = format!(
        r#"(module
          (tag $big (param {params}))
          (table $keep 100000 exnref)
          (func (export "run") (param $i i32)
            (local $e exnref)
            (loop $l
              (block $h (result exnref)
                (try_table (catch_all_ref $h) (throw $big {fields}))
                (unreachable))
              (local.set $e)
              (table.set $keep (local.get $i) (local.get $e))
              (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                                  (i32.const 100000))))))"#
    );
    let mut store = Store::new(&engine(), ());
    let module = Module::new(store.engine(), &wat).unwrap();
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let run = instance
        .get_typed_func::<i32, ()>(&mut store, "run")
        .unwrap();
    let err = run.call(&mut store, 0).unwrap_err();
    assert!(
        format!("{err:#}").contains("exceptions would take more than"),
        "{err:#}"
    );
    // The store lives on: the table still holds the exceptions, so the
    // next throw fails the same way.
    let err = run.call(&mut store, 99_999).unwrap_err();
    assert!(
        format!("{err:#}").contains("exceptions would take more than"),
        "{err:#}"
    );
}
