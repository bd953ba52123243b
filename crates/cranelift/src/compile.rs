//! The compilation driver: functions in parallel, then one text section.

use crate::signatures::wasm_signature;
use crate::trampolines;
use crate::translate::env::FuncEnvironment;
use crate::translate::{FuncTranslator, TranslatorBuffers};
use crate::trap::trap_kind;
use crate::{CompileError, CompiledModule, Compiler};
use cranelift_codegen::binemit::Reloc;
use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir::{self, ExternalName, UserFuncName};
use cranelift_codegen::{Context, FinalizedMachExceptionHandler, FinalizedRelocTarget};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use keel_environ::{
    AddressMapEntry, CodeTables, CompiledFunctionInfo, CompiledModuleInfo, DefinedFuncIndex,
    FuncIndex, FunctionBodyData, FunctionLoc, HandlerSite, LibCall, LoadRelocation, Module,
    ModuleTranslation, TrapSite, VMOffsets, WasmFuncType,
};
use rayon::prelude::*;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// What a call or address in compiled code refers to.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target {
    /// A function of this module.
    Func(FuncIndex),
    /// A runtime-provided math routine.
    LibCall(LibCall),
}

/// One compiled function, before layout.
pub(crate) struct CompiledFunction {
    pub(crate) code: Vec<u8>,
    pub(crate) alignment: u32,
    pub(crate) relocs: Vec<(u32, Reloc, Target, i64)>,
    pub(crate) traps: Vec<TrapSite>,
    pub(crate) address_map: Vec<AddressMapEntry>,
    pub(crate) handlers: Vec<HandlerSite>,
}

/// Per-thread reusable state.
pub(crate) struct Scratch {
    ctx: Context,
    builder: FunctionBuilderContext,
    buffers: TranslatorBuffers,
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch {
            ctx: Context::new(),
            builder: FunctionBuilderContext::new(),
            buffers: TranslatorBuffers::default(),
        }
    }
}

/// Work items, compiled independently.
enum Job<'data> {
    Body(DefinedFuncIndex, FunctionBodyData<'data>),
    ArrayTrampoline(DefinedFuncIndex),
}

impl Compiler {
    /// Validates and compiles every function of `translation`.
    pub fn compile_module(
        &self,
        translation: ModuleTranslation<'_>,
    ) -> Result<CompiledModule, CompileError> {
        let module = &translation.module;
        let offsets = VMOffsets::new(module)?;
        let mut jobs: Vec<Job<'_>> = translation
            .function_bodies
            .into_iter()
            .map(|(i, body)| Job::Body(i, body))
            .collect();
        for (i, decl) in module.functions.iter() {
            if let Some(def) = module.defined_func_index(i)
                && decl.escapes
            {
                jobs.push(Job::ArrayTrampoline(def));
            }
        }
        let compile =
            |scratch: &mut Scratch, job: Job<'_>| -> Result<CompiledFunction, CompileError> {
                let func_index = match &job {
                    Job::Body(i, _) | Job::ArrayTrampoline(i) => module.func_index(*i),
                };
                catch_unwind(AssertUnwindSafe(|| match job {
                    Job::Body(_, body) => {
                        self.compile_body(scratch, module, &offsets, func_index, body)
                    }
                    Job::ArrayTrampoline(_) => {
                        let func = trampolines::array_call(
                            &*self.isa,
                            module.func_type(func_index),
                            func_index,
                            self.settings.tunables.fuel_in_register,
                        );
                        self.finish_function(scratch, func, func_index.as_u32())
                    }
                }))
                .unwrap_or_else(|panic| {
                    let message = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "panic".into());
                    Err(CompileError::Codegen {
                        func: func_index.as_u32(),
                        message,
                    })
                })
            };
        let compiled: Vec<CompiledFunction> = if self.settings.parallel {
            jobs.into_par_iter()
                .map_init(Scratch::default, compile)
                .collect::<Result<_, _>>()?
        } else {
            let mut scratch = Scratch::default();
            jobs.into_iter()
                .map(|job| compile(&mut scratch, job))
                .collect::<Result<_, _>>()?
        };
        self.link(module, compiled)
    }

    /// The Cranelift IR the translator produces for each defined function
    /// of `translation`, before Cranelift optimizes it, as text: what the
    /// golden tests in `tests/disas` pin, so that a change to translation
    /// shows in review.
    pub fn translate_to_clif(
        &self,
        translation: ModuleTranslation<'_>,
    ) -> Result<Vec<String>, CompileError> {
        let module = &translation.module;
        let offsets = VMOffsets::new(module)?;
        let mut scratch = Scratch::default();
        let mut out = Vec::new();
        for (def, body) in translation.function_bodies {
            let func_index = module.func_index(def);
            let sig = wasm_signature(&*self.isa, module.func_type(func_index));
            let mut func =
                ir::Function::with_name_signature(UserFuncName::user(0, func_index.as_u32()), sig);
            let env = FuncEnvironment::new(module, &offsets, &self.settings.tunables, &*self.isa);
            let builder = FunctionBuilder::new(&mut func, &mut scratch.builder);
            FuncTranslator::translate(env, builder, &mut scratch.buffers, func_index, body)?;
            out.push(func.display().to_string());
        }
        Ok(out)
    }

    pub(crate) fn compile_body(
        &self,
        scratch: &mut Scratch,
        module: &Module,
        offsets: &VMOffsets,
        func_index: FuncIndex,
        body: FunctionBodyData<'_>,
    ) -> Result<CompiledFunction, CompileError> {
        let sig = wasm_signature(&*self.isa, module.func_type(func_index));
        let mut func =
            ir::Function::with_name_signature(UserFuncName::user(0, func_index.as_u32()), sig);
        let env = FuncEnvironment::new(module, offsets, &self.settings.tunables, &*self.isa);
        let builder = FunctionBuilder::new(&mut func, &mut scratch.builder);
        FuncTranslator::translate(env, builder, &mut scratch.buffers, func_index, body)?;
        self.finish_function(scratch, func, func_index.as_u32())
    }

    /// Runs Cranelift on `func` and collects what the runtime needs.
    pub(crate) fn finish_function(
        &self,
        scratch: &mut Scratch,
        func: ir::Function,
        func_index: u32,
    ) -> Result<CompiledFunction, CompileError> {
        let ctx = &mut scratch.ctx;
        ctx.clear();
        ctx.func = func;
        let codegen_error = |message: String| CompileError::Codegen {
            func: func_index,
            message,
        };
        ctx.compile(&*self.isa, &mut ControlPlane::default())
            .map_err(|e| codegen_error(format!("{:?}", e.inner)))?;
        let code = ctx
            .compiled_code()
            .ok_or_else(|| codegen_error("Cranelift returned no code".into()))?;
        let buffer = &code.buffer;
        let mut relocs = Vec::new();
        for r in buffer.relocs() {
            let target = match &r.target {
                FinalizedRelocTarget::ExternalName(ExternalName::User(name)) => {
                    let name = &ctx.func.params.user_named_funcs()[*name];
                    Target::Func(FuncIndex::from_u32(name.index))
                }
                FinalizedRelocTarget::ExternalName(ExternalName::LibCall(lc)) => Target::LibCall(
                    libcall(*lc)
                        .ok_or_else(|| codegen_error(format!("unsupported libcall {lc:?}")))?,
                ),
                other => {
                    return Err(codegen_error(format!(
                        "unsupported relocation target {other:?}"
                    )));
                }
            };
            relocs.push((r.offset, r.kind, target, r.addend));
        }
        let traps = buffer
            .traps()
            .iter()
            .map(|t| {
                trap_kind(t.code)
                    .map(|kind| TrapSite {
                        code_offset: t.offset,
                        kind,
                    })
                    .ok_or_else(|| codegen_error(format!("unknown trap code {}", t.code)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut address_map: Vec<AddressMapEntry> = buffer
            .get_srclocs_sorted()
            .iter()
            .filter(|s| !s.loc.is_default())
            .map(|s| AddressMapEntry {
                code_offset: s.start,
                wasm_offset: s.loc.bits(),
            })
            .collect();
        // A lookup takes the last entry at or before an offset, so an entry
        // that repeats the one before it adds nothing: most wasm
        // instructions lower to several machine instructions, each with its
        // own range. (Few entries repeat once empty ranges are gone: on
        // SQLite this drops about 5% of them; the packing in `CodeTables` is what
        // shrinks the map.)
        address_map.dedup_by_key(|e| e.wasm_offset);
        let mut handlers = Vec::new();
        for site in buffer.call_sites() {
            // Keel's try_calls have one catch-all handler (the landing pad
            // does the matching, `translate/exceptions.rs`).
            let Some(handler_offset) = site.exception_handlers.iter().find_map(|h| match h {
                FinalizedMachExceptionHandler::Default(offset) => Some(*offset),
                _ => None,
            }) else {
                continue;
            };
            let frame_offset = site
                .frame_offset
                .ok_or_else(|| codegen_error("a try_call without a frame offset".into()))?;
            handlers.push(HandlerSite {
                return_offset: site.ret_addr,
                handler_offset,
                frame_offset,
            });
        }
        handlers.sort_by_key(|h| h.return_offset);
        Ok(CompiledFunction {
            code: buffer.data().to_vec(),
            alignment: buffer.alignment,
            relocs,
            traps,
            address_map,
            handlers,
        })
    }

    /// Lays compiled functions out in one text section and resolves calls
    /// between them. Bodies come first, in definition order, so that label
    /// `i` is defined function `i`.
    pub(crate) fn link(
        &self,
        module: &Module,
        compiled: Vec<CompiledFunction>,
    ) -> Result<CompiledModule, CompileError> {
        let num_bodies = module.num_defined_funcs();
        let mut text = self.isa.text_section_builder(compiled.len());
        let mut ctrl = ControlPlane::default();
        let align = self.isa.function_alignment().preferred;
        let mut info = CompiledModuleInfo::default();
        let mut pending = Vec::new();
        let (mut traps, mut address_map) = (Vec::new(), Vec::new());
        let trampoline_owners: Vec<DefinedFuncIndex> = module
            .functions
            .iter()
            .filter(|(_, d)| d.escapes)
            .filter_map(|(i, _)| module.defined_func_index(i))
            .collect();
        for _ in 0..num_bodies {
            info.functions.push(CompiledFunctionInfo::default());
        }
        for (n, f) in compiled.iter().enumerate() {
            let start = text.append(true, &f.code, align.max(f.alignment), &mut ctrl);
            let start = u32::try_from(start)
                .map_err(|_| CompileError::Isa("text section over 4 GiB".into()))?;
            let loc = FunctionLoc {
                start,
                length: f.code.len() as u32,
            };
            if n < num_bodies {
                info.functions[DefinedFuncIndex::from_u32(n as u32)].wasm_call = loc;
            } else {
                let owner = trampoline_owners[n - num_bodies];
                info.functions[owner].array_call = Some(loc);
            }
            traps.extend(f.traps.iter().map(|t| TrapSite {
                code_offset: t.code_offset + start,
                kind: t.kind,
            }));
            address_map.extend(f.address_map.iter().map(|a| AddressMapEntry {
                code_offset: a.code_offset + start,
                wasm_offset: a.wasm_offset,
            }));
            info.handlers.extend(f.handlers.iter().map(|h| HandlerSite {
                return_offset: h.return_offset + start,
                handler_offset: h.handler_offset + start,
                frame_offset: h.frame_offset,
            }));
            for &(offset, kind, target, addend) in &f.relocs {
                pending.push((u64::from(start + offset), kind, target, addend));
            }
        }
        for (offset, kind, target, addend) in pending {
            match target {
                Target::Func(callee) => {
                    let def = module.defined_func_index(callee).ok_or_else(|| {
                        CompileError::Isa(format!(
                            "relocation against imported function {callee:?}"
                        ))
                    })?;
                    if !text.resolve_reloc(offset, kind, addend, def.as_u32() as usize) {
                        return Err(CompileError::Isa(format!(
                            "unsupported relocation {kind:?}"
                        )));
                    }
                }
                Target::LibCall(lc) => {
                    if kind != Reloc::Abs8 {
                        return Err(CompileError::Isa(format!(
                            "unsupported libcall relocation {kind:?}"
                        )));
                    }
                    info.relocations.push(LoadRelocation {
                        offset: offset as u32,
                        target: lc,
                        addend,
                    });
                }
            }
        }
        let text = text.finish(&mut ctrl);
        info.tables = CodeTables::new(&traps, &address_map);
        Ok(CompiledModule { text, info })
    }

    /// Compiles the trampoline through which epoch checks call the
    /// runtime while preserving every register (see `trampolines.rs`). It
    /// has no relocations.
    pub fn compile_slow_path_trampoline(&self) -> Result<Vec<u8>, CompileError> {
        let func = trampolines::slow_path_call(&*self.isa);
        let mut scratch = Scratch::default();
        let f = self.finish_function(&mut scratch, func, u32::MAX)?;
        if !f.relocs.is_empty() {
            return Err(CompileError::Isa("trampoline needs relocations".into()));
        }
        Ok(f.code)
    }

    /// Compiles the trampoline that lets wasm call a host function of type
    /// `ty` through its array-call entry. It has no relocations.
    pub fn compile_wasm_to_array_trampoline(
        &self,
        ty: &WasmFuncType,
    ) -> Result<Vec<u8>, CompileError> {
        let func =
            trampolines::wasm_to_array(&*self.isa, ty, self.settings.tunables.fuel_in_register);
        let mut scratch = Scratch::default();
        let f = self.finish_function(&mut scratch, func, u32::MAX)?;
        if !f.relocs.is_empty() {
            return Err(CompileError::Isa("trampoline needs relocations".into()));
        }
        Ok(f.code)
    }
}

fn libcall(lc: ir::LibCall) -> Option<LibCall> {
    Some(match lc {
        ir::LibCall::FloorF32 => LibCall::FloorF32,
        ir::LibCall::FloorF64 => LibCall::FloorF64,
        ir::LibCall::CeilF32 => LibCall::CeilF32,
        ir::LibCall::CeilF64 => LibCall::CeilF64,
        ir::LibCall::TruncF32 => LibCall::TruncF32,
        ir::LibCall::TruncF64 => LibCall::TruncF64,
        ir::LibCall::NearestF32 => LibCall::NearestF32,
        ir::LibCall::NearestF64 => LibCall::NearestF64,
        ir::LibCall::FmaF32 => LibCall::FmaF32,
        ir::LibCall::FmaF64 => LibCall::FmaF64,
        _ => return None,
    })
}
