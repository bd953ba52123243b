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
    #[inline]
    pub fn from_bytes(bytes: [u8; 16]) -> ValRaw {
        ValRaw { bytes }
    }

    /// The 16 bytes.
    #[inline]
    pub fn bytes(&self) -> [u8; 16] {
        self.bytes
    }

    /// The value zero-extended to 16 bytes. Built from an integer rather
    /// than by copying bytes, so that writing a slot is one store.
    #[inline]
    fn with_low(low: u64) -> ValRaw {
        ValRaw::v128(u128::from(low))
    }

    /// The low 8 bytes.
    #[inline]
    fn low(&self) -> u64 {
        self.get_v128() as u64
    }

    /// An `i32`.
    #[inline]
    pub fn i32(v: i32) -> ValRaw {
        Self::with_low(u64::from(v as u32))
    }
    /// An `i64`.
    #[inline]
    pub fn i64(v: i64) -> ValRaw {
        Self::with_low(v as u64)
    }
    /// An `f32` from its bits.
    #[inline]
    pub fn f32(bits: u32) -> ValRaw {
        Self::with_low(u64::from(bits))
    }
    /// An `f64` from its bits.
    #[inline]
    pub fn f64(bits: u64) -> ValRaw {
        Self::with_low(bits)
    }
    /// A `v128`.
    #[inline]
    pub fn v128(v: u128) -> ValRaw {
        ValRaw {
            bytes: v.to_le_bytes(),
        }
    }
    /// A reference (null is 0). Safe for any pointer: only the address
    /// is kept, never dereferenced here; whatever hands a `ValRaw` to wasm
    /// (an argument array, a global, a table) is where the caller vouches
    /// for it, and those writers are `unsafe` or check the reference.
    #[inline]
    pub fn ptr(p: *mut u8) -> ValRaw {
        Self::with_low(p as usize as u64)
    }

    /// As an `i32`.
    #[inline]
    pub fn get_i32(&self) -> i32 {
        self.low() as u32 as i32
    }
    /// As an `i64`.
    #[inline]
    pub fn get_i64(&self) -> i64 {
        self.low() as i64
    }
    /// As `f32` bits.
    #[inline]
    pub fn get_f32(&self) -> u32 {
        self.low() as u32
    }
    /// As `f64` bits.
    #[inline]
    pub fn get_f64(&self) -> u64 {
        self.low()
    }
    /// As a `v128`.
    #[inline]
    pub fn get_v128(&self) -> u128 {
        u128::from_le_bytes(self.bytes)
    }
    /// As a reference.
    #[inline]
    pub fn get_ptr(&self) -> *mut u8 {
        self.low() as usize as *mut u8
    }
}
