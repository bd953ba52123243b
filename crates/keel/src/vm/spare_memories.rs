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

use super::mmap::Mmap;
use super::pool::MemorySlot;
use std::sync::{Mutex, MutexGuard};

/// How many released reservations an engine keeps.
pub const SPARE_MEMORIES: usize = 16;

/// An engine's released memory reservations, the last released first.
#[derive(Default)]
pub struct SpareMemories {
    slots: Mutex<Vec<MemorySlot>>,
}

impl SpareMemories {
    fn lock(&self) -> MutexGuard<'_, Vec<MemorySlot>> {
        // Push and pop cannot leave the list half-updated: poison is moot.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A reservation of `len` bytes: a spare if one of that size is kept
    /// (as its last reset left it), else a fresh one with nothing
    /// accessible.
    pub fn take(&self, len: usize) -> std::io::Result<MemorySlot> {
        let spare = self.lock().pop();
        match spare {
            Some(slot) if slot.mmap.len() == len => Ok(slot),
            _ => Ok(MemorySlot {
                mmap: Mmap::reserve(len)?,
                image: None,
                accessible: 0,
            }),
        }
    }

    /// Takes back a reservation whose first `used` bytes were accessible
    /// (`untouched`: nothing wrote them since it was taken). It is reset
    /// and kept if there is room; otherwise, or if the reset fails, it is
    /// unmapped.
    pub fn give_back(&self, mut slot: MemorySlot, used: usize, untouched: bool) {
        if self.lock().len() >= SPARE_MEMORIES || !slot.reset(used, untouched) {
            return;
        }
        let mut slots = self.lock();
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
        let spares = SpareMemories::default();
        let slots: Vec<_> = (0..SPARE_MEMORIES + 4)
            .map(|_| spares.take(LEN).unwrap())
            .collect();
        let last = slots.last().unwrap().mmap.as_ptr();
        for slot in slots {
            spares.give_back(slot, 0, true);
        }
        assert_eq!(spares.lock().len(), SPARE_MEMORIES);
        // The list is full when the last ones come back: they are unmapped,
        // and the last one kept is handed out first.
        assert_ne!(spares.take(LEN).unwrap().mmap.as_ptr(), last);
        let kept = spares.lock().last().unwrap().mmap.as_ptr();
        assert_eq!(spares.take(LEN).unwrap().mmap.as_ptr(), kept);
    }

    #[test]
    fn a_spare_of_another_size_is_not_handed_out() {
        let spares = SpareMemories::default();
        spares.give_back(spares.take(LEN).unwrap(), 0, true);
        let other = spares.take(2 * LEN).unwrap();
        assert_eq!(other.mmap.len(), 2 * LEN);
        assert_eq!(spares.lock().len(), 0, "the mismatched spare is unmapped");
    }

    #[test]
    fn a_written_spare_reads_as_zeros_again() {
        let spares = SpareMemories::default();
        let mut slot = spares.take(LEN).unwrap();
        slot.mmap.make_accessible(0, 8192).unwrap();
        // SAFETY: the first 8 KiB were just made accessible, and nothing
        // else refers to this reservation.
        unsafe { std::ptr::write_bytes(slot.mmap.as_ptr(), 0x5e, 8192) };
        spares.give_back(slot, 8192, false);
        let slot = spares.take(LEN).unwrap();
        assert_eq!(slot.accessible, 8192);
        // SAFETY: as above; the reset kept the 8 KiB accessible.
        let bytes = unsafe { std::slice::from_raw_parts(slot.mmap.as_ptr(), 8192) };
        assert!(bytes.iter().all(|b| *b == 0));
    }
}
