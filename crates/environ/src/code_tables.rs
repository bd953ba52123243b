//! The trap and address tables of a module's text, packed so that they are
//! read where they lie: in memory the compiler filled, or in an artifact's
//! mapping, without decoding.
//!
//! ```text
//!   u32 trap count (n), u32 address-map count (m)
//!   n × u32  trap sites' text offsets, ascending
//!   n × u8   their trap kinds (`TrapKind::as_u8`)
//!   zeros up to a multiple of 4
//!   m × u32  address-map text offsets, ascending
//!   m × u32  the wasm byte offsets they map to
//! ```
//!
//! Little-endian, read with `from_le_bytes`, so the tables need no
//! alignment. Lookups are binary searches that never index out of bounds,
//! whatever the bytes: tables out of order give wrong answers (a trap kind
//! or a wasm offset), never unsoundness, which is why loading checks only
//! their lengths (the artifact's checksum covers their contents).

use crate::{AddressMapEntry, InfoDecodeError, TrapKind, TrapSite};
use std::ops::Range;
use std::sync::Arc;

/// Bytes that tables borrow, shared with their owner (a `Vec` of their
/// own, or an artifact's mapping).
pub type SharedBytes = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// A module's trap sites and address map, packed (see the module docs).
#[derive(Clone)]
pub struct CodeTables {
    bytes: SharedBytes,
    /// Where the packed tables are in `bytes`.
    range: Range<usize>,
    traps: usize,
    map: usize,
}

impl std::fmt::Debug for CodeTables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeTables")
            .field("traps", &self.traps)
            .field("address_map", &self.map)
            .finish()
    }
}

impl Default for CodeTables {
    fn default() -> Self {
        CodeTables::new(&[], &[])
    }
}

impl CodeTables {
    /// Packs `traps` and `address_map` (each sorted by text offset here).
    pub fn new(traps: &[TrapSite], address_map: &[AddressMapEntry]) -> CodeTables {
        let mut traps = traps.to_vec();
        traps.sort_by_key(|t| t.code_offset);
        let mut map = address_map.to_vec();
        map.sort_by_key(|e| e.code_offset);
        let mut out = Vec::with_capacity(8 + traps.len() * 5 + 3 + map.len() * 8);
        out.extend((traps.len() as u32).to_le_bytes());
        out.extend((map.len() as u32).to_le_bytes());
        out.extend(traps.iter().flat_map(|t| t.code_offset.to_le_bytes()));
        out.extend(traps.iter().map(|t| t.kind.as_u8()));
        out.resize(out.len().next_multiple_of(4), 0);
        out.extend(map.iter().flat_map(|e| e.code_offset.to_le_bytes()));
        out.extend(map.iter().flat_map(|e| e.wasm_offset.to_le_bytes()));
        let range = 0..out.len();
        CodeTables {
            bytes: Arc::new(out),
            range,
            traps: traps.len(),
            map: map.len(),
        }
    }

    /// The tables packed in `bytes[range]`, read in place. Checks only
    /// that the counts match the length.
    pub fn decode(bytes: SharedBytes, range: Range<usize>) -> Result<CodeTables, InfoDecodeError> {
        let packed = (*bytes)
            .as_ref()
            .get(range.clone())
            .ok_or(InfoDecodeError("code tables outside the input"))?;
        let count = |at: usize| {
            packed
                .get(at..at + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
                .ok_or(InfoDecodeError("truncated"))
        };
        let (traps, map) = (count(0)?, count(4)?);
        let expected = traps
            .checked_mul(5)
            .map(|n| (8 + n).next_multiple_of(4))
            .and_then(|n| map.checked_mul(8).and_then(|m| n.checked_add(m)));
        if expected != Some(packed.len()) {
            return Err(InfoDecodeError(
                "code table counts do not match their length",
            ));
        }
        Ok(CodeTables {
            bytes,
            range,
            traps,
            map,
        })
    }

    /// The packed bytes, as [`CodeTables::decode`] reads them.
    pub fn packed(&self) -> &[u8] {
        &(*self.bytes).as_ref()[self.range.clone()]
    }

    fn u32_at(&self, at: usize) -> u32 {
        let b = &self.packed()[at..at + 4];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    fn trap_offsets(&self) -> usize {
        8
    }

    fn trap_kinds(&self) -> usize {
        8 + 4 * self.traps
    }

    fn map_code_offsets(&self) -> usize {
        (8 + 5 * self.traps).next_multiple_of(4)
    }

    fn map_wasm_offsets(&self) -> usize {
        self.map_code_offsets() + 4 * self.map
    }

    /// How many trap sites there are.
    pub fn num_traps(&self) -> usize {
        self.traps
    }

    /// The `i`th trap site.
    pub fn trap(&self, i: usize) -> Option<TrapSite> {
        if i >= self.traps {
            return None;
        }
        Some(TrapSite {
            code_offset: self.u32_at(self.trap_offsets() + 4 * i),
            kind: TrapKind::from_u8(self.packed()[self.trap_kinds() + i])?,
        })
    }

    /// The `i`th address-map entry.
    pub fn address(&self, i: usize) -> Option<AddressMapEntry> {
        (i < self.map).then(|| AddressMapEntry {
            code_offset: self.u32_at(self.map_code_offsets() + 4 * i),
            wasm_offset: self.u32_at(self.map_wasm_offsets() + 4 * i),
        })
    }

    /// How many entries among the `n` ascending `u32`s at `at` are at most
    /// `value`.
    fn partition(&self, at: usize, n: usize, value: u32) -> usize {
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.u32_at(at + 4 * mid) <= value {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The trap kind of the instruction at `code_offset`, if it may trap.
    /// Reads only the tables (no allocation, no lock): safe in a signal
    /// handler.
    pub fn lookup_trap(&self, code_offset: u32) -> Option<TrapKind> {
        let i = self
            .partition(self.trap_offsets(), self.traps, code_offset)
            .checked_sub(1)?;
        let site = self.trap(i)?;
        (site.code_offset == code_offset).then_some(site.kind)
    }

    /// The wasm byte offset that produced the code at `code_offset`.
    pub fn lookup_wasm_offset(&self, code_offset: u32) -> Option<u32> {
        let i = self
            .partition(self.map_code_offsets(), self.map, code_offset)
            .checked_sub(1)?;
        Some(self.address(i)?.wasm_offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CodeTables {
        CodeTables::new(
            &[
                TrapSite {
                    code_offset: 40,
                    kind: TrapKind::MemoryOutOfBounds,
                },
                TrapSite {
                    code_offset: 7,
                    kind: TrapKind::OutOfFuel,
                },
                TrapSite {
                    code_offset: 9,
                    kind: TrapKind::StackOverflow,
                },
            ],
            &[
                AddressMapEntry {
                    code_offset: 0,
                    wasm_offset: 100,
                },
                AddressMapEntry {
                    code_offset: 12,
                    wasm_offset: 104,
                },
            ],
        )
    }

    #[test]
    fn lookups_find_exact_sites_and_the_covering_entry() {
        let t = sample();
        assert_eq!(t.num_traps(), 3);
        assert_eq!(t.lookup_trap(7), Some(TrapKind::OutOfFuel));
        assert_eq!(t.lookup_trap(9), Some(TrapKind::StackOverflow));
        assert_eq!(t.lookup_trap(40), Some(TrapKind::MemoryOutOfBounds));
        for not_a_site in [0, 8, 10, 39, 41, u32::MAX] {
            assert_eq!(t.lookup_trap(not_a_site), None, "{not_a_site}");
        }
        assert_eq!(t.lookup_wasm_offset(0), Some(100));
        assert_eq!(t.lookup_wasm_offset(11), Some(100));
        assert_eq!(t.lookup_wasm_offset(12), Some(104));
        assert_eq!(t.lookup_wasm_offset(u32::MAX), Some(104));
        let empty = CodeTables::default();
        assert_eq!(empty.lookup_trap(0), None);
        assert_eq!(empty.lookup_wasm_offset(0), None);
    }

    #[test]
    fn tables_read_in_place_from_a_larger_buffer() {
        let packed = sample().packed().to_vec();
        let mut buffer = vec![0xee; 5];
        buffer.extend(&packed);
        buffer.extend([0xee; 3]);
        let range = 5..5 + packed.len();
        let t = CodeTables::decode(Arc::new(buffer), range).unwrap();
        assert_eq!(t.lookup_trap(9), Some(TrapKind::StackOverflow));
        assert_eq!(t.lookup_wasm_offset(13), Some(104));
    }

    #[test]
    fn lengths_that_do_not_match_the_counts_are_refused() {
        let packed = sample().packed().to_vec();
        let decode = |b: Vec<u8>| {
            let len = b.len();
            CodeTables::decode(Arc::new(b), 0..len)
        };
        assert!(decode(packed.clone()).is_ok());
        assert!(decode(packed[..packed.len() - 1].to_vec()).is_err());
        let mut longer = packed.clone();
        longer.push(0);
        assert!(decode(longer).is_err());
        let mut huge = packed;
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(huge).is_err());
        assert!(CodeTables::decode(Arc::new(vec![1u8; 3]), 0..3).is_err());
        assert!(CodeTables::decode(Arc::new(vec![0u8; 8]), 4..12).is_err());
    }

    #[test]
    fn garbage_gives_answers_not_panics() {
        // Counts that match the length, contents out of order and bad kinds.
        let mut bytes = Vec::new();
        bytes.extend(3u32.to_le_bytes());
        bytes.extend(2u32.to_le_bytes());
        for v in [9u32, 2, 5] {
            bytes.extend(v.to_le_bytes());
        }
        bytes.extend([0xff, 0xfe, 0x00, 0]);
        for v in [8u32, 1, 3, 4] {
            bytes.extend(v.to_le_bytes());
        }
        let len = bytes.len();
        let t = CodeTables::decode(Arc::new(bytes), 0..len).unwrap();
        for offset in 0..12 {
            let _ = t.lookup_trap(offset);
            let _ = t.lookup_wasm_offset(offset);
        }
    }
}
