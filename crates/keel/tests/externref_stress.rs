//! Ten million externrefs created by a host function and dropped by wasm,
//! in one process: resident memory must stay flat. A test binary of its
//! own, so that resident memory measures only this test.

use keel::*;

fn rss_kib() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm is readable");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("statm has a resident field");
    pages * 4
}

#[test]
fn ten_million_create_drop_cycles_keep_memory_flat() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
            (import "host" "make" (func $make (param i32) (result externref)))
            (func (export "churn") (param $n i32) (result i32)
              (local $nulls i32)
              (loop $l
                (local.set $nulls (i32.add (local.get $nulls) (ref.is_null (call $make (local.get $n)))))
                (local.set $n (i32.sub (local.get $n) (i32.const 1)))
                (br_if $l (local.get $n)))
              (local.get $nulls)))"#,
    )
    .unwrap();
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap(
            "host",
            "make",
            |mut caller: Caller<'_, ()>, n: i32| -> Result<Option<ExternRef>> {
                // A payload big enough that leaking would show: 64 bytes each.
                Ok(Some(ExternRef::new(&mut caller, [n as u64; 8])?))
            },
        )
        .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let churn = instance
        .get_typed_func::<i32, i32>(&mut store, "churn")
        .unwrap();

    let total: u64 = 10_000_000;
    let batch: i32 = 1_000_000;
    // Warm up, so that the allocator and the set reach their steady size.
    assert_eq!(churn.call(&mut store, batch).unwrap(), 0);
    let before = rss_kib();
    let mut samples = Vec::new();
    for _ in 1..(total / batch as u64) {
        assert_eq!(churn.call(&mut store, batch).unwrap(), 0);
        samples.push(rss_kib());
    }
    let after = rss_kib();
    println!(
        "externref churn: {total} create/drop cycles; rss before {before} KiB, after {after} KiB, \
         max {} KiB; {} externrefs alive at the end",
        samples.iter().max().unwrap(),
        store.gc()
    );
    // A leak of 10 million 64-byte values would be over 600 MiB.
    assert!(
        after < before + 8 * 1024,
        "resident memory grew from {before} KiB to {after} KiB"
    );
}
