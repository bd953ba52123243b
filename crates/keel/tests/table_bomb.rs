//! A tiny module that declares huge tables must cost nothing until its
//! elements are touched: 100 tables of 10 million elements instantiate in
//! milliseconds and a few MB, whatever the element type, with or without
//! element segments, from a module or from the host.

use keel::*;
use std::time::{Duration, Instant};

/// This process's resident memory, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}

fn bomb(elem_type: &str, with_segment: bool) -> String {
    let mut wat = String::from("(module\n");
    for i in 0..100 {
        wat.push_str(&format!("  (table $t{i} 10000000 {elem_type})\n"));
    }
    if with_segment {
        wat.push_str("  (func $f)\n  (elem (table $t7) (i32.const 5) func $f)\n");
    }
    wat.push(')');
    wat
}

/// Instantiates `wat` and returns how long it took and how much resident
/// memory it added (KiB), the instance still alive.
fn measure(engine: &Engine, wat: &str) -> (Duration, u64) {
    let module = Module::new(engine, wat).unwrap();
    let mut store = Store::new(engine, ());
    let before = rss_kib();
    let start = Instant::now();
    let _instance = Instance::new(&mut store, &module, &[]).unwrap();
    let took = start.elapsed();
    let grew = rss_kib().saturating_sub(before);
    (took, grew)
}

#[test]
fn huge_tables_cost_nothing_until_touched() {
    let engine = Engine::default();
    for (ty, segment) in [("funcref", false), ("funcref", true), ("externref", false)] {
        let (took, grew) = measure(&engine, &bomb(ty, segment));
        println!("{ty} segment={segment}: {took:?}, +{grew} KiB");
        assert!(took < Duration::from_millis(50), "{ty} {segment}: {took:?}");
        assert!(grew < 10 * 1024, "{ty} {segment}: +{grew} KiB");
    }
}

#[test]
fn a_huge_host_table_costs_nothing_until_touched() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let before = rss_kib();
    let start = Instant::now();
    let mut tables = Vec::new();
    for _ in 0..100 {
        let ty = TableType::new(RefType::FUNCREF, 10_000_000, None);
        tables.push(Table::new(&mut store, ty, Ref::Func(None)).unwrap());
    }
    let took = start.elapsed();
    let grew = rss_kib().saturating_sub(before);
    println!("host tables: {took:?}, +{grew} KiB");
    assert!(took < Duration::from_millis(50), "{took:?}");
    assert!(grew < 10 * 1024, "+{grew} KiB");
    // Touching an element still works, and reads null.
    assert!(tables[3].get(&mut store, 9_999_999).unwrap().is_null());
}
