//! The `differential` oracle: run a module in Keel and in wasmi, call every
//! export with generated arguments, and compare everything observable.
//!
//! Compared, step by step: whether instantiation succeeds or how it traps;
//! each call's results (NaNs equal to any NaN; `v128` lanes likewise when
//! they hold NaNs) or trap kind; every host call with its arguments; the
//! host's memories, tables and globals; and at the end every exported
//! memory (bit for bit: generated modules canonicalize NaNs), table and
//! global. A stack overflow or fuel exhaustion on either side ends the
//! comparison without a verdict, since the engines' limits differ.
//!
//! The input is either `wasm-smith` DNA or, if it starts with `\0asm`, a
//! module used as is (the seed corpus holds the spec testsuite's modules).
//! Raw modules may loop forever: wasmi runs each step first, with fuel, and
//! Keel only runs what wasmi finished.
//!
//! A third of the cases also run in Keel with fuel and/or epoch
//! interruption, compared with the unmetered Keel run (see `metered.rs`).

use crate::generate::{Generated, KeelVariant, Purpose, keel_engine, keel_features};
use crate::host::{HostPlan, MAX_HOST_PAGES, MAX_HOST_TABLE, Provided, StoreBounds};
use crate::interface::ModuleInfo;
use crate::keel_side::KeelSide;
use crate::metered::{Metered, Metering};
use crate::pair::{Pair, Side};
use crate::rng::{Rng, hash_bytes};
use crate::value::Value;
use crate::wasmi_side::WasmiSide;
use crate::{Stats, Verdict};
use arbitrary::Unstructured;

/// Most calls per input: enough to reach state left by earlier calls,
/// few enough to keep executions fast.
const MAX_CALLS: usize = 40;

/// What to run, decoded from a fuzz input.
pub(crate) struct Case {
    pub wasm: Vec<u8>,
    pub seed: u64,
    pub variant: KeelVariant,
    /// NaNs were not canonicalized: tolerate NaN payloads in memories.
    pub raw: bool,
    /// For `instantiate`: imports in a hundred given a wrong definition.
    pub mismatch_in_100: u64,
    /// For `differential`: Keel runs again with fuel and/or epochs.
    pub metering: Option<Metering>,
    /// The limits both stores enforce (varied for `instantiate`).
    pub bounds: StoreBounds,
}

impl Case {
    /// Decodes `data`; `None` if it is too short to mean anything.
    pub(crate) fn decode(data: &[u8], purpose: Purpose) -> Option<Case> {
        let metering = |seed| match purpose {
            Purpose::Differential => Metering::choose(seed),
            Purpose::Instantiate => None,
        };
        let bounds = |seed| match purpose {
            Purpose::Differential => StoreBounds::DEFAULT,
            Purpose::Instantiate => StoreBounds::choose(seed),
        };
        if data.starts_with(b"\0asm") {
            let seed = hash_bytes(data);
            return Some(Case {
                wasm: data.to_vec(),
                seed,
                variant: KeelVariant::DEFAULT,
                raw: true,
                mismatch_in_100: if purpose == Purpose::Instantiate {
                    10
                } else {
                    0
                },
                metering: metering(seed),
                bounds: bounds(seed),
            });
        }
        let mut u = Unstructured::new(data);
        let seed = u.arbitrary().ok()?;
        let mut variant = KeelVariant::arbitrary(&mut u).ok()?;
        // Derived from the seed rather than read from the input, so that
        // saved inputs keep decoding to the same module.
        variant.pooling = seed % 3 == 0;
        let fuel = u.int_in_range(50..=2_000).ok()?;
        let mismatch_in_100 = match purpose {
            Purpose::Differential => 0,
            Purpose::Instantiate => u.int_in_range(0..=30).ok()?,
        };
        let generated = Generated::new(&mut u, purpose, fuel).ok()?;
        Some(Case {
            wasm: generated.wasm,
            seed,
            variant,
            raw: false,
            mismatch_in_100,
            metering: metering(seed),
            bounds: bounds(seed),
        })
    }

    /// Reads the module and compiles it in both engines. `Ok(None)` when
    /// there is nothing to compare: an invalid raw module, imports too
    /// large to provide, or a module wasmi cannot handle.
    ///
    /// `wasmi_wasm`, if given, is what the reference runs instead of the
    /// module: the same module with its `select`s rewritten.
    pub(crate) fn start(
        &self,
        rng: &mut Rng,
        wasmi_wasm: Option<&[u8]>,
    ) -> Result<Option<(Pair, HostPlan)>, crate::Finding> {
        let Ok(info) = ModuleInfo::read(&self.wasm, keel_features()) else {
            return Ok(None);
        };
        let plan = HostPlan::generate(&info.imports, rng, self.mismatch_in_100);
        if !affordable(&plan) {
            return Ok(None);
        }
        let keel = KeelSide::new(&keel_engine(self.variant), self.bounds)
            .asynchronous(self.variant.asynchronous);
        // wasmi lacks exception handling: a generated module that uses it
        // (which terminates by construction, as the reference must) runs
        // against Keel in another configuration instead.
        let (reference, wasmi_wasm): (Box<dyn Side>, _) =
            if !self.raw && uses_exceptions(&self.wasm) {
                let variant = reference_variant(self.variant);
                (
                    Box::new(KeelSide::new(&keel_engine(variant), self.bounds)),
                    None,
                )
            } else {
                (Box::new(WasmiSide::new(self.bounds)), wasmi_wasm)
            };
        let Some(mut pair) = Pair::compile(
            self.wasm.clone(),
            info,
            keel,
            reference,
            wasmi_wasm,
            self.raw,
        )?
        else {
            return Ok(None);
        };
        if let Some(plan) = self.metering {
            pair.attach_metered(Metered::new(self.variant, plan, self.seed))?;
        }
        Ok(Some((pair, plan)))
    }
}

/// Whether `wasm` needs exception handling (it does not validate without).
fn uses_exceptions(wasm: &[u8]) -> bool {
    let mut features = keel_features();
    features.remove(wasmparser::WasmFeatures::EXCEPTIONS);
    wasmparser::Validator::new_with_features(features)
        .validate_all(wasm)
        .is_err()
}

/// The configuration Keel runs a module with exceptions in as its own
/// reference: other code generation (optimization level, eager or lazy
/// compilation), no fuel or epochs, synchronous.
fn reference_variant(variant: KeelVariant) -> KeelVariant {
    KeelVariant {
        opt_level: if variant.opt_level == 0 { 2 } else { 0 },
        lazy: !variant.lazy,
        ..KeelVariant::DEFAULT
    }
}

/// Whether the host entities of `plan` are small enough to create and
/// compare (raw modules may import memories or tables of any size).
pub(crate) fn affordable(plan: &HostPlan) -> bool {
    plan.provided.iter().all(|p| match p {
        Provided::Memory { limits, .. } => limits.min <= 4 * MAX_HOST_PAGES,
        Provided::Table { limits, .. } => limits.min <= 10 * MAX_HOST_TABLE,
        _ => true,
    })
}

/// Calls exported functions with generated arguments: each once in export
/// order, then a random selection, at most [`MAX_CALLS`] in all.
pub(crate) fn call_exports(
    pair: &mut Pair,
    rng: &mut Rng,
    max_calls: usize,
) -> Result<(), crate::Finding> {
    let funcs = pair.exported_funcs();
    if funcs.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = funcs.iter().map(|(n, _)| n.clone()).collect();
    let order = (0..funcs.len())
        .chain(std::iter::repeat_with(|| rng.below(funcs.len() as u64) as usize).take(funcs.len()));
    let order: Vec<usize> = order.take(max_calls).collect();
    for i in order {
        if pair.stopped {
            break;
        }
        let (name, ty) = &funcs[i];
        let args: Vec<Value> = ty
            .params
            .iter()
            .map(|t| Value::arbitrary(*t, rng, &names))
            .collect();
        pair.call(name, &args)?;
    }
    Ok(())
}

/// Runs `check` on `case`; a divergence stands only if the reference,
/// running the same module with its `select` conditions routed through
/// locals, disagrees with Keel too (see `defuse.rs`).
pub(crate) fn with_second_opinion(
    case: &Case,
    check: impl Fn(&Case, Option<&[u8]>) -> Verdict,
) -> Verdict {
    let finding = match check(case, None) {
        Ok(stats) => return Ok(stats),
        Err(finding) => finding,
    };
    let Some(rewritten) = crate::defuse::route_select_conditions(&case.wasm) else {
        return Err(finding);
    };
    match check(case, Some(&rewritten)) {
        Ok(mut stats) => {
            stats.reference_bugs += 1;
            Ok(stats)
        }
        Err(_) => Err(finding),
    }
}

/// The oracle. `Err` is a divergence between Keel and wasmi.
pub fn run(data: &[u8]) -> Verdict {
    let Some(case) = Case::decode(data, Purpose::Differential) else {
        return Ok(Stats::default());
    };
    with_second_opinion(&case, run_case)
}

fn run_case(case: &Case, wasmi_wasm: Option<&[u8]>) -> Verdict {
    let mut rng = Rng::new(case.seed);
    let Some((mut pair, plan)) = case.start(&mut rng, wasmi_wasm)? else {
        return Ok(Stats::default());
    };
    if pair.instantiate(&plan)? {
        call_exports(&mut pair, &mut rng, MAX_CALLS)?;
        pair.check_exports("after the calls")?;
    }
    Ok(pair.stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Generated modules with exceptions are made often, and run (and are
    /// called) against Keel as the reference rather than skipped.
    #[test]
    fn modules_with_exceptions_run_against_keel() {
        let mut rng = Rng::new(0x2545_f491_4f6c_dd1d);
        let (mut cases, mut total) = (0, Stats::default());
        for _ in 0..150 {
            let len = 512 + (rng.next_u64() % 4096) as usize;
            let data: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            let Some(case) = Case::decode(&data, Purpose::Differential) else {
                continue;
            };
            if !uses_exceptions(&case.wasm) {
                continue;
            }
            cases += 1;
            let stats = run_case(&case, None).unwrap_or_else(|f| panic!("{f}"));
            total.instantiated += stats.instantiated;
            total.calls_compared += stats.calls_compared;
        }
        assert!(cases >= 15, "{cases} modules with exceptions");
        assert!(
            total.instantiated >= 10 && total.calls_compared >= 50,
            "{total:?}"
        );
    }
}
