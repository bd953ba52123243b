//! Engine-neutral values: what goes into a call and what comes out, and
//! when two results count as equal.

use crate::interface::{FuncTy, ValTy};
use crate::rng::Rng;
use std::fmt;

/// A value either engine can produce.
///
/// Functions have no identity both engines expose (wasmi's handles do not
/// compare), so a function reference is described by its signature and,
/// when it is an argument, by the export that provides it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    I32(i32),
    I64(i64),
    /// Bits, so NaN payloads survive.
    F32(u32),
    F64(u64),
    V128(u128),
    FuncRef(Option<FuncRefDesc>),
    /// The host value is a `u64` id chosen by the oracle.
    ExternRef(Option<u64>),
    /// A caught exception: whether it is non-null (exceptions have no
    /// identity two engines share).
    ExnRef(bool),
}

/// A non-null function reference.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FuncRefDesc {
    /// The export it came from: set for arguments, `None` for results.
    pub export: Option<String>,
    /// Its signature: set for results (arguments leave it to the engine).
    pub ty: Option<FuncTy>,
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::I32(v) => write!(f, "i32:{v}"),
            Value::I64(v) => write!(f, "i64:{v}"),
            Value::F32(b) => write!(f, "f32:{}({b:#010x})", f32::from_bits(*b)),
            Value::F64(b) => write!(f, "f64:{}({b:#018x})", f64::from_bits(*b)),
            Value::V128(v) => write!(f, "v128:{v:#034x}"),
            Value::FuncRef(None) => f.write_str("funcref:null"),
            Value::FuncRef(Some(d)) => match (&d.export, &d.ty) {
                (Some(name), _) => write!(f, "funcref:{name:?}"),
                (None, Some(ty)) => write!(f, "funcref:{ty}"),
                (None, None) => f.write_str("funcref:?"),
            },
            Value::ExternRef(None) => f.write_str("externref:null"),
            Value::ExternRef(Some(id)) => write!(f, "externref:{id}"),
            Value::ExnRef(false) => f.write_str("exnref:null"),
            Value::ExnRef(true) => f.write_str("exnref"),
        }
    }
}

/// Values at edges where implementations tend to be wrong.
const INTERESTING_32: [u32; 14] = [
    0,
    1,
    2,
    7,
    0x7f,
    0x80,
    0xff,
    0x7fff,
    0x8000,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fffe,
    0xffff_ffff,
];

const INTERESTING_F32: [u32; 10] = [
    0x0000_0000, // +0
    0x8000_0000, // -0
    0x3f80_0000, // 1
    0xbf00_0000, // -0.5
    0x7f80_0000, // +inf
    0xff80_0000, // -inf
    0x7fc0_0000, // canonical NaN
    0x7fa0_0001, // signalling NaN with payload
    0x4f00_0000, // 2^31: edge of i32 conversions
    0x0000_0001, // smallest subnormal
];

const INTERESTING_F64: [u64; 10] = [
    0x0000_0000_0000_0000,
    0x8000_0000_0000_0000,
    0x3ff0_0000_0000_0000,
    0xbfe0_0000_0000_0000,
    0x7ff0_0000_0000_0000,
    0xfff0_0000_0000_0000,
    0x7ff8_0000_0000_0000,
    0x7ff4_0000_0000_0001,
    0x43e0_0000_0000_0000, // 2^63
    0x0000_0000_0000_0001,
];

impl Value {
    /// An argument of type `ty`: mostly edge values, sometimes random bits.
    /// `funcs` names exported functions that may be passed as references.
    pub(crate) fn arbitrary(ty: ValTy, rng: &mut Rng, funcs: &[String]) -> Value {
        let random = rng.chance(1, 3);
        match ty {
            ValTy::I32 if random => Value::I32(rng.next_u64() as i32),
            ValTy::I32 => Value::I32(rng.pick(&INTERESTING_32) as i32),
            ValTy::I64 if random => Value::I64(rng.next_u64() as i64),
            ValTy::I64 => {
                let v = u64::from(rng.pick(&INTERESTING_32));
                Value::I64(match rng.below(3) {
                    0 => v as i64,
                    1 => (v << 32 | v) as i64,
                    _ => !v as i64,
                })
            }
            ValTy::F32 if random => Value::F32(rng.next_u64() as u32),
            ValTy::F32 => Value::F32(rng.pick(&INTERESTING_F32)),
            ValTy::F64 if random => Value::F64(rng.next_u64()),
            ValTy::F64 => Value::F64(rng.pick(&INTERESTING_F64)),
            ValTy::V128 => {
                let lanes: Vec<u32> = (0..4)
                    .map(|_| {
                        if random {
                            rng.next_u64() as u32
                        } else if rng.chance(1, 2) {
                            rng.pick(&INTERESTING_32)
                        } else {
                            rng.pick(&INTERESTING_F32)
                        }
                    })
                    .collect();
                Value::V128(
                    lanes
                        .iter()
                        .enumerate()
                        .fold(0, |acc, (i, &l)| acc | (u128::from(l) << (32 * i))),
                )
            }
            ValTy::FuncRef if funcs.is_empty() || rng.chance(1, 2) => Value::FuncRef(None),
            ValTy::FuncRef => Value::FuncRef(Some(FuncRefDesc {
                export: Some(funcs[rng.below(funcs.len() as u64) as usize].clone()),
                ty: None,
            })),
            ValTy::ExternRef if rng.chance(1, 3) => Value::ExternRef(None),
            ValTy::ExternRef => Value::ExternRef(Some(rng.below(1000))),
            // The host has no exception to pass but null.
            ValTy::ExnRef => Value::ExnRef(false),
        }
    }

    /// A host function's result of type `ty`, determined by `seed`.
    pub(crate) fn from_seed(ty: ValTy, seed: u64) -> Value {
        let mut rng = Rng::new(seed);
        match ty {
            // Host functions cannot name wasm functions; null is the only
            // funcref both engines can return alike.
            ValTy::FuncRef => Value::FuncRef(None),
            _ => Value::arbitrary(ty, &mut rng, &[]),
        }
    }

    /// A number summarizing the value, for mixing into host results.
    pub(crate) fn digest(&self) -> u64 {
        match self {
            Value::I32(v) => *v as u32 as u64,
            Value::I64(v) => *v as u64,
            Value::F32(b) => u64::from(*b),
            Value::F64(b) => *b,
            Value::V128(v) => (*v as u64) ^ ((*v >> 64) as u64),
            Value::FuncRef(r) => u64::from(r.is_some()),
            Value::ExternRef(r) => r.map_or(u64::MAX, |id| id),
            Value::ExnRef(r) => u64::from(*r),
        }
    }
}

fn f32_nan(bits: u32) -> bool {
    f32::from_bits(bits).is_nan()
}

fn f64_nan(bits: u64) -> bool {
    f64::from_bits(bits).is_nan()
}

/// Whether two 128-bit vectors agree, allowing lanes where both sides hold
/// some NaN (as `f32x4` or as `f64x2`) to differ in payload and sign: the
/// spec leaves those bits nondeterministic.
pub(crate) fn v128_agree(a: u128, b: u128) -> bool {
    if a == b {
        return true;
    }
    let f32_lanes = (0..4).all(|i| {
        let (x, y) = ((a >> (32 * i)) as u32, (b >> (32 * i)) as u32);
        x == y || (f32_nan(x) && f32_nan(y))
    });
    let f64_lanes = (0..2).all(|i| {
        let (x, y) = ((a >> (64 * i)) as u64, (b >> (64 * i)) as u64);
        x == y || (f64_nan(x) && f64_nan(y))
    });
    f32_lanes || f64_lanes
}

/// Whether two values agree as the spec allows: any NaN equals any NaN
/// (payload and sign are nondeterministic), function references agree by
/// signature, everything else bit for bit.
pub(crate) fn values_agree(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::F32(x), Value::F32(y)) => x == y || (f32_nan(*x) && f32_nan(*y)),
        (Value::F64(x), Value::F64(y)) => x == y || (f64_nan(*x) && f64_nan(*y)),
        (Value::V128(x), Value::V128(y)) => v128_agree(*x, *y),
        (Value::FuncRef(Some(x)), Value::FuncRef(Some(y))) => x.ty == y.ty,
        _ => a == b,
    }
}

/// Joins values for a message.
pub(crate) fn show(values: &[Value]) -> String {
    let parts: Vec<String> = values.iter().map(ToString::to_string).collect();
    format!("[{}]", parts.join(", "))
}
