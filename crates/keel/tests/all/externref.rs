//! externref values through the API: round trips, tables, globals, and
//! collection of unreachable ones.

use keel::*;

#[test]
fn host_values_round_trip_through_wasm() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
            (table $t (export "t") 4 externref)
            (global $g (export "g") (mut externref) (ref.null extern))
            (func (export "id") (param externref) (result externref) (local.get 0))
            (func (export "stash") (param externref) (table.set $t (i32.const 1) (local.get 0)))
            (func (export "fetch") (result externref) (table.get $t (i32.const 1)))
            (func (export "is_null") (param externref) (result i32) (ref.is_null (local.get 0))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let i = Instance::new(&mut store, &module, &[]).unwrap();
    let value = ExternRef::new(&mut store, String::from("hello")).unwrap();
    let id = i
        .get_typed_func::<Option<ExternRef>, Option<ExternRef>>(&mut store, "id")
        .unwrap();
    let back = id.call(&mut store, Some(value.clone())).unwrap().unwrap();
    assert!(ExternRef::ptr_eq(&back, &value));
    let data = back.data(&store).unwrap().unwrap();
    assert_eq!(
        data.downcast_ref::<String>().map(String::as_str),
        Some("hello")
    );
    assert!(id.call(&mut store, None).unwrap().is_none());

    let stash = i
        .get_typed_func::<Option<ExternRef>, ()>(&mut store, "stash")
        .unwrap();
    let seven = ExternRef::new(&mut store, 7u64).unwrap();
    stash.call(&mut store, Some(seven)).unwrap();
    // Only the table holds it now; a collection must keep it.
    store.gc();
    let fetch = i
        .get_typed_func::<(), Option<ExternRef>>(&mut store, "fetch")
        .unwrap();
    let got = fetch.call(&mut store, ()).unwrap().unwrap();
    assert_eq!(
        got.data(&store).unwrap().unwrap().downcast_ref::<u64>(),
        Some(&7)
    );

    let g = i.get_global(&mut store, "g").unwrap();
    g.set(&mut store, Val::ExternRef(Some(value.clone())))
        .unwrap();
    let Val::ExternRef(Some(from_global)) = g.get(&mut store) else {
        panic!("global holds the reference")
    };
    assert!(ExternRef::ptr_eq(&from_global, &value));
    let t = i.get_table(&mut store, "t").unwrap();
    t.set(&mut store, 3, Ref::Extern(Some(value.clone())))
        .unwrap();
    assert!(matches!(t.get(&mut store, 3), Some(Ref::Extern(Some(_)))));
    assert!(
        t.set(&mut store, 0, Ref::Func(None)).is_err(),
        "funcref in an externref table"
    );
}

#[test]
fn unreachable_externrefs_are_freed() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    let dropped = Arc::new(AtomicUsize::new(0));
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
            (table $keep 1 externref)
            (func (export "pass") (param externref) (result i32) (ref.is_null (local.get 0)))
            (func (export "keep") (param externref) (table.set $keep (i32.const 0) (local.get 0))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let i = Instance::new(&mut store, &module, &[]).unwrap();
    let pass = i
        .get_typed_func::<Option<ExternRef>, i32>(&mut store, "pass")
        .unwrap();
    let keep = i
        .get_typed_func::<Option<ExternRef>, ()>(&mut store, "keep")
        .unwrap();
    for _ in 0..100 {
        let r = ExternRef::new(&mut store, Counted(dropped.clone())).unwrap();
        assert_eq!(pass.call(&mut store, Some(r)).unwrap(), 0);
    }
    let kept = ExternRef::new(&mut store, Counted(dropped.clone())).unwrap();
    keep.call(&mut store, Some(kept)).unwrap();
    let held = ExternRef::new(&mut store, Counted(dropped.clone())).unwrap();
    pass.call(&mut store, Some(held.clone())).unwrap();
    let remaining = store.gc();
    assert_eq!(
        dropped.load(Ordering::Relaxed),
        100,
        "the 100 passed-through values are freed"
    );
    assert_eq!(
        remaining, 2,
        "the one in the table and the one the host holds stay"
    );
    drop(held);
    drop(store);
    assert_eq!(
        dropped.load(Ordering::Relaxed),
        102,
        "dropping the store frees the rest"
    );
}
