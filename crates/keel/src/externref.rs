//! `externref`: host values that wasm can hold but not look into.
//!
//! An [`ExternRef`] is a reference-counted box around any `Send + Sync`
//! host value. Wasm sees a raw pointer to the box. Every box that has ever
//! been handed to wasm is kept in its store's [`ExternRefSet`], which holds
//! one count of its own, so that wasm locals, tables and globals need no
//! counting.
//!
//! ## How externrefs are freed
//!
//! When the set has grown past a threshold, the next hand-over to wasm
//! first collects: a box stays if the host still holds it (its count is
//! above the set's own), if a table or global of the store or a field of
//! one of its exceptions holds it, or if
//! its address appears on this thread's stack between the collector and the
//! outermost wasm entry, callee-saved registers included. That last root is
//! conservative: it scans words, not typed slots, so it may keep a box a
//! little longer, never free one early. Everything else is released. The
//! threshold is then twice the survivors, so a loop that creates and drops
//! externrefs keeps memory flat, and the work per externref is constant on
//! average.

use crate::store::{AsContextMut, StoreContext, StoreOpaque};
pub(crate) use crate::vm::externref::ExternData;
use std::any::Any;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// A reference to a host value that can be passed to wasm as `externref`.
#[derive(Clone)]
pub struct ExternRef(Arc<ExternData>);

impl std::fmt::Debug for ExternRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ExternRef({:p})", Arc::as_ptr(&self.0))
    }
}

impl ExternRef {
    /// Wraps `value`. The store argument matches Wasmtime's API.
    pub fn new<T>(_store: impl AsContextMut, value: T) -> crate::Result<ExternRef>
    where
        T: 'static + Any + Send + Sync,
    {
        Ok(ExternRef(Arc::new(ExternData::new(Box::new(value)))))
    }

    /// The host value.
    pub fn data<'a, T: 'static>(
        &'a self,
        _store: impl Into<StoreContext<'a, T>>,
    ) -> crate::Result<Option<&'a (dyn Any + Send + Sync)>> {
        Ok(Some(self.0.value()))
    }

    /// Whether two references point to the same host value.
    pub fn ptr_eq(a: &ExternRef, b: &ExternRef) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }

    /// The pointer wasm sees. Makes sure the store keeps the box alive.
    pub(crate) fn to_raw(&self, store: &StoreOpaque) -> *mut u8 {
        store.externrefs().insert(store, &self.0);
        Arc::as_ptr(&self.0) as *mut u8
    }

    /// A host handle for a pointer wasm handed back (null for null).
    ///
    /// Like Wasmtime's `ExternRef::from_raw`, this trusts its argument.
    ///
    /// # Safety
    ///
    /// `raw` must be null or a pointer that [`ExternRef::to_raw`] returned
    /// for a store whose set still holds it: typically the contents of an
    /// `externref` slot, table element or global of that store, read with
    /// no collection since wasm wrote it (collections run only in `to_raw`
    /// and `Store::gc`).
    pub(crate) unsafe fn from_raw(raw: *mut u8) -> Option<ExternRef> {
        if raw.is_null() {
            return None;
        }
        // SAFETY: per the contract, `raw` is the address of a box the set
        // holds a count of, from `Arc::into_raw`.
        let arc = unsafe { crate::vm::externref::clone_from_raw(raw.cast::<ExternData>()) };
        Some(ExternRef(arc))
    }
}

/// Fewest entries before the first collection.
const MIN_THRESHOLD: usize = 1024;

/// The externrefs wasm of one store may hold, each with one count owned by
/// the set.
pub(crate) struct ExternRefSet {
    inner: Mutex<SetInner>,
}

struct SetInner {
    refs: HashSet<usize>,
    threshold: usize,
}

impl Default for ExternRefSet {
    fn default() -> Self {
        ExternRefSet {
            inner: Mutex::new(SetInner {
                refs: HashSet::new(),
                threshold: MIN_THRESHOLD,
            }),
        }
    }
}

impl ExternRefSet {
    /// Number of boxes the set keeps alive.
    pub(crate) fn len(&self) -> usize {
        self.lock().refs.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SetInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn insert(&self, store: &StoreOpaque, arc: &Arc<ExternData>) {
        let mut inner = self.lock();
        if inner.refs.contains(&(Arc::as_ptr(arc) as usize)) {
            return;
        }
        if inner.refs.len() >= inner.threshold {
            let roots = collect(store, &mut inner.refs);
            inner.threshold = (inner.refs.len() * 2).max(roots).max(MIN_THRESHOLD);
        }
        // The set's own count, released when the box is collected.
        let owned = Arc::into_raw(arc.clone());
        inner.refs.insert(owned as usize);
    }

    /// Releases everything (the store is being dropped).
    pub(crate) fn clear(&self) {
        let mut inner = self.lock();
        for ptr in inner.refs.drain() {
            // SAFETY: every entry is a count the set took with
            // `Arc::into_raw` in `insert`; draining gives each up once.
            unsafe { crate::vm::externref::release_raw(ptr as *const ExternData) };
        }
    }

    /// Collects now, whatever the threshold (for tests and embedders).
    pub(crate) fn collect_now(&self, store: &StoreOpaque) {
        let mut inner = self.lock();
        let roots = collect(store, &mut inner.refs);
        inner.threshold = (inner.refs.len() * 2).max(roots).max(MIN_THRESHOLD);
    }
}

/// Frees every box of `refs` that nothing holds. Returns how many root
/// words it scanned.
fn collect(store: &StoreOpaque, refs: &mut HashSet<usize>) -> usize {
    let mut live: HashSet<usize> = HashSet::new();
    let mut roots = 0;
    let mut mark = |word: usize| {
        roots += 1;
        if refs.contains(&word) {
            live.insert(word);
        }
    };
    store.for_each_ref_root(&mut mark);
    store.exceptions().for_each_field_word(&mut mark);
    crate::vm::traphandlers::scan_stack_conservatively(&mut mark);
    refs.retain(|&ptr| {
        let ptr_data = ptr as *const ExternData;
        // SAFETY: every entry is a count the set took with `Arc::into_raw`
        // and still holds, so the box is live.
        let keep = live.contains(&ptr) || unsafe { crate::vm::externref::held_elsewhere(ptr_data) };
        if !keep {
            // SAFETY: as above; `retain` drops the entry, so its count is
            // released exactly once.
            unsafe { crate::vm::externref::release_raw(ptr_data) };
        }
        keep
    });
    roots
}
