//! A stand-in for `wasmtime run` on WASI preview 1 commands, built from the
//! `wasmtime` 48.0.8 and `wasmtime-wasi` crates this benchmark already
//! compares against (so that comparing Keel with Wasmtime does not need
//! the whole `wasmtime-cli` build). It behaves as `wasmtime run` does for a
//! core module: `--dir HOST[::GUEST]`, `--env NAME[=VAL]`, argv[0] is the
//! module's file name, stdio inherited, `proc_exit` code is the exit code,
//! a trap prints `Error: ...` and exits with 134.
//!
//! `scripts/compare-with-wasmtime --wasmtime target/release/wasmtime-run`
//! uses it; the real `wasmtime` binary works there too.

use std::path::Path;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).peekable();
    anyhow::ensure!(
        args.next().as_deref() == Some("run"),
        "usage: wasmtime-run run [--dir D] [--env E] MODULE [ARGS...]"
    );
    let mut wasi = WasiCtxBuilder::new();
    wasi.inherit_stdio();
    let module = loop {
        match args.next() {
            Some(flag) if flag == "--dir" => {
                let spec = args
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--dir needs a value"))?;
                let (host, guest) = spec.split_once("::").unwrap_or((&spec, &spec));
                wasi.preopened_dir(host, guest, FsPerms::ReadWrite)?;
            }
            Some(flag) if flag == "--env" => {
                let spec = args
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--env needs a value"))?;
                match spec.split_once('=') {
                    Some((k, v)) => wasi.env(k, v),
                    None => wasi.env(&spec, std::env::var(&spec).unwrap_or_default()),
                };
            }
            Some(module) => break module,
            None => anyhow::bail!("no module given"),
        }
    };
    let argv0 = Path::new(&module)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or(module.clone());
    wasi.arg(argv0);
    for a in args {
        wasi.arg(a);
    }
    let engine = wasmtime::Engine::default();
    let wasm = wasmtime::Module::from_file(&engine, &module)?;
    let mut linker = wasmtime::Linker::new(&engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |c| c)?;
    let mut store = wasmtime::Store::new(&engine, wasi.build_p1());
    let result = linker
        .instantiate(&mut store, &wasm)
        .and_then(|i| i.get_typed_func::<(), ()>(&mut store, "_start"))
        .and_then(|f| f.call(&mut store, ()));
    match result {
        Ok(()) => Ok(()),
        Err(e) => {
            if let Some(exit) = e.downcast_ref::<I32Exit>() {
                std::process::exit(exit.0);
            }
            if e.is::<wasmtime::Trap>() {
                eprintln!("Error: {e:?}");
                std::process::exit(134);
            }
            Err(anyhow::anyhow!("{e:?}"))
        }
    }
}
