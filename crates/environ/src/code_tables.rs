//! The trap and address tables of a module's text, packed so that they are
//! read where they lie: in memory the compiler filled, or in an artifact's
//! mapping, without decoding them first.
//!
//! ```text
//!   u32 trap count, u32 address-map count,
//!   u32 length of the trap blocks, u32 length of the address-map blocks
//!   trap index:    one (u32 first text offset, u32 block start) per block
//!   address index: the same, for the address map
//!   trap blocks:   per entry, the text offset's distance from the entry
//!                  before it (ULEB128; absent for a block's first entry,
//!                  whose offset is in the index), then its kind (one byte)
//!   address blocks: per entry, the distance as above, then the wasm
//!                  offset: ULEB128 for a block's first entry, else its
//!                  difference from the entry before (SLEB128)
//! ```
//!
//! Entries are sorted by text offset and cut into blocks of [`BLOCK`]; a
//! block start counts from the start of its kind's blocks. A lookup finds
//! its block by binary search in the index, then reads at most [`BLOCK`]
//! entries. Nearby entries differ little, so an entry takes two or three
//! bytes where fixed-width fields took five (traps) or eight (addresses):
//! a quarter of the bytes for an artifact's checksum to read and for a
//! loaded module to keep.
//!
//! Lookups never index out of bounds and never allocate, whatever the
//! bytes: damaged tables give wrong answers (a trap kind, a wasm offset)
//! or none, never unsoundness, which is why loading checks only that the
//! lengths add up (the artifact's checksum covers the contents).

use crate::{AddressMapEntry, InfoDecodeError, TrapKind, TrapSite};
use std::ops::Range;
use std::sync::Arc;

/// Bytes that tables borrow, shared with their owner (a `Vec` of their
/// own, or an artifact's mapping).
pub type SharedBytes = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// Entries per block: a lookup decodes at most this many.
pub const BLOCK: usize = 16;

/// Size of the fixed header: two counts, two block lengths.
const HEADER: usize = 16;

/// A module's trap sites and address map, packed (see the module docs).
#[derive(Clone)]
pub struct CodeTables {
    bytes: SharedBytes,
    /// Where the packed tables are in `bytes`.
    range: Range<usize>,
    traps: Table,
    map: Table,
}

/// Where one of the two tables lies in the packed bytes.
#[derive(Clone, Copy, Debug)]
struct Table {
    count: usize,
    /// Start of its index.
    index: usize,
    /// Start of its blocks.
    blocks: usize,
    /// Length of its blocks.
    blocks_len: usize,
}

impl Table {
    fn num_blocks(&self) -> usize {
        self.count.div_ceil(BLOCK)
    }
}

impl std::fmt::Debug for CodeTables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeTables")
            .field("traps", &self.traps.count)
            .field("address_map", &self.map.count)
            .finish()
    }
}

impl Default for CodeTables {
    fn default() -> Self {
        CodeTables::new(&[], &[])
    }
}

fn write_uleb(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn write_sleb(out: &mut Vec<u8>, mut value: i64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        let done = (value == 0 && byte & 0x40 == 0) || (value == -1 && byte & 0x40 != 0);
        if done {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Encodes sorted `(text offset, payload)` entries in blocks: returns the
/// index and the blocks. `payload` writes an entry's payload given the
/// entry before it in the block, if any.
fn encode_blocks<T: Copy>(
    entries: &[T],
    offset: impl Fn(&T) -> u32,
    payload: impl Fn(&mut Vec<u8>, &T, Option<&T>),
) -> (Vec<u8>, Vec<u8>) {
    let (mut index, mut blocks) = (Vec::new(), Vec::new());
    for block in entries.chunks(BLOCK) {
        index.extend(offset(&block[0]).to_le_bytes());
        index.extend((blocks.len() as u32).to_le_bytes());
        let mut prev: Option<&T> = None;
        for entry in block {
            if let Some(p) = prev {
                write_uleb(&mut blocks, u64::from(offset(entry) - offset(p)));
            }
            payload(&mut blocks, entry, prev);
            prev = Some(entry);
        }
    }
    (index, blocks)
}

/// A cursor over a block's bytes; every read is checked. Not wasmparser's
/// `BinaryReader`: its errors allocate, and lookups run in the trap
/// handler, where nothing may.
struct BlockReader<'a>(&'a [u8]);

impl BlockReader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*first)
    }

    fn uleb(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn sleb(&mut self) -> Option<i64> {
        let mut value = 0i64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= i64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                if shift + 7 < 64 && byte & 0x40 != 0 {
                    value |= -1i64 << (shift + 7);
                }
                return Some(value);
            }
        }
        None
    }
}

impl CodeTables {
    /// Packs `traps` and `address_map` (each sorted by text offset here).
    pub fn new(traps: &[TrapSite], address_map: &[AddressMapEntry]) -> CodeTables {
        let mut traps = traps.to_vec();
        traps.sort_by_key(|t| t.code_offset);
        let mut map = address_map.to_vec();
        map.sort_by_key(|e| e.code_offset);
        let (trap_index, trap_blocks) = encode_blocks(
            &traps,
            |t| t.code_offset,
            |out, t, _| out.push(t.kind.as_u8()),
        );
        let (map_index, map_blocks) = encode_blocks(
            &map,
            |e| e.code_offset,
            |out, e, prev| match prev {
                None => write_uleb(out, u64::from(e.wasm_offset)),
                Some(p) => write_sleb(out, i64::from(e.wasm_offset) - i64::from(p.wasm_offset)),
            },
        );
        let mut out = Vec::with_capacity(
            HEADER + trap_index.len() + map_index.len() + trap_blocks.len() + map_blocks.len(),
        );
        for n in [traps.len(), map.len(), trap_blocks.len(), map_blocks.len()] {
            out.extend((n as u32).to_le_bytes());
        }
        for part in [&trap_index, &map_index, &trap_blocks, &map_blocks] {
            out.extend_from_slice(part);
        }
        let len = out.len();
        CodeTables::decode(Arc::new(out), 0..len).expect("tables just packed read back")
    }

    /// The tables packed in `bytes[range]`, read in place. Checks only
    /// that the counts and lengths add up to the range's length.
    pub fn decode(bytes: SharedBytes, range: Range<usize>) -> Result<CodeTables, InfoDecodeError> {
        let packed = (*bytes)
            .as_ref()
            .get(range.clone())
            .ok_or(InfoDecodeError("code tables outside the input"))?;
        let field = |at: usize| {
            packed
                .get(at..at + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
                .ok_or(InfoDecodeError("truncated"))
        };
        let (traps, map) = (field(0)?, field(4)?);
        let (trap_blocks_len, map_blocks_len) = (field(8)?, field(12)?);
        let index_len = |count: usize| count.div_ceil(BLOCK) * 8;
        let trap_index = HEADER;
        let map_index = trap_index + index_len(traps);
        let trap_blocks = map_index + index_len(map);
        let map_blocks = trap_blocks.checked_add(trap_blocks_len);
        let end = map_blocks.and_then(|m| m.checked_add(map_blocks_len));
        if end != Some(packed.len()) {
            return Err(InfoDecodeError(
                "code table counts do not match their length",
            ));
        }
        let map_blocks = map_blocks.unwrap_or_default();
        Ok(CodeTables {
            bytes,
            range,
            traps: Table {
                count: traps,
                index: trap_index,
                blocks: trap_blocks,
                blocks_len: trap_blocks_len,
            },
            map: Table {
                count: map,
                index: map_index,
                blocks: map_blocks,
                blocks_len: map_blocks_len,
            },
        })
    }

    /// The packed bytes, as [`CodeTables::decode`] reads them.
    pub fn packed(&self) -> &[u8] {
        &(*self.bytes).as_ref()[self.range.clone()]
    }

    fn u32_at(&self, at: usize) -> Option<u32> {
        let b = self.packed().get(at..at + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// How many trap sites there are.
    pub fn num_traps(&self) -> usize {
        self.traps.count
    }

    /// How many address-map entries there are.
    pub fn num_addresses(&self) -> usize {
        self.map.count
    }

    /// The `i`th block of `table`: its first entry's offset, a reader
    /// over its bytes (to the end of the table's blocks), and how many
    /// entries it holds.
    fn block_at(&self, table: &Table, i: usize) -> Option<(u32, BlockReader<'_>, usize)> {
        let first = self.u32_at(table.index + 8 * i)?;
        let start = self.u32_at(table.index + 8 * i + 4)? as usize;
        let blocks = self
            .packed()
            .get(table.blocks..table.blocks + table.blocks_len)?;
        let entries = table.count.checked_sub(i * BLOCK)?.min(BLOCK);
        Some((first, BlockReader(blocks.get(start..)?), entries))
    }

    /// The block of `table` that may hold `code_offset`: the last whose
    /// first entry is at or before it.
    fn block(&self, table: &Table, code_offset: u32) -> Option<(u32, BlockReader<'_>, usize)> {
        let (mut lo, mut hi) = (0, table.num_blocks());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.u32_at(table.index + 8 * mid)? <= code_offset {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        self.block_at(table, lo.checked_sub(1)?)
    }

    /// The trap kind of the instruction at `code_offset`, if it may trap.
    /// Reads only the tables (no allocation, no lock): safe in a signal
    /// handler.
    pub fn lookup_trap(&self, code_offset: u32) -> Option<TrapKind> {
        let (mut offset, mut r, entries) = self.block(&self.traps, code_offset)?;
        for k in 0..entries {
            if k > 0 {
                offset = offset.checked_add(u32::try_from(r.uleb()?).ok()?)?;
            }
            let kind = r.byte()?;
            if offset >= code_offset {
                return (offset == code_offset)
                    .then(|| TrapKind::from_u8(kind))
                    .flatten();
            }
        }
        None
    }

    /// The wasm byte offset that produced the code at `code_offset`.
    pub fn lookup_wasm_offset(&self, code_offset: u32) -> Option<u32> {
        let (mut offset, mut r, entries) = self.block(&self.map, code_offset)?;
        let mut wasm = r.uleb()?;
        for _ in 1..entries {
            let next = offset.checked_add(u32::try_from(r.uleb()?).ok()?)?;
            let delta = r.sleb()?;
            if next > code_offset {
                break;
            }
            offset = next;
            wasm = wasm.checked_add_signed(delta)?;
        }
        u32::try_from(wasm).ok()
    }

    /// Every trap site, in order (for tests and tools; a lookup does not
    /// need this).
    pub fn traps(&self) -> Vec<TrapSite> {
        self.entries(&self.traps, |r, _| TrapKind::from_u8(r.byte()?))
            .into_iter()
            .map(|(code_offset, kind)| TrapSite { code_offset, kind })
            .collect()
    }

    /// Every address-map entry, in order (for tests and tools).
    pub fn address_map(&self) -> Vec<AddressMapEntry> {
        self.entries(&self.map, |r, prev: Option<&u64>| match prev {
            None => r.uleb(),
            Some(p) => p.checked_add_signed(r.sleb()?),
        })
        .into_iter()
        .filter_map(|(code_offset, wasm)| {
            Some(AddressMapEntry {
                code_offset,
                wasm_offset: u32::try_from(wasm).ok()?,
            })
        })
        .collect()
    }

    /// Decodes a whole table, stopping at the first damaged entry.
    fn entries<P: Copy>(
        &self,
        table: &Table,
        payload: impl Fn(&mut BlockReader<'_>, Option<&P>) -> Option<P>,
    ) -> Vec<(u32, P)> {
        let mut out = Vec::with_capacity(table.count);
        for i in 0..table.num_blocks() {
            let Some((first, mut r, entries)) = self.block_at(table, i) else {
                break;
            };
            let (mut offset, mut prev) = (first, None);
            for k in 0..entries {
                if k > 0 {
                    let Some(next) = r
                        .uleb()
                        .and_then(|d| u32::try_from(d).ok())
                        .and_then(|d| offset.checked_add(d))
                    else {
                        return out;
                    };
                    offset = next;
                }
                let Some(p) = payload(&mut r, prev.as_ref()) else {
                    return out;
                };
                out.push((offset, p));
                prev = Some(p);
            }
        }
        out
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

    /// Tables of many entries, with runs of equal and falling wasm
    /// offsets, distances of one to several varint bytes.
    fn many() -> (Vec<TrapSite>, Vec<AddressMapEntry>) {
        let kinds = [
            TrapKind::MemoryOutOfBounds,
            TrapKind::IntegerDivisionByZero,
            TrapKind::StackOverflow,
        ];
        let mut offset = 0u32;
        let traps = (0..1000u32)
            .map(|i| {
                offset += 1 + (i * 7919) % 300 + if i % 97 == 0 { 1 << 20 } else { 0 };
                TrapSite {
                    code_offset: offset,
                    kind: kinds[(i % 3) as usize],
                }
            })
            .collect();
        let mut offset = 0u32;
        let map = (0..1000u32)
            .map(|i| {
                offset += 1 + (i * 31) % 200;
                AddressMapEntry {
                    code_offset: offset,
                    wasm_offset: if i % 50 == 0 {
                        7
                    } else {
                        100_000 + i * 3 - (i % 4) * 20
                    },
                }
            })
            .collect();
        (traps, map)
    }

    #[test]
    fn many_entries_round_trip_and_look_up_as_the_plain_lists_do() {
        let (traps, map) = many();
        let t = CodeTables::new(&traps, &map);
        assert_eq!(t.traps(), traps);
        assert_eq!(t.address_map(), map);
        assert_eq!(t.num_traps(), 1000);
        assert_eq!(t.num_addresses(), 1000);
        let near = |o: u32| [o.saturating_sub(1), o, o + 1];
        let probes = traps
            .iter()
            .map(|t| t.code_offset)
            .chain(map.iter().map(|e| e.code_offset));
        for offset in probes.flat_map(near).chain([0, u32::MAX]) {
            let trap = traps
                .iter()
                .find(|t| t.code_offset == offset)
                .map(|t| t.kind);
            assert_eq!(t.lookup_trap(offset), trap, "trap at {offset}");
            let wasm = map
                .iter()
                .take_while(|e| e.code_offset <= offset)
                .last()
                .map(|e| e.wasm_offset);
            assert_eq!(t.lookup_wasm_offset(offset), wasm, "address at {offset}");
        }
        // Compact: the plain lists took 5 bytes a trap and 8 an address.
        assert!(
            t.packed().len() < (1000 * 5 + 1000 * 8) / 2,
            "{}",
            t.packed().len()
        );
    }

    #[test]
    fn garbage_gives_answers_not_panics() {
        // Valid lengths around contents that are anything: a pseudo-random
        // fill of the index and the blocks, for many seeds.
        let (traps, map) = many();
        let packed = CodeTables::new(&traps, &map).packed().to_vec();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..64 {
            let mut bytes = packed.clone();
            for b in bytes[HEADER..].iter_mut() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Keep some bytes, so that blocks stay partly readable.
                if (state >> 8) % 4 < round % 4 {
                    *b = state as u8;
                }
            }
            let len = bytes.len();
            let t = CodeTables::decode(Arc::new(bytes), 0..len).unwrap();
            for offset in (0..200_000).step_by(97) {
                let _ = t.lookup_trap(offset);
                let _ = t.lookup_wasm_offset(offset);
            }
            let _ = (t.traps(), t.address_map());
        }
    }
}
