//! The body of the `port-*` binaries: run a ported host program on
//! Wasmtime, print its lines, and check them against the `.expected` file
//! that Keel's `port_*` test holds Keel to. Exits with 1 if they differ,
//! 2 if the program fails.

#[path = "../../crates/keel/tests/port/compare.rs"]
mod compare;

/// Runs `program` (named `name`, expected to print `expected`, the
/// contents of `expected_file`) and exits as above.
pub fn check<E: std::fmt::Debug>(
    name: &str,
    expected_file: &str,
    expected: &str,
    program: impl FnOnce() -> Result<Vec<String>, E>,
) {
    let lines = match program() {
        Ok(lines) => lines,
        Err(e) => {
            eprintln!("the program failed under Wasmtime: {e:?}");
            std::process::exit(2);
        }
    };
    for line in &lines {
        println!("{line}");
    }
    let expected: Vec<&str> = expected.lines().collect();
    let differences = compare::differences(&expected, &lines, "expected", "wasmtime");
    if differences.is_empty() {
        eprintln!("{name}: Wasmtime's lines match {expected_file}");
        return;
    }
    for d in differences {
        eprintln!("{d}");
    }
    eprintln!("{name}: Wasmtime's lines differ from {expected_file}");
    std::process::exit(1);
}
