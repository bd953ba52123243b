//! `ValRaw`: one wasm value in 16 untyped bytes.

/// A wasm value without its type: the slot format of array calls and of
/// globals. Little-endian: an `i32` is the first 4 bytes, an `i64` or `f64`
/// the first 8, a reference the pointer in the first 8, a `v128` all 16.
#[repr(C, align(16))]
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct ValRaw {
    bytes: [u8; 16],
}

impl std::fmt::Debug for ValRaw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ValRaw({:#034x})", self.get_v128())
    }
}

impl ValRaw {
    /// From all 16 bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> ValRaw {
        ValRaw { bytes }
    }

    /// The 16 bytes.
    pub fn bytes(&self) -> [u8; 16] {
        self.bytes
    }

    fn low<const N: usize>(&self) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.bytes[..N]);
        out
    }

    fn with_low(low: &[u8]) -> ValRaw {
        let mut bytes = [0u8; 16];
        bytes[..low.len()].copy_from_slice(low);
        ValRaw { bytes }
    }

    /// An `i32`.
    pub fn i32(v: i32) -> ValRaw {
        Self::with_low(&v.to_le_bytes())
    }
    /// An `i64`.
    pub fn i64(v: i64) -> ValRaw {
        Self::with_low(&v.to_le_bytes())
    }
    /// An `f32` from its bits.
    pub fn f32(bits: u32) -> ValRaw {
        Self::with_low(&bits.to_le_bytes())
    }
    /// An `f64` from its bits.
    pub fn f64(bits: u64) -> ValRaw {
        Self::with_low(&bits.to_le_bytes())
    }
    /// A `v128`.
    pub fn v128(v: u128) -> ValRaw {
        ValRaw {
            bytes: v.to_le_bytes(),
        }
    }
    /// A reference (null is 0).
    pub fn ptr(p: *mut u8) -> ValRaw {
        Self::with_low(&(p as usize as u64).to_le_bytes())
    }

    /// As an `i32`.
    pub fn get_i32(&self) -> i32 {
        i32::from_le_bytes(self.low())
    }
    /// As an `i64`.
    pub fn get_i64(&self) -> i64 {
        i64::from_le_bytes(self.low())
    }
    /// As `f32` bits.
    pub fn get_f32(&self) -> u32 {
        u32::from_le_bytes(self.low())
    }
    /// As `f64` bits.
    pub fn get_f64(&self) -> u64 {
        u64::from_le_bytes(self.low())
    }
    /// As a `v128`.
    pub fn get_v128(&self) -> u128 {
        u128::from_le_bytes(self.bytes)
    }
    /// As a reference.
    pub fn get_ptr(&self) -> *mut u8 {
        u64::from_le_bytes(self.low()) as usize as *mut u8
    }
}
