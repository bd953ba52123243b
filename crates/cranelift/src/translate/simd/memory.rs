//! SIMD loads and stores: whole vectors, widening loads, splats, zero-
//! extended loads, and single lanes.

use super::{FuncTranslator, pop_as, push_vector};
use cranelift_codegen::ir::{InstBuilder, Type, Value, types};
use keel_environ::MemoryIndex;
use wasmparser::{MemArg, Operator};

/// Translates a SIMD memory operator; `false` if `op` is not one.
pub(super) fn translate(t: &mut FuncTranslator<'_, '_>, op: &Operator<'_>) -> bool {
    use Operator as O;
    use types::*;
    match op {
        O::V128Load { memarg } => {
            let v = load(t, memarg, I8X16);
            push_vector(t, v);
        }
        O::V128Load8x8S { memarg } => widening(t, memarg, |b, f, a, o| b.ins().sload8x8(f, a, o)),
        O::V128Load8x8U { memarg } => widening(t, memarg, |b, f, a, o| b.ins().uload8x8(f, a, o)),
        O::V128Load16x4S { memarg } => widening(t, memarg, |b, f, a, o| b.ins().sload16x4(f, a, o)),
        O::V128Load16x4U { memarg } => widening(t, memarg, |b, f, a, o| b.ins().uload16x4(f, a, o)),
        O::V128Load32x2S { memarg } => widening(t, memarg, |b, f, a, o| b.ins().sload32x2(f, a, o)),
        O::V128Load32x2U { memarg } => widening(t, memarg, |b, f, a, o| b.ins().uload32x2(f, a, o)),
        O::V128Load8Splat { memarg } => splat(t, memarg, I8, I8X16),
        O::V128Load16Splat { memarg } => splat(t, memarg, I16, I16X8),
        O::V128Load32Splat { memarg } => splat(t, memarg, I32, I32X4),
        O::V128Load64Splat { memarg } => splat(t, memarg, I64, I64X2),
        O::V128Load32Zero { memarg } => {
            let s = load(t, memarg, I32);
            let v = t.b.ins().scalar_to_vector(I32X4, s);
            push_vector(t, v);
        }
        O::V128Load64Zero { memarg } => {
            let s = load(t, memarg, I64);
            let v = t.b.ins().scalar_to_vector(I64X2, s);
            push_vector(t, v);
        }
        O::V128Store { memarg } => {
            let v = t.state.pop1();
            store(t, memarg, v);
        }
        O::V128Load8Lane { memarg, lane } => load_lane(t, memarg, *lane, I8, I8X16),
        O::V128Load16Lane { memarg, lane } => load_lane(t, memarg, *lane, I16, I16X8),
        O::V128Load32Lane { memarg, lane } => load_lane(t, memarg, *lane, I32, I32X4),
        O::V128Load64Lane { memarg, lane } => load_lane(t, memarg, *lane, I64, I64X2),
        O::V128Store8Lane { memarg, lane } => store_lane(t, memarg, *lane, I8X16),
        O::V128Store16Lane { memarg, lane } => store_lane(t, memarg, *lane, I16X8),
        O::V128Store32Lane { memarg, lane } => store_lane(t, memarg, *lane, I32X4),
        O::V128Store64Lane { memarg, lane } => store_lane(t, memarg, *lane, I64X2),
        _ => return false,
    }
    true
}

fn memory_of(memarg: &MemArg) -> MemoryIndex {
    match memarg.target {
        wasmparser::MemArgTarget::Memory(m) => MemoryIndex::from_u32(m),
        wasmparser::MemArgTarget::Array(_) => unreachable!("validated: no GC"),
    }
}

/// Pops an address and computes where `bytes` bytes live.
fn address(t: &mut FuncTranslator<'_, '_>, memarg: &MemArg, bytes: u8) -> (Value, i32) {
    let index = t.state.pop1();
    t.env
        .heap_address(&mut t.b, memory_of(memarg), index, memarg.offset, bytes)
}

/// Pops an address and loads a value of type `ty`.
fn load(t: &mut FuncTranslator<'_, '_>, memarg: &MemArg, ty: Type) -> Value {
    let (addr, offset) = address(t, memarg, ty.bytes() as u8);
    let flags = t.env.heap_flags();
    t.b.ins().load(ty, flags, addr, offset)
}

/// Pops an address and stores `value` there.
fn store(t: &mut FuncTranslator<'_, '_>, memarg: &MemArg, value: Value) {
    let bytes = t.b.func.dfg.value_type(value).bytes() as u8;
    let (addr, offset) = address(t, memarg, bytes);
    let flags = t.env.heap_flags();
    t.b.ins().store(flags, value, addr, offset);
}

/// A load of 8 bytes widened to 16.
fn widening(
    t: &mut FuncTranslator<'_, '_>,
    memarg: &MemArg,
    f: impl FnOnce(
        &mut cranelift_frontend::FunctionBuilder<'_>,
        cranelift_codegen::ir::MemFlagsData,
        Value,
        i32,
    ) -> Value,
) {
    let (addr, offset) = address(t, memarg, 8);
    let flags = t.env.heap_flags();
    let v = f(&mut t.b, flags, addr, offset);
    push_vector(t, v);
}

fn splat(t: &mut FuncTranslator<'_, '_>, memarg: &MemArg, scalar: Type, vector: Type) {
    let s = load(t, memarg, scalar);
    let v = t.b.ins().splat(vector, s);
    push_vector(t, v);
}

fn load_lane(
    t: &mut FuncTranslator<'_, '_>,
    memarg: &MemArg,
    lane: u8,
    scalar: Type,
    vector: Type,
) {
    let v = pop_as(t, vector);
    let s = load(t, memarg, scalar);
    let r = t.b.ins().insertlane(v, s, lane);
    push_vector(t, r);
}

fn store_lane(t: &mut FuncTranslator<'_, '_>, memarg: &MemArg, lane: u8, vector: Type) {
    let v = pop_as(t, vector);
    let s = t.b.ins().extractlane(v, lane);
    store(t, memarg, s);
}
