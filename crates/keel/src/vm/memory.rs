//! Linear memories.
//!
//! ```text
//!  base                      base + current_length        base + reservation + guard
//!   |<-- read-write pages -->|<-- PROT_NONE ----------------------------->|
//!   |                        |<-- grows into this by mprotect ----->|guard|
//! ```
//!
//! A memory reserves its whole reachable range when it is created and never
//! moves, so generated code may treat `base` as constant. Growing makes more
//! pages accessible; an access past `current_length` faults and the signal
//! handler reports it as out of bounds.

use super::mmap::{Mmap, page_size};
use super::vmcontext::VMMemoryDefinition;
use keel_environ::{Memory, Tunables, WASM_PAGE_SIZE, WASM32_MAX_PAGES};
use thiserror::Error;

/// Why a memory could not be created.
#[derive(Debug, Error)]
pub enum MemoryError {
    /// The minimum size is larger than this configuration allows.
    #[error("memory minimum of {pages} pages exceeds the limit of {limit} pages")]
    TooLarge {
        /// Requested pages.
        pages: u64,
        /// Largest allowed.
        limit: u64,
    },
    /// The operating system refused the mapping.
    #[error("failed to map linear memory: {0}")]
    Map(#[from] std::io::Error),
}

/// A linear memory. Its definition comes first, so a pointer to the
/// definition is a pointer to the memory: `memory.grow` on an imported
/// memory finds its owner that way.
#[repr(C)]
pub struct LinearMemory {
    definition: VMMemoryDefinition,
    mmap: Mmap,
    /// Largest size in bytes this memory may reach.
    maximum_bytes: usize,
    /// Declared maximum in pages, if any.
    declared_maximum: Option<u64>,
}

// SAFETY: the definition's pointer points into `mmap`, which this value
// owns; nothing else holds on to it across threads without the store.
unsafe impl Send for LinearMemory {}
// SAFETY: shared references only read the definition.
unsafe impl Sync for LinearMemory {}

impl LinearMemory {
    /// Creates a memory of type `ty`, zeroed, laid out as `tunables` says.
    pub fn new(ty: &Memory, tunables: &Tunables) -> Result<Box<LinearMemory>, MemoryError> {
        let reservation = usize::try_from(tunables.memory_reservation).unwrap_or(usize::MAX);
        let guard = usize::try_from(tunables.memory_guard_size).unwrap_or(0);
        let limit_pages = (tunables.memory_reservation / WASM_PAGE_SIZE).min(WASM32_MAX_PAGES);
        let maximum_pages = ty.maximum.unwrap_or(WASM32_MAX_PAGES).min(limit_pages);
        if ty.minimum > maximum_pages {
            return Err(MemoryError::TooLarge {
                pages: ty.minimum,
                limit: maximum_pages,
            });
        }
        let mut mmap = Mmap::reserve(reservation.saturating_add(guard))?;
        let initial = (ty.minimum * WASM_PAGE_SIZE) as usize;
        mmap.make_accessible(0, initial)?;
        Ok(Box::new(LinearMemory {
            definition: VMMemoryDefinition {
                base: mmap.as_ptr(),
                current_length: initial,
            },
            mmap,
            maximum_bytes: (maximum_pages * WASM_PAGE_SIZE) as usize,
            declared_maximum: ty.maximum,
        }))
    }

    /// The definition generated code reads.
    pub fn definition(&mut self) -> *mut VMMemoryDefinition {
        &mut self.definition
    }

    /// The first byte; never changes.
    pub fn base(&self) -> *mut u8 {
        self.definition.base
    }

    /// Current size in bytes.
    pub fn byte_size(&self) -> usize {
        self.definition.current_length
    }

    /// Current size in pages.
    pub fn pages(&self) -> u64 {
        self.byte_size() as u64 / WASM_PAGE_SIZE
    }

    /// Declared maximum in pages.
    pub fn declared_maximum(&self) -> Option<u64> {
        self.declared_maximum
    }

    /// Largest size in pages this memory can reach here.
    pub fn maximum_pages(&self) -> u64 {
        self.maximum_bytes as u64 / WASM_PAGE_SIZE
    }

    /// Grows by `delta` pages; returns the old size in pages, or `None` if
    /// that would pass the maximum or the system refuses.
    pub fn grow(&mut self, delta: u64) -> Option<u64> {
        let old = self.pages();
        let new_pages = old.checked_add(delta)?;
        if new_pages > self.maximum_pages() {
            return None;
        }
        let old_bytes = self.byte_size();
        let new_bytes = usize::try_from(new_pages * WASM_PAGE_SIZE).ok()?;
        debug_assert_eq!(old_bytes % page_size(), 0);
        self.mmap
            .make_accessible(old_bytes, new_bytes - old_bytes)
            .ok()?;
        self.definition.current_length = new_bytes;
        Some(old)
    }

    /// The accessible bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `base..base+current_length` is mapped read-write and owned
        // by this memory; the shared borrow of `self` keeps it from growing
        // (which only adds pages) or being freed.
        unsafe { std::slice::from_raw_parts(self.base(), self.byte_size()) }
    }

    /// The accessible bytes, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and the exclusive borrow of `self`
        // means no other Rust reference to these bytes exists. (Wasm code of
        // this store cannot run while the store is mutably borrowed.)
        unsafe { std::slice::from_raw_parts_mut(self.base(), self.byte_size()) }
    }
}
