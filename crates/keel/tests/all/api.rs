//! The embedding API: calls, host functions, memories, globals, tables,
//! linking between instances.

use keel::*;

#[test]
fn typed_and_untyped_calls_agree() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
            (func (export "add") (param i32 i64 f32 f64) (result f64)
              (f64.add
                (f64.add (f64.convert_i32_s (local.get 0)) (f64.convert_i64_s (local.get 1)))
                (f64.add (f64.promote_f32 (local.get 2)) (local.get 3))))
            (func (export "pair") (param i32) (result i32 i64)
              (local.get 0) (i64.extend_i32_s (i32.mul (local.get 0) (i32.const 2))))
            (func (export "many") (result i32 i32 i32 i32 i32)
              (i32.const 1) (i32.const 2) (i32.const 3) (i32.const 4) (i32.const 5)))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let i = Instance::new(&mut store, &module, &[]).unwrap();
    let add = i
        .get_typed_func::<(i32, i64, f32, f64), f64>(&mut store, "add")
        .unwrap();
    assert_eq!(add.call(&mut store, (1, 2, 0.5, 0.25)).unwrap(), 3.75);
    let f = i.get_func(&mut store, "add").unwrap();
    let mut out = [Val::F64(0)];
    f.call(
        &mut store,
        &[Val::I32(1), Val::I64(2), 0.5f32.into(), 0.25f64.into()],
        &mut out,
    )
    .unwrap();
    assert_eq!(out[0].unwrap_f64(), 3.75);
    let pair = i
        .get_typed_func::<i32, (i32, i64)>(&mut store, "pair")
        .unwrap();
    assert_eq!(pair.call(&mut store, -4).unwrap(), (-4, -8));
    let many = i
        .get_typed_func::<(), (i32, i32, i32, i32, i32)>(&mut store, "many")
        .unwrap();
    assert_eq!(many.call(&mut store, ()).unwrap(), (1, 2, 3, 4, 5));
    // Wrong signatures are errors, not crashes.
    assert!(i.get_typed_func::<i32, i32>(&mut store, "add").is_err());
    assert!(f.call(&mut store, &[Val::I32(1)], &mut out).is_err());
    assert!(
        f.call(
            &mut store,
            &[Val::I64(1), Val::I64(2), 0.5f32.into(), 0.25f64.into()],
            &mut out
        )
        .is_err()
    );
}

#[test]
fn host_functions_see_store_data_and_caller_memory() {
    struct State {
        log: Vec<String>,
    }
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
            (import "env" "print" (func $print (param i32 i32)))
            (import "env" "double" (func $double (param f64) (result f64)))
            (memory (export "memory") 1)
            (data (i32.const 16) "hello, keel")
            (func (export "run") (result f64)
              (call $print (i32.const 16) (i32.const 11))
              (call $double (f64.const 21))))"#,
    )
    .unwrap();
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap(
            "env",
            "print",
            |mut caller: Caller<'_, State>, ptr: i32, len: i32| -> Result<()> {
                let mem = caller
                    .get_export("memory")
                    .and_then(Extern::into_memory)
                    .unwrap();
                let bytes = mem.data(&caller)[ptr as usize..][..len as usize].to_vec();
                caller.data_mut().log.push(String::from_utf8(bytes)?);
                Ok(())
            },
        )
        .unwrap();
    linker
        .func_new(
            "env",
            "double",
            FuncType::new(&engine, [ValType::F64], [ValType::F64]),
            |_caller, params, results| {
                results[0] = Val::from(params[0].unwrap_f64() * 2.0);
                Ok(())
            },
        )
        .unwrap();
    let mut store = Store::new(&engine, State { log: vec![] });
    let i = linker.instantiate(&mut store, &module).unwrap();
    let run = i.get_typed_func::<(), f64>(&mut store, "run").unwrap();
    assert_eq!(run.call(&mut store, ()).unwrap(), 42.0);
    assert_eq!(store.data().log, ["hello, keel"]);
}

#[test]
fn memory_read_write_grow() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
            (memory (export "mem") 1 3)
            (func (export "load") (param i32) (result i32) (i32.load8_u (local.get 0)))
            (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
            (func (export "size") (result i32) (memory.size)))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let i = Instance::new(&mut store, &module, &[]).unwrap();
    let mem = i.get_memory(&mut store, "mem").unwrap();
    mem.write(&mut store, 100, &[1, 2, 3]).unwrap();
    let load = i.get_typed_func::<i32, i32>(&mut store, "load").unwrap();
    assert_eq!(load.call(&mut store, 102).unwrap(), 3);
    assert!(mem.write(&mut store, 65535, &[1, 2]).is_err());
    let mut buf = [0u8; 3];
    mem.read(&store, 100, &mut buf).unwrap();
    assert_eq!(buf, [1, 2, 3]);
    assert_eq!(mem.grow(&mut store, 1).unwrap(), 1);
    assert_eq!(mem.size(&store), 2);
    let grow = i.get_typed_func::<i32, i32>(&mut store, "grow").unwrap();
    assert_eq!(grow.call(&mut store, 1).unwrap(), 2);
    assert_eq!(grow.call(&mut store, 1).unwrap(), -1, "past the maximum");
    assert!(mem.grow(&mut store, 1).is_err());
    assert_eq!(mem.data_size(&store), 3 * 65536);
    // The new pages are zero and usable from wasm.
    mem.data_mut(&mut store)[3 * 65536 - 1] = 9;
    assert_eq!(load.call(&mut store, 3 * 65536 - 1).unwrap(), 9);
    let size = i.get_typed_func::<(), i32>(&mut store, "size").unwrap();
    assert_eq!(size.call(&mut store, ()).unwrap(), 3);
}

#[test]
fn store_limits_bound_memory_growth() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module (memory 1) (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))"#,
    )
    .unwrap();
    let mut store = Store::new(
        &engine,
        StoreLimitsBuilder::new().memory_size(4 * 65536).build(),
    );
    store.limiter(|l| l);
    let i = Instance::new(&mut store, &module, &[]).unwrap();
    let grow = i.get_typed_func::<i32, i32>(&mut store, "grow").unwrap();
    assert_eq!(grow.call(&mut store, 3).unwrap(), 1);
    assert_eq!(grow.call(&mut store, 1).unwrap(), -1);
    let big = Module::new(&engine, r#"(module (memory 5))"#).unwrap();
    assert!(Instance::new(&mut store, &big, &[]).is_err());
}

#[test]
fn globals_and_tables_through_the_api() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
            (import "env" "g" (global $g (mut i32)))
            (import "env" "t" (table 2 funcref))
            (global (export "c") i64 (i64.const -5))
            (type $r (func (result i32)))
            (func $seven (result i32) (i32.const 7))
            (elem (i32.const 0) $seven)
            (func (export "bump") (result i32)
              (global.set $g (i32.add (global.get $g) (i32.const 1)))
              (global.get $g))
            (func (export "call") (param i32) (result i32) (call_indirect (type $r) (local.get 0))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let g = Global::new(
        &mut store,
        GlobalType::new(ValType::I32, Mutability::Var),
        Val::I32(41),
    )
    .unwrap();
    let t = Table::new(
        &mut store,
        TableType::new(RefType::FUNCREF, 2, None),
        Ref::Func(None),
    )
    .unwrap();
    let i = Instance::new(&mut store, &module, &[g.into(), t.into()]).unwrap();
    let bump = i.get_typed_func::<(), i32>(&mut store, "bump").unwrap();
    assert_eq!(bump.call(&mut store, ()).unwrap(), 42);
    assert_eq!(g.get(&mut store).unwrap_i32(), 42);
    g.set(&mut store, Val::I32(0)).unwrap();
    assert_eq!(bump.call(&mut store, ()).unwrap(), 1);
    assert!(g.set(&mut store, Val::I64(0)).is_err());
    let c = i.get_global(&mut store, "c").unwrap();
    assert_eq!(c.get(&mut store).unwrap_i64(), -5);
    assert!(c.set(&mut store, Val::I64(1)).is_err(), "immutable");
    // The table was filled by the element segment; the host can copy.
    let call = i.get_typed_func::<i32, i32>(&mut store, "call").unwrap();
    assert_eq!(call.call(&mut store, 0).unwrap(), 7);
    let seven = t.get(&mut store, 0).unwrap();
    t.set(&mut store, 1, seven).unwrap();
    assert_eq!(call.call(&mut store, 1).unwrap(), 7);
    let host = Func::wrap(&mut store, || 99i32);
    t.set(&mut store, 1, host.into()).unwrap();
    assert_eq!(
        call.call(&mut store, 1).unwrap(),
        99,
        "host function through call_indirect"
    );
    assert_eq!(t.grow(&mut store, 3, Ref::Func(None)).unwrap(), 2);
    assert_eq!(t.size(&store), 5);
}

#[test]
fn instances_link_to_each_other() {
    let engine = Engine::default();
    let a = Module::new(
        &engine,
        r#"(module
            (memory (export "mem") 1)
            (global (export "g") (mut i32) (i32.const 1))
            (func (export "set") (param i32 i32) (i32.store (local.get 0) (local.get 1))))"#,
    )
    .unwrap();
    let b = Module::new(
        &engine,
        r#"(module
            (import "a" "mem" (memory 1))
            (import "a" "set" (func $set (param i32 i32)))
            (import "a" "g" (global $g (mut i32)))
            (func (export "run") (result i32)
              (call $set (i32.const 8) (i32.const 1234))
              (global.set $g (i32.const 2))
              (i32.add (i32.load (i32.const 8)) (global.get $g))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let mut linker = Linker::new(&engine);
    let ia = linker.instantiate(&mut store, &a).unwrap();
    linker.instance(&mut store, "a", ia).unwrap();
    let ib = linker.instantiate(&mut store, &b).unwrap();
    let run = ib.get_typed_func::<(), i32>(&mut store, "run").unwrap();
    assert_eq!(run.call(&mut store, ()).unwrap(), 1236);
    let g = ia.get_global(&mut store, "g").unwrap();
    assert_eq!(g.get(&mut store).unwrap_i32(), 2);
    assert_eq!(
        ia.exports(&mut store)
            .map(|e| e.name().to_string())
            .collect::<Vec<_>>(),
        ["mem", "g", "set"]
    );
}

#[test]
fn module_reflection() {
    let engine = Engine::default();
    let m = Module::new(
        &engine,
        r#"(module $named
            (import "env" "f" (func (param i32) (result i64)))
            (memory (export "m") 2 3)
            (func (export "f") (param f32)))"#,
    )
    .unwrap();
    assert_eq!(m.name(), Some("named"));
    let imports: Vec<_> = m
        .imports()
        .map(|i| (i.module().to_string(), i.name().to_string()))
        .collect();
    assert_eq!(imports, [("env".to_string(), "f".to_string())]);
    match m.get_export("m").unwrap() {
        ExternType::Memory(t) => assert_eq!((t.minimum(), t.maximum()), (2, Some(3))),
        other => panic!("{other:?}"),
    }
    match m.get_export("f").unwrap() {
        ExternType::Func(t) => assert_eq!(t.params().collect::<Vec<_>>(), [ValType::F32]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn multi_value_through_the_api() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
            (import "host" "split" (func $split (param i64) (result i32 i32)))
            (func (export "convert") (param i32 i64) (result f32 f64)
              (f32.convert_i32_s (local.get 0)) (f64.convert_i64_s (local.get 1)))
            (func (export "swap_sum") (param i64) (result i32 i32 i32)
              (local $a i32) (local $b i32)
              (call $split (local.get 0))
              (local.set $b) (local.set $a)
              (local.get $b) (local.get $a) (i32.add (local.get $a) (local.get $b)))
            (func (export "block_params") (param i32) (result i32)
              (local.get 0) (i32.const 10)
              (block (param i32 i32) (result i32) (i32.sub))))"#,
    )
    .unwrap();
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap("host", "split", |x: i64| ((x >> 32) as i32, x as i32))
        .unwrap();
    let mut store = Store::new(&engine, ());
    let i = linker.instantiate(&mut store, &module).unwrap();
    let convert = i
        .get_typed_func::<(i32, i64), (f32, f64)>(&mut store, "convert")
        .unwrap();
    assert_eq!(
        convert.call(&mut store, (-3, 1 << 40)).unwrap(),
        (-3.0, (1u64 << 40) as f64)
    );
    let swap = i
        .get_typed_func::<i64, (i32, i32, i32)>(&mut store, "swap_sum")
        .unwrap();
    assert_eq!(swap.call(&mut store, (7 << 32) | 5).unwrap(), (5, 7, 12));
    let f = i.get_func(&mut store, "swap_sum").unwrap();
    let mut out = vec![Val::I32(0); 3];
    f.call(&mut store, &[Val::I64((1 << 32) | 2)], &mut out)
        .unwrap();
    assert_eq!(
        [
            out[0].unwrap_i32(),
            out[1].unwrap_i32(),
            out[2].unwrap_i32()
        ],
        [2, 1, 3]
    );
    let bp = i
        .get_typed_func::<i32, i32>(&mut store, "block_params")
        .unwrap();
    assert_eq!(bp.call(&mut store, 15).unwrap(), 5);
}

#[test]
fn v128_values_through_the_api() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
            (global (export "g") (mut v128) (v128.const i32x4 1 2 3 4))
            (func (export "add") (param v128 v128) (result v128) (i32x4.add (local.get 0) (local.get 1)))
            (func (export "lane") (param v128) (result i32) (i32x4.extract_lane 2 (local.get 0))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let i = Instance::new(&mut store, &module, &[]).unwrap();
    let lanes = |l: [u32; 4]| {
        V128::from(
            l.iter()
                .enumerate()
                .fold(0u128, |acc, (i, x)| acc | (u128::from(*x) << (32 * i))),
        )
    };
    let add = i
        .get_typed_func::<(V128, V128), V128>(&mut store, "add")
        .unwrap();
    let sum = add
        .call(
            &mut store,
            (lanes([1, 2, 3, 4]), lanes([10, 20, 30, u32::MAX])),
        )
        .unwrap();
    assert_eq!(sum, lanes([11, 22, 33, 3]));
    let lane = i.get_func(&mut store, "lane").unwrap();
    let mut out = [Val::I32(0)];
    lane.call(&mut store, &[Val::V128(sum)], &mut out).unwrap();
    assert_eq!(out[0].unwrap_i32(), 33);
    let g = i.get_global(&mut store, "g").unwrap();
    assert_eq!(g.get(&mut store).unwrap_v128(), lanes([1, 2, 3, 4]));
    g.set(&mut store, Val::V128(sum)).unwrap();
    assert_eq!(g.get(&mut store).unwrap_v128(), sum);
}

#[test]
fn bulk_memory_runs_at_memmove_speed_and_checks_bounds() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
            (memory (export "m") 256)
            (func (export "fill") (param i32 i32 i32) (memory.fill (local.get 0) (local.get 1) (local.get 2)))
            (func (export "copy") (param i32 i32 i32) (memory.copy (local.get 0) (local.get 1) (local.get 2))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let i = Instance::new(&mut store, &module, &[]).unwrap();
    let fill = i
        .get_typed_func::<(i32, i32, i32), ()>(&mut store, "fill")
        .unwrap();
    let copy = i
        .get_typed_func::<(i32, i32, i32), ()>(&mut store, "copy")
        .unwrap();
    let m = i.get_memory(&mut store, "m").unwrap();
    let size = 16 << 20;
    fill.call(&mut store, (0, 0xab, size)).unwrap();
    // Overlapping copy (memmove semantics).
    m.data_mut(&mut store)[..4].copy_from_slice(&[1, 2, 3, 4]);
    copy.call(&mut store, (1, 0, 4)).unwrap();
    assert_eq!(&m.data(&store)[..5], &[1, 1, 2, 3, 4]);
    // Out of bounds: trap, and nothing written.
    let before = m.data(&store)[size as usize - 1];
    let err = fill.call(&mut store, (size - 1, 0, 2)).unwrap_err();
    assert_eq!(err.downcast_ref::<Trap>(), Some(&Trap::MemoryOutOfBounds));
    assert_eq!(m.data(&store)[size as usize - 1], before);
    // 16 MiB copies well within a second even in a debug build: not a byte loop.
    let t = std::time::Instant::now();
    for _ in 0..20 {
        copy.call(&mut store, (0, 1 << 20, size - (1 << 20)))
            .unwrap();
    }
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        t.elapsed()
    );
}
