//! The engine: configuration, compiler, and engine-wide registries.

use crate::Config;
use crate::vm::code_memory::load_trampoline;
use crate::vm::epoch::EpochRegistry;
use crate::vm::mmap::Mmap;
use crate::vm::pool::InstancePool;
use crate::vm::spare_memories::SpareMemories;
use anyhow::Context as _;
use keel_cranelift::Compiler;
use keel_environ::{SharedTypeIndex, WasmFuncType};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Interned function types: equal signatures get equal ids, so generated
/// code checks `call_indirect` signatures with one integer comparison.
#[derive(Default)]
struct TypeRegistry {
    ids: HashMap<Arc<WasmFuncType>, SharedTypeIndex>,
    types: Vec<Arc<WasmFuncType>>,
}

struct EngineInner {
    config: Config,
    compiler: Compiler,
    types: Mutex<TypeRegistry>,
    /// Wasm-to-host trampolines by signature, compiled on first use.
    host_trampolines: Mutex<HashMap<SharedTypeIndex, Mmap>>,
    /// The epoch counter and the deadlines of stores on it.
    epochs: EpochRegistry,
    /// The register-preserving trampoline of the epoch slow path, when
    /// epochs are on.
    slow_path_call: Option<Mmap>,
    /// The pooling allocator's slots, with that strategy.
    pool: Option<Arc<InstancePool>>,
    /// Released reservations of memories allocated on demand.
    spare_memories: Arc<SpareMemories>,
    /// The settings an artifact must match, computed on first use (every
    /// artifact written or loaded compares them).
    artifact_fingerprint: std::sync::OnceLock<Vec<(String, String)>>,
}

/// Compiles and owns what is shared by every store: the compiler, interned
/// types, host-call trampolines. Cheap to clone (reference counted), and
/// shareable between threads.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<EngineInner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

impl Default for Engine {
    fn default() -> Engine {
        // The default configuration always targets the host; failing here
        // means the host CPU is unsupported, which `new` reports as an error.
        Engine::new(&Config::default()).expect("the default configuration supports this host")
    }
}

impl Engine {
    /// An engine with the given configuration.
    pub fn new(config: &Config) -> crate::Result<Engine> {
        crate::vm::sys::install_signal_handlers();
        anyhow::ensure!(
            config.async_stack_size > config.max_wasm_stack,
            "the async stack size ({} bytes) must exceed the maximum wasm stack ({} bytes)",
            config.async_stack_size,
            config.max_wasm_stack
        );
        anyhow::ensure!(
            !config.features.intersects(
                keel_environ::wasmparser::WasmFeatures::EXCEPTIONS
                    | keel_environ::wasmparser::WasmFeatures::LEGACY_EXCEPTIONS
            ) || crate::vm::exception::exceptions_supported(),
            "exception handling is implemented for x86-64 only"
        );
        let compiler =
            Compiler::new(config.compiler.clone()).context("cannot create the compiler")?;
        // Every memory's reservation: what generated code may address.
        let t = config.tunables();
        let memory_slot = t.memory_reservation.saturating_add(t.memory_guard_size);
        let memory_slot = usize::try_from(memory_slot).unwrap_or(usize::MAX);
        let pool = match &config.allocation_strategy {
            crate::InstanceAllocationStrategy::OnDemand => None,
            crate::InstanceAllocationStrategy::Pooling(p) => {
                let mut limits = p.limits.clone();
                limits.stack_size = config.async_stack_size;
                limits.zero_stacks = config.async_stack_zeroing;
                Some(Arc::new(InstancePool::new(limits, memory_slot)?))
            }
        };
        let slow_path_call = if t.epoch_interruption || (t.consume_fuel && t.fuel_yields) {
            let code = compiler.compile_slow_path_trampoline()?;
            Some(load_trampoline(&code).context("cannot map trampoline")?)
        } else {
            None
        };
        Ok(Engine {
            inner: Arc::new(EngineInner {
                config: config.clone(),
                compiler,
                types: Mutex::new(TypeRegistry::default()),
                host_trampolines: Mutex::new(HashMap::new()),
                epochs: EpochRegistry::new(config.tunables().epoch_by_signal),
                slow_path_call,
                pool,
                spare_memories: Arc::new(SpareMemories::new(memory_slot)),
                artifact_fingerprint: std::sync::OnceLock::new(),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Whether two handles are the same engine.
    pub fn same(a: &Engine, b: &Engine) -> bool {
        Arc::ptr_eq(&a.inner, &b.inner)
    }

    /// Advances the epoch by one tick. Wasm running in any store of this
    /// engine whose deadline ([`Store::set_epoch_deadline`]) the new epoch
    /// reaches is interrupted at its next check (a loop header or a
    /// function entry), whatever thread it runs on.
    ///
    /// Callable from any thread, typically a timer: a tick that reaches no
    /// deadline is one atomic add and one load; one that does visits the
    /// stores that have deadlines.
    ///
    /// [`Store::set_epoch_deadline`]: crate::Store::set_epoch_deadline
    pub fn increment_epoch(&self) {
        self.inner.epochs.increment();
    }

    /// Compiles `bytes` (binary or, with the `wat` feature, text) into a
    /// precompiled artifact for [`Module::deserialize`], as
    /// [`Module::serialize`] of [`Module::new`] would, without keeping the
    /// module.
    ///
    /// [`Module::deserialize`]: crate::Module::deserialize
    /// [`Module::serialize`]: crate::Module::serialize
    /// [`Module::new`]: crate::Module::new
    pub fn precompile_module(&self, bytes: &[u8]) -> crate::Result<Vec<u8>> {
        crate::Module::new(self, bytes)?.serialize()
    }

    /// A value that hashes equal for two engines exactly when an artifact
    /// of one loads into the other (same Keel build, same fingerprint; the
    /// artifact key aside): for keying a cache of artifacts by it, as with
    /// Wasmtime's method of the same name.
    pub fn precompile_compatibility_hash(&self) -> impl std::hash::Hash + '_ {
        crate::artifact::compatibility(self)
    }

    /// What `bytes` are, if they are a precompiled artifact (of any Keel
    /// version or settings: this looks at the header only). `None` for
    /// anything else, such as a `.wasm` module.
    pub fn detect_precompiled(bytes: &[u8]) -> Option<Precompiled> {
        crate::artifact::is_artifact(bytes).then_some(Precompiled::Module)
    }

    /// [`Engine::detect_precompiled`] of a file's first bytes.
    pub fn detect_precompiled_file(
        path: impl AsRef<std::path::Path>,
    ) -> crate::Result<Option<Precompiled>> {
        use std::io::Read;
        let path = path.as_ref();
        let mut head = Vec::with_capacity(8);
        let file = std::fs::File::open(path)
            .with_context(|| format!("failed to open `{}`", path.display()))?;
        file.take(8).read_to_end(&mut head)?;
        Ok(Engine::detect_precompiled(&head))
    }

    /// The slow-path trampoline's address, or null.
    pub(crate) fn slow_path_call(&self) -> *const u8 {
        self.inner
            .slow_path_call
            .as_ref()
            .map_or(std::ptr::null(), |m| m.as_ptr().cast_const())
    }

    pub(crate) fn epochs(&self) -> &EpochRegistry {
        &self.inner.epochs
    }

    /// How this engine allocates instances.
    pub(crate) fn allocation(&self) -> crate::vm::Allocation<'_> {
        crate::vm::Allocation {
            pool: self.inner.pool.as_ref(),
            spare_memories: &self.inner.spare_memories,
            memory_init_cow: self.inner.config.memory_init_cow,
        }
    }

    /// A stack for an async call: from the pool with the pooling strategy,
    /// else a new mapping.
    pub(crate) fn take_fiber_stack(&self) -> crate::Result<crate::vm::fiber::FiberStack> {
        match &self.inner.pool {
            Some(pool) => Ok(pool.take_stack()?),
            None => crate::vm::fiber::FiberStack::new(self.config().async_stack_size)
                .map_err(|e| anyhow::anyhow!("cannot allocate a fiber stack: {e}")),
        }
    }

    pub(crate) fn compiler(&self) -> &Compiler {
        &self.inner.compiler
    }

    /// The settings an artifact must match to load into this engine (see
    /// `artifact.rs`).
    pub(crate) fn artifact_fingerprint(&self) -> &[(String, String)] {
        self.inner
            .artifact_fingerprint
            .get_or_init(|| crate::artifact::fingerprint(self))
    }

    /// The engine-wide id of a signature.
    pub(crate) fn register_type(&self, ty: &WasmFuncType) -> SharedTypeIndex {
        let mut r = self.inner.types.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = r.ids.get(ty) {
            return *id;
        }
        let id = SharedTypeIndex::from_u32(r.types.len() as u32);
        let ty = Arc::new(ty.clone());
        r.types.push(ty.clone());
        r.ids.insert(ty, id);
        id
    }

    /// The signature behind an id this engine handed out.
    pub(crate) fn type_of(&self, id: SharedTypeIndex) -> Arc<WasmFuncType> {
        let r = self.inner.types.lock().unwrap_or_else(|e| e.into_inner());
        r.types[id.as_u32() as usize].clone()
    }

    /// The trampoline through which wasm calls host functions of type `id`.
    pub(crate) fn wasm_to_host_trampoline(&self, id: SharedTypeIndex) -> crate::Result<*const u8> {
        let mut t = self
            .inner
            .host_trampolines
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(m) = t.get(&id) {
            return Ok(m.as_ptr());
        }
        let ty = self.type_of(id);
        let code = self.compiler().compile_wasm_to_array_trampoline(&ty)?;
        let mmap = load_trampoline(&code).context("cannot map trampoline")?;
        let ptr = mmap.as_ptr();
        t.insert(id, mmap);
        Ok(ptr)
    }
}

/// What kind of precompiled artifact some bytes are
/// ([`Engine::detect_precompiled`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Precompiled {
    /// A core module, for [`Module::deserialize`](crate::Module::deserialize).
    Module,
}
