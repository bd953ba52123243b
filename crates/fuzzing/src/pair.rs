//! Running one module in both engines, step by step, and comparing after
//! every step.
//!
//! [`Side`] is what an engine must offer the oracles; `keel_side` and
//! `wasmi_side` implement it. [`Pair`] drives Keel and a reference (wasmi,
//! or Keel in another configuration for what wasmi lacks) in lockstep: compile,
//! instantiate, call, snapshot, and turns the first disagreement into a
//! [`Finding`]. A metered Keel run, when there is one, follows each step
//! and is compared with the unmetered Keel run (`metered.rs`).

use crate::compare::{
    Agreement, Outcome, Snapshot, agree, diff_host_calls, diff_snapshots, results_agree,
};
use crate::host::{HostCall, HostPlan};
use crate::interface::{ExternTy, ModuleInfo};
use crate::keel_side::KeelSide;
use crate::metered::Metered;
use crate::value::{Value, show};
use crate::{Finding, Stats};

/// One engine, holding at most one module and one instance.
pub(crate) trait Side {
    /// Compiles `wasm`; `Err` carries the engine's message.
    fn compile(&mut self, wasm: &[u8]) -> Result<(), String>;
    /// Builds the host entities of `plan`, then instantiates (running
    /// segment initialization and the start function).
    fn instantiate(&mut self, info: &ModuleInfo, plan: &HostPlan) -> Outcome<()>;
    /// Calls the exported function `name`.
    fn call(&mut self, name: &str, args: &[Value]) -> Outcome<Vec<Value>>;
    /// The state of every export of `info`, in order.
    fn exports(&mut self, info: &ModuleInfo) -> Snapshot;
    /// The state of the host's memories, tables and globals, in plan
    /// order (visible even when instantiation failed part way).
    fn host_entities(&mut self) -> Snapshot;
    /// Every host call so far.
    fn host_calls(&self) -> &[HostCall];
}

/// Keel and the reference, side by side.
pub(crate) struct Pair {
    pub keel: KeelSide,
    /// wasmi, or (for modules with exceptions, which wasmi lacks) Keel in
    /// another configuration, in a store of its own.
    pub reference: Box<dyn Side>,
    /// Keel again, with fuel and/or epochs on, in a store of its own.
    pub metered: Option<Metered>,
    pub wasm: Vec<u8>,
    pub info: ModuleInfo,
    /// Accept differing NaN payloads in memories (modules whose NaNs were not
    /// canonicalized).
    pub lenient_nans: bool,
    pub stats: Stats,
    /// Set once a comparison was inconclusive; later steps are skipped.
    pub stopped: bool,
}

impl Pair {
    /// Compiles `wasm` in both engines (or, in the reference, the
    /// equivalent `wasmi_wasm`). `Ok(None)` if the reference
    /// rejects it (an implementation limit of wasmi, not Keel's problem).
    pub(crate) fn compile(
        wasm: Vec<u8>,
        info: ModuleInfo,
        keel: KeelSide,
        reference: Box<dyn Side>,
        wasmi_wasm: Option<&[u8]>,
        lenient_nans: bool,
    ) -> Result<Option<Pair>, Finding> {
        let mut pair = Pair {
            keel,
            reference,
            metered: None,
            wasm,
            info,
            lenient_nans,
            stats: Stats::default(),
            stopped: false,
        };
        if pair
            .reference
            .compile(wasmi_wasm.unwrap_or(&pair.wasm))
            .is_err()
        {
            return Ok(None);
        }
        if let Err(e) = pair.keel.compile(&pair.wasm) {
            return Err(pair.finding(format!(
                "Keel rejects a module that wasmparser validates with Keel's features \
                 and wasmi compiles: {e}"
            )));
        }
        pair.stats.compiled += 1;
        Ok(Some(pair))
    }

    pub(crate) fn finding(&self, message: String) -> Finding {
        Finding::new(message).with_module(&self.wasm)
    }

    /// Adds the metered run: it compiles the module now and follows every
    /// later step.
    pub(crate) fn attach_metered(&mut self, mut metered: Metered) -> Result<(), Finding> {
        if let Err(e) = metered.compile(&self.wasm) {
            return Err(self.finding(format!(
                "Keel with metering {:?} rejects a module it compiles without: {e}",
                metered.plan
            )));
        }
        self.stats.compiled += 1;
        self.metered = Some(metered);
        Ok(())
    }

    fn metered_finding(&self, message: String) -> Finding {
        let plan = self.metered.as_ref().map(|m| m.plan);
        self.finding(format!(
            "Keel with metering (fuel and/or epochs, {plan:?}): {message}"
        ))
    }

    /// Instantiates in both; `Ok(true)` if both instances exist.
    pub(crate) fn instantiate(&mut self, plan: &HostPlan) -> Result<bool, Finding> {
        // The reference goes first, with fuel: a start function it cannot
        // finish may never finish, and Keel must not be asked to run it.
        let w = self.reference.instantiate(&self.info, plan);
        if matches!(w, Err(crate::compare::Failure::Exhausted(_))) {
            self.stopped = true;
            self.stats.inconclusive = true;
            return Ok(false);
        }
        let k = self.keel.instantiate(&self.info, plan);
        match agree(&k, &w, |_| String::new(), |_, _| true) {
            Agreement::Agree => {}
            Agreement::Inconclusive => {
                self.stopped = true;
                self.stats.inconclusive = true;
                return Ok(false);
            }
            Agreement::Diverge(d) => {
                return Err(self.finding(format!("instantiation differs:\n{d}")));
            }
        }
        let links = plan.links(&self.info.imports);
        let rejected = matches!(k, Err(crate::compare::Failure::Rejected(_)));
        if links == rejected {
            // Both engines agree with each other but not with the import
            // matching rules of the spec.
            return Err(self.finding(format!(
                "imports {} match by the spec's rules, yet instantiation gave {}",
                if links { "do" } else { "do not" },
                k.as_ref()
                    .err()
                    .map_or("success".to_string(), ToString::to_string),
            )));
        }
        self.check_host()?;
        if k.is_ok() {
            self.stats.instantiated += 1;
            self.check_exports("after instantiation")?;
        }
        if let Some(m) = &mut self.metered {
            let lenient = self.lenient_nans;
            let checked = m.instantiate(
                &self.info,
                plan,
                &mut self.keel,
                &k,
                lenient,
                &mut self.stats,
            );
            if let Err(e) = checked {
                return Err(self.metered_finding(e));
            }
        }
        Ok(k.is_ok())
    }

    /// Calls `name` with `args` in both and compares outcomes, host calls
    /// and host entities.
    pub(crate) fn call(&mut self, name: &str, args: &[Value]) -> Result<(), Finding> {
        if self.stopped {
            return Ok(());
        }
        let w = self.reference.call(name, args);
        // wasmi runs first, with fuel: a call it could not finish may not
        // terminate at all, so Keel (running without fuel) must not run it.
        if matches!(w, Err(crate::compare::Failure::Exhausted(_))) {
            self.stopped = true;
            self.stats.inconclusive = true;
            return Ok(());
        }
        let k = self.keel.call(name, args);
        match agree(&k, &w, |v| show(v), |a, b| results_agree(a, b)) {
            Agreement::Agree => {}
            Agreement::Inconclusive => {
                self.stopped = true;
                self.stats.inconclusive = true;
                return Ok(());
            }
            Agreement::Diverge(d) => {
                return Err(self.finding(format!(
                    "call of export {name:?} with {} differs:\n{d}",
                    show(args)
                )));
            }
        }
        self.stats.calls_compared += 1;
        self.check_host()?;
        if let Some(m) = &mut self.metered {
            let lenient = self.lenient_nans;
            let checked = m.call(
                &self.info,
                name,
                args,
                &mut self.keel,
                &k,
                lenient,
                &mut self.stats,
            );
            if let Err(e) = checked {
                return Err(self
                    .metered_finding(format!("call of export {name:?} with {}: {e}", show(args))));
            }
        }
        Ok(())
    }

    fn check_host(&mut self) -> Result<(), Finding> {
        if let Some(d) = diff_host_calls(self.keel.host_calls(), self.reference.host_calls()) {
            return Err(self.finding(format!("host calls differ: {d}")));
        }
        let (k, w) = (self.keel.host_entities(), self.reference.host_entities());
        if let Some(d) = diff_snapshots(&k, &w, self.lenient_nans) {
            return Err(self.finding(format!("host entity differs: {d}")));
        }
        Ok(())
    }

    /// Compares the state of every export.
    pub(crate) fn check_exports(&mut self, when: &str) -> Result<(), Finding> {
        if self.stopped {
            return Ok(());
        }
        let (k, w) = (
            self.keel.exports(&self.info),
            self.reference.exports(&self.info),
        );
        if let Some(d) = diff_snapshots(&k, &w, self.lenient_nans) {
            return Err(self.finding(format!("export state {when} differs: {d}")));
        }
        if let Some(m) = &mut self.metered {
            let lenient = self.lenient_nans;
            if let Err(e) = m.check_exports(&self.info, &mut self.keel, lenient, when) {
                return Err(self.metered_finding(e));
            }
        }
        Ok(())
    }

    /// The exported functions, in export order.
    pub(crate) fn exported_funcs(&self) -> Vec<(String, crate::interface::FuncTy)> {
        self.info
            .exports
            .iter()
            .filter_map(|e| match &e.ty {
                ExternTy::Func(f) => Some((e.name.clone(), f.clone())),
                _ => None,
            })
            .collect()
    }
}
