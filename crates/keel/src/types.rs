//! The types of values and entities, as the embedding API shows them.

use crate::Engine;
use keel_environ::{
    FuncTypeRef, SharedTypeIndex, WasmFuncType, WasmHeapType, WasmRefType, WasmValType,
};
use std::fmt;
use std::sync::Arc;

/// The type of a reference.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct RefType {
    nullable: bool,
    heap: HeapType,
}

/// What a reference points to.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HeapType {
    /// A function.
    Func,
    /// A host value.
    Extern,
    /// A function of one signature (`(ref $t)` of the function-references
    /// proposal), a subtype of `Func`. Wasmtime names the signature with a
    /// `FuncType`; Keel's types are `Copy`, so this names it with the id
    /// the engine gave it ([`FuncType::id`]).
    ConcreteFunc(FuncTypeId),
    /// A caught exception (`exnref`).
    Exn,
}

/// An engine's id for a function signature: equal for equal signatures of
/// one engine. Meaningless in another engine.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct FuncTypeId(pub(crate) SharedTypeIndex);

impl HeapType {
    /// Whether its values are functions: `Func` or a concrete function
    /// type.
    pub fn is_func(&self) -> bool {
        matches!(self, HeapType::Func | HeapType::ConcreteFunc(_))
    }
}

impl RefType {
    /// `funcref`.
    pub const FUNCREF: RefType = RefType {
        nullable: true,
        heap: HeapType::Func,
    };
    /// `externref`.
    pub const EXTERNREF: RefType = RefType {
        nullable: true,
        heap: HeapType::Extern,
    };
    /// `exnref`.
    pub const EXNREF: RefType = RefType {
        nullable: true,
        heap: HeapType::Exn,
    };

    /// A reference type.
    pub fn new(nullable: bool, heap: HeapType) -> RefType {
        RefType { nullable, heap }
    }
    /// Whether null is a value of this type.
    pub fn is_nullable(&self) -> bool {
        self.nullable
    }
    /// What it points to.
    pub fn heap_type(&self) -> &HeapType {
        &self.heap
    }

    /// Whether every value of `self` is a value of `other`.
    pub fn matches(&self, other: &RefType) -> bool {
        self.to_wasm().matches(&other.to_wasm())
    }

    /// The API's view of a type in the engine's index space (a module's
    /// types are mapped to it before they reach the API).
    pub(crate) fn from_wasm(t: WasmRefType) -> RefType {
        RefType {
            nullable: t.nullable,
            heap: match t.heap {
                WasmHeapType::Func => HeapType::Func,
                WasmHeapType::Extern => HeapType::Extern,
                WasmHeapType::Exn => HeapType::Exn,
                WasmHeapType::ConcreteFunc(FuncTypeRef::Engine(id)) => {
                    HeapType::ConcreteFunc(FuncTypeId(id))
                }
                // Never reached (a module's types are mapped to engine
                // ids before they leave it); should one slip through, it
                // names no signature, so that checks fail closed.
                WasmHeapType::ConcreteFunc(FuncTypeRef::Module(_)) => {
                    debug_assert!(false, "a module-relative type reached the API");
                    HeapType::ConcreteFunc(FuncTypeId(SharedTypeIndex::NONE))
                }
            },
        }
    }

    pub(crate) fn to_wasm(self) -> WasmRefType {
        WasmRefType {
            nullable: self.nullable,
            heap: match self.heap {
                HeapType::Func => WasmHeapType::Func,
                HeapType::Extern => WasmHeapType::Extern,
                HeapType::Exn => WasmHeapType::Exn,
                HeapType::ConcreteFunc(FuncTypeId(id)) => {
                    WasmHeapType::ConcreteFunc(FuncTypeRef::Engine(id))
                }
            },
        }
    }
}

/// The type of a wasm value.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ValType {
    /// `i32`.
    I32,
    /// `i64`.
    I64,
    /// `f32`.
    F32,
    /// `f64`.
    F64,
    /// `v128`.
    V128,
    /// A reference.
    Ref(RefType),
}

impl ValType {
    /// `funcref`.
    pub const FUNCREF: ValType = ValType::Ref(RefType::FUNCREF);
    /// `externref`.
    pub const EXTERNREF: ValType = ValType::Ref(RefType::EXTERNREF);
    /// `exnref`.
    pub const EXNREF: ValType = ValType::Ref(RefType::EXNREF);

    /// Whether this is a number type.
    pub fn is_num(&self) -> bool {
        matches!(
            self,
            ValType::I32 | ValType::I64 | ValType::F32 | ValType::F64
        )
    }

    /// Whether this is a reference type.
    pub fn is_ref(&self) -> bool {
        matches!(self, ValType::Ref(_))
    }

    /// Whether values of `self` are values of `other`.
    pub fn matches(&self, other: &ValType) -> bool {
        self.to_wasm().matches(&other.to_wasm())
    }

    pub(crate) fn from_wasm(t: WasmValType) -> ValType {
        match t {
            WasmValType::I32 => ValType::I32,
            WasmValType::I64 => ValType::I64,
            WasmValType::F32 => ValType::F32,
            WasmValType::F64 => ValType::F64,
            WasmValType::V128 => ValType::V128,
            WasmValType::Ref(r) => ValType::Ref(RefType::from_wasm(r)),
        }
    }

    pub(crate) fn to_wasm(self) -> WasmValType {
        match self {
            ValType::I32 => WasmValType::I32,
            ValType::I64 => WasmValType::I64,
            ValType::F32 => WasmValType::F32,
            ValType::F64 => WasmValType::F64,
            ValType::V128 => WasmValType::V128,
            ValType::Ref(r) => WasmValType::Ref(r.to_wasm()),
        }
    }
}

impl fmt::Display for ValType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_wasm().fmt(f)
    }
}

/// A function's signature.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FuncType(pub(crate) Arc<WasmFuncType>);

impl FuncType {
    /// A signature. The engine argument matches Wasmtime's API; types are
    /// plain values in Keel and work with any engine, except that a
    /// [`HeapType::ConcreteFunc`] in one names a signature of one engine.
    pub fn new(
        _engine: &Engine,
        params: impl IntoIterator<Item = ValType>,
        results: impl IntoIterator<Item = ValType>,
    ) -> FuncType {
        FuncType(Arc::new(WasmFuncType::new(
            params.into_iter().map(ValType::to_wasm),
            results.into_iter().map(ValType::to_wasm),
        )))
    }

    /// The parameter types.
    pub fn params(&self) -> impl ExactSizeIterator<Item = ValType> + '_ {
        self.0.params().iter().map(|t| ValType::from_wasm(*t))
    }

    /// The result types.
    pub fn results(&self) -> impl ExactSizeIterator<Item = ValType> + '_ {
        self.0.results().iter().map(|t| ValType::from_wasm(*t))
    }

    /// The parameter type at `i`.
    pub fn param(&self, i: usize) -> Option<ValType> {
        self.0.params().get(i).map(|t| ValType::from_wasm(*t))
    }

    /// The result type at `i`.
    pub fn result(&self, i: usize) -> Option<ValType> {
        self.0.results().get(i).map(|t| ValType::from_wasm(*t))
    }

    pub(crate) fn wasm(&self) -> &WasmFuncType {
        &self.0
    }

    /// The id `engine` gives this signature, for naming it in a
    /// [`HeapType::ConcreteFunc`].
    pub fn id(&self, engine: &Engine) -> FuncTypeId {
        FuncTypeId(engine.register_type(&self.0))
    }
}

impl fmt::Display for FuncType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Whether a global can change.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Mutability {
    /// Immutable.
    Const,
    /// Mutable.
    Var,
}

/// A global's type.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct GlobalType {
    content: ValType,
    mutability: Mutability,
}

impl GlobalType {
    /// A global type.
    pub fn new(content: ValType, mutability: Mutability) -> GlobalType {
        GlobalType {
            content,
            mutability,
        }
    }
    /// The value type.
    pub fn content(&self) -> &ValType {
        &self.content
    }
    /// Whether it can change.
    pub fn mutability(&self) -> Mutability {
        self.mutability
    }
    pub(crate) fn from_wasm(g: keel_environ::Global) -> GlobalType {
        GlobalType {
            content: ValType::from_wasm(g.ty),
            mutability: if g.mutable {
                Mutability::Var
            } else {
                Mutability::Const
            },
        }
    }
}

/// A table's type.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct TableType {
    element: RefType,
    minimum: u64,
    maximum: Option<u64>,
    table64: bool,
}

impl TableType {
    /// A table type with 32-bit indices.
    pub fn new(element: RefType, minimum: u32, maximum: Option<u32>) -> TableType {
        TableType {
            element,
            minimum: u64::from(minimum),
            maximum: maximum.map(u64::from),
            table64: false,
        }
    }
    /// A table type with 64-bit indices (memory64). A module can import
    /// such a table only with
    /// [`Config::wasm_memory64`](crate::Config::wasm_memory64) on.
    pub fn new64(element: RefType, minimum: u64, maximum: Option<u64>) -> TableType {
        TableType {
            element,
            minimum,
            maximum,
            table64: true,
        }
    }
    /// Whether its indices are 64-bit.
    pub fn is_64(&self) -> bool {
        self.table64
    }
    /// Element type.
    pub fn element(&self) -> &RefType {
        &self.element
    }
    /// Initial number of elements.
    pub fn minimum(&self) -> u64 {
        self.minimum
    }
    /// Maximum number of elements.
    pub fn maximum(&self) -> Option<u64> {
        self.maximum
    }
    pub(crate) fn from_wasm(t: keel_environ::Table) -> TableType {
        TableType {
            element: RefType::from_wasm(t.ty),
            minimum: t.minimum,
            maximum: t.maximum,
            table64: t.table64,
        }
    }
    pub(crate) fn to_wasm(self) -> keel_environ::Table {
        keel_environ::Table {
            ty: self.element.to_wasm(),
            minimum: self.minimum,
            maximum: self.maximum,
            table64: self.table64,
        }
    }
}

/// A memory's type.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct MemoryType(keel_environ::Memory);

impl MemoryType {
    /// A 32-bit memory type, sizes in 64 KiB pages.
    pub fn new(minimum: u32, maximum: Option<u32>) -> MemoryType {
        MemoryType(keel_environ::Memory {
            minimum: u64::from(minimum),
            maximum: maximum.map(u64::from),
            memory64: false,
            shared: false,
            page_size_log2: 16,
        })
    }
    /// A 64-bit memory type (memory64: `i64` addresses), sizes in 64 KiB
    /// pages. A module can import such a memory only with
    /// [`Config::wasm_memory64`](crate::Config::wasm_memory64) on.
    pub fn new64(minimum: u64, maximum: Option<u64>) -> MemoryType {
        MemoryType(keel_environ::Memory {
            memory64: true,
            ..MemoryType::new(0, None).0
        })
        .with_limits(minimum, maximum)
    }
    /// A builder for the types `new` and `new64` do not make (custom page
    /// sizes).
    pub fn builder() -> MemoryTypeBuilder {
        MemoryTypeBuilder::default()
    }
    fn with_limits(mut self, minimum: u64, maximum: Option<u64>) -> MemoryType {
        self.0.minimum = minimum;
        self.0.maximum = maximum;
        self
    }
    /// Initial size in pages.
    pub fn minimum(&self) -> u64 {
        self.0.minimum
    }
    /// Maximum size in pages.
    pub fn maximum(&self) -> Option<u64> {
        self.0.maximum
    }
    /// Whether it is a 64-bit memory.
    pub fn is_64(&self) -> bool {
        self.0.memory64
    }
    /// Whether it is shared between threads (never, in Keel today).
    pub fn is_shared(&self) -> bool {
        self.0.shared
    }
    /// Bytes per page: 65536, or 1 with the custom-page-sizes proposal.
    pub fn page_size(&self) -> u64 {
        self.0.page_size()
    }
    /// The base-2 logarithm of [`MemoryType::page_size`].
    pub fn page_size_log2(&self) -> u8 {
        self.0.page_size_log2
    }
    pub(crate) fn from_wasm(m: keel_environ::Memory) -> MemoryType {
        MemoryType(m)
    }
    pub(crate) fn to_wasm(self) -> keel_environ::Memory {
        self.0
    }
}

/// Builds a [`MemoryType`] field by field, as Wasmtime's does; `build`
/// checks the combination.
#[derive(Clone, Debug)]
pub struct MemoryTypeBuilder(keel_environ::Memory);

impl Default for MemoryTypeBuilder {
    fn default() -> Self {
        MemoryTypeBuilder(MemoryType::new(0, None).0)
    }
}

impl MemoryTypeBuilder {
    /// A builder for a 32-bit memory of 0 pages of 64 KiB, unbounded.
    pub fn new() -> MemoryTypeBuilder {
        MemoryTypeBuilder::default()
    }
    /// Initial size in pages.
    pub fn min(&mut self, minimum: u64) -> &mut Self {
        self.0.minimum = minimum;
        self
    }
    /// Maximum size in pages.
    pub fn max(&mut self, maximum: Option<u64>) -> &mut Self {
        self.0.maximum = maximum;
        self
    }
    /// Whether addresses are 64-bit.
    pub fn memory64(&mut self, memory64: bool) -> &mut Self {
        self.0.memory64 = memory64;
        self
    }
    /// Whether it is shared between threads (refused by `build`: Keel has
    /// no threads yet).
    pub fn shared(&mut self, shared: bool) -> &mut Self {
        self.0.shared = shared;
        self
    }
    /// The base-2 logarithm of the page size: 16 (the default) or 0.
    pub fn page_size_log2(&mut self, page_size_log2: u8) -> &mut Self {
        self.0.page_size_log2 = page_size_log2;
        self
    }
    /// The type, or an error naming what is not valid: a page size other
    /// than 1 or 65536, a shared memory, a minimum above the maximum, or
    /// a size past what the index type can address.
    pub fn build(&self) -> crate::Result<MemoryType> {
        let m = self.0;
        anyhow::ensure!(
            matches!(m.page_size_log2, 0 | 16),
            "page size of 2^{} bytes: only 1 and 65536 are valid",
            m.page_size_log2
        );
        anyhow::ensure!(!m.shared, "shared memories are not supported");
        let limit = m.index_max_pages();
        for pages in std::iter::once(m.minimum).chain(m.maximum) {
            anyhow::ensure!(
                pages <= limit,
                "{pages} pages of {} bytes exceed what a {}-bit memory can address",
                m.page_size(),
                if m.memory64 { 64 } else { 32 }
            );
        }
        if let Some(maximum) = m.maximum {
            anyhow::ensure!(
                m.minimum <= maximum,
                "minimum of {} pages above the maximum of {maximum}",
                m.minimum
            );
        }
        Ok(MemoryType(m))
    }
}

/// An exception tag's type: a function type whose parameters are the
/// values its exceptions carry (and which has no results).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TagType(FuncType);

impl TagType {
    /// The type of tags whose exceptions carry `ty`'s parameters.
    pub fn new(ty: FuncType) -> TagType {
        TagType(ty)
    }

    /// The function type.
    pub fn ty(&self) -> &FuncType {
        &self.0
    }
}

/// The type of an import or export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExternType {
    /// A function.
    Func(FuncType),
    /// A global.
    Global(GlobalType),
    /// A table.
    Table(TableType),
    /// A memory.
    Memory(MemoryType),
    /// An exception tag.
    Tag(TagType),
}

/// Limits subtyping: whether `actual` (min, max) fits `expected`.
pub(crate) fn limits_match(
    actual_min: u64,
    actual_max: Option<u64>,
    expected_min: u64,
    expected_max: Option<u64>,
) -> bool {
    actual_min >= expected_min
        && match expected_max {
            None => true,
            Some(e) => actual_max.is_some_and(|a| a <= e),
        }
}
