//! Bad input is an error, never a crash: malformed and invalid modules,
//! missing or mistyped imports.

use keel::*;

fn compile_error(bytes: &[u8]) -> String {
    let engine = Engine::default();
    let err = Module::new(&engine, bytes).expect_err("must be rejected");
    format!("{err:#}")
}

#[test]
fn truncated_module() {
    let full =
        wat::parse_str(r#"(module (func (export "f") (result i32) (i32.const 1)))"#).unwrap();
    let engine = Engine::default();
    // Truncation at a section boundary leaves a valid (smaller) module;
    // anywhere else it is malformed. Either way, no panic.
    for len in 0..full.len() {
        let _ = Module::new(&engine, &full[..len]);
    }
    for len in (0..8).chain([full.len() - 1, full.len() - 3]) {
        let msg = compile_error(&full[..len]);
        assert!(!msg.is_empty());
    }
}

#[test]
fn random_bytes_never_panic() {
    // A fixed xorshift sequence: reproducible, no dependency.
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let engine = Engine::default();
    for i in 0..2000 {
        let len = (next() % 64) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if i % 2 == 0 && bytes.len() >= 8 {
            bytes[..8].copy_from_slice(b"\0asm\x01\0\0\0");
        }
        let _ = Module::new(&engine, &bytes);
    }
}

#[test]
fn invalid_module_names_the_offset() {
    let msg =
        compile_error(&wat::parse_str(r#"(module (func (result i32) (i64.const 1)))"#).unwrap());
    assert!(msg.contains("type mismatch"), "{msg}");
    assert!(msg.contains("at offset 0x"), "{msg}");
    let msg = compile_error(b"\0asm\x02\0\0\0");
    assert!(msg.contains("offset"), "{msg}");
    let msg = compile_error(b"not wasm \xff\xfe");
    assert!(msg.contains("magic header"), "{msg}");
}

#[test]
fn missing_and_mistyped_imports() {
    let engine = Engine::default();
    let module = Module::new(&engine, r#"(module (import "env" "f" (func (param i32))))"#).unwrap();
    let mut store = Store::new(&engine, ());
    let linker = Linker::<()>::new(&engine);
    let err = linker.instantiate(&mut store, &module).unwrap_err();
    assert!(
        err.to_string().contains("unknown import: `env::f`"),
        "{err}"
    );

    let wrong = Func::wrap(&mut store, |_: i64| {});
    let err = Instance::new(&mut store, &module, &[wrong.into()]).unwrap_err();
    assert!(
        err.to_string()
            .contains("incompatible import type for `env::f`"),
        "{err}"
    );
    let mem = Memory::new(&mut store, MemoryType::new(1, None)).unwrap();
    assert!(Instance::new(&mut store, &module, &[mem.into()]).is_err());
    assert!(Instance::new(&mut store, &module, &[]).is_err());
}

#[test]
fn unsupported_features_are_errors() {
    let engine = Engine::default();
    let err = Module::new(&engine, r#"(module (memory i64 1))"#).unwrap_err();
    assert!(!format!("{err:#}").is_empty());
}
