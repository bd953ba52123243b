//! The runtime side of an instance: its `VMContext` and what it owns.
//!
//! An [`Instance`] is boxed (its address is stored in its context) and owns
//! one allocation laid out by `VMOffsets`, zeroed up to the defined
//! functions' funcrefs (each written when first needed), plus the memories
//! and tables it defines. Imported entities are borrowed: the store keeps their
//! owners alive as long as any instance of it exists.

use super::code_registry::CodeObject;
use super::libcalls::BUILTINS;
use super::memory::{LinearMemory, MemoryError};
use super::memory_image::MemoryImage;
use super::mmap::Mmap;
use super::pool::{InstancePool, PoolError};
use super::spare_memories::SpareMemories;
use super::table::{LazyInit, Table, TableImage};
use super::val_raw::ValRaw;
use super::vmcontext::*;
use keel_environ::{
    ConstExpr, ConstOp, DataIndex, DataMode, DefinedFuncIndex, DefinedMemoryIndex,
    DefinedTableIndex, ElemIndex, ElemItems, ElemMode, EntityRef, FuncIndex, GlobalIndex,
    MemoryIndex, Module, PrimaryMap, SharedTypeIndex, TableIndex, TagIndex, TrapKind, Tunables,
    VMCONTEXT_MAGIC, VMOffsets,
};
use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::{Arc, OnceLock};
use thiserror::Error;

/// A compiled module, loaded and ready to instantiate.
pub struct LoadedModule {
    /// What the module declares.
    pub env: Arc<Module>,
    /// Its context layout.
    pub offsets: VMOffsets,
    /// Its executable code.
    pub code: Arc<CodeObject>,
    /// Engine-wide ids of its types, indexed by `TypeIndex`.
    pub type_ids: Box<[SharedTypeIndex]>,
    /// The settings its code was compiled for.
    pub tunables: Tunables,
    /// Copy-on-write images of its defined memories, built on first use.
    pub memory_images: OnceLock<Box<[Option<Arc<MemoryImage>>]>>,
    /// Initial contents of its defined funcref tables that are
    /// initialized lazily, built on first use.
    pub table_images: OnceLock<Box<[Option<Arc<TableImage>>]>>,
    /// What instantiation does with the segments, built on first use:
    /// without memory images (`[0]`) and with them (`[1]`).
    pub segment_plans: [OnceLock<SegmentPlan>; 2],
}

/// The segments an instantiation applies, and those it leaves dropped:
/// worked out once per module, so that instantiating does nothing per
/// segment that an image or a lazy table already covers.
#[derive(Debug)]
pub struct SegmentPlan {
    /// Active element segments of tables filled at instantiation, in order.
    elems: Box<[ElemIndex]>,
    /// Active data segments of memories without an image, in order.
    datas: Box<[DataIndex]>,
    /// Segments dropped once instantiation is done (active and declared
    /// ones), one bit each.
    elems_dropped: Box<[u64]>,
    datas_dropped: Box<[u64]>,
}

/// Whether bit `i` of `bits` is set (bits past the end are clear).
fn bit(bits: &[u64], i: usize) -> bool {
    bits.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
}

/// Sets bit `i` of `bits`, growing it as needed.
fn set_bit(bits: &mut Vec<u64>, i: usize) {
    if bits.len() <= i / 64 {
        bits.resize(i / 64 + 1, 0);
    }
    bits[i / 64] |= 1 << (i % 64);
}

impl LoadedModule {
    /// `ty` with the module's type indices replaced by the engine-wide ids
    /// of those types: the form every type outside the module is in (see
    /// `keel_environ::FuncTypeRef`). An index the module does not have
    /// (validation rules it out) becomes `FuncTypeRef::NONE`, which no
    /// function matches.
    pub fn engine_ref_type(&self, ty: keel_environ::WasmRefType) -> keel_environ::WasmRefType {
        ty.to_engine(&|i| self.type_ids.get(i.index()).copied())
            .unwrap_or(keel_environ::WasmRefType {
                heap: keel_environ::WasmHeapType::ConcreteFunc(keel_environ::FuncTypeRef::NONE),
                ..ty
            })
    }

    /// A table type of the module in the engine's index space.
    pub fn engine_table(&self, table: keel_environ::Table) -> keel_environ::Table {
        keel_environ::Table {
            ty: self.engine_ref_type(table.ty),
            ..table
        }
    }

    /// A global type of the module in the engine's index space.
    pub fn engine_global(&self, global: keel_environ::Global) -> keel_environ::Global {
        let ty = match global.ty {
            keel_environ::WasmValType::Ref(r) => {
                keel_environ::WasmValType::Ref(self.engine_ref_type(r))
            }
            other => other,
        };
        keel_environ::Global { ty, ..global }
    }

    /// The images of its defined memories (`None` where a memory must be
    /// initialized by copying), building them on the first call.
    pub fn memory_images(&self) -> &[Option<Arc<MemoryImage>>] {
        self.memory_images
            .get_or_init(|| MemoryImage::build_all(&self.env))
    }

    /// The images of its defined tables (`None` where a table is filled
    /// when instantiated), building them on the first call.
    pub fn table_images(&self) -> &[Option<Arc<TableImage>>] {
        self.table_images
            .get_or_init(|| TableImage::build_all(&self.env))
    }

    /// The segment plan for instances that use memory images
    /// (`memory_init_cow`) or not, building it on the first call.
    pub fn segment_plan(&self, images_used: bool) -> &SegmentPlan {
        self.segment_plans[usize::from(images_used)].get_or_init(|| {
            let env = &self.env;
            let lazy_table = |t: TableIndex| {
                env.defined_table_index(t)
                    .is_some_and(|d| self.table_images()[d.index()].is_some())
            };
            let imaged_memory = |m: MemoryIndex| {
                images_used
                    && env.defined_memory_index(m).is_some_and(|d| {
                        self.memory_images()
                            .get(d.index())
                            .is_some_and(Option::is_some)
                    })
            };
            let mut elems = Vec::new();
            let mut elems_dropped = Vec::new();
            for (index, elem) in env.elems.iter() {
                match &elem.mode {
                    ElemMode::Active { table, .. } => {
                        if !lazy_table(*table) {
                            elems.push(index);
                        }
                        set_bit(&mut elems_dropped, index.index());
                    }
                    ElemMode::Declared => set_bit(&mut elems_dropped, index.index()),
                    ElemMode::Passive => {}
                }
            }
            let mut datas = Vec::new();
            let mut datas_dropped = Vec::new();
            for (index, data) in env.datas.iter() {
                if let DataMode::Active { memory, .. } = &data.mode {
                    if !imaged_memory(*memory) {
                        datas.push(index);
                    }
                    set_bit(&mut datas_dropped, index.index());
                }
            }
            SegmentPlan {
                elems: elems.into(),
                datas: datas.into(),
                elems_dropped: elems_dropped.into(),
                datas_dropped: datas_dropped.into(),
            }
        })
    }
}

/// How an instance's context, memories and tables are allocated.
#[derive(Clone, Copy)]
pub struct Allocation<'a> {
    /// The pool to take slots from; on demand when `None`.
    pub pool: Option<&'a Arc<InstancePool>>,
    /// Where on-demand memories take and return their reservations.
    pub spare_memories: &'a Arc<SpareMemories>,
    /// Whether memories start from copy-on-write images where possible.
    pub memory_init_cow: bool,
}

/// Why an instance could not be created.
#[derive(Debug, Error)]
pub enum InstantiationError {
    /// A memory could not be created.
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// A table is larger than allowed.
    #[error("table of {0} elements is larger than allowed")]
    TableTooLarge(u64),
    /// The context could not be allocated.
    #[error("out of memory allocating the instance context")]
    OutOfMemory,
    /// The pooling allocator could not serve the instance.
    #[error(transparent)]
    Pool(#[from] PoolError),
}

/// Where an instance's context lives.
enum ContextBacking {
    /// The global allocator, with this layout.
    OnDemand(Layout),
    /// A slot of the pooling allocator (`Some` until dropped).
    Pooled {
        slot: Option<Mmap>,
        pool: Arc<InstancePool>,
    },
}

/// What an instance imports, in import order per kind.
pub struct Imports<'a> {
    /// Functions.
    pub functions: &'a [VMFunctionImport],
    /// Tables.
    pub tables: &'a [*mut Table],
    /// Memories.
    pub memories: &'a [*mut LinearMemory],
    /// Globals.
    pub globals: &'a [*mut VMGlobalDefinition],
    /// Tags.
    pub tags: &'a [*mut VMTagDefinition],
}

/// Function imports resolved once and shared by many instances (see
/// `InstancePre`).
pub struct SharedFunctionImports(Box<[VMFunctionImport]>);

// SAFETY: the records point to host functions' contexts and engine-owned
// code, which never change after creation; the holder keeps those host
// functions alive for as long as these records.
unsafe impl Send for SharedFunctionImports {}
// SAFETY: as above; nothing mutates through shared access.
unsafe impl Sync for SharedFunctionImports {}

impl SharedFunctionImports {
    /// Wraps resolved records.
    pub fn new(imports: Vec<VMFunctionImport>) -> SharedFunctionImports {
        SharedFunctionImports(imports.into_boxed_slice())
    }

    /// The records, in import order.
    pub fn as_slice(&self) -> &[VMFunctionImport] {
        &self.0
    }
}

/// The runtime side of one instance.
pub struct Instance {
    module: Arc<LoadedModule>,
    vmctx: NonNull<u8>,
    backing: ContextBacking,
    /// Whether defined memories with an image got it (`memory_init_cow`);
    /// their active data segments are then already in place.
    memory_images_used: bool,
    /// Sized once, at creation, so that they never move: the context
    /// points at their definitions.
    memories: PrimaryMap<DefinedMemoryIndex, LinearMemory>,
    tables: PrimaryMap<DefinedTableIndex, Table>,
    /// Segments dropped since instantiation (by `elem.drop`, `data.drop`,
    /// or a failed instantiation), one bit each, beyond those the
    /// module's segment plan drops; empty until the first.
    dropped_elems: Vec<u64>,
    dropped_datas: Vec<u64>,
    /// This instance's index in its store.
    pub store_index: usize,
}

// SAFETY: the context and everything it points to belong to one store,
// which moves between threads as a whole and is never shared.
unsafe impl Send for Instance {}
// SAFETY: shared references only read.
unsafe impl Sync for Instance {}

impl Drop for Instance {
    fn drop(&mut self) {
        match &mut self.backing {
            // SAFETY: allocated in `Instance::new` with this layout.
            ContextBacking::OnDemand(layout) => unsafe {
                std::alloc::dealloc(self.vmctx.as_ptr(), *layout)
            },
            ContextBacking::Pooled { slot, pool } => {
                if let Some(slot) = slot.take() {
                    // The next instance clears what it needs (see
                    // `Instance::new`).
                    pool.return_instance_slot(slot, 0);
                }
            }
        }
    }
}

/// Called through a non-escaping function's `array_call`, which nothing
/// can reach: the API only hands out escaping functions.
unsafe extern "C" fn array_call_unreachable(
    _: *mut VMOpaqueContext,
    _: *mut VMOpaqueContext,
    _: *mut ValRaw,
    _: usize,
) {
    std::process::abort();
}

impl Instance {
    /// Allocates and fills the context of a new instance of `module`.
    /// Globals and tables get their initial values; segments are applied
    /// by [`Instance::initialize_segments`].
    ///
    /// # Safety
    ///
    /// Every import pointer must be live for as long as the instance, and
    /// of the type the module declares (the caller checked). `store` and
    /// `store_context` must outlive the instance.
    pub unsafe fn new(
        module: Arc<LoadedModule>,
        imports: &Imports<'_>,
        store: *mut u8,
        store_context: *mut VMStoreContext,
        store_index: usize,
        allocation: Allocation<'_>,
    ) -> Result<Box<Instance>, InstantiationError> {
        let env = module.env.clone();
        let size = module.offsets.size() as usize;
        let (vmctx, backing) = match allocation.pool {
            None => {
                let layout = Layout::from_size_align(size, 16)
                    .map_err(|_| InstantiationError::OutOfMemory)?;
                // SAFETY: the layout has non-zero size (the header alone is
                // 56 bytes).
                let vmctx = NonNull::new(unsafe { std::alloc::alloc(layout) })
                    .ok_or(InstantiationError::OutOfMemory)?;

                (vmctx, ContextBacking::OnDemand(layout))
            }
            Some(pool) => {
                pool.check_module(
                    size,
                    env.memories.len() - env.num_imported_memories,
                    env.tables.len() - env.num_imported_tables,
                )?;
                // Page-aligned, at least `size` bytes (checked); it may hold
                // another instance's context.
                let slot = pool.take_instance_slot()?;
                let vmctx = NonNull::new(slot.as_ptr()).ok_or(InstantiationError::OutOfMemory)?;
                let backing = ContextBacking::Pooled {
                    slot: Some(slot),
                    pool: pool.clone(),
                };
                (vmctx, backing)
            }
        };
        // Zeroed up to the funcrefs, which are written before anything
        // reads them (`defined_func_ref`): instantiating costs nothing per
        // function, even in a pool slot another module used.
        let zeroed = module.offsets.func_refs_start() as usize;
        // SAFETY: `zeroed` is at most `size`, inside the allocation.
        unsafe { std::ptr::write_bytes(vmctx.as_ptr(), 0, zeroed) };
        let images = if allocation.memory_init_cow {
            module.memory_images()
        } else {
            &[]
        };
        let memory_images_used = allocation.memory_init_cow;
        let mut instance = Box::new(Instance {
            module: module.clone(),
            vmctx,
            backing,
            memory_images_used,
            memories: PrimaryMap::with_capacity(env.memories.len() - env.num_imported_memories),
            tables: PrimaryMap::with_capacity(env.tables.len() - env.num_imported_tables),
            dropped_elems: Vec::new(),
            dropped_datas: Vec::new(),
            store_index,
        });
        let instance_ptr: *mut Instance = &mut *instance;
        let header = VMContextHeader {
            magic: VMCONTEXT_MAGIC,
            store,
            store_context,
            builtins: BUILTINS.as_ptr(),
            type_ids: instance.module.type_ids.as_ptr(),
            instance: instance_ptr.cast(),
            // SAFETY: the store context outlives its instances.
            epoch_page: unsafe { (*store_context).epoch_page },
        };
        // SAFETY: the allocation starts with room for the header (checked
        // by the layout tests) and is 16-aligned.
        unsafe {
            instance
                .vmctx
                .as_ptr()
                .cast::<VMContextHeader>()
                .write(header)
        };

        for (i, import) in imports.functions.iter().enumerate() {
            // SAFETY: `i` is an imported function index, in bounds.
            unsafe { *instance.imported_function_mut(FuncIndex::new(i)) = *import };
        }
        for (i, table) in imports.tables.iter().enumerate() {
            // SAFETY: the caller guarantees the import is live.
            let def = unsafe { (**table).definition() };
            // SAFETY: in bounds.
            unsafe { *instance.table_slot(TableIndex::new(i)) = def };
        }
        for (i, memory) in imports.memories.iter().enumerate() {
            // SAFETY: the caller guarantees the import is live.
            let r = unsafe {
                VMMemoryRef {
                    base: (**memory).base(),
                    definition: (**memory).definition(),
                }
            };
            // SAFETY: in bounds.
            unsafe { *instance.memory_ref_mut(MemoryIndex::new(i)) = r };
        }
        for (i, global) in imports.globals.iter().enumerate() {
            // SAFETY: in bounds.
            unsafe { *instance.imported_global_slot(GlobalIndex::new(i)) = *global };
        }

        for (i, tag) in imports.tags.iter().enumerate() {
            // SAFETY: in bounds.
            unsafe { *instance.imported_tag_slot(TagIndex::new(i)) = *tag };
        }
        for (def, ty) in env.tags.iter().skip(env.num_imported_tags) {
            let index = env.defined_tag_index(def).expect("skipped the imports");
            let slot: *mut VMTagDefinition =
                instance.vmctx_field(instance.module.offsets.defined_tag(index));
            let type_index = (instance.module.type_ids.get(ty.index()).copied())
                .unwrap_or(SharedTypeIndex::NONE);
            // SAFETY: in bounds.
            unsafe { slot.write(VMTagDefinition::new(type_index)) };
        }

        // Defined functions' funcrefs are written when first needed.

        // Defined memories.
        for (i, (_, ty)) in env
            .memories
            .iter()
            .skip(env.num_imported_memories)
            .enumerate()
        {
            let image = images.get(i).and_then(Option::as_ref);
            let tunables = &instance.module.tunables;
            let memory = match allocation.pool {
                None => LinearMemory::new(ty, tunables, image, allocation.spare_memories)?,
                Some(pool) => LinearMemory::new_pooled(ty, tunables, image, pool)?,
            };
            // Sized for every defined memory at creation: the push moves
            // no earlier memory, whose definition the context points at.
            let def = instance.memories.push(memory);
            let memory = &mut instance.memories[def];
            let r = VMMemoryRef {
                base: memory.base(),
                definition: memory.definition(),
            };
            let index = env.memory_index(def);
            // SAFETY: in bounds.
            unsafe { *instance.memory_ref_mut(index) = r };
        }

        // Defined globals, in order (an initializer may read earlier ones).
        for (def, init) in env.global_inits.iter() {
            let value = instance.eval_const_expr(init);
            let index = env.global_index(def);
            // SAFETY: in bounds.
            unsafe { (*instance.global_ptr(index)).storage = value.bytes() };
        }

        // Defined tables.
        let table_images = instance.module.table_images();
        for (def, init) in env.table_inits.iter() {
            let ty = instance
                .module
                .engine_table(env.tables[env.table_index(def)]);
            let init = match init {
                Some(e) => instance.eval_const_expr(e).get_ptr(),
                None => std::ptr::null_mut(),
            };
            let lazy = table_images[def.index()].as_ref().map(|image| LazyInit {
                instance: instance_ptr,
                image: image.clone(),
            });
            let table = match allocation.pool {
                // SAFETY: `init` is null or the value of the module's
                // constant expression, a funcref of this instance or an
                // import's (validated to be of the table's type).
                None => unsafe { Table::new(&ty, init, lazy) }
                    .ok_or(InstantiationError::TableTooLarge(ty.minimum))?,
                // SAFETY: as above.
                Some(pool) => unsafe { Table::new_pooled(&ty, init, lazy, pool)? },
            };
            // As for memories: the push moves no earlier table.
            let def = instance.tables.push(table);
            let def_ptr = instance.tables[def].definition();
            // SAFETY: in bounds.
            unsafe { *instance.table_slot(env.table_index(def)) = def_ptr };
        }
        Ok(instance)
    }

    /// The instance owning `vmctx`.
    ///
    /// # Safety
    ///
    /// `vmctx` must be the context of a live instance, and no other
    /// reference to that instance may be in use.
    pub unsafe fn from_vmctx<'a>(vmctx: *mut VMContext) -> &'a mut Instance {
        // SAFETY: the header of a live context stores its instance.
        unsafe {
            &mut *(*vmctx.cast::<VMContextHeader>())
                .instance
                .cast::<Instance>()
        }
    }

    /// A field of the context. In-bounds by construction: every offset
    /// comes from `VMOffsets`, whose accessors assert their index.
    fn vmctx_field<T>(&self, offset: u32) -> *mut T {
        debug_assert!(offset < self.module.offsets.size());
        // SAFETY: `offset` is inside the allocation (see above).
        unsafe { self.vmctx.as_ptr().add(offset as usize).cast() }
    }

    fn imported_function_mut(&self, index: FuncIndex) -> *mut VMFunctionImport {
        self.vmctx_field(self.module.offsets.imported_function(index))
    }

    fn table_slot(&self, index: TableIndex) -> *mut *mut VMTableDefinition {
        self.vmctx_field(self.module.offsets.table_definition_ptr(index))
    }

    fn memory_ref_mut(&self, index: MemoryIndex) -> *mut VMMemoryRef {
        self.vmctx_field(self.module.offsets.memory_ref(index))
    }

    fn imported_global_slot(&self, index: GlobalIndex) -> *mut *mut VMGlobalDefinition {
        self.vmctx_field(self.module.offsets.imported_global_ptr(index))
    }

    fn imported_tag_slot(&self, index: TagIndex) -> *mut *mut VMTagDefinition {
        self.vmctx_field(self.module.offsets.imported_tag_ptr(index))
    }

    /// How many fields an exception of tag `index` carries.
    pub fn tag_field_count(&self, index: TagIndex) -> usize {
        self.module.env.tag_type(index).params().len()
    }

    /// Tag `index`: its definition, whose address is its identity.
    pub fn tag_ptr(&self, index: TagIndex) -> *mut VMTagDefinition {
        match self.module.env.defined_tag_index(index) {
            Some(def) => self.vmctx_field(self.module.offsets.defined_tag(def)),
            // SAFETY: the slot was filled at creation.
            None => unsafe { *self.imported_tag_slot(index) },
        }
    }

    fn func_ref_mut(&self, index: DefinedFuncIndex) -> *mut VMFuncRef {
        self.vmctx_field(self.module.offsets.func_ref(index))
    }

    /// The funcref of defined function `def`, written into the context
    /// first if this is the first time anything needs it.
    pub fn defined_func_ref(&self, def: DefinedFuncIndex) -> *mut VMFuncRef {
        use std::sync::atomic::Ordering::Relaxed;
        let ptr = self.func_ref_mut(def);
        // Which funcrefs are written, one bit each (see
        // `VMOffsets::func_ref_written_word`): a funcref is written the
        // first time something needs it (a table element, `ref.func`, an
        // export, a constant expression).
        let word = self.vmctx_field::<std::sync::atomic::AtomicU64>(
            self.module.offsets.func_ref_written_word(def),
        );
        // SAFETY: the word is inside the context, 8-aligned, zeroed at
        // instantiation and from then on only read and written atomically
        // (generated code never touches it), for as long as `self` lives.
        let (word, mask) = (unsafe { &*word }, 1 << (def.index() % 64));
        if word.load(Relaxed) & mask == 0 {
            let info = &self.module.code.info.functions[def];
            let index = self.module.env.func_index(def);
            let ty = self.module.env.functions[index].type_index;
            let array_call: VMArrayCallFunction = match info.array_call {
                Some(loc) => {
                    let code = self.module.code.text_address(loc.start);
                    // SAFETY: the compiler emitted an array-call trampoline
                    // with exactly this signature at this offset.
                    unsafe { std::mem::transmute::<*const u8, VMArrayCallFunction>(code) }
                }
                None => array_call_unreachable,
            };
            let func_ref = VMFuncRef {
                wasm_call: self.module.code.text_address(info.wasm_call.start),
                array_call,
                vmctx: self.vmctx.as_ptr().cast::<VMOpaqueContext>(),
                type_index: self.module.type_ids[ty.index()],
            };
            // SAFETY: the slot is in this instance's context; nothing has
            // read it yet (its bit is clear), and the thread that owns the
            // store is the only one here.
            unsafe { ptr.write(func_ref) };
            word.fetch_or(mask, Relaxed);
        }
        ptr
    }

    /// The funcref of function `index` (this instance's own, or the
    /// imported function's).
    pub fn func_ref(&self, index: FuncIndex) -> *mut VMFuncRef {
        match self.module.env.defined_func_index(index) {
            Some(def) => self.defined_func_ref(def),
            // SAFETY: the import slot was filled at creation.
            None => unsafe { (*self.imported_function_mut(index)).func_ref.cast_mut() },
        }
    }

    /// Memory `index`.
    pub fn memory(&self, index: MemoryIndex) -> *mut LinearMemory {
        // SAFETY: the slot was filled at creation; a definition pointer is
        // a pointer to its `LinearMemory` (first field, `repr(C)`).
        unsafe { (*self.memory_ref_mut(index)).definition.cast() }
    }

    /// Table `index`.
    pub fn table(&self, index: TableIndex) -> *mut Table {
        // SAFETY: as for memories: the definition is the table's first field.
        unsafe { (*self.table_slot(index)).cast() }
    }

    /// Storage of global `index`.
    pub fn global_ptr(&self, index: GlobalIndex) -> *mut VMGlobalDefinition {
        match self.module.env.defined_global_index(index) {
            Some(def) => self.vmctx_field(self.module.offsets.defined_global(def)),
            // SAFETY: the slot was filled at creation.
            None => unsafe { *self.imported_global_slot(index) },
        }
    }

    /// Evaluates a (validated) constant expression in this instance.
    pub fn eval_const_expr(&self, expr: &ConstExpr) -> ValRaw {
        if let Some(v) = expr.as_constant_offset() {
            // Fast path for `i32.const`/`i64.const`: both encodings agree on
            // the low bytes the reader looks at.
            return ValRaw::i64(v as i64);
        }
        let mut stack: Vec<ValRaw> = Vec::with_capacity(4);
        let pop = |stack: &mut Vec<ValRaw>| stack.pop().unwrap_or_default();
        for op in expr.ops() {
            let v = match *op {
                ConstOp::I32Const(v) => ValRaw::i32(v),
                ConstOp::I64Const(v) => ValRaw::i64(v),
                ConstOp::F32Const(v) => ValRaw::f32(v),
                ConstOp::F64Const(v) => ValRaw::f64(v),
                ConstOp::V128Const(v) => ValRaw::v128(v),
                ConstOp::GlobalGet(g) => {
                    // SAFETY: the global's storage is live and initialized
                    // (validation only allows earlier or imported globals).
                    ValRaw::from_bytes(unsafe { (*self.global_ptr(g)).storage })
                }
                ConstOp::RefNull(_) => ValRaw::ptr(std::ptr::null_mut()),
                ConstOp::RefFunc(f) => ValRaw::ptr(self.func_ref(f).cast()),
                ConstOp::I32Add | ConstOp::I32Sub | ConstOp::I32Mul => {
                    let b = pop(&mut stack).get_i32();
                    let a = pop(&mut stack).get_i32();
                    ValRaw::i32(match op {
                        ConstOp::I32Add => a.wrapping_add(b),
                        ConstOp::I32Sub => a.wrapping_sub(b),
                        _ => a.wrapping_mul(b),
                    })
                }
                ConstOp::I64Add | ConstOp::I64Sub | ConstOp::I64Mul => {
                    let b = pop(&mut stack).get_i64();
                    let a = pop(&mut stack).get_i64();
                    ValRaw::i64(match op {
                        ConstOp::I64Add => a.wrapping_add(b),
                        ConstOp::I64Sub => a.wrapping_sub(b),
                        _ => a.wrapping_mul(b),
                    })
                }
            };
            stack.push(v);
        }
        pop(&mut stack)
    }

    /// The value of an offset expression: an `i64` for a segment of a
    /// 64-bit memory or table, else an `i32`.
    fn eval_offset(&self, expr: &ConstExpr, is_64: bool) -> u64 {
        let value = self.eval_const_expr(expr);
        if is_64 {
            value.get_i64() as u64
        } else {
            u64::from(value.get_i32() as u32)
        }
    }

    /// Says that no guest code of the owning store ever ran, so that its
    /// memories and tables may go back to a pool without a reset if the
    /// host did not write them either (see [`super::pool`]). Called only
    /// by a store being dropped that never entered wasm.
    pub fn release_untouched_by_guest(&mut self) {
        for memory in self.memories.values_mut() {
            memory.release_untouched_by_guest();
        }
        for table in self.tables.values_mut() {
            table.release_untouched_by_guest();
        }
    }

    /// Applies the active element and data segments the module's plan
    /// lists, in order; from then on they and the declared ones count as
    /// dropped (the plan says which). Stops at the first that does not fit,
    /// reporting the trap; earlier writes stay (as the spec requires).
    pub fn initialize_segments(&mut self) -> Result<(), TrapKind> {
        let module = self.module.clone();
        let env = &module.env;
        for &index in module.segment_plan(self.memory_images_used).elems.iter() {
            let ElemMode::Active { table, offset } = &env.elems[index].mode else {
                continue;
            };
            let dst = self.eval_offset(offset, env.tables[*table].table64);
            let len = env.elems[index].items.len() as u64;
            self.copy_elem(*table, index, dst, 0, len, len)?;
        }
        for &index in module.segment_plan(self.memory_images_used).datas.iter() {
            let DataMode::Active { memory, offset } = &env.datas[index].mode else {
                continue;
            };
            let dst = self.eval_offset(offset, env.memories[*memory].memory64);
            let bytes = env.data_bytes(index);
            self.copy_data(*memory, bytes, dst, 0, bytes.len() as u64)?;
        }
        Ok(())
    }

    /// Whether element segment `elem` is dropped (nothing runs before
    /// `initialize_segments`, so the plan's drops always apply).
    fn elem_dropped(&self, elem: ElemIndex) -> bool {
        let plan = self.module.segment_plan(self.memory_images_used);
        bit(&plan.elems_dropped, elem.index()) || bit(&self.dropped_elems, elem.index())
    }

    /// Whether data segment `data` is dropped (as for elements).
    fn data_dropped(&self, data: DataIndex) -> bool {
        let plan = self.module.segment_plan(self.memory_images_used);
        bit(&plan.datas_dropped, data.index()) || bit(&self.dropped_datas, data.index())
    }

    /// `table.init`: copies `len` items of segment `elem` from `src` to
    /// `table` at `dst`.
    pub fn table_init(
        &mut self,
        table: TableIndex,
        elem: ElemIndex,
        dst: u64,
        src: u64,
        len: u64,
    ) -> Result<(), TrapKind> {
        let available = if self.elem_dropped(elem) {
            0
        } else {
            self.module.env.elems[elem].items.len() as u64
        };
        self.copy_elem(table, elem, dst, src, len, available)
    }

    /// Copies `len` items of segment `elem`, of which the first `available`
    /// may be read, from `src` to `table` at `dst`.
    fn copy_elem(
        &mut self,
        table: TableIndex,
        elem: ElemIndex,
        dst: u64,
        src: u64,
        len: u64,
        available: u64,
    ) -> Result<(), TrapKind> {
        let env = self.module.env.clone();
        let segment = &env.elems[elem];
        // SAFETY: table pointers in the context are live.
        let t = unsafe { &mut *self.table(table) };
        let in_bounds = src.checked_add(len).is_some_and(|end| end <= available)
            && dst.checked_add(len).is_some_and(|end| end <= t.size());
        if !in_bounds {
            return Err(TrapKind::TableOutOfBounds);
        }
        let (src, dst, len) = (src as usize, dst as usize, len as usize);
        // In bounds (checked above), so `set` cannot fail.
        match &segment.items {
            ElemItems::Functions(funcs) => {
                for (i, f) in funcs[src..src + len].iter().enumerate() {
                    // SAFETY: a funcref of this instance or an import's.
                    unsafe { t.set((dst + i) as u64, self.func_ref(*f).cast()) };
                }
            }
            ElemItems::Expressions(exprs) => {
                for (i, e) in exprs[src..src + len].iter().enumerate() {
                    // SAFETY: a constant expression of the segment's
                    // (validated) type: null or a funcref as above.
                    unsafe { t.set((dst + i) as u64, self.eval_const_expr(e).get_ptr()) };
                }
            }
        }
        Ok(())
    }

    /// `elem.drop`.
    pub fn elem_drop(&mut self, elem: ElemIndex) {
        set_bit(&mut self.dropped_elems, elem.index());
    }

    /// `memory.init`: copies `len` bytes of segment `data` from `src` to
    /// `memory` at `dst`.
    pub fn memory_init(
        &mut self,
        memory: MemoryIndex,
        data: DataIndex,
        dst: u64,
        src: u64,
        len: u64,
    ) -> Result<(), TrapKind> {
        let env = self.module.env.clone();
        let bytes = if self.data_dropped(data) {
            &[][..]
        } else {
            env.data_bytes(data)
        };
        self.copy_data(memory, bytes, dst, src, len)
    }

    /// Copies `len` bytes of `bytes` from `src` to `memory` at `dst`.
    fn copy_data(
        &mut self,
        memory: MemoryIndex,
        bytes: &[u8],
        dst: u64,
        src: u64,
        len: u64,
    ) -> Result<(), TrapKind> {
        // SAFETY: memory pointers in the context are live.
        let mem = unsafe { &mut *self.memory(memory) };
        let in_bounds = src
            .checked_add(len)
            .is_some_and(|end| end <= bytes.len() as u64)
            && dst
                .checked_add(len)
                .is_some_and(|end| end <= mem.byte_size() as u64);
        if !in_bounds {
            return Err(TrapKind::MemoryOutOfBounds);
        }
        let (src, dst, len) = (src as usize, dst as usize, len as usize);
        mem.as_mut_slice()[dst..dst + len].copy_from_slice(&bytes[src..src + len]);
        Ok(())
    }

    /// `data.drop`.
    pub fn data_drop(&mut self, data: DataIndex) {
        set_bit(&mut self.dropped_datas, data.index());
    }

    /// Visits every host-managed reference (externref, exception) this
    /// instance's own tables and globals hold.
    pub fn for_each_ref(&self, visit: &mut dyn FnMut(usize)) {
        let env = &self.module.env;
        for table in self.tables.values() {
            table.ref_elements().iter().for_each(|e| visit(*e as usize));
        }
        for (def, _) in env.global_inits.iter() {
            let index = env.global_index(def);
            if let keel_environ::WasmValType::Ref(r) = env.globals[index].ty
                && !r.heap.is_func()
            {
                // SAFETY: defined globals live in this instance's context.
                let raw = ValRaw::from_bytes(unsafe { (*self.global_ptr(index)).storage });
                visit(raw.get_ptr() as usize);
            }
        }
    }
}

impl Drop for LoadedModule {
    fn drop(&mut self) {
        super::code_registry::unregister(&self.code);
    }
}
