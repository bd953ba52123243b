//! Direct and indirect calls.
//!
//! Every wasm function takes its own context and its caller's context
//! first. A call to a function of this module is a PC-relative call
//! resolved when the text section is assembled; a call to an import loads
//! the callee's code and context from the caller's context; `call_indirect`
//! checks the table bounds, null and the signature before calling;
//! `call_ref` checks only null (validation proved the reference's type).

use super::FuncTranslator;
use cranelift_codegen::ir::{InstBuilder, Value};
use keel_environ::{FuncIndex, TableIndex, TypeIndex};

fn push_results(t: &mut FuncTranslator<'_, '_>, call: cranelift_codegen::ir::Inst) {
    let results = t.b.inst_results(call);
    t.state.stack.extend_from_slice(results);
}

fn call_args(t: &FuncTranslator<'_, '_>, callee_vmctx: Value, n: usize) -> Vec<Value> {
    let mut args = Vec::with_capacity(n + 2);
    args.push(callee_vmctx);
    args.push(t.env.vmctx);
    args.extend_from_slice(t.state.peekn(n));
    args
}

pub(super) fn call(t: &mut FuncTranslator<'_, '_>, function_index: u32) {
    let callee = FuncIndex::from_u32(function_index);
    let type_index = t.env.module.functions[callee].type_index;
    let n = t.env.module.types[type_index].params().len();
    let inst = if t.env.module.is_imported_func(callee) {
        let (code, ctx) = t.env.imported_callee(&mut t.b, callee);
        let sig = t.env.wasm_sig_ref(&mut t.b, type_index);
        let args = call_args(t, ctx, n);
        t.b.ins().call_indirect(sig, code, &args)
    } else {
        let f = t.env.direct_callee(&mut t.b, callee);
        let args = call_args(t, t.env.vmctx, n);
        t.b.ins().call(f, &args)
    };
    t.state.popn(n);
    push_results(t, inst);
}

pub(super) fn call_indirect(t: &mut FuncTranslator<'_, '_>, type_index: u32, table_index: u32) {
    let ty = TypeIndex::from_u32(type_index);
    let n = t.env.module.types[ty].params().len();
    let index = t.state.pop1();
    let func_ref = t
        .env
        .load_table_element(&mut t.b, TableIndex::from_u32(table_index), index);
    let (code, ctx) = t.env.checked_func_ref(&mut t.b, func_ref, ty);
    let sig = t.env.wasm_sig_ref(&mut t.b, ty);
    let args = call_args(t, ctx, n);
    let inst = t.b.ins().call_indirect(sig, code, &args);
    t.state.popn(n);
    push_results(t, inst);
}

pub(super) fn call_ref(t: &mut FuncTranslator<'_, '_>, type_index: u32) {
    let ty = TypeIndex::from_u32(type_index);
    let n = t.env.module.types[ty].params().len();
    let func_ref = t.state.pop1();
    let (code, ctx) = t.env.non_null_func_ref(&mut t.b, func_ref);
    let sig = t.env.wasm_sig_ref(&mut t.b, ty);
    let args = call_args(t, ctx, n);
    let inst = t.b.ins().call_indirect(sig, code, &args);
    t.state.popn(n);
    push_results(t, inst);
}
