//! Runs the Wasmtime host program of `crates/keel/tests/port/async_host.rs`
//! (async host functions, async calls, epoch yields, cancellation) on the `wasmtime` crate, prints the
//! lines it observes, and checks them against
//! `crates/keel/tests/port/async_host.expected`, the lines Keel's test
//! `port_async` requires of Keel. Exits with 1 if they differ.
//!
//! ```sh
//! cargo run --release --manifest-path bench/Cargo.toml --bin port-async
//! ```

#[path = "../../../crates/keel/tests/port/async_host.rs"]
mod async_host;

#[path = "../port_check.rs"]
mod port_check;

const EXPECTED: &str = include_str!("../../../crates/keel/tests/port/async_host.expected");

fn main() {
    port_check::check(
        "port-async",
        "async_host.expected",
        EXPECTED,
        async_host::run,
    );
}
