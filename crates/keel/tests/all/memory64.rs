//! 64-bit memories and tables through the embedding API: off by default,
//! growth past 4 GiB where the reservation allows it and the store's
//! limiter agrees, and host-created 64-bit memories and tables.

use keel::*;

const GIB: u64 = 1 << 30;
const PAGE: u64 = 65536;

fn memory64_engine(reservation: u64) -> Engine {
    let mut config = Config::new();
    config.wasm_memory64(true).memory_reservation(reservation);
    Engine::new(&config).unwrap()
}

const GROWER: &str = r#"
    (module
      (memory (export "m") i64 1)
      (func (export "grow") (param i64) (result i64) (memory.grow (local.get 0)))
      (func (export "store") (param i64 i64) (i64.store (local.get 0) (local.get 1)))
      (func (export "load") (param i64) (result i64) (i64.load (local.get 0))))
"#;

#[test]
fn memory64_is_off_by_default_with_a_clear_error() {
    let err = Module::new(&Engine::default(), GROWER).unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("memory64"), "{message}");
}

#[test]
fn a_64_bit_memory_grows_past_4_gib_within_its_reservation() {
    let engine = memory64_engine(8 * GIB);
    let module = Module::new(&engine, GROWER).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let grow = instance
        .get_typed_func::<i64, i64>(&mut store, "grow")
        .unwrap();
    let store_fn = instance
        .get_typed_func::<(i64, i64), ()>(&mut store, "store")
        .unwrap();
    let load = instance
        .get_typed_func::<i64, i64>(&mut store, "load")
        .unwrap();
    // To 4 GiB and one page: the last page lies past 2^32.
    let pages = (4 * GIB / PAGE) as i64;
    assert_eq!(grow.call(&mut store, pages).unwrap(), 1);
    let far = (4 * GIB + 8) as i64;
    store_fn.call(&mut store, (far, 0x1234_5678_9abc)).unwrap();
    assert_eq!(load.call(&mut store, far).unwrap(), 0x1234_5678_9abc);
    // Not aliased onto the low addresses (a truncated index would be 8).
    assert_eq!(load.call(&mut store, 8).unwrap(), 0);
    let memory = instance.get_memory(&mut store, "m").unwrap();
    assert_eq!(memory.size(&store), pages as u64 + 1);
    assert!(memory.ty(&store).is_64());
    let mut bytes = [0u8; 8];
    memory.read(&store, far as usize, &mut bytes).unwrap();
    assert_eq!(u64::from_le_bytes(bytes), 0x1234_5678_9abc);
    // Past the end of the memory, and past the reservation.
    let end = (4 * GIB + PAGE) as i64;
    let trap = load.call(&mut store, end - 4).unwrap_err();
    assert_eq!(
        trap.downcast_ref::<Trap>(),
        Some(&Trap::MemoryOutOfBounds),
        "{trap:#}"
    );
    let pages_left = ((8 * GIB - 4 * GIB - PAGE) / PAGE) as i64;
    assert_eq!(grow.call(&mut store, pages_left + 1).unwrap(), -1);
    assert_eq!(grow.call(&mut store, pages_left).unwrap(), pages + 1);
}

#[test]
fn the_store_limiter_bounds_a_64_bit_memory() {
    let engine = memory64_engine(8 * GIB);
    let module = Module::new(&engine, GROWER).unwrap();
    let limits = StoreLimitsBuilder::new()
        .memory_size((4 * GIB) as usize)
        .build();
    let mut store = Store::new(&engine, limits);
    store.limiter(|limits| limits);
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let grow = instance
        .get_typed_func::<i64, i64>(&mut store, "grow")
        .unwrap();
    let pages = (4 * GIB / PAGE) as i64;
    assert_eq!(grow.call(&mut store, pages).unwrap(), -1);
    assert_eq!(grow.call(&mut store, pages - 1).unwrap(), 1);
}

#[test]
fn host_memories_and_tables_can_be_64_bit() {
    let engine = memory64_engine(4 * GIB);
    let mut store = Store::new(&engine, ());
    let memory = Memory::new(&mut store, MemoryType::new64(2, Some(1 << 40))).unwrap();
    let ty = memory.ty(&store);
    assert!(ty.is_64());
    assert_eq!((ty.minimum(), ty.maximum()), (2, Some(1 << 40)));
    let table = Table::new(
        &mut store,
        TableType::new64(RefType::FUNCREF, 3, Some(1 << 40)),
        Ref::Func(None),
    )
    .unwrap();
    let ty = table.ty(&store);
    assert!(ty.is_64());
    assert_eq!((ty.minimum(), ty.maximum()), (3, Some(1 << 40)));

    let module = Module::new(
        &engine,
        r#"(module
             (import "host" "m" (memory i64 1))
             (import "host" "t" (table i64 1 funcref))
             (func (export "size") (result i64) (i64.add (memory.size) (table.size))))"#,
    )
    .unwrap();
    let imports = [memory.into(), table.into()];
    let instance = Instance::new(&mut store, &module, &imports).unwrap();
    let size = instance
        .get_typed_func::<(), i64>(&mut store, "size")
        .unwrap();
    assert_eq!(size.call(&mut store, ()).unwrap(), 5);

    // A 32-bit memory does not satisfy a 64-bit import, nor the reverse.
    let narrow = Memory::new(&mut store, MemoryType::new(1, None)).unwrap();
    let err = Instance::new(&mut store, &module, &[narrow.into(), table.into()]).unwrap_err();
    assert!(
        format!("{err:#}").contains("incompatible import type"),
        "{err:#}"
    );
}
