//! Linear memories.
//!
//! ```text
//!  base                      base + current_length        base + reservation + guard
//!   |<-- read-write pages -->|<-- PROT_NONE ----------------------------->|
//!   |                        |<-- grows into this by mprotect ----->|guard|
//! ```
//!
//! A memory reserves its whole reachable range when it is created (or takes
//! a released reservation, reset: a pool slot or one of the engine's spares,
//! [`super::spare_memories`]) and never moves, so generated code may treat
//! `base` as constant. Growing makes more
//! pages accessible; an access past `current_length` faults and the signal
//! handler reports it as out of bounds.

use super::memory_image::MemoryImage;
use super::mmap::{Mmap, page_size};
use super::pool::{InstancePool, MemorySlot, PoolError};
use super::spare_memories::SpareMemories;
use super::vmcontext::VMMemoryDefinition;
use keel_environ::{Memory, Tunables};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// The operating system refused the mapping. The cause is part of the
    /// message and deliberately not also the error's `source`, or a chain
    /// printed with `{:#}` would say it twice.
    #[error("failed to map linear memory: {0}")]
    Map(std::io::Error),
    /// The pooling allocator has no slot for it.
    #[error(transparent)]
    Pool(#[from] PoolError),
}

impl From<std::io::Error> for MemoryError {
    fn from(e: std::io::Error) -> Self {
        MemoryError::Map(e)
    }
}

/// Where a memory's reservation goes back to when it is dropped.
enum SlotHome {
    /// The engine's spare reservations (on-demand allocation).
    Spares(Arc<SpareMemories>),
    /// The pooling allocator.
    Pool(Arc<InstancePool>),
}

/// A linear memory. Its definition comes first, so a pointer to the
/// definition is a pointer to the memory: `memory.grow` on an imported
/// memory finds its owner that way.
#[repr(C)]
pub struct LinearMemory {
    definition: VMMemoryDefinition,
    /// The reservation; always `Some` until dropped.
    slot: Option<MemorySlot>,
    /// Where `slot` goes back to, reset.
    home: SlotHome,
    /// Largest size in bytes this memory may reach.
    maximum_bytes: usize,
    /// Its declared type (index type, page size, limits).
    ty: Memory,
    /// Whether the host was given a way to write the bytes (a mutable
    /// slice, or the base pointer). Atomic because the pointer is handed
    /// out through a shared reference.
    host_written: AtomicBool,
    /// Set by [`LinearMemory::release_untouched_by_guest`]: no guest code
    /// ran while this memory existed.
    guest_never_ran: bool,
}

// SAFETY: the definition's pointer points into `slot`, which this value
// owns; nothing else holds on to it across threads without the store.
unsafe impl Send for LinearMemory {}
// SAFETY: shared references only read the definition, and write nothing
// but the atomic `host_written`.
unsafe impl Sync for LinearMemory {}

impl LinearMemory {
    /// Creates a memory of type `ty`, zeroed, laid out as `tunables` says,
    /// with `image` (if any) mapped copy-on-write over its start, in one of
    /// `spares` or a fresh reservation.
    pub fn new(
        ty: &Memory,
        tunables: &Tunables,
        image: Option<&Arc<MemoryImage>>,
        spares: &Arc<SpareMemories>,
    ) -> Result<LinearMemory, MemoryError> {
        let (initial, maximum_bytes) = sizes(ty, tunables, usize::MAX)?;
        let mut slot = spares.take()?;
        // On failure the slot, in an unknown state, is unmapped.
        prepare_slot(&mut slot, image, initial)?;
        Ok(Self::in_slot(
            slot,
            SlotHome::Spares(spares.clone()),
            initial,
            maximum_bytes,
            ty,
        ))
    }

    /// Creates a memory of type `ty` in a slot of `pool`, reading as zeros
    /// and `image`.
    pub fn new_pooled(
        ty: &Memory,
        tunables: &Tunables,
        image: Option<&Arc<MemoryImage>>,
        pool: &Arc<InstancePool>,
    ) -> Result<LinearMemory, MemoryError> {
        let (initial, maximum_bytes) = sizes(ty, tunables, pool.limits().max_memory_size)?;
        let mut slot = pool.take_memory_slot()?;
        if let Err(e) = prepare_slot(&mut slot, image, initial) {
            pool.scrap_memory_slot(slot);
            return Err(e.into());
        }
        Ok(Self::in_slot(
            slot,
            SlotHome::Pool(pool.clone()),
            initial,
            maximum_bytes,
            ty,
        ))
    }

    /// A memory in `slot`, prepared with `initial` bytes accessible.
    fn in_slot(
        slot: MemorySlot,
        home: SlotHome,
        initial: usize,
        maximum_bytes: usize,
        ty: &Memory,
    ) -> LinearMemory {
        LinearMemory {
            definition: VMMemoryDefinition {
                base: slot.mmap.as_ptr(),
                current_length: initial,
            },
            slot: Some(slot),
            home,
            maximum_bytes,
            ty: *ty,
            host_written: AtomicBool::new(false),
            guest_never_ran: false,
        }
    }

    fn mmap_mut(&mut self) -> Option<&mut Mmap> {
        self.slot.as_mut().map(|s| &mut s.mmap)
    }

    /// The definition generated code reads.
    pub fn definition(&mut self) -> *mut VMMemoryDefinition {
        &mut self.definition
    }

    /// The first byte; never changes.
    pub fn base(&self) -> *mut u8 {
        self.definition.base
    }

    /// The first byte, for the host to write through: the memory then
    /// counts as written when it is released.
    pub fn base_for_host(&self) -> *mut u8 {
        self.host_written.store(true, Ordering::Relaxed);
        self.definition.base
    }

    /// Says that no guest code of the owning store ever ran: if the host
    /// never wrote it either ([`LinearMemory::as_mut_slice`],
    /// [`LinearMemory::base_for_host`]), its pages are as the slot's last
    /// reset left them, and a pooled slot goes back without another reset.
    /// Never called otherwise, so a memory released any other way (an
    /// instantiation that failed before its instance joined the store, a
    /// store whose wasm ran) is always reset. (An instance that failed in
    /// its segments stays in its store: what those segments wrote went
    /// through `as_mut_slice`, so it is reset too.)
    pub fn release_untouched_by_guest(&mut self) {
        self.guest_never_ran = true;
    }

    /// Current size in bytes.
    pub fn byte_size(&self) -> usize {
        self.definition.current_length
    }

    /// Current size in pages.
    pub fn pages(&self) -> u64 {
        self.byte_size() as u64 >> self.ty.page_size_log2
    }

    /// Its type: as declared, with the current size as minimum.
    pub fn ty(&self) -> Memory {
        Memory {
            minimum: self.pages(),
            ..self.ty
        }
    }

    /// Declared maximum in bytes (saturating: a 64-bit memory may declare
    /// 2^64 bytes), what a store's limiter is told.
    pub fn declared_maximum_bytes(&self) -> Option<usize> {
        self.ty.maximum.map(|pages| self.ty.bytes(pages))
    }

    /// Its size in bytes after growing by `delta` pages (what a store's
    /// limiter is asked about), or `None` if that overflows.
    pub fn bytes_after_growth(&self, delta: u64) -> Option<usize> {
        delta
            .checked_mul(self.ty.page_size())
            .and_then(|d| d.checked_add(self.byte_size() as u64))
            .and_then(|d| usize::try_from(d).ok())
    }

    /// Largest size in pages this memory can reach here.
    pub fn maximum_pages(&self) -> u64 {
        self.maximum_bytes as u64 >> self.ty.page_size_log2
    }

    /// Grows by `delta` pages; returns the old size in pages, or `None` if
    /// that would pass the maximum or the system refuses. With one-byte
    /// pages the new length may end inside a host page; the whole host
    /// page becomes accessible (its tail stays zero: code checks every
    /// access against the length, and the host sees `byte_size` bytes).
    pub fn grow(&mut self, delta: u64) -> Option<u64> {
        let old = self.pages();
        let new_pages = old.checked_add(delta)?;
        if new_pages > self.maximum_pages() {
            return None;
        }
        let new_bytes = self.ty.bytes(new_pages);
        let (from, to) = (host_pages(self.byte_size()), host_pages(new_bytes));
        if to > from {
            self.mmap_mut()?.make_accessible(from, to - from).ok()?;
        }
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
        *self.host_written.get_mut() = true;
        // SAFETY: as in `as_slice`, and the exclusive borrow of `self`
        // means no other Rust reference to these bytes exists. (Wasm code of
        // this store cannot run while the store is mutably borrowed.)
        unsafe { std::slice::from_raw_parts_mut(self.base(), self.byte_size()) }
    }
}

impl Drop for LinearMemory {
    fn drop(&mut self) {
        let used = host_pages(self.byte_size());
        let untouched = self.guest_never_ran && !*self.host_written.get_mut();
        if let Some(slot) = self.slot.take() {
            match &self.home {
                SlotHome::Spares(spares) => spares.give_back(slot, used, untouched),
                SlotHome::Pool(pool) => pool.return_memory_slot(slot, used, untouched),
            }
        }
    }
}

/// The initial size and the largest size in bytes of a memory of type
/// `ty`, or an error if even the initial size is too large. A memory never
/// moves, so it grows at most to the reservation, whatever its index type
/// allows.
fn sizes(
    ty: &Memory,
    tunables: &Tunables,
    limit_bytes: usize,
) -> Result<(usize, usize), MemoryError> {
    let limit_pages = (tunables.memory_reservation >> ty.page_size_log2)
        .min(ty.index_max_pages())
        .min(limit_bytes as u64 >> ty.page_size_log2);
    let maximum_pages = ty.maximum.unwrap_or(u64::MAX).min(limit_pages);
    if ty.minimum > maximum_pages {
        return Err(MemoryError::TooLarge {
            pages: ty.minimum,
            limit: maximum_pages,
        });
    }
    // Both at most `limit_bytes` and the reservation: no overflow.
    Ok((ty.bytes(ty.minimum), ty.bytes(maximum_pages)))
}

/// `bytes` rounded up to whole host pages: what must be accessible for a
/// memory of that length.
fn host_pages(bytes: usize) -> usize {
    bytes.next_multiple_of(page_size())
}

/// Makes a slot hold exactly `image` and `initial` accessible bytes
/// (rounded up to whole host pages). The
/// slot is fresh or was reset when released ([`MemorySlot::reset`]), so
/// only the image and the accessible length may need changing.
fn prepare_slot(
    slot: &mut MemorySlot,
    image: Option<&Arc<MemoryImage>>,
    initial: usize,
) -> std::io::Result<()> {
    let same_image = match (&slot.image, image) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    };
    if !same_image {
        let mapped = slot.image.as_ref().map_or(0, |i| i.start() + i.byte_len());
        let dirty = slot.accessible.max(mapped);
        slot.image = None;
        slot.accessible = 0;
        slot.mmap.reset_to_reserved(0, dirty)?;
        if let Some(image) = image {
            // Inside `initial` by the image's invariant; made accessible
            // with the rest below.
            slot.mmap
                .map_file_private(image.start(), image.byte_len(), image.fd(), 0)?;
            slot.image = Some(image.clone());
        }
    }
    let initial = host_pages(initial);
    if slot.accessible < initial {
        slot.mmap
            .make_accessible(slot.accessible, initial - slot.accessible)?;
    } else if slot.accessible > initial {
        slot.mmap
            .make_inaccessible(initial, slot.accessible - initial)?;
    }
    slot.accessible = initial;
    Ok(())
}
