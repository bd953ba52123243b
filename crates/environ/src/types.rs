//! WebAssembly types as Keel sees them, independent of `wasmparser`'s
//! representation so that the rest of the tree does not follow its churn.

use crate::{ModuleError, ModuleResult, SharedTypeIndex, TypeIndex};
use std::fmt;

/// The type of a WebAssembly value.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum WasmValType {
    /// 32-bit integer.
    I32,
    /// 64-bit integer.
    I64,
    /// 32-bit IEEE float.
    F32,
    /// 64-bit IEEE float.
    F64,
    /// 128-bit vector.
    V128,
    /// A reference.
    Ref(WasmRefType),
}

/// The type of a reference.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct WasmRefType {
    /// Whether `null` is a value of this type.
    pub nullable: bool,
    /// What the reference points to.
    pub heap: WasmHeapType,
}

/// What a reference points to.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum WasmHeapType {
    /// A function.
    Func,
    /// An opaque host value.
    Extern,
    /// A function of one type (function-references proposal): a subtype
    /// of `Func`.
    ConcreteFunc(FuncTypeRef),
    /// A caught exception (exception-handling proposal): its values are
    /// exception objects the store owns.
    Exn,
}

/// The type of a typed function reference, in one of two index spaces.
///
/// A module's own types name each other by module type index; once a
/// module is loaded into an engine, the types it shows the host (and those
/// the engine interns) name them by engine-wide id, which is what makes
/// `(ref $t)` of two modules comparable. Without the GC proposal a type
/// only names types defined before it, so a module's types are interned in
/// order (see [`WasmFuncType::to_engine`]).
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum FuncTypeRef {
    /// A type of the module that declared it.
    Module(TypeIndex),
    /// A type interned by an engine.
    Engine(SharedTypeIndex),
}

impl FuncTypeRef {
    /// An engine id no engine hands out: the type of no function. Where a
    /// module-relative type cannot be mapped (which validation rules out),
    /// it becomes this, so that the checks it feeds fail closed.
    pub const NONE: FuncTypeRef = FuncTypeRef::Engine(SharedTypeIndex::NONE);
}

impl WasmHeapType {
    /// Whether it is `func` or below: its values are `VMFuncRef`s.
    pub fn is_func(self) -> bool {
        matches!(self, WasmHeapType::Func | WasmHeapType::ConcreteFunc(_))
    }

    /// The abstract type at the top of its hierarchy: `func`, `extern`
    /// or `exn`.
    pub fn top(self) -> WasmHeapType {
        match self {
            h if h.is_func() => WasmHeapType::Func,
            WasmHeapType::Exn => WasmHeapType::Exn,
            _ => WasmHeapType::Extern,
        }
    }
}

impl WasmRefType {
    /// `funcref`: a nullable function reference.
    pub const FUNCREF: WasmRefType = WasmRefType {
        nullable: true,
        heap: WasmHeapType::Func,
    };
    /// `externref`: a nullable host reference.
    pub const EXTERNREF: WasmRefType = WasmRefType {
        nullable: true,
        heap: WasmHeapType::Extern,
    };
    /// `exnref`: a nullable reference to a caught exception.
    pub const EXNREF: WasmRefType = WasmRefType {
        nullable: true,
        heap: WasmHeapType::Exn,
    };

    /// Whether every value of `self` is a value of `other`, for types in
    /// the engine's index space: null only where `other` is nullable, and
    /// `(ref $t)` below `(ref func)`. Function types have no declared
    /// supertypes without the GC proposal, so a concrete type matches only
    /// itself.
    pub fn matches(&self, other: &WasmRefType) -> bool {
        let heap = match (self.heap, other.heap) {
            (a, b) if a == b => true,
            (WasmHeapType::ConcreteFunc(_), WasmHeapType::Func) => true,
            _ => false,
        };
        heap && (other.nullable || !self.nullable)
    }

    /// The same type with module type indices mapped by `engine_id`
    /// (`None` for an index it does not know, which a validated module
    /// never has).
    pub fn to_engine(
        self,
        engine_id: &impl Fn(TypeIndex) -> Option<SharedTypeIndex>,
    ) -> Option<WasmRefType> {
        let heap = match self.heap {
            WasmHeapType::ConcreteFunc(FuncTypeRef::Module(i)) => {
                WasmHeapType::ConcreteFunc(FuncTypeRef::Engine(engine_id(i)?))
            }
            other => other,
        };
        Some(WasmRefType { heap, ..self })
    }
}

impl WasmValType {
    /// Whether every value of `self` is a value of `other` (see
    /// [`WasmRefType::matches`]).
    pub fn matches(&self, other: &WasmValType) -> bool {
        match (self, other) {
            (WasmValType::Ref(a), WasmValType::Ref(b)) => a.matches(b),
            (a, b) => a == b,
        }
    }

    /// [`WasmRefType::to_engine`] of a reference type; other types as they
    /// are.
    pub fn to_engine(
        self,
        engine_id: &impl Fn(TypeIndex) -> Option<SharedTypeIndex>,
    ) -> Option<WasmValType> {
        match self {
            WasmValType::Ref(r) => r.to_engine(engine_id).map(WasmValType::Ref),
            other => Some(other),
        }
    }
}

impl fmt::Display for WasmValType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WasmValType::I32 => f.write_str("i32"),
            WasmValType::I64 => f.write_str("i64"),
            WasmValType::F32 => f.write_str("f32"),
            WasmValType::F64 => f.write_str("f64"),
            WasmValType::V128 => f.write_str("v128"),
            WasmValType::Ref(r) => r.fmt(f),
        }
    }
}

impl fmt::Display for WasmRefType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let null = if self.nullable { "null " } else { "" };
        match (self.nullable, self.heap) {
            (true, WasmHeapType::Func) => f.write_str("funcref"),
            (true, WasmHeapType::Extern) => f.write_str("externref"),
            (false, WasmHeapType::Func) => f.write_str("(ref func)"),
            (false, WasmHeapType::Extern) => f.write_str("(ref extern)"),
            (true, WasmHeapType::Exn) => f.write_str("exnref"),
            (false, WasmHeapType::Exn) => f.write_str("(ref exn)"),
            (_, WasmHeapType::ConcreteFunc(FuncTypeRef::Module(i))) => {
                write!(f, "(ref {null}{})", i.as_u32())
            }
            (_, WasmHeapType::ConcreteFunc(FuncTypeRef::Engine(i))) => {
                write!(f, "(ref {null}<engine type {}>)", i.as_u32())
            }
        }
    }
}

/// A function signature.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct WasmFuncType {
    params: Box<[WasmValType]>,
    results: Box<[WasmValType]>,
}

impl WasmFuncType {
    /// Creates a signature.
    pub fn new(
        params: impl IntoIterator<Item = WasmValType>,
        results: impl IntoIterator<Item = WasmValType>,
    ) -> Self {
        WasmFuncType {
            params: params.into_iter().collect(),
            results: results.into_iter().collect(),
        }
    }

    /// The parameter types.
    pub fn params(&self) -> &[WasmValType] {
        &self.params
    }

    /// The result types.
    pub fn results(&self) -> &[WasmValType] {
        &self.results
    }

    /// The same signature with module type indices mapped by `engine_id`
    /// (see [`WasmRefType::to_engine`]).
    pub fn to_engine(
        &self,
        engine_id: &impl Fn(TypeIndex) -> Option<SharedTypeIndex>,
    ) -> Option<WasmFuncType> {
        let map = |ts: &[WasmValType]| -> Option<Box<[WasmValType]>> {
            ts.iter().map(|t| t.to_engine(engine_id)).collect()
        };
        Some(WasmFuncType {
            params: map(&self.params)?,
            results: map(&self.results)?,
        })
    }
}

impl fmt::Display for WasmFuncType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(func")?;
        if !self.params.is_empty() {
            f.write_str(" (param")?;
            for p in self.params.iter() {
                write!(f, " {p}")?;
            }
            f.write_str(")")?;
        }
        if !self.results.is_empty() {
            f.write_str(" (result")?;
            for r in self.results.iter() {
                write!(f, " {r}")?;
            }
            f.write_str(")")?;
        }
        f.write_str(")")
    }
}

/// A table's type.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct Table {
    /// The element type.
    pub ty: WasmRefType,
    /// Initial number of elements.
    pub minimum: u64,
    /// Largest number of elements, if bounded.
    pub maximum: Option<u64>,
    /// Whether indices are 64-bit (memory64 proposal): indices, sizes and
    /// `table.grow`'s operand and result are `i64`.
    pub table64: bool,
}

/// A linear memory's type.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct Memory {
    /// Initial size in pages.
    pub minimum: u64,
    /// Largest size in pages, if bounded.
    pub maximum: Option<u64>,
    /// Whether addresses are 64-bit (memory64 proposal): indices, sizes and
    /// `memory.grow`'s operand and result are `i64`.
    pub memory64: bool,
    /// Whether the memory is shared between threads.
    pub shared: bool,
    /// The base-2 logarithm of its page size: 16 (64 KiB pages) unless the
    /// custom-page-sizes proposal declared 0 (one-byte pages).
    pub page_size_log2: u8,
}

impl Memory {
    /// Bytes per page.
    pub fn page_size(&self) -> u64 {
        1 << self.page_size_log2
    }

    /// The most pages a memory of this index and page size can have: 4 GiB
    /// worth for a 32-bit memory, the whole 64-bit index space for a 64-bit
    /// one.
    pub fn index_max_pages(&self) -> u64 {
        let index_bits = if self.memory64 { 64 } else { 32 };
        match index_bits - u32::from(self.page_size_log2) {
            64 => u64::MAX,
            bits => 1 << bits,
        }
    }

    /// The byte size of `pages` of its pages, saturating at `usize::MAX`:
    /// a 64-bit memory may declare 2^64 bytes, which is what a store's
    /// limiter is then told.
    pub fn bytes(&self, pages: u64) -> usize {
        let bytes = pages.saturating_mul(self.page_size());
        usize::try_from(bytes).unwrap_or(usize::MAX)
    }

    /// Whether its pages are 64 KiB, a multiple of the host's page: its
    /// length then always ends on a host page, past which everything to
    /// the end of the guard is inaccessible, so a fault can be the bounds
    /// check. With one-byte pages the length can end inside a host page
    /// whose tail is accessible, and every access is checked in code.
    pub fn has_wasm_pages(&self) -> bool {
        self.page_size_log2 == 16
    }
}

/// A global's type.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct Global {
    /// The type of the value it holds.
    pub ty: WasmValType,
    /// Whether `global.set` may change it.
    pub mutable: bool,
}

/// Converts a `wasmparser` value type into Keel's.
pub fn convert_val_type(ty: wasmparser::ValType, offset: u64) -> ModuleResult<WasmValType> {
    Ok(match ty {
        wasmparser::ValType::I32 => WasmValType::I32,
        wasmparser::ValType::I64 => WasmValType::I64,
        wasmparser::ValType::F32 => WasmValType::F32,
        wasmparser::ValType::F64 => WasmValType::F64,
        wasmparser::ValType::V128 => WasmValType::V128,
        wasmparser::ValType::Ref(r) => WasmValType::Ref(convert_ref_type(r, offset)?),
    })
}

/// Converts a `wasmparser` reference type; the abstract `func` and
/// `extern` heap types and concrete (function) types are supported.
pub(crate) fn convert_ref_type(ty: wasmparser::RefType, offset: u64) -> ModuleResult<WasmRefType> {
    Ok(WasmRefType {
        nullable: ty.is_nullable(),
        heap: convert_heap_type(ty.heap_type(), offset)?,
    })
}

/// Converts a `wasmparser` heap type (see [`convert_ref_type`]).
pub(crate) fn convert_heap_type(
    ty: wasmparser::HeapType,
    offset: u64,
) -> ModuleResult<WasmHeapType> {
    use wasmparser::{AbstractHeapType, HeapType, UnpackedIndex};
    Ok(match ty {
        HeapType::Abstract {
            shared: false,
            ty: AbstractHeapType::Func,
        } => WasmHeapType::Func,
        HeapType::Abstract {
            shared: false,
            ty: AbstractHeapType::Extern,
        } => WasmHeapType::Extern,
        HeapType::Abstract {
            shared: false,
            ty: AbstractHeapType::Exn,
        } => WasmHeapType::Exn,
        // Without the GC proposal every defined type is a function type.
        HeapType::Concrete(UnpackedIndex::Module(i)) => {
            WasmHeapType::ConcreteFunc(FuncTypeRef::Module(TypeIndex::from_u32(i)))
        }
        other => {
            return Err(ModuleError::unsupported(
                format!("reference type {other:?}"),
                offset,
            ));
        }
    })
}

/// Converts a `wasmparser` function type.
pub(crate) fn convert_func_type(
    ty: &wasmparser::FuncType,
    offset: u64,
) -> ModuleResult<WasmFuncType> {
    let params = ty
        .params()
        .iter()
        .map(|t| convert_val_type(*t, offset))
        .collect::<ModuleResult<Vec<_>>>()?;
    let results = ty
        .results()
        .iter()
        .map(|t| convert_val_type(*t, offset))
        .collect::<ModuleResult<Vec<_>>>()?;
    Ok(WasmFuncType::new(params, results))
}
