//! The output of compilation: plain data that holds no host pointer.
//!
//! The compiler fills a [`CompiledModuleInfo`] and a text section; the
//! runtime maps the text executable, applies the few [`LoadRelocation`]s and
//! reads the tables below to map a faulting or returning program counter
//! back to a trap kind, a function and a wasm byte offset.

use crate::{DefinedFuncIndex, TrapKind};
use cranelift_entity::PrimaryMap;

/// A range of the text section.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub struct FunctionLoc {
    /// Offset of the first byte.
    pub start: u32,
    /// Length in bytes.
    pub length: u32,
}

impl FunctionLoc {
    /// Whether `offset` lies inside.
    pub fn contains(&self, offset: u32) -> bool {
        offset >= self.start && offset - self.start < self.length
    }
}

/// Where a defined function's code is.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CompiledFunctionInfo {
    /// The body, with the wasm calling convention.
    pub wasm_call: FunctionLoc,
    /// The entry that takes arguments and results in a `ValRaw` array, for
    /// functions that escape their instance.
    pub array_call: Option<FunctionLoc>,
}

/// A trap site: the instruction at `code_offset` traps with `kind`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TrapSite {
    /// Offset in the text section.
    pub code_offset: u32,
    /// Why it traps.
    pub kind: TrapKind,
}

/// Maps machine code back to wasm: code from `code_offset` on came from the
/// wasm instruction at `wasm_offset` (a byte offset in the module).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct AddressMapEntry {
    /// Offset in the text section.
    pub code_offset: u32,
    /// Byte offset in the module.
    pub wasm_offset: u32,
}

/// A function Cranelift may call on its own (rounding without SSE4.1, fused
/// multiply-add without FMA). The runtime supplies them.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum LibCall {
    /// `f32` floor.
    FloorF32,
    /// `f64` floor.
    FloorF64,
    /// `f32` ceil.
    CeilF32,
    /// `f64` ceil.
    CeilF64,
    /// `f32` trunc.
    TruncF32,
    /// `f64` trunc.
    TruncF64,
    /// `f32` round to nearest, ties to even.
    NearestF32,
    /// `f64` round to nearest, ties to even.
    NearestF64,
    /// `f32` fused multiply-add.
    FmaF32,
    /// `f64` fused multiply-add.
    FmaF64,
}

/// A place in the text section that must hold a host address, written when
/// the code is loaded.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct LoadRelocation {
    /// Offset in the text section of the 8-byte absolute address to write.
    pub offset: u32,
    /// The function whose address goes there.
    pub target: LibCall,
    /// Added to the address.
    pub addend: i64,
}

/// Everything the runtime needs to know about compiled code.
#[derive(Clone, Debug, Default)]
pub struct CompiledModuleInfo {
    /// Each defined function's code.
    pub functions: PrimaryMap<DefinedFuncIndex, CompiledFunctionInfo>,
    /// Trap sites, sorted by `code_offset`.
    pub traps: Vec<TrapSite>,
    /// Address map, sorted by `code_offset`.
    pub address_map: Vec<AddressMapEntry>,
    /// Relocations to apply at load time.
    pub relocations: Vec<LoadRelocation>,
}

impl CompiledModuleInfo {
    /// The trap kind of the instruction at `code_offset`, if it may trap.
    pub fn lookup_trap(&self, code_offset: u32) -> Option<TrapKind> {
        self.traps
            .binary_search_by_key(&code_offset, |t| t.code_offset)
            .ok()
            .map(|i| self.traps[i].kind)
    }

    /// The defined function whose body contains `code_offset`.
    pub fn lookup_function(&self, code_offset: u32) -> Option<DefinedFuncIndex> {
        let i = self
            .functions
            .as_values_slice()
            .partition_point(|f| f.wasm_call.start <= code_offset);
        let i = i.checked_sub(1)?;
        let index = DefinedFuncIndex::from_u32(i as u32);
        self.functions[index]
            .wasm_call
            .contains(code_offset)
            .then_some(index)
    }

    /// The wasm byte offset that produced the code at `code_offset`.
    pub fn lookup_wasm_offset(&self, code_offset: u32) -> Option<u32> {
        let i = self
            .address_map
            .partition_point(|e| e.code_offset <= code_offset);
        i.checked_sub(1).map(|i| self.address_map[i].wasm_offset)
    }
}
