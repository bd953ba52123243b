//! Epoch deadlines: the engine's counter, each store's deadline, and the
//! interrupt word generated code polls.
//!
//! Generated code does not compare the epoch with a deadline itself: it
//! loads one word per check, the store's interrupt word, and calls the
//! `new_epoch` builtin when it is non-zero. Whoever moves the epoch or a
//! deadline keeps that word true: [`EpochRegistry::increment`] sets the word
//! of every registered store whose deadline it reached, and
//! [`EpochRegistry::set_deadline`] sets or clears a store's word for its new
//! deadline. Both run under the registry's lock, which orders them.
//!
//! **Invariant:** whenever the epoch is at or past a registered store's
//! deadline, that store's interrupt word is non-zero. (It may be non-zero a
//! little longer than needed; `new_epoch` then finds the deadline ahead and
//! continues.)
//!
//! Ticking stays cheap: the registry keeps the earliest deadline not yet
//! reached, and a tick before it is a single atomic add and load.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// One store's deadline and interrupt word, shared with the engine's
/// registry (which writes the word from the ticking thread).
#[derive(Debug, Default)]
pub struct StoreEpoch {
    deadline: AtomicU64,
    interrupt: AtomicU64,
}

impl StoreEpoch {
    /// The word generated code polls; its address never changes.
    pub fn interrupt_word(&self) -> *const AtomicU64 {
        &self.interrupt
    }

    /// The deadline last set.
    pub fn deadline(&self) -> u64 {
        self.deadline.load(Ordering::SeqCst)
    }
}

/// The engine's epoch counter and the stores that have deadlines on it.
#[derive(Debug, Default)]
pub struct EpochRegistry {
    epoch: AtomicU64,
    /// No registered store's deadline that is still ahead is earlier than
    /// this.
    earliest: AtomicU64,
    stores: Mutex<HashMap<u64, Arc<StoreEpoch>>>,
}

impl EpochRegistry {
    /// A registry at epoch 0 with no stores.
    pub fn new() -> EpochRegistry {
        EpochRegistry {
            epoch: AtomicU64::new(0),
            earliest: AtomicU64::new(u64::MAX),
            stores: Mutex::new(HashMap::new()),
        }
    }

    /// The current epoch.
    pub fn current(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<StoreEpoch>>> {
        // The map stays consistent whatever panicked while holding it.
        self.stores.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Advances the epoch by one, interrupting every store whose deadline
    /// it reaches. Callable from any thread.
    pub fn increment(&self) {
        let now = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        if now < self.earliest.load(Ordering::SeqCst) {
            return;
        }
        let stores = self.lock();
        let mut earliest = u64::MAX;
        for store in stores.values() {
            let deadline = store.deadline.load(Ordering::SeqCst);
            if deadline <= now {
                store.interrupt.store(1, Ordering::SeqCst);
            } else {
                earliest = earliest.min(deadline);
            }
        }
        self.earliest.store(earliest, Ordering::SeqCst);
    }

    /// Registers a store (its `id` is unique in the process) with a
    /// deadline of `ticks` beyond the current epoch.
    pub fn register(&self, id: u64, store: Arc<StoreEpoch>, ticks: u64) {
        self.lock().insert(id, store.clone());
        self.set_deadline(&store, ticks);
    }

    /// Removes a store that is being dropped.
    pub fn unregister(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Sets a store's deadline to `ticks` beyond the current epoch and
    /// makes its interrupt word agree.
    pub fn set_deadline(&self, store: &StoreEpoch, ticks: u64) {
        let _guard = self.lock();
        let deadline = self.current().saturating_add(ticks);
        store.deadline.store(deadline, Ordering::SeqCst);
        self.earliest.fetch_min(deadline, Ordering::SeqCst);
        // A tick that read `earliest` before the line above has already
        // moved the epoch, which this load sees (all `SeqCst`).
        let reached = self.current() >= deadline;
        store.interrupt.store(u64::from(reached), Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tick_interrupts_exactly_the_stores_it_reaches() {
        let registry = EpochRegistry::new();
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
        let registry = Arc::new(EpochRegistry::new());
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
