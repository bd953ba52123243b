//! The compiler accepts valid modules and rejects invalid ones with an
//! offset, with Cranelift's verifier switched on.

use keel_cranelift::{CompileError, Compiler, CompilerSettings};
use keel_environ::ModuleParser;
use wasmparser::WasmFeatures;

fn compile(wat: &str) -> Result<keel_cranelift::CompiledModule, CompileError> {
    let bytes = wat::parse_str(wat).expect("test module parses");
    let compiler = Compiler::new(CompilerSettings {
        debug_verifier: true,
        ..CompilerSettings::default()
    })?;
    let translation = ModuleParser::new(WasmFeatures::default()).parse(&bytes)?;
    compiler.compile_module(translation)
}

#[test]
fn compiles_control_flow_calls_and_memory() {
    let m = compile(
        r#"(module
            (memory 1)
            (table 2 funcref)
            (global $g (mut i32) (i32.const 0))
            (func $fac (export "fac") (param i64) (result i64)
              (if (result i64) (i64.eqz (local.get 0))
                (then (i64.const 1))
                (else (i64.mul (local.get 0) (call $fac (i64.sub (local.get 0) (i64.const 1)))))))
            (func (export "loop") (param i32) (result i32) (local i32)
              (block $out
                (loop $l
                  (br_if $out (i32.eqz (local.get 0)))
                  (local.set 1 (i32.add (local.get 1) (i32.load (local.get 0))))
                  (i32.store offset=4 (local.get 0) (local.get 1))
                  (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
                  (br $l)))
              (global.set $g (local.get 1))
              (local.get 1))
            (func (export "switch") (param i32) (result i32)
              (block $a (result i32)
                (block $b (result i32)
                  (br_table $a $b $a (i32.const 7) (local.get 0)))
                (drop) (i32.const 1)))
            (func (export "indirect") (param i32) (result i32)
              (call_indirect (result i32) (local.get 0)))
            (func (export "grow") (result i32) (memory.grow (i32.const 1)))
            (func (export "dead") (result i32)
              (unreachable) (i32.add) (if (then (br 0))) (block (result i32) (i32.const 1))))"#,
    )
    .expect("compiles");
    assert_eq!(m.info.functions.len(), 6);
    assert!(m.info.functions.values().all(|f| f.array_call.is_some()));
    assert!(m.info.tables.num_traps() > 0);
}

#[test]
fn invalid_body_reports_offset() {
    let err = compile(r#"(module (func (result i32) (i64.const 0)))"#).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("type mismatch"), "{msg}");
    assert!(msg.contains("offset 0x"), "{msg}");
}
