//! `Store::limiter` decides every creation and growth of instances,
//! memories and tables, from wasm and from the host, and its errors reach
//! the caller.

use keel::*;

fn limited(limits: StoreLimits) -> (Engine, Store<StoreLimits>) {
    let engine = Engine::default();
    let mut store = Store::new(&engine, limits);
    store.limiter(|l| l);
    (engine, store)
}

fn message(err: Error) -> String {
    format!("{err:#}")
}

#[test]
fn instance_memory_and_table_counts_are_enforced() {
    let (engine, mut store) = limited(StoreLimitsBuilder::new().instances(2).build());
    let empty = Module::new(&engine, "(module)").unwrap();
    Instance::new(&mut store, &empty, &[]).unwrap();
    Instance::new(&mut store, &empty, &[]).unwrap();
    let err = Instance::new(&mut store, &empty, &[]).unwrap_err();
    assert!(message(err).contains("instance limit of 2"));

    let (engine, mut store) = limited(StoreLimitsBuilder::new().memories(1).tables(1).build());
    let both = Module::new(&engine, "(module (memory 1) (table 1 funcref))").unwrap();
    Instance::new(&mut store, &both, &[]).unwrap();
    let err = Instance::new(&mut store, &both, &[]).unwrap_err();
    assert!(message(err).contains("memory limit of 1"));
    let err = Memory::new(&mut store, MemoryType::new(1, None)).unwrap_err();
    assert!(message(err).contains("memory limit of 1"));
    let err = Table::new(
        &mut store,
        TableType::new(RefType::FUNCREF, 1, None),
        Ref::Func(None),
    )
    .unwrap_err();
    assert!(message(err).contains("table limit of 1"));
}

#[test]
fn initial_sizes_count_against_the_limits() {
    let (engine, mut store) = limited(
        StoreLimitsBuilder::new()
            .table_elements(100)
            .memory_size(1 << 16)
            .build(),
    );
    let big_table = Module::new(&engine, "(module (table 101 funcref))").unwrap();
    let err = Instance::new(&mut store, &big_table, &[]).unwrap_err();
    assert!(message(err).contains("table minimum size of 101"));
    let big_memory = Module::new(&engine, "(module (memory 2))").unwrap();
    let err = Instance::new(&mut store, &big_memory, &[]).unwrap_err();
    assert!(message(err).contains("memory minimum size of 2 pages"));
    // From the host too.
    assert!(Memory::new(&mut store, MemoryType::new(2, None)).is_err());
    assert!(
        Table::new(
            &mut store,
            TableType::new(RefType::FUNCREF, 101, None),
            Ref::Func(None)
        )
        .is_err()
    );
    Memory::new(&mut store, MemoryType::new(1, None)).unwrap();
    Table::new(
        &mut store,
        TableType::new(RefType::FUNCREF, 100, None),
        Ref::Func(None),
    )
    .unwrap();
}

/// A limiter that fails (rather than refuses) past a size.
struct Failing;

impl ResourceLimiter for Failing {
    fn memory_growing(&mut self, _: usize, desired: usize, _: Option<usize>) -> Result<bool> {
        if desired > 2 << 16 {
            anyhow::bail!("the tenant's memory budget is spent");
        }
        Ok(true)
    }
    fn table_growing(&mut self, _: usize, desired: usize, _: Option<usize>) -> Result<bool> {
        if desired > 10 {
            anyhow::bail!("the tenant's table budget is spent");
        }
        Ok(true)
    }
}

#[test]
fn a_failing_limiter_traps_the_guest_with_its_error() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, Failing);
    store.limiter(|l| l);
    let module = Module::new(
        &engine,
        r#"(module (memory (export "m") 1) (table 1 funcref)
             (func (export "grow_memory") (param i32) (result i32) (memory.grow (local.get 0)))
             (func (export "grow_table") (param i32) (result i32)
               (table.grow (ref.null func) (local.get 0))))"#,
    )
    .unwrap();
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let grow = instance
        .get_typed_func::<i32, i32>(&mut store, "grow_memory")
        .unwrap();
    assert_eq!(grow.call(&mut store, 1).unwrap(), 1);
    let err = grow.call(&mut store, 1).unwrap_err();
    assert!(message(err).contains("memory budget is spent"));
    let grow = instance
        .get_typed_func::<i32, i32>(&mut store, "grow_table")
        .unwrap();
    let err = grow.call(&mut store, 20).unwrap_err();
    assert!(message(err).contains("table budget is spent"));
    // The host's grow sees the same error.
    let memory = instance.get_memory(&mut store, "m").unwrap();
    let err = memory.grow(&mut store, 5).unwrap_err();
    assert!(message(err).contains("memory budget is spent"));
}
