//! Why execution stopped.

use std::fmt;

/// The kind of a WebAssembly trap. Generated code records one of these for
/// every instruction that may fault; the runtime reports it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum TrapKind {
    /// The wasm stack limit was reached.
    StackOverflow = 0,
    /// A load or store outside linear memory, or a bulk memory operation
    /// whose range leaves it.
    MemoryOutOfBounds = 1,
    /// A misaligned atomic access.
    HeapMisaligned = 2,
    /// An access outside a table (also `call_indirect` past its end).
    TableOutOfBounds = 3,
    /// `call_indirect` found a null entry.
    IndirectCallToNull = 4,
    /// `call_indirect` found a function of another signature.
    BadSignature = 5,
    /// Signed division overflow (`INT_MIN / -1`) or an out-of-range float
    /// to integer conversion.
    IntegerOverflow = 6,
    /// Integer division or remainder by zero.
    IntegerDivisionByZero = 7,
    /// Float to integer conversion of NaN.
    BadConversionToInteger = 8,
    /// The `unreachable` instruction.
    UnreachableCodeReached = 9,
    /// The epoch deadline passed and the store was configured to trap.
    Interrupt = 10,
    /// The store ran out of fuel.
    OutOfFuel = 11,
    /// A null reference was dereferenced.
    NullReference = 12,
    /// A host hook called by generated code (a resource limiter, an epoch
    /// deadline callback) failed; the store keeps its error, which the call
    /// returns in place of this kind.
    HostError = 13,
    /// An epoch check that loads from the store's interrupt page (see
    /// `Tunables::epoch_by_signal`). A fault here is not a trap of its
    /// own: the runtime asks the store what to do at the deadline and either
    /// resumes at the check or traps with `Interrupt`.
    EpochCheck = 14,
    /// A wasm exception that no handler caught reached the host: the store
    /// keeps the exception (`Store::take_pending_exception`).
    UncaughtException = 15,
}

impl TrapKind {
    /// Every kind, in encoding order.
    pub const ALL: [TrapKind; 16] = [
        TrapKind::StackOverflow,
        TrapKind::MemoryOutOfBounds,
        TrapKind::HeapMisaligned,
        TrapKind::TableOutOfBounds,
        TrapKind::IndirectCallToNull,
        TrapKind::BadSignature,
        TrapKind::IntegerOverflow,
        TrapKind::IntegerDivisionByZero,
        TrapKind::BadConversionToInteger,
        TrapKind::UnreachableCodeReached,
        TrapKind::Interrupt,
        TrapKind::OutOfFuel,
        TrapKind::NullReference,
        TrapKind::HostError,
        TrapKind::EpochCheck,
        TrapKind::UncaughtException,
    ];

    /// Decodes [`TrapKind::as_u8`].
    pub fn from_u8(byte: u8) -> Option<TrapKind> {
        Self::ALL.get(usize::from(byte)).copied()
    }

    /// The byte stored in trap tables.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// The message, worded as the WebAssembly specification's test scripts
    /// word it where they have a word for it.
    pub fn message(self) -> &'static str {
        match self {
            TrapKind::StackOverflow => "call stack exhausted",
            TrapKind::MemoryOutOfBounds => "out of bounds memory access",
            TrapKind::HeapMisaligned => "misaligned memory access",
            TrapKind::TableOutOfBounds => "out of bounds table access",
            TrapKind::IndirectCallToNull => "uninitialized element",
            TrapKind::BadSignature => "indirect call type mismatch",
            TrapKind::IntegerOverflow => "integer overflow",
            TrapKind::IntegerDivisionByZero => "integer divide by zero",
            TrapKind::BadConversionToInteger => "invalid conversion to integer",
            TrapKind::UnreachableCodeReached => "wasm `unreachable` instruction executed",
            TrapKind::Interrupt => "interrupt",
            TrapKind::OutOfFuel => "all fuel consumed by WebAssembly",
            TrapKind::NullReference => "null reference",
            TrapKind::HostError => "a host hook failed",
            TrapKind::EpochCheck => "interrupt",
            TrapKind::UncaughtException => "uncaught wasm exception",
        }
    }
}

impl fmt::Display for TrapKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips() {
        for kind in TrapKind::ALL {
            assert_eq!(TrapKind::from_u8(kind.as_u8()), Some(kind));
        }
        assert_eq!(TrapKind::from_u8(TrapKind::ALL.len() as u8), None);
    }
}
