//! The output of compilation: plain data that holds no host pointer.
//!
//! The compiler fills a [`CompiledModuleInfo`] and a text section; the
//! runtime maps the text executable, applies the few [`LoadRelocation`]s and
//! reads the tables below to map a faulting or returning program counter
//! back to a trap kind, a function and a wasm byte offset.

use crate::{CodeTables, DefinedFuncIndex, SharedBytes, TrapKind};
use cranelift_entity::PrimaryMap;
use std::sync::Arc;

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

/// A call inside a `try_table`: an exception that unwinds to the call's
/// return address
/// resumes at `handler_offset`, with the stack pointer `frame_offset`
/// bytes below the caller's frame pointer and the exception object in the
/// first payload register.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct HandlerSite {
    /// Offset in the text section of the call's return address.
    pub return_offset: u32,
    /// Offset in the text section of the landing pad.
    pub handler_offset: u32,
    /// From the caller's frame pointer down to its stack pointer at the
    /// call.
    pub frame_offset: u32,
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

/// Lazy compilation: where a function's stub enters the runtime, from the
/// stub's start (what the stub's slot holds until the function is
/// compiled).
pub const LAZY_STUB_ENTRY: u32 = 6;
/// Lazy compilation: the page size the stubs' layout assumes (their slots
/// start on a page of their own).
pub const LAZY_PAGE: u32 = 4096;

/// A call in one function's code to another defined function: a 32-bit
/// displacement relative to the end of the call, as x86-64 `call` takes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CallRelocation {
    /// Offset of the 4-byte displacement in the function's code.
    pub offset: u32,
    /// The function called.
    pub callee: DefinedFuncIndex,
    /// Added to the callee's address before the displacement is taken.
    pub addend: i64,
}

/// One function compiled on its own (lazy compilation), before it is
/// placed: every offset is relative to the start of `code`.
#[derive(Clone, Debug, Default)]
pub struct FunctionCode {
    /// The machine code.
    pub code: Vec<u8>,
    /// The alignment its start needs (its constants').
    pub alignment: u32,
    /// Calls to other defined functions, resolved where `code` is placed.
    pub calls: Vec<CallRelocation>,
    /// Addresses of runtime math routines, written where `code` is placed.
    pub libcalls: Vec<LoadRelocation>,
    /// Trap sites, sorted by offset.
    pub traps: Vec<TrapSite>,
    /// Address map, sorted by offset.
    pub address_map: Vec<AddressMapEntry>,
    /// Exception handlers of its calls, sorted by return offset.
    pub handlers: Vec<HandlerSite>,
}

impl FunctionCode {
    /// The trap kind of the instruction at `offset`, if it may trap.
    pub fn lookup_trap(&self, offset: u32) -> Option<TrapKind> {
        lookup_trap(&self.traps, offset)
    }

    /// The wasm byte offset that produced the code at `offset`.
    pub fn lookup_wasm_offset(&self, offset: u32) -> Option<u32> {
        lookup_wasm_offset(&self.address_map, offset)
    }
}

fn lookup_trap(traps: &[TrapSite], code_offset: u32) -> Option<TrapKind> {
    traps
        .binary_search_by_key(&code_offset, |t| t.code_offset)
        .ok()
        .map(|i| traps[i].kind)
}

fn lookup_wasm_offset(map: &[AddressMapEntry], code_offset: u32) -> Option<u32> {
    let i = map.partition_point(|e| e.code_offset <= code_offset);
    i.checked_sub(1).map(|i| map[i].wasm_offset)
}

/// Everything the runtime needs to know about compiled code.
#[derive(Clone, Debug, Default)]
pub struct CompiledModuleInfo {
    /// Each defined function's code.
    pub functions: PrimaryMap<DefinedFuncIndex, CompiledFunctionInfo>,
    /// Trap sites and the address map, read in place.
    pub tables: CodeTables,
    /// Relocations to apply at load time.
    pub relocations: Vec<LoadRelocation>,
    /// Exception handlers, sorted by return offset.
    pub handlers: Vec<HandlerSite>,
}

impl CompiledModuleInfo {
    /// The trap kind of the instruction at `code_offset`, if it may trap.
    pub fn lookup_trap(&self, code_offset: u32) -> Option<TrapKind> {
        self.tables.lookup_trap(code_offset)
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
        self.tables.lookup_wasm_offset(code_offset)
    }

    /// The handler of the call that returns to `return_offset`, if it has
    /// one.
    pub fn lookup_handler(&self, return_offset: u32) -> Option<HandlerSite> {
        lookup_handler(&self.handlers, return_offset)
    }
}

/// The entry of `handlers` (sorted) for a return offset.
pub fn lookup_handler(handlers: &[HandlerSite], return_offset: u32) -> Option<HandlerSite> {
    handlers
        .binary_search_by_key(&return_offset, |h| h.return_offset)
        .ok()
        .map(|i| handlers[i])
}

impl LibCall {
    /// Every libcall, in encoding order.
    pub const ALL: [LibCall; 10] = [
        LibCall::FloorF32,
        LibCall::FloorF64,
        LibCall::CeilF32,
        LibCall::CeilF64,
        LibCall::TruncF32,
        LibCall::TruncF64,
        LibCall::NearestF32,
        LibCall::NearestF64,
        LibCall::FmaF32,
        LibCall::FmaF64,
    ];
}

/// Why bytes do not decode as a [`CompiledModuleInfo`].
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed code tables: {0}")]
pub struct InfoDecodeError(pub(crate) &'static str);

impl CompiledModuleInfo {
    /// Appends the tables to `out`, in a form [`CompiledModuleInfo::decode`]
    /// reads back (little-endian, counts before lists; the trap and address
    /// tables last, packed as [`CodeTables`] reads them in place).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let u32s =
            |out: &mut Vec<u8>, v: &[u32]| v.iter().for_each(|x| out.extend(x.to_le_bytes()));
        u32s(out, &[self.functions.len() as u32]);
        for f in self.functions.values() {
            let array = f.array_call.unwrap_or_default();
            u32s(out, &[f.wasm_call.start, f.wasm_call.length]);
            out.push(u8::from(f.array_call.is_some()));
            u32s(out, &[array.start, array.length]);
        }
        u32s(out, &[self.relocations.len() as u32]);
        for r in &self.relocations {
            u32s(out, &[r.offset]);
            out.push(r.target as u8);
            out.extend(r.addend.to_le_bytes());
        }
        u32s(out, &[self.handlers.len() as u32]);
        for h in &self.handlers {
            u32s(out, &[h.return_offset, h.handler_offset, h.frame_offset]);
        }
        out.extend_from_slice(self.tables.packed());
    }

    /// Reads tables that [`CompiledModuleInfo::encode`] wrote to
    /// `bytes[range]`, for a text section of `text_len` bytes. The trap and
    /// address tables stay in `bytes`, read in place. Checks what the
    /// runtime relies on to stay in bounds (every function and relocation
    /// inside the text, functions in order); see [`CodeTables`] for the
    /// rest.
    pub fn decode(
        bytes: SharedBytes,
        range: std::ops::Range<usize>,
        text_len: usize,
    ) -> Result<Self, InfoDecodeError> {
        let all = (*bytes).as_ref();
        let encoded = all
            .get(range.clone())
            .ok_or(InfoDecodeError("code tables outside the input"))?;
        let mut r = Reader(encoded);
        let in_text =
            |start: u32, len: u32| (start as usize).saturating_add(len as usize) <= text_len;
        let mut info = CompiledModuleInfo::default();
        let functions = r.count(17)?;
        info.functions.reserve(functions as usize);
        for _ in 0..functions {
            let wasm_call = FunctionLoc {
                start: r.u32()?,
                length: r.u32()?,
            };
            let has_array = r.u8()?;
            let array = FunctionLoc {
                start: r.u32()?,
                length: r.u32()?,
            };
            let array_call = match has_array {
                0 => None,
                1 => Some(array),
                _ => return Err(InfoDecodeError("bad array-call flag")),
            };
            let ordered = info
                .functions
                .values()
                .last()
                .is_none_or(|prev| prev.wasm_call.start <= wasm_call.start);
            if !ordered
                || !in_text(wasm_call.start, wasm_call.length)
                || array_call.is_some_and(|a| !in_text(a.start, a.length))
            {
                return Err(InfoDecodeError("function outside the text or out of order"));
            }
            info.functions.push(CompiledFunctionInfo {
                wasm_call,
                array_call,
            });
        }
        for _ in 0..r.count(13)? {
            let offset = r.u32()?;
            let target = LibCall::ALL
                .get(usize::from(r.u8()?))
                .copied()
                .ok_or(InfoDecodeError("bad libcall"))?;
            let addend = i64::from_le_bytes(r.array()?);
            if !in_text(offset, 8) {
                return Err(InfoDecodeError("relocation outside the text"));
            }
            info.relocations.push(LoadRelocation {
                offset,
                target,
                addend,
            });
        }
        for _ in 0..r.count(12)? {
            let site = HandlerSite {
                return_offset: r.u32()?,
                handler_offset: r.u32()?,
                frame_offset: r.u32()?,
            };
            // A handler is where the unwinder jumps: it must be in the
            // text, and sites sorted for the lookup.
            let ordered = info
                .handlers
                .last()
                .is_none_or(|prev| prev.return_offset < site.return_offset);
            if !ordered || !in_text(site.return_offset, 0) || !in_text(site.handler_offset, 1) {
                return Err(InfoDecodeError(
                    "exception handler outside the text or out of order",
                ));
            }
            info.handlers.push(site);
        }
        let tables_start = range.end - r.0.len();
        info.tables = CodeTables::decode(bytes.clone(), tables_start..range.end)?;
        Ok(info)
    }

    /// [`CompiledModuleInfo::decode`] of tables in a buffer of their own
    /// (copied).
    pub fn decode_copy(encoded: &[u8], text_len: usize) -> Result<Self, InfoDecodeError> {
        let len = encoded.len();
        CompiledModuleInfo::decode(Arc::new(encoded.to_vec()), 0..len, text_len)
    }
}

/// A cursor over encoded tables.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn array<const N: usize>(&mut self) -> Result<[u8; N], InfoDecodeError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(InfoDecodeError("truncated"))?;
        self.0 = rest;
        Ok(*head)
    }

    fn u8(&mut self) -> Result<u8, InfoDecodeError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, InfoDecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A count of records of `record_len` bytes each, which must fit in
    /// what is left (so that a corrupt count cannot make the decoder
    /// reserve or loop beyond the input).
    fn count(&mut self, record_len: usize) -> Result<u32, InfoDecodeError> {
        let n = self.u32()?;
        if (n as usize).saturating_mul(record_len) > self.0.len() {
            return Err(InfoDecodeError("count larger than the input"));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CompiledModuleInfo {
        let mut info = CompiledModuleInfo::default();
        info.functions.push(CompiledFunctionInfo {
            wasm_call: FunctionLoc {
                start: 0,
                length: 16,
            },
            array_call: None,
        });
        info.functions.push(CompiledFunctionInfo {
            wasm_call: FunctionLoc {
                start: 16,
                length: 16,
            },
            array_call: Some(FunctionLoc {
                start: 32,
                length: 8,
            }),
        });
        info.tables = CodeTables::new(
            &[TrapSite {
                code_offset: 4,
                kind: TrapKind::OutOfFuel,
            }],
            &[AddressMapEntry {
                code_offset: 0,
                wasm_offset: 30,
            }],
        );
        info.relocations.push(LoadRelocation {
            offset: 24,
            target: LibCall::FmaF64,
            addend: -3,
        });
        info.handlers.push(HandlerSite {
            return_offset: 8,
            handler_offset: 12,
            frame_offset: 32,
        });
        info
    }

    #[test]
    fn tables_round_trip() {
        let info = sample();
        let mut bytes = Vec::new();
        info.encode(&mut bytes);
        let back = CompiledModuleInfo::decode_copy(&bytes, 40).unwrap();
        assert_eq!(
            back.functions.as_values_slice(),
            info.functions.as_values_slice()
        );
        assert_eq!(back.tables.packed(), info.tables.packed());
        assert_eq!(back.lookup_trap(4), Some(TrapKind::OutOfFuel));
        assert_eq!(back.relocations, info.relocations);
        assert_eq!(back.handlers, info.handlers);
        assert_eq!(back.lookup_handler(8), Some(info.handlers[0]));
        assert_eq!(back.lookup_handler(9), None);
    }

    #[test]
    fn tables_that_do_not_fit_the_text_or_the_input_are_refused() {
        let mut bytes = Vec::new();
        sample().encode(&mut bytes);
        assert!(
            CompiledModuleInfo::decode_copy(&bytes, 39).is_err(),
            "text too short"
        );
        for len in 0..bytes.len() {
            assert!(
                CompiledModuleInfo::decode_copy(&bytes[..len], 40).is_err(),
                "truncated at {len}"
            );
        }
        let mut huge_count = bytes.clone();
        huge_count[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(CompiledModuleInfo::decode_copy(&huge_count, 40).is_err());
    }
}
