//! Constant expressions: global initializers, segment offsets, element items.
//!
//! They are kept as a short list of operations and evaluated by the runtime
//! at instantiation, because `global.get` of an import can only be known then.

use crate::{FuncIndex, GlobalIndex, ModuleError, ModuleResult, WasmHeapType};

/// One operation of a constant expression (a stack machine).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ConstOp {
    /// Push an `i32`.
    I32Const(i32),
    /// Push an `i64`.
    I64Const(i64),
    /// Push an `f32` given by its bits.
    F32Const(u32),
    /// Push an `f64` given by its bits.
    F64Const(u64),
    /// Push a `v128`.
    V128Const(u128),
    /// Push the value of a global.
    GlobalGet(GlobalIndex),
    /// Push a null reference.
    RefNull(WasmHeapType),
    /// Push a reference to a function.
    RefFunc(FuncIndex),
    /// Pop two `i32`s, push their wrapping sum (extended-const proposal).
    I32Add,
    /// Pop two `i32`s, push their wrapping difference.
    I32Sub,
    /// Pop two `i32`s, push their wrapping product.
    I32Mul,
    /// Pop two `i64`s, push their wrapping sum.
    I64Add,
    /// Pop two `i64`s, push their wrapping difference.
    I64Sub,
    /// Pop two `i64`s, push their wrapping product.
    I64Mul,
}

/// A validated constant expression.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ConstExpr {
    ops: Box<[ConstOp]>,
}

impl ConstExpr {
    /// Builds an expression from its operations.
    pub fn new(ops: impl IntoIterator<Item = ConstOp>) -> Self {
        ConstExpr {
            ops: ops.into_iter().collect(),
        }
    }

    /// The operations, in order.
    pub fn ops(&self) -> &[ConstOp] {
        &self.ops
    }

    /// If the expression is a single `i32.const` or `i64.const`, its value:
    /// lets the compiler and instantiation skip evaluation in the common case.
    pub fn as_constant_offset(&self) -> Option<u64> {
        match *self.ops {
            [ConstOp::I32Const(v)] => Some(u64::from(v as u32)),
            [ConstOp::I64Const(v)] => Some(v as u64),
            _ => None,
        }
    }

    /// Reads an expression that `wasmparser` already validated.
    pub(crate) fn from_wasmparser(expr: &wasmparser::ConstExpr<'_>) -> ModuleResult<Self> {
        use wasmparser::Operator as O;
        let mut ops = Vec::new();
        let mut reader = expr.get_operators_reader();
        while !reader.eof() {
            let offset = reader.original_position();
            let op = reader.read()?;
            ops.push(match op {
                O::I32Const { value } => ConstOp::I32Const(value),
                O::I64Const { value } => ConstOp::I64Const(value),
                O::F32Const { value } => ConstOp::F32Const(value.bits()),
                O::F64Const { value } => ConstOp::F64Const(value.bits()),
                O::V128Const { value } => ConstOp::V128Const(u128::from_le_bytes(*value.bytes())),
                O::GlobalGet { global_index } => {
                    ConstOp::GlobalGet(GlobalIndex::from_u32(global_index))
                }
                // Every null is the same value; it is kept with its
                // hierarchy's top type, which is all its users ask.
                O::RefNull { hty } => {
                    ConstOp::RefNull(crate::types::convert_heap_type(hty, offset)?.top())
                }
                O::RefFunc { function_index } => {
                    ConstOp::RefFunc(FuncIndex::from_u32(function_index))
                }
                O::I32Add => ConstOp::I32Add,
                O::I32Sub => ConstOp::I32Sub,
                O::I32Mul => ConstOp::I32Mul,
                O::I64Add => ConstOp::I64Add,
                O::I64Sub => ConstOp::I64Sub,
                O::I64Mul => ConstOp::I64Mul,
                O::End => break,
                other => {
                    return Err(ModuleError::unsupported(
                        format!("constant expression operator {other:?}"),
                        offset,
                    ));
                }
            });
        }
        Ok(ConstExpr::new(ops))
    }
}
