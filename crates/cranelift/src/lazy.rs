//! Lazy compilation: a text of stubs up front, each function compiled on
//! its own at its first call.
//!
//! The text [`Compiler::compile_lazy_module`] makes holds, for each defined
//! function, a stub where the function's body would be, then the array-call
//! trampolines (which call the stubs). Everything that enters a function
//! (a call from wasm, a table, the host) enters its stub, so nothing but
//! the stub's slot changes when the function is compiled:
//!
//! ```text
//! stub i:        jmp [rip + slot i]        ; slot i: the body, once compiled
//! stub i + 6:    mov r11d, i               ; until then slot i points here
//!                lea r10, [rip + entry slot]
//!                jmp [r10]                 ; the runtime's lazy entry
//! ```
//!
//! (The entry learns its module from the address of the entry slot: a
//! function's context is not always its first argument, as a function
//! returning several values takes its return area first.)
//!
//! The slots follow the text, on a page of their own (writable, where the
//! text is not): slot `i` at `slots_offset + 8 * i`, the entry slot after
//! the last. The runtime's entry saves the argument registers, compiles
//! function `r11d` of the module whose slots `r10` points into
//! ([`Compiler::compile_function`]), points its slot at the
//! body and jumps there. A body's calls are left as relocations: the
//! runtime points each at its callee's body if that is compiled already,
//! else at the callee's stub (a direct call and an indirect jump, which
//! the branch predictor learns).

use crate::compile::{CompiledFunction, Scratch, Target};
use crate::{CompileError, CompiledModule, Compiler, trampolines};
use cranelift_codegen::binemit::Reloc;
use keel_environ::{
    CallRelocation, FuncIndex, FunctionBodyData, FunctionCode, LAZY_PAGE, LAZY_STUB_ENTRY,
    LoadRelocation, Module, VMOffsets,
};

const STUB_LEN: usize = 22;

/// A module's text for lazy compilation.
pub struct LazyText {
    /// The stubs and trampolines; `info.functions[i].wasm_call` is stub `i`.
    pub compiled: CompiledModule,
    /// Where the slots start, from the start of the text (a multiple of
    /// [`LAZY_PAGE`]): slot `i` at `slots_offset + 8 * i`, then the slot of
    /// the runtime's lazy entry.
    pub slots_offset: u32,
}

impl Compiler {
    /// Whether this compiler's target (the host) can compile lazily: the
    /// stubs are x86-64 code.
    pub fn supports_lazy_compilation(&self) -> bool {
        cfg!(target_arch = "x86_64")
    }

    /// The stubs and array-call trampolines of `module`, compiling no
    /// function body (see the module docs). The bodies must have been
    /// validated already.
    pub fn compile_lazy_module(&self, module: &Module) -> Result<LazyText, CompileError> {
        if !self.supports_lazy_compilation() {
            return Err(CompileError::Isa(
                "lazy compilation is implemented for x86-64 only".into(),
            ));
        }
        let mut functions: Vec<CompiledFunction> = (0..module.num_defined_funcs())
            .map(|i| {
                let index =
                    u32::try_from(i).map_err(|_| CompileError::Isa("too many functions".into()))?;
                let mut code = vec![0xff, 0x25, 0, 0, 0, 0, 0x41, 0xbb];
                code.extend(index.to_le_bytes());
                code.extend([0x4c, 0x8d, 0x15, 0, 0, 0, 0, 0x41, 0xff, 0x22]);
                debug_assert_eq!(code.len(), STUB_LEN);
                Ok(CompiledFunction {
                    code,
                    alignment: 16,
                    relocs: Vec::new(),
                    traps: Vec::new(),
                    address_map: Vec::new(),
                    handlers: Vec::new(),
                })
            })
            .collect::<Result<_, CompileError>>()?;
        functions.extend(self.array_trampolines(module)?);
        let CompiledModule { mut text, info } = self.link(module, functions)?;
        let slots_offset = text.len().next_multiple_of(LAZY_PAGE as usize);
        let entry_slot = slots_offset + 8 * module.num_defined_funcs();
        for (i, f) in info.functions.values().enumerate() {
            let stub = f.wasm_call.start as usize;
            patch_rel32(
                &mut text,
                stub + 2,
                slots_offset + 8 * i,
                stub + LAZY_STUB_ENTRY as usize,
            )?;
            patch_rel32(&mut text, stub + 15, entry_slot, stub + 19)?;
        }
        let slots_offset = u32::try_from(slots_offset)
            .map_err(|_| CompileError::Isa("text section over 4 GiB".into()))?;
        Ok(LazyText {
            compiled: CompiledModule { text, info },
            slots_offset,
        })
    }

    /// Compiles one function of `module`, for lazy compilation: its calls
    /// to other functions are left as relocations against their stubs.
    pub fn compile_function(
        &self,
        module: &Module,
        offsets: &VMOffsets,
        func_index: FuncIndex,
        body: FunctionBodyData<'_>,
    ) -> Result<FunctionCode, CompileError> {
        // Contexts are reused across a thread's compilations, as eager
        // compilation's workers reuse theirs: a fresh one costs more than
        // compiling a small function.
        thread_local! {
            static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
        }
        let f = SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => self.compile_body(&mut scratch, module, offsets, func_index, body),
            Err(_) => self.compile_body(&mut Scratch::default(), module, offsets, func_index, body),
        })?;
        let mut out = FunctionCode {
            code: f.code,
            alignment: f.alignment,
            traps: f.traps,
            address_map: f.address_map,
            handlers: f.handlers,
            ..FunctionCode::default()
        };
        for (offset, kind, target, addend) in f.relocs {
            match (target, kind) {
                (Target::Func(callee), Reloc::X86CallPCRel4) => {
                    let callee = module.defined_func_index(callee).ok_or_else(|| {
                        CompileError::Isa(format!(
                            "relocation against imported function {callee:?}"
                        ))
                    })?;
                    out.calls.push(CallRelocation {
                        offset,
                        callee,
                        addend,
                    });
                }
                (Target::LibCall(target), Reloc::Abs8) => out.libcalls.push(LoadRelocation {
                    offset,
                    target,
                    addend,
                }),
                (_, kind) => {
                    return Err(CompileError::Isa(format!(
                        "unsupported relocation {kind:?}"
                    )));
                }
            }
        }
        Ok(out)
    }
}

impl Compiler {
    /// The text of `module` with every function compiled: `functions` (the
    /// bodies [`Compiler::compile_function`] made, in definition order)
    /// laid out as eager compilation lays them out, with the array-call
    /// trampolines compiled anew. What serializing a lazily compiled
    /// module writes.
    pub fn link_compiled_functions(
        &self,
        module: &Module,
        functions: Vec<FunctionCode>,
    ) -> Result<CompiledModule, CompileError> {
        if functions.len() != module.num_defined_funcs() {
            return Err(CompileError::Isa(
                "a body per defined function is needed".into(),
            ));
        }
        let mut compiled: Vec<CompiledFunction> = functions
            .into_iter()
            .map(|f| {
                let calls = f.calls.iter().map(|c| {
                    let target = Target::Func(module.func_index(c.callee));
                    (c.offset, Reloc::X86CallPCRel4, target, c.addend)
                });
                let libcalls = f
                    .libcalls
                    .iter()
                    .map(|r| (r.offset, Reloc::Abs8, Target::LibCall(r.target), r.addend));
                CompiledFunction {
                    relocs: calls.chain(libcalls).collect(),
                    code: f.code,
                    alignment: f.alignment,
                    traps: f.traps,
                    address_map: f.address_map,
                    handlers: f.handlers,
                }
            })
            .collect();
        compiled.extend(self.array_trampolines(module)?);
        self.link(module, compiled)
    }

    /// The array-call trampolines of the functions that escape, in
    /// definition order (as `link` expects them after the bodies).
    fn array_trampolines(&self, module: &Module) -> Result<Vec<CompiledFunction>, CompileError> {
        let mut scratch = Scratch::default();
        let mut out = Vec::new();
        for (i, decl) in module.functions.iter() {
            if module.defined_func_index(i).is_some() && decl.escapes {
                let func = trampolines::array_call(
                    &*self.isa,
                    module.func_type(i),
                    i,
                    self.settings.tunables.fuel_in_register,
                );
                out.push(self.finish_function(&mut scratch, func, i.as_u32())?);
            }
        }
        Ok(out)
    }
}

/// Writes at `at` the 32-bit displacement from `from` to `to`.
fn patch_rel32(text: &mut [u8], at: usize, to: usize, from: usize) -> Result<(), CompileError> {
    let disp = i32::try_from(to as i64 - from as i64)
        .map_err(|_| CompileError::Isa("stub slot out of reach".into()))?;
    text.get_mut(at..at + 4)
        .ok_or_else(|| CompileError::Isa("stub outside the text".into()))?
        .copy_from_slice(&disp.to_le_bytes());
    Ok(())
}

/// The defined function a stub's slot belongs to, for tests.
#[cfg(test)]
fn stub_index(text: &[u8], stub: usize) -> u32 {
    u32::from_le_bytes(text[stub + 8..stub + 12].try_into().unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CompilerSettings;
    use keel_environ::ModuleParser;

    #[test]
    fn stubs_jump_through_their_slots() {
        let wasm = wat::parse_str(
            r#"(module (func (export "a") (result i32) (call $b)) (func $b (result i32) (i32.const 7)))"#,
        )
        .unwrap();
        let compiler = Compiler::new(CompilerSettings::default()).unwrap();
        if !compiler.supports_lazy_compilation() {
            return;
        }
        let t = ModuleParser::new(Default::default()).parse(&wasm).unwrap();
        let lazy = compiler.compile_lazy_module(&t.module).unwrap();
        let text = &lazy.compiled.text;
        let slots = lazy.slots_offset as usize;
        assert_eq!(slots % LAZY_PAGE as usize, 0);
        assert!(slots >= text.len());
        for (i, f) in lazy.compiled.info.functions.values().enumerate() {
            let stub = f.wasm_call.start as usize;
            assert_eq!(stub_index(text, stub), i as u32);
            let disp = i32::from_le_bytes(text[stub + 2..stub + 6].try_into().unwrap());
            assert_eq!(stub as i64 + 6 + i64::from(disp), (slots + 8 * i) as i64);
            let disp = i32::from_le_bytes(text[stub + 15..stub + 19].try_into().unwrap());
            assert_eq!(stub as i64 + 19 + i64::from(disp), (slots + 16) as i64);
        }
        // The exported function's trampoline is there; no body is.
        assert!(
            lazy.compiled
                .info
                .functions
                .values()
                .next()
                .unwrap()
                .array_call
                .is_some()
        );
        assert_eq!(lazy.compiled.info.tables.num_traps(), 0);
    }
}
