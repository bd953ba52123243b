//! A host program written for the `wasmtime` 48 crate, as a Wasmtime user
//! writes one: it bounds guests with fuel, epoch deadlines (with a deadline
//! callback) and store limits, and returns what it observed, one line per
//! fact (fuel left, how calls ended, how often the callback ran, what a
//! refused `memory.grow` did). Nothing here depends on timing.
//!
//! It names only `wasmtime`. `crates/keel/tests/port_limits.rs` compiles it
//! against Keel by renaming the crate (`extern crate keel as wasmtime;`);
//! `bench/src/bin/port-limits.rs` compiles it against Wasmtime 48 itself.
//! Both check the lines against `limits_host.expected`, which holds what
//! Wasmtime prints.

use std::fmt::Debug;
use wasmtime::{
    Caller, Config, Engine, Instance, Linker, Module, Store, StoreLimits, StoreLimitsBuilder, Trap,
    UpdateDeadline,
};

/// Runs every part of the program and returns the lines it observed.
pub fn run() -> wasmtime::Result<Vec<String>> {
    let mut out = Vec::new();
    fuel(&mut out)?;
    fuel_needed(&mut out)?;
    epochs(&mut out)?;
    limits(&mut out)?;
    Ok(out)
}

/// Errors the host itself raises, recognised in a failed call by their
/// text (the engine's own messages are not compared, only their kind).
const HOST_MESSAGES: &[&str] = &["cannot afford the host call", "tenant over budget"];

/// How a call ended: its value, the trap, a host error, or some other error.
fn outcome<R: Debug>(result: wasmtime::Result<R>) -> String {
    let err = match result {
        Ok(value) => return format!("ok {value:?}"),
        Err(err) => err,
    };
    if let Some(trap) = err.downcast_ref::<Trap>() {
        return format!("trap {trap:?} ({trap})");
    }
    let text = format!("{err:?}");
    match HOST_MESSAGES.iter().find(|m| text.contains(*m)) {
        Some(m) => format!("host error: {m}"),
        None => "error (not a trap)".to_string(),
    }
}

const FUEL_WAT: &str = r#"
(module
  (import "host" "charge" (func $charge (param i64) (result i64)))
  (memory (export "memory") 1)
  ;; Counts to $n: 7 units per iteration.
  (func (export "count") (param $n i32) (result i32) (local $i i32)
    (loop
      (br_if 0 (i32.lt_u
        (local.tee $i (i32.add (local.get $i) (i32.const 1)))
        (local.get $n))))
    (local.get $i))
  (func (export "fill") (param i32)
    (memory.fill (i32.const 0) (i32.const 7) (local.get 0)))
  (func (export "grow") (param i32) (result i32)
    (memory.grow (local.get 0)))
  ;; Asks the host for work that it charges for in fuel.
  (func (export "charged") (param i64) (result i64)
    (call $charge (local.get 0)))
  (func (export "spin") (loop (br 0))))
"#;

/// A fuel-metered engine, its module, and a store with the module
/// instantiated; the host function `charge` takes its price from the
/// guest's fuel and returns the fuel it found.
fn fuel_setup() -> wasmtime::Result<(Store<()>, Instance)> {
    let mut config = Config::new();
    config.consume_fuel(true);
    let engine = Engine::new(&config)?;
    let module = Module::new(&engine, FUEL_WAT)?;
    let mut linker = Linker::new(&engine);
    linker.func_wrap(
        "host",
        "charge",
        |mut caller: Caller<'_, ()>, price: i64| -> wasmtime::Result<i64> {
            let left = caller.get_fuel()?;
            let Some(after) = left.checked_sub(price as u64) else {
                wasmtime::bail!("cannot afford the host call");
            };
            caller.set_fuel(after)?;
            Ok(left as i64)
        },
    )?;
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &module)?;
    Ok((store, instance))
}

fn fuel(out: &mut Vec<String>) -> wasmtime::Result<()> {
    let (mut store, instance) = fuel_setup()?;
    let count = instance.get_typed_func::<i32, i32>(&mut store, "count")?;
    let fill = instance.get_typed_func::<i32, ()>(&mut store, "fill")?;
    let charged = instance.get_typed_func::<i64, i64>(&mut store, "charged")?;
    let spin = instance.get_typed_func::<(), ()>(&mut store, "spin")?;

    out.push(format!("fuel: a new store has {}", store.get_fuel()?));
    store.set_fuel(10_000)?;
    let r = outcome(count.call(&mut store, 100));
    out.push(format!("fuel: count(100) {r}, {} left", store.get_fuel()?));
    let r = outcome(fill.call(&mut store, 1000));
    out.push(format!("fuel: fill(1000) {r}, {} left", store.get_fuel()?));
    let r = outcome(charged.call(&mut store, 500));
    out.push(format!(
        "fuel: charged(500) {r}, {} left",
        store.get_fuel()?
    ));
    let r = outcome(charged.call(&mut store, 1_000_000));
    out.push(format!(
        "fuel: charged(1000000) {r}, {} left",
        store.get_fuel()?
    ));
    let r = outcome(count.call(&mut store, 1_000_000));
    out.push(format!(
        "fuel: count(1000000) {r}, {} left",
        store.get_fuel()?
    ));
    store.set_fuel(1_000_000)?;
    let r = outcome(spin.call(&mut store, ()));
    out.push(format!("fuel: spin {r}, {} left", store.get_fuel()?));
    // The guest cannot buy a large fill with its last units: none of it runs.
    let memory = instance.get_memory(&mut store, "memory").expect("memory");
    memory.data_mut(&mut store).fill(0);
    store.set_fuel(1000)?;
    let r = outcome(fill.call(&mut store, 65536));
    let touched = memory.data(&store).iter().filter(|b| **b != 0).count();
    out.push(format!(
        "fuel: fill(65536) on 1000 {r}, {touched} bytes were 7"
    ));

    let engine = Engine::default();
    let mut plain = Store::new(&engine, ());
    let (get, set) = (plain.get_fuel().is_err(), plain.set_fuel(5).is_err());
    out.push(format!(
        "fuel: off, get_fuel fails {get}, set_fuel fails {set}"
    ));
    Ok(())
}

/// A call of an export, its result dropped.
type Call<'a> = &'a dyn Fn(&mut Store<()>) -> wasmtime::Result<()>;

/// For a few calls, the least fuel they complete on and what is left then:
/// where the engine checks the fuel, not only what it charges.
fn fuel_needed(out: &mut Vec<String>) -> wasmtime::Result<()> {
    let (mut store, instance) = fuel_setup()?;
    let count = instance.get_typed_func::<i32, i32>(&mut store, "count")?;
    let fill = instance.get_typed_func::<i32, ()>(&mut store, "fill")?;
    let grow = instance.get_typed_func::<i32, i32>(&mut store, "grow")?;
    let charged = instance.get_typed_func::<i64, i64>(&mut store, "charged")?;
    let calls: [(&str, Call<'_>); 5] = [
        ("count(10)", &|s| count.call(s, 10).map(drop)),
        ("fill(100)", &|s| fill.call(s, 100)),
        ("fill(10)", &|s| fill.call(s, 10)),
        ("grow(0)", &|s| grow.call(s, 0).map(drop)),
        ("charged(0)", &|s| charged.call(s, 0).map(drop)),
    ];
    for (name, call) in calls {
        let mut line = format!("fuel needed: {name} never completes");
        for budget in 0..1000 {
            store.set_fuel(budget)?;
            if call(&mut store).is_ok() {
                let left = store.get_fuel()?;
                store.set_fuel(1000)?;
                call(&mut store)?;
                let spent = 1000 - store.get_fuel()?;
                line = format!(
                    "fuel needed: {name} completes on {budget} ({left} left), spends {spent}"
                );
                break;
            }
        }
        out.push(line);
    }
    Ok(())
}

const EPOCH_WAT: &str = r#"
(module
  (import "host" "tick" (func $tick))
  (func $next (export "next") (param i32) (result i32)
    (i32.add (local.get 0) (i32.const 1)))
  ;; Ticks the engine's epoch $n times, stepping a counter after each tick.
  (func (export "ticks") (param $n i32) (result i32) (local $i i32)
    (loop
      (call $tick)
      (local.set $i (call $next (local.get $i)))
      (br_if 0 (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $i)))
"#;

fn epochs(out: &mut Vec<String>) -> wasmtime::Result<()> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    let engine = Engine::new(&config)?;
    let module = Module::new(&engine, EPOCH_WAT)?;
    let mut linker = Linker::new(&engine);
    // The guest itself moves the epoch on, so every tick falls at a known
    // point of its run.
    linker.func_wrap("host", "tick", |caller: Caller<'_, u32>| {
        caller.engine().increment_epoch();
    })?;
    // The store's data counts the deadline callback's runs.
    let mut store = Store::new(&engine, 0u32);
    let instance = linker.instantiate(&mut store, &module)?;
    let next = instance.get_typed_func::<i32, i32>(&mut store, "next")?;
    let ticks = instance.get_typed_func::<i32, i32>(&mut store, "ticks")?;

    // A new store's deadline is the current epoch: it has already passed.
    let r = outcome(next.call(&mut store, 1));
    out.push(format!("epoch: no deadline, next(1) {r}"));
    let r = outcome(ticks.call(&mut store, 3));
    out.push(format!("epoch: no deadline, ticks(3) {r}"));
    store.set_epoch_deadline(1);
    let r = outcome(next.call(&mut store, 1));
    out.push(format!("epoch: deadline 1, next(1) {r}"));

    // Each time the deadline passes, the callback grants one more tick.
    store.epoch_deadline_callback(|mut ctx| {
        *ctx.data_mut() += 1;
        Ok(UpdateDeadline::Continue(1))
    });
    let r = outcome(ticks.call(&mut store, 5));
    out.push(format!(
        "epoch: callback continues, ticks(5) {r}, callback ran {} times",
        store.data()
    ));

    // The callback stops the guest on its third run, with an error.
    *store.data_mut() = 0;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut ctx| {
        *ctx.data_mut() += 1;
        if *ctx.data() < 3 {
            Ok(UpdateDeadline::Continue(1))
        } else {
            Err(wasmtime::format_err!("tenant over budget"))
        }
    });
    let r = outcome(ticks.call(&mut store, 10));
    out.push(format!(
        "epoch: callback fails on its third run, ticks(10) {r}, callback ran {} times",
        store.data()
    ));

    // ... or with an interrupt.
    *store.data_mut() = 0;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut ctx| {
        *ctx.data_mut() += 1;
        Ok(if *ctx.data() < 2 {
            UpdateDeadline::Continue(1)
        } else {
            UpdateDeadline::Interrupt
        })
    });
    let r = outcome(ticks.call(&mut store, 10));
    out.push(format!(
        "epoch: callback interrupts on its second run, ticks(10) {r}, callback ran {} times",
        store.data()
    ));

    // Back to trapping at the deadline.
    *store.data_mut() = 0;
    store.epoch_deadline_trap();
    store.set_epoch_deadline(2);
    let r = outcome(ticks.call(&mut store, 10));
    out.push(format!(
        "epoch: trap at the deadline 2 ticks away, ticks(10) {r}, callback ran {} times",
        store.data()
    ));
    store.set_epoch_deadline(100);
    let r = outcome(ticks.call(&mut store, 10));
    out.push(format!("epoch: deadline 100 ticks away, ticks(10) {r}"));
    Ok(())
}

const LIMITS_WAT: &str = r#"
(module
  (memory (export "memory") 1)
  (table 1 funcref)
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "size") (result i32) (memory.size))
  (func (export "grow_table") (param i32) (result i32)
    (table.grow (ref.null func) (local.get 0))))
"#;

/// A memory that declares its own maximum of 2 pages.
const BOUNDED_WAT: &str = r#"
(module
  (memory (export "memory") 1 2)
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))
"#;

const PAGE: usize = 65536;

/// A store limited by `limits`, with the limiter installed.
fn limited(engine: &Engine, limits: StoreLimits) -> Store<StoreLimits> {
    let mut store = Store::new(engine, limits);
    store.limiter(|limits| limits);
    store
}

fn limits(out: &mut Vec<String>) -> wasmtime::Result<()> {
    let engine = Engine::default();
    let module = Module::new(&engine, LIMITS_WAT)?;
    for trap in [false, true] {
        let limits = StoreLimitsBuilder::new()
            .memory_size(4 * PAGE)
            .table_elements(10)
            .trap_on_grow_failure(trap)
            .build();
        let mut store = limited(&engine, limits);
        let instance = Instance::new(&mut store, &module, &[])?;
        let grow = instance.get_typed_func::<i32, i32>(&mut store, "grow")?;
        let size = instance.get_typed_func::<(), i32>(&mut store, "size")?;
        let grow_table = instance.get_typed_func::<i32, i32>(&mut store, "grow_table")?;
        let memory = instance.get_memory(&mut store, "memory").expect("memory");
        let tag = format!("limits (4 pages, 10 elements, trap_on_grow_failure {trap})");
        out.push(format!(
            "{tag}: grow(3) {}",
            outcome(grow.call(&mut store, 3))
        ));
        out.push(format!(
            "{tag}: grow(1) {}",
            outcome(grow.call(&mut store, 1))
        ));
        out.push(format!(
            "{tag}: size {}",
            outcome(size.call(&mut store, ()))
        ));
        let r = outcome(memory.grow(&mut store, 1));
        out.push(format!("{tag}: Memory::grow(1) from the host {r}"));
        let r = outcome(grow_table.call(&mut store, 9));
        out.push(format!("{tag}: grow_table(9) {r}"));
        let r = outcome(grow_table.call(&mut store, 1));
        out.push(format!("{tag}: grow_table(1) {r}"));
    }

    // A memory's own declared maximum, under a generous store limit.
    let bounded = Module::new(&engine, BOUNDED_WAT)?;
    for trap in [false, true] {
        let limits = StoreLimitsBuilder::new()
            .memory_size(16 * PAGE)
            .trap_on_grow_failure(trap)
            .build();
        let mut store = limited(&engine, limits);
        let instance = Instance::new(&mut store, &bounded, &[])?;
        let grow = instance.get_typed_func::<i32, i32>(&mut store, "grow")?;
        let tag = format!("limits (memory 1 2, trap_on_grow_failure {trap})");
        out.push(format!(
            "{tag}: grow(1) {}",
            outcome(grow.call(&mut store, 1))
        ));
        out.push(format!(
            "{tag}: grow(1) {}",
            outcome(grow.call(&mut store, 1))
        ));
    }

    // Limits also apply when instantiating.
    let big = Module::new(&engine, "(module (memory 5))")?;
    let mut store = limited(
        &engine,
        StoreLimitsBuilder::new().memory_size(4 * PAGE).build(),
    );
    let r = outcome(Instance::new(&mut store, &big, &[]).map(drop));
    out.push(format!("limits: instantiate (memory 5) under 4 pages {r}"));
    let mut store = limited(&engine, StoreLimitsBuilder::new().instances(1).build());
    let first = outcome(Instance::new(&mut store, &module, &[]).map(drop));
    let second = outcome(Instance::new(&mut store, &module, &[]).map(drop));
    out.push(format!(
        "limits: instances(1), first instance {first}, second {second}"
    ));
    Ok(())
}
