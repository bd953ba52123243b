//! Golden tests of the translator: the Cranelift IR each function of
//! `tests/disas/*.wat` translates to, before Cranelift optimizes it, must
//! equal the `.clif` file beside it. A change to translation then shows in
//! review as a change to these files.
//!
//! After a deliberate change, rewrite the expected files with
//! `KEEL_BLESS=1 cargo test -p keel-cranelift --test disas` and read the
//! diff before committing it.
//!
//! A `.wat` file may start with `;;! fuel`, `;;! epoch` or both (on one
//! line) to translate with fuel or epoch checks on; `;;! epoch-signal`
//! checks epochs as where signals interrupt loops, `;;! fuel-register`
//! keeps fuel in the pinned register, `;;! memory64` enables 64-bit
//! memories and tables, `;;! custom-page-sizes` one-byte pages.

use keel_cranelift::{Compiler, CompilerSettings};
use keel_environ::ModuleParser;
use std::path::{Path, PathBuf};
use wasmparser::WasmFeatures;

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/disas");
    let mut wats: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/disas exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wat"))
        .collect();
    wats.sort();
    wats
}

fn translate(wat_path: &Path) -> String {
    let text = std::fs::read_to_string(wat_path).expect("readable .wat");
    let flags = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix(";;!"))
        .unwrap_or_default();
    let mut settings = CompilerSettings::default();
    settings.tunables.consume_fuel = flags.contains("fuel");
    settings.tunables.epoch_interruption = flags.contains("epoch");
    settings.tunables.epoch_by_signal = flags.contains("epoch-signal");
    settings.tunables.fuel_in_register = flags.contains("fuel-register");
    settings.tunables.fuel_yields = flags.contains("fuel-yields");
    let compiler = Compiler::new(settings).expect("a compiler for the host");
    let bytes = wat::parse_str(&text).expect("the .wat parses");
    // Keel's default features, and those the first line asks for.
    let mut features = WasmFeatures::WASM2
        | WasmFeatures::EXTENDED_CONST
        | WasmFeatures::MULTI_MEMORY
        | WasmFeatures::RELAXED_SIMD
        | WasmFeatures::FUNCTION_REFERENCES
        | WasmFeatures::TAIL_CALL
        | WasmFeatures::EXCEPTIONS;
    features.set(WasmFeatures::MEMORY64, flags.contains("memory64"));
    features.set(
        WasmFeatures::LEGACY_EXCEPTIONS,
        flags.contains("legacy-exceptions"),
    );
    features.set(
        WasmFeatures::CUSTOM_PAGE_SIZES,
        flags.contains("custom-page-sizes"),
    );
    let translation = ModuleParser::new(features)
        .parse(&bytes)
        .expect("the module is valid");
    compiler
        .translate_to_clif(translation)
        .expect("the module translates")
        .join("\n")
}

#[test]
fn translation_matches_the_golden_files() {
    let bless = std::env::var_os("KEEL_BLESS").is_some();
    let mut stale = Vec::new();
    let cases = cases();
    assert!(cases.len() >= 8, "the golden cases went missing");
    for wat in cases {
        let actual = translate(&wat);
        let expected_path = wat.with_extension("clif");
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if actual == expected {
            continue;
        }
        if bless {
            std::fs::write(&expected_path, &actual).expect("writable .clif");
        } else {
            let first_difference = actual
                .lines()
                .zip(expected.lines().chain(std::iter::repeat("<end of file>")))
                .enumerate()
                .find(|(_, (a, e))| a != e)
                .map(|(i, (a, e))| format!("line {}: expected `{e}`, got `{a}`", i + 1))
                .unwrap_or_else(|| "the expected file is longer".into());
            stale.push(format!("{}: {first_difference}", expected_path.display()));
        }
    }
    assert!(
        stale.is_empty(),
        "translation changed; if deliberate, rerun with KEEL_BLESS=1 and review the diff:\n{}",
        stale.join("\n")
    );
}
