//! What a module declares, after parsing and validation.

use crate::{
    ConstExpr, DataIndex, DefinedFuncIndex, DefinedGlobalIndex, DefinedMemoryIndex,
    DefinedTableIndex, DefinedTagIndex, ElemIndex, EntityIndex, FuncIndex, Global, GlobalIndex,
    Memory, MemoryIndex, Table, TableIndex, TagIndex, TypeIndex, WasmFuncType, WasmRefType,
};
use cranelift_entity::{EntityRef, PrimaryMap};
use std::collections::HashMap;
use std::ops::Range;

/// An import: where it comes from and which index space entry it fills.
#[derive(Clone, Debug)]
pub struct Import {
    /// Module name.
    pub module: String,
    /// Field name.
    pub field: String,
    /// The entity the import defines.
    pub index: EntityIndex,
}

/// A function declared by the module (imported or defined).
#[derive(Clone, Copy, Debug)]
pub struct FunctionDecl {
    /// Its signature.
    pub type_index: TypeIndex,
    /// Whether a reference to it may leave its instance (it is exported,
    /// appears in an element segment or in `ref.func`). Only these need an
    /// entry trampoline for untyped host calls.
    pub escapes: bool,
}

/// How an element segment is used.
#[derive(Clone, Debug)]
pub enum ElemMode {
    /// Copied into a table at instantiation.
    Active {
        /// The table.
        table: TableIndex,
        /// Where in the table.
        offset: ConstExpr,
    },
    /// Available to `table.init` until `elem.drop`.
    Passive,
    /// Only declares functions for `ref.func`; dropped at instantiation.
    Declared,
}

/// The items of an element segment.
#[derive(Clone, Debug)]
pub enum ElemItems {
    /// Function indices (the compact encoding).
    Functions(Box<[FuncIndex]>),
    /// One constant expression per item.
    Expressions(Box<[ConstExpr]>),
}

impl ElemItems {
    /// Number of items.
    pub fn len(&self) -> usize {
        match self {
            ElemItems::Functions(f) => f.len(),
            ElemItems::Expressions(e) => e.len(),
        }
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An element segment.
#[derive(Clone, Debug)]
pub struct ElemSegment {
    /// How it is used.
    pub mode: ElemMode,
    /// The type of its items.
    pub ty: WasmRefType,
    /// Its items.
    pub items: ElemItems,
}

/// How a data segment is used.
#[derive(Clone, Debug)]
pub enum DataMode {
    /// Copied into a memory at instantiation.
    Active {
        /// The memory.
        memory: MemoryIndex,
        /// Where in the memory.
        offset: ConstExpr,
    },
    /// Available to `memory.init` until `data.drop`.
    Passive,
}

/// A data segment. Its bytes live in [`Module::data`].
#[derive(Clone, Debug)]
pub struct DataSegment {
    /// How it is used.
    pub mode: DataMode,
    /// Its bytes, as a range of [`Module::data`].
    pub range: Range<u32>,
}

/// Everything a module declares except function bodies.
#[derive(Clone, Debug, Default)]
pub struct Module {
    /// The name section, read when a name is first asked for.
    pub names: NameSection,
    /// The type section.
    pub types: PrimaryMap<TypeIndex, WasmFuncType>,
    /// Imports, in order.
    pub imports: Vec<Import>,
    /// Exports by name, in order of declaration.
    pub exports: Vec<(String, EntityIndex)>,
    /// Export lookup by name: index into [`Module::exports`].
    pub export_index: HashMap<String, usize>,
    /// All functions, imported first.
    pub functions: PrimaryMap<FuncIndex, FunctionDecl>,
    /// All tables, imported first.
    pub tables: PrimaryMap<TableIndex, Table>,
    /// Initial value of each defined table's elements (`None`: null).
    pub table_inits: PrimaryMap<DefinedTableIndex, Option<ConstExpr>>,
    /// All memories, imported first.
    pub memories: PrimaryMap<MemoryIndex, Memory>,
    /// All globals, imported first.
    pub globals: PrimaryMap<GlobalIndex, Global>,
    /// Initializers of defined globals.
    pub global_inits: PrimaryMap<DefinedGlobalIndex, ConstExpr>,
    /// Number of imported functions.
    pub num_imported_funcs: usize,
    /// Number of imported tables.
    pub num_imported_tables: usize,
    /// Number of imported memories.
    pub num_imported_memories: usize,
    /// Number of imported globals.
    pub num_imported_globals: usize,
    /// All exception tags, imported first: each names the function type
    /// (parameters, no results) of the values its exceptions carry.
    pub tags: PrimaryMap<TagIndex, TypeIndex>,
    /// Number of imported tags.
    pub num_imported_tags: usize,
    /// The start function.
    pub start: Option<FuncIndex>,
    /// Element segments.
    pub elems: PrimaryMap<ElemIndex, ElemSegment>,
    /// Data segments.
    pub datas: PrimaryMap<DataIndex, DataSegment>,
    /// The bytes of all data segments, concatenated.
    pub data: Vec<u8>,
}

/// The name section's bytes, read on first use: names serve backtraces
/// and [`Module::name`], and reading a big program's thousands of them
/// would otherwise be most of the cost of loading an artifact.
#[derive(Clone, Debug, Default)]
pub struct NameSection {
    /// The contents of every `name` custom section, in order, each read on
    /// its own (a damaged one must not spoil the others' names).
    raw: Vec<Box<[u8]>>,
    read: std::sync::OnceLock<Names>,
}

/// What the name section says.
#[derive(Clone, Debug, Default)]
struct Names {
    module: Option<String>,
    funcs: FuncNames,
}

impl Names {
    /// Reads one name section's contents. The name section is advisory: a
    /// malformed one must not reject a valid module, so an error ends the
    /// reading of that section quietly.
    fn read_section(&mut self, raw: &[u8]) {
        let reader = wasmparser::BinaryReader::new(raw, 0);
        for name in wasmparser::NameSectionReader::new(reader) {
            match name {
                Ok(wasmparser::Name::Module { name, .. }) => {
                    self.module = Some(name.to_string());
                }
                Ok(wasmparser::Name::Function(map)) => {
                    // The names' text is at most the section.
                    self.funcs.reserve_text(raw.len());
                    for naming in map.into_iter().flatten() {
                        self.funcs
                            .insert(FuncIndex::from_u32(naming.index), naming.name);
                    }
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
}

impl NameSection {
    /// Adds the contents of a `name` custom section.
    pub fn push_section(&mut self, contents: &[u8]) {
        self.raw.push(contents.into());
        self.read = std::sync::OnceLock::new();
    }

    fn names(&self) -> &Names {
        self.read.get_or_init(|| {
            let mut names = Names::default();
            for raw in &self.raw {
                names.read_section(raw);
            }
            names.funcs.finish();
            names
        })
    }
}

/// Function names, packed: one string of them all and an index sorted by
/// function (a big program has thousands; loading an artifact reads them
/// again, so they cost one allocation rather than one each).
#[derive(Clone, Debug, Default)]
pub struct FuncNames {
    text: String,
    /// (function index, start in `text`, length), sorted by function once
    /// `unsorted` is false.
    index: Vec<(u32, u32, u32)>,
    unsorted: bool,
}

impl FuncNames {
    /// Adds `name` for function `func` (the first name given for a
    /// function wins).
    pub fn insert(&mut self, func: FuncIndex, name: &str) {
        let (Ok(start), Ok(len)) = (u32::try_from(self.text.len()), u32::try_from(name.len()))
        else {
            return;
        };
        if self
            .index
            .last()
            .is_some_and(|&(f, _, _)| f >= func.as_u32())
        {
            self.unsorted = true;
        }
        self.text.push_str(name);
        self.index.push((func.as_u32(), start, len));
    }

    /// Makes room for `bytes` more bytes of names.
    pub fn reserve_text(&mut self, bytes: usize) {
        self.text.reserve(bytes);
    }

    /// Sorts the index after the last insertion, if names came out of
    /// order.
    pub fn finish(&mut self) {
        if self.unsorted {
            // Stable: of several names for a function, the first stays.
            self.index.sort_by_key(|&(f, _, _)| f);
            self.index.dedup_by_key(|&mut (f, _, _)| f);
            self.unsorted = false;
        }
    }

    /// The name of function `func`, if it has one (after
    /// [`FuncNames::finish`]).
    pub fn get(&self, func: FuncIndex) -> Option<&str> {
        let i = self
            .index
            .binary_search_by_key(&func.as_u32(), |&(f, _, _)| f)
            .ok()?;
        let (_, start, len) = self.index[i];
        self.text.get(start as usize..(start + len) as usize)
    }
}

macro_rules! index_conversions {
    ($(
        $all:ident, $defined:ident, $count:ident,
        $to_defined:ident, $from_defined:ident, $is_imported:ident;
    )*) => {$(
        /// Converts an index-space index into a defined index, or `None`
        /// if it refers to an import.
        pub fn $to_defined(&self, index: $all) -> Option<$defined> {
            index.index().checked_sub(self.$count).map($defined::new)
        }

        /// Converts a defined index back into the index space.
        pub fn $from_defined(&self, index: $defined) -> $all {
            $all::new(self.$count + index.index())
        }

        /// Whether the index refers to an import.
        pub fn $is_imported(&self, index: $all) -> bool {
            index.index() < self.$count
        }
    )*};
}

impl Module {
    index_conversions! {
        FuncIndex, DefinedFuncIndex, num_imported_funcs, defined_func_index, func_index, is_imported_func;
        TableIndex, DefinedTableIndex, num_imported_tables, defined_table_index, table_index, is_imported_table;
        MemoryIndex, DefinedMemoryIndex, num_imported_memories, defined_memory_index, memory_index, is_imported_memory;
        GlobalIndex, DefinedGlobalIndex, num_imported_globals, defined_global_index, global_index, is_imported_global;
        TagIndex, DefinedTagIndex, num_imported_tags, defined_tag_index, tag_index, is_imported_tag;
    }

    /// Number of tags the module defines.
    pub fn num_defined_tags(&self) -> usize {
        self.tags.len() - self.num_imported_tags
    }

    /// The values an exception of a tag carries.
    pub fn tag_type(&self, index: TagIndex) -> &WasmFuncType {
        &self.types[self.tags[index]]
    }

    /// Number of functions the module defines.
    pub fn num_defined_funcs(&self) -> usize {
        self.functions.len() - self.num_imported_funcs
    }

    /// Number of tables the module defines.
    pub fn num_defined_tables(&self) -> usize {
        self.tables.len() - self.num_imported_tables
    }

    /// Number of memories the module defines.
    pub fn num_defined_memories(&self) -> usize {
        self.memories.len() - self.num_imported_memories
    }

    /// Number of globals the module defines.
    pub fn num_defined_globals(&self) -> usize {
        self.globals.len() - self.num_imported_globals
    }

    /// The signature of a function.
    pub fn func_type(&self, index: FuncIndex) -> &WasmFuncType {
        &self.types[self.functions[index].type_index]
    }

    /// Looks up an export by name.
    pub fn export(&self, name: &str) -> Option<EntityIndex> {
        self.export_index.get(name).map(|&i| self.exports[i].1)
    }

    /// The bytes of a data segment.
    pub fn data_bytes(&self, index: DataIndex) -> &[u8] {
        let r = &self.datas[index].range;
        &self.data[r.start as usize..r.end as usize]
    }

    /// The name a backtrace shows for a function: the name section's, if any.
    pub fn func_name(&self, index: FuncIndex) -> Option<&str> {
        self.names.names().funcs.get(index)
    }

    /// The module's name from the name section, if any.
    pub fn name(&self) -> Option<&str> {
        self.names.names().module.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn func_names_are_found_in_any_insertion_order_and_the_first_wins() {
        let mut names = FuncNames::default();
        for (f, name) in [(4, "four"), (1, "one"), (9, "nine"), (1, "again"), (0, "")] {
            names.insert(FuncIndex::from_u32(f), name);
        }
        names.finish();
        let get = |f| names.get(FuncIndex::from_u32(f));
        assert_eq!(
            [get(0), get(1), get(2), get(4), get(9), get(10)],
            [
                Some(""),
                Some("one"),
                None,
                Some("four"),
                Some("nine"),
                None
            ]
        );
    }

    /// A subsection of a name section: id, size, contents.
    fn subsection(id: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![id, contents.len() as u8];
        out.extend_from_slice(contents);
        out
    }

    #[test]
    fn names_are_read_on_first_use_from_every_name_section() {
        let mut module = Module::default();
        // Module name "m"; then, in a second section, function 2 named
        // "two" and function 5 named "five".
        module.names.push_section(&subsection(0, b"\x01m"));
        module
            .names
            .push_section(&subsection(1, b"\x02\x02\x03two\x05\x04five"));
        assert_eq!(module.name(), Some("m"));
        let name = |f| module.func_name(FuncIndex::from_u32(f));
        assert_eq!(
            [name(2), name(5), name(3)],
            [Some("two"), Some("five"), None]
        );
    }

    #[test]
    fn a_malformed_name_section_ends_its_names_quietly() {
        let mut module = Module::default();
        let mut raw = subsection(1, b"\x01\x07\x05seven");
        // A function-names subsection whose size runs past the end.
        raw.extend_from_slice(&[1, 200, 1]);
        module.names.push_section(&raw);
        assert_eq!(module.func_name(FuncIndex::from_u32(7)), Some("seven"));
        assert_eq!(module.name(), None);
        // A later name section is read on its own.
        module.names.push_section(&subsection(0, b"\x01m"));
        assert_eq!(module.name(), Some("m"));
        assert_eq!(module.func_name(FuncIndex::from_u32(7)), Some("seven"));
    }
}
