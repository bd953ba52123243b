//! Async calls on both engines: `call-async/host-to-wasm` (a typed
//! `call_async` of a wasm function that returns its argument),
//! `call-async/wasm-to-host` (wasm calling an async host function in a
//! loop, inside one `call_async`), in ns per call, and
//! `instantiate-async/wasi-c/pooling` (a fresh store and an
//! `instantiate_async` of a WASI C program, with each engine's async WASI
//! linker), in µs.
//!
//! The futures are driven by the smallest executor there is (poll with a
//! no-op waker until ready; nothing here ever waits), so that the figures
//! are the engines' own costs and not an executor's.

use crate::instantiate::{
    CALLS_WAT, keel_engine, keel_wasi_ctx, per_iteration, seconds_per, wasmtime_engine,
    wasmtime_wasi_ctx,
};
use crate::{measure, report_secs};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// The `call-async/*` figures.
pub fn bench_async_calls(filter: &str) -> anyhow::Result<()> {
    let wasm = wat::parse_str(CALLS_WAT)?;
    let ke = keel_engine(false)?;
    let km = keel::Module::new(&ke, &wasm)?;
    let mut kl = keel::Linker::new(&ke);
    kl.func_wrap_async("host", "inc", |_: keel::Caller<'_, ()>, (x,): (i32,)| {
        Box::new(async move { x.wrapping_add(1) })
    })?;
    let mut ks = keel::Store::new(&ke, ());
    let ki = block_on(kl.instantiate_async(&mut ks, &km))?;
    let k_identity = ki.get_typed_func::<i32, i32>(&mut ks, "identity")?;
    let k_call_host = ki.get_typed_func::<i32, i32>(&mut ks, "call_host")?;

    let we = wasmtime_engine(false)?;
    let wm = wasmtime::Module::new(&we, &wasm)?;
    let mut wl = wasmtime::Linker::new(&we);
    wl.func_wrap_async(
        "host",
        "inc",
        |_: wasmtime::Caller<'_, ()>, (x,): (i32,)| Box::new(async move { x.wrapping_add(1) }),
    )?;
    let mut ws = wasmtime::Store::new(&we, ());
    let wi = block_on(wl.instantiate_async(&mut ws, &wm))?;
    let w_identity = wi.get_typed_func::<i32, i32>(&mut ws, "identity")?;
    let w_call_host = wi.get_typed_func::<i32, i32>(&mut ws, "call_host")?;

    if "call-async/host-to-wasm".contains(filter) {
        let (kt, wt) = per_iteration(
            21,
            1_000,
            || {
                let r = block_on(k_identity.call_async(&mut ks, 7));
                std::hint::black_box(r.expect("keel calls"));
            },
            || {
                let r = block_on(w_identity.call_async(&mut ws, 7));
                std::hint::black_box(r.expect("wasmtime calls"));
            },
        );
        report_secs("call-async/host-to-wasm", kt, wt, "ns");
    }
    if "call-async/wasm-to-host".contains(filter) {
        const CALLS: u32 = 100_000;
        let (a, b) = (
            block_on(k_call_host.call_async(&mut ks, 1000))?,
            block_on(w_call_host.call_async(&mut ws, 1000))?,
        );
        anyhow::ensure!(a == 1000 && b == 1000, "call_host: keel {a}, wasmtime {b}");
        let (kt, wt) = measure(
            21,
            || {
                let r = block_on(k_call_host.call_async(&mut ks, CALLS as i32));
                std::hint::black_box(r.expect("keel"));
            },
            || {
                let r = block_on(w_call_host.call_async(&mut ws, CALLS as i32));
                std::hint::black_box(r.expect("wasmtime"));
            },
        );
        report_secs(
            "call-async/wasm-to-host",
            seconds_per(kt, CALLS),
            seconds_per(wt, CALLS),
            "ns",
        );
    }
    Ok(())
}

/// `instantiate-async/<name>/pooling`: a fresh store with a WASI context
/// and an `instantiate_async` from an `InstancePre` per iteration, with
/// the pooling allocator (whose stacks serve the async instantiation);
/// `.../pooling-zeroed` with both engines zeroing a stack before reuse
/// (`async_stack_zeroing`).
pub fn bench_instantiate_async_wasi(name: &str, wasm: &[u8], zeroing: bool) -> anyhow::Result<()> {
    let mut config = keel::Config::new();
    config
        .allocation_strategy(keel::InstanceAllocationStrategy::pooling())
        .async_stack_zeroing(zeroing);
    let ke = keel::Engine::new(&config)?;
    let km = keel::Module::new(&ke, wasm)?;
    let mut kl = keel::Linker::new(&ke);
    keel_wasi::add_to_linker_async(&mut kl, |c: &mut keel_wasi::WasiCtx| c)?;
    let kpre = kl.instantiate_pre(&km)?;

    let mut config = wasmtime::Config::new();
    config
        .allocation_strategy(wasmtime::InstanceAllocationStrategy::pooling())
        .async_stack_zeroing(zeroing);
    let we = wasmtime::Engine::new(&config)?;
    let wm = wasmtime::Module::new(&we, wasm)?;
    let mut wl = wasmtime::Linker::new(&we);
    wasmtime_wasi::p1::add_to_linker_async(&mut wl, |c| c)?;
    let wpre = wl.instantiate_pre(&wm)?;
    let (kt, wt) = per_iteration(
        21,
        200,
        || {
            let mut store = keel::Store::new(&ke, keel_wasi_ctx());
            let instance = block_on(kpre.instantiate_async(&mut store));
            std::hint::black_box(instance.expect("keel instantiates"));
        },
        || {
            let mut store = wasmtime::Store::new(&we, wasmtime_wasi_ctx());
            let instance = block_on(wpre.instantiate_async(&mut store));
            std::hint::black_box(instance.expect("wasmtime instantiates"));
        },
    );
    let kind = if zeroing { "pooling-zeroed" } else { "pooling" };
    report_secs(&format!("instantiate-async/{name}/{kind}"), kt, wt, "us");
    Ok(())
}
