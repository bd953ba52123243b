//! Traps as values: a [`Trap`] kind plus a [`WasmBacktrace`].
//!
//! A call that traps returns an [`Error`](crate::Error) from which both can
//! be read with `downcast_ref`, as with Wasmtime:
//!
//! ```
//! # fn main() -> keel::Result<()> {
//! let engine = keel::Engine::default();
//! let module = keel::Module::new(&engine, r#"(module (func (export "f") unreachable))"#)?;
//! let mut store = keel::Store::new(&engine, ());
//! let instance = keel::Instance::new(&mut store, &module, &[])?;
//! let f = instance.get_typed_func::<(), ()>(&mut store, "f")?;
//! let err = f.call(&mut store, ()).unwrap_err();
//! assert_eq!(err.downcast_ref::<keel::Trap>(), Some(&keel::Trap::UnreachableCodeReached));
//! assert_eq!(err.downcast_ref::<keel::WasmBacktrace>().unwrap().frames().len(), 1);
//! # Ok(())
//! # }
//! ```

use crate::vm::code_registry;
use crate::vm::traphandlers::{TrapRecord, UnwindReason};
use keel_environ::{FuncIndex, TrapKind};
use std::fmt;

/// Why WebAssembly execution trapped.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Trap {
    /// The wasm stack limit was reached.
    StackOverflow,
    /// An access outside linear memory.
    MemoryOutOfBounds,
    /// A misaligned atomic access.
    HeapMisaligned,
    /// An access outside a table.
    TableOutOfBounds,
    /// `call_indirect` of a null entry.
    IndirectCallToNull,
    /// `call_indirect` of a function with another signature.
    BadSignature,
    /// Integer overflow (division, or conversion out of range).
    IntegerOverflow,
    /// Integer division or remainder by zero.
    IntegerDivisionByZero,
    /// Conversion of NaN to an integer.
    BadConversionToInteger,
    /// The `unreachable` instruction.
    UnreachableCodeReached,
    /// Interrupted by the epoch deadline.
    Interrupt,
    /// The store ran out of fuel.
    OutOfFuel,
    /// A null reference was used.
    NullReference,
}

impl Trap {
    pub(crate) fn from_kind(kind: TrapKind) -> Trap {
        match kind {
            TrapKind::StackOverflow => Trap::StackOverflow,
            TrapKind::MemoryOutOfBounds => Trap::MemoryOutOfBounds,
            TrapKind::HeapMisaligned => Trap::HeapMisaligned,
            TrapKind::TableOutOfBounds => Trap::TableOutOfBounds,
            TrapKind::IndirectCallToNull => Trap::IndirectCallToNull,
            TrapKind::BadSignature => Trap::BadSignature,
            TrapKind::IntegerOverflow => Trap::IntegerOverflow,
            TrapKind::IntegerDivisionByZero => Trap::IntegerDivisionByZero,
            TrapKind::BadConversionToInteger => Trap::BadConversionToInteger,
            TrapKind::UnreachableCodeReached => Trap::UnreachableCodeReached,
            TrapKind::Interrupt => Trap::Interrupt,
            TrapKind::OutOfFuel => Trap::OutOfFuel,
            // A failed host hook whose error went missing: not expected, and
            // the nearest kind is the one that stops wasm on the host's word.
            TrapKind::HostError | TrapKind::EpochCheck => Trap::Interrupt,
            _ => Trap::NullReference,
        }
    }

    fn kind(self) -> TrapKind {
        match self {
            Trap::StackOverflow => TrapKind::StackOverflow,
            Trap::MemoryOutOfBounds => TrapKind::MemoryOutOfBounds,
            Trap::HeapMisaligned => TrapKind::HeapMisaligned,
            Trap::TableOutOfBounds => TrapKind::TableOutOfBounds,
            Trap::IndirectCallToNull => TrapKind::IndirectCallToNull,
            Trap::BadSignature => TrapKind::BadSignature,
            Trap::IntegerOverflow => TrapKind::IntegerOverflow,
            Trap::IntegerDivisionByZero => TrapKind::IntegerDivisionByZero,
            Trap::BadConversionToInteger => TrapKind::BadConversionToInteger,
            Trap::UnreachableCodeReached => TrapKind::UnreachableCodeReached,
            Trap::Interrupt => TrapKind::Interrupt,
            Trap::OutOfFuel => TrapKind::OutOfFuel,
            Trap::NullReference => TrapKind::NullReference,
        }
    }
}

impl fmt::Display for Trap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "wasm trap: {}", self.kind().message())
    }
}

impl std::error::Error for Trap {}

/// One wasm frame of a backtrace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    module_name: Option<String>,
    func_index: u32,
    func_name: Option<String>,
    module_offset: Option<usize>,
}

impl FrameInfo {
    /// Index of the function in its module's function index space.
    pub fn func_index(&self) -> u32 {
        self.func_index
    }
    /// The function's name from the name section.
    pub fn func_name(&self) -> Option<&str> {
        self.func_name.as_deref()
    }
    /// The module's name from the name section.
    pub fn module_name(&self) -> Option<&str> {
        self.module_name.as_deref()
    }
    /// Byte offset in the module of the instruction executing in this frame.
    pub fn module_offset(&self) -> Option<usize> {
        self.module_offset
    }
}

/// The wasm frames active when a trap happened, innermost first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WasmBacktrace {
    frames: Vec<FrameInfo>,
    elided: usize,
}

impl WasmBacktrace {
    /// The frames, innermost first.
    pub fn frames(&self) -> &[FrameInfo] {
        &self.frames
    }

    /// Resolves recorded program counters to frames.
    fn from_pcs(pcs: &[usize], first_pc_is_fault: bool, elided: usize) -> WasmBacktrace {
        let frames = pcs
            .iter()
            .enumerate()
            .filter_map(|(i, &pc)| {
                // A return address points after the call; look up the call.
                let pc = if i == 0 && first_pc_is_fault {
                    pc
                } else {
                    pc - 1
                };
                let code = code_registry::lookup(pc)?;
                let (func, offset) = code.lookup_frame(pc)?;
                Some(FrameInfo {
                    module_name: code.module.name().map(str::to_string),
                    func_index: func.as_u32(),
                    func_name: code
                        .module
                        .func_name(FuncIndex::from_u32(func.as_u32()))
                        .map(str::to_string),
                    module_offset: offset.map(|o| o as usize),
                })
            })
            .collect();
        WasmBacktrace { frames, elided }
    }
}

impl fmt::Display for WasmBacktrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("wasm backtrace:")?;
        for (i, frame) in self.frames.iter().enumerate() {
            write!(f, "\n  {i:>3}: ")?;
            if let Some(offset) = frame.module_offset {
                write!(f, "{offset:#8x} - ")?;
            }
            match &frame.module_name {
                Some(m) => write!(f, "{m}!")?,
                None => f.write_str("<module>!")?,
            }
            match &frame.func_name {
                Some(name) => f.write_str(name)?,
                None => write!(f, "<wasm function {}>", frame.func_index)?,
            }
        }
        if self.elided > 0 {
            write!(f, "\n       ... {} more frames", self.elided)?;
        }
        Ok(())
    }
}

/// The wasm backtrace of what the runtime recorded.
pub(crate) fn backtrace_of(record: &TrapRecord) -> WasmBacktrace {
    WasmBacktrace::from_pcs(&record.pcs, record.first_pc_is_fault, record.frames_elided)
}

/// Turns what the runtime recorded into the error the API returns. A
/// panic in a host function resumes here, back in the host.
#[allow(
    clippy::boxed_local,
    reason = "traps arrive boxed to keep call results small"
)]
pub(crate) fn from_record(record: Box<TrapRecord>) -> crate::Error {
    let backtrace = backtrace_of(&record);
    match record.reason {
        UnwindReason::Trap(kind) => anyhow::Error::new(Trap::from_kind(kind)).context(backtrace),
        UnwindReason::User(error) => {
            if error.is::<Trap>() || error.is::<WasmBacktrace>() {
                error
            } else {
                error.context(backtrace)
            }
        }
        UnwindReason::Panic(payload) => std::panic::resume_unwind(payload),
    }
}

/// A trap raised outside wasm code (segment initialization), without frames.
pub(crate) fn trap_error(kind: TrapKind) -> crate::Error {
    anyhow::Error::new(Trap::from_kind(kind))
}
