//! The `instantiate` target: see `keel_fuzzing::instantiate` for the oracle.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(finding) = keel_fuzzing::instantiate::run(data) {
        panic!("{finding}");
    }
});
