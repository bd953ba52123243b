//! Glue between calling conventions, generated with Cranelift.
//!
//! - [`array_call`]: host to wasm. Reads arguments from a `ValRaw` array,
//!   calls the wasm function directly, writes results back. One per escaping
//!   defined function, in the module's text section.
//! - [`wasm_to_array`]: wasm to host. Records its frame pointer in the store
//!   context (where a backtrace of a host error starts), spills arguments to
//!   a stack array and calls the host function's array entry. One per
//!   signature, compiled on demand by the engine.
//!
//! With fuel in a register (`Tunables::fuel_in_register`), these two are
//! where the count crosses between the store and the register: `array_call`
//! loads it into the register on the way in and stores it back on the way
//! out, restoring the host's value of the register (which the host's
//! convention says is preserved); `wasm_to_array` stores it before the host
//! function runs (which may read or set it) and loads it after.
//! - [`slow_path_call`]: wasm to a runtime builtin, preserving every
//!   register. The epoch checks' cold paths call builtins through
//!   it, so that a check inside a hot loop clobbers nothing and forces no
//!   value of the loop out of its register. One per engine.

use crate::signatures::{VAL_RAW_SIZE, array_call_signature, ir_type, wasm_signature};
use cranelift_codegen::ir::{
    self, ExtFuncData, ExternalName, InstBuilder, MemFlagsData, StackSlotData, StackSlotKind,
    UserExternalName, UserFuncName,
};
use cranelift_codegen::isa::TargetIsa;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use keel_environ::{
    FuncIndex, WasmFuncType, vm_func_ref, vm_host_func_context, vm_store_context, vmctx,
};

/// The host-to-wasm entry of `callee`, of type `ty`.
pub(crate) fn array_call(
    isa: &dyn TargetIsa,
    ty: &WasmFuncType,
    callee: FuncIndex,
    fuel_in_register: bool,
) -> ir::Function {
    let mut func = ir::Function::with_name_signature(
        UserFuncName::user(1, callee.as_u32()),
        array_call_signature(isa),
    );
    let mut ctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut func, &mut ctx);
    let ptr = isa.pointer_type();
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    b.seal_block(entry);
    let (callee_vmctx, caller_vmctx, values) = {
        let p = b.block_params(entry);
        (p[0], p[1], p[2])
    };
    let flags = MemFlagsData::trusted();
    let mut args = vec![callee_vmctx, caller_vmctx];
    for (i, t) in ty.params().iter().enumerate() {
        let v = b
            .ins()
            .load(ir_type(*t, ptr), flags, values, slot_offset(i));
        args.push(v);
    }
    let fuel = fuel_in_register.then(|| {
        let store_ctx = b.ins().load(
            ptr,
            flags.with_readonly(),
            callee_vmctx,
            vmctx::STORE_CONTEXT as i32,
        );
        let host_value = b.ins().get_pinned_reg(ptr);
        fuel_into_register(&mut b, store_ctx);
        (store_ctx, host_value)
    });
    let sig = b.import_signature(wasm_signature(isa, ty));
    let name = b.func.declare_imported_user_function(UserExternalName {
        namespace: 0,
        index: callee.as_u32(),
    });
    let f = b.import_function(ExtFuncData {
        name: ExternalName::user(name),
        signature: sig,
        colocated: true,
        patchable: false,
    });
    let call = b.ins().call(f, &args);
    let results = b.inst_results(call).to_vec();
    if let Some((store_ctx, host_value)) = fuel {
        fuel_out_of_register(&mut b, store_ctx);
        b.ins().set_pinned_reg(host_value);
    }
    for (i, r) in results.into_iter().enumerate() {
        b.ins().store(flags, r, values, slot_offset(i));
    }
    b.ins().return_(&[]);
    b.finalize(isa.frontend_config());
    func
}

/// The wasm-to-host trampoline for host functions of type `ty`.
pub(crate) fn wasm_to_array(
    isa: &dyn TargetIsa,
    ty: &WasmFuncType,
    fuel_in_register: bool,
) -> ir::Function {
    let mut func =
        ir::Function::with_name_signature(UserFuncName::user(2, 0), wasm_signature(isa, ty));
    let mut ctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut func, &mut ctx);
    let ptr = isa.pointer_type();
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    b.seal_block(entry);
    let params = b.block_params(entry).to_vec();
    let (host_ctx, caller_vmctx) = (params[0], params[1]);

    // Where a backtrace of an error from the host function starts.
    let fp = b.ins().get_frame_pointer(ptr);
    let trusted = MemFlagsData::trusted();
    let store_ctx = b.ins().load(
        ptr,
        trusted.with_readonly(),
        caller_vmctx,
        vmctx::STORE_CONTEXT as i32,
    );
    b.ins().store(
        trusted,
        fp,
        store_ctx,
        vm_store_context::LAST_WASM_EXIT_FP as i32,
    );

    let slots = ty.params().len().max(ty.results().len()).max(1);
    let slot = b.create_sized_stack_slot(StackSlotData::new(
        StackSlotKind::ExplicitSlot,
        slots as u32 * VAL_RAW_SIZE,
        4,
    ));
    for (i, v) in params[2..].iter().enumerate() {
        b.ins().stack_store(ptr, *v, slot, slot_offset(i));
    }
    let values = b.ins().stack_addr(ptr, slot, 0);
    let len = b.ins().iconst(ptr, slots as i64);
    let array_fn = b.ins().load(
        ptr,
        trusted.with_readonly(),
        host_ctx,
        (vm_host_func_context::FUNC_REF + vm_func_ref::ARRAY_CALL) as i32,
    );
    let sig = b.import_signature(array_call_signature(isa));
    if fuel_in_register {
        fuel_out_of_register(&mut b, store_ctx);
    }
    b.ins()
        .call_indirect(sig, array_fn, &[host_ctx, caller_vmctx, values, len]);
    if fuel_in_register {
        fuel_into_register(&mut b, store_ctx);
    }
    let results: Vec<_> = ty
        .results()
        .iter()
        .enumerate()
        .map(|(i, t)| {
            b.ins()
                .stack_load(ptr, ir_type(*t, ptr), slot, slot_offset(i))
        })
        .collect();
    b.ins().return_(&results);
    b.finalize(isa.frontend_config());
    func
}

/// Loads the store's fuel count into the fuel register.
fn fuel_into_register(b: &mut FunctionBuilder<'_>, store_ctx: ir::Value) {
    let fuel = b.ins().load(
        ir::types::I64,
        MemFlagsData::trusted(),
        store_ctx,
        vm_store_context::FUEL_CONSUMED as i32,
    );
    b.ins().set_pinned_reg(fuel);
}

/// Stores the fuel register's count in the store.
fn fuel_out_of_register(b: &mut FunctionBuilder<'_>, store_ctx: ir::Value) {
    let fuel = b.ins().get_pinned_reg(ir::types::I64);
    b.ins().store(
        MemFlagsData::trusted(),
        fuel,
        store_ctx,
        vm_store_context::FUEL_CONSUMED as i32,
    );
}

fn slot_offset(i: usize) -> i32 {
    i as i32 * VAL_RAW_SIZE as i32
}

/// The signature of [`slow_path_call`]: `(vmctx, builtin)`, every register
/// preserved, no results (the builtin leaves its answer in the store
/// context).
pub(crate) fn slow_path_signature(isa: &dyn TargetIsa) -> ir::Signature {
    let ptr = isa.pointer_type();
    let mut sig = ir::Signature::new(cranelift_codegen::isa::CallConv::PreserveAll);
    sig.params.push(ir::AbiParam::new(ptr));
    sig.params.push(ir::AbiParam::new(ptr));
    sig
}

/// Calls `builtin(vmctx)` (platform convention, one pointer result that is
/// discarded) from a caller that expects every register preserved: the
/// `preserve_all` convention makes this function save whatever the builtin
/// may clobber, integer and vector registers alike.
pub(crate) fn slow_path_call(isa: &dyn TargetIsa) -> ir::Function {
    let mut func =
        ir::Function::with_name_signature(UserFuncName::user(3, 0), slow_path_signature(isa));
    let mut ctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut func, &mut ctx);
    let ptr = isa.pointer_type();
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    b.seal_block(entry);
    let (vmctx, builtin) = {
        let p = b.block_params(entry);
        (p[0], p[1])
    };
    let mut sig = ir::Signature::new(isa.default_call_conv());
    sig.params.push(ir::AbiParam::new(ptr));
    sig.returns.push(ir::AbiParam::new(ir::types::I32));
    let sig = b.import_signature(sig);
    b.ins().call_indirect(sig, builtin, &[vmctx]);
    b.ins().return_(&[]);
    b.finalize(isa.frontend_config());
    func
}
