//! Run figures: one call of a kernel's `run` export, as the engines come
//! (`run/`), with fuel metering on (`run-fuel/`), and with epoch
//! interruption on (`run-epoch/`), plus what each feature costs each engine
//! (`overhead-fuel/`, `overhead-epoch/`: its median time with the feature
//! over its median time without). Keel's epochs are measured in both of its
//! designs: by signal, its default where supported (`run-epoch/`), and by
//! the interrupt word checked at loop headers and function entries
//! (`run-epoch-word/`, `overhead-epoch-word/`; Wasmtime as in `run-epoch/`).
//! Likewise its fuel: in a register, its default where supported
//! (`run-fuel/`), in the store between calls (`run-fuel-store/`,
//! `overhead-fuel-store/`), and with checks that can resume, as
//! `Config::async_support` compiles them for fuel yields
//! (`run-fuel-async/`, `overhead-fuel-async/`); Wasmtime as in `run-fuel/`.
//!
//! All the configurations a kernel needs are measured in one loop, a call
//! of each in turn, so that the machine's drift hits every one alike and an
//! overhead compares times taken side by side.

use crate::{Engines, measure_pairs, only, report, report_ratio};

/// How both engines are configured for a run figure.
#[derive(Clone, Copy, PartialEq)]
pub enum Metering {
    /// As they come.
    Off,
    /// `Config::consume_fuel(true)`, the store given more fuel than any
    /// kernel spends.
    Fuel,
    /// `Config::epoch_interruption(true)`, the deadline far away and the
    /// epoch never ticked: the figure is the cost of the checks alone.
    Epoch,
    /// As `Epoch`, with Keel's `Config::epoch_by_signal(false)`.
    EpochWord,
    /// As `Fuel`, with Keel's `Config::fuel_in_register(false)`.
    FuelStore,
    /// As `Fuel`, with Keel's `Config::async_support(true)` (fuel checks
    /// that can resume).
    FuelAsync,
}

impl Metering {
    pub const ALL: [Metering; 6] = [
        Metering::Off,
        Metering::Fuel,
        Metering::FuelStore,
        Metering::FuelAsync,
        Metering::Epoch,
        Metering::EpochWord,
    ];

    /// The run figure's name for `kernel`.
    fn run_figure(self, kernel: &str) -> String {
        match self {
            Metering::Off => format!("run/{kernel}"),
            Metering::Fuel => format!("run-fuel/{kernel}"),
            Metering::FuelStore => format!("run-fuel-store/{kernel}"),
            Metering::FuelAsync => format!("run-fuel-async/{kernel}"),
            Metering::Epoch => format!("run-epoch/{kernel}"),
            Metering::EpochWord => format!("run-epoch-word/{kernel}"),
        }
    }

    /// The overhead figure's name for `kernel` (none for `Off`).
    fn overhead_figure(self, kernel: &str) -> Option<String> {
        match self {
            Metering::Off => None,
            Metering::Fuel => Some(format!("overhead-fuel/{kernel}")),
            Metering::FuelStore => Some(format!("overhead-fuel-store/{kernel}")),
            Metering::FuelAsync => Some(format!("overhead-fuel-async/{kernel}")),
            Metering::Epoch => Some(format!("overhead-epoch/{kernel}")),
            Metering::EpochWord => Some(format!("overhead-epoch-word/{kernel}")),
        }
    }

    /// Both engines in this configuration (otherwise the defaults, as for
    /// every other figure).
    pub fn engines(self) -> anyhow::Result<Engines> {
        let mut keel = keel::Config::new();
        let mut wasmtime = wasmtime::Config::new();
        match self {
            Metering::Off => {}
            Metering::Fuel | Metering::FuelStore | Metering::FuelAsync => {
                keel.consume_fuel(true)
                    .fuel_in_register(self != Metering::FuelStore)
                    .async_support(self == Metering::FuelAsync);
                wasmtime.consume_fuel(true);
            }
            Metering::Epoch | Metering::EpochWord => {
                keel.epoch_interruption(true)
                    .epoch_by_signal(self == Metering::Epoch);
                wasmtime.epoch_interruption(true);
            }
        }
        Ok(Engines {
            keel: keel::Engine::new(&keel)?,
            wasmtime: wasmtime::Engine::new(&wasmtime)?,
        })
    }
}

/// Every figure of this module for `kernel`, for the filter.
pub fn figures(kernel: &str) -> Vec<String> {
    Metering::ALL
        .iter()
        .flat_map(|m| [Some(m.run_figure(kernel)), m.overhead_figure(kernel)])
        .flatten()
        .chain([native_figure(kernel)])
        .collect()
}

/// The figure comparing each engine's `run/` time with the kernel's native
/// build: `keel=` and `wasmtime=` are wasm time over native time.
fn native_figure(kernel: &str) -> String {
    format!("native/{kernel}")
}

/// Fuel given to a store: more than any kernel spends in all its calls.
const FUEL: u64 = u64::MAX;
/// Epoch deadline, in ticks: never reached (nothing ticks), and far from
/// overflowing the epoch counter.
const FAR_DEADLINE: u64 = 1 << 62;

type KeelRun = (keel::Store<()>, keel::TypedFunc<(), i64>);
type WasmtimeRun = (wasmtime::Store<()>, wasmtime::TypedFunc<(), i64>);

/// `bytes` instantiated in both engines of `e`, configured for `metering`,
/// each with its `run` export.
fn instantiate(
    e: &Engines,
    metering: Metering,
    bytes: &[u8],
) -> anyhow::Result<(KeelRun, WasmtimeRun)> {
    let km = keel::Module::new(&e.keel, bytes)?;
    let mut ks = keel::Store::new(&e.keel, ());
    let wm = wasmtime::Module::new(&e.wasmtime, bytes)?;
    let mut ws = wasmtime::Store::new(&e.wasmtime, ());
    match metering {
        Metering::Off => {}
        Metering::Fuel | Metering::FuelStore | Metering::FuelAsync => {
            ks.set_fuel(FUEL)?;
            ws.set_fuel(FUEL)?;
        }
        Metering::Epoch | Metering::EpochWord => {
            ks.set_epoch_deadline(FAR_DEADLINE);
            ws.set_epoch_deadline(FAR_DEADLINE);
        }
    }
    let ki = keel::Instance::new(&mut ks, &km, &[])?;
    let kf = ki.get_typed_func::<(), i64>(&mut ks, "run")?;
    let wi = wasmtime::Instance::new(&mut ws, &wm, &[])?;
    let wf = wi.get_typed_func::<(), i64>(&mut ws, "run")?;
    Ok(((ks, kf), (ws, wf)))
}

/// The run figures of one kernel that `filter` selects. `engines` holds
/// both engines in each configuration of [`Metering::ALL`], in order.
///
/// An overhead figure needs its kernel's `run/` time as well as the
/// metered one; every time measured is printed, selected or not, so that
/// each overhead can be checked against the times it comes from.
///
/// With `native` (the kernel's native build), `native/<kernel>` compares
/// both engines with it; the two ratios are returned, for a geomean.
pub fn bench_run(
    engines: &[Engines],
    kernel: &str,
    bytes: &[u8],
    native: Option<extern "C" fn() -> i64>,
    filter: &str,
) -> anyhow::Result<Option<(f64, f64)>> {
    let wanted = |f: &str| f.contains(filter);
    let overhead_wanted = |m: Metering| m.overhead_figure(kernel).is_some_and(|f| wanted(&f));
    let native = native.filter(|_| wanted(&native_figure(kernel)));
    let baseline_needed = Metering::ALL.into_iter().any(overhead_wanted) || native.is_some();
    let measured: Vec<(Metering, &Engines)> = Metering::ALL
        .into_iter()
        .zip(engines)
        .filter(|&(m, _)| {
            wanted(&m.run_figure(kernel))
                || overhead_wanted(m)
                || (m == Metering::Off && baseline_needed)
        })
        .collect();
    if measured.is_empty() {
        return Ok(None);
    }
    let (mut keel_runs, mut wasmtime_runs) = (Vec::new(), Vec::new());
    for &(m, e) in &measured {
        let ((mut ks, kf), (mut ws, wf)) = instantiate(e, m, bytes)?;
        // Both must compute the same thing (and, with fuel on, spend the
        // same fuel), or the comparison means nothing.
        if only().is_none() {
            let figure = m.run_figure(kernel);
            let fuel_before = (ks.get_fuel().ok(), ws.get_fuel().ok());
            let (a, b) = (kf.call(&mut ks, ())?, wf.call(&mut ws, ())?);
            anyhow::ensure!(a == b, "{figure}: keel returned {a}, wasmtime {b}");
            if let Some(native) = native {
                let n = native();
                anyhow::ensure!(a == n, "{figure}: wasm returned {a}, the native build {n}");
            }
            if let ((Some(kb), Some(wb)), Ok(ka), Ok(wa)) =
                (fuel_before, ks.get_fuel(), ws.get_fuel())
            {
                let (k, w) = (kb - ka, wb - wa);
                anyhow::ensure!(k == w, "{figure}: keel spent {k} fuel, wasmtime {w}");
            }
        }
        keel_runs.push((ks, kf));
        wasmtime_runs.push((ws, wf));
    }

    // The native build, when measured, is one more configuration of the
    // same rounds (on the Keel side; its Wasmtime side does nothing), so
    // that drift hits it as it hits the engines.
    let native_index = measured.len();
    let times = measure_pairs(
        11,
        measured.len() + usize::from(native.is_some()),
        |i| match native.filter(|_| i == native_index) {
            Some(native) => {
                std::hint::black_box(native());
            }
            None => {
                let (store, run) = &mut keel_runs[i];
                std::hint::black_box(run.call(store, ()).expect("keel runs"));
            }
        },
        |i| {
            if let Some((store, run)) = wasmtime_runs.get_mut(i) {
                std::hint::black_box(run.call(store, ()).expect("wasmtime runs"));
            }
        },
    );
    for (&(m, _), &(kt, wt)) in measured.iter().zip(&times) {
        report(&m.run_figure(kernel), kt, wt, "ms");
    }
    let baseline = measured.iter().position(|&(m, _)| m == Metering::Off);
    for (&(m, _), &(kt, wt)) in measured.iter().zip(&times) {
        if let (Some(figure), Some(base)) = (m.overhead_figure(kernel), baseline)
            && overhead_wanted(m)
        {
            let (kb, wb) = times[base];
            report_ratio(&figure, kt.div_duration_f64(kb), wt.div_duration_f64(wb));
        }
    }
    let (Some(_), Some(base)) = (native, baseline) else {
        return Ok(None);
    };
    let native_time = times[native_index].0;
    let (kb, wb) = times[base];
    let ratios = (
        kb.div_duration_f64(native_time),
        wb.div_duration_f64(native_time),
    );
    report_ratio(&native_figure(kernel), ratios.0, ratios.1);
    Ok(Some(ratios))
}
