//! Funcref tables filled by constant element segments are initialized
//! lazily: every way of reading an element must see the segment's value,
//! whichever way it is reached first.

use keel::{Config, Engine, Instance, InstanceAllocationStrategy, Linker, Module, Store, Trap};

const TABLES: &str = r#"(module
  (import "host" "h" (func $h (result i32)))
  (func $a (result i32) i32.const 10)
  (func $b (result i32) i32.const 20)
  (table $t (export "t") 6 10 funcref)
  (elem (table $t) (i32.const 1) func $h $a $b)
  (elem (table $t) (i32.const 4) funcref (ref.func $b) (ref.null func))
  (table $u (export "u") 6 funcref)
  (func (export "call_t") (param i32) (result i32)
    (call_indirect $t (result i32) (local.get 0)))
  (func (export "call_u") (param i32) (result i32)
    (call_indirect $u (result i32) (local.get 0)))
  (func (export "is_null_t") (param i32) (result i32)
    (ref.is_null (table.get $t (local.get 0))))
  (func (export "copy_t_to_u")
    (table.copy $u $t (i32.const 0) (i32.const 0) (i32.const 6)))
  (func (export "shift_t_left")
    (table.copy $t $t (i32.const 0) (i32.const 1) (i32.const 5)))
  (func (export "grow_t") (result i32)
    (table.grow $t (ref.null func) (i32.const 2)))
)"#;

const IMPORTER: &str = r#"(module
  (import "a" "t" (table 6 10 funcref))
  (func (export "call") (param i32) (result i32)
    (call_indirect (result i32) (local.get 0))))"#;

struct Fixture {
    store: Store<()>,
    instance: Instance,
}

impl Fixture {
    fn new(engine: &Engine) -> Fixture {
        let module = Module::new(engine, TABLES).unwrap();
        let mut linker = Linker::new(engine);
        linker.func_wrap("host", "h", || 30).unwrap();
        let mut store = Store::new(engine, ());
        let instance = linker.instantiate(&mut store, &module).unwrap();
        Fixture { store, instance }
    }

    /// Calls export `name` with `arg`: `Some(result)`, or `None` for an
    /// indirect call to null.
    fn call(&mut self, name: &str, arg: i32) -> Option<i32> {
        let f = self
            .instance
            .get_typed_func::<i32, i32>(&mut self.store, name)
            .unwrap();
        match f.call(&mut self.store, arg) {
            Ok(v) => Some(v),
            Err(e) => {
                assert_eq!(e.downcast_ref::<Trap>(), Some(&Trap::IndirectCallToNull));
                None
            }
        }
    }

    fn run(&mut self, name: &str) {
        let f = self
            .instance
            .get_typed_func::<(), ()>(&mut self.store, name)
            .unwrap();
        f.call(&mut self.store, ()).unwrap();
    }
}

/// The table `$t` as the segments define it.
const EXPECTED: [Option<i32>; 6] = [None, Some(30), Some(10), Some(20), Some(20), None];

fn engines() -> Vec<Engine> {
    let mut pool = keel::PoolingAllocationConfig::new();
    pool.max_tables_per_module(2);
    let mut pooling = Config::new();
    pooling.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    vec![Engine::default(), Engine::new(&pooling).unwrap()]
}

#[test]
fn call_indirect_sees_segment_values() {
    for engine in engines() {
        let mut f = Fixture::new(&engine);
        for (i, expected) in EXPECTED.iter().enumerate() {
            assert_eq!(f.call("call_t", i as i32), *expected, "element {i}");
        }
        // Again, now that they are initialized.
        for (i, expected) in EXPECTED.iter().enumerate() {
            assert_eq!(f.call("call_t", i as i32), *expected, "element {i}");
        }
    }
}

#[test]
fn table_get_and_the_api_see_segment_values() {
    for engine in engines() {
        let mut f = Fixture::new(&engine);
        for (i, expected) in EXPECTED.iter().enumerate() {
            assert_eq!(
                f.call("is_null_t", i as i32),
                Some(expected.is_none() as i32)
            );
        }
        let mut f = Fixture::new(&engine);
        let t = f.instance.get_table(&mut f.store, "t").unwrap();
        for (i, expected) in EXPECTED.iter().enumerate() {
            let r = t.get(&mut f.store, i as u64).unwrap();
            let func = r.as_func().unwrap();
            match (func, expected) {
                (None, None) => {}
                (Some(func), Some(v)) => {
                    let typed = func.typed::<(), i32>(&f.store).unwrap();
                    assert_eq!(typed.call(&mut f.store, ()).unwrap(), *v);
                }
                _ => panic!("element {i}: {func:?} instead of {expected:?}"),
            }
        }
    }
}

#[test]
fn table_copy_moves_uninitialized_elements_correctly() {
    for engine in engines() {
        let mut f = Fixture::new(&engine);
        f.run("copy_t_to_u");
        for (i, expected) in EXPECTED.iter().enumerate() {
            assert_eq!(f.call("call_u", i as i32), *expected, "copied element {i}");
        }
        // Overlapping copy within the table, before anything was read.
        let mut f = Fixture::new(&engine);
        f.run("shift_t_left");
        for i in 0..5 {
            assert_eq!(f.call("call_t", i as i32), EXPECTED[i + 1], "shifted {i}");
        }
        assert_eq!(f.call("call_t", 5), None);
    }
}

#[test]
fn grown_and_imported_tables_keep_segment_values() {
    for engine in engines() {
        let mut f = Fixture::new(&engine);
        let g = f
            .instance
            .get_typed_func::<(), i32>(&mut f.store, "grow_t")
            .unwrap();
        assert_eq!(g.call(&mut f.store, ()).unwrap(), 6);
        for (i, expected) in EXPECTED.iter().enumerate() {
            assert_eq!(f.call("call_t", i as i32), *expected, "element {i}");
        }
        assert_eq!(f.call("call_t", 7), None, "grown with null");

        // Another instance reaches the elements through an import.
        let mut f = Fixture::new(&engine);
        let importer = Module::new(&engine, IMPORTER).unwrap();
        let mut linker = Linker::new(&engine);
        linker.instance(&mut f.store, "a", f.instance).unwrap();
        let other = linker.instantiate(&mut f.store, &importer).unwrap();
        let call = other
            .get_typed_func::<i32, i32>(&mut f.store, "call")
            .unwrap();
        assert_eq!(call.call(&mut f.store, 1).unwrap(), 30);
        assert_eq!(call.call(&mut f.store, 3).unwrap(), 20);
        assert_eq!(f.call("call_t", 3), Some(20));
    }
}
