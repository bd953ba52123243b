//! 64-bit memories and tables, and memories of one-byte pages, through the
//! embedding API: off by default, growth past 4 GiB where the reservation
//! allows it and the store's limiter agrees, host-created memories and
//! tables of each kind, `MemoryTypeBuilder`'s checks.

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

#[test]
fn memory_type_builder_refuses_what_is_not_valid() {
    let built = |f: &dyn Fn(&mut MemoryTypeBuilder)| {
        let mut builder = MemoryType::builder();
        f(&mut builder);
        builder.build().map_err(|e| e.to_string())
    };
    let bytes = built(&|b| {
        b.page_size_log2(0).min(5).max(Some(1 << 32));
    })
    .unwrap();
    assert_eq!((bytes.page_size(), bytes.minimum()), (1, 5));
    assert!(!bytes.is_64());
    let err = built(&|b| {
        b.page_size_log2(12);
    });
    assert!(err.unwrap_err().contains("page size"));
    let err = built(&|b| {
        b.page_size_log2(0).max(Some((1 << 32) + 1));
    });
    assert!(err.unwrap_err().contains("32-bit"));
    let err = built(&|b| {
        b.min(3).max(Some(2));
    });
    assert!(err.unwrap_err().contains("above the maximum"));
    let err = built(&|b| {
        b.shared(true);
    });
    assert!(err.unwrap_err().contains("shared"));
    let wide = built(&|b| {
        b.memory64(true).page_size_log2(0).max(Some(u64::MAX));
    });
    assert!(wide.unwrap().is_64());
}

#[test]
fn a_memory_of_one_byte_pages_is_sized_to_the_byte() {
    let mut config = Config::new();
    config.wasm_custom_page_sizes(true);
    let engine = Engine::new(&config).unwrap();
    let mut store = Store::new(&engine, ());
    let ty = MemoryType::builder()
        .page_size_log2(0)
        .min(5)
        .build()
        .unwrap();
    let memory = Memory::new(&mut store, ty).unwrap();
    assert_eq!(memory.data_size(&store), 5);
    assert!(memory.write(&mut store, 4, &[7]).is_ok());
    assert!(memory.write(&mut store, 5, &[7]).is_err());
    assert_eq!(memory.grow(&mut store, 3).unwrap(), 5);
    assert_eq!((memory.size(&store), memory.data_size(&store)), (8, 8));
    assert_eq!(memory.data(&store)[4..], [7, 0, 0, 0]);
    assert_eq!(memory.ty(&store).page_size(), 1);

    let module = Module::new(
        &engine,
        r#"(module (import "host" "m" (memory 1 (pagesize 1)))
             (func (export "load") (param i32) (result i32) (i32.load8_u (local.get 0))))"#,
    )
    .unwrap();
    let instance = Instance::new(&mut store, &module, &[memory.into()]).unwrap();
    let load = instance
        .get_typed_func::<i32, i32>(&mut store, "load")
        .unwrap();
    assert_eq!(load.call(&mut store, 4).unwrap(), 7);
    let trap = load.call(&mut store, 8).unwrap_err();
    assert_eq!(trap.downcast_ref::<Trap>(), Some(&Trap::MemoryOutOfBounds));
    // A memory of 64 KiB pages does not satisfy an import of one-byte pages.
    let pages = Memory::new(&mut store, MemoryType::new(1, None)).unwrap();
    let err = Instance::new(&mut store, &module, &[pages.into()]).unwrap_err();
    assert!(
        format!("{err:#}").contains("incompatible import type"),
        "{err:#}"
    );
}
