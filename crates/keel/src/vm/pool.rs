//! The pooling instance allocator: slots for instance contexts, linear
//! memories and tables, reserved once and reused.
//!
//! A fresh instance then costs no `mmap` of its own: it takes a free slot of
//! each kind, and gives them back when its store is dropped. Reuse must
//! never show one tenant's data to the next, so a slot is reset when it is
//! released, before it goes back on the free list:
//!
//! - a memory slot by `madvise(MADV_DONTNEED)` over what was accessible,
//!   which reads back as zeros, or as the module's copy-on-write image
//!   ([`super::memory_image`]) that stays mapped for the next instance of
//!   the same module;
//! - a table slot and a context slot by zeroing what was used.
//!
//! A slot whose tenant never touched it is not reset: an instance whose
//! store never ran guest code (no call, no start function) and whose
//! memory and table the host never wrote still has the slot exactly as
//! the last reset left it. Both conditions are tracked where they
//! arise (the store context's `wasm_entered`, set on every entry into
//! wasm; each memory's and table's record of host writes), and a slot
//! released any other way is reset as usual.
//!
//! If a reset fails, the slot is not reused: a smaller pool beats a leak.
//! Free lists are LIFO, so an instance of the module that just finished
//! usually finds its image already in place.
//!
//! Keel runs wasm on the caller's thread stack, so there is no stack pool.

use super::fiber::FiberStack;
use super::memory_image::MemoryImage;
use super::mmap::{Mmap, round_up_to_page};
use std::sync::{Arc, Mutex, MutexGuard};
use thiserror::Error;

/// Sizes and counts of a pool.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PoolLimits {
    /// Instance context slots: the most instances alive at once.
    pub total_core_instances: u32,
    /// Bytes per instance context slot.
    pub max_core_instance_size: usize,
    /// Linear memory slots.
    pub total_memories: u32,
    /// Largest size in bytes a pooled memory may reach.
    pub max_memory_size: usize,
    /// Most memories one module may define.
    pub max_memories_per_module: u32,
    /// Table slots.
    pub total_tables: u32,
    /// Elements per table slot: the largest size a pooled table may reach.
    pub table_elements: usize,
    /// Most tables one module may define.
    pub max_tables_per_module: u32,
    /// Fiber stacks: the most async calls in progress at once.
    pub total_stacks: u32,
    /// Usable bytes per fiber stack (`Config::async_stack_size`).
    pub stack_size: usize,
    /// Whether a stack is zeroed before reuse
    /// (`Config::async_stack_zeroing`).
    pub zero_stacks: bool,
}

impl Default for PoolLimits {
    fn default() -> Self {
        PoolLimits {
            total_core_instances: 1000,
            max_core_instance_size: 1 << 20,
            total_memories: 1000,
            max_memory_size: 4 << 30,
            max_memories_per_module: 1,
            total_tables: 1000,
            table_elements: 20_000,
            max_tables_per_module: 1,
            total_stacks: 1000,
            stack_size: 2 << 20,
            zero_stacks: false,
        }
    }
}

/// Why the pool could not serve an instance.
#[derive(Debug, Error)]
pub enum PoolError {
    /// Every slot of a kind is taken.
    #[error(
        "pooling allocator: all {total} {kind} slots are in use (raise `PoolingAllocationConfig::{setting}`)"
    )]
    Exhausted {
        /// Memory, table or instance.
        kind: &'static str,
        /// Slots of that kind.
        total: u32,
        /// The setting that sizes them.
        setting: &'static str,
    },
    /// The module needs more than a slot offers.
    #[error(
        "pooling allocator: the module needs {needed} {what}, more than the limit of {limit} (`PoolingAllocationConfig::{setting}`)"
    )]
    ModuleTooLarge {
        /// What is counted.
        what: &'static str,
        /// How much the module needs.
        needed: u64,
        /// The limit.
        limit: u64,
        /// The setting to raise.
        setting: &'static str,
    },
    /// The system refused to reserve the pool (the cause is in the
    /// message only, not also the `source`, so it prints once).
    #[error("pooling allocator: cannot reserve slots: {0}")]
    Map(std::io::Error),
}

impl From<std::io::Error> for PoolError {
    fn from(e: std::io::Error) -> Self {
        PoolError::Map(e)
    }
}

/// A memory slot and what its pages currently hold.
pub struct MemorySlot {
    /// The slot's reservation (memory reservation plus guard).
    pub mmap: Mmap,
    /// The image mapped at its start, if any. Its pages read as the image
    /// (the slot was reset with `MADV_DONTNEED`), everything else as zero.
    pub image: Option<Arc<MemoryImage>>,
    /// How many bytes from the start are readable and writable.
    pub accessible: usize,
}

impl MemorySlot {
    /// A fresh reservation of `len` bytes with nothing accessible.
    pub fn reserve(len: usize) -> std::io::Result<MemorySlot> {
        Ok(MemorySlot {
            mmap: Mmap::reserve(len)?,
            image: None,
            accessible: 0,
        })
    }

    /// Resets the slot after a tenant whose first `used` bytes were
    /// accessible, so that they read as zeros and the image again;
    /// `untouched` says nothing wrote them since the slot was taken, so
    /// they still do. Returns `false` if the slot cannot be reset and must
    /// not be reused.
    pub fn reset(&mut self, used: usize, untouched: bool) -> bool {
        if untouched || self.mmap.discard(0, used).is_ok() {
            self.accessible = used;
            return true;
        }
        // Should `madvise` ever fail, start the slot over, or drop it.
        self.image = None;
        self.accessible = 0;
        self.mmap.reset_to_reserved(0, self.mmap.len()).is_ok()
    }
}

/// Every slot of every kind, free ones on LIFO lists.
pub struct InstancePool {
    limits: PoolLimits,
    memory_slot_size: usize,
    memories: Mutex<Vec<MemorySlot>>,
    tables: Mutex<Vec<Mmap>>,
    instances: Mutex<Vec<Mmap>>,
    stacks: Mutex<Vec<Mmap>>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a list half-updated
    // (push and pop are atomic with respect to panics), so poison is moot.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl InstancePool {
    /// Reserves every slot: `memory_slot_size` bytes of address space per
    /// memory (the reservation plus guard generated code relies on),
    /// accessible zeroed pages for tables and contexts. Reserving costs
    /// address space, not memory: pages are only backed once touched.
    pub fn new(limits: PoolLimits, memory_slot_size: usize) -> Result<InstancePool, PoolError> {
        let memories = (0..limits.total_memories)
            .map(|_| MemorySlot::reserve(memory_slot_size))
            .collect::<std::io::Result<Vec<_>>>()?;
        let table_bytes = limits
            .table_elements
            .checked_mul(std::mem::size_of::<usize>())
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::OutOfMemory))?;
        let tables = (0..limits.total_tables)
            .map(|_| Mmap::accessible(table_bytes))
            .collect::<std::io::Result<Vec<_>>>()?;
        let instances = (0..limits.total_core_instances)
            .map(|_| Mmap::accessible(limits.max_core_instance_size))
            .collect::<std::io::Result<Vec<_>>>()?;
        let stacks = (0..limits.total_stacks)
            .map(|_| FiberStack::mapping(limits.stack_size))
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(InstancePool {
            limits,
            memory_slot_size,
            memories: Mutex::new(memories),
            tables: Mutex::new(tables),
            instances: Mutex::new(instances),
            stacks: Mutex::new(stacks),
        })
    }

    /// The pool's sizes.
    pub fn limits(&self) -> &PoolLimits {
        &self.limits
    }

    /// Checks what one module needs against the slot sizes, before any
    /// slot is taken.
    pub fn check_module(
        &self,
        vmctx_size: usize,
        defined_memories: usize,
        defined_tables: usize,
    ) -> Result<(), PoolError> {
        let l = &self.limits;
        let checks = [
            (
                "bytes of instance context",
                vmctx_size as u64,
                l.max_core_instance_size as u64,
                "max_core_instance_size",
            ),
            (
                "memories",
                defined_memories as u64,
                u64::from(l.max_memories_per_module),
                "max_memories_per_module",
            ),
            (
                "tables",
                defined_tables as u64,
                u64::from(l.max_tables_per_module),
                "max_tables_per_module",
            ),
        ];
        for (what, needed, limit, setting) in checks {
            if needed > limit {
                return Err(PoolError::ModuleTooLarge {
                    what,
                    needed,
                    limit,
                    setting,
                });
            }
        }
        Ok(())
    }

    /// Takes a zeroed instance context slot.
    pub fn take_instance_slot(&self) -> Result<Mmap, PoolError> {
        lock(&self.instances).pop().ok_or(PoolError::Exhausted {
            kind: "instance",
            total: self.limits.total_core_instances,
            setting: "total_core_instances",
        })
    }

    /// Returns a context slot whose first `used` bytes were written.
    pub fn return_instance_slot(&self, slot: Mmap, used: usize) {
        let used = used.min(slot.len());
        if used > 0 {
            // SAFETY: the slot is an accessible mapping of at least `used`
            // bytes that nothing else references once its instance is gone.
            unsafe { std::ptr::write_bytes(slot.as_ptr(), 0, used) };
        }
        lock(&self.instances).push(slot);
    }

    /// Takes a table slot: `table_elements` zeroed (null) elements.
    pub fn take_table_slot(&self) -> Result<Mmap, PoolError> {
        lock(&self.tables).pop().ok_or(PoolError::Exhausted {
            kind: "table",
            total: self.limits.total_tables,
            setting: "total_tables",
        })
    }

    /// Returns a table slot whose first `used` bytes were written.
    pub fn return_table_slot(&self, mut slot: Mmap, used: usize) {
        let used = used.min(slot.len());
        // Large tables give their pages back rather than keep them
        // resident; small ones are cheaper to clear in place.
        if used > 64 << 10 {
            let len = round_up_to_page(used).unwrap_or(slot.len()).min(slot.len());
            if slot.discard(0, len).is_err() {
                return;
            }
        } else if used > 0 {
            // SAFETY: as for context slots.
            unsafe { std::ptr::write_bytes(slot.as_ptr(), 0, used) };
        }
        lock(&self.tables).push(slot);
    }

    /// Takes a memory slot, preferring (LIFO) the one released last.
    pub fn take_memory_slot(&self) -> Result<MemorySlot, PoolError> {
        lock(&self.memories).pop().ok_or(PoolError::Exhausted {
            kind: "memory",
            total: self.limits.total_memories,
            setting: "total_memories",
        })
    }

    /// Returns a memory slot after resetting it: its first `used` bytes
    /// were accessible to the last tenant. `untouched` says nothing wrote
    /// them since the slot was taken (no guest code ran, the host had no
    /// access), so they still read as zeros and the image: no reset.
    pub fn return_memory_slot(&self, mut slot: MemorySlot, used: usize, untouched: bool) {
        debug_assert_eq!(slot.mmap.len(), self.memory_slot_size);
        if slot.reset(used, untouched) {
            lock(&self.memories).push(slot);
        }
    }

    /// Takes a fiber stack, which goes back to the pool when dropped.
    pub fn take_stack(self: &Arc<Self>) -> Result<FiberStack, PoolError> {
        let mapping = lock(&self.stacks).pop().ok_or(PoolError::Exhausted {
            kind: "stack",
            total: self.limits.total_stacks,
            setting: "total_stacks",
        })?;
        // SAFETY: the pool's stack mappings are all made by
        // `FiberStack::mapping` (in `new`) and handed to one stack at a time.
        Ok(unsafe { FiberStack::pooled(mapping, self.clone()) })
    }

    /// Takes back a stack's mapping (see [`FiberStack::mapping`]). With
    /// `zero_stacks`, its pages are given back to the system first, so the
    /// next fiber finds zeros (a stack whose reset fails is dropped);
    /// without, the next fiber finds what the last one left, which neither
    /// wasm nor safe host code can read (see `Config::async_stack_zeroing`).
    ///
    /// # Safety
    ///
    /// `mapping` must be a stack mapping this pool handed out (see
    /// [`InstancePool::take_stack`]) that nothing runs on any more.
    pub(super) unsafe fn return_stack(&self, mut mapping: Mmap) {
        let guard = super::mmap::page_size();
        if !self.limits.zero_stacks || mapping.discard(guard, mapping.len() - guard).is_ok() {
            lock(&self.stacks).push(mapping);
        }
    }

    /// Takes back a memory slot in an unknown state: starts it over, or
    /// drops it if even that fails.
    pub fn scrap_memory_slot(&self, mut slot: MemorySlot) {
        slot.image = None;
        slot.accessible = 0;
        if slot.mmap.reset_to_reserved(0, slot.mmap.len()).is_ok() {
            lock(&self.memories).push(slot);
        }
    }
}
