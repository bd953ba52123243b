//! The types of values and entities, as the embedding API shows them.

use crate::Engine;
use keel_environ::{WasmFuncType, WasmHeapType, WasmRefType, WasmValType};
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

    pub(crate) fn from_wasm(t: WasmRefType) -> RefType {
        RefType {
            nullable: t.nullable,
            heap: match t.heap {
                WasmHeapType::Func => HeapType::Func,
                WasmHeapType::Extern => HeapType::Extern,
            },
        }
    }

    pub(crate) fn to_wasm(self) -> WasmRefType {
        WasmRefType {
            nullable: self.nullable,
            heap: match self.heap {
                HeapType::Func => WasmHeapType::Func,
                HeapType::Extern => WasmHeapType::Extern,
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
        match (self, other) {
            (ValType::Ref(a), ValType::Ref(b)) => a.heap == b.heap && (b.nullable || !a.nullable),
            (a, b) => a == b,
        }
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
    /// plain values in Keel and work with any engine.
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
pub struct MemoryType {
    minimum: u64,
    maximum: Option<u64>,
    memory64: bool,
}

impl MemoryType {
    /// A 32-bit memory type, sizes in 64 KiB pages.
    pub fn new(minimum: u32, maximum: Option<u32>) -> MemoryType {
        MemoryType {
            minimum: u64::from(minimum),
            maximum: maximum.map(u64::from),
            memory64: false,
        }
    }
    /// A 64-bit memory type (memory64: `i64` addresses), sizes in 64 KiB
    /// pages. A module can import such a memory only with
    /// [`Config::wasm_memory64`](crate::Config::wasm_memory64) on.
    pub fn new64(minimum: u64, maximum: Option<u64>) -> MemoryType {
        MemoryType {
            minimum,
            maximum,
            memory64: true,
        }
    }
    /// Initial size in pages.
    pub fn minimum(&self) -> u64 {
        self.minimum
    }
    /// Maximum size in pages.
    pub fn maximum(&self) -> Option<u64> {
        self.maximum
    }
    /// Whether it is a 64-bit memory.
    pub fn is_64(&self) -> bool {
        self.memory64
    }
    pub(crate) fn from_wasm(m: keel_environ::Memory) -> MemoryType {
        MemoryType {
            minimum: m.minimum,
            maximum: m.maximum,
            memory64: m.memory64,
        }
    }
    pub(crate) fn to_wasm(self) -> keel_environ::Memory {
        keel_environ::Memory {
            minimum: self.minimum,
            maximum: self.maximum,
            memory64: self.memory64,
            shared: false,
        }
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
