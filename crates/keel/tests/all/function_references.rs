//! Typed function references through the embedding API: the host cannot
//! hand wasm a function of the wrong signature where a `(ref $t)` is
//! expected (generated code does not check it again at `call_ref`), typed
//! imports match by signature and subtyping, and null is refused where the
//! type is not nullable.

use keel::*;

/// A module whose functions take and call typed references to `$binary`.
const CALLER: &str = r#"
    (module
      (type $binary (func (param i32 i32) (result i32)))
      (type $unary (func (param i32) (result i32)))
      (func $add (export "add") (type $binary) (i32.add (local.get 0) (local.get 1)))
      (func $neg (export "neg") (type $unary) (i32.sub (i32.const 0) (local.get 0)))
      (func (export "apply") (param (ref $binary)) (result i32)
        (call_ref $binary (i32.const 40) (i32.const 2) (local.get 0)))
      (func (export "apply_nullable") (param (ref null $binary)) (result i32)
        (call_ref $binary (i32.const 40) (i32.const 2) (local.get 0)))
      (func (export "is_null") (param (ref null $binary)) (result i32)
        (block $null
          (br_on_null $null (local.get 0))
          (drop)
          (return (i32.const 0)))
        (i32.const 1))
      (table (export "t") 2 (ref null $binary))
      (elem declare func $add $neg))
"#;

fn instance(store: &mut Store<()>) -> Instance {
    let module = Module::new(store.engine(), CALLER).unwrap();
    Instance::new(&mut *store, &module, &[]).unwrap()
}

#[test]
fn the_host_passes_only_functions_of_the_declared_signature() {
    let mut store = Store::new(&Engine::default(), ());
    let instance = instance(&mut store);
    let apply = instance.get_func(&mut store, "apply").unwrap();
    let add = instance.get_func(&mut store, "add").unwrap();
    let neg = instance.get_func(&mut store, "neg").unwrap();
    let mut result = [Val::I32(0)];

    apply
        .call(&mut store, &[Val::FuncRef(Some(add))], &mut result)
        .unwrap();
    assert_eq!(result[0].unwrap_i32(), 42);

    let err = apply
        .call(&mut store, &[Val::FuncRef(Some(neg))], &mut result)
        .unwrap_err();
    assert!(format!("{err:#}").contains("argument 0"), "{err:#}");
    let err = apply
        .call(&mut store, &[Val::FuncRef(None)], &mut result)
        .unwrap_err();
    assert!(format!("{err:#}").contains("argument 0"), "{err:#}");
}

#[test]
fn call_ref_of_null_traps_and_br_on_null_branches() {
    let mut store = Store::new(&Engine::default(), ());
    let instance = instance(&mut store);
    let apply = instance.get_func(&mut store, "apply_nullable").unwrap();
    let mut result = [Val::I32(0)];
    let err = apply
        .call(&mut store, &[Val::FuncRef(None)], &mut result)
        .unwrap_err();
    assert_eq!(err.downcast_ref::<Trap>(), Some(&Trap::NullReference));

    let is_null = instance.get_func(&mut store, "is_null").unwrap();
    let add = instance.get_func(&mut store, "add").unwrap();
    is_null
        .call(&mut store, &[Val::FuncRef(None)], &mut result)
        .unwrap();
    assert_eq!(result[0].unwrap_i32(), 1);
    is_null
        .call(&mut store, &[Val::FuncRef(Some(add))], &mut result)
        .unwrap();
    assert_eq!(result[0].unwrap_i32(), 0);
}

#[test]
fn a_typed_table_refuses_functions_of_another_signature() {
    let mut store = Store::new(&Engine::default(), ());
    let instance = instance(&mut store);
    let table = instance.get_table(&mut store, "t").unwrap();
    let add = instance.get_func(&mut store, "add").unwrap();
    let neg = instance.get_func(&mut store, "neg").unwrap();
    table.set(&mut store, 0, Ref::Func(Some(add))).unwrap();
    table.set(&mut store, 1, Ref::Func(None)).unwrap();
    assert!(table.set(&mut store, 1, Ref::Func(Some(neg))).is_err());
    assert!(table.grow(&mut store, 1, Ref::Func(Some(neg))).is_err());
    assert_eq!(table.size(&store), 2);

    let ty = table.ty(&store);
    let HeapType::ConcreteFunc(id) = *ty.element().heap_type() else {
        panic!("expected a concrete element type, got {:?}", ty.element());
    };
    assert_eq!(id, add.ty(&store).id(store.engine()));
    assert!(ty.element().is_nullable());
}

#[test]
fn typed_imports_match_by_signature_and_subtyping() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let exporter = instance(&mut store);
    let add = exporter.get_func(&mut store, "add").unwrap();
    let binary = add.ty(&store);
    let neg_ty = exporter.get_func(&mut store, "neg").unwrap().ty(&store);

    // An immutable global of `(ref $binary)` satisfies imports of the same
    // type, of `(ref null $binary)` and of `funcref`, but not of a
    // reference to another signature.
    let exact = RefType::new(false, HeapType::ConcreteFunc(binary.id(&engine)));
    let global = Global::new(
        &mut store,
        GlobalType::new(ValType::Ref(exact), Mutability::Const),
        Val::FuncRef(Some(add)),
    )
    .unwrap();
    let importer = |import: &str| {
        format!(
            r#"(module
                 (type $binary (func (param i32 i32) (result i32)))
                 (type $unary (func (param i32) (result i32)))
                 (global (import "m" "g") {import}))"#
        )
    };
    for (import, ok) in [
        ("(ref $binary)", true),
        ("(ref null $binary)", true),
        ("funcref", true),
        ("(ref $unary)", false),
        ("(mut (ref null $binary))", false),
    ] {
        let module = Module::new(&engine, importer(import)).unwrap();
        let result = Instance::new(&mut store, &module, &[global.into()]);
        assert_eq!(result.is_ok(), ok, "import {import}: {:?}", result.err());
    }

    // A host global cannot hold a function of another signature.
    assert!(
        Global::new(
            &mut store,
            GlobalType::new(ValType::Ref(exact), Mutability::Const),
            Val::FuncRef(None),
        )
        .is_err()
    );
    let neg = exporter.get_func(&mut store, "neg").unwrap();
    assert_ne!(neg_ty.id(&engine), binary.id(&engine));
    assert!(
        Global::new(
            &mut store,
            GlobalType::new(ValType::Ref(exact), Mutability::Const),
            Val::FuncRef(Some(neg)),
        )
        .is_err()
    );
}

#[test]
fn equal_signatures_of_two_modules_are_one_type() {
    // `$outer` names a type defined before it: the two modules number their
    // types differently, and the engine still sees one signature.
    let engine = Engine::default();
    let a = Module::new(
        &engine,
        r#"(module
             (type $inner (func (param i32)))
             (type $outer (func (param (ref $inner))))
             (func (export "f") (type $outer)))"#,
    )
    .unwrap();
    let b = Module::new(
        &engine,
        r#"(module
             (type (func))
             (type $inner (func (param i32)))
             (type $outer (func (param (ref $inner))))
             (import "a" "f" (func (type $outer))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let a = Instance::new(&mut store, &a, &[]).unwrap();
    let f = a.get_func(&mut store, "f").unwrap();
    Instance::new(&mut store, &b, &[f.into()]).unwrap();
}

#[test]
fn function_references_can_be_switched_off() {
    let mut config = Config::new();
    config.wasm_function_references(false);
    let engine = Engine::new(&config).unwrap();
    assert!(Module::new(&engine, CALLER).is_err());
}
