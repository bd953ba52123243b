//! A second opinion from the reference for divergences that involve
//! `select`.
//!
//! wasmi 2.0 fuses a `select` with the comparison that computes its
//! condition, and gets some of those fused forms wrong (a `select` of a
//! constant and a local, conditioned on `i32.eqz` of that local, feeding a
//! division, picks the wrong operand: `fuzz/regressions/instantiate/`
//! keeps the input that showed it). [`route_select_conditions`] rewrites a
//! module so that every `select` takes its condition from a fresh local
//! (`local.set $c; local.get $c; select`), which means the same but gives
//! wasmi nothing to fuse. When Keel disagrees with wasmi on the original
//! module but agrees with wasmi on the rewritten one, the reference was
//! wrong; when it still disagrees, the finding stands.

use wasm_encoder::reencode::{Error, Reencode, RoundtripReencoder, utils};
use wasmparser::{FunctionBody, Operator, Parser, Payload};

/// The module with every `select`'s condition routed through a new local,
/// or `None` if it has no `select` (or cannot be read).
pub fn route_select_conditions(wasm: &[u8]) -> Option<Vec<u8>> {
    let params = defined_function_param_counts(wasm)?;
    let mut rewriter = SelectRewriter {
        params,
        next: 0,
        has_select: false,
    };
    let mut module = wasm_encoder::Module::new();
    rewriter
        .parse_core_module(&mut module, Parser::new(0), wasm)
        .ok()?;
    rewriter.has_select.then(|| module.finish())
}

/// The number of parameters (and declared locals come after them) of each
/// defined function, in order.
fn defined_function_param_counts(wasm: &[u8]) -> Option<Vec<u32>> {
    let mut types = Vec::new();
    let mut counts = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.ok()? {
            Payload::TypeSection(reader) => {
                for ty in reader.into_iter_err_on_gc_types() {
                    types.push(ty.ok()?.params().len() as u32);
                }
            }
            Payload::FunctionSection(reader) => {
                for ty in reader {
                    counts.push(*types.get(ty.ok()? as usize)?);
                }
            }
            _ => {}
        }
    }
    Some(counts)
}

struct SelectRewriter {
    params: Vec<u32>,
    next: usize,
    has_select: bool,
}

impl Reencode for SelectRewriter {
    type Error = std::convert::Infallible;

    fn parse_function_body(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        func: FunctionBody<'_>,
    ) -> Result<(), Error<Self::Error>> {
        let params = self.params.get(self.next).copied().unwrap_or(0);
        self.next += 1;
        let mut locals = Vec::new();
        let mut declared = 0u32;
        for pair in func.get_locals_reader()? {
            let (count, ty) = pair?;
            declared = declared.saturating_add(count);
            locals.push((count, RoundtripReencoder.val_type(ty)?));
        }
        let condition = params.saturating_add(declared);
        locals.push((1, wasm_encoder::ValType::I32));
        let mut f = wasm_encoder::Function::new(locals);
        let mut reader = func.get_operators_reader()?;
        while !reader.eof() {
            let op = reader.read()?;
            if matches!(op, Operator::Select | Operator::TypedSelect { .. }) {
                self.has_select = true;
                f.instruction(&wasm_encoder::Instruction::LocalSet(condition));
                f.instruction(&wasm_encoder::Instruction::LocalGet(condition));
            }
            f.instruction(&utils::instruction(self, op)?);
        }
        code.function(&f);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::route_select_conditions;

    /// The smallest module found that shows the wasmi bug: `1 / select(1,
    /// x, x == 0)` with `x = 0` is `1 / 1`, but wasmi traps.
    const FUSED_SELECT: &str = r#"(module
      (table 1 externref)
      (func (export "f") (result i32) (local i32)
        table.size 0
        i32.const 0
        local.set 0
        i32.const 1
        local.get 0
        local.get 0
        i32.eqz
        select
        i32.div_u))"#;

    fn run_in_wasmi(wasm: &[u8]) -> Result<i32, String> {
        let engine = wasmi::Engine::default();
        let module = wasmi::Module::new(&engine, wasm).map_err(|e| e.to_string())?;
        let mut store = wasmi::Store::new(&engine, ());
        let instance = wasmi::Linker::<()>::new(&engine)
            .instantiate_and_start(&mut store, &module)
            .map_err(|e| e.to_string())?;
        let f = instance
            .get_typed_func::<(), i32>(&store, "f")
            .map_err(|e| e.to_string())?;
        f.call(&mut store, ()).map_err(|e| e.to_string())
    }

    #[test]
    fn the_rewritten_module_is_valid_and_wasmi_gets_it_right() {
        let wasm = wat::parse_str(FUSED_SELECT).unwrap();
        let rewritten = route_select_conditions(&wasm).expect("it has a select");
        wasmparser::Validator::new()
            .validate_all(&rewritten)
            .expect("the rewrite is valid");
        assert_eq!(run_in_wasmi(&rewritten), Ok(1));
        // Keel agrees with the rewritten module.
        let engine = keel::Engine::default();
        let module = keel::Module::new(&engine, &wasm).unwrap();
        let mut store = keel::Store::new(&engine, ());
        let instance = keel::Instance::new(&mut store, &module, &[]).unwrap();
        let f = instance.get_typed_func::<(), i32>(&mut store, "f").unwrap();
        assert_eq!(f.call(&mut store, ()).unwrap(), 1);
        // When wasmi is fixed, this fails: the second opinion (and this
        // file) can then go.
        assert!(run_in_wasmi(&wasm).is_err(), "wasmi 2.0.0 traps here");
    }

    #[test]
    fn modules_without_select_are_not_rewritten() {
        let wasm = wat::parse_str(r#"(module (func (result i32) i32.const 1))"#).unwrap();
        assert_eq!(route_select_conditions(&wasm), None);
    }
}
