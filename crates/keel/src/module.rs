//! Compiled modules.

use crate::vm::LoadedModule;
use crate::vm::code_memory::load_code;
use crate::vm::code_registry;
use crate::{Engine, ExternType, FuncType, GlobalType, MemoryType, TableType};
use anyhow::Context as _;
use keel_environ::{EntityIndex, ModuleParser, VMOffsets};
use std::path::Path;
use std::sync::Arc;

/// A compiled WebAssembly module, ready to instantiate any number of times
/// in any store of its engine. Cheap to clone.
#[derive(Clone)]
pub struct Module {
    engine: Engine,
    loaded: Arc<LoadedModule>,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}

impl Module {
    /// Compiles a module from its binary (or, with the `wat` feature, text)
    /// form. Validation errors name the byte offset.
    pub fn new(engine: &Engine, bytes: impl AsRef<[u8]>) -> crate::Result<Module> {
        let bytes = bytes.as_ref();
        if bytes.is_empty() {
            anyhow::bail!("not a WebAssembly module: the input is empty");
        }
        if bytes.starts_with(b"\0asm") {
            return Module::from_binary(engine, bytes);
        }
        #[cfg(feature = "wat")]
        if let Ok(text) = std::str::from_utf8(bytes) {
            // The text error's first lines say what and where; the source
            // excerpt after them would spread the error over many lines.
            let binary = wat::parse_str(text).map_err(|e| {
                let msg = e.to_string();
                let lines: Vec<&str> = msg.lines().take(2).map(str::trim).collect();
                anyhow::anyhow!("{}", lines.join(" "))
            })?;
            return Module::from_binary(engine, &binary);
        }
        anyhow::bail!(
            "not a WebAssembly module: the magic header `\\0asm` is missing (at offset 0x0)"
        )
    }

    /// Compiles a module from a file.
    pub fn from_file(engine: &Engine, path: impl AsRef<Path>) -> crate::Result<Module> {
        let path = path.as_ref();
        let bytes =
            std::fs::read(path).with_context(|| format!("failed to read `{}`", path.display()))?;
        Module::new(engine, bytes)
    }

    /// Compiles a module from its binary form.
    pub fn from_binary(engine: &Engine, bytes: &[u8]) -> crate::Result<Module> {
        let translation = ModuleParser::new(engine.config().features).parse(bytes)?;
        let env = Arc::new(translation.module.clone());
        let offsets = VMOffsets::new(&env)?;
        let compiled = engine.compiler().compile_module(translation)?;
        let type_ids = env
            .types
            .values()
            .map(|t| engine.register_type(t))
            .collect();
        let code = Arc::new(
            load_code(&compiled.text, compiled.info, env.clone())
                .context("failed to load compiled code")?,
        );
        code_registry::register(&code);
        Ok(Module {
            engine: engine.clone(),
            loaded: Arc::new(LoadedModule {
                env,
                offsets,
                code,
                type_ids,
                tunables: engine.config().tunables().clone(),
                memory_images: std::sync::OnceLock::new(),
                table_images: std::sync::OnceLock::new(),
                segment_plans: Default::default(),
            }),
        })
    }

    /// Checks that `bytes` is a valid module for `engine`, without
    /// compiling it.
    pub fn validate(engine: &Engine, bytes: &[u8]) -> crate::Result<()> {
        let mut validator = wasmparser::Validator::new_with_features(engine.config().features);
        validator.validate_all(bytes)?;
        Ok(())
    }

    /// The engine it was compiled for.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The name from the name section.
    pub fn name(&self) -> Option<&str> {
        self.loaded.env.name.as_deref()
    }

    /// Whether two handles are the same module.
    pub fn same(a: &Module, b: &Module) -> bool {
        Arc::ptr_eq(&a.loaded, &b.loaded)
    }

    pub(crate) fn loaded(&self) -> &Arc<LoadedModule> {
        &self.loaded
    }

    pub(crate) fn env(&self) -> &keel_environ::Module {
        &self.loaded.env
    }

    pub(crate) fn entity_type(&self, index: EntityIndex) -> ExternType {
        let env = self.env();
        match index {
            EntityIndex::Function(f) => {
                ExternType::Func(FuncType(Arc::new(env.func_type(f).clone())))
            }
            EntityIndex::Table(t) => ExternType::Table(TableType::from_wasm(env.tables[t])),
            EntityIndex::Memory(m) => ExternType::Memory(MemoryType::from_wasm(env.memories[m])),
            EntityIndex::Global(g) => ExternType::Global(GlobalType::from_wasm(env.globals[g])),
        }
    }

    /// The imports, in order.
    pub fn imports(&self) -> impl ExactSizeIterator<Item = ImportType<'_>> + '_ {
        self.env().imports.iter().map(move |i| ImportType {
            module: &i.module,
            name: &i.field,
            ty: self.entity_type(i.index),
        })
    }

    /// The exports, in order.
    pub fn exports(&self) -> impl ExactSizeIterator<Item = ExportType<'_>> + '_ {
        self.env()
            .exports
            .iter()
            .map(move |(name, index)| ExportType {
                name,
                ty: self.entity_type(*index),
            })
    }

    /// The type of an export.
    pub fn get_export(&self, name: &str) -> Option<ExternType> {
        self.env().export(name).map(|i| self.entity_type(i))
    }
}

/// An import of a module.
#[derive(Clone, Debug)]
pub struct ImportType<'module> {
    module: &'module str,
    name: &'module str,
    ty: ExternType,
}

impl<'module> ImportType<'module> {
    /// Module name.
    pub fn module(&self) -> &'module str {
        self.module
    }
    /// Field name.
    pub fn name(&self) -> &'module str {
        self.name
    }
    /// Type.
    pub fn ty(&self) -> ExternType {
        self.ty.clone()
    }
}

/// An export of a module.
#[derive(Clone, Debug)]
pub struct ExportType<'module> {
    name: &'module str,
    ty: ExternType,
}

impl<'module> ExportType<'module> {
    /// Name.
    pub fn name(&self) -> &'module str {
        self.name
    }
    /// Type.
    pub fn ty(&self) -> ExternType {
        self.ty.clone()
    }
}
