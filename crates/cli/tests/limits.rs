//! `keel run`'s limits, as a user meets them: a looping or greedy guest is
//! stopped with one line naming the limit, and the documented exit status.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Exit status of a guest stopped by a command-line limit (README).
const LIMIT_EXIT: i32 = 124;

fn keel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keel"))
        .args(args)
        .output()
        .expect("keel runs")
}

fn module(name: &str, wat: &str) -> String {
    let dir = std::env::temp_dir().join(format!("keel-limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join(name);
    std::fs::write(&path, wat).unwrap();
    path.to_string_lossy().into_owned()
}

fn spinner() -> String {
    module(
        "spin.wat",
        r#"(module (memory (export "memory") 1) (func (export "_start") (loop (br 0))))"#,
    )
}

fn first_line(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_timeout_stops_a_looping_guest_within_two_seconds() {
    let spin = spinner();
    for (flags, named) in [
        (vec!["--timeout", "1s"], "(--timeout)"),
        (vec!["-W", "timeout=1s"], "(-W timeout)"),
    ] {
        let mut args = vec!["run"];
        args.extend(flags.iter().copied());
        args.push(&spin);
        let start = Instant::now();
        let out = keel(&args);
        let took = start.elapsed();
        assert!(took < Duration::from_secs(2), "{flags:?} took {took:?}");
        assert!(
            took >= Duration::from_millis(900),
            "{flags:?} took {took:?}"
        );
        assert_eq!(out.status.code(), Some(LIMIT_EXIT), "{flags:?}");
        assert_eq!(
            first_line(&out),
            format!("error: the guest ran past its 1s timeout {named}")
        );
    }
}

#[test]
fn fuel_stops_a_looping_guest() {
    let spin = spinner();
    for (flags, named) in [
        (["--fuel", "100000"], "100000 units of fuel (--fuel)"),
        (["-W", "fuel=100000"], "100000 units of fuel (-W fuel)"),
    ] {
        let out = keel(&["run", flags[0], flags[1], &spin]);
        assert_eq!(out.status.code(), Some(LIMIT_EXIT), "{flags:?}");
        assert_eq!(
            first_line(&out),
            format!("error: the guest ran out of its {named}")
        );
    }
}

#[test]
fn a_guest_finishes_within_its_limits() {
    let quick = module(
        "quick.wat",
        r#"(module (func (export "add") (param i32 i32) (result i32)
             (i32.add (local.get 0) (local.get 1))))"#,
    );
    let out = keel(&[
        "run",
        "--fuel",
        "1000",
        "--timeout",
        "10s",
        "--max-memory",
        "1MiB",
        "--invoke",
        "add",
        &quick,
        "2",
        "3",
    ]);
    assert!(out.status.success(), "{}", first_line(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "5");
}

#[test]
fn memory_limits_refuse_or_trap() {
    // Grows until refused, then returns; the exit code reports how many
    // pages it got.
    let grower = module(
        "grow.wat",
        r#"(module
             (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
             (memory (export "memory") 1)
             (func (export "_start")
               (loop (br_if 0 (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
               (call $exit (memory.size))))"#,
    );
    // Refused growth is -1, as the specification wants: 1 MiB is 16 pages.
    let out = keel(&["run", "--max-memory", "1MiB", &grower]);
    assert_eq!(out.status.code(), Some(16), "{}", first_line(&out));
    let out = keel(&["run", "-W", "max-memory-size=131072", &grower]);
    assert_eq!(out.status.code(), Some(2), "{}", first_line(&out));
    // With trap-on-grow-failure the guest stops instead.
    let out = keel(&[
        "run",
        "--max-memory",
        "1MiB",
        "-W",
        "trap-on-grow-failure",
        &grower,
    ]);
    assert_eq!(out.status.code(), Some(LIMIT_EXIT));
    assert_eq!(
        first_line(&out),
        "error: the guest grew past its memory or table limit of 1MiB (--max-memory) \
         (-W trap-on-grow-failure)"
    );
    // A module whose initial memory is already too big does not start.
    let big = module(
        "big.wat",
        r#"(module (memory 32) (func (export "_start")))"#,
    );
    let out = keel(&["run", "--max-memory", "1MiB", &big]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        first_line(&out).contains("--max-memory 1MiB"),
        "{}",
        first_line(&out)
    );
}

#[test]
fn bad_limit_flags_are_one_line_errors() {
    let spin = spinner();
    for (flags, expect) in [
        (["-W", "bogus=1"], "unknown option `-W bogus`"),
        (["-W", "fuel"], "`-W fuel` needs a value"),
        (
            ["--timeout", "2weeks"],
            "invalid value `2weeks` for `--timeout`",
        ),
        (
            ["--max-memory", "lots"],
            "invalid value `lots` for `--max-memory`",
        ),
        (["-W", "max-instances=0"], "instance limit of 0"),
    ] {
        let out = keel(&["run", flags[0], flags[1], &spin]);
        assert_eq!(out.status.code(), Some(1), "{flags:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{flags:?}: {stderr}");
        assert!(stderr.contains(expect), "{flags:?}: {stderr}");
    }
}
