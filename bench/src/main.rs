//! Keel against Wasmtime, same kernels, same settings, one process.
//!
//! Prints one line per figure:
//! `<figure> keel=<value> wasmtime=<value> ratio=<keel/wasmtime>`.
//! Each value is the median of repeated measurements; the two engines are
//! measured alternately so that machine noise hits both alike.

use std::time::{Duration, Instant};

struct Kernel {
    name: &'static str,
    wat: &'static str,
}

const KERNELS: &[Kernel] = &[
    Kernel { name: "fib", wat: include_str!("../kernels/fib.wat") },
    Kernel { name: "sieve", wat: include_str!("../kernels/sieve.wat") },
    Kernel { name: "mandelbrot", wat: include_str!("../kernels/mandelbrot.wat") },
    Kernel { name: "dispatch", wat: include_str!("../kernels/dispatch.wat") },
];

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn report(figure: &str, keel: Duration, wasmtime: Duration, unit: &str) {
    let scale = match unit {
        "ms" => 1e3,
        "us" => 1e6,
        _ => 1e9,
    };
    let k = keel.as_secs_f64() * scale;
    let w = wasmtime.as_secs_f64() * scale;
    println!("{figure} keel={k:.3}{unit} wasmtime={w:.3}{unit} ratio={:.2}", k / w);
}

/// Times `keel` and `wasmtime` alternately, `rounds` times each.
fn measure(rounds: usize, mut keel: impl FnMut(), mut wasmtime: impl FnMut()) -> (Duration, Duration) {
    let (mut k, mut w) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        keel();
        k.push(t.elapsed());
        let t = Instant::now();
        wasmtime();
        w.push(t.elapsed());
    }
    (median(k), median(w))
}

struct Engines {
    keel: keel::Engine,
    wasmtime: wasmtime::Engine,
}

fn bench_compile(e: &Engines, k: &Kernel, bytes: &[u8]) {
    let (kt, wt) = measure(
        21,
        || {
            keel::Module::new(&e.keel, bytes).expect("keel compiles");
        },
        || {
            wasmtime::Module::new(&e.wasmtime, bytes).expect("wasmtime compiles");
        },
    );
    report(&format!("compile/{}", k.name), kt, wt, "ms");
}

fn bench_run(e: &Engines, k: &Kernel, bytes: &[u8]) -> anyhow::Result<()> {
    let km = keel::Module::new(&e.keel, bytes)?;
    let mut ks = keel::Store::new(&e.keel, ());
    let ki = keel::Instance::new(&mut ks, &km, &[])?;
    let kf = ki.get_typed_func::<(), i64>(&mut ks, "run")?;

    let wm = wasmtime::Module::new(&e.wasmtime, bytes)?;
    let mut ws = wasmtime::Store::new(&e.wasmtime, ());
    let wi = wasmtime::Instance::new(&mut ws, &wm, &[])?;
    let wf = wi.get_typed_func::<(), i64>(&mut ws, "run")?;

    // Both must compute the same thing, or the comparison means nothing.
    let (a, b) = (kf.call(&mut ks, ())?, wf.call(&mut ws, ())?);
    anyhow::ensure!(a == b, "{}: keel returned {a}, wasmtime {b}", k.name);

    let (kt, wt) = measure(
        11,
        || {
            std::hint::black_box(kf.call(&mut ks, ()).expect("keel runs"));
        },
        || {
            std::hint::black_box(wf.call(&mut ws, ()).expect("wasmtime runs"));
        },
    );
    report(&format!("run/{}", k.name), kt, wt, "ms");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let filter = std::env::args().nth(1).unwrap_or_default();
    let engines = Engines {
        keel: keel::Engine::new(&keel::Config::new())?,
        wasmtime: wasmtime::Engine::new(&wasmtime::Config::new())?,
    };
    for k in KERNELS {
        let bytes = wat::parse_str(k.wat)?;
        if format!("compile/{}", k.name).contains(&filter) {
            bench_compile(&engines, k, &bytes);
        }
        if format!("run/{}", k.name).contains(&filter) {
            bench_run(&engines, k, &bytes)?;
        }
    }
    Ok(())
}
