//! Many traps and stack exhaustions in one process: the process lives and
//! its memory stays flat. A test binary of its own, so that resident memory
//! measures only this test.

use keel::*;

fn setup() -> (Store<()>, TypedFunc<i32, i32>, TypedFunc<(), ()>) {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
            (func (export "div") (param i32) (result i32) (i32.div_u (i32.const 10) (local.get 0)))
            (func $r (export "recurse") (call $r)))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let i = Instance::new(&mut store, &module, &[]).unwrap();
    let div = i.get_typed_func::<i32, i32>(&mut store, "div").unwrap();
    let rec = i.get_typed_func::<(), ()>(&mut store, "recurse").unwrap();
    (store, div, rec)
}

#[test]
fn hundred_thousand_traps_and_thousand_exhaustions() {
    let (mut store, div, rec) = setup();
    // Warm up allocator caches before measuring.
    for _ in 0..1000 {
        assert!(div.call(&mut store, 0).is_err());
    }
    let _ = rec.call(&mut store, ());
    let before = rss_bytes();
    for i in 0..100_000 {
        let err = div.call(&mut store, 0).unwrap_err();
        assert_eq!(
            err.downcast_ref::<Trap>(),
            Some(&Trap::IntegerDivisionByZero)
        );
        if i % 10_000 == 0 {
            assert_eq!(div.call(&mut store, 2).unwrap(), 5);
        }
    }
    let after_traps = rss_bytes();
    for _ in 0..1000 {
        let err = rec.call(&mut store, ()).unwrap_err();
        assert_eq!(err.downcast_ref::<Trap>(), Some(&Trap::StackOverflow));
    }
    let after_exhaustion = rss_bytes();
    println!(
        "rss: before {} KiB, after 100000 traps {} KiB, after 1000 exhaustions {} KiB",
        before / 1024,
        after_traps / 1024,
        after_exhaustion / 1024
    );
    // Flat means: no per-trap leak. 100,000 leaked backtraces of even a few
    // dozen bytes would add megabytes.
    assert!(after_traps < before + 2 * 1024 * 1024, "traps grew rss");
    assert!(
        after_exhaustion < before + 4 * 1024 * 1024,
        "exhaustions grew rss"
    );
}

/// Resident set size of this process, in bytes.
fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm is readable");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("statm has a resident field");
    pages * 4096
}
