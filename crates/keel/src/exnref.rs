//! `exnref`: caught exceptions, and the store's heap of them.
//!
//! An exception object (`vm::exception::ExnObject`) holds its tag's
//! identity and its fields. Wasm sees its address; the store's
//! [`ExceptionHeap`] owns one count of every object wasm may hold, and an
//! [`ExnRef`] is the host's counted handle to one.
//!
//! ## How exceptions are freed
//!
//! As for externrefs (`externref.rs`): once the heap has grown past a
//! threshold, the next new exception first collects. An object stays if
//! the host holds it, if it is the store's pending exception, if a table
//! or global of the store holds it, if its address is on this thread's
//! stack between the collector and the outermost wasm entry (conservatively,
//! callee-saved registers included), or if a field of an object that
//! stays holds it. The threshold is then twice the survivors (or the
//! number of roots scanned, if larger). A guest that throws and catches in
//! a loop keeps memory flat; what a store keeps alive is bounded by
//! [`MAX_LIVE_BYTES`] (past it, `throw` traps with the heap's error).

use crate::store::{AsContext, AsContextMut, StoreOpaque};
use crate::vm::exception::ExnObject;
use crate::{Tag, Val};
use std::collections::HashMap;
use std::sync::Arc;

/// A reference to a wasm exception: what a host sees of an `exnref`, or of
/// an exception that no wasm frame caught
/// ([`Store::take_pending_exception`](crate::Store::take_pending_exception)).
#[derive(Clone)]
pub struct ExnRef(pub(crate) Arc<ExnObject>);

impl std::fmt::Debug for ExnRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ExnRef({:p})", Arc::as_ptr(&self.0))
    }
}

impl ExnRef {
    /// A new exception of `tag` carrying `fields` (which must have the
    /// tag's parameter types), for a host function to throw with
    /// [`Store::throw`](crate::Store::throw).
    pub fn new(mut store: impl AsContextMut, tag: &Tag, fields: &[Val]) -> crate::Result<ExnRef> {
        let store = &mut store.as_context_mut().0.opaque;
        let ty = tag.ty_in(store);
        let params: Vec<_> = ty.ty().params().collect();
        anyhow::ensure!(
            params.len() == fields.len(),
            "exception of a tag with {} parameters given {} fields",
            params.len(),
            fields.len()
        );
        for (i, (v, t)) in fields.iter().zip(&params).enumerate() {
            anyhow::ensure!(
                v.matches(store, t),
                "exception field {i} is not of the tag's type {t}"
            );
        }
        let raw = fields.iter().map(|v| v.to_raw(store)).collect();
        let definition = store.tag_definition(tag.0);
        let mut object = ExnObject::new(definition, raw);
        object.set_owner(store.id().0);
        let object = Arc::new(object);
        // In the heap from the start: its fields are roots of the
        // externref set, and its exception fields stay alive, only while
        // the heap holds it.
        store.exceptions().adopt(store, &object)?;
        Ok(ExnRef(object))
    }

    /// Whether it belongs to `store` (an exception is meaningless in any
    /// other: its fields are that store's references).
    pub(crate) fn comes_from(&self, store: &StoreOpaque) -> bool {
        self.0.owner() == store.id().0
    }

    fn check_store(&self, store: &StoreOpaque) -> crate::Result<()> {
        anyhow::ensure!(self.comes_from(store), "exception of another store");
        Ok(())
    }

    /// Its tag.
    pub fn tag(&self, mut store: impl AsContextMut) -> crate::Result<Tag> {
        let store = &mut store.as_context_mut().0.opaque;
        self.check_store(store)?;
        store
            .tag_of_definition(self.0.tag())
            .ok_or_else(|| anyhow::anyhow!("exception of another store"))
    }

    /// Its fields, in order.
    pub fn fields(&self, mut store: impl AsContextMut) -> crate::Result<std::vec::IntoIter<Val>> {
        let tag = self.tag(&mut store)?;
        let store = &mut store.as_context_mut().0.opaque;
        let ty = tag.ty_in(store);
        let values = crate::func::exception_fields(store, &self.0, ty.ty());
        Ok(values.into_iter())
    }

    /// Field `index`.
    pub fn field(&self, store: impl AsContextMut, index: usize) -> crate::Result<Val> {
        self.fields(store)?
            .nth(index)
            .ok_or_else(|| anyhow::anyhow!("exception has no field {index}"))
    }

    /// Whether two references are the same exception.
    pub fn ptr_eq(a: &ExnRef, b: &ExnRef) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }

    /// The pointer wasm sees (the caller checked that the exception is
    /// the store's: `Val::matches`). The heap holds it already.
    pub(crate) fn to_raw(&self, store: &StoreOpaque) -> *mut u8 {
        debug_assert!(self.comes_from(store));
        Arc::as_ptr(&self.0).cast_mut().cast()
    }

    /// A host handle for a pointer wasm handed back: the object the store's
    /// heap holds at that address (none for null, or for an address it
    /// does not hold, which wasm of the store never hands back).
    pub(crate) fn from_raw(store: &StoreOpaque, raw: *mut u8) -> Option<ExnRef> {
        store.exceptions().get(raw as usize).map(ExnRef)
    }
}

impl<T: 'static> crate::Store<T> {
    /// Throws `exception` from a host function: returns the error that,
    /// returned by the host function, raises the exception in the wasm
    /// that called it (where a `try_table` may catch it), as Wasmtime's
    /// `Store::throw` does.
    pub fn throw<R>(&mut self, exception: ExnRef) -> crate::Result<R> {
        self.as_context_mut().throw(exception)
    }

    /// The exception that last reached the host uncaught (a call returned
    /// an error that is a [`ThrownException`]), taken out of the store.
    pub fn take_pending_exception(&mut self) -> Option<ExnRef> {
        self.as_context_mut().take_pending_exception()
    }

    /// Whether the store holds an uncaught exception.
    pub fn has_pending_exception(&self) -> bool {
        self.as_context().0.opaque.pending_exception.is_some()
    }
}

impl<T: 'static> crate::StoreContextMut<'_, T> {
    /// As [`Store::throw`](crate::Store::throw). An exception of another
    /// store is refused (an error that is not a `ThrownException`).
    pub fn throw<R>(&mut self, exception: ExnRef) -> crate::Result<R> {
        exception.check_store(&self.0.opaque)?;
        self.0.opaque.pending_exception = Some(exception);
        Err(ThrownException.into())
    }

    /// As [`Store::take_pending_exception`](crate::Store::take_pending_exception).
    pub fn take_pending_exception(&mut self) -> Option<ExnRef> {
        self.0.opaque.pending_exception.take()
    }

    /// As [`Store::has_pending_exception`](crate::Store::has_pending_exception).
    pub fn has_pending_exception(&self) -> bool {
        self.0.opaque.pending_exception.is_some()
    }
}

/// Fewest objects before the first collection.
const MIN_THRESHOLD: usize = 1024;

/// Most bytes of exceptions a store keeps alive. A guest that holds more
/// (in tables, globals or on its stack) traps; a host that makes more with
/// `ExnRef::new` gets an error.
pub(crate) const MAX_LIVE_BYTES: usize = 256 << 20;

/// The exception objects wasm of one store may hold, by address.
#[derive(Default)]
pub(crate) struct ExceptionHeap {
    inner: std::sync::Mutex<HeapInner>,
}

#[derive(Default)]
struct HeapInner {
    objects: HashMap<usize, Arc<ExnObject>>,
    /// Collect when this many objects are held (0: the minimum).
    threshold: usize,
    /// Bytes of the objects held.
    bytes: usize,
}

impl HeapInner {
    /// Collects, and sets the next threshold: twice the survivors, and at
    /// least as many as the roots scanned, so that the work per new object
    /// stays constant on average however large the store's tables are.
    fn collect(&mut self, store: &StoreOpaque) {
        let roots = collect(store, &mut self.objects);
        self.bytes = self.objects.values().map(|o| o.size()).sum();
        self.threshold = (self.objects.len() * 2).max(roots);
    }
}

impl ExceptionHeap {
    fn lock(&self) -> std::sync::MutexGuard<'_, HeapInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `object` alive for wasm, collecting first if the heap is due.
    /// Fails when the store's live exceptions would take more than
    /// [`MAX_LIVE_BYTES`].
    pub(crate) fn adopt(&self, store: &StoreOpaque, object: &Arc<ExnObject>) -> crate::Result<()> {
        let mut inner = self.lock();
        let address = Arc::as_ptr(object) as usize;
        if inner.objects.contains_key(&address) {
            return Ok(());
        }
        let size = object.size();
        if inner.objects.len() >= inner.threshold.max(MIN_THRESHOLD)
            || inner.bytes + size > MAX_LIVE_BYTES
        {
            inner.collect(store);
        }
        anyhow::ensure!(
            inner.bytes + size <= MAX_LIVE_BYTES,
            "the store's live exceptions would take more than {} MiB",
            MAX_LIVE_BYTES >> 20
        );
        inner.objects.insert(address, object.clone());
        inner.bytes += size;
        Ok(())
    }

    /// The object at `address`, if the heap holds it.
    pub(crate) fn get(&self, address: usize) -> Option<Arc<ExnObject>> {
        self.lock().objects.get(&address).cloned()
    }

    /// Calls `visit` with the word of every field of every object: where
    /// exceptions hold references (externrefs, other exceptions).
    pub(crate) fn for_each_field_word(&self, visit: &mut dyn FnMut(usize)) {
        for object in self.lock().objects.values() {
            object
                .fields()
                .iter()
                .for_each(|f| visit(f.get_ptr() as usize));
        }
    }

    /// Collects now, whatever the threshold.
    pub(crate) fn collect_now(&self, store: &StoreOpaque) {
        self.lock().collect(store);
    }

    /// Releases everything (the store is being dropped).
    pub(crate) fn clear(&self) {
        self.lock().objects.clear();
    }
}

/// Frees every object of `objects` that nothing holds (see the module
/// docs). Returns how many root words it scanned.
fn collect(store: &StoreOpaque, objects: &mut HashMap<usize, Arc<ExnObject>>) -> usize {
    let mut live: Vec<usize> = Vec::new();
    let mut roots = 0;
    let mut mark = |word: usize| {
        roots += 1;
        if objects.contains_key(&word) {
            live.push(word);
        }
    };
    store.for_each_ref_root(&mut mark);
    crate::vm::traphandlers::scan_stack_conservatively(&mut mark);
    if let Some(pending) = &store.pending_exception {
        mark(Arc::as_ptr(&pending.0) as usize);
    }
    for (address, object) in objects.iter() {
        if Arc::strong_count(object) > 1 {
            live.push(*address);
        }
    }
    // Objects that live objects' fields hold, transitively.
    let mut kept: std::collections::HashSet<usize> = std::collections::HashSet::new();
    while let Some(address) = live.pop() {
        if !kept.insert(address) {
            continue;
        }
        if let Some(object) = objects.get(&address) {
            for field in object.fields() {
                let word = field.get_ptr() as usize;
                if objects.contains_key(&word) && !kept.contains(&word) {
                    live.push(word);
                }
            }
        }
    }
    objects.retain(|address, _| kept.contains(address));
    roots
}

/// The error a call returns when a wasm exception reached it uncaught
/// (from wasm, or from a host function that threw with
/// [`Store::throw`](crate::Store::throw)). The store holds the exception:
/// [`Store::take_pending_exception`](crate::Store::take_pending_exception).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrownException;

impl std::fmt::Display for ThrownException {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("thrown Wasm exception")
    }
}

impl std::error::Error for ThrownException {}
