//! A host program written for Wasmtime 48's async API
//! (`port/async_host.rs`: `func_wrap_async`, `instantiate_async`,
//! `call_async`, `epoch_deadline_async_yield_and_update`, cancellation by
//! dropping a call's future) compiles against Keel by renaming the crate,
//! and observes exactly what it observes under Wasmtime.
//!
//! The expected lines (`port/async_host.expected`) are Wasmtime's, as
//! printed by `cargo run --manifest-path bench/Cargo.toml --bin port-async`,
//! which checks them against Wasmtime itself.

extern crate keel as wasmtime;

#[path = "port/async_host.rs"]
mod async_host;

#[path = "port/compare.rs"]
mod compare;

#[test]
fn a_wasmtime_async_host_sees_what_it_sees_under_wasmtime() {
    let expected: Vec<&str> = include_str!("port/async_host.expected").lines().collect();
    let observed = async_host::run().expect("the program runs");
    let differences = compare::differences(&expected, &observed, "wasmtime", "keel");
    assert!(
        differences.is_empty(),
        "Keel differs from Wasmtime:\n{}",
        differences.join("\n")
    );
}
