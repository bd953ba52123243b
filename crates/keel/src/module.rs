//! Compiled modules.

use crate::artifact;
use crate::lazy::LazyBodies;
use crate::vm::LoadedModule;
use crate::vm::code_memory::{load_code, load_code_from_file, load_code_in_place, load_lazy_code};
use crate::vm::code_registry::{self, CodeObject};
use crate::vm::mmap::FileCopy;
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
    /// What an artifact keeps of the module's bytes (its module-level
    /// sections and `name`; see `artifact::artifact_wasm`), which loading
    /// the artifact parses again.
    wasm: Arc<[u8]>,
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
        if artifact::is_artifact(bytes) {
            anyhow::bail!(
                "this is a precompiled Keel artifact, not a WebAssembly module (load it with `Module::deserialize`)"
            );
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
        let config = engine.config();
        if config.lazy_compilation
            && !config.tunables().epoch_by_signal
            && engine.compiler().supports_lazy_compilation()
            && let Some(module) = Module::from_binary_lazily(engine, bytes)?
        {
            return Ok(module);
        }
        Module::from_binary_eagerly(engine, bytes)
    }

    /// Compiles every function of a module now.
    fn from_binary_eagerly(engine: &Engine, bytes: &[u8]) -> crate::Result<Module> {
        let translation = ModuleParser::new(engine.config().features).parse(bytes)?;
        let env = Arc::new(translation.module.clone());
        let compiled = engine.compiler().compile_module(translation)?;
        let code = load_code(&compiled.text, compiled.info, env.clone())
            .context("failed to load compiled code")?;
        // SAFETY: the code is what Keel's compiler produced for `env`.
        unsafe { Module::from_code(engine, env, code, artifact::artifact_wasm(bytes).into()) }
    }

    /// Validates a module and compiles only its stubs and trampolines: each
    /// function compiles at its first call (see `vm/lazy.rs`). `None` when
    /// the module is too big for lazy compilation's reserved area.
    fn from_binary_lazily(engine: &Engine, bytes: &[u8]) -> crate::Result<Option<Module>> {
        let translation = ModuleParser::new(engine.config().features).parse(bytes)?;
        let env = Arc::new(translation.module.clone());
        let bodies = LazyBodies::new(engine, env.clone(), translation, bytes.into())?;
        let Some(area_len) = bodies.area_len() else {
            return Ok(None);
        };
        let lazy = engine.compiler().compile_lazy_module(&env)?;
        let code = load_lazy_code(
            &lazy.compiled.text,
            lazy.compiled.info,
            env.clone(),
            lazy.slots_offset as usize,
            area_len,
            Box::new(bodies),
        )
        .context("failed to load the module's stubs")?;
        // SAFETY: the stubs are what Keel's compiler produced for `env`, and
        // every body compiled later is too.
        let module =
            unsafe { Module::from_code(engine, env, code, artifact::artifact_wasm(bytes).into())? };
        if engine.config().lazy_compilation_in_background {
            crate::vm::lazy::compile_in_background(&module.loaded.code);
        }
        Ok(Some(module))
    }

    /// A module around loaded `code`.
    ///
    /// # Safety
    ///
    /// `code` must be what Keel's compiler produces for `env` under
    /// `engine`'s settings: it is run as it is.
    unsafe fn from_code(
        engine: &Engine,
        env: Arc<keel_environ::Module>,
        code: CodeObject,
        wasm: Arc<[u8]>,
    ) -> crate::Result<Module> {
        let offsets = VMOffsets::new(&env)?;
        // In order: a type names only types before it (see `FuncTypeRef`).
        let mut type_ids: Vec<keel_environ::SharedTypeIndex> = Vec::with_capacity(env.types.len());
        for ty in env.types.values() {
            let ty = ty
                .to_engine(&|i| type_ids.get(i.as_u32() as usize).copied())
                .ok_or_else(|| anyhow::anyhow!("a type of the module names a later type"))?;
            type_ids.push(engine.register_type(&ty));
        }
        let type_ids = type_ids.into_boxed_slice();
        let code = Arc::new(code);
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
            wasm,
        })
    }

    /// This module as a precompiled artifact, which
    /// [`Module::deserialize`] loads without compiling, into an engine
    /// with the same settings (see `ARCHITECTURE.md`). Signed when the
    /// engine has an [`artifact key`](crate::Config::artifact_key).
    pub fn serialize(&self) -> crate::Result<Vec<u8>> {
        let code = &self.loaded.code;
        if let Some(lazy) = &code.lazy {
            // An artifact holds every function's code, laid out as eager
            // compilation lays it out: the linked code the module switches
            // to once everything is compiled.
            lazy.switch_to_linked(code)?;
            if let Some(linked) = lazy.linked() {
                return Ok(artifact::encode(
                    &self.engine,
                    &self.wasm,
                    &linked.info,
                    linked.text(),
                ));
            }
        }
        Ok(artifact::encode(
            &self.engine,
            &self.wasm,
            &code.info,
            code.text(),
        ))
    }

    /// Loads a precompiled artifact made by [`Module::serialize`] or
    /// [`Engine::precompile_module`], without compiling. Refuses, with an
    /// error that names the problem, anything else: a `.wasm` file, an
    /// artifact of another Keel version or of an engine with other
    /// settings (target, CPU features, compiler flags, memory layout,
    /// features, metering), a truncated or corrupt one (checksum).
    ///
    /// # Safety
    ///
    /// The checks catch accidents, not attacks: the artifact's machine code
    /// runs as it is, so the bytes must come from Keel (this or an
    /// identical build) and must not have been tampered with. Bytes from
    /// storage the host does not fully trust need
    /// [`Module::deserialize_authenticated`], which is safe.
    pub unsafe fn deserialize(engine: &Engine, bytes: impl AsRef<[u8]>) -> crate::Result<Module> {
        let parts = artifact::decode(engine, bytes.as_ref(), false, None)?;
        let text = parts.text;
        // SAFETY: the caller vouches for the artifact.
        unsafe {
            Module::from_parts(engine, parts.wasm.into(), parts.info, |info, env| {
                load_code(text, info, env)
            })
        }
    }

    /// Like [`Module::deserialize`], for an artifact in a file, which is
    /// mapped rather than read: the text is mapped executable straight from
    /// the file (copy on write, so only the pages holding relocations are
    /// copied), and the code tables are read where they lie in it.
    ///
    /// # Safety
    ///
    /// As for [`Module::deserialize`]; moreover the file must not change
    /// while the module lives (its pages are the module's code).
    pub unsafe fn deserialize_file(
        engine: &Engine,
        path: impl AsRef<Path>,
    ) -> crate::Result<Module> {
        let path = path.as_ref();
        let file = std::fs::File::open(path)
            .with_context(|| format!("failed to open `{}`", path.display()))?;
        let mapped = Arc::new(
            crate::vm::mmap::MappedFile::new(&file)
                .with_context(|| format!("failed to map `{}`", path.display()))?,
        );
        let bytes = mapped.bytes();
        // The checksum reads every byte, on a pool thread and (until that
        // one starts, and at the end) this one; meanwhile this thread reads
        // the artifact and loads its code, which is dropped, never run,
        // unless the checksum passes.
        artifact::verify_checksum_beside(mapped.clone(), |body| {
            // Reading bytes not yet checked must not take the host down
            // should they be damaged: a panic is an error here.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let parts = artifact::read_unverified(engine, body, bytes, Some(mapped.clone()))?;
                let (offset, len) = (parts.text_offset as u64, parts.text.len());
                // SAFETY: the caller vouches for the artifact; the module is
                // returned only once its checksum has passed.
                unsafe {
                    Module::from_parts(engine, parts.wasm.into(), parts.info, |info, env| {
                        load_code_from_file(&file, offset, len, info, env)
                    })
                }
            }))
            .unwrap_or_else(|_| Err(artifact::ArtifactError::Malformed("unreadable").into()))
        })?
    }

    /// Loads an artifact that an engine with the same
    /// [`artifact key`](crate::Config::artifact_key) signed, refusing
    /// unsigned ones and ones signed with another key before reading
    /// anything else. Safe: only a holder of the key can make bytes that
    /// pass.
    pub fn deserialize_authenticated(
        engine: &Engine,
        bytes: impl AsRef<[u8]>,
    ) -> crate::Result<Module> {
        let parts = artifact::decode(engine, bytes.as_ref(), true, None)?;
        let text = parts.text;
        // SAFETY: the signature shows that an engine holding this engine's
        // key made the artifact, and `decode` checked that it was made
        // under this engine's settings.
        unsafe {
            Module::from_parts(engine, parts.wasm.into(), parts.info, |info, env| {
                load_code(text, info, env)
            })
        }
    }

    /// Like [`Module::deserialize_authenticated`], for an artifact in a
    /// file. The file is read (not mapped), so that changing it after the
    /// check cannot change the code; the text then runs where it was read.
    pub fn deserialize_authenticated_file(
        engine: &Engine,
        path: impl AsRef<Path>,
    ) -> crate::Result<Module> {
        let path = path.as_ref();
        let copy = std::fs::File::open(path)
            .and_then(|file| FileCopy::read(&file))
            .with_context(|| format!("failed to read `{}`", path.display()))?;
        let parts = artifact::decode(engine, copy.bytes(), true, None)?;
        let (offset, len) = (parts.text_offset, parts.text.len());
        let (wasm, info) = (Arc::from(parts.wasm), parts.info);
        // SAFETY: as for `deserialize_authenticated`; the text is the one
        // checked, in memory the file can no longer reach.
        unsafe {
            Module::from_parts(engine, wasm, info, move |info, env| {
                load_code_in_place(copy, offset, len, info, env)
            })
        }
    }

    /// A module from a decoded artifact's module bytes and code tables;
    /// `load_text` loads its text for them.
    ///
    /// # Safety
    ///
    /// As for [`Module::deserialize`].
    unsafe fn from_parts(
        engine: &Engine,
        wasm: Arc<[u8]>,
        info: keel_environ::CompiledModuleInfo,
        load_text: impl FnOnce(
            keel_environ::CompiledModuleInfo,
            Arc<keel_environ::Module>,
        ) -> std::io::Result<CodeObject>,
    ) -> crate::Result<Module> {
        // The module-level sections were validated when the artifact was
        // compiled, as were the bodies (which it no longer carries).
        let env = Arc::new(ModuleParser::new(engine.config().features).parse_metadata(&wasm)?);
        let code = load_text(info, env.clone()).context("failed to load the artifact's code")?;
        // SAFETY: the caller vouches for the artifact.
        unsafe { Module::from_code(engine, env, code, wasm) }
    }

    /// Checks that `bytes` is a valid module for `engine`, without
    /// compiling it.
    pub fn validate(engine: &Engine, bytes: &[u8]) -> crate::Result<()> {
        let mut validator = wasmparser::Validator::new_with_features(engine.config().features);
        validator.validate_all(bytes)?;
        Ok(())
    }

    /// For a module compiled with
    /// [`Config::lazy_compilation`](crate::Config::lazy_compilation): how
    /// many of its functions have been compiled so far, of how many.
    /// `None` for a module compiled whole.
    pub fn lazy_compilation_progress(&self) -> Option<(usize, usize)> {
        self.loaded.code.lazy.as_ref().map(|lazy| lazy.progress())
    }

    /// The engine it was compiled for.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The name from the name section.
    pub fn name(&self) -> Option<&str> {
        self.loaded.env.name()
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
                let ty = self.loaded.type_ids[env.functions[f].type_index.as_u32() as usize];
                ExternType::Func(FuncType(self.engine.type_of(ty)))
            }
            EntityIndex::Table(t) => ExternType::Table(TableType::from_wasm(
                self.loaded.engine_table(env.tables[t]),
            )),
            EntityIndex::Memory(m) => ExternType::Memory(MemoryType::from_wasm(env.memories[m])),
            EntityIndex::Global(g) => ExternType::Global(GlobalType::from_wasm(
                self.loaded.engine_global(env.globals[g]),
            )),
            EntityIndex::Tag(t) => {
                let ty = self.loaded.type_ids[env.tags[t].as_u32() as usize];
                ExternType::Tag(crate::TagType::new(FuncType(self.engine.type_of(ty))))
            }
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
