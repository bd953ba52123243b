//! The official WASI preview 1 conformance suite (WebAssembly/wasi-testsuite,
//! its wasm32-wasip1 C, Rust and AssemblyScript tests) under `keel run`,
//! through `scripts/wasi-testsuite`: the suite's own Python runner with
//! Keel's adapter (`scripts/wasi-testsuite-adapter.py`).
//!
//! Every test must pass. Nothing here is skipped: a missing suite (see the
//! script for where it is looked for, or set `WASI_TESTSUITE`), a Python
//! that cannot be found or installed, or a test the runner skipped fails
//! this test with the runner's output.

use std::path::Path;
use std::process::Command;

/// How many tests the pinned suite has (`tests/*/testsuite/wasm32-wasip1`).
const TESTS: usize = 72;

#[test]
fn every_wasi_preview1_conformance_test_passes() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/wasi-testsuite");
    let out = Command::new("bash")
        .arg(&script)
        .env("KEEL", env!("CARGO_BIN_EXE_keel"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary = stdout.lines().last().unwrap_or_default();
    let expected = format!("wasi-testsuite: {TESTS} passed, 0 failed, 0 skipped");
    assert!(
        out.status.success() && summary == expected,
        "expected `{expected}`, got `{summary}` ({})\n\n{stdout}\n{stderr}",
        out.status,
    );
    println!("{summary}");
}
