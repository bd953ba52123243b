//! A small deterministic generator for arguments and host behaviour.
//!
//! `wasm-smith` consumes most of a fuzz input; once the input is exhausted,
//! `arbitrary::Unstructured` only yields zeros. Arguments drawn from a seed
//! taken from the input stay varied however long the module was, and still
//! replay exactly.

/// SplitMix64: tiny, fast, and good enough to spread a 64-bit seed.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `num / den`.
    pub(crate) fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    /// One element of a non-empty slice.
    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Mixes values into a seed, so that host results depend on their inputs.
pub(crate) fn mix(seed: u64, value: u64) -> u64 {
    Rng::new(seed ^ value.rotate_left(17)).next_u64()
}

/// A 64-bit hash of bytes (FNV-1a), for seeding from a raw module.
pub(crate) fn hash_bytes(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
