//! Raw reference counting of externref boxes, for the store's set.

use crate::externref::ExternData;
use std::sync::Arc;

/// A new counted handle from a pointer the set owns a count of.
pub fn clone_from_raw(ptr: *const ExternData) -> Arc<ExternData> {
    // SAFETY: `ptr` came from `Arc::into_raw` and the store's set still
    // holds that count (wasm only sees boxes the set keeps alive), so the
    // box is live while we add a count.
    unsafe {
        Arc::increment_strong_count(ptr);
        Arc::from_raw(ptr)
    }
}

/// Gives back the count the set owns.
pub fn release_raw(ptr: *const ExternData) {
    // SAFETY: `ptr` came from `Arc::into_raw` for the set's own count, and
    // the caller removed it from the set, so it is released exactly once.
    unsafe { drop(Arc::from_raw(ptr)) }
}

/// Whether anyone besides the set holds the box.
pub fn held_elsewhere(ptr: *const ExternData) -> bool {
    // SAFETY: the set's count keeps the box alive; `ManuallyDrop` keeps
    // this temporary handle from releasing it.
    let arc = std::mem::ManuallyDrop::new(unsafe { Arc::from_raw(ptr) });
    Arc::strong_count(&arc) > 1
}
