//! The metered variant of `differential`: Keel runs the module a second
//! time, in its own store, with fuel and/or epoch interruption compiled
//! in, beside the unmetered run that is compared with wasmi.
//!
//! A third of the cases (chosen by the case's seed, like the pooling
//! variant) get a [`Metering`] plan: the store's fuel (sometimes small
//! enough to run out, sometimes unlimited), a charge per host call and per
//! run of the deadline callback, refills between calls, and an epoch
//! deadline that is far away, already reached, or reached with a callback
//! that lets wasm continue a number of checks before it interrupts (or
//! moves the deadline away).
//!
//! While the metered run has not run out, every step must equal the
//! unmetered Keel run (which equals wasmi): results (NaNs alike),
//! traps, instantiation, host calls, host entities and exports. Fuel never
//! grows except where the host adds it: the fuel each host call or
//! callback sees is at most what the step began with (less the charges
//! before it), and at most that is left after the step. (A guest that
//! failed to reload its count after a call or check would undo a charge.)
//!
//! When it runs out, the step must have stopped with `Trap::OutOfFuel` (only
//! with fuel that can run out, and then with no fuel left) or
//! `Trap::Interrupt` (only with a deadline that can be reached, and only
//! once the callback, if any, says so; with a deadline reached and no
//! callback, before any host call), after a prefix of the unmetered step's
//! host calls. With no fuel left, every later call of a wasm export must
//! stop at function entry: a trap, no host call, and not a byte of state
//! changed. Past a deadline, no later call may reach the host. Otherwise
//! the metered run ends there.

use crate::compare::{Agreement, Failure, Outcome, Snapshot, agree, diff_snapshots};
use crate::generate::{KeelVariant, keel_engine};
use crate::host::{HostPlan, StoreBounds};
use crate::interface::ModuleInfo;
use crate::keel_side::{FAR_TICKS, KeelSide};
use crate::pair::Side;
use crate::rng::Rng;
use crate::value::Value;
use crate::{Stats, compare};
use keel::{Trap, UpdateDeadline};

/// Fuel no module can spend in a fuzz run (the store holds at most
/// `i64::MAX`).
pub(crate) const UNLIMITED_FUEL: u64 = u64::MAX;

/// How the metered run is metered, chosen by the case's seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metering {
    /// Fuel the store starts with, when fuel is on.
    pub fuel: Option<u64>,
    /// Units each host call and each run of the deadline callback take
    /// away (`set_fuel`), when fuel is on.
    pub host_charge: u64,
    /// Units the host adds before a call, one call in four (0: never).
    pub refill: u64,
    /// The epoch deadline, when epoch interruption is on.
    pub deadline: Option<Deadline>,
}

/// The epoch deadline of a metered store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deadline {
    /// Far away; the engine ticks now and then between calls.
    Far,
    /// Never set: with epoch interruption on, a store starts at 0 ticks,
    /// so wasm traps at its first check.
    Unset,
    /// One tick away, and the engine ticks: reached before anything runs.
    Ticked,
    /// Reached before anything runs, with a deadline callback that lets
    /// wasm continue `continues` checks (each time with a deadline of 0
    /// ticks, so the next check calls it again), then interrupts, or moves
    /// the deadline far away if `then_far`.
    Callback { continues: u64, then_far: bool },
}

impl Metering {
    /// The plan for a case with `seed`: `None` for two cases in three.
    /// Drawn from a generator of its own, so that the rest of the case
    /// (the host plan, the arguments) is the same with or without it.
    pub fn choose(seed: u64) -> Option<Metering> {
        let mut rng = Rng::new(seed ^ 0x6d65_7465_7265_6421);
        if !rng.chance(1, 3) {
            return None;
        }
        // Three in ten fuel only, three epochs only, four both (where
        // deadline callbacks charge fuel).
        let mode = rng.below(10);
        let fuel = (!(3..6).contains(&mode)).then(|| {
            if rng.chance(1, 3) {
                UNLIMITED_FUEL
            } else {
                // Spread over the orders of magnitude a generated module
                // spends (tens to thousands of units a call), from none at
                // all to more than most runs need.
                let bits = rng.below(17);
                rng.below(1 << bits)
            }
        });
        let host_charge = if rng.chance(1, 3) {
            0
        } else {
            rng.below(64) + 1
        };
        let refill = if rng.chance(1, 2) {
            0
        } else {
            let bits = rng.below(10);
            rng.below(1 << bits) + 1
        };
        let deadline = (mode >= 3).then(|| match rng.below(8) {
            0..=2 => Deadline::Far,
            3 => Deadline::Unset,
            4 => Deadline::Ticked,
            _ => {
                // A call passes a few checks to a few hundred.
                let bits = rng.below(9);
                Deadline::Callback {
                    continues: rng.below(1 << bits),
                    then_far: rng.chance(1, 3),
                }
            }
        });
        Some(Metering {
            fuel,
            host_charge,
            refill,
            deadline,
        })
    }

    /// Whether the plan allows running out of fuel.
    fn fuel_may_run_out(&self) -> bool {
        self.fuel.is_some_and(|f| f < UNLIMITED_FUEL)
    }

    /// Whether the plan allows an interrupt.
    fn may_interrupt(&self) -> bool {
        match self.deadline {
            None | Some(Deadline::Far) => false,
            Some(Deadline::Callback { then_far, .. }) => !then_far,
            Some(Deadline::Unset | Deadline::Ticked) => true,
        }
    }

    /// Whether the deadline is reached from the start and nothing lets
    /// wasm past a check: the first check traps.
    fn first_check_traps(&self) -> bool {
        matches!(
            self.deadline,
            Some(
                Deadline::Unset
                    | Deadline::Ticked
                    | Deadline::Callback {
                        continues: 0,
                        then_far: false
                    }
            )
        )
    }
}

/// Where the metered run is.
enum Phase {
    /// Every step so far equals the unmetered run.
    Running,
    /// Out of fuel with none left: every call of a wasm export must stop
    /// at entry, leaving this state as it is.
    Spent { exports: Snapshot, host: Snapshot },
    /// Interrupted, and the deadline stays reached: wasm may still run
    /// what comes before its first check (a function that calls has one
    /// at entry), so it may never call the host.
    PastDeadline,
    /// Ended (ran out with fuel left, or ran out of stack): nothing more
    /// to compare.
    Off,
}

/// The metered Keel run.
pub(crate) struct Metered {
    pub plan: Metering,
    side: KeelSide,
    /// Refills and ticks; separate from the case's generator.
    rng: Rng,
    phase: Phase,
}

/// What one metered step amounted to, for the statistics.
enum Step {
    /// Same as the unmetered run.
    Same,
    /// Stopped by this trap, with the checks above passed.
    RanOut(Trap),
    /// Nothing compared.
    Skipped,
}

impl Metered {
    /// A store for `plan` in an engine like `variant` with metering
    /// compiled in. Always allocated on demand: metering is about the
    /// compiled code and the store, not about where instances live.
    pub(crate) fn new(variant: KeelVariant, plan: Metering, seed: u64) -> Metered {
        let engine = keel_engine(KeelVariant {
            pooling: false,
            fuel: plan.fuel.is_some(),
            // Both places the count can live, by the seed.
            fuel_in_store: plan.fuel.is_some() && (seed >> 17) & 1 == 1,
            epochs: plan.deadline.is_some(),
            ..variant
        });
        let mut side = KeelSide::new(&engine, StoreBounds::DEFAULT);
        let store = side.store_mut();
        if let Some(fuel) = plan.fuel {
            store.set_fuel(fuel).expect("fuel is on");
            store.data_mut().meter.fuel = true;
            store.data_mut().meter.host_charge = plan.host_charge;
        }
        match plan.deadline {
            None | Some(Deadline::Unset) => {}
            Some(Deadline::Far) => store.set_epoch_deadline(FAR_TICKS),
            Some(Deadline::Ticked) => {
                store.set_epoch_deadline(1);
                engine.increment_epoch();
            }
            Some(Deadline::Callback {
                continues,
                then_far,
            }) => {
                let meter = &mut store.data_mut().meter;
                meter.epoch_continues = continues;
                meter.epoch_then_far = then_far;
                store.epoch_deadline_callback(|mut ctx| {
                    if ctx.data().meter.fuel {
                        // Like a host call: the guest must reload its
                        // fuel count after the check.
                        let left = ctx.get_fuel()?;
                        let meter = &mut ctx.data_mut().meter;
                        meter.fuel_seen.push(left);
                        let charge = meter.host_charge;
                        ctx.set_fuel(left.saturating_sub(charge))?;
                    }
                    let meter = &mut ctx.data_mut().meter;
                    meter.epoch_callbacks += 1;
                    Ok(if meter.epoch_continues > 0 {
                        meter.epoch_continues -= 1;
                        UpdateDeadline::Continue(0)
                    } else if meter.epoch_then_far {
                        UpdateDeadline::Continue(FAR_TICKS)
                    } else {
                        UpdateDeadline::Interrupt
                    })
                });
            }
        }
        Metered {
            plan,
            side,
            rng: Rng::new(seed ^ 0x7469_636b_7469_636b),
            phase: Phase::Running,
        }
    }

    pub(crate) fn compile(&mut self, wasm: &[u8]) -> Result<(), String> {
        self.side.compile(wasm)
    }

    fn fuel(&self) -> Option<u64> {
        self.plan.fuel.map(|_| {
            self.side
                .store()
                .get_fuel()
                .expect("fuel is on in a metered store with fuel")
        })
    }

    /// Instantiates as the unmetered run did (`keel`, with outcome `k`).
    pub(crate) fn instantiate(
        &mut self,
        info: &ModuleInfo,
        plan: &HostPlan,
        keel: &mut KeelSide,
        k: &Outcome<()>,
        lenient_nans: bool,
        stats: &mut Stats,
    ) -> Result<(), String> {
        if !matches!(self.phase, Phase::Running) {
            self.phase = Phase::Off;
            return Ok(());
        }
        let calls_before = self.side.host_calls().len();
        let fuel_before = self.fuel();
        self.side.store_mut().data_mut().meter.fuel_seen.clear();
        let m = self.side.instantiate(info, plan);
        self.check_fuel_trace(fuel_before)
            .map_err(|e| format!("instantiation: {e}"))?;
        let step = self
            .settle(
                info,
                &m,
                k,
                keel,
                calls_before,
                |_| String::new(),
                |_, _| true,
            )
            .map_err(|e| format!("instantiation: {e}"))?;
        if matches!(step, Step::Same) {
            self.check_host_entities(keel, lenient_nans)
                .map_err(|e| format!("instantiation: {e}"))?;
            if m.is_ok() {
                self.check_exports(info, keel, lenient_nans, "after instantiation")?;
            }
        }
        count(step, stats, false);
        Ok(())
    }

    /// Calls `name` with `args` as the unmetered run did (outcome `k`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn call(
        &mut self,
        info: &ModuleInfo,
        name: &str,
        args: &[Value],
        keel: &mut KeelSide,
        k: &Outcome<Vec<Value>>,
        lenient_nans: bool,
        stats: &mut Stats,
    ) -> Result<(), String> {
        let imported = info
            .exports
            .iter()
            .any(|e| e.name == name && e.imported_func);
        match &self.phase {
            Phase::Off => return Ok(()),
            Phase::Spent { .. } | Phase::PastDeadline if imported => return Ok(()),
            Phase::Spent { .. } => return self.call_spent(info, name, args, k, stats),
            Phase::PastDeadline => return self.call_past_deadline(info, name, args, stats),
            Phase::Running => {}
        }
        // The host adds fuel now and then, and the engine ticks (which
        // reaches no deadline but the ones already reached).
        if self.plan.refill > 0
            && let Some(left) = self.fuel()
            && self.rng.chance(1, 4)
        {
            let fuel = left.saturating_add(self.plan.refill);
            self.side.store_mut().set_fuel(fuel).expect("fuel is on");
        }
        if self.plan.deadline.is_some() && self.rng.chance(1, 4) {
            self.side.store_mut().engine().increment_epoch();
        }
        let calls_before = self.side.host_calls().len();
        let fuel_before = self.fuel();
        self.side.store_mut().data_mut().meter.fuel_seen.clear();
        let m = self.side.call(name, args);
        self.check_fuel_trace(fuel_before)?;
        let step = self.settle(
            info,
            &m,
            k,
            keel,
            calls_before,
            |v| crate::value::show(v),
            |a, b| compare::results_agree(a, b),
        )?;
        if matches!(step, Step::Same) {
            self.check_host_entities(keel, lenient_nans)?;
        }
        count(step, stats, true);
        Ok(())
    }

    /// Compares the state of every export with the unmetered run's.
    pub(crate) fn check_exports(
        &mut self,
        info: &ModuleInfo,
        keel: &mut KeelSide,
        lenient_nans: bool,
        when: &str,
    ) -> Result<(), String> {
        if !matches!(self.phase, Phase::Running) || !self.side.has_instance() {
            return Ok(());
        }
        let (m, k) = (self.side.exports(info), keel.exports(info));
        match diff_snapshots(&m, &k, lenient_nans) {
            Some(d) => Err(format!(
                "export state {when} differs from the unmetered run: {d}"
            )),
            None => Ok(()),
        }
    }

    fn check_host_entities(
        &mut self,
        keel: &mut KeelSide,
        lenient_nans: bool,
    ) -> Result<(), String> {
        let (m, k) = (self.side.host_entities(), keel.host_entities());
        match diff_snapshots(&m, &k, lenient_nans) {
            Some(d) => Err(format!("host entity differs from the unmetered run: {d}")),
            None => Ok(()),
        }
    }

    /// Fuel only goes down inside a step, except by the host's charges.
    fn check_fuel_trace(&mut self, before: Option<u64>) -> Result<(), String> {
        let Some(before) = before else {
            return Ok(());
        };
        let after = self.fuel().expect("fuel is on");
        let seen = std::mem::take(&mut self.side.store_mut().data_mut().meter.fuel_seen);
        fuel_trace(before, &seen, self.plan.host_charge, after)
    }

    /// Judges a metered step `m` against the unmetered step `k`.
    #[allow(clippy::too_many_arguments)]
    fn settle<T>(
        &mut self,
        info: &ModuleInfo,
        m: &Outcome<T>,
        k: &Outcome<T>,
        keel: &KeelSide,
        calls_before: usize,
        show_ok: impl Fn(&T) -> String,
        same: impl Fn(&T, &T) -> bool,
    ) -> Result<Step, String> {
        let trap = self.side.last_trap();
        match (m, trap) {
            (Err(Failure::Exhausted(_)), Some(trap @ (Trap::OutOfFuel | Trap::Interrupt))) => {
                self.ran_out(info, trap, keel, calls_before)?;
                return Ok(Step::RanOut(trap));
            }
            (Err(Failure::Exhausted(_)), _) => {
                // Out of stack: metered frames are larger.
                self.phase = Phase::Off;
                return Ok(Step::Skipped);
            }
            _ => {}
        }
        match agree(m, k, show_ok, same) {
            Agreement::Agree => {}
            Agreement::Inconclusive => {
                self.phase = Phase::Off;
                return Ok(Step::Skipped);
            }
            Agreement::Diverge(d) => {
                return Err(format!(
                    "differs from the unmetered run:\n{}",
                    d.replace("wasmi (reference)", "unmetered keel").replacen(
                        "keel:",
                        "metered keel:",
                        1
                    )
                ));
            }
        }
        if let Some(d) = compare::diff_host_calls(self.side.host_calls(), keel.host_calls()) {
            return Err(format!("host calls differ from the unmetered run: {d}"));
        }
        Ok(Step::Same)
    }

    /// Checks a step that stopped with `trap`, and moves on to the next
    /// phase.
    fn ran_out(
        &mut self,
        info: &ModuleInfo,
        trap: Trap,
        keel: &KeelSide,
        calls_before: usize,
    ) -> Result<(), String> {
        let allowed = match trap {
            Trap::OutOfFuel => self.plan.fuel_may_run_out(),
            _ => self.plan.may_interrupt(),
        };
        if !allowed {
            return Err(format!(
                "trapped with {trap:?}, which this metering cannot cause"
            ));
        }
        let (m, k) = (self.side.host_calls(), keel.host_calls());
        let prefix = m.len() <= k.len() && compare::diff_host_calls(m, &k[..m.len()]).is_none();
        if !prefix {
            return Err(format!(
                "before running out: {}",
                compare::diff_host_calls(m, k).unwrap_or_default()
            ));
        }
        if trap == Trap::Interrupt && self.plan.first_check_traps() && m.len() > calls_before {
            return Err(format!(
                "interrupted with the deadline reached before the step, yet {} host call(s) \
                 ran first (a call is preceded by the calling function's entry check)",
                m.len() - calls_before
            ));
        }
        let meter = &self.side.store().data().meter;
        if trap == Trap::Interrupt
            && matches!(self.plan.deadline, Some(Deadline::Callback { .. }))
            && meter.epoch_continues > 0
        {
            return Err(format!(
                "interrupted after {} deadline callback(s), though the callback would have \
                 let wasm continue {} more time(s)",
                meter.epoch_callbacks, meter.epoch_continues
            ));
        }
        let left = self.fuel();
        if trap == Trap::OutOfFuel && left != Some(0) {
            return Err(format!("out of fuel, yet {left:?} units are left"));
        }
        self.phase = self.after_running_out(info, trap);
        Ok(())
    }

    /// The phase after a step stopped with `trap`.
    fn after_running_out(&mut self, info: &ModuleInfo, trap: Trap) -> Phase {
        if !self.side.has_instance() {
            Phase::Off
        } else if self.fuel() == Some(0) {
            Phase::Spent {
                exports: self.side.exports(info),
                host: self.side.host_entities(),
            }
        } else if trap == Trap::Interrupt {
            Phase::PastDeadline
        } else {
            Phase::Off
        }
    }

    /// A call past the deadline: whatever it does before its first check,
    /// it must not reach the host.
    fn call_past_deadline(
        &mut self,
        info: &ModuleInfo,
        name: &str,
        args: &[Value],
        stats: &mut Stats,
    ) -> Result<(), String> {
        let calls_before = self.side.host_calls().len();
        let fuel_before = self.fuel();
        self.side.store_mut().data_mut().meter.fuel_seen.clear();
        let m = self.side.call(name, args);
        let trap = self.side.last_trap();
        self.check_fuel_trace(fuel_before)?;
        if self.side.host_calls().len() != calls_before {
            return Err(format!(
                "past the epoch deadline, the call of export {name:?} called the host \
                 ({m:?}, {trap:?})"
            ));
        }
        match trap {
            Some(Trap::OutOfFuel) if !self.plan.fuel_may_run_out() => {
                return Err("trapped with OutOfFuel, which this metering cannot cause".into());
            }
            Some(trap @ Trap::OutOfFuel) => self.phase = self.after_running_out(info, trap),
            _ => {}
        }
        stats.metered_past_deadline_calls += 1;
        Ok(())
    }

    /// A call with no fuel left: it must stop at the callee's entry.
    fn call_spent(
        &mut self,
        info: &ModuleInfo,
        name: &str,
        args: &[Value],
        k: &Outcome<Vec<Value>>,
        stats: &mut Stats,
    ) -> Result<(), String> {
        let calls_before = self.side.host_calls().len();
        let m = self.side.call(name, args);
        let trap = self.side.last_trap();
        let stopped = matches!(
            (&m, trap),
            (
                Err(Failure::Exhausted(_)),
                Some(Trap::OutOfFuel | Trap::Interrupt)
            )
        );
        let rejected_alike = matches!(
            (&m, k),
            (Err(Failure::Rejected(_)), Err(Failure::Rejected(_)))
        );
        if !stopped && !rejected_alike {
            let shown = match &m {
                Ok(v) => format!("ok {}", crate::value::show(v)),
                Err(e) => format!("{e} ({trap:?})"),
            };
            return Err(format!(
                "with no fuel left, the call of export {name:?} did not stop at entry: {shown}"
            ));
        }
        if self.side.host_calls().len() != calls_before {
            return Err(format!(
                "with no fuel left, the call of export {name:?} called the host"
            ));
        }
        let (exports_now, host_now) = (self.side.exports(info), self.side.host_entities());
        let Phase::Spent { exports, host } = &self.phase else {
            unreachable!("the phase was Spent above");
        };
        if let Some(d) = diff_snapshots(&exports_now, exports, false) {
            return Err(format!(
                "with no fuel left, the call of export {name:?} changed an export: {d}"
            ));
        }
        if let Some(d) = diff_snapshots(&host_now, host, false) {
            return Err(format!(
                "with no fuel left, the call of export {name:?} changed a host entity: {d}"
            ));
        }
        if self.fuel() != Some(0) {
            return Err(format!(
                "with no fuel left, the call of export {name:?} left {:?} units",
                self.fuel()
            ));
        }
        stats.metered_spent_calls += 1;
        Ok(())
    }
}

fn count(step: Step, stats: &mut Stats, call: bool) {
    match step {
        Step::Same if call => stats.metered_calls += 1,
        Step::RanOut(Trap::OutOfFuel) => stats.metered_out_of_fuel += 1,
        Step::RanOut(_) => stats.metered_interrupted += 1,
        _ => {}
    }
}

/// Checks one step's fuel: it started with `before` units, host calls and
/// deadline callbacks saw `seen` (each then took `charge` away), and
/// `after` were left.
fn fuel_trace(before: u64, seen: &[u64], charge: u64, after: u64) -> Result<(), String> {
    let mut ceiling = before;
    for (i, &s) in seen.iter().enumerate() {
        if s > ceiling {
            return Err(format!(
                "fuel grew without the host adding any: host call or callback {i} of the \
                 step saw {s} units left, the most there could be is {ceiling} (the step \
                 began with {before}, each host call or callback charged {charge})"
            ));
        }
        ceiling = s.saturating_sub(charge);
    }
    if after > ceiling {
        return Err(format!(
            "fuel grew without the host adding any: {after} units left after the step, \
             the most there could be is {ceiling} (the step began with {before}, host calls \
             and callbacks saw {seen:?}, each charged {charge})"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuel_may_only_grow_by_what_the_host_adds() {
        // Spent 10, a host call saw 90 and charged 5, 80 left: fine.
        assert!(fuel_trace(100, &[90], 5, 80).is_ok());
        assert!(fuel_trace(100, &[], 0, 100).is_ok());
        assert!(fuel_trace(100, &[100, 100], 0, 100).is_ok());
        // A host call sees more than the step began with.
        assert!(fuel_trace(100, &[101], 0, 0).is_err());
        // The charge of the first host call comes back at the second (the
        // guest saved a count it had not reloaded after the call).
        assert!(fuel_trace(100, &[90, 88], 5, 0).is_err());
        // ... or at the end of the step.
        assert!(fuel_trace(100, &[90], 5, 86).is_err());
        assert!(fuel_trace(0, &[], 0, 1).is_err());
    }

    #[test]
    fn a_third_of_the_seeds_are_metered_in_every_way() {
        let plans: Vec<Metering> = (0..3000).filter_map(Metering::choose).collect();
        assert!((900..1100).contains(&plans.len()), "{}", plans.len());
        let count = |f: &dyn Fn(&Metering) -> bool| plans.iter().filter(|p| f(p)).count();
        assert!(count(&|p| p.fuel.is_some() && p.deadline.is_none()) > 300);
        assert!(count(&|p| p.fuel.is_none() && p.deadline.is_some()) > 200);
        assert!(count(&|p| p.fuel.is_some() && p.deadline.is_some()) > 200);
        assert!(count(&|p| p.fuel == Some(UNLIMITED_FUEL)) > 100);
        assert!(count(&|p| p.fuel == Some(0)) > 10);
        assert!(count(&|p| p.fuel_may_run_out()) > 300);
        assert!(count(&|p| p.host_charge > 0 && p.fuel.is_some()) > 200);
        assert!(count(&|p| p.refill > 0 && p.fuel.is_some()) > 200);
        for d in [Deadline::Far, Deadline::Unset, Deadline::Ticked] {
            assert!(count(&|p| p.deadline == Some(d)) > 20, "{d:?}");
        }
        assert!(count(&|p| p.first_check_traps()) > 50);
        assert!(
            count(&|p| matches!(p.deadline, Some(Deadline::Callback { then_far: true, .. }))) > 20
        );
        assert!(
            count(
                &|p| matches!(p.deadline, Some(Deadline::Callback { continues, then_far: false }) if continues > 0)
            ) > 50
        );
        // The choice depends on the seed only, and not as pooling does
        // (`seed % 3 == 0`).
        assert_eq!(Metering::choose(12345), Metering::choose(12345));
        let pooled_and_metered = (0..3000u64)
            .filter(|s| s % 3 == 0 && Metering::choose(*s).is_some())
            .count();
        assert!(
            (250..420).contains(&pooled_and_metered),
            "{pooled_and_metered}"
        );
    }
}
