//! SIMD lane arithmetic: constants, shuffles, lane access, comparisons,
//! bitwise operations, integer and float arithmetic, conversions.

use super::{FuncTranslator, bitcast_flags, pop_as, pop2_as, push_vector, zero_vector};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{ConstantData, InstBuilder, Type, Value, types::*};
use cranelift_frontend::FunctionBuilder;
use wasmparser::Operator;

type B<'a, 'b> = &'a mut FunctionBuilder<'b>;

/// A lane-wise unary operation on vectors of type `ty`.
fn unary(t: &mut FuncTranslator<'_, '_>, ty: Type, f: impl FnOnce(B<'_, '_>, Value) -> Value) {
    let x = pop_as(t, ty);
    let v = f(&mut t.b, x);
    push_vector(t, v);
}

/// A lane-wise binary operation on vectors of type `ty`.
fn binary(
    t: &mut FuncTranslator<'_, '_>,
    ty: Type,
    f: impl FnOnce(B<'_, '_>, Value, Value) -> Value,
) {
    let (x, y) = pop2_as(t, ty);
    let v = f(&mut t.b, x, y);
    push_vector(t, v);
}

fn icmp(t: &mut FuncTranslator<'_, '_>, ty: Type, cc: IntCC) {
    binary(t, ty, |b, x, y| b.ins().icmp(cc, x, y));
}

fn fcmp(t: &mut FuncTranslator<'_, '_>, ty: Type, cc: FloatCC) {
    binary(t, ty, |b, x, y| b.ins().fcmp(cc, x, y));
}

/// A shift of every lane of a `ty` vector by an `i32` amount.
fn shift(
    t: &mut FuncTranslator<'_, '_>,
    ty: Type,
    f: impl FnOnce(B<'_, '_>, Value, Value) -> Value,
) {
    let amount = t.state.pop1();
    let x = pop_as(t, ty);
    let v = f(&mut t.b, x, amount);
    push_vector(t, v);
}

/// A test of a vector that yields an `i32`.
fn test(t: &mut FuncTranslator<'_, '_>, ty: Type, f: impl FnOnce(B<'_, '_>, Value) -> Value) {
    let x = pop_as(t, ty);
    let r = f(&mut t.b, x);
    let r = t.b.ins().uextend(I32, r);
    t.state.push1(r);
}

fn bitmask(t: &mut FuncTranslator<'_, '_>, ty: Type) {
    let x = pop_as(t, ty);
    let r = t.b.ins().vhigh_bits(I32, x);
    t.state.push1(r);
}

fn splat(t: &mut FuncTranslator<'_, '_>, ty: Type) {
    let s = t.state.pop1();
    let lane = ty.lane_type();
    let s = if t.b.func.dfg.value_type(s).bits() > lane.bits() && lane.is_int() {
        t.b.ins().ireduce(lane, s)
    } else {
        s
    };
    let v = t.b.ins().splat(ty, s);
    push_vector(t, v);
}

/// `extract_lane`; narrow integer lanes are extended to `i32`.
fn extract(t: &mut FuncTranslator<'_, '_>, ty: Type, lane: u8, signed: Option<bool>) {
    let v = pop_as(t, ty);
    let s = t.b.ins().extractlane(v, lane);
    let s = match signed {
        Some(true) => t.b.ins().sextend(I32, s),
        Some(false) => t.b.ins().uextend(I32, s),
        None => s,
    };
    t.state.push1(s);
}

fn replace(t: &mut FuncTranslator<'_, '_>, ty: Type, lane: u8) {
    let s = t.state.pop1();
    let v = pop_as(t, ty);
    let lane_ty = ty.lane_type();
    let s = if lane_ty.is_int() && t.b.func.dfg.value_type(s).bits() > lane_ty.bits() {
        t.b.ins().ireduce(lane_ty, s)
    } else {
        s
    };
    let r = t.b.ins().insertlane(v, s, lane);
    push_vector(t, r);
}

/// Pairwise sum of widened lanes (`extadd_pairwise`).
fn extadd_pairwise(t: &mut FuncTranslator<'_, '_>, ty: Type, signed: bool) {
    unary(t, ty, |b, x| {
        let (lo, hi) = if signed {
            (b.ins().swiden_low(x), b.ins().swiden_high(x))
        } else {
            (b.ins().uwiden_low(x), b.ins().uwiden_high(x))
        };
        b.ins().iadd_pairwise(lo, hi)
    });
}

/// Product of widened lanes (`extmul_{low,high}`).
fn extmul(t: &mut FuncTranslator<'_, '_>, ty: Type, high: bool, signed: bool) {
    binary(t, ty, |b, x, y| {
        let widen = |b: B<'_, '_>, v| match (high, signed) {
            (false, true) => b.ins().swiden_low(v),
            (true, true) => b.ins().swiden_high(v),
            (false, false) => b.ins().uwiden_low(v),
            (true, false) => b.ins().uwiden_high(v),
        };
        let (x, y) = (widen(b, x), widen(b, y));
        b.ins().imul(x, y)
    });
}

fn extend(t: &mut FuncTranslator<'_, '_>, ty: Type, high: bool, signed: bool) {
    unary(t, ty, |b, x| match (high, signed) {
        (false, true) => b.ins().swiden_low(x),
        (true, true) => b.ins().swiden_high(x),
        (false, false) => b.ins().uwiden_low(x),
        (true, false) => b.ins().uwiden_high(x),
    });
}

/// `pmin`/`pmax`: `b < a ? b : a` and `a < b ? b : a`, without NaN rules.
fn pseudo_min_max(t: &mut FuncTranslator<'_, '_>, ty: Type, max: bool) {
    binary(t, ty, |b, x, y| {
        let cmp = if max {
            b.ins().fcmp(FloatCC::LessThan, x, y)
        } else {
            b.ins().fcmp(FloatCC::LessThan, y, x)
        };
        let cmp = b.ins().bitcast(ty, bitcast_flags(), cmp);
        b.ins().bitselect(cmp, y, x)
    });
}

/// Translates a SIMD lane operator; `false` if `op` is not one.
pub(super) fn translate(t: &mut FuncTranslator<'_, '_>, op: &Operator<'_>) -> bool {
    use Operator as O;
    match op {
        O::V128Const { value } => {
            let c = t.b.func.dfg.constants.insert(value.bytes().to_vec().into());
            let v = t.b.ins().vconst(I8X16, c);
            t.state.push1(v);
        }
        O::I8x16Shuffle { lanes } => {
            let (a, b) = pop2_as(t, I8X16);
            let mask =
                t.b.func
                    .dfg
                    .immediates
                    .push(ConstantData::from(lanes.to_vec()));
            let v = t.b.ins().shuffle(a, b, mask);
            push_vector(t, v);
        }
        O::I8x16Swizzle => binary(t, I8X16, |b, x, y| b.ins().swizzle(x, y)),

        // Lanes.
        O::I8x16ExtractLaneS { lane } => extract(t, I8X16, *lane, Some(true)),
        O::I8x16ExtractLaneU { lane } => extract(t, I8X16, *lane, Some(false)),
        O::I16x8ExtractLaneS { lane } => extract(t, I16X8, *lane, Some(true)),
        O::I16x8ExtractLaneU { lane } => extract(t, I16X8, *lane, Some(false)),
        O::I32x4ExtractLane { lane } => extract(t, I32X4, *lane, None),
        O::I64x2ExtractLane { lane } => extract(t, I64X2, *lane, None),
        O::F32x4ExtractLane { lane } => extract(t, F32X4, *lane, None),
        O::F64x2ExtractLane { lane } => extract(t, F64X2, *lane, None),
        O::I8x16ReplaceLane { lane } => replace(t, I8X16, *lane),
        O::I16x8ReplaceLane { lane } => replace(t, I16X8, *lane),
        O::I32x4ReplaceLane { lane } => replace(t, I32X4, *lane),
        O::I64x2ReplaceLane { lane } => replace(t, I64X2, *lane),
        O::F32x4ReplaceLane { lane } => replace(t, F32X4, *lane),
        O::F64x2ReplaceLane { lane } => replace(t, F64X2, *lane),
        O::I8x16Splat => splat(t, I8X16),
        O::I16x8Splat => splat(t, I16X8),
        O::I32x4Splat => splat(t, I32X4),
        O::I64x2Splat => splat(t, I64X2),
        O::F32x4Splat => splat(t, F32X4),
        O::F64x2Splat => splat(t, F64X2),

        // Comparisons: lanes become all ones or all zeros.
        O::I8x16Eq => icmp(t, I8X16, IntCC::Equal),
        O::I8x16Ne => icmp(t, I8X16, IntCC::NotEqual),
        O::I8x16LtS => icmp(t, I8X16, IntCC::SignedLessThan),
        O::I8x16LtU => icmp(t, I8X16, IntCC::UnsignedLessThan),
        O::I8x16GtS => icmp(t, I8X16, IntCC::SignedGreaterThan),
        O::I8x16GtU => icmp(t, I8X16, IntCC::UnsignedGreaterThan),
        O::I8x16LeS => icmp(t, I8X16, IntCC::SignedLessThanOrEqual),
        O::I8x16LeU => icmp(t, I8X16, IntCC::UnsignedLessThanOrEqual),
        O::I8x16GeS => icmp(t, I8X16, IntCC::SignedGreaterThanOrEqual),
        O::I8x16GeU => icmp(t, I8X16, IntCC::UnsignedGreaterThanOrEqual),
        O::I16x8Eq => icmp(t, I16X8, IntCC::Equal),
        O::I16x8Ne => icmp(t, I16X8, IntCC::NotEqual),
        O::I16x8LtS => icmp(t, I16X8, IntCC::SignedLessThan),
        O::I16x8LtU => icmp(t, I16X8, IntCC::UnsignedLessThan),
        O::I16x8GtS => icmp(t, I16X8, IntCC::SignedGreaterThan),
        O::I16x8GtU => icmp(t, I16X8, IntCC::UnsignedGreaterThan),
        O::I16x8LeS => icmp(t, I16X8, IntCC::SignedLessThanOrEqual),
        O::I16x8LeU => icmp(t, I16X8, IntCC::UnsignedLessThanOrEqual),
        O::I16x8GeS => icmp(t, I16X8, IntCC::SignedGreaterThanOrEqual),
        O::I16x8GeU => icmp(t, I16X8, IntCC::UnsignedGreaterThanOrEqual),
        O::I32x4Eq => icmp(t, I32X4, IntCC::Equal),
        O::I32x4Ne => icmp(t, I32X4, IntCC::NotEqual),
        O::I32x4LtS => icmp(t, I32X4, IntCC::SignedLessThan),
        O::I32x4LtU => icmp(t, I32X4, IntCC::UnsignedLessThan),
        O::I32x4GtS => icmp(t, I32X4, IntCC::SignedGreaterThan),
        O::I32x4GtU => icmp(t, I32X4, IntCC::UnsignedGreaterThan),
        O::I32x4LeS => icmp(t, I32X4, IntCC::SignedLessThanOrEqual),
        O::I32x4LeU => icmp(t, I32X4, IntCC::UnsignedLessThanOrEqual),
        O::I32x4GeS => icmp(t, I32X4, IntCC::SignedGreaterThanOrEqual),
        O::I32x4GeU => icmp(t, I32X4, IntCC::UnsignedGreaterThanOrEqual),
        O::I64x2Eq => icmp(t, I64X2, IntCC::Equal),
        O::I64x2Ne => icmp(t, I64X2, IntCC::NotEqual),
        O::I64x2LtS => icmp(t, I64X2, IntCC::SignedLessThan),
        O::I64x2GtS => icmp(t, I64X2, IntCC::SignedGreaterThan),
        O::I64x2LeS => icmp(t, I64X2, IntCC::SignedLessThanOrEqual),
        O::I64x2GeS => icmp(t, I64X2, IntCC::SignedGreaterThanOrEqual),
        O::F32x4Eq => fcmp(t, F32X4, FloatCC::Equal),
        O::F32x4Ne => fcmp(t, F32X4, FloatCC::NotEqual),
        O::F32x4Lt => fcmp(t, F32X4, FloatCC::LessThan),
        O::F32x4Gt => fcmp(t, F32X4, FloatCC::GreaterThan),
        O::F32x4Le => fcmp(t, F32X4, FloatCC::LessThanOrEqual),
        O::F32x4Ge => fcmp(t, F32X4, FloatCC::GreaterThanOrEqual),
        O::F64x2Eq => fcmp(t, F64X2, FloatCC::Equal),
        O::F64x2Ne => fcmp(t, F64X2, FloatCC::NotEqual),
        O::F64x2Lt => fcmp(t, F64X2, FloatCC::LessThan),
        O::F64x2Gt => fcmp(t, F64X2, FloatCC::GreaterThan),
        O::F64x2Le => fcmp(t, F64X2, FloatCC::LessThanOrEqual),
        O::F64x2Ge => fcmp(t, F64X2, FloatCC::GreaterThanOrEqual),

        // Bitwise.
        O::V128Not => unary(t, I8X16, |b, x| b.ins().bnot(x)),
        O::V128And => binary(t, I8X16, |b, x, y| b.ins().band(x, y)),
        O::V128AndNot => binary(t, I8X16, |b, x, y| b.ins().band_not(x, y)),
        O::V128Or => binary(t, I8X16, |b, x, y| b.ins().bor(x, y)),
        O::V128Xor => binary(t, I8X16, |b, x, y| b.ins().bxor(x, y)),
        O::V128Bitselect => {
            let c = pop_as(t, I8X16);
            let (x, y) = pop2_as(t, I8X16);
            let v = t.b.ins().bitselect(c, x, y);
            push_vector(t, v);
        }
        O::V128AnyTrue => test(t, I8X16, |b, x| b.ins().vany_true(x)),

        // i8x16.
        O::I8x16Abs => unary(t, I8X16, |b, x| b.ins().iabs(x)),
        O::I8x16Neg => unary(t, I8X16, |b, x| b.ins().ineg(x)),
        O::I8x16Popcnt => unary(t, I8X16, |b, x| b.ins().popcnt(x)),
        O::I8x16AllTrue => test(t, I8X16, |b, x| b.ins().vall_true(x)),
        O::I8x16Bitmask => bitmask(t, I8X16),
        O::I8x16NarrowI16x8S => binary(t, I16X8, |b, x, y| b.ins().snarrow(x, y)),
        O::I8x16NarrowI16x8U => binary(t, I16X8, |b, x, y| b.ins().unarrow(x, y)),
        O::I8x16Shl => shift(t, I8X16, |b, x, y| b.ins().ishl(x, y)),
        O::I8x16ShrS => shift(t, I8X16, |b, x, y| b.ins().sshr(x, y)),
        O::I8x16ShrU => shift(t, I8X16, |b, x, y| b.ins().ushr(x, y)),
        O::I8x16Add => binary(t, I8X16, |b, x, y| b.ins().iadd(x, y)),
        O::I8x16AddSatS => binary(t, I8X16, |b, x, y| b.ins().sadd_sat(x, y)),
        O::I8x16AddSatU => binary(t, I8X16, |b, x, y| b.ins().uadd_sat(x, y)),
        O::I8x16Sub => binary(t, I8X16, |b, x, y| b.ins().isub(x, y)),
        O::I8x16SubSatS => binary(t, I8X16, |b, x, y| b.ins().ssub_sat(x, y)),
        O::I8x16SubSatU => binary(t, I8X16, |b, x, y| b.ins().usub_sat(x, y)),
        O::I8x16MinS => binary(t, I8X16, |b, x, y| b.ins().smin(x, y)),
        O::I8x16MinU => binary(t, I8X16, |b, x, y| b.ins().umin(x, y)),
        O::I8x16MaxS => binary(t, I8X16, |b, x, y| b.ins().smax(x, y)),
        O::I8x16MaxU => binary(t, I8X16, |b, x, y| b.ins().umax(x, y)),
        O::I8x16AvgrU => binary(t, I8X16, |b, x, y| b.ins().avg_round(x, y)),

        // i16x8.
        O::I16x8ExtAddPairwiseI8x16S => extadd_pairwise(t, I8X16, true),
        O::I16x8ExtAddPairwiseI8x16U => extadd_pairwise(t, I8X16, false),
        O::I16x8Abs => unary(t, I16X8, |b, x| b.ins().iabs(x)),
        O::I16x8Neg => unary(t, I16X8, |b, x| b.ins().ineg(x)),
        O::I16x8Q15MulrSatS => binary(t, I16X8, |b, x, y| b.ins().sqmul_round_sat(x, y)),
        O::I16x8AllTrue => test(t, I16X8, |b, x| b.ins().vall_true(x)),
        O::I16x8Bitmask => bitmask(t, I16X8),
        O::I16x8NarrowI32x4S => binary(t, I32X4, |b, x, y| b.ins().snarrow(x, y)),
        O::I16x8NarrowI32x4U => binary(t, I32X4, |b, x, y| b.ins().unarrow(x, y)),
        O::I16x8ExtendLowI8x16S => extend(t, I8X16, false, true),
        O::I16x8ExtendHighI8x16S => extend(t, I8X16, true, true),
        O::I16x8ExtendLowI8x16U => extend(t, I8X16, false, false),
        O::I16x8ExtendHighI8x16U => extend(t, I8X16, true, false),
        O::I16x8Shl => shift(t, I16X8, |b, x, y| b.ins().ishl(x, y)),
        O::I16x8ShrS => shift(t, I16X8, |b, x, y| b.ins().sshr(x, y)),
        O::I16x8ShrU => shift(t, I16X8, |b, x, y| b.ins().ushr(x, y)),
        O::I16x8Add => binary(t, I16X8, |b, x, y| b.ins().iadd(x, y)),
        O::I16x8AddSatS => binary(t, I16X8, |b, x, y| b.ins().sadd_sat(x, y)),
        O::I16x8AddSatU => binary(t, I16X8, |b, x, y| b.ins().uadd_sat(x, y)),
        O::I16x8Sub => binary(t, I16X8, |b, x, y| b.ins().isub(x, y)),
        O::I16x8SubSatS => binary(t, I16X8, |b, x, y| b.ins().ssub_sat(x, y)),
        O::I16x8SubSatU => binary(t, I16X8, |b, x, y| b.ins().usub_sat(x, y)),
        O::I16x8Mul => binary(t, I16X8, |b, x, y| b.ins().imul(x, y)),
        O::I16x8MinS => binary(t, I16X8, |b, x, y| b.ins().smin(x, y)),
        O::I16x8MinU => binary(t, I16X8, |b, x, y| b.ins().umin(x, y)),
        O::I16x8MaxS => binary(t, I16X8, |b, x, y| b.ins().smax(x, y)),
        O::I16x8MaxU => binary(t, I16X8, |b, x, y| b.ins().umax(x, y)),
        O::I16x8AvgrU => binary(t, I16X8, |b, x, y| b.ins().avg_round(x, y)),
        O::I16x8ExtMulLowI8x16S => extmul(t, I8X16, false, true),
        O::I16x8ExtMulHighI8x16S => extmul(t, I8X16, true, true),
        O::I16x8ExtMulLowI8x16U => extmul(t, I8X16, false, false),
        O::I16x8ExtMulHighI8x16U => extmul(t, I8X16, true, false),

        // i32x4.
        O::I32x4ExtAddPairwiseI16x8S => extadd_pairwise(t, I16X8, true),
        O::I32x4ExtAddPairwiseI16x8U => extadd_pairwise(t, I16X8, false),
        O::I32x4Abs => unary(t, I32X4, |b, x| b.ins().iabs(x)),
        O::I32x4Neg => unary(t, I32X4, |b, x| b.ins().ineg(x)),
        O::I32x4AllTrue => test(t, I32X4, |b, x| b.ins().vall_true(x)),
        O::I32x4Bitmask => bitmask(t, I32X4),
        O::I32x4ExtendLowI16x8S => extend(t, I16X8, false, true),
        O::I32x4ExtendHighI16x8S => extend(t, I16X8, true, true),
        O::I32x4ExtendLowI16x8U => extend(t, I16X8, false, false),
        O::I32x4ExtendHighI16x8U => extend(t, I16X8, true, false),
        O::I32x4Shl => shift(t, I32X4, |b, x, y| b.ins().ishl(x, y)),
        O::I32x4ShrS => shift(t, I32X4, |b, x, y| b.ins().sshr(x, y)),
        O::I32x4ShrU => shift(t, I32X4, |b, x, y| b.ins().ushr(x, y)),
        O::I32x4Add => binary(t, I32X4, |b, x, y| b.ins().iadd(x, y)),
        O::I32x4Sub => binary(t, I32X4, |b, x, y| b.ins().isub(x, y)),
        O::I32x4Mul => binary(t, I32X4, |b, x, y| b.ins().imul(x, y)),
        O::I32x4MinS => binary(t, I32X4, |b, x, y| b.ins().smin(x, y)),
        O::I32x4MinU => binary(t, I32X4, |b, x, y| b.ins().umin(x, y)),
        O::I32x4MaxS => binary(t, I32X4, |b, x, y| b.ins().smax(x, y)),
        O::I32x4MaxU => binary(t, I32X4, |b, x, y| b.ins().umax(x, y)),
        O::I32x4DotI16x8S => binary(t, I16X8, |b, x, y| {
            let lo = {
                let (xl, yl) = (b.ins().swiden_low(x), b.ins().swiden_low(y));
                b.ins().imul(xl, yl)
            };
            let hi = {
                let (xh, yh) = (b.ins().swiden_high(x), b.ins().swiden_high(y));
                b.ins().imul(xh, yh)
            };
            b.ins().iadd_pairwise(lo, hi)
        }),
        O::I32x4ExtMulLowI16x8S => extmul(t, I16X8, false, true),
        O::I32x4ExtMulHighI16x8S => extmul(t, I16X8, true, true),
        O::I32x4ExtMulLowI16x8U => extmul(t, I16X8, false, false),
        O::I32x4ExtMulHighI16x8U => extmul(t, I16X8, true, false),

        // i64x2.
        O::I64x2Abs => unary(t, I64X2, |b, x| b.ins().iabs(x)),
        O::I64x2Neg => unary(t, I64X2, |b, x| b.ins().ineg(x)),
        O::I64x2AllTrue => test(t, I64X2, |b, x| b.ins().vall_true(x)),
        O::I64x2Bitmask => bitmask(t, I64X2),
        O::I64x2ExtendLowI32x4S => extend(t, I32X4, false, true),
        O::I64x2ExtendHighI32x4S => extend(t, I32X4, true, true),
        O::I64x2ExtendLowI32x4U => extend(t, I32X4, false, false),
        O::I64x2ExtendHighI32x4U => extend(t, I32X4, true, false),
        O::I64x2Shl => shift(t, I64X2, |b, x, y| b.ins().ishl(x, y)),
        O::I64x2ShrS => shift(t, I64X2, |b, x, y| b.ins().sshr(x, y)),
        O::I64x2ShrU => shift(t, I64X2, |b, x, y| b.ins().ushr(x, y)),
        O::I64x2Add => binary(t, I64X2, |b, x, y| b.ins().iadd(x, y)),
        O::I64x2Sub => binary(t, I64X2, |b, x, y| b.ins().isub(x, y)),
        O::I64x2Mul => binary(t, I64X2, |b, x, y| b.ins().imul(x, y)),
        O::I64x2ExtMulLowI32x4S => extmul(t, I32X4, false, true),
        O::I64x2ExtMulHighI32x4S => extmul(t, I32X4, true, true),
        O::I64x2ExtMulLowI32x4U => extmul(t, I32X4, false, false),
        O::I64x2ExtMulHighI32x4U => extmul(t, I32X4, true, false),

        // f32x4 and f64x2.
        O::F32x4Ceil => unary(t, F32X4, |b, x| b.ins().ceil(x)),
        O::F32x4Floor => unary(t, F32X4, |b, x| b.ins().floor(x)),
        O::F32x4Trunc => unary(t, F32X4, |b, x| b.ins().trunc(x)),
        O::F32x4Nearest => unary(t, F32X4, |b, x| b.ins().nearest(x)),
        O::F32x4Abs => unary(t, F32X4, |b, x| b.ins().fabs(x)),
        O::F32x4Neg => unary(t, F32X4, |b, x| b.ins().fneg(x)),
        O::F32x4Sqrt => unary(t, F32X4, |b, x| b.ins().sqrt(x)),
        O::F32x4Add => binary(t, F32X4, |b, x, y| b.ins().fadd(x, y)),
        O::F32x4Sub => binary(t, F32X4, |b, x, y| b.ins().fsub(x, y)),
        O::F32x4Mul => binary(t, F32X4, |b, x, y| b.ins().fmul(x, y)),
        O::F32x4Div => binary(t, F32X4, |b, x, y| b.ins().fdiv(x, y)),
        O::F32x4Min => binary(t, F32X4, |b, x, y| b.ins().fmin(x, y)),
        O::F32x4Max => binary(t, F32X4, |b, x, y| b.ins().fmax(x, y)),
        O::F32x4PMin => pseudo_min_max(t, F32X4, false),
        O::F32x4PMax => pseudo_min_max(t, F32X4, true),
        O::F64x2Ceil => unary(t, F64X2, |b, x| b.ins().ceil(x)),
        O::F64x2Floor => unary(t, F64X2, |b, x| b.ins().floor(x)),
        O::F64x2Trunc => unary(t, F64X2, |b, x| b.ins().trunc(x)),
        O::F64x2Nearest => unary(t, F64X2, |b, x| b.ins().nearest(x)),
        O::F64x2Abs => unary(t, F64X2, |b, x| b.ins().fabs(x)),
        O::F64x2Neg => unary(t, F64X2, |b, x| b.ins().fneg(x)),
        O::F64x2Sqrt => unary(t, F64X2, |b, x| b.ins().sqrt(x)),
        O::F64x2Add => binary(t, F64X2, |b, x, y| b.ins().fadd(x, y)),
        O::F64x2Sub => binary(t, F64X2, |b, x, y| b.ins().fsub(x, y)),
        O::F64x2Mul => binary(t, F64X2, |b, x, y| b.ins().fmul(x, y)),
        O::F64x2Div => binary(t, F64X2, |b, x, y| b.ins().fdiv(x, y)),
        O::F64x2Min => binary(t, F64X2, |b, x, y| b.ins().fmin(x, y)),
        O::F64x2Max => binary(t, F64X2, |b, x, y| b.ins().fmax(x, y)),
        O::F64x2PMin => pseudo_min_max(t, F64X2, false),
        O::F64x2PMax => pseudo_min_max(t, F64X2, true),

        // Conversions.
        O::I32x4TruncSatF32x4S => unary(t, F32X4, |b, x| b.ins().fcvt_to_sint_sat(I32X4, x)),
        O::I32x4TruncSatF32x4U => unary(t, F32X4, |b, x| b.ins().fcvt_to_uint_sat(I32X4, x)),
        O::F32x4ConvertI32x4S => unary(t, I32X4, |b, x| b.ins().fcvt_from_sint(F32X4, x)),
        O::F32x4ConvertI32x4U => unary(t, I32X4, |b, x| b.ins().fcvt_from_uint(F32X4, x)),
        O::I32x4TruncSatF64x2SZero => {
            let x = pop_as(t, F64X2);
            let wide = t.b.ins().fcvt_to_sint_sat(I64X2, x);
            let zero = zero_vector(t, I64X2);
            let v = t.b.ins().snarrow(wide, zero);
            push_vector(t, v);
        }
        O::I32x4TruncSatF64x2UZero => {
            let x = pop_as(t, F64X2);
            let wide = t.b.ins().fcvt_to_uint_sat(I64X2, x);
            let zero = zero_vector(t, I64X2);
            let v = t.b.ins().uunarrow(wide, zero);
            push_vector(t, v);
        }
        O::F64x2ConvertLowI32x4S => unary(t, I32X4, |b, x| {
            let w = b.ins().swiden_low(x);
            b.ins().fcvt_from_sint(F64X2, w)
        }),
        O::F64x2ConvertLowI32x4U => unary(t, I32X4, |b, x| {
            let w = b.ins().uwiden_low(x);
            b.ins().fcvt_from_uint(F64X2, w)
        }),
        O::F32x4DemoteF64x2Zero => unary(t, F64X2, |b, x| b.ins().fvdemote(x)),
        O::F64x2PromoteLowF32x4 => unary(t, F32X4, |b, x| b.ins().fvpromote_low(x)),
        _ => return false,
    }
    true
}
