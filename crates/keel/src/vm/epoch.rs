//! Epoch deadlines: the engine's counter, each store's deadline, and what
//! generated code polls to learn that the deadline has passed.
//!
//! Generated code does not compare the epoch with a deadline itself. Each
//! store has an interrupt word and, when the engine's code checks by fault
//! (`Tunables::epoch_by_signal`), an interrupt page. A check either
//! loads the word and calls the `new_epoch` builtin when it is non-zero, or
//! loads one byte of the page, which faults once the page is made
//! inaccessible; the fault handler then asks the store what to do
//! (`traphandlers::epoch_check_resume`) and resumes at the check. Whoever
//! moves the epoch or a deadline keeps both true:
//! [`EpochRegistry::increment`] interrupts every registered store whose
//! deadline it reached, and [`EpochRegistry::set_deadline`] interrupts or
//! re-arms a store for its new deadline. Both run under the registry's
//! lock, which orders them (and the `mprotect`s of the pages).
//!
//! **Invariant:** whenever the epoch is at or past a registered store's
//! deadline, that store's interrupt word is non-zero and its page, if it
//! has one, is inaccessible. (Either may stay so a little longer than
//! needed; `new_epoch` then finds the deadline ahead and re-arms.)
//!
//! With pages, loops need no check at all: a tick that interrupts a store
//! whose wasm is running also signals the thread running it (recorded in
//! [`StoreEpoch`] by `catch_traps`), and the signal handler sends a thread
//! it finds in a wasm function body to the same resume path as a faulted
//! check. A signal that finds the thread elsewhere (a host function, a
//! builtin, a trampoline) is ignored; compiled code checks the page after
//! every operation that may run such code and at the entry of every
//! function that can be entered from outside wasm, so the thread cannot
//! return to wasm past its deadline without meeting a check.
//!
//! Ticking stays cheap: the registry keeps the earliest deadline not yet
//! reached (or the next tick, while a store runs past its deadline and must
//! be signalled again), and a tick before it is a single atomic add and
//! load. Pages come
//! from chunks the registry maps and keeps for its life, so creating a
//! store costs no system call.

use super::mmap::{Mmap, page_size};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Pages mapped at a time for stores' interrupt pages.
const PAGES_PER_CHUNK: usize = 16;

/// One store's deadline, interrupt word and interrupt page, shared with the
/// engine's registry (which writes them from the ticking thread).
#[derive(Debug, Default)]
pub struct StoreEpoch {
    deadline: AtomicU64,
    interrupt: AtomicU64,
    /// The interrupt page, when the store has one. Set once, at
    /// registration, before any wasm of the store runs.
    slot: OnceLock<PageSlot>,
    /// The thread (Linux thread id) running the store's wasm, 0 when none:
    /// the thread a tick that reaches the deadline signals. Written by the
    /// store's outermost entry into wasm and its exit.
    thread: AtomicI32,
}

impl StoreEpoch {
    /// The word generated code polls; its address never changes.
    pub fn interrupt_word(&self) -> *const AtomicU64 {
        &self.interrupt
    }

    /// The interrupt page, or null when the store has none.
    pub fn interrupt_page(&self) -> *const u8 {
        self.slot
            .get()
            .map_or(std::ptr::null(), |slot| slot.address as *const u8)
    }

    /// Where the store records the thread running its wasm, or null when it
    /// has no interrupt page (and so is not interrupted by signal).
    pub fn running_thread(&self) -> *const AtomicI32 {
        if self.slot.get().is_some() {
            &self.thread
        } else {
            std::ptr::null()
        }
    }

    /// The deadline last set.
    pub fn deadline(&self) -> u64 {
        self.deadline.load(Ordering::SeqCst)
    }
}

/// A page of one of the registry's chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PageSlot {
    chunk: usize,
    offset: usize,
    /// The page's address (the chunk's base plus `offset`).
    address: usize,
}

/// What the registry's lock guards.
#[derive(Debug, Default)]
struct Stores {
    by_id: HashMap<u64, Arc<StoreEpoch>>,
    chunks: Vec<Mmap>,
    free_pages: Vec<PageSlot>,
}

impl Stores {
    /// Interrupts `store` or lifts its interrupt, protecting or opening its
    /// page to match.
    fn set_interrupted(&mut self, store: &StoreEpoch, on: bool) {
        let was = store.interrupt.swap(u64::from(on), Ordering::SeqCst) != 0;
        if was == on {
            return;
        }
        if let Some(&slot) = store.slot.get() {
            let chunk = &mut self.chunks[slot.chunk];
            let result = if on {
                chunk.make_inaccessible(slot.offset, page_size())
            } else {
                chunk.make_accessible(slot.offset, page_size())
            };
            if result.is_err() {
                // The page's protection is the only thing between a guest
                // and a deadline it would otherwise ignore: without it the
                // invariant cannot hold.
                std::process::abort();
            }
        }
    }

    fn take_page(&mut self) -> std::io::Result<PageSlot> {
        if let Some(slot) = self.free_pages.pop() {
            return Ok(slot);
        }
        let chunk = Mmap::accessible(PAGES_PER_CHUNK * page_size())?;
        let (index, base) = (self.chunks.len(), chunk.as_ptr() as usize);
        self.chunks.push(chunk);
        let slot = |i: usize| PageSlot {
            chunk: index,
            offset: i * page_size(),
            address: base + i * page_size(),
        };
        self.free_pages.extend((1..PAGES_PER_CHUNK).rev().map(slot));
        Ok(slot(0))
    }
}

/// The engine's epoch counter and the stores that have deadlines on it.
#[derive(Debug)]
pub struct EpochRegistry {
    epoch: AtomicU64,
    /// No registered store's deadline that is still ahead is earlier than
    /// this.
    earliest: AtomicU64,
    /// Whether registered stores get an interrupt page.
    pages: bool,
    stores: Mutex<Stores>,
}

impl EpochRegistry {
    /// A registry at epoch 0 with no stores; with `pages`, each store it
    /// registers gets an interrupt page.
    pub fn new(pages: bool) -> EpochRegistry {
        EpochRegistry {
            epoch: AtomicU64::new(0),
            earliest: AtomicU64::new(u64::MAX),
            pages,
            stores: Mutex::new(Stores::default()),
        }
    }

    /// The current epoch.
    pub fn current(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Stores> {
        // The stores stay consistent whatever panicked while holding them.
        self.stores.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Advances the epoch by one, interrupting every store whose deadline
    /// it reaches. Callable from any thread.
    pub fn increment(&self) {
        let now = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        if now < self.earliest.load(Ordering::SeqCst) {
            return;
        }
        let mut stores = self.lock();
        let mut earliest = u64::MAX;
        let reached: Vec<_> = stores
            .by_id
            .values()
            .filter_map(|store| {
                let deadline = store.deadline.load(Ordering::SeqCst);
                if deadline <= now {
                    if store.thread.load(Ordering::SeqCst) != 0 {
                        // Still running past its deadline: the next tick
                        // must look at it again, to signal it again.
                        earliest = earliest.min(now + 1);
                    }
                    Some(store.clone())
                } else {
                    earliest = earliest.min(deadline);
                    None
                }
            })
            .collect();
        for store in reached {
            stores.set_interrupted(&store, true);
            // Every tick past the deadline signals again, in case an earlier
            // signal found the thread outside wasm code.
            let thread = store.thread.load(Ordering::SeqCst);
            if thread != 0 {
                super::sys::unix::signals::send_interrupt(thread);
            }
        }
        self.earliest.store(earliest, Ordering::SeqCst);
    }

    /// Registers a store (its `id` is unique in the process) with a
    /// deadline of `ticks` beyond the current epoch, giving it an interrupt
    /// page if the registry hands them out. Aborts if no page can be
    /// mapped, as an allocation failure does.
    pub fn register(&self, id: u64, store: Arc<StoreEpoch>, ticks: u64) {
        {
            let mut stores = self.lock();
            if self.pages && store.slot.get().is_none() {
                let Ok(slot) = stores.take_page() else {
                    eprintln!("keel: out of memory mapping an epoch interrupt page");
                    std::process::abort();
                };
                let _ = store.slot.set(slot);
            }
            stores.by_id.insert(id, store.clone());
        }
        self.set_deadline(&store, ticks);
    }

    /// Removes a store that is being dropped; its page goes back to the
    /// free list, accessible again.
    pub fn unregister(&self, id: u64) {
        let mut stores = self.lock();
        if let Some(store) = stores.by_id.remove(&id) {
            stores.set_interrupted(&store, false);
            if let Some(&slot) = store.slot.get() {
                // The store is being dropped: no wasm of it runs again, so
                // the page can serve another store.
                stores.free_pages.push(slot);
            }
        }
    }

    /// Sets a store's deadline to `ticks` beyond the current epoch and
    /// makes its interrupt word and page agree.
    pub fn set_deadline(&self, store: &StoreEpoch, ticks: u64) {
        let mut stores = self.lock();
        let deadline = self.current().saturating_add(ticks);
        store.deadline.store(deadline, Ordering::SeqCst);
        self.earliest.fetch_min(deadline, Ordering::SeqCst);
        // A tick that read `earliest` before the line above has already
        // moved the epoch, which this load sees (all `SeqCst`).
        let reached = self.current() >= deadline;
        stores.set_interrupted(store, reached);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tick_interrupts_exactly_the_stores_it_reaches() {
        let registry = EpochRegistry::new(false);
        let (a, b) = (
            Arc::new(StoreEpoch::default()),
            Arc::new(StoreEpoch::default()),
        );
        registry.register(1, a.clone(), 1);
        registry.register(2, b.clone(), 3);
        let word = |s: &StoreEpoch| s.interrupt.load(Ordering::SeqCst);
        assert_eq!((word(&a), word(&b)), (0, 0));
        registry.increment();
        assert_eq!((word(&a), word(&b)), (1, 0));
        registry.increment();
        assert_eq!(word(&b), 0);
        registry.increment();
        assert_eq!(word(&b), 1);
        registry.set_deadline(&a, 2);
        assert_eq!(word(&a), 0);
        registry.set_deadline(&a, 0);
        assert_eq!(word(&a), 1, "a deadline of 0 ticks is already reached");
        registry.unregister(1);
        registry.unregister(2);
    }

    #[test]
    fn ticks_from_other_threads_reach_every_store() {
        let registry = Arc::new(EpochRegistry::new(false));
        let stores: Vec<_> = (0..8).map(|_| Arc::new(StoreEpoch::default())).collect();
        for (i, s) in stores.iter().enumerate() {
            registry.register(i as u64, s.clone(), 1);
        }
        let r = registry.clone();
        std::thread::spawn(move || r.increment()).join().unwrap();
        assert!(
            stores
                .iter()
                .all(|s| s.interrupt.load(Ordering::SeqCst) == 1)
        );
    }
}
