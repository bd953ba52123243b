//! The `parse_compile` target: see `keel_fuzzing::parse_compile` for the oracle.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(finding) = keel_fuzzing::parse_compile::run(data) {
        panic!("{finding}");
    }
});
