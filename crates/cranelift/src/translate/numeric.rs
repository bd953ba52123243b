//! Constants, integer and float arithmetic, comparisons, conversions.
//!
//! Almost every wasm numeric instruction is one Cranelift instruction with
//! the same semantics: `sdiv` traps on zero and overflow, `srem` gives 0 for
//! `INT_MIN % -1`, `fmin`/`fmax` propagate NaN and order zeros as wasm does,
//! `nearest` rounds ties to even, `fcvt_to_sint` traps and
//! `fcvt_to_sint_sat` saturates, shifts take their amount modulo the width.
//! The spec testsuite checks each of these.

use super::FuncTranslator;
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::immediates::{Ieee32, Ieee64};
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Type, Value, types};
use cranelift_frontend::FunctionBuilder;
use wasmparser::Operator;

type Builder<'a, 'b> = &'a mut FunctionBuilder<'b>;

fn unary(t: &mut FuncTranslator<'_, '_>, f: impl FnOnce(Builder<'_, '_>, Value) -> Value) {
    let x = t.state.pop1();
    let v = f(&mut t.b, x);
    t.state.push1(v);
}

fn binary(t: &mut FuncTranslator<'_, '_>, f: impl FnOnce(Builder<'_, '_>, Value, Value) -> Value) {
    let (x, y) = t.state.pop2();
    let v = f(&mut t.b, x, y);
    t.state.push1(v);
}

/// `i64.add128`/`i64.sub128`: two (low, high) pairs in, one out, computed
/// as one 128-bit operation (an add and an add-with-carry on x86-64).
fn wide_add_sub(
    t: &mut FuncTranslator<'_, '_>,
    f: impl FnOnce(Builder<'_, '_>, Value, Value) -> Value,
) {
    let (y_lo, y_hi) = t.state.pop2();
    let (x_lo, x_hi) = t.state.pop2();
    let x = t.b.ins().iconcat(x_lo, x_hi);
    let y = t.b.ins().iconcat(y_lo, y_hi);
    let r = f(&mut t.b, x, y);
    let (lo, hi) = t.b.ins().isplit(r);
    t.state.push1(lo);
    t.state.push1(hi);
}

/// `i64.mul_wide_s`/`_u`: the full 128-bit product of two i64, as (low,
/// high); `high` computes the upper half (signed or unsigned).
fn wide_mul(
    t: &mut FuncTranslator<'_, '_>,
    high: impl FnOnce(Builder<'_, '_>, Value, Value) -> Value,
) {
    let (x, y) = t.state.pop2();
    let lo = t.b.ins().imul(x, y);
    let hi = high(&mut t.b, x, y);
    t.state.push1(lo);
    t.state.push1(hi);
}

fn int_compare(t: &mut FuncTranslator<'_, '_>, cc: IntCC) {
    binary(t, |b, x, y| {
        let c = b.ins().icmp(cc, x, y);
        b.ins().uextend(types::I32, c)
    });
}

fn float_compare(t: &mut FuncTranslator<'_, '_>, cc: FloatCC) {
    binary(t, |b, x, y| {
        let c = b.ins().fcmp(cc, x, y);
        b.ins().uextend(types::I32, c)
    });
}

fn eqz(t: &mut FuncTranslator<'_, '_>) {
    unary(t, |b, x| {
        let c = b.ins().icmp_imm_s(IntCC::Equal, x, 0);
        b.ins().uextend(types::I32, c)
    });
}

/// Sign-extends the low `from` bits of an integer of type `to`.
fn extend_signed(t: &mut FuncTranslator<'_, '_>, from: Type, to: Type) {
    unary(t, |b, x| {
        let narrow = b.ins().ireduce(from, x);
        b.ins().sextend(to, narrow)
    });
}

fn push(t: &mut FuncTranslator<'_, '_>, v: Value) {
    t.state.push1(v);
}

/// Translates a numeric operator; `false` if `op` is not one.
pub(super) fn translate(t: &mut FuncTranslator<'_, '_>, op: &Operator<'_>) -> bool {
    use Operator as O;
    use types::{F32, F64, I8, I16, I32, I64};
    match op {
        // Constants.
        O::I32Const { value } => {
            let v = t.b.ins().iconst(I32, i64::from(*value));
            push(t, v)
        }
        O::I64Const { value } => {
            let v = t.b.ins().iconst(I64, *value);
            push(t, v)
        }
        O::F32Const { value } => {
            let v = t.b.ins().f32const(Ieee32::with_bits(value.bits()));
            push(t, v)
        }
        O::F64Const { value } => {
            let v = t.b.ins().f64const(Ieee64::with_bits(value.bits()));
            push(t, v)
        }

        // Integer tests and comparisons.
        O::I32Eqz | O::I64Eqz => eqz(t),
        O::I32Eq | O::I64Eq => int_compare(t, IntCC::Equal),
        O::I32Ne | O::I64Ne => int_compare(t, IntCC::NotEqual),
        O::I32LtS | O::I64LtS => int_compare(t, IntCC::SignedLessThan),
        O::I32LtU | O::I64LtU => int_compare(t, IntCC::UnsignedLessThan),
        O::I32GtS | O::I64GtS => int_compare(t, IntCC::SignedGreaterThan),
        O::I32GtU | O::I64GtU => int_compare(t, IntCC::UnsignedGreaterThan),
        O::I32LeS | O::I64LeS => int_compare(t, IntCC::SignedLessThanOrEqual),
        O::I32LeU | O::I64LeU => int_compare(t, IntCC::UnsignedLessThanOrEqual),
        O::I32GeS | O::I64GeS => int_compare(t, IntCC::SignedGreaterThanOrEqual),
        O::I32GeU | O::I64GeU => int_compare(t, IntCC::UnsignedGreaterThanOrEqual),

        // Float comparisons: ordered, so NaN compares false (and `ne` true).
        O::F32Eq | O::F64Eq => float_compare(t, FloatCC::Equal),
        O::F32Ne | O::F64Ne => float_compare(t, FloatCC::NotEqual),
        O::F32Lt | O::F64Lt => float_compare(t, FloatCC::LessThan),
        O::F32Gt | O::F64Gt => float_compare(t, FloatCC::GreaterThan),
        O::F32Le | O::F64Le => float_compare(t, FloatCC::LessThanOrEqual),
        O::F32Ge | O::F64Ge => float_compare(t, FloatCC::GreaterThanOrEqual),

        // Integer arithmetic.
        O::I32Clz | O::I64Clz => unary(t, |b, x| b.ins().clz(x)),
        O::I32Ctz | O::I64Ctz => unary(t, |b, x| b.ins().ctz(x)),
        O::I32Popcnt | O::I64Popcnt => unary(t, |b, x| b.ins().popcnt(x)),
        O::I32Add | O::I64Add => binary(t, |b, x, y| b.ins().iadd(x, y)),
        O::I32Sub | O::I64Sub => binary(t, |b, x, y| b.ins().isub(x, y)),
        O::I32Mul | O::I64Mul => binary(t, |b, x, y| b.ins().imul(x, y)),
        O::I32DivS | O::I64DivS => binary(t, |b, x, y| b.ins().sdiv(x, y)),
        O::I32DivU | O::I64DivU => binary(t, |b, x, y| b.ins().udiv(x, y)),
        O::I32RemS | O::I64RemS => binary(t, |b, x, y| b.ins().srem(x, y)),
        O::I32RemU | O::I64RemU => binary(t, |b, x, y| b.ins().urem(x, y)),
        O::I32And | O::I64And => binary(t, |b, x, y| b.ins().band(x, y)),
        O::I32Or | O::I64Or => binary(t, |b, x, y| b.ins().bor(x, y)),
        O::I32Xor | O::I64Xor => binary(t, |b, x, y| b.ins().bxor(x, y)),
        O::I32Shl | O::I64Shl => binary(t, |b, x, y| b.ins().ishl(x, y)),
        O::I32ShrS | O::I64ShrS => binary(t, |b, x, y| b.ins().sshr(x, y)),
        O::I32ShrU | O::I64ShrU => binary(t, |b, x, y| b.ins().ushr(x, y)),
        O::I32Rotl | O::I64Rotl => binary(t, |b, x, y| b.ins().rotl(x, y)),
        O::I32Rotr | O::I64Rotr => binary(t, |b, x, y| b.ins().rotr(x, y)),

        // Wide arithmetic: 128-bit values as (low, high) pairs of i64.
        O::I64Add128 => wide_add_sub(t, |b, x, y| b.ins().iadd(x, y)),
        O::I64Sub128 => wide_add_sub(t, |b, x, y| b.ins().isub(x, y)),
        O::I64MulWideS => wide_mul(t, |b, x, y| b.ins().smulhi(x, y)),
        O::I64MulWideU => wide_mul(t, |b, x, y| b.ins().umulhi(x, y)),

        // Float arithmetic.
        O::F32Abs | O::F64Abs => unary(t, |b, x| b.ins().fabs(x)),
        O::F32Neg | O::F64Neg => unary(t, |b, x| b.ins().fneg(x)),
        O::F32Ceil | O::F64Ceil => unary(t, |b, x| b.ins().ceil(x)),
        O::F32Floor | O::F64Floor => unary(t, |b, x| b.ins().floor(x)),
        O::F32Trunc | O::F64Trunc => unary(t, |b, x| b.ins().trunc(x)),
        O::F32Nearest | O::F64Nearest => unary(t, |b, x| b.ins().nearest(x)),
        O::F32Sqrt | O::F64Sqrt => unary(t, |b, x| b.ins().sqrt(x)),
        O::F32Add | O::F64Add => binary(t, |b, x, y| b.ins().fadd(x, y)),
        O::F32Sub | O::F64Sub => binary(t, |b, x, y| b.ins().fsub(x, y)),
        O::F32Mul | O::F64Mul => binary(t, |b, x, y| b.ins().fmul(x, y)),
        O::F32Div | O::F64Div => binary(t, |b, x, y| b.ins().fdiv(x, y)),
        O::F32Min | O::F64Min => binary(t, |b, x, y| b.ins().fmin(x, y)),
        O::F32Max | O::F64Max => binary(t, |b, x, y| b.ins().fmax(x, y)),
        O::F32Copysign | O::F64Copysign => binary(t, |b, x, y| b.ins().fcopysign(x, y)),

        // Conversions.
        O::I32WrapI64 => unary(t, |b, x| b.ins().ireduce(I32, x)),
        O::I64ExtendI32S => unary(t, |b, x| b.ins().sextend(I64, x)),
        O::I64ExtendI32U => unary(t, |b, x| b.ins().uextend(I64, x)),
        O::I32TruncF32S | O::I32TruncF64S => unary(t, |b, x| b.ins().fcvt_to_sint(I32, x)),
        O::I32TruncF32U | O::I32TruncF64U => unary(t, |b, x| b.ins().fcvt_to_uint(I32, x)),
        O::I64TruncF32S | O::I64TruncF64S => unary(t, |b, x| b.ins().fcvt_to_sint(I64, x)),
        O::I64TruncF32U | O::I64TruncF64U => unary(t, |b, x| b.ins().fcvt_to_uint(I64, x)),
        O::I32TruncSatF32S | O::I32TruncSatF64S => {
            unary(t, |b, x| b.ins().fcvt_to_sint_sat(I32, x))
        }
        O::I32TruncSatF32U | O::I32TruncSatF64U => {
            unary(t, |b, x| b.ins().fcvt_to_uint_sat(I32, x))
        }
        O::I64TruncSatF32S | O::I64TruncSatF64S => {
            unary(t, |b, x| b.ins().fcvt_to_sint_sat(I64, x))
        }
        O::I64TruncSatF32U | O::I64TruncSatF64U => {
            unary(t, |b, x| b.ins().fcvt_to_uint_sat(I64, x))
        }
        O::F32ConvertI32S | O::F32ConvertI64S => unary(t, |b, x| b.ins().fcvt_from_sint(F32, x)),
        O::F32ConvertI32U | O::F32ConvertI64U => unary(t, |b, x| b.ins().fcvt_from_uint(F32, x)),
        O::F64ConvertI32S | O::F64ConvertI64S => unary(t, |b, x| b.ins().fcvt_from_sint(F64, x)),
        O::F64ConvertI32U | O::F64ConvertI64U => unary(t, |b, x| b.ins().fcvt_from_uint(F64, x)),
        O::F32DemoteF64 => unary(t, |b, x| b.ins().fdemote(F32, x)),
        O::F64PromoteF32 => unary(t, |b, x| b.ins().fpromote(F64, x)),
        O::I32ReinterpretF32 => unary(t, |b, x| b.ins().bitcast(I32, MemFlagsData::new(), x)),
        O::I64ReinterpretF64 => unary(t, |b, x| b.ins().bitcast(I64, MemFlagsData::new(), x)),
        O::F32ReinterpretI32 => unary(t, |b, x| b.ins().bitcast(F32, MemFlagsData::new(), x)),
        O::F64ReinterpretI64 => unary(t, |b, x| b.ins().bitcast(F64, MemFlagsData::new(), x)),

        // Sign extension.
        O::I32Extend8S => extend_signed(t, I8, I32),
        O::I32Extend16S => extend_signed(t, I16, I32),
        O::I64Extend8S => extend_signed(t, I8, I64),
        O::I64Extend16S => extend_signed(t, I16, I64),
        O::I64Extend32S => extend_signed(t, I32, I64),

        _ => return false,
    }
    true
}
