//! The structures generated code reads and writes, laid out as
//! `keel_environ`'s offset constants say (the tests at the bottom check
//! every field). The `VM` prefix marks a layout shared with compiled code.

use super::libcalls::StoreHooks;
use super::val_raw::ValRaw;
use keel_environ::SharedTypeIndex;
use std::any::Any;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

/// An instance's context. Opaque: its variable layout is described by
/// `keel_environ::VMOffsets` and accessed through `vm::Instance`.
#[repr(C, align(16))]
pub struct VMContext {
    _opaque: [u8; 0],
}

/// The callee context of any function: a [`VMContext`] or a
/// [`VMHostFuncContext`], told apart by their first four bytes.
#[repr(C)]
pub struct VMOpaqueContext {
    /// `VMCONTEXT_MAGIC` or `VMHOSTFUNC_MAGIC`.
    pub magic: u32,
}

/// An array-call entry: `(callee, caller, values, len)`.
pub type VMArrayCallFunction =
    unsafe extern "C" fn(*mut VMOpaqueContext, *mut VMOpaqueContext, *mut ValRaw, usize);

/// What a `funcref` points to. Its fields never change once wasm can see it.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct VMFuncRef {
    /// Entry with the wasm calling convention.
    pub wasm_call: *const u8,
    /// Entry taking a `ValRaw` array.
    pub array_call: VMArrayCallFunction,
    /// The callee's context.
    pub vmctx: *mut VMOpaqueContext,
    /// The engine-wide signature id.
    pub type_index: SharedTypeIndex,
}

/// An imported function, as the importing context stores it.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct VMFunctionImport {
    /// Entry with the wasm calling convention.
    pub wasm_call: *const u8,
    /// The callee's context.
    pub vmctx: *mut VMOpaqueContext,
    /// The function's own funcref, for `ref.func` and tables.
    pub func_ref: *const VMFuncRef,
}

/// A context's view of one memory.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct VMMemoryRef {
    /// The memory's base; never moves.
    pub base: *mut u8,
    /// The memory's definition (which is its `LinearMemory`).
    pub definition: *mut VMMemoryDefinition,
}

/// A memory's base and current length, owned by the memory.
#[repr(C)]
#[derive(Debug)]
pub struct VMMemoryDefinition {
    /// First byte.
    pub base: *mut u8,
    /// Accessible length in bytes.
    pub current_length: usize,
}

/// A table's elements and length, owned by the table.
#[repr(C)]
#[derive(Debug)]
pub struct VMTableDefinition {
    /// The elements: `*mut VMFuncRef` or an externref pointer, null for null.
    pub base: *mut *mut u8,
    /// Number of elements.
    pub current_elements: usize,
}

/// Storage of one global: 16 bytes, enough for a `v128`.
#[repr(C, align(16))]
#[derive(Clone, Copy, Default, Debug)]
pub struct VMGlobalDefinition {
    /// Little-endian bytes of the value.
    pub storage: [u8; 16],
}

/// An exception tag. Its address is the tag's identity: exceptions carry
/// it and handlers compare it, so a tag imported twice is one tag.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct VMTagDefinition {
    /// The function type whose parameters are the values its exceptions
    /// carry.
    pub type_index: SharedTypeIndex,
    _pad: u32,
}

impl VMTagDefinition {
    /// A tag of `type_index`.
    pub fn new(type_index: SharedTypeIndex) -> VMTagDefinition {
        VMTagDefinition {
            type_index,
            _pad: 0,
        }
    }
}

/// Per-store state that generated code reads.
#[repr(C)]
#[derive(Debug)]
pub struct VMStoreContext {
    /// Lowest stack address wasm may use; `usize::MAX` when no wasm of this
    /// store is running.
    pub stack_limit: usize,
    /// Frame pointer of the last wasm-to-host trampoline.
    pub last_wasm_exit_fp: usize,
    /// Minus one minus the fuel left (`FUEL_CONSUMED` in `vmoffsets.rs`):
    /// generated code adds costs and traps when an add carries.
    pub fuel_consumed: i64,
    /// The store's interrupt word (see `vm/epoch.rs`), which generated code
    /// polls; set from any thread once the epoch reaches the deadline.
    pub epoch_interrupt: *const AtomicU64,
    /// The engine's register-preserving trampoline for the epoch
    /// slow paths (null without epochs).
    pub slow_path_call: *const u8,
    /// The last slow-path builtin's answer.
    pub slow_path_status: u64,
    /// The store's answers to builtins (limits, fuel, epochs), filled in
    /// by the store that owns this context; generated code never reads it.
    /// Through this the runtime calls up into the store without knowing
    /// its type.
    pub hooks: Option<NonNull<dyn StoreHooks>>,
    /// The store's interrupt page (see `vm/epoch.rs`), or null when its
    /// engine's code checks epochs by the interrupt word.
    pub epoch_page: *const u8,
    /// Where the store records the thread running its wasm (see
    /// `vm/epoch.rs`), or null without epochs by signal.
    pub epoch_thread: *const std::sync::atomic::AtomicI32,
    /// Whether the store's code keeps the fuel count in a register
    /// (`Tunables::fuel_in_register`) between the points where it writes
    /// it back here; the trap handler then writes back the register's
    /// value. Host-only.
    pub fuel_in_register: bool,
    /// Whether wasm of this store ever ran ([`super::catch_traps`] sets
    /// it): until then nothing but the host's own calls can have written
    /// its memories and tables, which lets the pool skip resetting slots
    /// an instance never touched. Host-only.
    pub wasm_entered: bool,
}

/// The callee context of a host function.
#[repr(C)]
pub struct VMHostFuncContext {
    /// `VMHOSTFUNC_MAGIC`.
    pub magic: u32,
    /// The function's funcref; its `vmctx` points back here.
    pub func_ref: VMFuncRef,
    /// The closure, downcast by the typed array entry.
    pub host_state: Box<dyn Any + Send + Sync>,
}

/// The fixed header of a [`VMContext`], also used alone as the caller
/// context when the host calls a function directly.
#[repr(C, align(16))]
pub struct VMContextHeader {
    /// `VMCONTEXT_MAGIC`.
    pub magic: u32,
    /// The owning store, opaque to the runtime (the API layer's store
    /// type; the runtime reaches the store through
    /// [`VMStoreContext::hooks`]).
    pub store: *mut u8,
    /// The store's `VMStoreContext`.
    pub store_context: *mut VMStoreContext,
    /// The builtins array.
    pub builtins: *const *const u8,
    /// Module type index to engine type index.
    pub type_ids: *const SharedTypeIndex,
    /// The runtime instance (`*mut vm::Instance`), null for the host.
    pub instance: *mut u8,
    /// The store's interrupt page, as in its `VMStoreContext`.
    pub epoch_page: *const u8,
}

#[cfg(test)]
mod layout_tests {
    use super::*;
    use keel_environ::*;
    use std::mem::{offset_of, size_of};

    fn off(o: usize) -> u32 {
        o as u32
    }

    #[test]
    fn header() {
        assert_eq!(off(offset_of!(VMContextHeader, magic)), vmctx::MAGIC);
        assert_eq!(off(offset_of!(VMContextHeader, store)), vmctx::STORE);
        assert_eq!(
            off(offset_of!(VMContextHeader, store_context)),
            vmctx::STORE_CONTEXT
        );
        assert_eq!(off(offset_of!(VMContextHeader, builtins)), vmctx::BUILTINS);
        assert_eq!(off(offset_of!(VMContextHeader, type_ids)), vmctx::TYPE_IDS);
        assert_eq!(off(offset_of!(VMContextHeader, instance)), vmctx::INSTANCE);
        assert_eq!(
            off(offset_of!(VMContextHeader, epoch_page)),
            vmctx::EPOCH_PAGE
        );
        assert!(size_of::<VMContextHeader>() as u32 >= vmctx::HEADER_SIZE);
    }

    #[test]
    fn func_ref() {
        assert_eq!(
            off(offset_of!(VMFuncRef, wasm_call)),
            vm_func_ref::WASM_CALL
        );
        assert_eq!(
            off(offset_of!(VMFuncRef, array_call)),
            vm_func_ref::ARRAY_CALL
        );
        assert_eq!(off(offset_of!(VMFuncRef, vmctx)), vm_func_ref::VMCTX);
        assert_eq!(
            off(offset_of!(VMFuncRef, type_index)),
            vm_func_ref::TYPE_INDEX
        );
        assert_eq!(size_of::<VMFuncRef>() as u32, vm_func_ref::SIZE);
        assert_eq!(size_of::<SharedTypeIndex>(), 4);
    }

    #[test]
    fn imports_and_definitions() {
        assert_eq!(
            off(offset_of!(VMFunctionImport, wasm_call)),
            vm_function_import::WASM_CALL
        );
        assert_eq!(
            off(offset_of!(VMFunctionImport, vmctx)),
            vm_function_import::VMCTX
        );
        assert_eq!(
            off(offset_of!(VMFunctionImport, func_ref)),
            vm_function_import::FUNC_REF
        );
        assert_eq!(
            size_of::<VMFunctionImport>() as u32,
            vm_function_import::SIZE
        );
        assert_eq!(off(offset_of!(VMMemoryRef, base)), vm_memory_ref::BASE);
        assert_eq!(
            off(offset_of!(VMMemoryRef, definition)),
            vm_memory_ref::DEFINITION
        );
        assert_eq!(size_of::<VMMemoryRef>() as u32, vm_memory_ref::SIZE);
        assert_eq!(
            off(offset_of!(VMMemoryDefinition, base)),
            vm_memory_definition::BASE
        );
        assert_eq!(
            off(offset_of!(VMMemoryDefinition, current_length)),
            vm_memory_definition::CURRENT_LENGTH
        );
        assert_eq!(
            off(offset_of!(VMTableDefinition, base)),
            vm_table_definition::BASE
        );
        assert_eq!(
            off(offset_of!(VMTableDefinition, current_elements)),
            vm_table_definition::CURRENT_ELEMENTS
        );
        assert_eq!(
            size_of::<VMGlobalDefinition>() as u32,
            vm_global_definition::SIZE
        );
    }

    #[test]
    fn store_and_host_contexts() {
        assert_eq!(
            off(offset_of!(VMStoreContext, stack_limit)),
            vm_store_context::STACK_LIMIT
        );
        assert_eq!(
            off(offset_of!(VMStoreContext, last_wasm_exit_fp)),
            vm_store_context::LAST_WASM_EXIT_FP
        );
        assert_eq!(
            off(offset_of!(VMStoreContext, fuel_consumed)),
            vm_store_context::FUEL_CONSUMED
        );
        assert_eq!(
            off(offset_of!(VMStoreContext, epoch_interrupt)),
            vm_store_context::EPOCH_INTERRUPT
        );
        assert_eq!(
            off(offset_of!(VMStoreContext, slow_path_call)),
            vm_store_context::SLOW_PATH_CALL
        );
        assert_eq!(
            off(offset_of!(VMStoreContext, slow_path_status)),
            vm_store_context::SLOW_PATH_STATUS
        );
        assert_eq!(
            off(offset_of!(VMStoreContext, hooks)),
            vm_store_context::HOOKS
        );
        assert_eq!(
            off(offset_of!(VMStoreContext, epoch_page)),
            vm_store_context::EPOCH_PAGE
        );
        assert_eq!(
            off(offset_of!(VMStoreContext, epoch_thread)),
            vm_store_context::EPOCH_THREAD
        );
        assert_eq!(
            off(offset_of!(VMStoreContext, fuel_in_register)),
            vm_store_context::FUEL_IN_REGISTER
        );
        assert_eq!(size_of::<VMStoreContext>() as u32, vm_store_context::SIZE);
        assert_eq!(
            off(offset_of!(VMHostFuncContext, magic)),
            vm_host_func_context::MAGIC
        );
        assert_eq!(
            off(offset_of!(VMHostFuncContext, func_ref)),
            vm_host_func_context::FUNC_REF
        );
    }

    #[test]
    fn tag_definition_layout_matches() {
        assert_eq!(
            off(offset_of!(VMTagDefinition, type_index)),
            vm_tag_definition::TYPE_INDEX
        );
        assert_eq!(off(size_of::<VMTagDefinition>()), vm_tag_definition::SIZE);
    }
}
