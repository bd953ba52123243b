//! The host side of a test: what each import is satisfied with, and how
//! host functions behave.
//!
//! A [`HostPlan`] is engine-neutral data; each engine builds its own
//! functions, globals, memories and tables from it, so both see the same
//! host. Host functions are deterministic (their results depend only on
//! their seed, their arguments and how often they were called), record
//! every call, and may be told to fail on their n-th call.

use crate::interface::{ExternTy, FuncTy, Import, Limits, ValTy};
use crate::rng::{Rng, mix};
use crate::value::Value;
use std::fmt;

/// Most pages a host memory starts with: keeps memories cheap to compare.
pub(crate) const MAX_HOST_PAGES: u32 = 16;
/// Most elements a host table starts with.
pub(crate) const MAX_HOST_TABLE: u32 = 1_000;
/// Bytes either engine lets one memory grow to (the store limiter's bound).
pub(crate) const MEMORY_LIMIT_BYTES: usize = 256 * 65536;
/// Elements either engine lets one table grow to.
pub(crate) const TABLE_LIMIT: usize = 10_000;

/// The resource limits both engines' stores enforce (a `StoreLimits` each),
/// at instantiation (initial sizes) and at every growth.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoreBounds {
    /// Largest size of any memory, in bytes.
    pub memory_bytes: usize,
    /// Largest size of any table, in elements.
    pub table_elements: usize,
}

impl StoreBounds {
    /// Generous bounds that only keep a run cheap.
    pub(crate) const DEFAULT: StoreBounds = StoreBounds {
        memory_bytes: MEMORY_LIMIT_BYTES,
        table_elements: TABLE_LIMIT,
    };

    /// For `instantiate`: half the cases get the default bounds, the other
    /// half bounds small enough that initial sizes and growth meet them
    /// (0 to 256 pages, 0 to 10,000 elements), chosen from the case's seed
    /// so that a saved input keeps its bounds.
    pub(crate) fn choose(seed: u64) -> StoreBounds {
        let mut rng = crate::rng::Rng::new(seed ^ 0x5bd1_e995_1b87_3593);
        if rng.next_u64().is_multiple_of(2) {
            return StoreBounds::DEFAULT;
        }
        let pages = (rng.next_u64() % 257) as usize;
        let elements = match rng.next_u64() % 4 {
            0 => 0,
            1 => (rng.next_u64() % 16) as usize,
            _ => (rng.next_u64() % (TABLE_LIMIT as u64 + 1)) as usize,
        };
        StoreBounds {
            memory_bytes: pages * 65536,
            table_elements: elements,
        }
    }
}

/// The error a host function returns when the plan tells it to fail; its
/// number is the import's index, so that both engines can be checked to
/// have failed in the same place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HostTrap(pub u32);

impl fmt::Display for HostTrap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "host function {} failed on purpose", self.0)
    }
}

impl std::error::Error for HostTrap {}

impl wasmi::errors::HostError for HostTrap {}

/// One call of a host function, as the host saw it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct HostCall {
    pub import: u32,
    pub args: Vec<Value>,
}

/// What one import is given.
#[derive(Clone, Debug)]
pub(crate) enum Provided {
    Func {
        ty: FuncTy,
        seed: u64,
        /// Fail with [`HostTrap`] on this call (0-based) of this function.
        fail_on_call: Option<usize>,
    },
    Global {
        ty: ValTy,
        mutable: bool,
        value: Value,
    },
    /// A memory whose first bytes are filled from `seed` (so that reads of
    /// imported memory see something other than zeros).
    Memory { limits: Limits, seed: u64 },
    Table {
        elem: ValTy,
        limits: Limits,
        init: Value,
    },
    /// Nothing: the import is left undefined.
    Missing,
}

impl Provided {
    /// The type of what is provided, `None` if nothing is.
    pub(crate) fn ty(&self) -> Option<ExternTy> {
        Some(match self {
            Provided::Func { ty, .. } => ExternTy::Func(ty.clone()),
            Provided::Global { ty, mutable, .. } => ExternTy::Global {
                ty: *ty,
                mutable: *mutable,
            },
            Provided::Memory { limits, .. } => ExternTy::Memory(*limits),
            Provided::Table { elem, limits, .. } => ExternTy::Table {
                elem: *elem,
                limits: *limits,
            },
            Provided::Missing => return None,
        })
    }

    /// The bytes a host memory starts with, at offset 0.
    pub(crate) fn memory_prefix(seed: u64) -> Vec<u8> {
        let mut rng = Rng::new(seed);
        (0..64).map(|_| rng.next_u64() as u8).collect()
    }
}

/// How every import of a module is satisfied.
#[derive(Clone, Debug)]
pub(crate) struct HostPlan {
    pub provided: Vec<Provided>,
    /// Resolve imports by name through a `Linker` (rather than by position).
    pub by_name: bool,
}

impl HostPlan {
    /// A plan for `imports`. With `mismatch_in_100 > 0`, that many imports in
    /// a hundred get a definition of another type, other limits or none
    /// at all, to exercise linking errors.
    pub(crate) fn generate(imports: &[Import], rng: &mut Rng, mismatch_in_100: u64) -> HostPlan {
        let provided = imports
            .iter()
            .map(|import| {
                if rng.chance(mismatch_in_100, 100) {
                    mismatched(&import.ty, rng)
                } else {
                    matching(&import.ty, rng)
                }
            })
            .collect();
        HostPlan {
            provided,
            by_name: rng.chance(1, 2),
        }
    }

    /// Whether instantiation must get past linking: every import is
    /// defined with a type that matches.
    pub(crate) fn links(&self, imports: &[Import]) -> bool {
        imports
            .iter()
            .zip(&self.provided)
            .all(|(import, p)| p.ty().is_some_and(|t| t.matches(&import.ty)))
    }

    /// The definitions passed by position: everything before the first
    /// missing one (a short list is itself a linking error).
    pub(crate) fn positional_len(&self) -> usize {
        self.provided
            .iter()
            .position(|p| matches!(p, Provided::Missing))
            .unwrap_or(self.provided.len())
    }
}

/// The results of a host function for one call.
pub(crate) fn host_results(
    seed: u64,
    call: usize,
    args: &[Value],
    results: &[ValTy],
) -> Vec<Value> {
    let h = args
        .iter()
        .fold(mix(seed, call as u64), |h, a| mix(h, a.digest()));
    results
        .iter()
        .enumerate()
        .map(|(i, ty)| Value::from_seed(*ty, mix(h, i as u64)))
        .collect()
}

/// How many times import `import` was called before, according to `calls`.
pub(crate) fn calls_of(import: u32, calls: &[HostCall]) -> usize {
    calls.iter().filter(|c| c.import == import).count()
}

fn host_limits(expected: Limits, cap: u32, rng: &mut Rng) -> Limits {
    let room = expected.max.unwrap_or(u32::MAX).min(cap.max(expected.min));
    let min = expected.min.saturating_add(rng.below(3) as u32).min(room);
    let max = match expected.max {
        Some(m) => Some(min + rng.below(u64::from(m - min) + 1) as u32),
        None if rng.chance(1, 2) => None,
        None => Some(min.saturating_add(rng.below(4) as u32)),
    };
    Limits { min, max }
}

fn value_of(ty: ValTy, rng: &mut Rng) -> Value {
    Value::from_seed(ty, rng.next_u64())
}

fn matching(ty: &ExternTy, rng: &mut Rng) -> Provided {
    match ty {
        ExternTy::Func(f) => Provided::Func {
            ty: f.clone(),
            seed: rng.next_u64(),
            fail_on_call: rng.chance(1, 8).then(|| rng.below(3) as usize),
        },
        ExternTy::Global { ty, mutable } => Provided::Global {
            ty: *ty,
            mutable: *mutable,
            value: value_of(*ty, rng),
        },
        ExternTy::Memory(l) => Provided::Memory {
            limits: host_limits(*l, MAX_HOST_PAGES, rng),
            seed: rng.next_u64(),
        },
        ExternTy::Table { elem, limits } => Provided::Table {
            elem: *elem,
            limits: host_limits(*limits, MAX_HOST_TABLE, rng),
            init: value_of(*elem, rng),
        },
    }
}

const VAL_TYS: [ValTy; 7] = [
    ValTy::I32,
    ValTy::I64,
    ValTy::F32,
    ValTy::F64,
    ValTy::V128,
    ValTy::FuncRef,
    ValTy::ExternRef,
];

/// A definition that is likely (not certain: the oracle computes the
/// expected verdict from the types) not to match `ty`.
fn mismatched(ty: &ExternTy, rng: &mut Rng) -> Provided {
    let other_kind = |rng: &mut Rng| {
        let kinds = [
            ExternTy::Func(FuncTy {
                params: vec![],
                results: vec![],
            }),
            ExternTy::Global {
                ty: ValTy::I32,
                mutable: false,
            },
            ExternTy::Memory(Limits { min: 1, max: None }),
            ExternTy::Table {
                elem: ValTy::FuncRef,
                limits: Limits { min: 1, max: None },
            },
        ];
        matching(&kinds[rng.below(4) as usize], rng)
    };
    match rng.below(4) {
        0 => return Provided::Missing,
        1 => return other_kind(rng),
        _ => {}
    }
    let mut p = matching(ty, rng);
    match &mut p {
        Provided::Func { ty, .. } => match rng.below(3) {
            0 => ty.params.push(rng.pick(&VAL_TYS)),
            1 if !ty.results.is_empty() => ty.results[0] = rng.pick(&VAL_TYS),
            _ => ty.results.push(rng.pick(&VAL_TYS)),
        },
        Provided::Global {
            ty, mutable, value, ..
        } => {
            if rng.chance(1, 2) {
                *mutable = !*mutable;
            } else {
                *ty = rng.pick(&VAL_TYS);
                *value = value_of(*ty, rng);
            }
        }
        Provided::Memory { limits, .. } | Provided::Table { limits, .. } => match rng.below(3) {
            0 => limits.min = limits.min.saturating_sub(1 + rng.below(2) as u32),
            1 => limits.max = None,
            _ => limits.max = Some(limits.max.unwrap_or(limits.min).saturating_add(1)),
        },
        Provided::Missing => {}
    }
    if let Provided::Table { elem, init, .. } = &mut p
        && rng.chance(1, 3)
    {
        *elem = if *elem == ValTy::FuncRef {
            ValTy::ExternRef
        } else {
            ValTy::FuncRef
        };
        *init = Value::from_seed(*elem, 0);
    }
    if let Provided::Memory { limits, .. } | Provided::Table { limits, .. } = &mut p {
        // Whatever was changed, the definition itself must be valid.
        if limits.max.is_some_and(|m| m < limits.min) {
            limits.max = Some(limits.min);
        }
    }
    p
}
