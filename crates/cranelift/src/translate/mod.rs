//! Translation of one wasm function body into Cranelift IR.
//!
//! [`FuncTranslator::translate`] reads the body once: each operator is first
//! checked by `wasmparser`'s function validator, then handed to the family
//! that translates it (`control`, `variables`, `call`, `memory`, `numeric`).
//! Because validation runs first, a family may assume well-typed operands;
//! it never sees an operator it was not written for.

mod batch;
mod call;
mod control;
pub(crate) mod env;
mod exceptions;
mod memory;
mod meter;
mod numeric;
mod simd;
mod state;
mod table;
mod variables;

use crate::CompileError;
use crate::signatures::ir_type;
use cranelift_codegen::ir::{self, InstBuilder, SourceLoc, Type, Value, types};
use cranelift_frontend::{FunctionBuilder, Variable};
use env::FuncEnvironment;
use keel_environ::{FuncIndex, FunctionBodyData, WasmValType};
use state::{ControlFrame, ControlKind, TranslationState};
use wasmparser::{FuncValidatorAllocations, Operator};

/// Reusable buffers for translating many functions on one thread.
#[derive(Default)]
pub(crate) struct TranslatorBuffers {
    pub state: TranslationState,
    pub validator: Option<FuncValidatorAllocations>,
    pub locals: Vec<(Variable, Type)>,
}

/// Translates one function body.
pub(crate) struct FuncTranslator<'a, 'b> {
    pub b: FunctionBuilder<'b>,
    pub env: FuncEnvironment<'a>,
    pub state: &'a mut TranslationState,
    pub locals: &'a mut Vec<(Variable, Type)>,
    /// Fuel and epoch state (`meter.rs`).
    pub meter: meter::Meter,
}

impl<'a, 'b> FuncTranslator<'a, 'b> {
    /// Translates `body`, the definition of `func_index`, validating it.
    pub fn translate(
        mut env: FuncEnvironment<'a>,
        mut b: FunctionBuilder<'b>,
        buffers: &'a mut TranslatorBuffers,
        func_index: FuncIndex,
        body: FunctionBodyData<'_>,
    ) -> Result<(), CompileError> {
        let mut validator = body
            .validator
            .into_validator(buffers.validator.take().unwrap_or_default());
        let ty = env.module.func_type(func_index).clone();

        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        b.seal_block(entry);
        let vmctx = b.block_params(entry)[0];
        env.start_function(&mut b, vmctx);
        b.func.stack_limit = Some(FuncEnvironment::stack_limit_global(b.func));

        // Parameters, then declared locals, all as frontend variables.
        buffers.locals.clear();
        for (i, p) in ty.params().iter().enumerate() {
            let t = ir_type(*p, env.pointer_type);
            let var = b.declare_var(t);
            let value = b.block_params(entry)[i + 2];
            b.def_var(var, value);
            buffers.locals.push((var, t));
        }
        let mut reader = body.body.get_binary_reader();
        let groups = reader.read_var_u32()?;
        for _ in 0..groups {
            let offset = reader.original_position();
            let count = reader.read_var_u32()?;
            let wasm_ty: wasmparser::ValType = reader.read()?;
            validator.define_locals(offset, count, wasm_ty)?;
            let wty = keel_environ::convert_val_type(wasm_ty, offset)?;
            let t = ir_type(wty, env.pointer_type);
            let zero = zero_value(&mut b, wty, t);
            for _ in 0..count {
                let var = b.declare_var(t);
                b.def_var(var, zero);
                buffers.locals.push((var, t));
            }
        }

        // The function body is the outermost block; its end returns.
        let exit = b.create_block();
        for r in ty.results() {
            b.append_block_param(exit, ir_type(*r, env.pointer_type));
        }
        buffers.state.reset();
        buffers.state.control.push(ControlFrame {
            kind: ControlKind::Block,
            following: exit,
            num_params: 0,
            num_results: ty.results().len(),
            stack_height: 0,
            exit_is_branched_to: false,
            unreachable: false,
        });

        let mut t = FuncTranslator {
            b,
            env,
            state: &mut buffers.state,
            locals: &mut buffers.locals,
            meter: meter::Meter::default(),
        };
        let escapes = t.env.module.functions[func_index].escapes;
        t.meter_function_entry(escapes);
        let mut ops = wasmparser::OperatorsReader::new(reader);
        let mut body = Vec::new();
        while !ops.eof() {
            let (op, offset) = ops.read_with_offset()?;
            validator.op(offset, &op)?;
            let batchable = t.meter.fuel_variable().is_some()
                && t.state.reachable
                && matches!(
                    op,
                    Operator::Loop {
                        blockty: wasmparser::BlockType::Empty
                    }
                );
            if !batchable {
                t.translate_metered(&op, offset)?;
                continue;
            }
            // A loop, with fuel on: read its body ahead (validating it) for
            // as long as it may be batched (`batch.rs`).
            body.clear();
            let mut scan = batch::LoopScan::default();
            let batched = loop {
                if ops.eof() {
                    break false;
                }
                let (next, next_offset) = ops.read_with_offset()?;
                validator.op(next_offset, &next)?;
                let verdict = scan.push(&next);
                body.push((next, next_offset));
                match verdict {
                    batch::Scan::More => {}
                    batch::Scan::Batch => break true,
                    batch::Scan::No => break false,
                }
            };
            if batched {
                t.translate_batched_loop((&op, offset), &body)?;
            } else {
                t.translate_metered(&op, offset)?;
                for (op, offset) in &body {
                    t.translate_metered(op, *offset)?;
                }
            }
        }
        ops.finish()?;
        buffers.validator = Some(validator.into_allocations());
        let frontend_config = t.env.isa.frontend_config();
        t.b.finalize(frontend_config);
        Ok(())
    }

    /// Translates one validated operator at `offset`, with its metering.
    fn translate_metered(&mut self, op: &Operator<'_>, offset: u64) -> Result<(), CompileError> {
        self.b.set_srcloc(SourceLoc::new(offset as u32));
        if !(self.meter.is_on() && self.state.reachable) {
            return self.translate_operator(op, offset);
        }
        self.meter_before_op(op);
        if let Some(per_unit) = FuncTranslator::bulk_cost(op) {
            let units = *self
                .state
                .stack
                .last()
                .expect("validated: a length operand");
            self.meter_bulk(units, per_unit);
        }
        self.translate_operator(op, offset)?;
        if self.state.reachable {
            self.meter_after_op(op);
        }
        Ok(())
    }

    /// Translates one validated operator.
    fn translate_operator(&mut self, op: &Operator<'_>, offset: u64) -> Result<(), CompileError> {
        use Operator as O;
        use call::CallKind::{Call, Tail};
        if !self.state.reachable {
            control::translate_unreachable(self, op);
            return Ok(());
        }
        match op {
            O::Unreachable => control::unreachable(self),
            O::Nop => {}
            O::Block { blockty } => control::block(self, *blockty),
            O::Loop { blockty } => control::loop_(self, *blockty),
            O::If { blockty } => control::if_(self, *blockty),
            O::Else => control::else_(self),
            O::End => control::end(self),
            O::Br { relative_depth } => control::br(self, *relative_depth),
            O::BrIf { relative_depth } => control::br_if(self, *relative_depth),
            O::BrTable { targets } => control::br_table(self, targets)?,
            O::BrOnNull { relative_depth } => control::br_on_null(self, *relative_depth),
            O::BrOnNonNull { relative_depth } => control::br_on_non_null(self, *relative_depth),
            O::Return => control::return_(self),
            O::Drop => {
                self.state.pop1();
            }
            O::Select | O::TypedSelect { .. } => control::select(self),
            O::LocalGet { local_index } => variables::local_get(self, *local_index),
            O::LocalSet { local_index } => variables::local_set(self, *local_index),
            O::LocalTee { local_index } => variables::local_tee(self, *local_index),
            O::GlobalGet { global_index } => variables::global_get(self, *global_index),
            O::GlobalSet { global_index } => variables::global_set(self, *global_index),
            O::Call { function_index } => call::call(self, Call, *function_index),
            O::CallIndirect {
                type_index,
                table_index,
            } => call::call_indirect(self, Call, *type_index, *table_index),
            O::CallRef { type_index } => call::call_ref(self, Call, *type_index),
            O::ReturnCall { function_index } => call::call(self, Tail, *function_index),
            O::ReturnCallIndirect {
                type_index,
                table_index,
            } => call::call_indirect(self, Tail, *type_index, *table_index),
            O::ReturnCallRef { type_index } => call::call_ref(self, Tail, *type_index),
            O::TryTable { try_table } => self.try_table(try_table),
            O::Throw { tag_index } => self.throw(*tag_index),
            O::ThrowRef => self.throw_ref(),
            O::Try { blockty } => self.legacy_try(*blockty),
            O::Catch { tag_index } => self.legacy_catch(Some(*tag_index)),
            O::CatchAll => self.legacy_catch(None),
            O::Rethrow { relative_depth } => self.legacy_rethrow(*relative_depth)?,
            O::Delegate { relative_depth } => {
                self.legacy_delegate(*relative_depth);
                control::end(self);
            }
            other => {
                if memory::translate(self, other)?
                    || numeric::translate(self, other)
                    || table::translate(self, other)
                    || simd::translate(self, other)
                {
                    return Ok(());
                }
                return Err(CompileError::Unsupported {
                    message: format!("operator {other:?}"),
                    offset,
                });
            }
        }
        Ok(())
    }
}

/// The zero value locals start with.
fn zero_value(b: &mut FunctionBuilder<'_>, wty: WasmValType, t: Type) -> Value {
    match wty {
        WasmValType::F32 => b.ins().f32const(0.0),
        WasmValType::F64 => b.ins().f64const(0.0),
        WasmValType::V128 => {
            let c = b.func.dfg.constants.insert(vec![0u8; 16].into());
            b.ins().vconst(types::I8X16, c)
        }
        _ => b.ins().iconst(t, 0),
    }
}

/// The parameter and result types of a block type.
pub(crate) fn block_type_arity(
    env: &FuncEnvironment<'_>,
    ty: wasmparser::BlockType,
) -> (Vec<ir::Type>, Vec<ir::Type>) {
    let ptr = env.pointer_type;
    match ty {
        wasmparser::BlockType::Empty => (vec![], vec![]),
        wasmparser::BlockType::Type(t) => {
            // Validation accepted it, so the conversion succeeds; a type
            // Keel cannot represent was refused at parse time.
            let t = keel_environ::convert_val_type(t, 0).map_or(ptr, |t| ir_type(t, ptr));
            (vec![], vec![t])
        }
        wasmparser::BlockType::FuncType(i) => {
            let ft = &env.module.types[keel_environ::TypeIndex::from_u32(i)];
            (
                ft.params().iter().map(|t| ir_type(*t, ptr)).collect(),
                ft.results().iter().map(|t| ir_type(*t, ptr)).collect(),
            )
        }
    }
}
