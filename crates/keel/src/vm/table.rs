//! Tables of references.
//!
//! Elements are raw pointers: a `*mut VMFuncRef` for funcref tables, an
//! externref pointer for externref tables, null for null. Growing may move
//! the elements, so generated code reloads `base` after any call.

use super::vmcontext::VMTableDefinition;
use keel_environ::WasmRefType;

/// The most elements any table may have here, whatever it declares: keeps a
/// `table.grow` by four billion from exhausting the host.
pub const MAX_TABLE_ELEMENTS: u64 = 10_000_000;

/// A table. Its definition comes first so that a pointer to the definition
/// is a pointer to the table.
#[repr(C)]
pub struct Table {
    definition: VMTableDefinition,
    elements: Vec<*mut u8>,
    maximum: Option<u64>,
    ty: WasmRefType,
}

// SAFETY: the element pointers refer to funcrefs and externrefs owned by the
// same store, which moves between threads as a whole.
unsafe impl Send for Table {}
// SAFETY: shared references only read.
unsafe impl Sync for Table {}

impl Table {
    /// A table of `minimum` elements set to `init`, or `None` if that is
    /// more than this host allows.
    pub fn new(
        ty: WasmRefType,
        minimum: u64,
        maximum: Option<u64>,
        init: *mut u8,
    ) -> Option<Box<Table>> {
        if minimum > MAX_TABLE_ELEMENTS {
            return None;
        }
        let mut elements = vec![init; minimum as usize];
        Some(Box::new(Table {
            definition: VMTableDefinition {
                base: elements.as_mut_ptr(),
                current_elements: elements.len(),
            },
            elements,
            maximum,
            ty,
        }))
    }

    /// The definition generated code reads.
    pub fn definition(&mut self) -> *mut VMTableDefinition {
        &mut self.definition
    }

    /// The element type.
    pub fn ty(&self) -> WasmRefType {
        self.ty
    }

    /// Declared maximum.
    pub fn maximum(&self) -> Option<u64> {
        self.maximum
    }

    /// Number of elements.
    pub fn size(&self) -> u64 {
        self.elements.len() as u64
    }

    /// The elements.
    pub fn elements(&self) -> &[*mut u8] {
        &self.elements
    }

    /// The elements, mutably.
    pub fn elements_mut(&mut self) -> &mut [*mut u8] {
        &mut self.elements
    }

    /// Grows by `delta` elements set to `init`; returns the old size, or
    /// `None` past the maximum.
    pub fn grow(&mut self, delta: u64, init: *mut u8) -> Option<u64> {
        let old = self.size();
        let new = old.checked_add(delta)?;
        if new
            > self
                .maximum
                .unwrap_or(u64::from(u32::MAX))
                .min(MAX_TABLE_ELEMENTS)
        {
            return None;
        }
        self.elements.resize(new as usize, init);
        self.definition.base = self.elements.as_mut_ptr();
        self.definition.current_elements = self.elements.len();
        Some(old)
    }
}
