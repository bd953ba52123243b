//! Relaxed SIMD, deterministically: every relaxed operator gives the one
//! result the specification's deterministic profile names, whatever the
//! machine, so a guest computes the same on every host (the results of
//! Wasmtime's `relaxed_simd_deterministic(true)`; by default Wasmtime
//! picks the fastest instruction of the machine instead, whose results
//! differ between hosts for some inputs).
//!
//! Most are the non-relaxed operator they relax, translated as that one:
//! the swizzle zeroes out-of-range lanes, truncations saturate, `min` and
//! `max` propagate NaN, `q15mulr` saturates, a lane select is a bitwise
//! select. The multiply-adds are fused (`fma`: one rounding), the dot
//! products take both operands as signed and wrap.

use super::lanes;
use super::{FuncTranslator, pop_as, pop2_as, push_vector};
use cranelift_codegen::ir::{InstBuilder, Type, Value, types::*};
use wasmparser::Operator;

/// Translates a relaxed SIMD operator; `false` if `op` is not one.
pub(super) fn translate(t: &mut FuncTranslator<'_, '_>, op: &Operator<'_>) -> bool {
    use Operator as O;
    match op {
        O::I8x16RelaxedSwizzle => return lanes::translate(t, &O::I8x16Swizzle),
        O::I32x4RelaxedTruncF32x4S => return lanes::translate(t, &O::I32x4TruncSatF32x4S),
        O::I32x4RelaxedTruncF32x4U => return lanes::translate(t, &O::I32x4TruncSatF32x4U),
        O::I32x4RelaxedTruncF64x2SZero => return lanes::translate(t, &O::I32x4TruncSatF64x2SZero),
        O::I32x4RelaxedTruncF64x2UZero => return lanes::translate(t, &O::I32x4TruncSatF64x2UZero),
        O::F32x4RelaxedMin => return lanes::translate(t, &O::F32x4Min),
        O::F32x4RelaxedMax => return lanes::translate(t, &O::F32x4Max),
        O::F64x2RelaxedMin => return lanes::translate(t, &O::F64x2Min),
        O::F64x2RelaxedMax => return lanes::translate(t, &O::F64x2Max),
        O::I16x8RelaxedQ15mulrS => return lanes::translate(t, &O::I16x8Q15MulrSatS),
        O::I8x16RelaxedLaneselect
        | O::I16x8RelaxedLaneselect
        | O::I32x4RelaxedLaneselect
        | O::I64x2RelaxedLaneselect => return lanes::translate(t, &O::V128Bitselect),
        O::F32x4RelaxedMadd => fused_multiply_add(t, F32X4, false),
        O::F32x4RelaxedNmadd => fused_multiply_add(t, F32X4, true),
        O::F64x2RelaxedMadd => fused_multiply_add(t, F64X2, false),
        O::F64x2RelaxedNmadd => fused_multiply_add(t, F64X2, true),
        O::I16x8RelaxedDotI8x16I7x16S => {
            let (a, b) = pop2_as(t, I8X16);
            let v = dot_i8x16(t, a, b);
            push_vector(t, v);
        }
        O::I32x4RelaxedDotI8x16I7x16AddS => {
            let c = pop_as(t, I32X4);
            let (a, b) = pop2_as(t, I8X16);
            let pairs = dot_i8x16(t, a, b);
            let low = t.b.ins().swiden_low(pairs);
            let high = t.b.ins().swiden_high(pairs);
            let quads = t.b.ins().iadd_pairwise(low, high);
            let v = t.b.ins().iadd(quads, c);
            push_vector(t, v);
        }
        _ => return false,
    }
    true
}

/// `a * b + c` (or `-(a * b) + c`), rounded once.
fn fused_multiply_add(t: &mut FuncTranslator<'_, '_>, ty: Type, negate: bool) {
    let c = pop_as(t, ty);
    let (a, b) = pop2_as(t, ty);
    let a = if negate { t.b.ins().fneg(a) } else { a };
    let v = t.b.ins().fma(a, b, c);
    push_vector(t, v);
}

/// The `i16x8` of sums of adjacent products of `a`'s and `b`'s lanes, all
/// taken as signed; a sum past `i16` wraps.
fn dot_i8x16(t: &mut FuncTranslator<'_, '_>, a: Value, b: Value) -> Value {
    let a_low = t.b.ins().swiden_low(a);
    let b_low = t.b.ins().swiden_low(b);
    let a_high = t.b.ins().swiden_high(a);
    let b_high = t.b.ins().swiden_high(b);
    let low = t.b.ins().imul(a_low, b_low);
    let high = t.b.ins().imul(a_high, b_high);
    t.b.ins().iadd_pairwise(low, high)
}
