//! `keel`: run and precompile WebAssembly modules (with a compile cache),
//! and run spec test scripts.
//!
//! Flags follow `wasmtime run` where they overlap. Errors print one line
//! (`error: ...`), a trap adds its wasm backtrace, and the exit status is
//! non-zero: 124 for a guest stopped by a limit set on the command line
//! (`--timeout`, `--fuel`, `-W trap-on-grow-failure`), 134 for any other
//! trap (as `wasmtime run` on Unix), 1 otherwise.

// One `unsafe` block, in `run.rs`: loading an artifact the user vouched
// for with `--allow-precompiled`.
#![deny(unsafe_code)]

mod cache;
mod compile;
mod limits;
mod run;
mod wast;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// A fast, sandboxed WebAssembly runtime.
#[derive(Parser)]
#[command(name = "keel", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a WebAssembly module.
    Run(run::RunCommand),
    /// Compile a WebAssembly module into a precompiled artifact.
    Compile(compile::CompileCommand),
    /// Inspect or empty the compile cache of `keel run`.
    #[command(subcommand)]
    Cache(cache::CacheCommand),
    /// Run WebAssembly spec test scripts (.wast).
    Wast(wast::WastCommand),
}

/// Exit status for a trap, as `wasmtime run` uses on Unix (SIGABRT).
pub const TRAP_EXIT_CODE: u8 = 134;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(cmd) => cmd.execute(),
        Command::Compile(cmd) => cmd.execute(),
        Command::Cache(cmd) => cmd.execute(),
        Command::Wast(cmd) => cmd.execute(),
    };
    match result {
        Ok(code) => code,
        Err(e) => report_error(&e),
    }
}

/// Prints an error: one line, plus the wasm backtrace for a trap.
fn report_error(e: &anyhow::Error) -> ExitCode {
    if let Some(limit) = e.downcast_ref::<limits::LimitExceeded>() {
        eprintln!("error: {limit}");
        if let Some(bt) = e.downcast_ref::<keel::WasmBacktrace>() {
            eprintln!("{bt}");
        }
        return ExitCode::from(limits::LIMIT_EXIT_CODE);
    }
    if let Some(trap) = e.downcast_ref::<keel::Trap>() {
        eprintln!("error: {trap}");
        if let Some(bt) = e.downcast_ref::<keel::WasmBacktrace>() {
            eprintln!("{bt}");
        }
        return ExitCode::from(TRAP_EXIT_CODE);
    }
    // A host error raised while wasm ran still carries a backtrace as its
    // outermost context; print the cause on the first line.
    if let Some(bt) = e.downcast_ref::<keel::WasmBacktrace>() {
        let causes: Vec<String> = e.chain().skip(1).map(|c| c.to_string()).collect();
        eprintln!("error: {}", causes.join(": "));
        eprintln!("{bt}");
        return ExitCode::from(TRAP_EXIT_CODE);
    }
    eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
    ExitCode::FAILURE
}
