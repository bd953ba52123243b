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

const EXPECTED: &str = include_str!("../../../crates/keel/tests/port/async_host.expected");

fn main() {
    let lines = match async_host::run() {
        Ok(lines) => lines,
        Err(e) => {
            eprintln!("the program failed under Wasmtime: {e:?}");
            std::process::exit(2);
        }
    };
    for line in &lines {
        println!("{line}");
    }
    let expected: Vec<&str> = EXPECTED.lines().collect();
    if lines
        .iter()
        .map(String::as_str)
        .eq(expected.iter().copied())
    {
        eprintln!("port-async: Wasmtime's lines match async_host.expected");
        return;
    }
    for i in 0..lines.len().max(expected.len()) {
        let (w, e) = (lines.get(i).map(String::as_str), expected.get(i).copied());
        if w != e {
            eprintln!("line {}:\n  wasmtime: {w:?}\n  expected: {e:?}", i + 1);
        }
    }
    eprintln!("port-async: Wasmtime's lines differ from async_host.expected");
    std::process::exit(1);
}
