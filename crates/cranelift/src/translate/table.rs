//! Tables and references: `table.*`, `elem.drop`, `ref.null`,
//! `ref.is_null`, `ref.func`, `ref.as_non_null`.
//!
//! A reference is a host pointer: a `VMFuncRef` for `funcref`, the host
//! value's box for `externref`, 0 for null. Operations that may grow or
//! copy a table call builtins; element access is inline.

use super::FuncTranslator;
use crate::trap::trap_code;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, Value, types};
use keel_environ::builtins::BuiltinFunctionIndex as B;
use keel_environ::{FuncIndex, TableIndex, TrapKind, vm_function_import};
use wasmparser::Operator;

/// Translates a table or reference operator; `false` if `op` is not one.
pub(super) fn translate(t: &mut FuncTranslator<'_, '_>, op: &Operator<'_>) -> bool {
    use Operator as O;
    match op {
        O::TableGet { table } => table_get(t, *table),
        O::TableSet { table } => table_set(t, *table),
        O::TableSize { table } => table_size(t, *table),
        O::TableGrow { table } => table_grow(t, *table),
        O::TableFill { table } => table_fill(t, *table),
        O::TableCopy {
            dst_table,
            src_table,
        } => table_copy(t, *dst_table, *src_table),
        O::TableInit { elem_index, table } => table_init(t, *elem_index, *table),
        O::ElemDrop { elem_index } => {
            let elem = i32_const(t, *elem_index);
            t.env.call_builtin(&mut t.b, B::elem_drop, &[elem]);
        }
        O::RefNull { .. } => {
            let v = t.b.ins().iconst(t.env.pointer_type, 0);
            t.state.push1(v);
        }
        O::RefIsNull => {
            let r = t.state.pop1();
            let c = t.b.ins().icmp_imm_s(IntCC::Equal, r, 0);
            let v = t.b.ins().uextend(types::I32, c);
            t.state.push1(v);
        }
        O::RefFunc { function_index } => ref_func(t, FuncIndex::from_u32(*function_index)),
        O::RefAsNonNull => {
            let r = *t
                .state
                .peekn(1)
                .first()
                .expect("validated: a reference operand");
            t.b.ins().trapz(r, trap_code(TrapKind::NullReference));
        }
        _ => return false,
    }
    true
}

fn i32_const(t: &mut FuncTranslator<'_, '_>, v: u32) -> Value {
    t.b.ins().iconst(types::I32, i64::from(v))
}

fn widen(t: &mut FuncTranslator<'_, '_>, v: Value) -> Value {
    super::env::widen_to_i64(&mut t.b, v)
}

/// `v`, an `i64`, as table `table`'s index type.
fn narrow_to_index(t: &mut FuncTranslator<'_, '_>, table: TableIndex, v: Value) -> Value {
    let is_64 = t.env.module.tables[table].table64;
    super::env::narrow_to_index_type(&mut t.b, v, is_64)
}

/// Traps with `kind` unless a builtin reported success.
fn trap_unless_ok(t: &mut FuncTranslator<'_, '_>, ok: Value, kind: TrapKind) {
    t.b.ins().trapz(ok, trap_code(kind));
}

fn table_get(t: &mut FuncTranslator<'_, '_>, table: u32) {
    let index = t.state.pop1();
    let v = t
        .env
        .load_table_element(&mut t.b, TableIndex::from_u32(table), index);
    t.state.push1(v);
}

fn table_set(t: &mut FuncTranslator<'_, '_>, table: u32) {
    let (index, value) = t.state.pop2();
    t.env
        .store_table_element(&mut t.b, TableIndex::from_u32(table), index, value);
}

fn table_size(t: &mut FuncTranslator<'_, '_>, table: u32) {
    let table = TableIndex::from_u32(table);
    let len = t.env.table_size(&mut t.b, table);
    let v = narrow_to_index(t, table, len);
    t.state.push1(v);
}

fn table_grow(t: &mut FuncTranslator<'_, '_>, table: u32) {
    let (init, delta) = t.state.pop2();
    let index = TableIndex::from_u32(table);
    let table = i32_const(t, table);
    let delta = widen(t, delta);
    let old = t
        .env
        .call_builtin(&mut t.b, B::table_grow, &[table, delta, init]);
    t.env.trap_if_limiter_failed(&mut t.b, old);
    let v = narrow_to_index(t, index, old);
    t.state.push1(v);
}

fn table_fill(t: &mut FuncTranslator<'_, '_>, table: u32) {
    let (dst, value, len) = t.state.pop3();
    let table = i32_const(t, table);
    let (dst, len) = (widen(t, dst), widen(t, len));
    let ok = t
        .env
        .call_builtin(&mut t.b, B::table_fill, &[table, dst, value, len]);
    trap_unless_ok(t, ok, TrapKind::TableOutOfBounds);
}

fn table_copy(t: &mut FuncTranslator<'_, '_>, dst_table: u32, src_table: u32) {
    let (dst, src, len) = t.state.pop3();
    let dst_table = i32_const(t, dst_table);
    let src_table = i32_const(t, src_table);
    let (dst, src, len) = (widen(t, dst), widen(t, src), widen(t, len));
    let ok = t.env.call_builtin(
        &mut t.b,
        B::table_copy,
        &[dst_table, src_table, dst, src, len],
    );
    trap_unless_ok(t, ok, TrapKind::TableOutOfBounds);
}

fn table_init(t: &mut FuncTranslator<'_, '_>, elem: u32, table: u32) {
    let (dst, src, len) = t.state.pop3();
    let table = i32_const(t, table);
    let elem = i32_const(t, elem);
    let (dst, src, len) = (widen(t, dst), widen(t, src), widen(t, len));
    let ok = t
        .env
        .call_builtin(&mut t.b, B::table_init, &[table, elem, dst, src, len]);
    trap_unless_ok(t, ok, TrapKind::TableOutOfBounds);
}

/// `ref.func`: a defined function's funcref lives in this context, written
/// when first needed (so through a builtin); an imported one's pointer is
/// stored with the import.
fn ref_func(t: &mut FuncTranslator<'_, '_>, f: FuncIndex) {
    let v = match t.env.module.defined_func_index(f) {
        Some(_) => {
            let index = i32_const(t, f.as_u32());
            t.env.call_builtin(&mut t.b, B::ref_func, &[index])
        }
        None => t.env.load_vmctx_readonly(
            &mut t.b,
            t.env.offsets.imported_function(f) + vm_function_import::FUNC_REF,
        ),
    };
    t.state.push1(v);
}
