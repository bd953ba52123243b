//! Converting script values to Keel values and comparing results.

use anyhow::{anyhow, bail};
use keel::{ExternRef, Store, V128, Val};
use wast::WastRet;
use wast::core::{AbstractHeapType, HeapType, NanPattern, V128Pattern, WastArgCore, WastRetCore};

/// A script argument as a value.
pub(crate) fn arg(store: &mut Store<()>, a: &WastArgCore<'_>) -> anyhow::Result<Val> {
    Ok(match a {
        WastArgCore::I32(v) => Val::I32(*v),
        WastArgCore::I64(v) => Val::I64(*v),
        WastArgCore::F32(v) => Val::F32(v.bits),
        WastArgCore::F64(v) => Val::F64(v.bits),
        WastArgCore::V128(v) => Val::V128(V128::from(u128::from_le_bytes(v.to_le_bytes()))),
        WastArgCore::RefNull(HeapType::Abstract {
            ty: AbstractHeapType::Func,
            ..
        }) => Val::FuncRef(None),
        WastArgCore::RefNull(HeapType::Abstract {
            ty: AbstractHeapType::Extern,
            ..
        }) => Val::ExternRef(None),
        WastArgCore::RefNull(HeapType::Abstract {
            ty: AbstractHeapType::Exn,
            ..
        }) => Val::ExnRef(None),
        // `ref.extern N` is a host value the script can recognize later.
        WastArgCore::RefExtern(n) => Val::ExternRef(Some(ExternRef::new(store, *n)?)),
        other => bail!("unsupported argument {other:?}"),
    })
}

/// Checks every result against its pattern.
pub(crate) fn check_results(
    store: &Store<()>,
    values: &[Val],
    expected: &[WastRet<'_>],
) -> anyhow::Result<()> {
    if values.len() != expected.len() {
        bail!("expected {} results, got {}", expected.len(), values.len());
    }
    for (i, (v, e)) in values.iter().zip(expected).enumerate() {
        let WastRet::Core(e) = e else {
            bail!("component-model results are not supported");
        };
        if !matches(store, v, e) {
            return Err(anyhow!("result {i}: expected {e:?}, got {v:?}"));
        }
    }
    Ok(())
}

fn matches(store: &Store<()>, v: &Val, e: &WastRetCore<'_>) -> bool {
    match (v, e) {
        (Val::I32(a), WastRetCore::I32(b)) => a == b,
        (Val::I64(a), WastRetCore::I64(b)) => a == b,
        (Val::F32(a), WastRetCore::F32(p)) => f32_matches(*a, p),
        (Val::F64(a), WastRetCore::F64(p)) => f64_matches(*a, p),
        (Val::V128(a), WastRetCore::V128(p)) => v128_matches(a.as_u128(), p),
        (Val::FuncRef(f), WastRetCore::RefNull(_)) => f.is_none(),
        (Val::FuncRef(f), WastRetCore::RefFunc(_)) => f.is_some(),
        (Val::ExternRef(r), WastRetCore::RefNull(_)) => r.is_none(),
        (Val::ExnRef(r), WastRetCore::RefNull(_)) => r.is_none(),
        (Val::ExternRef(r), WastRetCore::RefExtern(None)) => r.is_some(),
        (Val::ExternRef(Some(r)), WastRetCore::RefExtern(Some(n))) => {
            r.data(store)
                .ok()
                .flatten()
                .and_then(|d| d.downcast_ref::<u32>())
                == Some(n)
        }
        (v, WastRetCore::Either(options)) => options.iter().any(|e| matches(store, v, e)),
        _ => false,
    }
}

/// `nan:canonical` is the quiet NaN with an all-zero payload (either
/// sign); `nan:arithmetic` is any quiet NaN.
fn f32_matches(bits: u32, p: &NanPattern<wast::token::F32>) -> bool {
    match p {
        NanPattern::CanonicalNan => bits & 0x7fff_ffff == 0x7fc0_0000,
        NanPattern::ArithmeticNan => bits & 0x7fc0_0000 == 0x7fc0_0000,
        NanPattern::Value(v) => bits == v.bits,
    }
}

fn f64_matches(bits: u64, p: &NanPattern<wast::token::F64>) -> bool {
    match p {
        NanPattern::CanonicalNan => bits & 0x7fff_ffff_ffff_ffff == 0x7ff8_0000_0000_0000,
        NanPattern::ArithmeticNan => bits & 0x7ff8_0000_0000_0000 == 0x7ff8_0000_0000_0000,
        NanPattern::Value(v) => bits == v.bits,
    }
}

fn v128_matches(v: u128, p: &V128Pattern) -> bool {
    let bytes = v.to_le_bytes();
    let lane = |i: usize, n: usize| {
        let mut b = [0u8; 8];
        b[..n].copy_from_slice(&bytes[i * n..i * n + n]);
        u64::from_le_bytes(b)
    };
    match p {
        V128Pattern::I8x16(l) => l
            .iter()
            .enumerate()
            .all(|(i, x)| lane(i, 1) as u8 == *x as u8),
        V128Pattern::I16x8(l) => l
            .iter()
            .enumerate()
            .all(|(i, x)| lane(i, 2) as u16 == *x as u16),
        V128Pattern::I32x4(l) => l
            .iter()
            .enumerate()
            .all(|(i, x)| lane(i, 4) as u32 == *x as u32),
        V128Pattern::I64x2(l) => l.iter().enumerate().all(|(i, x)| lane(i, 8) == *x as u64),
        V128Pattern::F32x4(l) => l
            .iter()
            .enumerate()
            .all(|(i, p)| f32_matches(lane(i, 4) as u32, p)),
        V128Pattern::F64x2(l) => l
            .iter()
            .enumerate()
            .all(|(i, p)| f64_matches(lane(i, 8), p)),
    }
}
