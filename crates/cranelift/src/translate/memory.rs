//! Linear memory: loads, stores, `memory.size`, `memory.grow`.

use super::FuncTranslator;
use crate::CompileError;
use cranelift_codegen::ir::{InstBuilder, Type, Value, types};
use keel_environ::MemoryIndex;
use keel_environ::builtins::BuiltinFunctionIndex;
use wasmparser::{MemArg, Operator};

/// How a load widens what it reads.
#[derive(Copy, Clone)]
enum Widen {
    /// Reads the whole type.
    None,
    /// Reads `bits` and zero-extends.
    Unsigned(u8),
    /// Reads `bits` and sign-extends.
    Signed(u8),
}

/// Translates a memory operator; `Ok(false)` if `op` is not one.
pub(super) fn translate(
    t: &mut FuncTranslator<'_, '_>,
    op: &Operator<'_>,
) -> Result<bool, CompileError> {
    use Operator as O;
    use types::{F32, F64, I32, I64};
    match op {
        O::I32Load { memarg } => load(t, memarg, I32, Widen::None),
        O::I64Load { memarg } => load(t, memarg, I64, Widen::None),
        O::F32Load { memarg } => load(t, memarg, F32, Widen::None),
        O::F64Load { memarg } => load(t, memarg, F64, Widen::None),
        O::I32Load8S { memarg } => load(t, memarg, I32, Widen::Signed(8)),
        O::I32Load8U { memarg } => load(t, memarg, I32, Widen::Unsigned(8)),
        O::I32Load16S { memarg } => load(t, memarg, I32, Widen::Signed(16)),
        O::I32Load16U { memarg } => load(t, memarg, I32, Widen::Unsigned(16)),
        O::I64Load8S { memarg } => load(t, memarg, I64, Widen::Signed(8)),
        O::I64Load8U { memarg } => load(t, memarg, I64, Widen::Unsigned(8)),
        O::I64Load16S { memarg } => load(t, memarg, I64, Widen::Signed(16)),
        O::I64Load16U { memarg } => load(t, memarg, I64, Widen::Unsigned(16)),
        O::I64Load32S { memarg } => load(t, memarg, I64, Widen::Signed(32)),
        O::I64Load32U { memarg } => load(t, memarg, I64, Widen::Unsigned(32)),
        O::I32Store { memarg } | O::F32Store { memarg } => store(t, memarg, 32),
        O::I64Store { memarg } | O::F64Store { memarg } => store(t, memarg, 64),
        O::I32Store8 { memarg } | O::I64Store8 { memarg } => store(t, memarg, 8),
        O::I32Store16 { memarg } | O::I64Store16 { memarg } => store(t, memarg, 16),
        O::I64Store32 { memarg } => store(t, memarg, 32),
        O::MemorySize { mem } => memory_size(t, *mem),
        O::MemoryGrow { mem } => memory_grow(t, *mem),
        O::MemoryCopy { dst_mem, src_mem } => memory_copy(t, *dst_mem, *src_mem),
        O::MemoryFill { mem } => memory_fill(t, *mem),
        O::MemoryInit { data_index, mem } => memory_init(t, *data_index, *mem),
        O::DataDrop { data_index } => {
            let data = t.b.ins().iconst(types::I32, i64::from(*data_index));
            t.env
                .call_builtin(&mut t.b, BuiltinFunctionIndex::data_drop, &[data]);
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// The memory a memory instruction accesses. GC array targets do not
/// validate without the GC proposal, which Keel does not enable.
fn memory_of(memarg: &MemArg) -> MemoryIndex {
    match memarg.target {
        wasmparser::MemArgTarget::Memory(m) => MemoryIndex::from_u32(m),
        wasmparser::MemArgTarget::Array(_) => unreachable!("validated: no GC"),
    }
}

fn address(
    t: &mut FuncTranslator<'_, '_>,
    memarg: &MemArg,
    index: Value,
    bytes: u8,
) -> (Value, i32) {
    t.env
        .heap_address(&mut t.b, memory_of(memarg), index, memarg.offset, bytes)
}

fn load(t: &mut FuncTranslator<'_, '_>, memarg: &MemArg, ty: Type, widen: Widen) {
    let index = t.state.pop1();
    let bytes = match widen {
        Widen::None => ty.bytes() as u8,
        Widen::Unsigned(bits) | Widen::Signed(bits) => bits / 8,
    };
    let (addr, offset) = address(t, memarg, index, bytes);
    let flags = t.env.heap_flags();
    let ins = t.b.ins();
    let v = match widen {
        Widen::None => ins.load(ty, flags, addr, offset),
        Widen::Unsigned(8) => ins.uload8(ty, flags, addr, offset),
        Widen::Signed(8) => ins.sload8(ty, flags, addr, offset),
        Widen::Unsigned(16) => ins.uload16(ty, flags, addr, offset),
        Widen::Signed(16) => ins.sload16(ty, flags, addr, offset),
        Widen::Unsigned(_) => ins.uload32(flags, addr, offset),
        Widen::Signed(_) => ins.sload32(flags, addr, offset),
    };
    t.state.push1(v);
}

/// Stores the low `bits` of the value on top of the stack.
fn store(t: &mut FuncTranslator<'_, '_>, memarg: &MemArg, bits: u8) {
    let (index, value) = t.state.pop2();
    let (addr, offset) = address(t, memarg, index, bits / 8);
    let flags = t.env.heap_flags();
    let value_bits = t.b.func.dfg.value_type(value).bits();
    let ins = t.b.ins();
    match bits {
        8 => ins.istore8(flags, value, addr, offset),
        16 => ins.istore16(flags, value, addr, offset),
        32 if value_bits == 64 => ins.istore32(flags, value, addr, offset),
        _ => ins.store(flags, value, addr, offset),
    };
}

/// `memory.size`: pages as the memory's index type.
fn memory_size(t: &mut FuncTranslator<'_, '_>, mem: u32) {
    let mem = MemoryIndex::from_u32(mem);
    let length = t.env.memory_length(&mut t.b, mem);
    let pages = match t.env.module.memories[mem].page_size_log2 {
        0 => length,
        log2 => t.b.ins().ushr_imm_u(length, i64::from(log2)),
    };
    let pages = narrow_to_index(t, mem, pages);
    t.state.push1(pages);
}

/// `memory.grow`: the delta and the old size (or -1) as the memory's index
/// type.
fn memory_grow(t: &mut FuncTranslator<'_, '_>, mem: u32) {
    let delta = t.state.pop1();
    let delta = widen(t, delta);
    let index = MemoryIndex::from_u32(mem);
    let mem = t.b.ins().iconst(types::I32, i64::from(mem));
    let old = t
        .env
        .call_builtin(&mut t.b, BuiltinFunctionIndex::memory_grow, &[mem, delta]);
    t.env.trap_if_limiter_failed(&mut t.b, old);
    let old = narrow_to_index(t, index, old);
    t.state.push1(old);
}

/// `v`, an `i64`, as memory `mem`'s index type.
fn narrow_to_index(t: &mut FuncTranslator<'_, '_>, mem: MemoryIndex, v: Value) -> Value {
    let is_64 = t.env.module.memories[mem].memory64;
    super::env::narrow_to_index_type(&mut t.b, v, is_64)
}

fn widen(t: &mut FuncTranslator<'_, '_>, v: Value) -> Value {
    super::env::widen_to_i64(&mut t.b, v)
}

/// The bulk operations call builtins: they run at `memmove`/`memset`
/// speed, and check the whole range before touching any byte.
fn bulk(t: &mut FuncTranslator<'_, '_>, builtin: BuiltinFunctionIndex, args: &[BulkArg]) {
    let mut values = Vec::with_capacity(args.len());
    for a in args {
        values.push(match *a {
            BulkArg::Index(i) => t.b.ins().iconst(types::I32, i64::from(i)),
            BulkArg::Wide(v) => widen(t, v),
            BulkArg::Narrow(v) => v,
        });
    }
    let ok = t.env.call_builtin(&mut t.b, builtin, &values);
    t.b.ins().trapz(
        ok,
        crate::trap::trap_code(keel_environ::TrapKind::MemoryOutOfBounds),
    );
}

/// One argument of a bulk builtin.
enum BulkArg {
    /// A static index (memory, segment).
    Index(u32),
    /// An address or length, widened to 64 bits if it is an `i32`.
    Wide(Value),
    /// An operand passed as is.
    Narrow(Value),
}

fn memory_copy(t: &mut FuncTranslator<'_, '_>, dst_mem: u32, src_mem: u32) {
    let (dst, src, len) = t.state.pop3();
    use BulkArg::*;
    bulk(
        t,
        BuiltinFunctionIndex::memory_copy,
        &[
            Index(dst_mem),
            Wide(dst),
            Index(src_mem),
            Wide(src),
            Wide(len),
        ],
    );
}

fn memory_fill(t: &mut FuncTranslator<'_, '_>, mem: u32) {
    let (dst, value, len) = t.state.pop3();
    use BulkArg::*;
    bulk(
        t,
        BuiltinFunctionIndex::memory_fill,
        &[Index(mem), Wide(dst), Narrow(value), Wide(len)],
    );
}

fn memory_init(t: &mut FuncTranslator<'_, '_>, data: u32, mem: u32) {
    let (dst, src, len) = t.state.pop3();
    use BulkArg::*;
    bulk(
        t,
        BuiltinFunctionIndex::memory_init,
        &[Index(mem), Index(data), Wide(dst), Wide(src), Wide(len)],
    );
}
