//! Comparing what a ported host program observed with what it observes
//! under Wasmtime (its `.expected` lines): shared by the `port_*` tests and
//! the benchmark's `port-*` binaries, which run the same programs on
//! Wasmtime itself.

/// One message per line where `observed` differs from `expected`, naming
/// the two sides `expected_side` and `observed_side`.
pub fn differences(
    expected: &[&str],
    observed: &[String],
    expected_side: &str,
    observed_side: &str,
) -> Vec<String> {
    (0..expected.len().max(observed.len()))
        .filter_map(|i| {
            let (e, o) = (
                expected.get(i).copied(),
                observed.get(i).map(String::as_str),
            );
            (e != o).then(|| {
                format!(
                    "line {}:\n  {expected_side}: {e:?}\n  {observed_side}: {o:?}",
                    i + 1
                )
            })
        })
        .collect()
}
