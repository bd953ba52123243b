//! Host-to-wasm and wasm-to-host calls must not allocate: a counting global
//! allocator watches a warm loop of both kinds of call.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct CountingAllocator;

thread_local! {
    // Per thread, so that the test harness's own threads do not count.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    ALLOCATIONS.with(|c| c.set(c.get() + 1));
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn typed_calls_in_both_directions_do_not_allocate() {
    let engine = keel::Engine::default();
    let module = keel::Module::new(
        &engine,
        r#"(module
             (import "host" "inc" (func $inc (param i32) (result i32)))
             (func (export "identity") (param i32) (result i32) (local.get 0))
             (func (export "call_host") (param $n i32) (result i32)
               (local $acc i32)
               (loop $l
                 (local.set $acc (call $inc (local.get $acc)))
                 (br_if $l (i32.ne (local.get $acc) (local.get $n))))
               (local.get $acc)))"#,
    )
    .unwrap();
    let mut linker = keel::Linker::new(&engine);
    linker
        .func_wrap(
            "host",
            "inc",
            |mut caller: keel::Caller<'_, u64>, x: i32| {
                *caller.data_mut() += 1;
                x + 1
            },
        )
        .unwrap();
    let mut store = keel::Store::new(&engine, 0u64);
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let identity = instance
        .get_typed_func::<i32, i32>(&mut store, "identity")
        .unwrap();
    let call_host = instance
        .get_typed_func::<i32, i32>(&mut store, "call_host")
        .unwrap();
    // Warm up: first calls may set up per-thread state once.
    identity.call(&mut store, 1).unwrap();
    call_host.call(&mut store, 10).unwrap();

    let before = allocations();
    let mut sum = 0i64;
    for i in 0..10_000 {
        sum += i64::from(identity.call(&mut store, i).unwrap());
    }
    let result = call_host.call(&mut store, 100_000).unwrap();
    let allocated = allocations() - before;

    assert_eq!(sum, (0..10_000i64).sum::<i64>());
    assert_eq!(result, 100_000);
    assert_eq!(*store.data(), 100_010);
    assert_eq!(
        allocated, 0,
        "10,000 host-to-wasm and 100,000 wasm-to-host calls allocated"
    );
}
