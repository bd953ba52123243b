//! The one mapping between Keel's trap kinds and Cranelift's trap codes.

use cranelift_codegen::ir::TrapCode;
use keel_environ::TrapKind;

/// The Cranelift trap code generated code uses for `kind`. Kinds Cranelift
/// has its own code for use it (its lowering emits those itself); the rest
/// are user codes numbered after the kind's encoding.
pub fn trap_code(kind: TrapKind) -> TrapCode {
    match kind {
        TrapKind::StackOverflow => TrapCode::STACK_OVERFLOW,
        TrapKind::MemoryOutOfBounds => TrapCode::HEAP_OUT_OF_BOUNDS,
        TrapKind::IntegerOverflow => TrapCode::INTEGER_OVERFLOW,
        TrapKind::IntegerDivisionByZero => TrapCode::INTEGER_DIVISION_BY_ZERO,
        TrapKind::BadConversionToInteger => TrapCode::BAD_CONVERSION_TO_INTEGER,
        other => TrapCode::unwrap_user(other.as_u8() + 1),
    }
}

/// The trap kind behind a trap code found in compiled code.
pub fn trap_kind(code: TrapCode) -> Option<TrapKind> {
    match code {
        TrapCode::STACK_OVERFLOW => Some(TrapKind::StackOverflow),
        TrapCode::HEAP_OUT_OF_BOUNDS => Some(TrapKind::MemoryOutOfBounds),
        TrapCode::INTEGER_OVERFLOW => Some(TrapKind::IntegerOverflow),
        TrapCode::INTEGER_DIVISION_BY_ZERO => Some(TrapKind::IntegerDivisionByZero),
        TrapCode::BAD_CONVERSION_TO_INTEGER => Some(TrapKind::BadConversionToInteger),
        other => TrapKind::from_u8(other.as_raw().get().checked_sub(1)?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips() {
        for kind in TrapKind::ALL {
            assert_eq!(trap_kind(trap_code(kind)), Some(kind));
        }
    }
}
