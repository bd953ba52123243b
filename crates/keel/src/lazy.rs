//! Lazy compilation, the API side: a module compiled with
//! [`Config::lazy_compilation`](crate::Config::lazy_compilation) keeps what
//! the compiler needs to compile any one of its functions later, and hands
//! it to the runtime (`vm/lazy.rs`) as its [`LazyCompiler`].

use crate::Engine;
use crate::vm::lazy::LazyCompiler;
use keel_environ::wasmparser::{
    BinaryReader, FuncToValidate, FunctionBody, Operator, ValidatorResources, WasmFeatures,
};
use keel_environ::{
    DefinedFuncIndex, FuncIndex, FunctionBodyData, FunctionCode, Module, ModuleTranslation,
    PrimaryMap, VMOffsets,
};
use rayon::prelude::*;
use std::ops::Range;
use std::sync::Arc;

/// At most this much address space is reserved for one module's lazily
/// compiled code; a module that might need more compiles eagerly.
const MAX_AREA: usize = 1 << 30;

/// Where a function's body is, and how to validate it again as it is
/// translated.
struct LazyBody {
    /// Byte range in the module.
    range: Range<usize>,
    /// Its function index and type index, for the validator.
    index: u32,
    ty: u32,
}

/// Everything needed to compile any function of a module on its own.
pub(crate) struct LazyBodies {
    engine: Engine,
    env: Arc<Module>,
    offsets: VMOffsets,
    /// The module's bytes, as given (the bodies' ranges and the wasm
    /// offsets in backtraces refer to them).
    wasm: Arc<[u8]>,
    bodies: PrimaryMap<DefinedFuncIndex, LazyBody>,
    resources: Option<ValidatorResources>,
    features: WasmFeatures,
}

impl LazyBodies {
    /// Validates every function body of `translation` (so that a module
    /// that loads is valid whole, as with eager compilation) and keeps
    /// where they are in `wasm`, the bytes it was parsed from.
    pub(crate) fn new(
        engine: &Engine,
        env: Arc<Module>,
        translation: ModuleTranslation<'_>,
        wasm: Arc<[u8]>,
    ) -> crate::Result<LazyBodies> {
        let features = translation.features;
        let resources = translation
            .function_bodies
            .values()
            .next()
            .map(|b| b.validator.resources.clone());
        let bodies = translation
            .function_bodies
            .values()
            .map(|b| {
                let r = b.body.range();
                let range = usize::try_from(r.start)?..usize::try_from(r.end)?;
                Ok(LazyBody {
                    range,
                    index: b.validator.index,
                    ty: b.validator.ty,
                })
            })
            .collect::<Result<_, std::num::TryFromIntError>>()?;
        let check = |body: FunctionBodyData<'_>| {
            body.validator
                .into_validator(Default::default())
                .validate(&body.body)
                .map_err(keel_cranelift::CompileError::from)
        };
        let to_check: Vec<FunctionBodyData<'_>> = translation
            .function_bodies
            .into_iter()
            .map(|(_, b)| b)
            .collect();
        if engine.config().compiler.parallel {
            to_check.into_par_iter().try_for_each(check)?;
        } else {
            to_check.into_iter().try_for_each(check)?;
        }
        Ok(LazyBodies {
            engine: engine.clone(),
            offsets: VMOffsets::new(&env)?,
            env,
            wasm,
            bodies,
            resources,
            features,
        })
    }

    /// The address space to reserve for the module's compiled bodies
    /// (each on pages of its own, at most 32 bytes of code per byte of
    /// wasm), or `None` if that is more than lazy compilation reserves.
    pub(crate) fn area_len(&self) -> Option<usize> {
        let wasm_bytes: usize = self.bodies.values().map(|b| b.range.len()).sum();
        let len = wasm_bytes
            .checked_mul(32)?
            .checked_add(self.bodies.len().checked_mul(4096)?)?
            .checked_add(1 << 20)?;
        (len <= MAX_AREA).then_some(len)
    }
}

impl LazyBodies {
    fn body(&self, def: DefinedFuncIndex) -> anyhow::Result<(&LazyBody, BinaryReader<'_>)> {
        let body = self
            .bodies
            .get(def)
            .ok_or_else(|| anyhow::anyhow!("no body for defined function {}", def.as_u32()))?;
        let bytes = self
            .wasm
            .get(body.range.clone())
            .ok_or_else(|| anyhow::anyhow!("a function body outside the module"))?;
        let reader = BinaryReader::new_features(bytes, body.range.start as u64, self.features);
        Ok((body, reader))
    }
}

impl LazyCompiler for LazyBodies {
    fn link(
        &self,
        functions: Vec<FunctionCode>,
    ) -> anyhow::Result<(Vec<u8>, keel_environ::CompiledModuleInfo)> {
        let linked = self
            .engine
            .compiler()
            .link_compiled_functions(&self.env, functions)?;
        Ok((linked.text, linked.info))
    }

    fn callees(&self, def: DefinedFuncIndex) -> Vec<DefinedFuncIndex> {
        let Ok((_, reader)) = self.body(def) else {
            return Vec::new();
        };
        let mut callees = Vec::new();
        let Ok(mut ops) = FunctionBody::new(reader).get_operators_reader() else {
            return callees;
        };
        while let Ok(op) = ops.read() {
            if let Operator::Call { function_index } = op
                && let Some(callee) = self
                    .env
                    .defined_func_index(FuncIndex::from_u32(function_index))
                && !callees.contains(&callee)
            {
                callees.push(callee);
            }
        }
        callees
    }

    fn compile(&self, def: DefinedFuncIndex) -> anyhow::Result<FunctionCode> {
        let (body, reader) = self.body(def)?;
        let resources = self
            .resources
            .clone()
            .ok_or_else(|| anyhow::anyhow!("a module without bodies compiles nothing"))?;
        let data = FunctionBodyData {
            body: FunctionBody::new(reader),
            validator: FuncToValidate {
                resources,
                index: body.index,
                ty: body.ty,
                features: self.features,
            },
        };
        let func_index = self.env.func_index(def);
        Ok(self
            .engine
            .compiler()
            .compile_function(&self.env, &self.offsets, func_index, data)?)
    }
}
