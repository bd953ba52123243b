//! Reservations of on-demand memories, kept for the next memory.
//!
//! Without the pooling allocator, every linear memory reserves its 4 GiB
//! and guard with `mmap` and gives them back with `munmap` when its store
//! is dropped. Those calls cost more than the rest of an instantiation
//! together (on the machines of `BENCHMARKS.md`, an `munmap` of an
//! untouched 4 GiB reservation takes 3 to 10 us, depending on where the
//! kernel placed it), and they are the same on every instantiation. So an
//! engine keeps up to [`SPARE_MEMORIES`] released reservations, reset
//! exactly as a pool slot is ([`MemorySlot::reset`]), and a new memory
//! takes one before it reserves anew: a host that instantiates per
//! request maps nothing after the first request.
//!
//! The cost is mostly address space: a spare holds no private pages (its
//! accessible bytes were given back with `MADV_DONTNEED`), only its
//! reservation, the page tables its last tenant touched, and the
//! copy-on-write image of its last module, which the next instance of that
//! module finds in place. That image's pages are memory: a spare keeps
//! the image of a module already dropped until another memory takes the
//! spare, as a pool slot does.

use super::pool::{MemorySlot, lock};
use std::sync::Mutex;

/// How many released reservations an engine keeps.
pub const SPARE_MEMORIES: usize = 16;

/// An engine's released memory reservations, the last released first.
pub struct SpareMemories {
    /// Bytes of every reservation: the engine's memory reservation and
    /// guard.
    slot_size: usize,
    slots: Mutex<Vec<MemorySlot>>,
}

impl SpareMemories {
    /// No spares yet; reservations of `slot_size` bytes.
    pub fn new(slot_size: usize) -> SpareMemories {
        SpareMemories {
            slot_size,
            slots: Mutex::new(Vec::new()),
        }
    }

    /// A reservation: a spare if one is kept (as its last reset left it),
    /// else a fresh one with nothing accessible.
    pub fn take(&self) -> std::io::Result<MemorySlot> {
        let spare = lock(&self.slots).pop();
        spare.map_or_else(|| MemorySlot::reserve(self.slot_size), Ok)
    }

    /// Takes back a reservation whose first `used` bytes were accessible
    /// (`untouched`: nothing wrote them since it was taken). It is reset
    /// and kept if there is room; otherwise, or if the reset fails, it is
    /// unmapped.
    pub fn give_back(&self, mut slot: MemorySlot, used: usize, untouched: bool) {
        debug_assert_eq!(slot.mmap.len(), self.slot_size);
        if lock(&self.slots).len() >= SPARE_MEMORIES || !slot.reset(used, untouched) {
            return;
        }
        let mut slots = lock(&self.slots);
        if slots.len() < SPARE_MEMORIES {
            slots.push(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEN: usize = 1 << 20;

    #[test]
    fn keeps_at_most_its_capacity_and_reuses_the_last_released() {
        let spares = SpareMemories::new(LEN);
        let slots: Vec<_> = (0..SPARE_MEMORIES + 4)
            .map(|_| spares.take().unwrap())
            .collect();
        let last = slots.last().unwrap().mmap.as_ptr();
        for slot in slots {
            spares.give_back(slot, 0, true);
        }
        assert_eq!(lock(&spares.slots).len(), SPARE_MEMORIES);
        // The list is full when the last ones come back: they are unmapped,
        // and the last one kept is handed out first.
        assert_ne!(spares.take().unwrap().mmap.as_ptr(), last);
        let kept = lock(&spares.slots).last().unwrap().mmap.as_ptr();
        assert_eq!(spares.take().unwrap().mmap.as_ptr(), kept);
    }

    #[test]
    fn fresh_and_kept_reservations_have_the_engines_size() {
        let spares = SpareMemories::new(LEN);
        let fresh = spares.take().unwrap();
        assert_eq!(fresh.mmap.len(), LEN);
        spares.give_back(fresh, 0, true);
        assert_eq!(spares.take().unwrap().mmap.len(), LEN);
    }

    #[test]
    fn a_written_spare_reads_as_zeros_again() {
        let spares = SpareMemories::new(LEN);
        let mut slot = spares.take().unwrap();
        slot.mmap.make_accessible(0, 8192).unwrap();
        // SAFETY: the first 8 KiB were just made accessible, and nothing
        // else refers to this reservation.
        unsafe { std::ptr::write_bytes(slot.mmap.as_ptr(), 0x5e, 8192) };
        spares.give_back(slot, 8192, false);
        let slot = spares.take().unwrap();
        assert_eq!(slot.accessible, 8192);
        // SAFETY: as above; the reset kept the 8 KiB accessible.
        let bytes = unsafe { std::slice::from_raw_parts(slot.mmap.as_ptr(), 8192) };
        assert!(bytes.iter().all(|b| *b == 0));
    }
}
