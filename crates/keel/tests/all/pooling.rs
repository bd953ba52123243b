//! The pooling allocator, copy-on-write memory images and `InstancePre`.

use keel::{
    Config, Engine, InstanceAllocationStrategy, Linker, Module, PoolingAllocationConfig, Store,
};

/// A pool with exactly one slot of each kind, so the next instance always
/// reuses the previous one's slots.
fn one_slot_engine() -> Engine {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_core_instances(1)
        .total_memories(1)
        .total_tables(1)
        .table_elements(64)
        .max_memory_size(4 << 20);
    let mut config = Config::new();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config).unwrap()
}

/// Engines whose next instance reuses the previous one's memory: a
/// one-slot pool, and on-demand allocation, which keeps released memory
/// reservations for the next memory (`vm/spare_memories.rs`).
fn reusing_engines() -> [Engine; 2] {
    [one_slot_engine(), Engine::default()]
}

/// A tenant that, when asked, writes a secret everywhere it can: its data
/// page, the rest of its memory, memory it grows, a global, table slots
/// and table growth.
const TENANT: &str = r#"(module
  (memory (export "mem") 2 4)
  (global $g (export "g") (mut i64) (i64.const 7))
  (table $t (export "t") 4 64 funcref)
  (func $one (result i32) i32.const 1)
  (func $two (result i32) i32.const 2)
  (func $secret_fn (result i32) i32.const 0x5ec)
  (elem (i32.const 0) $one $two)
  (elem declare func $secret_fn)
  (data (i32.const 100) "initial data")
  (data (i32.const 70000) "second page")
  (func (export "call") (param i32) (result i32)
    (call_indirect (result i32) (local.get 0)))
  (func (export "write_secret")
    (local $i i32)
    ;; Every 4 KiB of both pages, and the data itself.
    (loop $fill
      (i64.store (local.get $i) (i64.const 0x5ec5ec5ec5ec5ec))
      (local.set $i (i32.add (local.get $i) (i32.const 4096)))
      (br_if $fill (i32.lt_u (local.get $i) (i32.const 131072))))
    (i64.store (i32.const 100) (i64.const 0x5ec5ec5ec5ec5ec))
    (i64.store (i32.const 70000) (i64.const 0x5ec5ec5ec5ec5ec))
    ;; Grown memory.
    (drop (memory.grow (i32.const 2)))
    (i64.store (i32.const 200000) (i64.const 0x5ec5ec5ec5ec5ec))
    (global.set $g (i64.const 0x5ec))
    (table.set $t (i32.const 0) (ref.func $secret_fn))
    (table.set $t (i32.const 3) (ref.func $secret_fn))
    (drop (table.grow $t (ref.func $secret_fn) (i32.const 10))))
)"#;

/// Checks that an instance of `TENANT` sees exactly the module's initial
/// state.
fn assert_initial_state(engine: &Engine, module: &Module) {
    let mut store = Store::new(engine, ());
    let instance = Linker::new(engine).instantiate(&mut store, module).unwrap();
    let mem = instance.get_memory(&mut store, "mem").unwrap();
    assert_eq!(mem.size(&store), 2, "memory size is the module's minimum");
    let data = mem.data(&store);
    let mut expected = vec![0u8; 2 * 65536];
    expected[100..112].copy_from_slice(b"initial data");
    expected[70000..70011].copy_from_slice(b"second page");
    assert!(data == &expected[..], "memory holds only the data segments");
    let g = instance.get_global(&mut store, "g").unwrap();
    assert_eq!(g.get(&mut store).i64(), Some(7));
    let t = instance.get_table(&mut store, "t").unwrap();
    assert_eq!(t.size(&store), 4);
    let call = instance
        .get_typed_func::<i32, i32>(&mut store, "call")
        .unwrap();
    assert_eq!(call.call(&mut store, 0).unwrap(), 1);
    assert_eq!(call.call(&mut store, 1).unwrap(), 2);
    for null_slot in [2, 3] {
        let err = call.call(&mut store, null_slot).unwrap_err();
        let trap = err.downcast_ref::<keel::Trap>().unwrap();
        assert_eq!(*trap, keel::Trap::IndirectCallToNull);
    }
    // Memory grown by the last tenant is not accessible.
    assert!(mem.read(&store, 200000, &mut [0u8; 8]).is_err());
}

/// Instantiates `TENANT` and has it write its secret everywhere; returns
/// its store (dropping it releases the slots) and its memory.
fn tenant_wrote_secret(engine: &Engine, module: &Module) -> (Store<()>, keel::Memory) {
    let mut store = Store::new(engine, ());
    let instance = Linker::new(engine).instantiate(&mut store, module).unwrap();
    let write = instance
        .get_typed_func::<(), ()>(&mut store, "write_secret")
        .unwrap();
    write.call(&mut store, ()).unwrap();
    let mem = instance.get_memory(&mut store, "mem").unwrap();
    (store, mem)
}

#[test]
fn a_reused_slot_shows_only_the_modules_initial_state() {
    for engine in reusing_engines() {
        let module = Module::new(&engine, TENANT).unwrap();
        for round in 0..3 {
            assert_initial_state(&engine, &module);
            let (store, mem) = tenant_wrote_secret(&engine, &module);
            assert_eq!(mem.size(&store), 4, "round {round}: the tenant grew");
            // Dropping the store returns the slots.
        }
        assert_initial_state(&engine, &module);
    }
}

/// A slot goes back to the pool without a reset only if no guest code of
/// its store ever ran and the host never wrote it: each way the host can
/// write a memory or a table without running wasm still gets the slot
/// reset.
#[test]
fn a_slot_the_host_wrote_is_reset_though_no_guest_code_ran() {
    type HostWrite = fn(&mut Store<()>, &keel::Instance);
    let writes: [(&str, HostWrite); 7] = [
        ("Memory::write", |store, instance| {
            let mem = instance.get_memory(&mut *store, "mem").unwrap();
            mem.write(&mut *store, 100, b"secret").unwrap();
        }),
        ("Memory::data_mut", |store, instance| {
            let mem = instance.get_memory(&mut *store, "mem").unwrap();
            mem.data_mut(&mut *store)[70000] = 0x5e;
        }),
        ("Memory::data_ptr", |store, instance| {
            let mem = instance.get_memory(&mut *store, "mem").unwrap();
            let ptr = mem.data_ptr(&*store);
            // SAFETY: byte 5000 is inside the memory's two pages, and
            // nothing else accesses it meanwhile.
            unsafe { *ptr.add(5000) = 0x5e };
        }),
        ("Memory::grow, then data_mut", |store, instance| {
            let mem = instance.get_memory(&mut *store, "mem").unwrap();
            mem.grow(&mut *store, 2).unwrap();
            mem.data_mut(&mut *store)[200000] = 0x5e;
        }),
        ("Table::set", |store, instance| {
            let t = instance.get_table(&mut *store, "t").unwrap();
            let two = t.get(&mut *store, 1).unwrap();
            t.set(&mut *store, 0, two).unwrap();
        }),
        ("Table::grow", |store, instance| {
            let t = instance.get_table(&mut *store, "t").unwrap();
            let one = t.get(&mut *store, 0).unwrap();
            t.grow(&mut *store, 4, one).unwrap();
        }),
        ("Table::get (initializes an element)", |store, instance| {
            let t = instance.get_table(&mut *store, "t").unwrap();
            assert!(t.get(&mut *store, 0).unwrap().as_func().unwrap().is_some());
        }),
    ];
    for engine in reusing_engines() {
        let tenant = Module::new(&engine, TENANT).unwrap();
        let other = Module::new(
            &engine,
            r#"(module (memory (export "mem") 1) (table (export "t") 8 funcref))"#,
        )
        .unwrap();
        let tenant_writes = |write: HostWrite| {
            let mut store = Store::new(&engine, ());
            let instance = Linker::new(&engine)
                .instantiate(&mut store, &tenant)
                .unwrap();
            write(&mut store, &instance);
        };
        for (what, write) in writes {
            // The next instance of the same module sees its initial state.
            tenant_writes(write);
            assert_initial_state(&engine, &tenant);
            // And one of another module sees nothing of it (a table element
            // left behind would read as a function here).
            tenant_writes(write);
            assert_blank(&engine, &other, what);
        }
    }
}

/// Checks that an instance of `module` (which exports a memory `mem` and a
/// table `t`) sees a zeroed memory and a table of nulls.
fn assert_blank(engine: &Engine, module: &Module, what: &str) {
    let mut store = Store::new(engine, ());
    let instance = Linker::new(engine).instantiate(&mut store, module).unwrap();
    let mem = instance.get_memory(&mut store, "mem").unwrap();
    assert!(mem.data(&store).iter().all(|b| *b == 0), "{what}");
    let t = instance.get_table(&mut store, "t").unwrap();
    for i in 0..t.size(&store) {
        let element = t.get(&mut store, i).unwrap();
        assert_eq!(element.as_func(), Some(None), "{what}: element {i}");
    }
}

/// Guest code that ran only in a start function, or that trapped, counts
/// as having run: the slot is reset.
#[test]
fn a_slot_written_by_a_start_function_is_reset() {
    for engine in reusing_engines() {
        let start_function = |end: &str| {
            let wat = format!(
                r#"(module (memory 1) (table 4 funcref) (func $f) (elem declare func $f)
                     (func $s (i32.store (i32.const 8) (i32.const 42))
                              (table.set (i32.const 2) (ref.func $f))
                              {end})
                     (start $s))"#
            );
            Module::new(&engine, &wat).unwrap()
        };
        let other = Module::new(
            &engine,
            r#"(module (memory (export "mem") 1) (table (export "t") 4 funcref))"#,
        )
        .unwrap();
        for (end, traps) in [("", false), ("unreachable", true)] {
            let mut store = Store::new(&engine, ());
            let result = Linker::new(&engine).instantiate(&mut store, &start_function(end));
            assert_eq!(result.is_err(), traps);
            drop(store);
            assert_blank(&engine, &other, &format!("traps: {traps}"));
        }
    }
}

#[test]
fn a_slot_reused_by_another_module_shows_none_of_the_first() {
    for engine in reusing_engines() {
        let tenant = Module::new(&engine, TENANT).unwrap();
        let other = Module::new(
            &engine,
            r#"(module (memory (export "mem") 1) (table (export "t") 8 funcref)
                       (global (export "g") (mut i64) (i64.const 0)))"#,
        )
        .unwrap();
        drop(tenant_wrote_secret(&engine, &tenant));
        {
            let mut store = Store::new(&engine, ());
            let instance = Linker::new(&engine)
                .instantiate(&mut store, &other)
                .unwrap();
            let mem = instance.get_memory(&mut store, "mem").unwrap();
            assert_eq!(mem.size(&store), 1);
            assert!(mem.data(&store).iter().all(|b| *b == 0), "no data leaks");
            let t = instance.get_table(&mut store, "t").unwrap();
            for i in 0..8 {
                assert_eq!(t.get(&mut store, i).unwrap().as_func(), Some(None));
            }
            let g = instance.get_global(&mut store, "g").unwrap();
            assert_eq!(g.get(&mut store).i64(), Some(0));
        }
        // And back: the tenant's image is mapped again.
        assert_initial_state(&engine, &tenant);
    }
}

#[test]
fn an_exhausted_pool_is_a_clear_error_and_recovers() {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_core_instances(2)
        .total_memories(2)
        .total_tables(2);
    let mut config = Config::new();
    config.allocation_strategy(pool);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(&engine, "(module (memory 1))").unwrap();
    let linker = Linker::new(&engine);
    let mut stores: Vec<Store<()>> = (0..2).map(|_| Store::new(&engine, ())).collect();
    for store in &mut stores {
        linker.instantiate(store, &module).unwrap();
    }
    let mut third = Store::new(&engine, ());
    let err = linker.instantiate(&mut third, &module).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("all 2 instance slots are in use") && msg.contains("total_core_instances"),
        "{msg}"
    );
    stores.pop();
    linker.instantiate(&mut third, &module).unwrap();
}

#[test]
fn modules_larger_than_a_slot_are_refused_by_name() {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_core_instances(4)
        .total_memories(4)
        .total_tables(4)
        .max_memory_size(1 << 20)
        .table_elements(100);
    let mut config = Config::new();
    config.allocation_strategy(pool);
    let engine = Engine::new(&config).unwrap();
    let linker = Linker::new(&engine);
    let cases = [
        ("(module (memory 17))", "17 pages"),
        ("(module (table 101 funcref))", "table_elements"),
        ("(module (memory 1) (memory 1))", "max_memories_per_module"),
    ];
    for (wat, expected) in cases {
        let module = Module::new(&engine, wat).unwrap();
        let mut store = Store::new(&engine, ());
        let err = linker.instantiate(&mut store, &module).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains(expected), "{wat}: {msg}");
    }
    // A pooled memory cannot grow past `max_memory_size` either.
    let module = Module::new(
        &engine,
        r#"(module (memory 15)
             (func (export "grow") (param i32) (result i32)
               (memory.grow (local.get 0))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let grow = instance
        .get_typed_func::<i32, i32>(&mut store, "grow")
        .unwrap();
    assert_eq!(grow.call(&mut store, 2).unwrap(), -1);
    assert_eq!(grow.call(&mut store, 1).unwrap(), 15);
}

/// Copy-on-write images: every instance starts from the data, and writes
/// stay private to the instance that made them.
#[test]
fn memory_images_are_private_to_each_instance() {
    for cow in [true, false] {
        for pooling in [false, true] {
            let mut config = Config::new();
            config.memory_init_cow(cow);
            if pooling {
                config.allocation_strategy(InstanceAllocationStrategy::pooling());
            }
            let engine = Engine::new(&config).unwrap();
            let module = Module::new(&engine, TENANT).unwrap();
            let linker = Linker::new(&engine);
            let mut store = Store::new(&engine, ());
            let a = linker.instantiate(&mut store, &module).unwrap();
            let b = linker.instantiate(&mut store, &module).unwrap();
            let mem_a = a.get_memory(&mut store, "mem").unwrap();
            let mem_b = b.get_memory(&mut store, "mem").unwrap();
            mem_a.write(&mut store, 100, b"written by a").unwrap();
            let mut buf = [0u8; 12];
            mem_b.read(&store, 100, &mut buf).unwrap();
            assert_eq!(&buf, b"initial data", "cow={cow} pooling={pooling}");
            mem_a.read(&store, 100, &mut buf).unwrap();
            assert_eq!(&buf, b"written by a");
            // A third instance still starts from the image.
            let c = linker.instantiate(&mut store, &module).unwrap();
            let mem_c = c.get_memory(&mut store, "mem").unwrap();
            mem_c.read(&store, 100, &mut buf).unwrap();
            assert_eq!(&buf, b"initial data");
        }
    }
}

#[test]
fn instance_pre_instantiates_in_many_stores() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
             (import "host" "add" (func $add (param i32 i32) (result i32)))
             (memory (export "mem") 1)
             (data (i32.const 0) "pre")
             (func (export "run") (param i32) (result i32)
               (call $add (local.get 0) (i32.load8_u (i32.const 0)))))"#,
    )
    .unwrap();
    let mut linker = Linker::<u32>::new(&engine);
    linker
        .func_wrap(
            "host",
            "add",
            |mut caller: keel::Caller<'_, u32>, a: i32, b: i32| {
                *caller.data_mut() += 1;
                a + b
            },
        )
        .unwrap();
    let pre = linker.instantiate_pre(&module).unwrap();
    assert!(Module::same(pre.module(), &module));
    for i in 0..10 {
        let mut store = Store::new(&engine, 0u32);
        let instance = pre.instantiate(&mut store).unwrap();
        let run = instance
            .get_typed_func::<i32, i32>(&mut store, "run")
            .unwrap();
        assert_eq!(run.call(&mut store, i).unwrap(), i + i32::from(b'p'));
        assert_eq!(*store.data(), 1);
        // Twice in one store works too.
        pre.clone().instantiate(&mut store).unwrap();
    }

    // Resolution errors come from `instantiate_pre`, once.
    let empty = Linker::<u32>::new(&engine);
    let err = empty.instantiate_pre(&module).err().unwrap();
    assert!(
        err.to_string().contains("unknown import: `host::add`"),
        "{err}"
    );
    let mut wrong = Linker::<u32>::new(&engine);
    wrong.func_wrap("host", "add", |a: i32| a).unwrap();
    let err = wrong.instantiate_pre(&module).err().unwrap();
    assert!(
        err.to_string().contains("incompatible import type"),
        "{err}"
    );
}

#[test]
fn instance_pre_with_store_bound_imports() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module (import "env" "g" (global i32))
                   (func (export "get") (result i32) (global.get 0)))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let g = keel::Global::new(
        &mut store,
        keel::GlobalType::new(keel::ValType::I32, keel::Mutability::Const),
        keel::Val::I32(41),
    )
    .unwrap();
    let mut linker = Linker::new(&engine);
    linker.define(&store, "env", "g", g).unwrap();
    let pre = linker.instantiate_pre(&module).unwrap();
    let instance = pre.instantiate(&mut store).unwrap();
    let get = instance
        .get_typed_func::<(), i32>(&mut store, "get")
        .unwrap();
    assert_eq!(get.call(&mut store, ()).unwrap(), 41);
}

#[test]
fn a_failed_instantiation_gives_its_slots_back() {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_core_instances(1)
        .total_memories(1)
        .total_tables(1)
        .max_memories_per_module(2);
    let mut config = Config::new();
    config.allocation_strategy(pool);
    let engine = Engine::new(&config).unwrap();
    let linker = Linker::new(&engine);
    // Takes the context slot and the only memory slot, then fails.
    let two_memories = Module::new(&engine, "(module (memory 1) (memory 1))").unwrap();
    // Takes every slot, then traps in its start function.
    let trapping_start = Module::new(
        &engine,
        "(module (memory 1) (table 1 funcref) (func $s unreachable) (start $s))",
    )
    .unwrap();
    let fine = Module::new(&engine, "(module (memory 1) (table 1 funcref))").unwrap();
    for _ in 0..3 {
        let mut store = Store::new(&engine, ());
        let err = linker.instantiate(&mut store, &two_memories).unwrap_err();
        assert!(format!("{err:#}").contains("all 1 memory slots"), "{err:#}");
        let err = linker.instantiate(&mut store, &trapping_start).unwrap_err();
        assert!(err.downcast_ref::<keel::Trap>().is_some(), "{err:#}");
    }
    let mut store = Store::new(&engine, ());
    linker.instantiate(&mut store, &fine).unwrap();
}

#[test]
fn a_refused_reservation_names_its_cause_once() {
    // One memory slot of 256 TiB is more address space than a 47-bit user
    // space has: the kernel refuses its reservation at once. (Asking for
    // many ordinary slots instead would fill the address space slot by slot
    // until one failed, and starve the other tests of this process.)
    let mut pool = PoolingAllocationConfig::new();
    pool.total_memories(1);
    let mut config = Config::new();
    config.memory_reservation(1 << 48);
    config.allocation_strategy(pool);
    let err = Engine::new(&config).unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("cannot reserve slots"), "{text}");
    let cause = "os error";
    assert_eq!(text.matches(cause).count(), 1, "{text}");
}

/// Funcrefs are written only when first needed and a context slot is not
/// cleared past them: two modules whose funcrefs overlap in the one slot
/// take turns, and every way to reach a function (a table element filled
/// by a segment, `ref.func` stored and called, an export) reaches the
/// instance's own function, never a funcref the other left behind.
#[test]
fn funcrefs_written_on_demand_never_show_a_previous_instance() {
    let engine = one_slot_engine();
    let module = |base: i32, padding: usize| {
        let mut wat = String::from("(module (type $t (func (result i32)))\n");
        // Functions that shift the others' funcrefs around in the context.
        for i in 0..padding {
            wat.push_str(&format!("(func $pad{i} (result i32) i32.const -1)\n"));
        }
        wat.push_str(&format!(
            r#"(func $a (export "a") (result i32) i32.const {a})
               (func $b (result i32) i32.const {b})
               (func $c (result i32) i32.const {c})
               (table 4 funcref) (elem (i32.const 0) $a $b)
               (elem declare func $c)
               (func (export "via_table") (param i32) (result i32)
                 (call_indirect (type $t) (local.get 0)))
               (func (export "via_ref_func") (result i32)
                 (table.set (i32.const 3) (ref.func $c))
                 (call_indirect (type $t) (i32.const 3))))"#,
            a = base,
            b = base + 1,
            c = base + 2,
        ));
        Module::new(&engine, &wat).unwrap()
    };
    let modules = [module(100, 0), module(200, 3), module(300, 7)];
    for round in 0..3 {
        for (m, base) in modules.iter().zip([100, 200, 300]) {
            let mut store = Store::new(&engine, ());
            let instance = Linker::new(&engine).instantiate(&mut store, m).unwrap();
            let via_table = instance
                .get_typed_func::<i32, i32>(&mut store, "via_table")
                .unwrap();
            assert_eq!(via_table.call(&mut store, 1).unwrap(), base + 1, "{round}");
            assert_eq!(via_table.call(&mut store, 0).unwrap(), base, "{round}");
            let via_ref_func = instance
                .get_typed_func::<(), i32>(&mut store, "via_ref_func")
                .unwrap();
            assert_eq!(via_ref_func.call(&mut store, ()).unwrap(), base + 2);
            let a = instance.get_typed_func::<(), i32>(&mut store, "a").unwrap();
            assert_eq!(a.call(&mut store, ()).unwrap(), base);
            // An element never filled is null.
            let err = via_table.call(&mut store, 2).unwrap_err();
            assert!(
                format!("{err:?}").contains("uninitialized element"),
                "{err:?}"
            );
        }
    }
}

/// Without a pool, a released memory reservation is reset and kept, and
/// the next memory takes it rather than mapping one: the tests above that
/// run on `reusing_engines` then check what it shows. A host-created
/// memory may take it too.
#[test]
fn on_demand_memories_reuse_released_reservations() {
    let engine = Engine::default();
    let module = Module::new(&engine, TENANT).unwrap();
    let base_after_write = || {
        let (store, mem) = tenant_wrote_secret(&engine, &module);
        mem.data_ptr(&store) as usize
    };
    let first = base_after_write();
    assert_eq!(base_after_write(), first, "the reservation is reused");
    let mut store = Store::new(&engine, ());
    let ty = keel::MemoryType::new(1, None);
    let mem = keel::Memory::new(&mut store, ty).unwrap();
    assert_eq!(mem.data_ptr(&store) as usize, first);
    assert_eq!(mem.size(&store), 1);
    assert!(mem.data(&store).iter().all(|b| *b == 0), "no data leaks");
    drop(store);
    // What the last tenant grew into is inaccessible again to guest code,
    // which has no bounds checks but the reservation's protection.
    let loader = Module::new(
        &engine,
        r#"(module (memory (export "mem") 1)
             (func (export "load") (param i32) (result i64) (i64.load (local.get 0))))"#,
    )
    .unwrap();
    for round in 0..2 {
        let mut store = Store::new(&engine, ());
        let instance = Linker::new(&engine)
            .instantiate(&mut store, &loader)
            .unwrap();
        let load = instance
            .get_typed_func::<i32, i64>(&mut store, "load")
            .unwrap();
        let err = load.call(&mut store, 200000).unwrap_err();
        let trap = err.downcast_ref::<keel::Trap>().unwrap();
        assert_eq!(*trap, keel::Trap::MemoryOutOfBounds, "round {round}");
        let mem = instance.get_memory(&mut store, "mem").unwrap();
        assert_eq!(mem.data_ptr(&store) as usize, first);
        mem.grow(&mut store, 3).unwrap();
        assert_eq!(load.call(&mut store, 200000).unwrap(), 0);
    }
}
