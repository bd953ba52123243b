//! The `differential` target: see `keel_fuzzing::differential` for the oracle.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(finding) = keel_fuzzing::differential::run(data) {
        panic!("{finding}");
    }
});
