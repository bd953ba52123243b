//! 128-bit SIMD.
//!
//! Every `v128` on the operand stack, in locals and at block boundaries is
//! Cranelift's `i8x16`. Each instruction bitcasts its operands to the lane
//! type it works on and its result back to `i8x16`. Bitcasts between vector
//! types cost nothing on x86-64 (same registers) and Cranelift folds
//! back-to-back ones, so this keeps the rest of the translator unaware of
//! lane types.
//!
//! Most instructions are one Cranelift instruction with wasm semantics
//! (`swizzle` zeroes out-of-range lanes, `fmin`/`fmax` propagate NaN,
//! vector shifts take their amount modulo the lane width). The rest are
//! short patterns that Cranelift's x86-64 lowering recognizes and turns into
//! one instruction (`pmaddwd` for `i32x4.dot_i16x8_s`, `minps` for `pmin`,
//! `cvttpd2dq` for `trunc_sat_f64x2_s_zero`).

mod lanes;
mod memory;
mod relaxed;

use super::FuncTranslator;
use cranelift_codegen::ir::{Endianness, InstBuilder, MemFlagsData, Type, Value, types};
use wasmparser::Operator;

/// Translates a SIMD operator; `false` if `op` is not one.
pub(super) fn translate(t: &mut FuncTranslator<'_, '_>, op: &Operator<'_>) -> bool {
    memory::translate(t, op) || lanes::translate(t, op) || relaxed::translate(t, op)
}

/// Flags for a bitcast between vector types: lanes are numbered
/// little-endian, as in wasm.
fn bitcast_flags() -> MemFlagsData {
    MemFlagsData::new().with_endianness(Endianness::Little)
}

/// `v` as a vector of type `ty`.
fn as_type(t: &mut FuncTranslator<'_, '_>, v: Value, ty: Type) -> Value {
    if t.b.func.dfg.value_type(v) == ty {
        v
    } else {
        t.b.ins().bitcast(ty, bitcast_flags(), v)
    }
}

/// Pops a `v128` as a vector of type `ty`.
fn pop_as(t: &mut FuncTranslator<'_, '_>, ty: Type) -> Value {
    let v = t.state.pop1();
    as_type(t, v, ty)
}

/// Pops two `v128`s as vectors of type `ty`.
fn pop2_as(t: &mut FuncTranslator<'_, '_>, ty: Type) -> (Value, Value) {
    let b = pop_as(t, ty);
    let a = pop_as(t, ty);
    (a, b)
}

/// Pushes a vector result as the canonical `i8x16`.
fn push_vector(t: &mut FuncTranslator<'_, '_>, v: Value) {
    let v = as_type(t, v, types::I8X16);
    t.state.push1(v);
}

/// An all-zero vector of type `ty`.
fn zero_vector(t: &mut FuncTranslator<'_, '_>, ty: Type) -> Value {
    let c = t.b.func.dfg.constants.insert(vec![0u8; 16].into());
    t.b.ins().vconst(ty, c)
}
