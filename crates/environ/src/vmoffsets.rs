//! The layout of every structure that generated code and the runtime share.
//!
//! This file is the single definition. The compiler reads offsets from it
//! to emit loads and stores; the runtime declares `#[repr(C)]` structs with
//! the same fields and tests (`keel::vm::vmcontext`'s layout tests) that each
//! `offset_of!` equals the constant here. Change both or the tests fail.
//!
//! A `VMContext` (one per instance, pointer-aligned) looks like this:
//!
//! ```text
//! struct VMContext {
//!     magic: u32, _pad: u32,                        // VMCONTEXT_MAGIC
//!     store: *mut StoreOpaque,                      // runtime only
//!     store_context: *mut VMStoreContext,           // stack limit, fuel, epoch word
//!     builtins: *const VMBuiltinFunctionsArray,     // runtime entry points
//!     type_ids: *const SharedTypeIndex,             // module type -> engine type
//!     instance: *mut Instance,                      // runtime only
//!     imported_functions: [VMFunctionImport; num_imported_functions],
//!     tables: [*mut VMTableDefinition; num_tables], // imported and defined
//!     memories: [VMMemoryRef; num_memories],        // imported and defined
//!     imported_globals: [*mut VMGlobalDefinition; num_imported_globals],
//!     defined_globals: [VMGlobalDefinition; num_defined_globals], // 16-aligned
//!     imported_tags: [*const VMTagDefinition; num_imported_tags],
//!     defined_tags: [VMTagDefinition; num_defined_tags], // a tag's identity is its address
//!     func_refs_written: [u64; ceil(num_defined_functions / 64)], // runtime only
//!     func_refs: [VMFuncRef; num_defined_functions],
//! }
//! ```
//!
//! Memory bases never move (each memory reserves its whole range up front),
//! so `VMMemoryRef::base` is read-only for the life of the instance and the
//! compiler may hoist its load out of loops.
//!
//! Pointers are 8 bytes: Keel targets 64-bit hosts only.

use crate::{
    DefinedFuncIndex, DefinedGlobalIndex, DefinedTagIndex, FuncIndex, GlobalIndex, MemoryIndex,
    Module, ModuleError, ModuleResult, TableIndex, TagIndex,
};

/// Size of a host pointer in every layout here.
pub const PTR_SIZE: u32 = 8;

/// `VMContext::magic` of an instance context: "keel".
pub const VMCONTEXT_MAGIC: u32 = u32::from_le_bytes(*b"keel");
/// `VMHostFuncContext::magic` of a host function's context: "host".
pub const VMHOSTFUNC_MAGIC: u32 = u32::from_le_bytes(*b"host");

/// Offsets of the fixed header of a `VMContext`.
pub mod vmctx {
    /// `magic: u32`.
    pub const MAGIC: u32 = 0;
    /// `store: *mut StoreOpaque`; opaque to generated code.
    pub const STORE: u32 = 8;
    /// `store_context: *mut VMStoreContext`.
    pub const STORE_CONTEXT: u32 = 16;
    /// `builtins: *const VMBuiltinFunctionsArray`.
    pub const BUILTINS: u32 = 24;
    /// `type_ids: *const SharedTypeIndex`.
    pub const TYPE_IDS: u32 = 32;
    /// `instance: *mut Instance`; opaque to generated code.
    pub const INSTANCE: u32 = 40;
    /// `epoch_page: *const u8`: the store's interrupt page (a copy of
    /// `VMStoreContext::epoch_page`, one load closer to the checks that use
    /// it), or null.
    pub const EPOCH_PAGE: u32 = 48;
    /// Size of the header; the variable part starts here.
    pub const HEADER_SIZE: u32 = 56;
}

/// Offsets in a `VMFuncRef`: what a `funcref` points to.
pub mod vm_func_ref {
    /// `wasm_call: *const u8`: entry with the wasm calling convention.
    pub const WASM_CALL: u32 = 0;
    /// `array_call: *const u8`: entry taking arguments in a `ValRaw` array.
    pub const ARRAY_CALL: u32 = 8;
    /// `vmctx: *mut VMOpaqueContext`: the callee's context.
    pub const VMCTX: u32 = 16;
    /// `type_index: SharedTypeIndex` (u32).
    pub const TYPE_INDEX: u32 = 24;
    /// Size in bytes.
    pub const SIZE: u32 = 32;
}

/// Offsets in a `VMFunctionImport`.
pub mod vm_function_import {
    /// `wasm_call: *const u8`.
    pub const WASM_CALL: u32 = 0;
    /// `vmctx: *mut VMOpaqueContext`.
    pub const VMCTX: u32 = 8;
    /// `func_ref: *const VMFuncRef`: the imported function's own funcref.
    pub const FUNC_REF: u32 = 16;
    /// Size in bytes.
    pub const SIZE: u32 = 24;
}

/// Offsets in a `VMMemoryRef`, a context's view of one memory.
pub mod vm_memory_ref {
    /// `base: *mut u8`: never changes once the instance exists.
    pub const BASE: u32 = 0;
    /// `definition: *mut VMMemoryDefinition`.
    pub const DEFINITION: u32 = 8;
    /// Size in bytes.
    pub const SIZE: u32 = 16;
}

/// Offsets in a `VMMemoryDefinition`, owned by the memory itself.
pub mod vm_memory_definition {
    /// `base: *mut u8`.
    pub const BASE: u32 = 0;
    /// `current_length: usize` in bytes.
    pub const CURRENT_LENGTH: u32 = 8;
    /// Size in bytes.
    pub const SIZE: u32 = 16;
}

/// Offsets in a `VMTableDefinition`, owned by the table itself.
pub mod vm_table_definition {
    /// `base: *mut *mut u8`: the elements; moves when the table grows.
    pub const BASE: u32 = 0;
    /// `current_elements: usize`.
    pub const CURRENT_ELEMENTS: u32 = 8;
    /// Size in bytes.
    pub const SIZE: u32 = 16;
}

/// Offsets in a `VMGlobalDefinition`: 16 bytes of storage, 16-aligned.
pub mod vm_global_definition {
    /// Size in bytes.
    pub const SIZE: u32 = 16;
}

/// Offsets in a `VMTagDefinition`: an exception tag. Its address is the
/// tag's identity, which exceptions carry and handlers compare.
pub mod vm_tag_definition {
    /// `type_index: SharedTypeIndex` (u32): the values its exceptions carry.
    pub const TYPE_INDEX: u32 = 0;
    /// Size in bytes.
    pub const SIZE: u32 = 8;
}

/// Offsets in an exception object (`exnref` points to one).
pub mod vm_exception {
    /// `tag: *const VMTagDefinition`: the identity of its tag.
    pub const TAG: u32 = 0;
    /// `fields: *mut ValRaw`: the values it carries, 16 bytes each.
    pub const FIELDS: u32 = 8;
}

/// Offsets in the per-store `VMStoreContext`.
pub mod vm_store_context {
    /// `stack_limit: usize`: lowest stack address wasm may use; checked in
    /// every function prologue.
    pub const STACK_LIMIT: u32 = 0;
    /// `last_wasm_exit_fp: usize`: frame pointer of the wasm-to-host
    /// trampoline most recently entered, where a backtrace of a host error
    /// starts.
    pub const LAST_WASM_EXIT_FP: u32 = 8;
    /// `fuel_consumed: i64`: minus one minus the fuel left, so `-1` when
    /// none is left. Generated code adds each operator's cost with an
    /// unsigned carry check: the add that carries past `u64::MAX` would
    /// spend fuel the guest does not have, and traps with `OutOfFuel`.
    pub const FUEL_CONSUMED: u32 = 16;
    /// `epoch_interrupt: *const AtomicU64`: the store's interrupt word, which
    /// the engine sets to non-zero from any thread once its epoch reaches the
    /// store's deadline. Never changes for the life of the store.
    pub const EPOCH_INTERRUPT: u32 = 24;
    /// `slow_path_call: *const u8`: the engine's register-preserving
    /// trampoline through which epoch checks call builtins.
    pub const SLOW_PATH_CALL: u32 = 32;
    /// `slow_path_status: u32`: the answer of the last `new_epoch` builtin
    /// (the trampoline returns nothing).
    pub const SLOW_PATH_STATUS: u32 = 40;
    /// `hooks: Option<NonNull<dyn StoreHooks>>` (a wide pointer): how the
    /// runtime calls up into the store that owns it. Host-only: generated
    /// code never reads it.
    pub const HOOKS: u32 = 48;
    /// `epoch_page: *const u8`: the store's interrupt page, readable until
    /// the engine's epoch reaches the store's deadline, when the engine
    /// makes it inaccessible. Code compiled with
    /// `Tunables::epoch_by_signal` checks the deadline by loading a byte
    /// of it. Never changes for the life of the store.
    pub const EPOCH_PAGE: u32 = 64;
    /// `epoch_thread: *const AtomicI32`: where the store records the thread
    /// running its wasm, which the engine signals when the deadline passes
    /// (null without `Tunables::epoch_by_signal`). Host-only.
    pub const EPOCH_THREAD: u32 = 72;
    /// `fuel_in_register: bool`: whether the store's code keeps the fuel
    /// count in a register (`Tunables::fuel_in_register`), which the trap
    /// handler then writes back to `fuel_consumed`. Host-only.
    pub const FUEL_IN_REGISTER: u32 = 80;
    /// Size in bytes.
    pub const SIZE: u32 = 88;
}

/// Offsets in a `VMHostFuncContext`: the callee context of a host function.
pub mod vm_host_func_context {
    /// `magic: u32` ([`super::VMHOSTFUNC_MAGIC`]).
    pub const MAGIC: u32 = 0;
    /// `func_ref: VMFuncRef`, embedded.
    pub const FUNC_REF: u32 = 8;
}

/// The variable-sized layout of one module's `VMContext`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VMOffsets {
    num_imported_functions: u32,
    num_tables: u32,
    num_memories: u32,
    num_imported_globals: u32,
    num_defined_globals: u32,
    num_defined_functions: u32,
    num_imported_tags: u32,
    num_defined_tags: u32,
    imported_functions: u32,
    tables: u32,
    memories: u32,
    imported_globals: u32,
    defined_globals: u32,
    imported_tags: u32,
    defined_tags: u32,
    func_refs_written: u32,
    func_refs: u32,
    size: u32,
}

fn count(n: usize) -> ModuleResult<u32> {
    u32::try_from(n).map_err(|_| ModuleError::Limit("too many entities".into()))
}

impl VMOffsets {
    /// Computes the layout for a module.
    pub fn new(module: &Module) -> ModuleResult<VMOffsets> {
        let num_imported_functions = count(module.num_imported_funcs)?;
        let num_tables = count(module.tables.len())?;
        let num_memories = count(module.memories.len())?;
        let num_imported_globals = count(module.num_imported_globals)?;
        let num_defined_globals = count(module.num_defined_globals())?;
        let num_defined_functions = count(module.num_defined_funcs())?;
        let num_imported_tags = count(module.num_imported_tags)?;
        let num_defined_tags = count(module.num_defined_tags())?;

        let mut cursor = u64::from(vmctx::HEADER_SIZE);
        let mut region = |n: u32, size: u32, align: u64| {
            cursor = cursor.div_ceil(align) * align;
            let start = cursor;
            cursor += u64::from(n) * u64::from(size);
            start
        };
        let imported_functions = region(num_imported_functions, vm_function_import::SIZE, 8);
        let tables = region(num_tables, PTR_SIZE, 8);
        let memories = region(num_memories, vm_memory_ref::SIZE, 8);
        let imported_globals = region(num_imported_globals, PTR_SIZE, 8);
        let defined_globals = region(num_defined_globals, vm_global_definition::SIZE, 16);
        let imported_tags = region(num_imported_tags, PTR_SIZE, 8);
        let defined_tags = region(num_defined_tags, vm_tag_definition::SIZE, 8);
        let func_refs_written = region(num_defined_functions.div_ceil(64), 8, 8);
        let func_refs = region(num_defined_functions, vm_func_ref::SIZE, 8);
        let size = region(0, 0, 16);
        // Generated code uses offsets as signed 32-bit immediates.
        let fits = |v: u64| {
            i32::try_from(v)
                .map(|v| v as u32)
                .map_err(|_| ModuleError::Limit("instance context too large".into()))
        };
        Ok(VMOffsets {
            num_imported_functions,
            num_tables,
            num_memories,
            num_imported_globals,
            num_defined_globals,
            num_defined_functions,
            num_imported_tags,
            num_defined_tags,
            imported_functions: fits(imported_functions)?,
            tables: fits(tables)?,
            memories: fits(memories)?,
            imported_globals: fits(imported_globals)?,
            defined_globals: fits(defined_globals)?,
            imported_tags: fits(imported_tags)?,
            defined_tags: fits(defined_tags)?,
            func_refs_written: fits(func_refs_written)?,
            func_refs: fits(func_refs)?,
            size: fits(size)?,
        })
    }

    /// Total size of the context in bytes (a multiple of 16).
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Where the defined functions' funcrefs start; they are the last part
    /// of the context, written only when first needed.
    pub fn func_refs_start(&self) -> u32 {
        self.func_refs
    }

    /// Offset of an imported function's `VMFunctionImport`.
    pub fn imported_function(&self, index: FuncIndex) -> u32 {
        assert!(index.as_u32() < self.num_imported_functions);
        self.imported_functions + index.as_u32() * vm_function_import::SIZE
    }

    /// Offset of the pointer to a table's `VMTableDefinition`.
    pub fn table_definition_ptr(&self, index: TableIndex) -> u32 {
        assert!(index.as_u32() < self.num_tables);
        self.tables + index.as_u32() * PTR_SIZE
    }

    /// Offset of a memory's `VMMemoryRef`.
    pub fn memory_ref(&self, index: MemoryIndex) -> u32 {
        assert!(index.as_u32() < self.num_memories);
        self.memories + index.as_u32() * vm_memory_ref::SIZE
    }

    /// Offset of the pointer to an imported global's storage.
    pub fn imported_global_ptr(&self, index: GlobalIndex) -> u32 {
        assert!(index.as_u32() < self.num_imported_globals);
        self.imported_globals + index.as_u32() * PTR_SIZE
    }

    /// Offset of a defined global's storage.
    pub fn defined_global(&self, index: DefinedGlobalIndex) -> u32 {
        assert!(index.as_u32() < self.num_defined_globals);
        self.defined_globals + index.as_u32() * vm_global_definition::SIZE
    }

    /// Offset of the pointer to an imported tag's `VMTagDefinition`.
    pub fn imported_tag_ptr(&self, index: TagIndex) -> u32 {
        assert!(index.as_u32() < self.num_imported_tags);
        self.imported_tags + index.as_u32() * PTR_SIZE
    }

    /// Offset of a defined tag's `VMTagDefinition`.
    pub fn defined_tag(&self, index: DefinedTagIndex) -> u32 {
        assert!(index.as_u32() < self.num_defined_tags);
        self.defined_tags + index.as_u32() * vm_tag_definition::SIZE
    }

    /// Offset of the `u64` whose bit `index % 64` says whether defined
    /// function `index`'s funcref is written yet. The bits are zeroed with
    /// the rest of the context before the funcrefs, so that instantiating
    /// allocates nothing and writes nothing per function; generated code
    /// never reads them.
    pub fn func_ref_written_word(&self, index: DefinedFuncIndex) -> u32 {
        assert!(index.as_u32() < self.num_defined_functions);
        self.func_refs_written + index.as_u32() / 64 * 8
    }

    /// Offset of a defined function's `VMFuncRef`.
    pub fn func_ref(&self, index: DefinedFuncIndex) -> u32 {
        assert!(index.as_u32() < self.num_defined_functions);
        self.func_refs + index.as_u32() * vm_func_ref::SIZE
    }

    /// Number of defined functions.
    pub fn num_defined_functions(&self) -> usize {
        self.num_defined_functions as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cranelift_entity::EntityRef;

    #[test]
    fn regions_are_ordered_and_aligned() {
        let mut m = Module {
            num_imported_funcs: 1,
            ..Module::default()
        };
        m.functions.push(crate::FunctionDecl {
            type_index: crate::TypeIndex::new(0),
            escapes: true,
        });
        m.globals.push(crate::Global {
            ty: crate::WasmValType::I32,
            mutable: true,
        });
        m.global_inits.push(crate::ConstExpr::default());
        let o = VMOffsets::new(&m).unwrap();
        assert_eq!(o.imported_function(FuncIndex::new(0)), vmctx::HEADER_SIZE);
        assert_eq!(o.defined_global(DefinedGlobalIndex::new(0)) % 16, 0);
        assert_eq!(o.size() % 16, 0);
        assert!(o.size() >= o.defined_global(DefinedGlobalIndex::new(0)) + 16);
    }
}
