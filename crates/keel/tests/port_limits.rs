//! A host program written for Wasmtime 48 (`port/limits_host.rs`: fuel,
//! epoch deadlines with a callback, store limits) compiles against Keel by
//! renaming the crate, and observes exactly what it observes under Wasmtime.
//!
//! The expected lines (`port/limits_host.expected`) are Wasmtime's, as
//! printed by `cargo run --manifest-path bench/Cargo.toml --bin port-limits`,
//! which checks them against Wasmtime itself.

extern crate keel as wasmtime;

#[path = "port/limits_host.rs"]
mod limits_host;

#[test]
fn a_wasmtime_host_bounding_guests_sees_what_it_sees_under_wasmtime() {
    let expected: Vec<&str> = include_str!("port/limits_host.expected").lines().collect();
    let observed = limits_host::run().expect("the program runs");
    let differences: Vec<String> = (0..expected.len().max(observed.len()))
        .filter_map(|i| {
            let (e, o) = (
                expected.get(i).copied(),
                observed.get(i).map(String::as_str),
            );
            (e != o).then(|| format!("line {}:\n  wasmtime: {e:?}\n  keel:     {o:?}", i + 1))
        })
        .collect();
    assert!(
        differences.is_empty(),
        "Keel differs from Wasmtime:\n{}",
        differences.join("\n")
    );
}
