//! The `wasi_iovec` target: see `keel_fuzzing::wasi_iovec` for the oracle.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(finding) = keel_fuzzing::wasi_iovec::run(data) {
        panic!("{finding}");
    }
});
