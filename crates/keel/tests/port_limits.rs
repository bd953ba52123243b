//! A host program written for Wasmtime 48 (`port/limits_host.rs`: fuel,
//! epoch deadlines with a callback, store limits) compiles against Keel by
//! renaming the crate, and observes exactly what it observes under Wasmtime.
//!
//! The expected lines (`port/limits_host.expected`) are Wasmtime's, as
//! printed by `cargo run --manifest-path bench/Cargo.toml --bin port-limits`,
//! which checks them against Wasmtime itself.
//!
//! Keel differs on purpose in one respect, listed in [`DELIBERATE`]: the
//! least fuel with which a guest completes. Wasmtime checks fuel only at
//! function entries and loop headers, so a guest may finish having spent
//! more than it was given (`count(10)` completes on 65 and spends 72), or
//! need one unit more than it spends. Keel checks every charge, so a guest
//! completes exactly when its fuel covers what it spends.

extern crate keel as wasmtime;

#[path = "port/limits_host.rs"]
mod limits_host;

#[path = "port/compare.rs"]
mod compare;

/// Lines (1-based) where Keel prints something else than Wasmtime on
/// purpose, and what it prints.
const DELIBERATE: &[(usize, &str)] = &[
    (
        10,
        "fuel needed: count(10) completes on 72 (0 left), spends 72",
    ),
    (
        11,
        "fuel needed: fill(100) completes on 105 (0 left), spends 105",
    ),
    (
        12,
        "fuel needed: fill(10) completes on 15 (0 left), spends 15",
    ),
    (13, "fuel needed: grow(0) completes on 3 (0 left), spends 3"),
    (
        14,
        "fuel needed: charged(0) completes on 3 (0 left), spends 3",
    ),
];

#[test]
fn a_wasmtime_host_bounding_guests_sees_what_it_sees_under_wasmtime() {
    let mut expected: Vec<&str> = include_str!("port/limits_host.expected").lines().collect();
    for &(line, keel) in DELIBERATE {
        // A listed line must be one where the engines do differ.
        assert_ne!(expected[line - 1], keel, "line {line} is not a difference");
        expected[line - 1] = keel;
    }
    let observed = limits_host::run().expect("the program runs");
    let differences = compare::differences(&expected, &observed, "wasmtime", "keel");
    assert!(
        differences.is_empty(),
        "Keel differs from Wasmtime:\n{}",
        differences.join("\n")
    );
}
