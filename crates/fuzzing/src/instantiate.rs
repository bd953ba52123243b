//! The `instantiate` oracle: instantiate a generated module with generated
//! imports, some of them deliberately wrong, in Keel and in wasmi.
//!
//! Both engines must agree on whether linking fails, and both must agree
//! with the spec's import matching rules (exact function and global types,
//! limits within limits). When linking succeeds they must agree on how
//! data and element segments initialize memories and tables (including
//! the partial writes an out-of-bounds segment leaves in imported memories
//! and tables), on the start function's host calls, and on every export's
//! state. A second instance of the same module in the same store follows,
//! with another set of imports.

use crate::differential::{Case, call_exports};
use crate::generate::Purpose;
use crate::host::HostPlan;
use crate::rng::Rng;
use crate::{Stats, Verdict};

/// Calls after each successful instantiation: segment-initialized state
/// is what is under test here, the calls only touch it.
const CALLS_PER_INSTANCE: usize = 4;

/// The oracle. `Err` is a divergence between Keel and wasmi, or between
/// both and the spec's linking rules.
pub fn run(data: &[u8]) -> Verdict {
    let Some(case) = Case::decode(data, Purpose::Instantiate) else {
        return Ok(Stats::default());
    };
    crate::differential::with_second_opinion(&case, run_case)
}

fn run_case(case: &Case, wasmi_wasm: Option<&[u8]>) -> Verdict {
    let mut rng = Rng::new(case.seed);
    let Some((mut pair, plan)) = case.start(&mut rng, wasmi_wasm)? else {
        return Ok(Stats::default());
    };
    if pair.instantiate(&plan)? {
        call_exports(&mut pair, &mut rng, CALLS_PER_INSTANCE)?;
        pair.check_exports("after the calls")?;
    }
    if !pair.stopped {
        let second = HostPlan::generate(&pair.info.imports, &mut rng, case.mismatch_in_100);
        if crate::differential::affordable(&second) && pair.instantiate(&second)? {
            pair.check_exports("of the second instance")?;
        }
    }
    Ok(pair.stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::KeelVariant;
    use crate::host::StoreBounds;

    /// Both engines' limiters refuse a module whose initial memory or table
    /// is past the case's bounds, and accept it within them: the oracle
    /// compares limit enforcement, not only linking.
    #[test]
    fn both_engines_enforce_the_cases_store_bounds() {
        let wasm = wat::parse_str("(module (memory 2) (table 5 funcref))").unwrap();
        let bounded = |pages: usize, elements: usize| {
            let case = Case {
                wasm: wasm.clone(),
                seed: 1,
                variant: KeelVariant::DEFAULT,
                raw: true,
                mismatch_in_100: 0,
                metering: None,
                bounds: StoreBounds {
                    memory_bytes: pages * 65536,
                    table_elements: elements,
                },
            };
            let mut rng = Rng::new(case.seed);
            let (mut pair, plan) = case.start(&mut rng, None).unwrap().unwrap();
            pair.instantiate(&plan).unwrap()
        };
        assert!(bounded(2, 5), "within the bounds");
        assert!(!bounded(1, 5), "memory past the bound");
        assert!(!bounded(2, 4), "table past the bound");
        // The chooser gives both generous and tight bounds.
        let chosen: Vec<_> = (0..64).map(StoreBounds::choose).collect();
        assert!(chosen.contains(&StoreBounds::DEFAULT));
        assert!(chosen.iter().any(|b| b.memory_bytes < 16 * 65536));
    }
}
