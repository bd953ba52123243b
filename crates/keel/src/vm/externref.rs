//! Externref boxes, and the raw reference counts the store's set keeps of
//! them.
//!
//! Wasm sees an externref as the address of its [`ExternData`], obtained
//! with `Arc::into_raw`. The functions here turn such an address back into
//! a counted handle; each is `unsafe` because only its caller knows that
//! the address came from `Arc::into_raw` and that a count is still held.

use std::any::Any;
use std::sync::Arc;

/// The box behind an externref: the host value.
pub struct ExternData {
    value: Box<dyn Any + Send + Sync>,
}

impl ExternData {
    /// A box around `value`.
    pub fn new(value: Box<dyn Any + Send + Sync>) -> ExternData {
        ExternData { value }
    }

    /// The host value.
    pub fn value(&self) -> &(dyn Any + Send + Sync) {
        &*self.value
    }
}

/// A new counted handle from a pointer the set owns a count of.
///
/// # Safety
///
/// `ptr` must come from `Arc::into_raw` of an `Arc<ExternData>` whose count
/// is still held (by the store's set), so that the box is live.
pub unsafe fn clone_from_raw(ptr: *const ExternData) -> Arc<ExternData> {
    // SAFETY: per the contract, `ptr` came from `Arc::into_raw` and a count
    // keeps the box alive while we add one of our own.
    unsafe {
        Arc::increment_strong_count(ptr);
        Arc::from_raw(ptr)
    }
}

/// Gives back the count the set owns.
///
/// # Safety
///
/// `ptr` must come from `Arc::into_raw` for a count that the caller owns
/// and gives up here: it is released exactly once.
pub unsafe fn release_raw(ptr: *const ExternData) {
    // SAFETY: per the contract, this count is ours to release, once.
    unsafe { drop(Arc::from_raw(ptr)) }
}

/// Whether anyone besides the set holds the box.
///
/// # Safety
///
/// As for [`clone_from_raw`]: `ptr` comes from `Arc::into_raw` and a count
/// is still held.
pub unsafe fn held_elsewhere(ptr: *const ExternData) -> bool {
    // SAFETY: per the contract the box is live; `ManuallyDrop` keeps this
    // temporary handle from releasing the count it borrows.
    let arc = std::mem::ManuallyDrop::new(unsafe { Arc::from_raw(ptr) });
    Arc::strong_count(&arc) > 1
}
