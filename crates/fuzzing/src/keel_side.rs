//! Keel as one side of a comparison: the engine under test.

use crate::compare::{Failure, Outcome, Snapshot, State, TrapKind};
use crate::host::{HostCall, HostPlan, HostTrap, Provided, StoreBounds, calls_of, host_results};
use crate::interface::{FuncTy, ModuleInfo, ValTy};
use crate::pair::Side;
use crate::value::{FuncRefDesc, Value};
use keel::{
    Caller, Engine, Extern, ExternRef, Func, Global, GlobalType, Instance, Linker, Memory,
    MemoryType, Module, Mutability, Ref, RefType, Store, StoreLimits, StoreLimitsBuilder, Table,
    TableType, Trap, V128, Val, ValType,
};

/// What a Keel store holds for the host.
pub(crate) struct KeelHost {
    calls: Vec<HostCall>,
    limits: StoreLimits,
    /// Fuel and epoch bookkeeping of a metered store (see `metered.rs`).
    pub meter: MeterHost,
}

/// What host functions and the epoch deadline callback of a metered store
/// do and record.
#[derive(Default)]
pub(crate) struct MeterHost {
    /// Fuel is on: every host call (and deadline callback) records the
    /// fuel left and charges `host_charge` units.
    pub fuel: bool,
    pub host_charge: u64,
    /// The fuel left as each host call or deadline callback found it,
    /// since last cleared.
    pub fuel_seen: Vec<u64>,
    /// Times the deadline callback still lets wasm continue (with a
    /// deadline of 0 ticks, reached again at the next check).
    pub epoch_continues: u64,
    /// Then: a deadline of [`FAR_TICKS`] instead of an interrupt.
    pub epoch_then_far: bool,
    /// Times the deadline callback ran.
    pub epoch_callbacks: u64,
}

/// An epoch deadline that nothing in a fuzz run reaches.
pub(crate) const FAR_TICKS: u64 = 1 << 40;

/// A Keel store with at most one module and instance.
pub(crate) struct KeelSide {
    store: Store<KeelHost>,
    module: Option<Module>,
    instance: Option<Instance>,
    /// The host's definitions, in plan order (`None` where the plan provides
    /// nothing).
    host: Vec<Option<Extern>>,
    /// The `keel::Trap` that ended the last instantiation or call, if any.
    last_trap: Option<Trap>,
    /// Whether instantiation and calls go through the `_async` methods.
    asynchronous: bool,
}

/// Drives an async call to its end by polling: nothing in a fuzz run
/// waits (its host functions are synchronous, nothing yields).
fn poll_to_end<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

impl KeelSide {
    /// A fresh store in `engine`, its limiter enforcing `bounds`.
    pub(crate) fn new(engine: &Engine, bounds: StoreBounds) -> KeelSide {
        let limits = StoreLimitsBuilder::new()
            .memory_size(bounds.memory_bytes)
            .table_elements(bounds.table_elements)
            .build();
        let mut store = Store::new(
            engine,
            KeelHost {
                calls: Vec::new(),
                limits,
                meter: MeterHost::default(),
            },
        );
        store.limiter(|h| &mut h.limits);
        KeelSide {
            store,
            module: None,
            instance: None,
            host: Vec::new(),
            last_trap: None,
            asynchronous: false,
        }
    }

    /// Instantiates and calls through the `_async` methods from now on.
    pub(crate) fn asynchronous(mut self, on: bool) -> KeelSide {
        self.asynchronous = on;
        self
    }

    /// The store, for the metered variant to read the fuel.
    pub(crate) fn store(&self) -> &Store<KeelHost> {
        &self.store
    }

    /// The store, for the metered variant to set fuel and deadlines.
    pub(crate) fn store_mut(&mut self) -> &mut Store<KeelHost> {
        &mut self.store
    }

    /// The trap that ended the last instantiation or call, if it trapped.
    pub(crate) fn last_trap(&self) -> Option<Trap> {
        self.last_trap
    }

    /// Whether an instance exists.
    pub(crate) fn has_instance(&self) -> bool {
        self.instance.is_some()
    }

    fn classify(&mut self, err: &keel::Error) -> Failure {
        self.last_trap = err.downcast_ref::<Trap>().copied();
        classify(err)
    }

    fn define(&mut self, index: u32, p: &Provided) -> Result<Option<Extern>, String> {
        let store = &mut self.store;
        Ok(Some(match p {
            Provided::Func {
                ty,
                seed,
                fail_on_call,
            } => Extern::Func(host_func(store, index, ty, *seed, *fail_on_call)),
            Provided::Global { ty, mutable, value } => {
                let gt = GlobalType::new(
                    val_type(*ty),
                    if *mutable {
                        Mutability::Var
                    } else {
                        Mutability::Const
                    },
                );
                let v = to_val(&mut *store, None, value)?;
                Extern::Global(Global::new(&mut *store, gt, v).map_err(|e| e.to_string())?)
            }
            Provided::Memory { limits, seed } => {
                let m = Memory::new(&mut *store, MemoryType::new(limits.min, limits.max))
                    .map_err(|e| e.to_string())?;
                let prefix = Provided::memory_prefix(*seed);
                let data = m.data_mut(&mut *store);
                let n = prefix.len().min(data.len());
                data[..n].copy_from_slice(&prefix[..n]);
                Extern::Memory(m)
            }
            Provided::Table { elem, limits, init } => {
                let ty = TableType::new(ref_type(*elem), limits.min, limits.max);
                let init = match to_val(&mut *store, None, init)? {
                    Val::FuncRef(f) => Ref::Func(f),
                    Val::ExternRef(e) => Ref::Extern(e),
                    other => return Err(format!("table initializer {other:?}")),
                };
                Extern::Table(Table::new(&mut *store, ty, init).map_err(|e| e.to_string())?)
            }
            Provided::Missing => return Ok(None),
        }))
    }
}

fn host_func(
    store: &mut Store<KeelHost>,
    index: u32,
    ty: &FuncTy,
    seed: u64,
    fail_on_call: Option<usize>,
) -> Func {
    let results_ty = ty.results.clone();
    let func_ty = func_type(store.engine(), ty);
    Func::new(
        &mut *store,
        func_ty,
        move |mut caller: Caller<'_, KeelHost>, params: &[Val], results: &mut [Val]| {
            let args: Vec<Value> = params.iter().map(|v| from_val(&caller, v)).collect();
            let n = calls_of(index, &caller.data().calls);
            let out = host_results(seed, n, &args, &results_ty);
            caller.data_mut().calls.push(HostCall {
                import: index,
                args,
            });
            if caller.data().meter.fuel {
                // What the guest left, and a charge for the call: the
                // guest must reload its fuel count after the call.
                let left = caller.get_fuel()?;
                let meter = &mut caller.data_mut().meter;
                meter.fuel_seen.push(left);
                let charge = meter.host_charge;
                caller.set_fuel(left.saturating_sub(charge))?;
            }
            if fail_on_call == Some(n) {
                return Err(keel::Error::new(HostTrap(index)));
            }
            for (slot, v) in results.iter_mut().zip(&out) {
                *slot = to_val(&mut caller, None, v).map_err(keel::Error::msg)?;
            }
            Ok(())
        },
    )
}

fn val_type(t: ValTy) -> ValType {
    match t {
        ValTy::I32 => ValType::I32,
        ValTy::I64 => ValType::I64,
        ValTy::F32 => ValType::F32,
        ValTy::F64 => ValType::F64,
        ValTy::V128 => ValType::V128,
        ValTy::FuncRef | ValTy::ExternRef | ValTy::ExnRef => ValType::Ref(ref_type(t)),
    }
}

fn ref_type(t: ValTy) -> RefType {
    match t {
        ValTy::FuncRef => RefType::FUNCREF,
        ValTy::ExnRef => RefType::EXNREF,
        _ => RefType::EXTERNREF,
    }
}

fn func_type(engine: &Engine, ty: &FuncTy) -> keel::FuncType {
    keel::FuncType::new(
        engine,
        ty.params.iter().map(|t| val_type(*t)),
        ty.results.iter().map(|t| val_type(*t)),
    )
}

fn val_ty(t: &ValType) -> Option<ValTy> {
    Some(match t {
        ValType::I32 => ValTy::I32,
        ValType::I64 => ValTy::I64,
        ValType::F32 => ValTy::F32,
        ValType::F64 => ValTy::F64,
        ValType::V128 => ValTy::V128,
        ValType::Ref(r) if *r == RefType::FUNCREF => ValTy::FuncRef,
        ValType::Ref(r) if *r == RefType::EXNREF => ValTy::ExnRef,
        ValType::Ref(_) => ValTy::ExternRef,
        _ => return None,
    })
}

fn func_ty(store: impl keel::AsContext, f: &Func) -> FuncTy {
    let ty = f.ty(store);
    FuncTy {
        params: ty.params().filter_map(|t| val_ty(&t)).collect(),
        results: ty.results().filter_map(|t| val_ty(&t)).collect(),
    }
}

fn to_val(
    mut store: impl keel::AsContextMut,
    instance: Option<Instance>,
    v: &Value,
) -> Result<Val, String> {
    Ok(match v {
        Value::I32(x) => Val::I32(*x),
        Value::I64(x) => Val::I64(*x),
        Value::F32(b) => Val::F32(*b),
        Value::F64(b) => Val::F64(*b),
        Value::V128(x) => Val::V128(V128::from(*x)),
        Value::FuncRef(None) => Val::FuncRef(None),
        Value::FuncRef(Some(FuncRefDesc { export, .. })) => {
            let name = export
                .as_deref()
                .ok_or("funcref argument without an export")?;
            let f = instance
                .and_then(|i| i.get_func(&mut store, name))
                .ok_or_else(|| format!("no exported function {name:?}"))?;
            Val::FuncRef(Some(f))
        }
        Value::ExnRef(false) => Val::ExnRef(None),
        Value::ExnRef(true) => return Err("a non-null exnref cannot be made up".into()),
        Value::ExternRef(None) => Val::ExternRef(None),
        Value::ExternRef(Some(id)) => Val::ExternRef(Some(
            ExternRef::new(&mut store, *id).map_err(|e| e.to_string())?,
        )),
    })
}

fn from_val<'a>(store: impl Into<keel::StoreContext<'a, KeelHost>> + Copy, v: &Val) -> Value
where
    KeelHost: 'a,
{
    match v {
        Val::I32(x) => Value::I32(*x),
        Val::I64(x) => Value::I64(*x),
        Val::F32(b) => Value::F32(*b),
        Val::F64(b) => Value::F64(*b),
        Val::V128(x) => Value::V128(x.as_u128()),
        Val::FuncRef(None) => Value::FuncRef(None),
        Val::FuncRef(Some(f)) => Value::FuncRef(Some(FuncRefDesc {
            export: None,
            ty: Some(func_ty(store.into(), f)),
        })),
        Val::ExternRef(None) => Value::ExternRef(None),
        Val::ExternRef(Some(e)) => Value::ExternRef({
            let store: keel::StoreContext<'_, KeelHost> = store.into();
            e.data(store)
                .ok()
                .flatten()
                .and_then(|d| d.downcast_ref::<u64>().copied())
        }),
        Val::ExnRef(e) => Value::ExnRef(e.is_some()),
    }
}

fn from_ref<'a>(store: impl Into<keel::StoreContext<'a, KeelHost>> + Copy, r: &Ref) -> Value
where
    KeelHost: 'a,
{
    match r {
        Ref::Func(f) => from_val(store, &Val::FuncRef(*f)),
        Ref::Extern(e) => from_val(store, &Val::ExternRef(e.clone())),
        Ref::Exn(e) => Value::ExnRef(e.is_some()),
    }
}

fn classify(err: &keel::Error) -> Failure {
    if let Some(t) = err.downcast_ref::<Trap>() {
        return match t {
            Trap::StackOverflow => Failure::Exhausted("stack overflow".into()),
            Trap::OutOfFuel | Trap::Interrupt => Failure::Exhausted(format!("{t}")),
            Trap::MemoryOutOfBounds => Failure::Trap(TrapKind::MemoryOutOfBounds),
            Trap::TableOutOfBounds => Failure::Trap(TrapKind::TableOutOfBounds),
            Trap::IndirectCallToNull => Failure::Trap(TrapKind::IndirectCallToNull),
            Trap::BadSignature => Failure::Trap(TrapKind::BadSignature),
            Trap::IntegerOverflow => Failure::Trap(TrapKind::IntegerOverflow),
            Trap::IntegerDivisionByZero => Failure::Trap(TrapKind::IntegerDivisionByZero),
            Trap::BadConversionToInteger => Failure::Trap(TrapKind::BadConversionToInteger),
            Trap::UnreachableCodeReached => Failure::Trap(TrapKind::Unreachable),
            Trap::NullReference => Failure::Trap(TrapKind::NullReference),
            other => Failure::Rejected(format!("unexpected trap {other:?}")),
        };
    }
    if let Some(h) = err.downcast_ref::<HostTrap>() {
        return Failure::Host(h.0);
    }
    if err.is::<keel::ThrownException>() {
        return Failure::Trap(TrapKind::UncaughtException);
    }
    // The store's limits refusing an instance, as wasmi's side reports
    // them: a resource, not a verdict.
    let message = format!("{err:#}");
    if message.contains("exceeds the store's limit") || message.contains("limit of") {
        return Failure::Exhausted(message);
    }
    Failure::Rejected(format!("{err:#}"))
}

impl Side for KeelSide {
    fn compile(&mut self, wasm: &[u8]) -> Result<(), String> {
        let m = Module::from_binary(self.store.engine(), wasm).map_err(|e| format!("{e:#}"))?;
        // A lazily compiled module runs its functions compiled one at a
        // time; for half the inputs (by length), serializing it first
        // switches it to all of them linked whole, which must run alike.
        if m.lazy_compilation_progress().is_some() && wasm.len().is_multiple_of(2) {
            m.serialize().map_err(|e| format!("{e:#}"))?;
        }
        self.module = Some(m);
        Ok(())
    }

    fn instantiate(&mut self, info: &ModuleInfo, plan: &HostPlan) -> Outcome<()> {
        let module = self.module.clone().expect("compiled before instantiation");
        self.last_trap = None;
        self.host.clear();
        for (i, p) in plan.provided.iter().enumerate() {
            let e = self
                .define(i as u32, p)
                .map_err(|e| Failure::Exhausted(format!("cannot create host entity: {e}")))?;
            self.host.push(e);
        }
        let result = if plan.by_name && !info.has_duplicate_import_names() {
            let mut linker = Linker::new(self.store.engine());
            for (import, e) in info.imports.iter().zip(&self.host) {
                if let Some(e) = e {
                    linker
                        .define(&self.store, &import.module, &import.name, e.clone())
                        .map_err(|e| Failure::Rejected(format!("{e:#}")))?;
                }
            }
            if self.asynchronous {
                poll_to_end(linker.instantiate_async(&mut self.store, &module))
            } else {
                linker.instantiate(&mut self.store, &module)
            }
        } else {
            let externs: Vec<Extern> = self.host[..plan.positional_len()]
                .iter()
                .flatten()
                .cloned()
                .collect();
            if self.asynchronous {
                poll_to_end(Instance::new_async(&mut self.store, &module, &externs))
            } else {
                Instance::new(&mut self.store, &module, &externs)
            }
        };
        let instance = result.map_err(|e| self.classify(&e))?;
        self.instance = Some(instance);
        Ok(())
    }

    fn call(&mut self, name: &str, args: &[Value]) -> Outcome<Vec<Value>> {
        let instance = self.instance.expect("instantiated before calls");
        self.last_trap = None;
        let f = instance
            .get_func(&mut self.store, name)
            .ok_or_else(|| Failure::Rejected(format!("no exported function {name:?}")))?;
        let n_results = f.ty(&self.store).results().len();
        let args = args
            .iter()
            .map(|a| to_val(&mut self.store, Some(instance), a))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Failure::Rejected)?;
        let mut results = vec![Val::I32(0); n_results];
        let called = if self.asynchronous {
            poll_to_end(f.call_async(&mut self.store, &args, &mut results))
        } else {
            f.call(&mut self.store, &args, &mut results)
        };
        called.map_err(|e| self.classify(&e))?;
        Ok(results.iter().map(|v| from_val(&self.store, v)).collect())
    }

    fn exports(&mut self, info: &ModuleInfo) -> Snapshot {
        let Some(instance) = self.instance else {
            return Vec::new();
        };
        info.exports
            .iter()
            .map(|e| {
                let state = match instance.get_export(&mut self.store, &e.name) {
                    Some(x) => self.state(&x),
                    None => State::Absent,
                };
                (e.name.clone(), state)
            })
            .collect()
    }

    fn host_entities(&mut self) -> Snapshot {
        let host = self.host.clone();
        host.iter()
            .enumerate()
            .filter_map(|(i, e)| match e {
                Some(Extern::Func(_)) | None => None,
                Some(e) => Some((format!("host entity {i}"), self.state(e))),
            })
            .collect()
    }

    fn host_calls(&self) -> &[HostCall] {
        &self.store.data().calls
    }
}

impl KeelSide {
    fn state(&mut self, e: &Extern) -> State {
        let store = &mut self.store;
        match e {
            Extern::Func(f) => State::Func(func_ty(&*store, f)),
            Extern::Tag(t) => {
                let ty = t.ty(&*store);
                State::Tag(FuncTy {
                    params: ty.ty().params().filter_map(|t| val_ty(&t)).collect(),
                    results: Vec::new(),
                })
            }
            Extern::Global(g) => {
                let v = g.get(&mut *store);
                State::Global(from_val(&*store, &v))
            }
            Extern::Memory(m) => State::Memory {
                pages: m.size(&*store),
                bytes: m.data(&*store).to_vec(),
            },
            Extern::Table(t) => {
                let size = t.size(&*store);
                let elems = (0..size)
                    .map(|i| match t.get(&mut *store, i) {
                        Some(r) => from_ref(&*store, &r),
                        None => Value::I32(-1),
                    })
                    .collect();
                State::Table(elems)
            }
        }
    }
}
