//! Runs the Wasmtime host program of `crates/keel/tests/port/limits_host.rs`
//! (fuel, epoch deadlines, store limits) on the `wasmtime` crate, prints the
//! lines it observes, and checks them against
//! `crates/keel/tests/port/limits_host.expected`, the lines Keel's test
//! `port_limits` requires of Keel. Exits with 1 if they differ.
//!
//! ```sh
//! cargo run --release --manifest-path bench/Cargo.toml --bin port-limits
//! ```

#[path = "../../../crates/keel/tests/port/limits_host.rs"]
mod limits_host;

#[path = "../port_check.rs"]
mod port_check;

const EXPECTED: &str = include_str!("../../../crates/keel/tests/port/limits_host.expected");

fn main() {
    port_check::check(
        "port-limits",
        "limits_host.expected",
        EXPECTED,
        limits_host::run,
    );
}
