//! The `wasi_paths` target: see `keel_fuzzing::wasi_paths` for the oracle.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(finding) = keel_fuzzing::wasi_paths::run(data) {
        panic!("{finding}");
    }
});
