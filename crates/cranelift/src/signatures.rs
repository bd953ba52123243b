//! Calling conventions of generated code.
//!
//! - A wasm function: `(vmctx, caller_vmctx, params...) -> results` in
//!   Cranelift's `tail` convention, which makes `return_call` a real tail
//!   call. On x86-64 it passes the first six integer and eight float
//!   arguments and returns the first result in the registers the C
//!   convention uses; it differs in popping stack arguments in the callee
//!   and in returning further results in registers. So the host calls a
//!   wasm function directly through an `extern "C"` function pointer only
//!   on x86-64 Unix, when every argument travels in a register and there
//!   is at most one result (`keel`'s `func/typed.rs`; on aarch64 the
//!   convention starts at `x2`); other calls go through the array-call
//!   entry.
//! - An array-call entry: `(callee_vmctx, caller_vmctx, values: *mut ValRaw,
//!   len: usize)`: arguments in, results out, through 16-byte slots.

use cranelift_codegen::ir::{AbiParam, ArgumentPurpose, Signature, Type, types};
use cranelift_codegen::isa::{CallConv, TargetIsa};
use keel_environ::{WasmFuncType, WasmValType};

/// The Cranelift type of a wasm value. References are host pointers;
/// `v128` is `i8x16` and bitcast per instruction.
pub fn ir_type(ty: WasmValType, pointer_type: Type) -> Type {
    match ty {
        WasmValType::I32 => types::I32,
        WasmValType::I64 => types::I64,
        WasmValType::F32 => types::F32,
        WasmValType::F64 => types::F64,
        WasmValType::V128 => types::I8X16,
        WasmValType::Ref(_) => pointer_type,
    }
}

/// The signature of a wasm function of type `ty`.
pub fn wasm_signature(isa: &dyn TargetIsa, ty: &WasmFuncType) -> Signature {
    let ptr = isa.pointer_type();
    let mut sig = Signature::new(CallConv::Tail);
    sig.params
        .push(AbiParam::special(ptr, ArgumentPurpose::VMContext));
    sig.params.push(AbiParam::new(ptr));
    sig.params
        .extend(ty.params().iter().map(|t| AbiParam::new(ir_type(*t, ptr))));
    sig.returns
        .extend(ty.results().iter().map(|t| AbiParam::new(ir_type(*t, ptr))));
    sig
}

/// The signature of every array-call entry.
pub fn array_call_signature(isa: &dyn TargetIsa) -> Signature {
    let ptr = isa.pointer_type();
    let mut sig = Signature::new(isa.default_call_conv());
    sig.params.extend([AbiParam::new(ptr); 4]);
    sig
}

/// Size of one `ValRaw` slot of an array call.
pub const VAL_RAW_SIZE: u32 = 16;
