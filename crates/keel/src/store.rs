//! Stores: the owner of all instances and the host state `T`.
//!
//! Every handle (`Func`, `Memory`, `Instance`, ...) is an index into one
//! store, tagged with the store's id. Everything a store creates lives until
//! the store is dropped; that is what lets generated code hold raw pointers
//! between instances of one store.

pub(crate) mod async_calls;

use crate::func::{FuncData, HostFunc};
use crate::instance::InstanceData;
use crate::limits::ResourceLimiter;
use crate::vm::epoch::StoreEpoch;
use crate::vm::exception::ExnObject;
use crate::vm::libcalls::{Grow, Resume, StoreHooks};
use crate::vm::vmcontext::{
    VMContextHeader, VMFuncRef, VMGlobalDefinition, VMStoreContext, VMTagDefinition,
};
use crate::vm::{LinearMemory, Table};
use crate::{Engine, Module};
use keel_environ::VMCONTEXT_MAGIC;
use std::collections::HashMap;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A unique id per store, so a handle used with the wrong store is caught.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct StoreId(pub(crate) u64);

impl StoreId {
    fn allocate() -> StoreId {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        StoreId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// A handle to something a store owns.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Stored {
    pub store: StoreId,
    pub index: usize,
}

/// A global's storage and type.
pub(crate) struct GlobalData {
    pub def: NonNull<VMGlobalDefinition>,
    pub ty: crate::GlobalType,
}

/// The part of a store that does not depend on `T`.
pub struct StoreOpaque {
    engine: Engine,
    id: StoreId,
    pub(crate) vm_store_context: VMStoreContext,
    /// The caller context passed when the host calls a function directly.
    pub(crate) host_caller: VMContextHeader,
    pub(crate) instances: Vec<InstanceData>,
    pub(crate) funcs: Vec<FuncData>,
    func_index: HashMap<usize, usize>,
    pub(crate) memories: Vec<NonNull<LinearMemory>>,
    pub(crate) tables: Vec<NonNull<Table>>,
    pub(crate) globals: Vec<GlobalData>,
    // Boxed: generated code holds pointers to these, which must not move
    // when the vector grows.
    #[allow(clippy::vec_box, reason = "elements must keep their addresses")]
    owned_memories: Vec<Box<LinearMemory>>,
    #[allow(clippy::vec_box, reason = "elements must keep their addresses")]
    owned_tables: Vec<Box<Table>>,
    #[allow(clippy::vec_box, reason = "elements must keep their addresses")]
    owned_globals: Vec<Box<VMGlobalDefinition>>,
    host_funcs: Vec<Arc<HostFunc>>,
    /// Host functions imported through `InstancePre`s, a set per distinct
    /// pre-instance.
    host_func_sets: Vec<Arc<[Arc<HostFunc>]>>,
    modules: Vec<Module>,
    /// Externrefs wasm of this store may hold.
    externrefs: crate::externref::ExternRefSet,
    /// Exception tags the store has seen (its own and its instances'), by
    /// definition, and the address of each definition's entry.
    tags: Vec<NonNull<VMTagDefinition>>,
    tag_index: HashMap<usize, usize>,
    #[allow(clippy::vec_box, reason = "elements must keep their addresses")]
    owned_tags: Vec<Box<VMTagDefinition>>,
    /// Exception objects wasm of this store may hold.
    exceptions: crate::exnref::ExceptionHeap,
    /// The exception that last reached the host uncaught, or that a host
    /// function is throwing (`Store::throw`).
    pub(crate) pending_exception: Option<crate::ExnRef>,
    /// Scratch space for untyped calls.
    pub(crate) call_scratch: Vec<crate::vm::ValRaw>,
    /// This store's epoch deadline and interrupt word (registered with the
    /// engine when it has epoch interruption on).
    pub(crate) epoch: Arc<StoreEpoch>,
    /// The error of a host hook (resource limiter, deadline callback) that
    /// failed inside wasm; the call that trapped with `HostError` returns it.
    pub(crate) pending_error: Option<anyhow::Error>,
    /// The fiber of the async call running now, while it runs (see
    /// `store/async_calls.rs`).
    pub(crate) async_cx: Option<async_calls::AsyncCx>,
    /// The stack of the last async call, kept for the next one.
    pub(crate) spare_fiber_stack: Option<crate::vm::fiber::FiberStack>,
    /// Fuel not yet given to wasm (`Store::fuel_async_yield_interval`).
    pub(crate) fuel_reserve: u64,
    /// How much fuel wasm is given at a time, if not all of it.
    pub(crate) fuel_yield_interval: Option<u64>,
    /// Memories and tables the store's instances define, for the limiter.
    defined_memories: usize,
    defined_tables: usize,
}

// SAFETY: every raw pointer in a store points to memory the store owns (or
// to engine-owned code), and a store is only used by one thread at a time
// (`&mut` access); moving it moves the whole graph.
unsafe impl Send for StoreOpaque {}
// SAFETY: shared access only reads.
unsafe impl Sync for StoreOpaque {}

impl StoreOpaque {
    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub(crate) fn id(&self) -> StoreId {
        self.id
    }

    /// Panics if `s` belongs to another store, as Wasmtime does: mixing
    /// stores is a bug in the embedding, not a condition to handle.
    pub(crate) fn check(&self, s: Stored) -> usize {
        assert!(s.store == self.id, "object used with the wrong store");
        s.index
    }

    pub(crate) fn stored(&self, index: usize) -> Stored {
        Stored {
            store: self.id,
            index,
        }
    }

    /// The error a call into wasm returns for what the runtime recorded: a
    /// `HostError` trap is replaced by the error the failing hook left.
    pub(crate) fn trap_to_error(
        &mut self,
        record: Box<crate::vm::traphandlers::TrapRecord>,
    ) -> crate::Error {
        use crate::vm::traphandlers::UnwindReason;
        if let UnwindReason::Trap(keel_environ::TrapKind::OutOfFuel) = record.reason {
            // The add that trapped carried: the guest asked for more than
            // was left, and the counter was not written back.
            self.vm_store_context.fuel_consumed = crate::metering::NO_FUEL_LEFT;
        }
        if let UnwindReason::Trap(keel_environ::TrapKind::UncaughtException) = record.reason {
            // The store holds the exception (`take_pending_exception`).
            let backtrace = crate::trap::backtrace_of(&record);
            return anyhow::Error::new(crate::ThrownException).context(backtrace);
        }
        if let UnwindReason::Trap(keel_environ::TrapKind::HostError) = record.reason
            && let Some(error) = self.pending_error.take()
        {
            let backtrace = crate::trap::backtrace_of(&record);
            return error.context(backtrace);
        }
        crate::trap::from_record(record)
    }

    pub(crate) fn max_wasm_stack(&self) -> usize {
        self.engine.config().max_wasm_stack
    }

    /// Whether this store's wasm keeps its fuel in a register
    /// (`Tunables::fuel_in_register`), so that it must be entered through
    /// a trampoline that loads it.
    pub(crate) fn fuel_in_register(&self) -> bool {
        self.vm_store_context.fuel_in_register
    }

    pub(crate) fn store_context_ptr(&mut self) -> *mut VMStoreContext {
        &mut self.vm_store_context
    }

    pub(crate) fn host_caller_ptr(&mut self) -> *mut crate::vm::vmcontext::VMOpaqueContext {
        (&mut self.host_caller as *mut VMContextHeader).cast()
    }

    /// The externrefs wasm may hold.
    pub(crate) fn externrefs(&self) -> &crate::externref::ExternRefSet {
        &self.externrefs
    }

    /// Visits every externref held by a table or global of this store.
    /// Calls `visit` with every word where the store keeps a host-managed
    /// reference (an externref or an exception) that wasm put there:
    /// tables and globals of those types. Roots of both the externref set
    /// and the exception heap (each ignores words that are not its own);
    /// exceptions' fields are roots of the externref set too.
    pub(crate) fn for_each_ref_root(&self, visit: &mut dyn FnMut(usize)) {
        for instance in &self.instances {
            instance.handle.for_each_ref(visit);
        }
        for table in &self.owned_tables {
            table.ref_elements().iter().for_each(|e| visit(*e as usize));
        }
        for global in &self.owned_globals {
            visit(crate::vm::ValRaw::from_bytes(global.storage).get_ptr() as usize);
        }
    }

    /// The store's exception objects.
    pub(crate) fn exceptions(&self) -> &crate::exnref::ExceptionHeap {
        &self.exceptions
    }

    /// The handle for a tag definition, creating it on first sight.
    ///
    /// # Safety
    ///
    /// `def` must point to a tag definition that lives as long as this
    /// store: one of an instance of this store, or of `Tag::new`.
    pub(crate) unsafe fn tag_handle(&mut self, def: NonNull<VMTagDefinition>) -> crate::Tag {
        let key = def.as_ptr() as usize;
        let index = match self.tag_index.get(&key) {
            Some(i) => *i,
            None => {
                let i = self.tags.len();
                self.tags.push(def);
                self.tag_index.insert(key, i);
                i
            }
        };
        crate::Tag(self.stored(index))
    }

    /// A new tag owned by the store.
    pub(crate) fn add_tag(&mut self, type_index: keel_environ::SharedTypeIndex) -> crate::Tag {
        let mut def = Box::new(VMTagDefinition::new(type_index));
        let ptr = NonNull::from(&mut *def);
        self.owned_tags.push(def);
        // SAFETY: the store now owns the definition.
        unsafe { self.tag_handle(ptr) }
    }

    /// The definition behind a tag handle.
    pub(crate) fn tag_definition(&self, handle: Stored) -> *mut VMTagDefinition {
        self.tags[self.check(handle)].as_ptr()
    }

    /// The type of the tag behind a handle.
    pub(crate) fn tag_type_index(&self, handle: Stored) -> keel_environ::SharedTypeIndex {
        // SAFETY: tag definitions of a store live as long as it does and
        // never change.
        unsafe { (*self.tag_definition(handle)).type_index }
    }

    /// The index of the tag whose definition is at `def`, if the store
    /// knows it.
    pub(crate) fn tag_index_of(&self, def: *const VMTagDefinition) -> Option<usize> {
        self.tag_index.get(&(def as usize)).copied()
    }

    /// The handle of the tag whose definition is at `def`, if the store
    /// knows it.
    pub(crate) fn tag_of_definition(&self, def: *const VMTagDefinition) -> Option<crate::Tag> {
        self.tag_index_of(def).map(|i| crate::Tag(self.stored(i)))
    }

    /// The memory behind a handle.
    pub(crate) fn memory(&self, handle: Stored) -> &LinearMemory {
        // SAFETY: memories of a store live as long as the store, and a
        // shared borrow of the store excludes running wasm.
        unsafe { self.memories[self.check(handle)].as_ref() }
    }

    /// The memory behind a handle, mutably.
    pub(crate) fn memory_mut(&mut self, handle: Stored) -> &mut LinearMemory {
        let i = self.check(handle);
        // SAFETY: as in `memory`, exclusively.
        unsafe { self.memories[i].as_mut() }
    }

    /// The table behind a handle.
    pub(crate) fn table(&self, handle: Stored) -> &Table {
        // SAFETY: as for memories.
        unsafe { self.tables[self.check(handle)].as_ref() }
    }

    /// The table behind a handle, mutably.
    pub(crate) fn table_mut(&mut self, handle: Stored) -> &mut Table {
        let i = self.check(handle);
        // SAFETY: as for memories, exclusively.
        unsafe { self.tables[i].as_mut() }
    }

    /// A global's current value.
    pub(crate) fn global_get(&mut self, handle: Stored) -> crate::Val {
        let data = &self.globals[self.check(handle)];
        let ty = *data.ty.content();
        // SAFETY: global storage lives as long as the store.
        let raw = crate::vm::ValRaw::from_bytes(unsafe { data.def.as_ref().storage });
        // SAFETY: the storage holds a value of the global's type (written by
        // validated wasm, or by `Global::new`/`set` after a type check), and
        // a reference in a global of this store is one the store keeps
        // alive (globals are roots of the externref set).
        unsafe { crate::Val::from_raw(self, raw, &ty) }
    }

    /// Element `index` of a table, or `None` if out of bounds.
    pub(crate) fn table_get(&mut self, handle: Stored, index: u64) -> Option<crate::Ref> {
        let table = self.table_mut(handle);
        let heap = *crate::RefType::from_wasm(table.ty()).heap_type();
        let raw = table.get(index)?;
        // SAFETY: an element of a table of this store is null or a reference
        // of the table's type that the store keeps alive (a funcref of one of
        // its instances or host functions; an externref, which tables root).
        Some(unsafe { crate::Ref::from_raw(self, raw, heap) })
    }

    /// Overwrites a global's value (the caller has checked its type,
    /// mutability and store).
    pub(crate) fn global_set(&mut self, handle: Stored, value: &crate::Val) {
        let i = self.check(handle);
        let ty = self.globals[i].ty;
        assert!(
            value.matches(self, ty.content()),
            "global value of the wrong type"
        );
        let raw = value.to_raw(self);
        // SAFETY: global storage lives as long as the store; no wasm of
        // this store runs while it is mutably borrowed.
        unsafe { self.globals[i].def.as_mut().storage = raw.bytes() };
    }

    /// A copy of a function's funcref.
    pub(crate) fn func_ref_value(&self, handle: Stored) -> VMFuncRef {
        // SAFETY: funcrefs of a store live as long as the store and never
        // change once created.
        unsafe { *self.funcs[self.check(handle)].func_ref.as_ptr() }
    }

    /// The handle for a funcref, creating it on first sight.
    ///
    /// # Safety
    ///
    /// `func_ref` must point to a funcref that lives as long as this store
    /// and never changes: one of an instance of this store, or of a host
    /// function the store keeps alive. Safe code dereferences it later.
    pub(crate) unsafe fn func_from_ref(&mut self, func_ref: NonNull<VMFuncRef>) -> crate::Func {
        let key = func_ref.as_ptr() as usize;
        let index = match self.func_index.get(&key) {
            Some(i) => *i,
            None => {
                let i = self.funcs.len();
                self.funcs.push(FuncData { func_ref });
                self.func_index.insert(key, i);
                i
            }
        };
        crate::Func(self.stored(index))
    }

    /// Keeps a host function alive for the life of the store.
    pub(crate) fn add_host_func(&mut self, f: Arc<HostFunc>) -> crate::Func {
        let r = f.func_ref();
        self.host_funcs.push(f);
        // SAFETY: the store now keeps the host function, which owns its
        // funcref, alive.
        unsafe { self.func_from_ref(r) }
    }

    /// Keeps a set of host functions alive as long as the store; the last
    /// set kept is not kept twice.
    pub(crate) fn keep_host_funcs(&mut self, funcs: &Arc<[Arc<HostFunc>]>) {
        if !self
            .host_func_sets
            .last()
            .is_some_and(|last| Arc::ptr_eq(last, funcs))
        {
            self.host_func_sets.push(funcs.clone());
        }
    }

    /// The handle for a memory (owned by an instance or by the store).
    ///
    /// # Safety
    ///
    /// `memory` must point to a memory that lives as long as this store
    /// (one of its instances' or its own); [`StoreOpaque::memory`]
    /// dereferences it.
    pub(crate) unsafe fn memory_handle(&mut self, memory: NonNull<LinearMemory>) -> crate::Memory {
        let i = self.memories.len();
        self.memories.push(memory);
        crate::Memory(self.stored(i))
    }

    /// Takes ownership of a host-created memory.
    pub(crate) fn add_memory(&mut self, mut memory: Box<LinearMemory>) -> crate::Memory {
        let ptr = NonNull::from(&mut *memory);
        self.owned_memories.push(memory);
        // SAFETY: the store owns the boxed memory, which never moves.
        unsafe { self.memory_handle(ptr) }
    }

    /// The handle for a table.
    ///
    /// # Safety
    ///
    /// As for [`StoreOpaque::memory_handle`], for a table.
    pub(crate) unsafe fn table_handle(&mut self, table: NonNull<Table>) -> crate::Table {
        let i = self.tables.len();
        self.tables.push(table);
        crate::Table(self.stored(i))
    }

    /// Takes ownership of a host-created table.
    /// `r` as an element of a table of type `ty`, checked to be of the
    /// table's element type and of this store: what the unsafe table
    /// writers below require.
    fn table_element(&self, r: &crate::Ref, ty: &crate::TableType) -> crate::Result<*mut u8> {
        anyhow::ensure!(
            r.matches(self, ty.element()),
            "reference of the wrong type for this table"
        );
        if let crate::Ref::Func(Some(f)) = r {
            anyhow::ensure!(f.0.store == self.id(), "function used with the wrong store");
        }
        Ok(r.to_raw(self))
    }

    /// A new table owned by the store, every element set to `init`.
    pub(crate) fn new_table(
        &mut self,
        ty: &crate::TableType,
        init: &crate::Ref,
    ) -> crate::Result<crate::Table> {
        let init = self.table_element(init, ty)?;
        // SAFETY: `table_element` checked `init` (null, a funcref of this
        // store, or an externref its set now holds).
        let table = unsafe { Table::new(&ty.to_wasm(), init, None) }
            .ok_or_else(|| anyhow::anyhow!("table of {} elements is too large", ty.minimum()))?;
        Ok(self.add_table(Box::new(table)))
    }

    /// Sets element `index` of a table to `value`.
    pub(crate) fn table_set(
        &mut self,
        handle: Stored,
        index: u64,
        value: &crate::Ref,
    ) -> crate::Result<()> {
        let t = self.table(handle);
        let ty = crate::TableType::new(crate::RefType::from_wasm(t.ty()), 0, None);
        let raw = self.table_element(value, &ty)?;
        // SAFETY: checked by `table_element`.
        unsafe { self.table_mut(handle).set(index, raw) }
            .ok_or_else(|| anyhow::anyhow!("table index out of bounds"))
    }

    /// Grows a table of type `ty` by `delta` elements set to `init` (the
    /// store's limiter already agreed), returning the old size, or `None`
    /// past the table's maximum.
    pub(crate) fn table_grow(
        &mut self,
        handle: Stored,
        ty: &crate::TableType,
        delta: u64,
        init: &crate::Ref,
    ) -> crate::Result<Option<u64>> {
        let raw = self.table_element(init, ty)?;
        // SAFETY: checked by `table_element`.
        Ok(unsafe { self.table_mut(handle).grow(delta, raw) })
    }

    pub(crate) fn add_table(&mut self, mut table: Box<Table>) -> crate::Table {
        let ptr = NonNull::from(&mut *table);
        self.owned_tables.push(table);
        // SAFETY: the store owns the boxed table, which never moves.
        unsafe { self.table_handle(ptr) }
    }

    /// The handle for a global.
    ///
    /// # Safety
    ///
    /// As for [`StoreOpaque::memory_handle`], for a global's storage, which
    /// must hold a value of type `ty`.
    pub(crate) unsafe fn global_handle(
        &mut self,
        def: NonNull<VMGlobalDefinition>,
        ty: crate::GlobalType,
    ) -> crate::Global {
        let i = self.globals.len();
        self.globals.push(GlobalData { def, ty });
        crate::Global(self.stored(i))
    }

    /// A new global owned by the store, holding `value` (the caller has
    /// checked that it is of type `ty`, and of this store).
    pub(crate) fn add_global(
        &mut self,
        ty: crate::GlobalType,
        value: &crate::Val,
    ) -> crate::Global {
        assert!(
            value.matches(self, ty.content()),
            "global value of the wrong type"
        );
        let mut def = Box::new(VMGlobalDefinition {
            storage: value.to_raw(self).bytes(),
        });
        let ptr = NonNull::from(&mut *def);
        self.owned_globals.push(def);
        // SAFETY: the store owns the boxed storage, which never moves, and
        // it holds a value of type `ty` (asserted above).
        unsafe { self.global_handle(ptr, ty) }
    }

    /// Keeps a module alive for the life of the store.
    pub(crate) fn keep_module(&mut self, module: &Module) {
        if !self.modules.iter().any(|m| Module::same(m, module)) {
            self.modules.push(module.clone());
        }
    }
}

/// The closure that finds a store's resource limiter in its data.
pub(crate) type LimiterFn<T> = dyn FnMut(&mut T) -> &mut (dyn ResourceLimiter) + Send + Sync;

/// A store with its host data. `repr(C)` so that a pointer to the first
/// field (what contexts hold) is a pointer to the whole.
#[repr(C)]
pub(crate) struct StoreInner<T: 'static> {
    pub(crate) opaque: StoreOpaque,
    pub(crate) limiter: Option<Box<LimiterFn<T>>>,
    /// What happens when the epoch deadline passes: trap (`None`) or ask.
    pub(crate) epoch_callback: Option<Box<crate::metering::EpochCallback<T>>>,
    pub(crate) data: T,
}

impl<T: 'static> StoreInner<T> {
    /// Asks the limiter whether a memory may grow; its error is the
    /// caller's.
    pub(crate) fn limit_memory(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> crate::Result<bool> {
        match &mut self.limiter {
            Some(l) => l(&mut self.data).memory_growing(current, desired, maximum),
            None => Ok(true),
        }
    }

    /// Asks the limiter whether a table may grow; its error is the caller's.
    pub(crate) fn limit_table(
        &mut self,
        current: u64,
        desired: u64,
        maximum: Option<u64>,
    ) -> crate::Result<bool> {
        let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        match &mut self.limiter {
            Some(l) => {
                l(&mut self.data).table_growing(size(current), size(desired), maximum.map(size))
            }
            None => Ok(true),
        }
    }

    /// Refuses an instantiation that would take the store past the
    /// limiter's counts of instances, memories or tables (each counts what
    /// the store's instances define).
    pub(crate) fn check_counts(
        &mut self,
        instances: usize,
        memories: usize,
        tables: usize,
    ) -> crate::Result<()> {
        let Some(l) = &mut self.limiter else {
            return Ok(());
        };
        let limiter = l(&mut self.data);
        let o = &mut self.opaque;
        let checks = [
            (
                "instance",
                o.instances.len(),
                instances,
                limiter.instances(),
            ),
            ("memory", o.defined_memories, memories, limiter.memories()),
            ("table", o.defined_tables, tables, limiter.tables()),
        ];
        for (what, have, adding, limit) in checks {
            if have.saturating_add(adding) > limit {
                anyhow::bail!("the store's {what} limit of {limit} was reached");
            }
        }
        o.defined_memories += memories;
        o.defined_tables += tables;
        Ok(())
    }

    /// A limiter's answer as generated code takes it, keeping its error.
    fn grow_decision(&mut self, answer: crate::Result<bool>) -> Grow {
        match answer {
            Ok(true) => Grow::Allow,
            Ok(false) => Grow::Deny,
            Err(e) => {
                self.opaque.pending_error = Some(e);
                Grow::Fail
            }
        }
    }
}

impl<T: 'static> StoreHooks for StoreInner<T> {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> Grow {
        let answer = self.limit_memory(current, desired, maximum);
        self.grow_decision(answer)
    }

    fn table_growing(&mut self, current: u64, desired: u64, maximum: Option<u64>) -> Grow {
        let answer = self.limit_table(current, desired, maximum);
        self.grow_decision(answer)
    }

    fn new_epoch(&mut self) -> Resume {
        crate::metering::new_epoch(self)
    }

    fn out_of_fuel(&mut self, cost: u64) -> Resume {
        crate::metering::out_of_fuel(self, cost)
    }

    fn new_exception(&mut self, mut object: ExnObject) -> *const ExnObject {
        object.set_owner(self.opaque.id().0);
        let object = Arc::new(object);
        if let Err(e) = self.opaque.exceptions.adopt(&self.opaque, &object) {
            self.opaque.pending_error = Some(e);
            return std::ptr::null();
        }
        Arc::as_ptr(&object)
    }

    fn exception_uncaught(&mut self, exn: *const ExnObject) {
        self.opaque.pending_exception = self.opaque.exceptions.get(exn as usize).map(crate::ExnRef);
    }
}

impl<T: 'static> StoreInner<T> {
    /// The store behind a context's `store` pointer.
    ///
    /// # Safety
    ///
    /// `store` must come from a live context of a `Store<T>` (same `T`)
    /// that is not otherwise borrowed.
    pub(crate) unsafe fn from_raw<'a>(store: *mut u8) -> &'a mut StoreInner<T> {
        // SAFETY: `repr(C)` with the opaque part first.
        unsafe { &mut *store.cast::<StoreInner<T>>() }
    }
}

/// Owns instances, and everything they create, plus host data `T`.
///
/// Dropping the store frees all of it at once.
pub struct Store<T: 'static> {
    pub(crate) inner: Box<StoreInner<T>>,
}

impl Drop for StoreOpaque {
    fn drop(&mut self) {
        if self.engine.config().tunables().epoch_interruption {
            self.engine.epochs().unregister(self.id.0);
        }
        // No guest code ever ran here: what the host did not write is as
        // the pool handed it out.
        if !self.vm_store_context.wasm_entered {
            for instance in &mut self.instances {
                instance.handle.release_untouched_by_guest();
            }
        }
        // Instances go first: nothing may see the externrefs after this.
        self.instances.clear();
        self.pending_exception = None;
        self.exceptions.clear();
        self.externrefs.clear();
    }
}

impl<T: 'static> Store<T> {
    /// A store for `engine` holding `data`.
    pub fn new(engine: &Engine, data: T) -> Store<T> {
        let epoch = Arc::new(StoreEpoch::default());
        let id = StoreId::allocate();
        if engine.config().tunables().epoch_interruption {
            // A deadline of 0 ticks, as in Wasmtime: wasm traps at its first
            // check until the host sets one.
            engine.epochs().register(id.0, epoch.clone(), 0);
        }
        let mut inner = Box::new(StoreInner {
            opaque: StoreOpaque {
                engine: engine.clone(),
                id,
                vm_store_context: VMStoreContext {
                    stack_limit: usize::MAX,
                    last_wasm_exit_fp: 0,
                    fuel_consumed: crate::metering::NO_FUEL_LEFT,
                    epoch_interrupt: epoch.interrupt_word(),
                    slow_path_call: engine.slow_path_call(),
                    slow_path_status: 0,
                    hooks: None,
                    epoch_page: epoch.interrupt_page(),
                    epoch_thread: epoch.running_thread(),
                    fuel_in_register: engine.config().tunables().fuel_in_register,
                    wasm_entered: false,
                },
                host_caller: VMContextHeader {
                    magic: VMCONTEXT_MAGIC,
                    store: std::ptr::null_mut(),
                    store_context: std::ptr::null_mut(),
                    builtins: std::ptr::null(),
                    type_ids: std::ptr::null(),
                    instance: std::ptr::null_mut(),
                    epoch_page: epoch.interrupt_page(),
                },
                instances: Vec::new(),
                funcs: Vec::new(),
                func_index: HashMap::new(),
                memories: Vec::new(),
                tables: Vec::new(),
                globals: Vec::new(),
                owned_memories: Vec::new(),
                owned_tables: Vec::new(),
                owned_globals: Vec::new(),
                host_funcs: Vec::new(),
                host_func_sets: Vec::new(),
                modules: Vec::new(),
                externrefs: Default::default(),
                tags: Vec::new(),
                tag_index: HashMap::new(),
                owned_tags: Vec::new(),
                exceptions: Default::default(),
                pending_exception: None,
                call_scratch: Vec::new(),
                epoch: epoch.clone(),
                pending_error: None,
                async_cx: None,
                spare_fiber_stack: None,
                fuel_reserve: 0,
                fuel_yield_interval: None,
                defined_memories: 0,
                defined_tables: 0,
            },
            limiter: None,
            epoch_callback: None,
            data,
        });
        // The box never moves, so these self-pointers stay valid.
        let hooks: &mut dyn StoreHooks = &mut *inner;
        let hooks = NonNull::from(hooks);
        let store_ptr: *mut StoreInner<T> = &mut *inner;
        inner.opaque.vm_store_context.hooks = Some(hooks);
        inner.opaque.host_caller.store = store_ptr.cast();
        inner.opaque.host_caller.store_context = &mut inner.opaque.vm_store_context;
        Store { inner }
    }

    /// The host data.
    pub fn data(&self) -> &T {
        &self.inner.data
    }

    /// The host data, mutably.
    pub fn data_mut(&mut self) -> &mut T {
        &mut self.inner.data
    }

    /// Consumes the store, returning the host data.
    pub fn into_data(self) -> T {
        let inner = *self.inner;
        inner.data
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        self.inner.opaque.engine()
    }

    /// Frees every externref and exception that wasm can no longer reach,
    /// now rather than at the next threshold. Returns how many externrefs
    /// remain.
    pub fn gc(&mut self) -> usize {
        let opaque = &self.inner.opaque;
        // Exceptions first: a freed exception lets go of the externrefs
        // in its fields.
        opaque.exceptions.collect_now(opaque);
        opaque.externrefs.collect_now(opaque);
        opaque.externrefs.len()
    }

    /// Installs a resource limiter consulted whenever a memory or table
    /// grows (and when instances are created).
    pub fn limiter(
        &mut self,
        limiter: impl FnMut(&mut T) -> &mut (dyn ResourceLimiter) + Send + Sync + 'static,
    ) {
        self.inner.limiter = Some(Box::new(limiter));
    }
}

impl<T: std::fmt::Debug + 'static> std::fmt::Debug for Store<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("data", &self.inner.data)
            .finish_non_exhaustive()
    }
}

/// Shared access to a store.
pub struct StoreContext<'a, T: 'static>(pub(crate) &'a StoreInner<T>);

/// Exclusive access to a store.
pub struct StoreContextMut<'a, T: 'static>(pub(crate) &'a mut StoreInner<T>);

impl<'a, T: 'static> StoreContext<'a, T> {
    /// The host data.
    pub fn data(&self) -> &'a T {
        &self.0.data
    }
    /// The engine.
    pub fn engine(&self) -> &Engine {
        self.0.opaque.engine()
    }
}

impl<'a, T: 'static> StoreContextMut<'a, T> {
    /// The host data.
    pub fn data(&self) -> &T {
        &self.0.data
    }
    /// The host data, mutably.
    pub fn data_mut(&mut self) -> &mut T {
        &mut self.0.data
    }
    /// The engine.
    pub fn engine(&self) -> &Engine {
        self.0.opaque.engine()
    }
}

/// Types that give shared access to a store.
pub trait AsContext {
    /// The store's host data type.
    type Data: 'static;
    /// Shared access to the store.
    fn as_context(&self) -> StoreContext<'_, Self::Data>;
}

/// Types that give exclusive access to a store.
pub trait AsContextMut: AsContext {
    /// Exclusive access to the store.
    fn as_context_mut(&mut self) -> StoreContextMut<'_, Self::Data>;
}

impl<T: 'static> AsContext for Store<T> {
    type Data = T;
    fn as_context(&self) -> StoreContext<'_, T> {
        StoreContext(&self.inner)
    }
}

impl<T: 'static> AsContextMut for Store<T> {
    fn as_context_mut(&mut self) -> StoreContextMut<'_, T> {
        StoreContextMut(&mut self.inner)
    }
}

impl<T: 'static> AsContext for StoreContext<'_, T> {
    type Data = T;
    fn as_context(&self) -> StoreContext<'_, T> {
        StoreContext(self.0)
    }
}

impl<T: 'static> AsContext for StoreContextMut<'_, T> {
    type Data = T;
    fn as_context(&self) -> StoreContext<'_, T> {
        StoreContext(self.0)
    }
}

impl<T: 'static> AsContextMut for StoreContextMut<'_, T> {
    fn as_context_mut(&mut self) -> StoreContextMut<'_, T> {
        StoreContextMut(self.0)
    }
}

impl<C: AsContext + ?Sized> AsContext for &C {
    type Data = C::Data;
    fn as_context(&self) -> StoreContext<'_, C::Data> {
        (**self).as_context()
    }
}

impl<C: AsContext + ?Sized> AsContext for &mut C {
    type Data = C::Data;
    fn as_context(&self) -> StoreContext<'_, C::Data> {
        (**self).as_context()
    }
}

impl<C: AsContextMut + ?Sized> AsContextMut for &mut C {
    fn as_context_mut(&mut self) -> StoreContextMut<'_, C::Data> {
        (**self).as_context_mut()
    }
}

impl<'a, T: 'static> From<&'a Store<T>> for StoreContext<'a, T> {
    fn from(s: &'a Store<T>) -> Self {
        StoreContext(&s.inner)
    }
}

impl<'a, T: 'static> From<&'a mut Store<T>> for StoreContext<'a, T> {
    fn from(s: &'a mut Store<T>) -> Self {
        StoreContext(&s.inner)
    }
}

impl<'a, T: 'static> From<&'a mut Store<T>> for StoreContextMut<'a, T> {
    fn from(s: &'a mut Store<T>) -> Self {
        StoreContextMut(&mut s.inner)
    }
}

impl<'a, T: 'static> From<StoreContextMut<'a, T>> for StoreContext<'a, T> {
    fn from(s: StoreContextMut<'a, T>) -> Self {
        StoreContext(s.0)
    }
}

impl<'a, 'b, T: 'static> From<&'a StoreContextMut<'b, T>> for StoreContext<'a, T> {
    fn from(s: &'a StoreContextMut<'b, T>) -> Self {
        StoreContext(s.0)
    }
}

impl<'a, 'b, T: 'static> From<&'a mut StoreContextMut<'b, T>> for StoreContextMut<'a, T> {
    fn from(s: &'a mut StoreContextMut<'b, T>) -> Self {
        StoreContextMut(s.0)
    }
}

impl<'a, 'b, T: 'static> From<&'a mut crate::Caller<'b, T>> for StoreContextMut<'a, T> {
    fn from(c: &'a mut crate::Caller<'b, T>) -> Self {
        StoreContextMut(&mut *c.store.0)
    }
}

impl<'a, 'b, T: 'static> From<&'a crate::Caller<'b, T>> for StoreContext<'a, T> {
    fn from(c: &'a crate::Caller<'b, T>) -> Self {
        StoreContext(&*c.store.0)
    }
}

impl<'a, 'b, T: 'static> From<&'a mut crate::Caller<'b, T>> for StoreContext<'a, T> {
    fn from(c: &'a mut crate::Caller<'b, T>) -> Self {
        StoreContext(&*c.store.0)
    }
}
