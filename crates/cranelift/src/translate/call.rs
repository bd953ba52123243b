//! Direct and indirect calls.
//!
//! Every wasm function takes its own context and its caller's context
//! first. A call to a function of this module is a PC-relative call
//! resolved when the text section is assembled; a call to an import loads
//! the callee's code and context from the caller's context; `call_indirect`
//! checks the table bounds, null and the signature before calling;
//! `call_ref` checks only null (validation proved the reference's type).
//!
//! The `return_call` forms are the same calls as Cranelift's
//! `return_call`/`return_call_indirect`: the caller's frame is gone before
//! the callee runs, so endless tail recursion runs in constant stack. That
//! is why wasm functions use Cranelift's `tail` convention
//! (`signatures.rs`). Inside a `try_table`, a call is a `try_call` whose
//! exceptional edge goes to the landing pad (`exceptions.rs`); a tail call
//! leaves the `try_table` with its frame, as the proposal says.

use super::FuncTranslator;
use super::exceptions::Callee;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, SigRef, Value, types};
use keel_environ::{FuncIndex, TableIndex, TypeIndex, VMHOSTFUNC_MAGIC, vm_host_func_context};

fn call_args(t: &FuncTranslator<'_, '_>, callee_vmctx: Value, n: usize) -> Vec<Value> {
    let mut args = Vec::with_capacity(n + 2);
    args.push(callee_vmctx);
    args.push(t.env.vmctx);
    args.extend_from_slice(t.state.peekn(n));
    args
}

/// Whether a call returns to its caller or replaces the caller's frame.
#[derive(Copy, Clone, PartialEq, Eq)]
pub(super) enum CallKind {
    /// `call`, `call_indirect`, `call_ref`.
    Call,
    /// `return_call`, `return_call_indirect`, `return_call_ref`.
    Tail,
}

/// Emits a call of `code` with context `ctx` and signature `ty` on the top
/// `n` operands (a tail call ends the block).
fn indirect(
    t: &mut FuncTranslator<'_, '_>,
    kind: CallKind,
    ty: TypeIndex,
    code: Value,
    ctx: Value,
    n: usize,
) {
    let sig = t.env.wasm_sig_ref(&mut t.b, ty);
    let args = call_args(t, ctx, n);
    t.state.popn(n);
    match kind {
        CallKind::Call => {
            let results = t.call_may_throw(Callee::Indirect(sig, code), &args);
            t.state.stack.extend(results);
        }
        CallKind::Tail if t.epochs_checked_by_fault() => {
            tail_call_checked(t, sig, code, ctx, &args)
        }
        CallKind::Tail => {
            t.b.ins().return_call_indirect(sig, code, &args);
            t.state.reachable = false;
        }
    }
}

/// A tail call of a callee that may be a host function, with epochs
/// checked by signal: a thread may come back from host code only through
/// a page check (ARCHITECTURE.md, "epochs by signal"), and a host function
/// tail-called would return straight to this function's caller, past any
/// check. So a host callee is called, checked after and returned from; a
/// wasm callee (whose context is a `VMContext`) is tail-called, keeping
/// tail recursion in constant stack.
fn tail_call_checked(
    t: &mut FuncTranslator<'_, '_>,
    sig: SigRef,
    code: Value,
    ctx: Value,
    args: &[Value],
) {
    let magic = t.b.ins().load(
        types::I32,
        MemFlagsData::trusted().with_readonly(),
        ctx,
        vm_host_func_context::MAGIC as i32,
    );
    let is_host =
        t.b.ins()
            .icmp_imm_u(IntCC::Equal, magic, i64::from(VMHOSTFUNC_MAGIC));
    let host = t.b.create_block();
    let wasm = t.b.create_block();
    t.b.ins().brif(is_host, host, &[], wasm, &[]);
    t.b.seal_block(host);
    t.b.seal_block(wasm);
    t.b.switch_to_block(wasm);
    t.b.ins().return_call_indirect(sig, code, args);
    t.b.switch_to_block(host);
    let inst = t.b.ins().call_indirect(sig, code, args);
    let results = t.b.inst_results(inst).to_vec();
    t.epoch_check_by_fault();
    t.b.ins().return_(&results);
    t.state.reachable = false;
}

pub(super) fn call(t: &mut FuncTranslator<'_, '_>, kind: CallKind, function_index: u32) {
    let callee = FuncIndex::from_u32(function_index);
    let type_index = t.env.module.functions[callee].type_index;
    let n = t.env.module.types[type_index].params().len();
    if t.env.module.is_imported_func(callee) {
        let (code, ctx) = t.env.imported_callee(&mut t.b, callee);
        return indirect(t, kind, type_index, code, ctx, n);
    }
    let f = t.env.direct_callee(&mut t.b, callee);
    let args = call_args(t, t.env.vmctx, n);
    t.state.popn(n);
    match kind {
        CallKind::Call => {
            let results = t.call_may_throw(Callee::Direct(f), &args);
            t.state.stack.extend(results);
        }
        CallKind::Tail => {
            t.b.ins().return_call(f, &args);
            t.state.reachable = false;
        }
    }
}

pub(super) fn call_indirect(
    t: &mut FuncTranslator<'_, '_>,
    kind: CallKind,
    type_index: u32,
    table_index: u32,
) {
    let ty = TypeIndex::from_u32(type_index);
    let n = t.env.module.types[ty].params().len();
    let index = t.state.pop1();
    let func_ref = t
        .env
        .load_table_element(&mut t.b, TableIndex::from_u32(table_index), index);
    let (code, ctx) = t.env.checked_func_ref(&mut t.b, func_ref, ty);
    indirect(t, kind, ty, code, ctx, n);
}

pub(super) fn call_ref(t: &mut FuncTranslator<'_, '_>, kind: CallKind, type_index: u32) {
    let ty = TypeIndex::from_u32(type_index);
    let n = t.env.module.types[ty].params().len();
    let func_ref = t.state.pop1();
    let (code, ctx) = t.env.non_null_func_ref(&mut t.b, func_ref);
    indirect(t, kind, ty, code, ctx, n);
}
