//! Tables of references, and the lazy initialization of funcref tables.
//!
//! An externref table stores externref pointers as they are (null for
//! null). A funcref table stores each element as a word that says whether
//! it was initialized yet:
//!
//! ```text
//!   0              not yet initialized: its value is the table's image's
//!   ptr | 1        a *mut VMFuncRef (null for ref.null), initialized
//! ```
//!
//! so that a fresh table needs no writes at all: memory from the allocator
//! or a pool slot is zero, and each element is computed from the module's
//! [`TableImage`] the first time anything reads it (generated code calls the
//! `table_lazy_func_ref` builtin when it loads a zero). Every access to a
//! funcref element goes through this module or that builtin; nothing else
//! may read or write the words directly.
//!
//! Growing may move the elements, so generated code reloads `base` after
//! any call.

use super::mmap::Mmap;
use super::pool::{InstancePool, PoolError};
use super::vmcontext::VMTableDefinition;
use keel_environ::{
    ConstOp, DefinedTableIndex, ElemItems, ElemMode, EntityRef, FuncIndex, Module, WasmRefType,
};
use std::sync::Arc;

/// The most elements any table may have here, whatever it declares: keeps a
/// `table.grow` by four billion from exhausting the host.
pub const MAX_TABLE_ELEMENTS: u64 = 10_000_000;

/// The initial contents of a defined funcref table, computed once per
/// module: for each element, the function whose funcref it is. Only for
/// tables whose contents are the same
/// in every instance (null default, element segments with constant offsets
/// and function items, all in bounds); others are filled at instantiation.
#[derive(Debug)]
pub struct TableImage {
    entries: Box<[u32]>,
}

impl TableImage {
    /// A null element.
    const NULL: u32 = u32::MAX;

    /// The image of defined table `def`, or `None` if it must be filled
    /// eagerly.
    pub fn build(env: &Module, def: DefinedTableIndex) -> Option<TableImage> {
        let index = env.table_index(def);
        let ty = env.tables[index];
        if !ty.ty.heap.is_func() || env.table_inits[def].is_some() {
            return None;
        }
        let entry = |f: FuncIndex| -> Option<u32> {
            (f.as_u32() != TableImage::NULL).then_some(f.as_u32())
        };
        let mut entries: Vec<u32> = Vec::new();
        for (_, elem) in env.elems.iter() {
            let ElemMode::Active { table, offset } = &elem.mode else {
                continue;
            };
            if *table != index {
                continue;
            }
            let start = usize::try_from(offset.as_constant_offset()?).ok()?;
            let items: Vec<u32> = match &elem.items {
                ElemItems::Functions(funcs) => {
                    funcs.iter().map(|f| entry(*f)).collect::<Option<_>>()?
                }
                ElemItems::Expressions(exprs) => exprs
                    .iter()
                    .map(|e| match e.ops() {
                        [ConstOp::RefFunc(f)] => entry(*f),
                        [ConstOp::RefNull(_)] => Some(TableImage::NULL),
                        _ => None,
                    })
                    .collect::<Option<_>>()?,
            };
            let end = start.checked_add(items.len())?;
            if end as u64 > ty.minimum {
                return None;
            }
            if entries.len() < end {
                entries.resize(end, TableImage::NULL);
            }
            entries[start..end].copy_from_slice(&items);
        }
        Some(TableImage {
            entries: entries.into_boxed_slice(),
        })
    }

    /// Images of every defined table (`None` where filled eagerly).
    pub fn build_all(env: &Module) -> Box<[Option<Arc<TableImage>>]> {
        (0..env.num_defined_tables())
            .map(|i| TableImage::build(env, DefinedTableIndex::new(i)).map(Arc::new))
            .collect()
    }
}

/// Where a lazily initialized table finds its elements' initial values.
pub struct LazyInit {
    /// The owning instance, which outlives the table (it owns it) and
    /// gives out its functions' funcrefs (writing a defined function's
    /// when first needed).
    pub instance: *const super::instance::Instance,
    /// The initial contents.
    pub image: Arc<TableImage>,
}

impl LazyInit {
    /// The initial funcref of element `index`.
    fn func_ref(&self, index: usize) -> *mut u8 {
        let Some(&entry) = self.image.entries.get(index) else {
            return std::ptr::null_mut();
        };
        if entry == TableImage::NULL {
            return std::ptr::null_mut();
        }
        // SAFETY: the owning instance outlives its tables, and its funcref
        // accessor only reads the instance (the funcref slot it may write
        // is in the context, outside any Rust reference).
        unsafe { (*self.instance).func_ref(FuncIndex::from_u32(entry)).cast() }
    }
}

/// A table. Its definition comes first so that a pointer to the definition
/// is a pointer to the table.
#[repr(C)]
pub struct Table {
    definition: VMTableDefinition,
    storage: Storage,
    maximum: Option<u64>,
    ty: WasmRefType,
    /// Whether its index type is `i64`.
    table64: bool,
    lazy: Option<LazyInit>,
    /// Whether any word was written from Rust (every such write goes
    /// through `words_mut`).
    written: bool,
    /// Set by [`Table::release_untouched_by_guest`].
    guest_never_ran: bool,
}

/// Where the elements live.
enum Storage {
    /// A vector of its own. Held as `usize` words because only a vector of
    /// integer zeros is allocated zeroed (`calloc`, untouched pages): one of
    /// null pointers is written element by element. `words`/`words_mut`
    /// see the elements as pointers.
    OnDemand(Vec<usize>),
    /// A slot of the pooling allocator: room for `capacity` elements, of
    /// which the first `definition.current_elements` are in use. Always
    /// `Some` until dropped.
    Pooled {
        slot: Option<Mmap>,
        capacity: usize,
        pool: Arc<InstancePool>,
    },
}

// SAFETY: the element pointers refer to funcrefs and externrefs owned by the
// same store, which moves between threads as a whole.
unsafe impl Send for Table {}
// SAFETY: shared references only read.
unsafe impl Sync for Table {}

impl Table {
    /// A table of `minimum` elements set to `init`, or to `lazy`'s image
    /// if given (then `init` must be null); `None` if that is more than
    /// this host allows.
    ///
    /// # Safety
    ///
    /// `init` must be null or an element the owning store vouches for: for a
    /// funcref table, a live `VMFuncRef` of the store; for an externref
    /// table, a box the store's externref set holds. Generated code calls
    /// through what a table holds.
    pub unsafe fn new(
        table_type: &keel_environ::Table,
        init: *mut u8,
        lazy: Option<LazyInit>,
    ) -> Option<Table> {
        let keel_environ::Table { ty, minimum, .. } = *table_type;
        if minimum > MAX_TABLE_ELEMENTS {
            return None;
        }
        let word = initial_word(ty, init, lazy.as_ref());
        let mut elements = vec![0usize; minimum as usize];
        let mut table = Table {
            definition: VMTableDefinition {
                base: elements.as_mut_ptr().cast(),
                current_elements: elements.len(),
            },
            storage: Storage::OnDemand(elements),
            maximum: table_type.maximum,
            ty,
            table64: table_type.table64,
            lazy,
            written: false,
            guest_never_ran: false,
        };
        if !word.is_null() {
            table.words_mut().fill(word);
        }
        Some(table)
    }

    /// A table like [`Table::new`]'s, in a slot of `pool`; it can grow up
    /// to the slot's size.
    ///
    /// # Safety
    ///
    /// `init` must be null or an element the owning store vouches for: for a
    /// funcref table, a live `VMFuncRef` of the store; for an externref
    /// table, a box the store's externref set holds. Generated code calls
    /// through what a table holds.
    pub unsafe fn new_pooled(
        table_type: &keel_environ::Table,
        init: *mut u8,
        lazy: Option<LazyInit>,
        pool: &Arc<InstancePool>,
    ) -> Result<Table, PoolError> {
        let keel_environ::Table { ty, minimum, .. } = *table_type;
        let capacity = pool.limits().table_elements;
        if minimum > capacity as u64 {
            return Err(PoolError::ModuleTooLarge {
                what: "table elements",
                needed: minimum,
                limit: capacity as u64,
                setting: "table_elements",
            });
        }
        let slot = pool.take_table_slot()?;
        let word = initial_word(ty, init, lazy.as_ref());
        let mut table = Table {
            definition: VMTableDefinition {
                base: slot.as_ptr().cast(),
                current_elements: minimum as usize,
            },
            storage: Storage::Pooled {
                slot: Some(slot),
                capacity,
                pool: pool.clone(),
            },
            maximum: table_type.maximum,
            ty,
            table64: table_type.table64,
            lazy,
            written: false,
            guest_never_ran: false,
        };
        // A returned slot is all zeros already.
        if !word.is_null() {
            table.words_mut().fill(word);
        }
        Ok(table)
    }

    /// The definition generated code reads.
    pub fn definition(&mut self) -> *mut VMTableDefinition {
        &mut self.definition
    }

    /// Says that no guest code of the owning store ever ran (generated
    /// code writes words directly, with `table.set`): if nothing wrote a
    /// word from Rust either, the table is all zeros and a pooled slot
    /// goes back without clearing. Never called otherwise.
    pub fn release_untouched_by_guest(&mut self) {
        self.guest_never_ran = true;
    }

    /// The element type.
    pub fn ty(&self) -> WasmRefType {
        self.ty
    }

    /// Declared maximum.
    pub fn maximum(&self) -> Option<u64> {
        self.maximum
    }

    /// Whether its index type is `i64`.
    pub fn is_64(&self) -> bool {
        self.table64
    }

    /// Number of elements.
    pub fn size(&self) -> u64 {
        self.definition.current_elements as u64
    }

    /// The stored words (see the module docs for funcref tables).
    fn words(&self) -> &[*mut u8] {
        // SAFETY: `base` points to `current_elements` initialized words
        // owned by this table (a vector or a slot), kept in step by `grow`.
        unsafe {
            std::slice::from_raw_parts(self.definition.base, self.definition.current_elements)
        }
    }

    /// The stored words, mutably.
    fn words_mut(&mut self) -> &mut [*mut u8] {
        self.written = true;
        // SAFETY: as in `words`, and `&mut self` is exclusive.
        unsafe {
            std::slice::from_raw_parts_mut(self.definition.base, self.definition.current_elements)
        }
    }

    /// The elements of a table of host-managed references (externrefs,
    /// exceptions), which are stored as they are; none for a funcref table.
    pub fn ref_elements(&self) -> &[*mut u8] {
        if !self.ty.heap.is_func() {
            self.words()
        } else {
            &[]
        }
    }

    /// Element `index` (a funcref or externref pointer, null for null),
    /// or `None` out of bounds.
    pub fn get(&mut self, index: u64) -> Option<*mut u8> {
        let i = usize::try_from(index).ok()?;
        let word = *self.words().get(i)?;
        if !self.ty.heap.is_func() {
            return Some(word);
        }
        if !word.is_null() {
            return Some(decode(word));
        }
        Some(self.initialize_element(i))
    }

    /// Computes, stores and returns the initial value of funcref element
    /// `i`, which is in bounds and not initialized yet.
    fn initialize_element(&mut self, i: usize) -> *mut u8 {
        let value = match &self.lazy {
            Some(lazy) => lazy.func_ref(i),
            None => std::ptr::null_mut(),
        };
        self.words_mut()[i] = encode(self.ty, value);
        value
    }

    /// The funcref of element `index`, which generated code found not yet
    /// initialized (after checking the bounds).
    pub fn lazy_func_ref(&mut self, index: u64) -> *mut u8 {
        self.get(index).unwrap_or(std::ptr::null_mut())
    }

    /// Sets element `index`; `None` if out of bounds.
    ///
    /// # Safety
    ///
    /// `value` must be null or an element the owning store vouches for: for a
    /// funcref table, a live `VMFuncRef` of the store; for an externref
    /// table, a box the store's externref set holds. Generated code calls
    /// through what a table holds.
    pub unsafe fn set(&mut self, index: u64, value: *mut u8) -> Option<()> {
        let word = encode(self.ty, value);
        *self.words_mut().get_mut(usize::try_from(index).ok()?)? = word;
        Some(())
    }

    /// Sets `len` elements from `dst` to `value`; `false` if out of bounds.
    ///
    /// # Safety
    ///
    /// `value` must be null or an element the owning store vouches for: for a
    /// funcref table, a live `VMFuncRef` of the store; for an externref
    /// table, a box the store's externref set holds. Generated code calls
    /// through what a table holds.
    pub unsafe fn fill(&mut self, dst: u64, len: u64, value: *mut u8) -> bool {
        let word = encode(self.ty, value);
        match dst.checked_add(len) {
            Some(end) if end <= self.size() => {
                self.words_mut()[dst as usize..end as usize].fill(word);
                true
            }
            _ => false,
        }
    }

    /// Initializes every element of `start..end` that is not yet, so that
    /// the words there can be copied elsewhere.
    fn materialize(&mut self, start: usize, end: usize) {
        if !self.ty.heap.is_func() {
            return;
        }
        for i in start..end {
            if self.words()[i].is_null() {
                self.initialize_element(i);
            }
        }
    }

    /// `table.copy` of `len` elements from `src` in `src_table` to `dst`
    /// in `dst_table` (possibly the same table, possibly overlapping);
    /// `false` if out of bounds.
    ///
    /// # Safety
    ///
    /// Both pointers must be live tables of the same element type, not
    /// otherwise borrowed.
    pub unsafe fn copy(
        dst_table: *mut Table,
        src_table: *mut Table,
        dst: u64,
        src: u64,
        len: u64,
    ) -> bool {
        // SAFETY: per the contract; each reference is used alone.
        let (src_len, dst_len) = unsafe { ((*src_table).size(), (*dst_table).size()) };
        let ok = src.checked_add(len).is_some_and(|e| e <= src_len)
            && dst.checked_add(len).is_some_and(|e| e <= dst_len);
        if !ok {
            return false;
        }
        let (src, dst, len) = (src as usize, dst as usize, len as usize);
        // SAFETY: one exclusive reference at a time.
        unsafe { (*src_table).materialize(src, src + len) };
        if std::ptr::eq(dst_table, src_table) {
            // SAFETY: one live table, one exclusive reference.
            unsafe { (*dst_table).words_mut().copy_within(src..src + len, dst) };
        } else {
            // SAFETY: two distinct live tables; initialized words mean the
            // same in any table of the type.
            unsafe {
                let s = &(*src_table).words()[src..src + len];
                (*dst_table).words_mut()[dst..dst + len].copy_from_slice(s);
            }
        }
        true
    }

    /// Grows by `delta` elements set to `init`; returns the old size, or
    /// `None` past the maximum.
    ///
    /// # Safety
    ///
    /// `init` must be null or an element the owning store vouches for: for a
    /// funcref table, a live `VMFuncRef` of the store; for an externref
    /// table, a box the store's externref set holds. Generated code calls
    /// through what a table holds.
    pub unsafe fn grow(&mut self, delta: u64, init: *mut u8) -> Option<u64> {
        let old = self.size();
        let new = old.checked_add(delta)?;
        if new
            > self
                .maximum
                .unwrap_or(u64::from(u32::MAX))
                .min(MAX_TABLE_ELEMENTS)
        {
            return None;
        }
        // New elements beyond any image: null is the zero word here too.
        let word = if init.is_null() {
            std::ptr::null_mut()
        } else {
            encode(self.ty, init)
        };
        match &mut self.storage {
            Storage::OnDemand(elements) => {
                elements.resize(new as usize, 0);
                self.definition.base = elements.as_mut_ptr().cast();
                self.definition.current_elements = new as usize;
                if !word.is_null() {
                    self.words_mut()[old as usize..].fill(word);
                }
            }
            Storage::Pooled { capacity, .. } => {
                if new > *capacity as u64 {
                    return None;
                }
                self.definition.current_elements = new as usize;
                // A slot is all zeros past what was ever in use.
                if !word.is_null() {
                    self.words_mut()[old as usize..].fill(word);
                }
            }
        }
        Some(old)
    }
}

/// The word a new table's elements start as: not yet initialized (0) when
/// they come from an image or are null (a funcref element without an image
/// initializes to null), else `init` encoded. A zero word is what makes a
/// huge table free until touched: its memory comes zeroed from the
/// allocator (`calloc`, hence untouched pages) or the pool, and nothing
/// writes it.
fn initial_word(ty: WasmRefType, init: *mut u8, lazy: Option<&LazyInit>) -> *mut u8 {
    if lazy.is_some() || init.is_null() {
        std::ptr::null_mut()
    } else {
        encode(ty, init)
    }
}

/// The word stored for `value` in a table of type `ty`.
fn encode(ty: WasmRefType, value: *mut u8) -> *mut u8 {
    if ty.heap.is_func() {
        value.map_addr(|a| a | 1)
    } else {
        value
    }
}

/// The funcref an initialized (non-zero) funcref word stands for.
fn decode(word: *mut u8) -> *mut u8 {
    word.map_addr(|a| a & !1)
}

impl Drop for Table {
    fn drop(&mut self) {
        let used = if self.guest_never_ran && !self.written {
            0
        } else {
            self.definition.current_elements * std::mem::size_of::<usize>()
        };
        if let Storage::Pooled { slot, pool, .. } = &mut self.storage
            && let Some(slot) = slot.take()
        {
            pool.return_table_slot(slot, used);
        }
    }
}
