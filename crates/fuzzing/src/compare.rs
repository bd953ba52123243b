//! What an engine did, in terms both engines share, and when two such
//! accounts agree.

use crate::interface::FuncTy;
use crate::value::{Value, show, values_agree};
use std::fmt;

/// Why wasm trapped. Stack overflow and running out of fuel are not here:
/// the engines' limits differ, so those are [`Failure::Exhausted`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TrapKind {
    Unreachable,
    MemoryOutOfBounds,
    TableOutOfBounds,
    IndirectCallToNull,
    BadSignature,
    IntegerOverflow,
    IntegerDivisionByZero,
    BadConversionToInteger,
    NullReference,
    /// A wasm exception no handler caught.
    UncaughtException,
}

/// How an operation failed.
#[derive(Clone, Debug)]
pub(crate) enum Failure {
    /// A wasm trap.
    Trap(TrapKind),
    /// A host function failed on purpose (its import index).
    Host(u32),
    /// Refused before running anything: a linking error, or any error that
    /// is neither a trap nor a host failure.
    Rejected(String),
    /// Out of stack, fuel or memory: where engines may legitimately differ.
    Exhausted(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Trap(k) => write!(f, "trap {k:?}"),
            Failure::Host(i) => write!(f, "host function {i} failed"),
            Failure::Rejected(m) => write!(f, "error: {m}"),
            Failure::Exhausted(m) => write!(f, "exhausted: {m}"),
        }
    }
}

/// The result of one operation in one engine.
pub(crate) type Outcome<T> = Result<T, Failure>;

/// Whether two outcomes of the same operation agree.
#[derive(Debug)]
pub(crate) enum Agreement {
    Agree,
    /// One side exhausted a resource: nothing after this can be compared.
    Inconclusive,
    Diverge(String),
}

/// Compares outcomes; `same` compares successes.
pub(crate) fn agree<T>(
    keel: &Outcome<T>,
    wasmi: &Outcome<T>,
    show_ok: impl Fn(&T) -> String,
    same: impl Fn(&T, &T) -> bool,
) -> Agreement {
    let shown = |o: &Outcome<T>| match o {
        Ok(v) => format!("ok {}", show_ok(v)),
        Err(e) => e.to_string(),
    };
    let verdict = match (keel, wasmi) {
        (Err(Failure::Exhausted(_)), _) | (_, Err(Failure::Exhausted(_))) => {
            return Agreement::Inconclusive;
        }
        (Ok(a), Ok(b)) => same(a, b),
        (Err(Failure::Trap(a)), Err(Failure::Trap(b))) => a == b,
        (Err(Failure::Host(a)), Err(Failure::Host(b))) => a == b,
        (Err(Failure::Rejected(_)), Err(Failure::Rejected(_))) => true,
        _ => false,
    };
    if verdict {
        Agreement::Agree
    } else {
        Agreement::Diverge(format!(
            "keel: {}\nwasmi (reference): {}",
            shown(keel),
            shown(wasmi)
        ))
    }
}

/// Results of a call.
pub(crate) fn results_agree(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| values_agree(x, y))
}

/// The observable state of one entity.
#[derive(Clone, Debug)]
pub(crate) enum State {
    Global(Value),
    Memory {
        pages: u64,
        bytes: Vec<u8>,
    },
    Table(Vec<Value>),
    Func(FuncTy),
    /// An exception tag, by the type of what its exceptions carry.
    Tag(FuncTy),
    /// The engine has no such entity (an export it does not report).
    Absent,
}

/// Named entity states, in a fixed order.
pub(crate) type Snapshot = Vec<(String, State)>;

/// The first difference between two snapshots taken the same way.
/// `lenient_nans` accepts memory words where both sides hold some NaN
/// (used when the module's NaNs were not canonicalized).
pub(crate) fn diff_snapshots(
    keel: &Snapshot,
    wasmi: &Snapshot,
    lenient_nans: bool,
) -> Option<String> {
    if keel.len() != wasmi.len() {
        return Some(format!(
            "{} entities in keel, {} in wasmi",
            keel.len(),
            wasmi.len()
        ));
    }
    for ((name, a), (_, b)) in keel.iter().zip(wasmi) {
        if let Some(d) = diff_state(a, b, lenient_nans) {
            return Some(format!("{name}: {d}"));
        }
    }
    None
}

fn diff_state(a: &State, b: &State, lenient_nans: bool) -> Option<String> {
    match (a, b) {
        (State::Global(x), State::Global(y)) => {
            (!values_agree(x, y)).then(|| format!("keel {x}, wasmi {y}"))
        }
        (State::Func(x), State::Func(y)) => (x != y).then(|| format!("keel {x}, wasmi {y}")),
        (State::Tag(x), State::Tag(y)) => {
            (x != y).then(|| format!("keel tag {x}, reference tag {y}"))
        }
        (State::Table(x), State::Table(y)) => {
            if x.len() != y.len() {
                return Some(format!("table size: keel {}, wasmi {}", x.len(), y.len()));
            }
            x.iter()
                .zip(y)
                .position(|(p, q)| !values_agree(p, q))
                .map(|i| format!("element {i}: keel {}, wasmi {}", x[i], y[i]))
        }
        (
            State::Memory {
                pages: pa,
                bytes: ba,
            },
            State::Memory {
                pages: pb,
                bytes: bb,
            },
        ) => {
            if pa != pb || ba.len() != bb.len() {
                return Some(format!("memory size: keel {pa} pages, wasmi {pb} pages"));
            }
            first_memory_difference(ba, bb, lenient_nans).map(|o| {
                let window = |m: &[u8]| m[o..(o + 8).min(m.len())].to_vec();
                format!(
                    "memory differs at offset {o:#x}: keel {:02x?}, wasmi {:02x?}",
                    window(ba),
                    window(bb)
                )
            })
        }
        (State::Absent, State::Absent) => None,
        _ => Some(format!("different kinds: keel {a:?}, wasmi {b:?}")),
    }
}

fn nan_word(m: &[u8], at: usize, width: usize) -> bool {
    let Some(w) = m.get(at..at + width) else {
        return false;
    };
    if width == 4 {
        f32::from_le_bytes(w.try_into().unwrap_or_default()).is_nan()
    } else {
        f64::from_le_bytes(w.try_into().unwrap_or_default()).is_nan()
    }
}

fn first_memory_difference(a: &[u8], b: &[u8], lenient_nans: bool) -> Option<usize> {
    let mut from = 0;
    while from < a.len() {
        // Compare in chunks first: memories are mostly equal.
        let o = from + a[from..].iter().zip(&b[from..]).position(|(x, y)| x != y)?;
        if !lenient_nans {
            return Some(o);
        }
        let skip = [4, 8].into_iter().find_map(|w| {
            let at = o & !(w - 1);
            (nan_word(a, at, w) && nan_word(b, at, w)).then_some(at + w)
        });
        match skip {
            Some(next) => from = next,
            None => return Some(o),
        }
    }
    None
}

/// Host calls, compared call by call.
pub(crate) fn diff_host_calls(
    keel: &[crate::host::HostCall],
    wasmi: &[crate::host::HostCall],
) -> Option<String> {
    for (i, (a, b)) in keel.iter().zip(wasmi).enumerate() {
        if a.import != b.import || !results_agree(&a.args, &b.args) {
            return Some(format!(
                "host call {i}: keel called import {} with {}, wasmi import {} with {}",
                a.import,
                show(&a.args),
                b.import,
                show(&b.args)
            ));
        }
    }
    (keel.len() != wasmi.len()).then(|| {
        format!(
            "{} host calls in keel, {} in wasmi",
            keel.len(),
            wasmi.len()
        )
    })
}
