//! Memories, tables, globals, and [`Extern`], the sum of importable things.

use crate::store::{AsContext, AsContextMut, StoreContext, StoreContextMut, StoreOpaque, Stored};
use crate::vm::{LinearMemory, Table as VmTable};
use crate::{ExternType, Func, GlobalType, MemoryType, Mutability, Ref, TableType, TagType, Val};
use anyhow::{bail, ensure};
use thiserror::Error;

/// Something that can be imported or exported.
#[derive(Clone, Debug)]
pub enum Extern {
    /// A function.
    Func(Func),
    /// A global.
    Global(Global),
    /// A table.
    Table(Table),
    /// A memory.
    Memory(Memory),
    /// An exception tag.
    Tag(Tag),
}

impl Extern {
    /// The function, if this is one.
    pub fn into_func(self) -> Option<Func> {
        match self {
            Extern::Func(f) => Some(f),
            _ => None,
        }
    }
    /// The global, if this is one.
    pub fn into_global(self) -> Option<Global> {
        match self {
            Extern::Global(g) => Some(g),
            _ => None,
        }
    }
    /// The table, if this is one.
    pub fn into_table(self) -> Option<Table> {
        match self {
            Extern::Table(t) => Some(t),
            _ => None,
        }
    }
    /// The memory, if this is one.
    pub fn into_memory(self) -> Option<Memory> {
        match self {
            Extern::Memory(m) => Some(m),
            _ => None,
        }
    }
    /// The tag, if this is one.
    pub fn into_tag(self) -> Option<Tag> {
        match self {
            Extern::Tag(t) => Some(t),
            _ => None,
        }
    }
    /// Its type.
    pub fn ty(&self, store: impl AsContext) -> ExternType {
        match self {
            Extern::Tag(t) => ExternType::Tag(t.ty(&store)),
            Extern::Func(f) => ExternType::Func(f.ty(&store)),
            Extern::Global(g) => ExternType::Global(g.ty(&store)),
            Extern::Table(t) => ExternType::Table(t.ty(&store)),
            Extern::Memory(m) => ExternType::Memory(m.ty(&store)),
        }
    }
    pub(crate) fn store_id_matches(&self, store: &StoreOpaque) -> bool {
        let s = match self {
            Extern::Func(f) => f.0,
            Extern::Global(g) => g.0,
            Extern::Table(t) => t.0,
            Extern::Memory(m) => m.0,
            Extern::Tag(t) => t.0,
        };
        s.store == store.id()
    }
}

macro_rules! extern_from {
    ($($t:ident),*) => {$(
        impl From<$t> for Extern {
            fn from(v: $t) -> Extern {
                Extern::$t(v)
            }
        }
    )*};
}
extern_from!(Func, Global, Table, Memory, Tag);

/// An exception tag: what a `throw` names and a `catch` matches. Two
/// handles are the same tag when [`Tag::eq`] says so (a tag imported twice
/// is one tag).
#[derive(Copy, Clone, Debug)]
pub struct Tag(pub(crate) Stored);

impl Tag {
    /// A new tag owned by the store.
    pub fn new(mut store: impl AsContextMut, ty: &TagType) -> crate::Result<Tag> {
        let store = &mut store.as_context_mut().0.opaque;
        ensure!(
            ty.ty().results().len() == 0,
            "a tag's function type has no results"
        );
        let id = ty.ty().id(store.engine()).0;
        Ok(store.add_tag(id))
    }

    /// Its type.
    pub fn ty(&self, store: impl AsContext) -> TagType {
        self.ty_in(&store.as_context().0.opaque)
    }

    pub(crate) fn ty_in(&self, store: &StoreOpaque) -> TagType {
        let id = store.tag_type_index(self.0);
        TagType::new(crate::FuncType(store.engine().type_of(id)))
    }

    /// Whether `a` and `b` are the same tag of `store`.
    pub fn eq(a: &Tag, b: &Tag, store: impl AsContext) -> bool {
        let store = &store.as_context().0.opaque;
        store.tag_definition(a.0) == store.tag_definition(b.0)
    }
}

/// An out-of-bounds access through [`Memory::read`] or [`Memory::write`].
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[error("out of bounds memory access")]
pub struct MemoryAccessError {
    _private: (),
}

/// A linear memory.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Memory(pub(crate) Stored);

impl Memory {
    /// A new memory owned by the store.
    pub fn new(mut store: impl AsContextMut, ty: MemoryType) -> crate::Result<Memory> {
        let inner = &mut *store.as_context_mut().0;
        // The store's limits apply to the host's memories as to a module's.
        let wasm = ty.to_wasm();
        let maximum = wasm.maximum.map(|pages| wasm.bytes(pages));
        if !inner.limit_memory(0, wasm.bytes(wasm.minimum), maximum)? {
            anyhow::bail!(
                "memory minimum size of {} pages exceeds the store's limit",
                wasm.minimum
            );
        }
        inner.check_counts(0, 1, 0)?;
        let store = &mut inner.opaque;
        let tunables = store.engine().config().tunables().clone();
        let spares = store.engine().allocation().spare_memories;
        let memory = LinearMemory::new(&ty.to_wasm(), &tunables, None, spares)?;
        Ok(store.add_memory(Box::new(memory)))
    }

    fn vm<'a>(&self, store: &'a StoreOpaque) -> &'a LinearMemory {
        store.memory(self.0)
    }

    fn vm_mut<'a>(&self, store: &'a mut StoreOpaque) -> &'a mut LinearMemory {
        store.memory_mut(self.0)
    }

    /// Its type (with the current size as minimum).
    pub fn ty(&self, store: impl AsContext) -> MemoryType {
        let m = self.vm(&store.as_context().0.opaque);
        MemoryType::from_wasm(m.ty())
    }

    /// Its contents.
    pub fn data<'a, T: 'static>(&self, store: impl Into<StoreContext<'a, T>>) -> &'a [u8] {
        let store = store.into().0;
        self.vm(&store.opaque).as_slice()
    }

    /// Its contents, mutably.
    pub fn data_mut<'a, T: 'static>(
        &self,
        store: impl Into<StoreContextMut<'a, T>>,
    ) -> &'a mut [u8] {
        let store = store.into().0;
        self.vm_mut(&mut store.opaque).as_mut_slice()
    }

    /// Its contents and the store's host data, both mutably: what a host
    /// function needs to read guest memory while updating its own state.
    pub fn data_and_store_mut<'a, T: 'static>(
        &self,
        store: impl Into<StoreContextMut<'a, T>>,
    ) -> (&'a mut [u8], &'a mut T) {
        let inner = store.into().0;
        let crate::store::StoreInner { opaque, data, .. } = inner;
        (self.vm_mut(opaque).as_mut_slice(), data)
    }

    /// Its first byte.
    pub fn data_ptr(&self, store: impl AsContext) -> *mut u8 {
        self.vm(&store.as_context().0.opaque).base_for_host()
    }

    /// Its size in bytes.
    pub fn data_size(&self, store: impl AsContext) -> usize {
        self.vm(&store.as_context().0.opaque).byte_size()
    }

    /// Its size in pages.
    pub fn size(&self, store: impl AsContext) -> u64 {
        self.vm(&store.as_context().0.opaque).pages()
    }

    /// Copies bytes out, failing if the range is out of bounds.
    pub fn read(
        &self,
        store: impl AsContext,
        offset: usize,
        buffer: &mut [u8],
    ) -> Result<(), MemoryAccessError> {
        let data = self.vm(&store.as_context().0.opaque).as_slice();
        let src = offset
            .checked_add(buffer.len())
            .and_then(|end| data.get(offset..end))
            .ok_or(MemoryAccessError { _private: () })?;
        buffer.copy_from_slice(src);
        Ok(())
    }

    /// Copies bytes in, failing if the range is out of bounds.
    pub fn write(
        &self,
        mut store: impl AsContextMut,
        offset: usize,
        buffer: &[u8],
    ) -> Result<(), MemoryAccessError> {
        let data = self
            .vm_mut(&mut store.as_context_mut().0.opaque)
            .as_mut_slice();
        let dst = offset
            .checked_add(buffer.len())
            .and_then(|end| data.get_mut(offset..end))
            .ok_or(MemoryAccessError { _private: () })?;
        dst.copy_from_slice(buffer);
        Ok(())
    }

    /// Grows by `delta` pages, returning the old size in pages.
    pub fn grow(&self, mut store: impl AsContextMut, delta: u64) -> crate::Result<u64> {
        let ctx = store.as_context_mut();
        let inner = &mut *ctx.0;
        let mem = self.vm_mut(&mut inner.opaque);
        let current = mem.byte_size();
        let Some(desired) = mem.bytes_after_growth(delta) else {
            bail!("failed to grow memory by `{delta}` pages");
        };
        let maximum = mem.declared_maximum_bytes();
        ensure!(
            delta == 0 || inner.limit_memory(current, desired, maximum)?,
            "failed to grow memory by `{delta}` pages: limited by the store"
        );
        let mem = self.vm_mut(&mut inner.opaque);
        mem.grow(delta)
            .ok_or_else(|| anyhow::anyhow!("failed to grow memory by `{delta}` pages"))
    }
}

/// A table of references.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Table(pub(crate) Stored);

impl Table {
    /// A new table owned by the store, every element set to `init`.
    pub fn new(mut store: impl AsContextMut, ty: TableType, init: Ref) -> crate::Result<Table> {
        let inner = &mut *store.as_context_mut().0;
        // The store's limits apply to the host's tables as to a module's.
        if !inner.limit_table(0, ty.minimum(), ty.maximum())? {
            anyhow::bail!(
                "table minimum size of {} elements exceeds the store's limit",
                ty.minimum()
            );
        }
        inner.check_counts(0, 0, 1)?;
        inner.opaque.new_table(&ty, &init)
    }

    fn vm<'a>(&self, store: &'a StoreOpaque) -> &'a VmTable {
        store.table(self.0)
    }

    /// Its type (with the current size as minimum).
    pub fn ty(&self, store: impl AsContext) -> TableType {
        let t = self.vm(&store.as_context().0.opaque);
        TableType::from_wasm(keel_environ::Table {
            ty: t.ty(),
            minimum: t.size(),
            maximum: t.maximum(),
            table64: t.is_64(),
        })
    }

    /// Number of elements.
    pub fn size(&self, store: impl AsContext) -> u64 {
        self.vm(&store.as_context().0.opaque).size()
    }

    /// Element `index`, or `None` if out of bounds.
    pub fn get(&self, mut store: impl AsContextMut, index: u64) -> Option<Ref> {
        store.as_context_mut().0.opaque.table_get(self.0, index)
    }

    /// Sets element `index`.
    pub fn set(&self, mut store: impl AsContextMut, index: u64, value: Ref) -> crate::Result<()> {
        store
            .as_context_mut()
            .0
            .opaque
            .table_set(self.0, index, &value)
    }

    /// Grows by `delta` elements set to `init`, returning the old size.
    pub fn grow(&self, mut store: impl AsContextMut, delta: u64, init: Ref) -> crate::Result<u64> {
        let ctx = store.as_context_mut();
        let inner = &mut *ctx.0;
        let ty = self.ty(StoreContext(inner));
        ensure!(
            init.matches(&inner.opaque, ty.element()),
            "reference of the wrong type for this table"
        );
        let current = self.vm(&inner.opaque).size();
        ensure!(
            delta == 0
                || inner.limit_table(current, current.saturating_add(delta), ty.maximum())?,
            "failed to grow table by `{delta}`: limited by the store"
        );
        inner
            .opaque
            .table_grow(self.0, &ty, delta, &init)?
            .ok_or_else(|| anyhow::anyhow!("failed to grow table by `{delta}`"))
    }
}

/// A global variable.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Global(pub(crate) Stored);

impl Global {
    /// A new global owned by the store.
    pub fn new(mut store: impl AsContextMut, ty: GlobalType, value: Val) -> crate::Result<Global> {
        let store = &mut store.as_context_mut().0.opaque;
        check_global_value(store, &ty, &value)?;
        Ok(store.add_global(ty, &value))
    }

    /// Its type.
    pub fn ty(&self, store: impl AsContext) -> GlobalType {
        let store = &store.as_context().0.opaque;
        store.globals[store.check(self.0)].ty
    }

    /// Its value.
    pub fn get(&self, mut store: impl AsContextMut) -> Val {
        store.as_context_mut().0.opaque.global_get(self.0)
    }

    /// Sets its value; fails if it is immutable or `value` has another type.
    pub fn set(&self, mut store: impl AsContextMut, value: Val) -> crate::Result<()> {
        let store = &mut store.as_context_mut().0.opaque;
        let index = store.check(self.0);
        let ty = store.globals[index].ty;
        ensure!(
            ty.mutability() == Mutability::Var,
            "immutable global cannot be set"
        );
        check_global_value(store, &ty, &value)?;
        store.global_set(self.0, &value);
        Ok(())
    }
}

fn check_global_value(store: &StoreOpaque, ty: &GlobalType, value: &Val) -> crate::Result<()> {
    ensure!(
        value.matches(store, ty.content()),
        "global of type {} cannot hold a {}",
        ty.content(),
        value.ty()
    );
    if let Val::FuncRef(Some(f)) = value {
        ensure!(
            f.0.store == store.id(),
            "function used with the wrong store"
        );
    }
    Ok(())
}
