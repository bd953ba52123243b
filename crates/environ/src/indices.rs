//! Typed indices.
//!
//! A module's index spaces put imports first: function 0 may be imported
//! while defined function 0 is function `num_imported_funcs`. Keeping the two
//! as different types makes mixing them a compile error.

use cranelift_entity::entity_impl;

macro_rules! index_type {
    ($($(#[$doc:meta])* $name:ident, $display:literal;)*) => {$(
        $(#[$doc])*
        #[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(u32);
        entity_impl!($name, $display);
    )*};
}

index_type! {
    /// Index into the function index space (imports first).
    FuncIndex, "func";
    /// Index of a function defined (not imported) by the module.
    DefinedFuncIndex, "defined_func";
    /// Index into the type section.
    TypeIndex, "type";
    /// Index into the table index space (imports first).
    TableIndex, "table";
    /// Index of a table defined by the module.
    DefinedTableIndex, "defined_table";
    /// Index into the memory index space (imports first).
    MemoryIndex, "memory";
    /// Index of a memory defined by the module.
    DefinedMemoryIndex, "defined_memory";
    /// Index into the global index space (imports first).
    GlobalIndex, "global";
    /// Index of a global defined by the module.
    DefinedGlobalIndex, "defined_global";
    /// Index of an element segment.
    ElemIndex, "elem";
    /// Index of a data segment.
    DataIndex, "data";
    /// Index into the tag index space (imports first).
    TagIndex, "tag";
    /// Index of a tag defined by the module.
    DefinedTagIndex, "defined_tag";
    /// An engine-wide identifier of a function type: two functions have the
    /// same signature exactly when their ids are equal, whatever module they
    /// come from. Generated code compares these in `call_indirect`.
    SharedTypeIndex, "shared_type";
}

impl SharedTypeIndex {
    /// An id no engine hands out (ids count up from 0): the type of no
    /// function, for checks that must fail closed.
    pub const NONE: SharedTypeIndex = SharedTypeIndex(u32::MAX);
}

/// An entity of one of the five importable/exportable kinds.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum EntityIndex {
    /// A function.
    Function(FuncIndex),
    /// A table.
    Table(TableIndex),
    /// A memory.
    Memory(MemoryIndex),
    /// A global.
    Global(GlobalIndex),
    /// An exception tag.
    Tag(TagIndex),
}
