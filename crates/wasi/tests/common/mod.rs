//! Running WASI programs in tests.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use keel::{Engine, Linker, Module, Store};
use keel_wasi::{I32Exit, MemoryOutputPipe, OutputStream, WasiCtx, WasiCtxBuilder};
use std::path::PathBuf;
use std::sync::OnceLock;

/// One engine for the whole test binary.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(Engine::default)
}

/// How a program ended.
#[derive(Debug)]
pub struct Outcome {
    /// `Some(code)` for a normal return (0) or `proc_exit(code)`.
    pub exit: Option<i32>,
    /// The error, if it ended any other way.
    pub error: Option<String>,
    /// What it wrote to stdout.
    pub stdout: String,
    /// What it wrote to stderr.
    pub stderr: String,
}

impl Outcome {
    /// Panics with the output unless every `CHECK` passed and the program
    /// exited with `code`.
    pub fn assert_passed(&self, code: i32) {
        let failed: Vec<&str> = self
            .stdout
            .lines()
            .filter(|l| l.starts_with("FAIL"))
            .collect();
        assert!(
            failed.is_empty(),
            "failed checks:\n{}\n\nstdout:\n{}",
            failed.join("\n"),
            self.stdout
        );
        assert_eq!(self.exit, Some(code), "{self:#?}");
        assert!(
            self.stdout.lines().any(|l| l == "0 failures"),
            "{}",
            self.stdout
        );
    }
}

/// Runs `wasm`'s `_start` with the context `builder` describes (its stdout
/// and stderr are captured).
pub fn run(wasm: &[u8], builder: &mut WasiCtxBuilder) -> Outcome {
    let out = MemoryOutputPipe::new();
    let err = MemoryOutputPipe::new();
    builder.stdout(OutputStream::Memory(out.clone()));
    builder.stderr(OutputStream::Memory(err.clone()));
    let module = Module::new(engine(), wasm).expect("module compiles");
    let mut linker = Linker::new(engine());
    keel_wasi::add_to_linker(&mut linker, |c: &mut WasiCtx| c).unwrap();
    let mut store = Store::new(engine(), builder.build().unwrap());
    let result = linker
        .instantiate(&mut store, &module)
        .and_then(|i| i.get_typed_func::<(), ()>(&mut store, "_start"))
        .and_then(|f| f.call(&mut store, ()));
    let (exit, error) = match result {
        Ok(()) => (Some(0), None),
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(I32Exit(code)) => (Some(*code), None),
            None => (None, Some(format!("{e:#}"))),
        },
    };
    Outcome {
        exit,
        error,
        stdout: String::from_utf8_lossy(&out.contents()).into_owned(),
        stderr: String::from_utf8_lossy(&err.contents()).into_owned(),
    }
}

/// A fresh scratch directory.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keel-wasi-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A C program from `crates/test-programs/programs`, built for WASI.
pub fn program(name: &str) -> Vec<u8> {
    keel_test_programs::compile(name, keel_test_programs::Target::Wasi, &["-O2"])
}
