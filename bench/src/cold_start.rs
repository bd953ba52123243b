//! Cold starts of WASI programs, from bytes to output: `wasi/hello-end-to-end`
//! and, for a big program, `first-output/`, `first-call/` and
//! `first-call-eager/`.

use crate::{Engines, measure, median, only, report};
use std::time::{Duration, Instant};

/// When a cold run's output came.
struct ColdRun {
    /// Everything the program wrote to stdout.
    output: Vec<u8>,
    /// From the start (the bytes in hand) to its first byte of output.
    first_output: Duration,
    /// From the start to the end of `_start`.
    end: Duration,
}

/// Watches `contents` from another thread and returns, when joined, how
/// long after `start` it first held anything.
fn watch_first_output(
    start: Instant,
    contents: impl Fn() -> bool + Send + 'static,
) -> std::thread::JoinHandle<Duration> {
    std::thread::spawn(move || {
        while !contents() {
            std::thread::sleep(Duration::from_micros(100));
        }
        start.elapsed()
    })
}

/// Compiles `wasm` with `engine`, links WASI with captured stdout,
/// instantiates and runs `_start`.
fn keel_wasi_run(engine: &keel::Engine, wasm: &[u8], name: &str) -> anyhow::Result<ColdRun> {
    let start = Instant::now();
    let out = keel_wasi::MemoryOutputPipe::new();
    let watched = out.clone();
    let watcher = watch_first_output(start, move || !watched.contents().is_empty());
    let module = keel::Module::new(engine, wasm)?;
    let ctx = keel_wasi::WasiCtx::builder()
        .args(&[name])
        .stdout(keel_wasi::OutputStream::Memory(out.clone()))
        .build()?;
    let mut linker = keel::Linker::new(engine);
    keel_wasi::add_to_linker(&mut linker, |c: &mut keel_wasi::WasiCtx| c)?;
    let mut store = keel::Store::new(engine, ctx);
    let instance = linker.instantiate(&mut store, &module)?;
    instance
        .get_typed_func::<(), ()>(&mut store, "_start")?
        .call(&mut store, ())?;
    let end = start.elapsed();
    let output = out.contents();
    anyhow::ensure!(!output.is_empty(), "{name} printed nothing");
    let first_output = watcher.join().expect("the watcher does not panic");
    Ok(ColdRun {
        output,
        first_output,
        end,
    })
}

/// [`keel_wasi_run`] with Wasmtime.
fn wasmtime_wasi_run(
    engine: &wasmtime::Engine,
    wasm: &[u8],
    name: &str,
) -> anyhow::Result<ColdRun> {
    use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
    let start = Instant::now();
    let out = MemoryOutputPipe::new(1 << 20);
    let watched = out.clone();
    let watcher = watch_first_output(start, move || !watched.contents().is_empty());
    let module = wasmtime::Module::new(engine, wasm)?;
    let ctx = wasmtime_wasi::WasiCtxBuilder::new()
        .args(&[name])
        .stdout(out.clone())
        .build_p1();
    let mut linker = wasmtime::Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |c| c)?;
    let mut store = wasmtime::Store::new(engine, ctx);
    let instance = linker.instantiate(&mut store, &module)?;
    instance
        .get_typed_func::<(), ()>(&mut store, "_start")?
        .call(&mut store, ())?;
    let end = start.elapsed();
    let output = out.contents().to_vec();
    anyhow::ensure!(!output.is_empty(), "{name} printed nothing");
    let first_output = watcher.join().expect("the watcher does not panic");
    Ok(ColdRun {
        output,
        first_output,
        end,
    })
}

/// `wasi/hello-end-to-end`: what a serverless host pays per cold request,
/// from bytes to output: compile a C hello-world, link WASI with captured
/// stdout, instantiate, run `_start`.
pub fn bench_wasi_hello(e: &Engines) -> anyhow::Result<()> {
    let wasm = keel_test_programs::compile("hello", keel_test_programs::Target::Wasi, &["-O2"]);
    if only().is_none() {
        let a = keel_wasi_run(&e.keel, &wasm, "hello")?.output;
        let b = wasmtime_wasi_run(&e.wasmtime, &wasm, "hello")?.output;
        anyhow::ensure!(
            a == b"Hello, world!\n" && a == b,
            "hello: keel printed {a:?}, wasmtime {b:?}"
        );
    }
    let (kt, wt) = measure(
        21,
        || {
            keel_wasi_run(&e.keel, &wasm, "hello").expect("keel runs hello");
        },
        || {
            wasmtime_wasi_run(&e.wasmtime, &wasm, "hello").expect("wasmtime runs hello");
        },
    );
    report("wasi/hello-end-to-end", kt, wt, "us");
    Ok(())
}

/// A cold start of a big WASI program, Keel compiling lazily against
/// Wasmtime compiling eagerly: `first-output/<name>` (bytes to the first
/// byte on stdout) and `first-call/<name>` (bytes to the end of `_start`);
/// `first-call-eager/<name>` is Keel compiling eagerly too.
pub fn bench_first_call(e: &Engines, name: &str, wasm: &[u8]) -> anyhow::Result<()> {
    let mut config = keel::Config::new();
    config.lazy_compilation(true);
    let lazy = keel::Engine::new(&config)?;
    let rounds = 5;
    let (mut lazy_runs, mut eager_runs, mut wasmtime_runs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        if only().is_none_or(|o| o == "keel") {
            lazy_runs.push(keel_wasi_run(&lazy, wasm, name)?);
            eager_runs.push(keel_wasi_run(&e.keel, wasm, name)?);
        }
        if only().is_none_or(|o| o == "wasmtime") {
            wasmtime_runs.push(wasmtime_wasi_run(&e.wasmtime, wasm, name)?);
        }
    }
    if only().is_some() {
        return Ok(());
    }
    for runs in [&lazy_runs, &eager_runs] {
        anyhow::ensure!(
            runs.iter().all(|r| r.output == wasmtime_runs[0].output),
            "{name}: keel printed {:?}, wasmtime {:?}",
            String::from_utf8_lossy(&runs[0].output),
            String::from_utf8_lossy(&wasmtime_runs[0].output)
        );
    }
    let first = |runs: &[ColdRun]| median(runs.iter().map(|r| r.first_output).collect());
    let end = |runs: &[ColdRun]| median(runs.iter().map(|r| r.end).collect());
    report(
        &format!("first-output/{name}"),
        first(&lazy_runs),
        first(&wasmtime_runs),
        "ms",
    );
    report(
        &format!("first-call/{name}"),
        end(&lazy_runs),
        end(&wasmtime_runs),
        "ms",
    );
    report(
        &format!("first-call-eager/{name}"),
        end(&eager_runs),
        end(&wasmtime_runs),
        "ms",
    );
    Ok(())
}
