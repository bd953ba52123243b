//! Instantiation and call figures: what a host pays per fresh instance
//! (`instantiate/...`), per call across the boundary (`call/...`), and in
//! resident memory for many idle instances (`rss/...`).

use crate::{measure, only, report_secs};
use std::time::Duration;

/// `instantiate/data1m`: a 1 MiB active data segment, a 1,000-entry funcref
/// table filled by an element segment, and 50 functions.
pub fn data1m_wat() -> String {
    let mut wat = String::from("(module\n  (memory (export \"memory\") 17)\n");
    for i in 0..50 {
        wat.push_str(&format!(
            "  (func $f{i} (export \"f{i}\") (param i32) (result i32) (i32.add (local.get 0) (i32.const {i})))\n"
        ));
    }
    wat.push_str("  (table (export \"table\") 1000 funcref)\n  (elem (i32.const 0) func");
    for i in 0..1000 {
        wat.push_str(&format!(" $f{}", i % 50));
    }
    wat.push_str(")\n  (data (i32.const 1024) \"");
    // 1 MiB of varied bytes, as a program's static data would be.
    for i in 0..(1 << 20) {
        wat.push_str(&format!("\\{:02x}", (i * 7 + i / 251) as u8));
    }
    wat.push_str("\")\n)\n");
    wat
}

/// `instantiate/big`: the shape of a big program (an interpreter built for
/// WASI): 10,000 functions, a 5,000-entry funcref table filled by an
/// element segment, 40,000 active data segments holding 7 MB. Generated,
/// so that the figure needs no toolchain; its costs are the ones that grow
/// with a module's size.
pub fn big_wat() -> String {
    const FUNCS: usize = 10_000;
    let mut wat = String::from("(module\n  (memory (export \"memory\") 128)\n");
    for i in 0..FUNCS {
        let callee = (i * 7 + 3) % FUNCS;
        wat.push_str(&format!(
            "  (func $f{i} (param i32) (result i32) (if (result i32) (i32.eqz (local.get 0)) (then (i32.const {i})) (else (call $f{callee} (i32.sub (local.get 0) (i32.const 1))))))\n"
        ));
    }
    wat.push_str("  (export \"f0\" (func $f0))\n");
    wat.push_str("  (table (export \"table\") 5000 funcref)\n  (elem (i32.const 0) func");
    for i in 0..5000 {
        wat.push_str(&format!(" $f{}", (i * 2) % FUNCS));
    }
    wat.push_str(")\n");
    for seg in 0..40_000usize {
        wat.push_str(&format!("  (data (i32.const {}) \"", 1024 + seg * 176));
        for b in 0..175usize {
            wat.push_str(&format!("\\{:02x}", (seg * 31 + b * 7) as u8));
        }
        wat.push_str("\")\n");
    }
    wat.push_str(")\n");
    wat
}

/// Times `iters` calls of `keel` and of `wasmtime` per round, alternately,
/// and returns the median time of one call, in seconds.
pub(crate) fn per_iteration(
    rounds: usize,
    iters: u32,
    mut keel: impl FnMut(),
    mut wasmtime: impl FnMut(),
) -> (f64, f64) {
    let iters = if only().is_some() { 1 } else { iters * 100 };
    let (k, w) = measure(
        rounds,
        || (0..iters).for_each(|_| keel()),
        || (0..iters).for_each(|_| wasmtime()),
    );
    (seconds_per(k, iters), seconds_per(w, iters))
}

pub(crate) fn seconds_per(total: Duration, iters: u32) -> f64 {
    total.as_secs_f64() / f64::from(iters)
}

pub(crate) fn keel_engine(pooling: bool) -> anyhow::Result<keel::Engine> {
    let mut config = keel::Config::new();
    if pooling {
        config.allocation_strategy(keel::InstanceAllocationStrategy::pooling());
    }
    keel::Engine::new(&config)
}

pub(crate) fn wasmtime_engine(pooling: bool) -> anyhow::Result<wasmtime::Engine> {
    let mut config = wasmtime::Config::new();
    if pooling {
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::pooling());
    }
    Ok(wasmtime::Engine::new(&config)?)
}

/// `instantiate/<name>/{default,pooling}`: a fresh store and an instance
/// from an `InstancePre`, dropped again, as a host does per request. The
/// modules have no imports. With `call` (an export of type `i32 -> i32`),
/// also `instantiate-call/<name>/...`: the same with one call of it, so
/// that guest code has run in the store when it is dropped (a pooled slot
/// whose tenant never ran is returned without a reset; one that ran is
/// reset in full).
pub fn bench_instantiate(
    name: &str,
    wasm: &[u8],
    call: Option<&str>,
    filter: &str,
) -> anyhow::Result<()> {
    let with_call = call.map(|export| ("instantiate-call", Some(export)));
    for (figure_kind, export) in std::iter::once(("instantiate", None)).chain(with_call) {
        for pooling in [false, true] {
            let figure = format!(
                "{figure_kind}/{name}/{}",
                if pooling { "pooling" } else { "default" }
            );
            if !figure.contains(filter) {
                continue;
            }
            let ke = keel_engine(pooling)?;
            let km = keel::Module::new(&ke, wasm)?;
            let kpre = keel::Linker::<()>::new(&ke).instantiate_pre(&km)?;
            let we = wasmtime_engine(pooling)?;
            let wm = wasmtime::Module::new(&we, wasm)?;
            let wpre = wasmtime::Linker::<()>::new(&we).instantiate_pre(&wm)?;
            let (kt, wt) = per_iteration(
                21,
                200,
                || {
                    let mut store = keel::Store::new(&ke, ());
                    let instance = kpre.instantiate(&mut store).expect("keel instantiates");
                    if let Some(export) = export {
                        let f = instance
                            .get_typed_func::<i32, i32>(&mut store, export)
                            .expect("keel export");
                        std::hint::black_box(f.call(&mut store, 0).expect("keel call"));
                    }
                    std::hint::black_box(instance);
                },
                || {
                    let mut store = wasmtime::Store::new(&we, ());
                    let instance = wpre.instantiate(&mut store).expect("wasmtime instantiates");
                    if let Some(export) = export {
                        let f = instance
                            .get_typed_func::<i32, i32>(&mut store, export)
                            .expect("wasmtime export");
                        std::hint::black_box(f.call(&mut store, 0).expect("wasmtime call"));
                    }
                    std::hint::black_box(instance);
                },
            );
            report_secs(&figure, kt, wt, "us");
        }
    }
    Ok(())
}

/// `instantiate/<name>/{default,pooling}`: a C program built for WASI,
/// with WASI preview 1 linked: a fresh WASI context and store, and an
/// instance from an `InstancePre`.
pub fn bench_instantiate_wasi(name: &str, wasm: &[u8], filter: &str) -> anyhow::Result<()> {
    for pooling in [false, true] {
        let figure = format!(
            "instantiate/{name}/{}",
            if pooling { "pooling" } else { "default" }
        );
        if !figure.contains(filter) {
            continue;
        }
        let ke = keel_engine(pooling)?;
        let km = keel::Module::new(&ke, wasm)?;
        let mut kl = keel::Linker::new(&ke);
        keel_wasi::add_to_linker(&mut kl, |c: &mut keel_wasi::WasiCtx| c)?;
        let kpre = kl.instantiate_pre(&km)?;

        let we = wasmtime_engine(pooling)?;
        let wm = wasmtime::Module::new(&we, wasm)?;
        let mut wl = wasmtime::Linker::new(&we);
        wasmtime_wasi::p1::add_to_linker_sync(&mut wl, |c| c)?;
        let wpre = wl.instantiate_pre(&wm)?;
        let (kt, wt) = per_iteration(
            21,
            200,
            || {
                let mut store = keel::Store::new(&ke, keel_wasi_ctx());
                std::hint::black_box(kpre.instantiate(&mut store).expect("keel instantiates"));
            },
            || {
                let mut store = wasmtime::Store::new(&we, wasmtime_wasi_ctx());
                std::hint::black_box(wpre.instantiate(&mut store).expect("wasmtime instantiates"));
            },
        );
        report_secs(&figure, kt, wt, "us");
    }
    Ok(())
}

/// The WASI context each instantiation of a WASI program gets.
pub(crate) fn keel_wasi_ctx() -> keel_wasi::WasiCtx {
    keel_wasi::WasiCtx::builder()
        .args(&["prog"])
        .build()
        .expect("a valid context")
}

/// Wasmtime's, with the same contents.
pub(crate) fn wasmtime_wasi_ctx() -> wasmtime_wasi::p1::WasiP1Ctx {
    wasmtime_wasi::WasiCtxBuilder::new()
        .args(&["prog"])
        .build_p1()
}

pub(crate) const CALLS_WAT: &str = r#"(module
  (import "host" "inc" (func $inc (param i32) (result i32)))
  (func (export "identity") (param i32) (result i32) (local.get 0))
  (func (export "call_host") (param $n i32) (result i32)
    (local $acc i32)
    (loop $l
      (local.set $acc (call $inc (local.get $acc)))
      (br_if $l (i32.ne (local.get $acc) (local.get $n))))
    (local.get $acc))
  (func $inc_wasm (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
  (func (export "call_wasm") (param $n i32) (result i32)
    (local $acc i32)
    (loop $l
      (local.set $acc (call $inc_wasm (local.get $acc)))
      (br_if $l (i32.ne (local.get $acc) (local.get $n))))
    (local.get $acc)))"#;

/// `call/host-to-wasm` (a typed call of a wasm function that returns its
/// argument), `call/wasm-to-host` (wasm calling a typed host function in a
/// loop) and `call/wasm-to-wasm` (wasm calling a small wasm function in a
/// loop), in ns per call.
pub fn bench_calls(filter: &str) -> anyhow::Result<()> {
    let wasm = wat::parse_str(CALLS_WAT)?;
    let ke = keel_engine(false)?;
    let km = keel::Module::new(&ke, &wasm)?;
    let mut kl = keel::Linker::new(&ke);
    kl.func_wrap("host", "inc", |x: i32| x.wrapping_add(1))?;
    let mut ks = keel::Store::new(&ke, ());
    let ki = kl.instantiate(&mut ks, &km)?;
    let k_identity = ki.get_typed_func::<i32, i32>(&mut ks, "identity")?;
    let k_call_host = ki.get_typed_func::<i32, i32>(&mut ks, "call_host")?;
    let k_call_wasm = ki.get_typed_func::<i32, i32>(&mut ks, "call_wasm")?;

    let we = wasmtime_engine(false)?;
    let wm = wasmtime::Module::new(&we, &wasm)?;
    let mut wl = wasmtime::Linker::new(&we);
    wl.func_wrap("host", "inc", |x: i32| x.wrapping_add(1))?;
    let mut ws = wasmtime::Store::new(&we, ());
    let wi = wl.instantiate(&mut ws, &wm)?;
    let w_identity = wi.get_typed_func::<i32, i32>(&mut ws, "identity")?;
    let w_call_host = wi.get_typed_func::<i32, i32>(&mut ws, "call_host")?;
    let w_call_wasm = wi.get_typed_func::<i32, i32>(&mut ws, "call_wasm")?;

    if "call/host-to-wasm".contains(filter) {
        let (kt, wt) = per_iteration(
            21,
            100_000,
            || {
                std::hint::black_box(k_identity.call(&mut ks, 7).expect("keel calls"));
            },
            || {
                std::hint::black_box(w_identity.call(&mut ws, 7).expect("wasmtime calls"));
            },
        );
        report_secs("call/host-to-wasm", kt, wt, "ns");
    }
    if "call/wasm-to-host".contains(filter) {
        const CALLS: u32 = 1_000_000;
        let (a, b) = (
            k_call_host.call(&mut ks, 1000)?,
            w_call_host.call(&mut ws, 1000)?,
        );
        anyhow::ensure!(a == 1000 && b == 1000, "call_host: keel {a}, wasmtime {b}");
        let (kt, wt) = measure(
            21,
            || {
                std::hint::black_box(k_call_host.call(&mut ks, CALLS as i32).expect("keel"));
            },
            || {
                std::hint::black_box(w_call_host.call(&mut ws, CALLS as i32).expect("wasmtime"));
            },
        );
        report_secs(
            "call/wasm-to-host",
            seconds_per(kt, CALLS),
            seconds_per(wt, CALLS),
            "ns",
        );
    }
    if "call/wasm-to-wasm".contains(filter) {
        const CALLS: u32 = 10_000_000;
        let (a, b) = (
            k_call_wasm.call(&mut ks, 1000)?,
            w_call_wasm.call(&mut ws, 1000)?,
        );
        anyhow::ensure!(a == 1000 && b == 1000, "call_wasm: keel {a}, wasmtime {b}");
        let (kt, wt) = measure(
            21,
            || {
                std::hint::black_box(k_call_wasm.call(&mut ks, CALLS as i32).expect("keel"));
            },
            || {
                std::hint::black_box(w_call_wasm.call(&mut ws, CALLS as i32).expect("wasmtime"));
            },
        );
        report_secs(
            "call/wasm-to-wasm",
            seconds_per(kt, CALLS),
            seconds_per(wt, CALLS),
            "ns",
        );
    }
    Ok(())
}

/// How many idle instances `rss/...` keeps alive.
const IDLE_INSTANCES: usize = 10_000;

fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// In a child process (so that neither engine's leftovers count against
/// the other): compiles the data1m module, keeps `IDLE_INSTANCES`
/// instances of it alive, each in its own store, and prints the growth of
/// resident memory in KiB.
pub fn rss_child(engine: &str) -> anyhow::Result<()> {
    let wasm = wat::parse_str(data1m_wat())?;
    let before;
    let after;
    if engine == "keel" {
        let e = keel_engine(false)?;
        let m = keel::Module::new(&e, &wasm)?;
        let pre = keel::Linker::<()>::new(&e).instantiate_pre(&m)?;
        pre.instantiate(&mut keel::Store::new(&e, ()))?;
        before = resident_kib();
        let mut stores = Vec::with_capacity(IDLE_INSTANCES);
        for _ in 0..IDLE_INSTANCES {
            let mut store = keel::Store::new(&e, ());
            pre.instantiate(&mut store)?;
            stores.push(store);
        }
        after = resident_kib();
        drop(stores);
    } else {
        let e = wasmtime_engine(false)?;
        let m = wasmtime::Module::new(&e, &wasm)?;
        let pre = wasmtime::Linker::<()>::new(&e).instantiate_pre(&m)?;
        pre.instantiate(&mut wasmtime::Store::new(&e, ()))?;
        before = resident_kib();
        let mut stores = Vec::with_capacity(IDLE_INSTANCES);
        for _ in 0..IDLE_INSTANCES {
            let mut store = wasmtime::Store::new(&e, ());
            pre.instantiate(&mut store)?;
            stores.push(store);
        }
        after = resident_kib();
        drop(stores);
    }
    println!("{}", after.saturating_sub(before));
    Ok(())
}

/// `rss/10k-data1m`: resident memory added by 10,000 live idle instances
/// of the data1m module, in MiB (one child process per engine).
pub fn bench_rss() -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let run = |engine: &str| -> anyhow::Result<f64> {
        let out = std::process::Command::new(&exe)
            .env("BENCH_RSS_CHILD", engine)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "{engine} child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let kib: f64 = String::from_utf8_lossy(&out.stdout).trim().parse()?;
        Ok(kib / 1024.0)
    };
    let (k, w) = (run("keel")?, run("wasmtime")?);
    println!(
        "rss/10k-data1m keel={k:.1}MiB wasmtime={w:.1}MiB ratio={:.2}",
        k / w
    );
    Ok(())
}
