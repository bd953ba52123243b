//! Keel against Wasmtime, same kernels, same settings, one process.
//!
//! Prints one line per figure:
//! `<figure> keel=<value> wasmtime=<value> ratio=<keel/wasmtime>`.
//! Each value is the median of repeated measurements; the two engines are
//! measured alternately so that machine noise hits both alike.

mod async_calls;
mod c_kernels;
mod cold_start;
mod instantiate;
mod run;

use c_kernels::C_KERNELS;

use std::time::{Duration, Instant};

struct Kernel {
    name: &'static str,
    wat: &'static str,
}

const KERNELS: &[Kernel] = &[
    Kernel {
        name: "fib",
        wat: include_str!("../kernels/fib.wat"),
    },
    Kernel {
        name: "sieve",
        wat: include_str!("../kernels/sieve.wat"),
    },
    Kernel {
        name: "mandelbrot",
        wat: include_str!("../kernels/mandelbrot.wat"),
    },
    Kernel {
        name: "dispatch",
        wat: include_str!("../kernels/dispatch.wat"),
    },
    Kernel {
        name: "exceptions",
        wat: include_str!("../kernels/exceptions.wat"),
    },
];

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn report(figure: &str, keel: Duration, wasmtime: Duration, unit: &str) {
    report_secs(figure, keel.as_secs_f64(), wasmtime.as_secs_f64(), unit);
}

/// Like `report`, for times in seconds that may be below a nanosecond's
/// resolution (one call of many).
fn report_secs(figure: &str, keel: f64, wasmtime: f64, unit: &str) {
    let scale = match unit {
        "ms" => 1e3,
        "us" => 1e6,
        _ => 1e9,
    };
    let k = keel * scale;
    let w = wasmtime * scale;
    println!(
        "{figure} keel={k:.3}{unit} wasmtime={w:.3}{unit} ratio={:.2}",
        k / w
    );
}

/// Prints a figure that is a ratio of times (no unit).
fn report_ratio(figure: &str, keel: f64, wasmtime: f64) {
    println!(
        "{figure} keel={keel:.2} wasmtime={wasmtime:.2} ratio={:.2}",
        keel / wasmtime
    );
}

/// With `BENCH_ONLY=keel` or `BENCH_ONLY=wasmtime`, each figure runs one
/// engine once: for counting instructions with
/// `valgrind --tool=callgrind`, which is repeatable on a noisy machine.
fn only() -> Option<String> {
    std::env::var("BENCH_ONLY").ok()
}

/// Times `keel` and `wasmtime` alternately, `rounds` times each.
fn measure(
    rounds: usize,
    mut keel: impl FnMut(),
    mut wasmtime: impl FnMut(),
) -> (Duration, Duration) {
    measure_pairs(rounds, 1, |_| keel(), |_| wasmtime())[0]
}

/// Times `pairs` configurations side by side: each round calls `keel(i)`
/// then `wasmtime(i)` for every configuration `i` in turn, so that the
/// machine's drift hits all of them alike. Returns each configuration's
/// medians.
fn measure_pairs(
    rounds: usize,
    pairs: usize,
    mut keel: impl FnMut(usize),
    mut wasmtime: impl FnMut(usize),
) -> Vec<(Duration, Duration)> {
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed()
    };
    if let Some(engine) = only() {
        return (0..pairs)
            .map(|i| {
                let t = if engine == "keel" {
                    time(&mut || keel(i))
                } else {
                    time(&mut || wasmtime(i))
                };
                (t, t)
            })
            .collect();
    }
    let mut times = vec![(Vec::new(), Vec::new()); pairs];
    for _ in 0..rounds {
        for (i, (k, w)) in times.iter_mut().enumerate() {
            k.push(time(&mut || keel(i)));
            w.push(time(&mut || wasmtime(i)));
        }
    }
    times
        .into_iter()
        .map(|(k, w)| (median(k), median(w)))
        .collect()
}

pub struct Engines {
    keel: keel::Engine,
    wasmtime: wasmtime::Engine,
}

fn bench_compile(e: &Engines, k: &str, bytes: &[u8]) {
    let (kt, wt) = measure(
        21,
        || {
            keel::Module::new(&e.keel, bytes).expect("keel compiles");
        },
        || {
            wasmtime::Module::new(&e.wasmtime, bytes).expect("wasmtime compiles");
        },
    );
    report(&format!("compile/{k}"), kt, wt, "ms");
}

/// `load/<name>`: loading a precompiled artifact from a file
/// (`Module::deserialize_file` in both engines, each its own artifact).
fn bench_load(e: &Engines, name: &str, wasm: &[u8]) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("keel-bench-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (kp, wp) = (dir.join("keel.cwasm"), dir.join("wasmtime.cwasm"));
    std::fs::write(&kp, e.keel.precompile_module(wasm)?)?;
    std::fs::write(&wp, e.wasmtime.precompile_module(wasm)?)?;
    let (kt, wt) = measure(
        201,
        || {
            // SAFETY: the artifact was just written by this engine, and
            // nothing changes the file while the module lives.
            let m = unsafe { keel::Module::deserialize_file(&e.keel, &kp) };
            std::hint::black_box(m.expect("keel loads"));
        },
        || {
            // SAFETY: as above, for Wasmtime's artifact.
            let m = unsafe { wasmtime::Module::deserialize_file(&e.wasmtime, &wp) };
            std::hint::black_box(m.expect("wasmtime loads"));
        },
    );
    std::fs::remove_dir_all(&dir)?;
    report(&format!("load/{name}"), kt, wt, "us");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    if let Ok(engine) = std::env::var("BENCH_RSS_CHILD") {
        return instantiate::rss_child(&engine);
    }
    let filter = std::env::args().nth(1).unwrap_or_default();
    let engines = Engines {
        keel: keel::Engine::new(&keel::Config::new())?,
        wasmtime: wasmtime::Engine::new(&wasmtime::Config::new())?,
    };
    let run_engines = run::Metering::ALL
        .iter()
        .map(|m| m.engines())
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut kernels: Vec<(String, Vec<u8>, Option<extern "C" fn() -> i64>)> = Vec::new();
    for k in KERNELS {
        kernels.push((k.name.to_string(), wat::parse_str(k.wat)?, None));
    }
    for k in C_KERNELS {
        let mut wanted = run::figures(k.name);
        wanted.push(format!("compile/{}", k.name));
        if wanted.iter().any(|w| w.contains(&filter)) {
            let wasm = keel_test_programs::compile(
                k.source,
                keel_test_programs::Target::Freestanding,
                k.wasm_flags,
            );
            kernels.push((k.name.to_string(), wasm, native::entry(k.name)));
        }
    }
    let mut native_ratios = Vec::new();
    for (name, bytes, native) in &kernels {
        if format!("compile/{name}").contains(&filter) {
            bench_compile(&engines, name, bytes);
        }
        native_ratios.extend(run::bench_run(&run_engines, name, bytes, *native, &filter)?);
    }
    if native_ratios.len() > 1 {
        let geomean = |f: fn(&(f64, f64)) -> f64| {
            let logs: f64 = native_ratios.iter().map(|r| f(r).ln()).sum();
            (logs / native_ratios.len() as f64).exp()
        };
        report_ratio("native/geomean", geomean(|r| r.0), geomean(|r| r.1));
    }
    if "wasi/hello-end-to-end".contains(&filter) {
        cold_start::bench_wasi_hello(&engines)?;
    }
    let wanted = |f: &str| f.contains(&filter);
    if wanted("instantiate/empty/default") || wanted("instantiate/empty/pooling") {
        instantiate::bench_instantiate("empty", &wat::parse_str("(module)")?, None, &filter)?;
    }
    if wanted("instantiate/data1m/default") || wanted("instantiate/data1m/pooling") {
        let wasm = wat::parse_str(instantiate::data1m_wat())?;
        instantiate::bench_instantiate("data1m", &wasm, None, &filter)?;
    }
    let big_figures = [
        "instantiate/big/default",
        "instantiate/big/pooling",
        "instantiate-call/big/default",
        "instantiate-call/big/pooling",
    ];
    if big_figures.iter().any(|f| wanted(f)) {
        let wasm = wat::parse_str(instantiate::big_wat())?;
        instantiate::bench_instantiate("big", &wasm, Some("f0"), &filter)?;
    }
    if wanted("instantiate/wasi-c/default") || wanted("instantiate/wasi-c/pooling") {
        let wasm = keel_test_programs::compile("hello", keel_test_programs::Target::Wasi, &["-O2"]);
        instantiate::bench_instantiate_wasi("wasi-c", &wasm, &filter)?;
    }
    let sqlite_figures = [
        "compile/sqlite",
        "first-output/sqlite",
        "first-call/sqlite",
        "first-call-eager/sqlite",
        "load/sqlite",
        "instantiate/sqlite/default",
        "instantiate/sqlite/pooling",
    ];
    if sqlite_figures.iter().any(|f| wanted(f)) {
        let wasm = keel_test_programs::sqlite();
        if wanted("compile/sqlite") {
            bench_compile(&engines, "sqlite", &wasm);
        }
        if [
            "first-output/sqlite",
            "first-call/sqlite",
            "first-call-eager/sqlite",
        ]
        .iter()
        .any(|f| wanted(f))
        {
            cold_start::bench_first_call(&engines, "sqlite", &wasm)?;
        }
        if wanted("load/sqlite") {
            bench_load(&engines, "sqlite", &wasm)?;
        }
        instantiate::bench_instantiate_wasi("sqlite", &wasm, &filter)?;
    }
    if wanted("call/host-to-wasm") || wanted("call/wasm-to-host") || wanted("call/wasm-to-wasm") {
        instantiate::bench_calls(&filter)?;
    }
    if wanted("call-async/host-to-wasm") || wanted("call-async/wasm-to-host") {
        async_calls::bench_async_calls(&filter)?;
    }
    let async_figures = [
        "instantiate-async/wasi-c/pooling",
        "instantiate-async/wasi-c/pooling-zeroed",
    ];
    if async_figures.iter().any(|f| wanted(f)) {
        let wasm = keel_test_programs::compile("hello", keel_test_programs::Target::Wasi, &["-O2"]);
        for (figure, zeroing) in async_figures.iter().zip([false, true]) {
            if wanted(figure) {
                async_calls::bench_instantiate_async_wasi("wasi-c", &wasm, zeroing)?;
            }
        }
    }
    if wanted("rss/10k-data1m") {
        instantiate::bench_rss()?;
    }
    Ok(())
}

/// The C kernels' native builds (linked by `build.rs`).
mod native {
    // SAFETY: each is a C function without parameters, built by `build.rs`
    // from a kernel's source, that touches only the static data of its own
    // translation unit: calling it cannot break any of Rust's invariants.
    unsafe extern "C" {
        safe fn keel_native_simd_image() -> i64;
        safe fn keel_native_matmul() -> i64;
        safe fn keel_native_hash() -> i64;
        safe fn keel_native_sort() -> i64;
        safe fn keel_native_interp() -> i64;
        safe fn keel_native_tail_interp() -> i64;
    }

    /// The native build of the C kernel `name`.
    pub fn entry(name: &str) -> Option<extern "C" fn() -> i64> {
        Some(match name {
            "simd-image" => keel_native_simd_image,
            "matmul" => keel_native_matmul,
            "hash" => keel_native_hash,
            "sort" => keel_native_sort,
            "interp" => keel_native_interp,
            "tail-interp" => keel_native_tail_interp,
            _ => return None,
        })
    }
}
