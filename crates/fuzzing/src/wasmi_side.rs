//! wasmi as the reference: an interpreter that shares no code with Keel
//! (it has its own validator version, its own translation and execution),
//! with fuel so that every call ends.

use crate::compare::{Failure, Outcome, Snapshot, State, TrapKind};
use crate::generate::{ENGINE_USES, keel_features};
use crate::host::{HostCall, HostPlan, HostTrap, Provided, StoreBounds, calls_of, host_results};
use crate::interface::{ExternTy, FuncTy, ModuleInfo, ValTy};
use crate::pair::Side;
use crate::value::{FuncRefDesc, Value};
use std::sync::Mutex;
use wasmi::errors::{ErrorKind, InstantiationError};
use wasmi::{
    AsContext, AsContextMut, Caller, CompilationMode, Config, Engine, Extern, ExternRef, F32, F64,
    Func, Global, Instance, Linker, Memory, MemoryType, Module, Mutability, Nullable, Ref, RefType,
    Store, StoreLimits, StoreLimitsBuilder, Table, TableType, TrapCode, V128, Val, ValType,
};

/// Fuel for one call or one instantiation. Generated modules bound their
/// own loops far below this; it matters for raw (seed) modules, which may
/// loop forever.
const FUEL: u64 = 20_000_000;

/// The reference engine, shared between inputs and replaced now and then
/// (see [`ENGINE_USES`]).
pub(crate) fn engine() -> Engine {
    static ENGINE: Mutex<Option<(Engine, usize)>> = Mutex::new(None);
    let mut slot = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    match &mut *slot {
        Some((engine, uses)) if *uses < ENGINE_USES => {
            *uses += 1;
            engine.clone()
        }
        _ => {
            let engine = Engine::new(&config());
            *slot = Some((engine.clone(), 1));
            engine
        }
    }
}

fn config() -> Config {
    let features = keel_features();
    let mut config = Config::default();
    config
        .consume_fuel(true)
        // Translate everything up front, so that a module wasmi cannot
        // handle is skipped before anything runs.
        .compilation_mode(CompilationMode::Eager)
        .wasm_multi_value(true)
        .wasm_bulk_memory(true)
        .wasm_reference_types(true)
        .wasm_sign_extension(true)
        .wasm_saturating_float_to_int(true)
        .wasm_simd(features.simd())
        .wasm_relaxed_simd(features.relaxed_simd())
        .wasm_multi_memory(features.multi_memory())
        .wasm_extended_const(features.extended_const())
        .wasm_tail_call(features.tail_call())
        .wasm_wide_arithmetic(features.wide_arithmetic())
        .wasm_memory64(features.memory64())
        .wasm_custom_page_sizes(features.custom_page_sizes());
    config
}

/// What a wasmi store holds for the host.
pub(crate) struct WasmiHost {
    calls: Vec<HostCall>,
    limits: StoreLimits,
}

/// A wasmi store with at most one module and instance.
pub(crate) struct WasmiSide {
    engine: Engine,
    store: Store<WasmiHost>,
    module: Option<Module>,
    instance: Option<Instance>,
    host: Vec<Option<Extern>>,
}

impl WasmiSide {
    /// A fresh store.
    pub(crate) fn new(bounds: StoreBounds) -> WasmiSide {
        let limits = StoreLimitsBuilder::new()
            .memory_size(bounds.memory_bytes)
            .table_elements(bounds.table_elements)
            .build();
        let engine = engine();
        let mut store = Store::new(
            &engine,
            WasmiHost {
                calls: Vec::new(),
                limits,
            },
        );
        store.limiter(|h| &mut h.limits);
        WasmiSide {
            engine,
            store,
            module: None,
            instance: None,
            host: Vec::new(),
        }
    }

    fn define(&mut self, index: u32, p: &Provided) -> Result<Option<Extern>, String> {
        let store = &mut self.store;
        Ok(Some(match p {
            Provided::Func {
                ty,
                seed,
                fail_on_call,
            } => Extern::Func(host_func(store, index, ty, *seed, *fail_on_call)?),
            Provided::Global { mutable, value, .. } => {
                let v = to_val(&mut *store, None, value)?;
                let m = if *mutable {
                    Mutability::Var
                } else {
                    Mutability::Const
                };
                Extern::Global(Global::new(&mut *store, v, m))
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
    store: &mut Store<WasmiHost>,
    index: u32,
    ty: &FuncTy,
    seed: u64,
    fail_on_call: Option<usize>,
) -> Result<Func, String> {
    let results_ty = ty.results.clone();
    let fty = func_type(ty)?;
    Ok(Func::new(
        &mut *store,
        fty,
        move |mut caller: Caller<'_, WasmiHost>, params: &[Val], results: &mut [Val]| {
            let args: Vec<Value> = params.iter().map(|v| from_val(&caller, v)).collect();
            let n = calls_of(index, &caller.data().calls);
            let out = host_results(seed, n, &args, &results_ty);
            caller.data_mut().calls.push(HostCall {
                import: index,
                args,
            });
            if fail_on_call == Some(n) {
                return Err(wasmi::Error::host(HostTrap(index)));
            }
            for (slot, v) in results.iter_mut().zip(&out) {
                *slot = to_val(&mut caller, None, v).map_err(wasmi::Error::new)?;
            }
            Ok(())
        },
    ))
}

fn val_type(t: ValTy) -> ValType {
    match t {
        ValTy::I32 => ValType::I32,
        ValTy::I64 => ValType::I64,
        ValTy::F32 => ValType::F32,
        ValTy::F64 => ValType::F64,
        ValTy::V128 => ValType::V128,
        ValTy::FuncRef => ValType::FuncRef,
        ValTy::ExternRef => ValType::ExternRef,
        // Modules with exceptions are compared Keel against Keel: wasmi
        // never compiles one (`differential.rs`).
        ValTy::ExnRef => ValType::ExternRef,
    }
}

fn val_ty(t: ValType) -> ValTy {
    match t {
        ValType::I32 => ValTy::I32,
        ValType::I64 => ValTy::I64,
        ValType::F32 => ValTy::F32,
        ValType::F64 => ValTy::F64,
        ValType::V128 => ValTy::V128,
        ValType::FuncRef => ValTy::FuncRef,
        ValType::ExternRef => ValTy::ExternRef,
    }
}

fn ref_type(t: ValTy) -> RefType {
    if t == ValTy::FuncRef {
        RefType::Func
    } else {
        RefType::Extern
    }
}

fn func_type(ty: &FuncTy) -> Result<wasmi::FuncType, String> {
    // wasmi panics on more parameters or results than it supports; the
    // validator has already bounded both far below that.
    Ok(wasmi::FuncType::new(
        ty.params.iter().map(|t| val_type(*t)).collect::<Vec<_>>(),
        ty.results.iter().map(|t| val_type(*t)).collect::<Vec<_>>(),
    ))
}

fn func_ty(store: impl AsContext, f: &Func) -> FuncTy {
    let ty = f.ty(store);
    FuncTy {
        params: ty.params().iter().map(|t| val_ty(*t)).collect(),
        results: ty.results().iter().map(|t| val_ty(*t)).collect(),
    }
}

fn to_val(
    mut store: impl AsContextMut,
    instance: Option<Instance>,
    v: &Value,
) -> Result<Val, String> {
    Ok(match v {
        Value::I32(x) => Val::I32(*x),
        Value::I64(x) => Val::I64(*x),
        Value::F32(b) => Val::F32(F32::from_bits(*b)),
        Value::F64(b) => Val::F64(F64::from_bits(*b)),
        Value::V128(x) => Val::V128(V128::from(*x)),
        Value::FuncRef(None) => Val::FuncRef(Nullable::Null),
        Value::ExnRef(_) => return Err("wasmi has no exception references".into()),
        Value::FuncRef(Some(FuncRefDesc { export, .. })) => {
            let name = export
                .as_deref()
                .ok_or("funcref argument without an export")?;
            let f = instance
                .and_then(|i| i.get_func(&store, name))
                .ok_or_else(|| format!("no exported function {name:?}"))?;
            Val::FuncRef(Nullable::Val(f))
        }
        Value::ExternRef(None) => Val::ExternRef(Nullable::Null),
        Value::ExternRef(Some(id)) => {
            Val::ExternRef(Nullable::Val(ExternRef::new(&mut store, *id)))
        }
    })
}

fn from_val(store: impl AsContext<Data = WasmiHost> + Copy, v: &Val) -> Value {
    match v {
        Val::I32(x) => Value::I32(*x),
        Val::I64(x) => Value::I64(*x),
        Val::F32(x) => Value::F32(x.to_bits()),
        Val::F64(x) => Value::F64(x.to_bits()),
        Val::V128(x) => Value::V128(x.as_u128()),
        Val::FuncRef(Nullable::Null) => Value::FuncRef(None),
        Val::FuncRef(Nullable::Val(f)) => Value::FuncRef(Some(FuncRefDesc {
            export: None,
            ty: Some(func_ty(store, f)),
        })),
        Val::ExternRef(Nullable::Null) => Value::ExternRef(None),
        Val::ExternRef(Nullable::Val(e)) => {
            Value::ExternRef(e.data(store.as_context()).downcast_ref::<u64>().copied())
        }
    }
}

fn classify(err: &wasmi::Error) -> Failure {
    if let Some(h) = err.downcast_ref::<HostTrap>() {
        return Failure::Host(h.0);
    }
    match err.kind() {
        // wasmi reports an element segment beyond its table as an
        // instantiation error; the spec makes it a trap.
        ErrorKind::Instantiation(InstantiationError::ElementSegmentDoesNotFit { .. }) => {
            return Failure::Trap(TrapKind::TableOutOfBounds);
        }
        ErrorKind::Instantiation(
            InstantiationError::TooManyInstances
            | InstantiationError::TooManyTables
            | InstantiationError::TooManyMemories
            | InstantiationError::FailedToInstantiateMemory(_)
            | InstantiationError::FailedToInstantiateTable(_),
        ) => return Failure::Exhausted(err.to_string()),
        _ => {}
    }
    match err.as_trap_code() {
        Some(code) => match code {
            TrapCode::UnreachableCodeReached => Failure::Trap(TrapKind::Unreachable),
            TrapCode::MemoryOutOfBounds => Failure::Trap(TrapKind::MemoryOutOfBounds),
            TrapCode::TableOutOfBounds => Failure::Trap(TrapKind::TableOutOfBounds),
            TrapCode::IndirectCallToNull => Failure::Trap(TrapKind::IndirectCallToNull),
            TrapCode::IntegerDivisionByZero => Failure::Trap(TrapKind::IntegerDivisionByZero),
            TrapCode::IntegerOverflow => Failure::Trap(TrapKind::IntegerOverflow),
            TrapCode::BadConversionToInteger => Failure::Trap(TrapKind::BadConversionToInteger),
            TrapCode::BadSignature => Failure::Trap(TrapKind::BadSignature),
            TrapCode::StackOverflow
            | TrapCode::OutOfFuel
            | TrapCode::GrowthOperationLimited
            | TrapCode::OutOfSystemMemory => Failure::Exhausted(code.to_string()),
        },
        None => Failure::Rejected(err.to_string()),
    }
}

impl Side for WasmiSide {
    fn compile(&mut self, wasm: &[u8]) -> Result<(), String> {
        let m = Module::new(&self.engine, wasm).map_err(|e| e.to_string())?;
        self.module = Some(m);
        Ok(())
    }

    fn instantiate(&mut self, info: &ModuleInfo, plan: &HostPlan) -> Outcome<()> {
        let module = self.module.clone().expect("compiled before instantiation");
        self.host.clear();
        for (i, p) in plan.provided.iter().enumerate() {
            let e = self
                .define(i as u32, p)
                .map_err(|e| Failure::Exhausted(format!("cannot create host entity: {e}")))?;
            self.host.push(e);
        }
        self.store
            .set_fuel(FUEL)
            .map_err(|e| Failure::Rejected(e.to_string()))?;
        let result = if plan.by_name && !info.has_duplicate_import_names() {
            let mut linker = Linker::new(&self.engine);
            for (import, e) in info.imports.iter().zip(&self.host) {
                if let Some(e) = e {
                    linker
                        .define(&import.module, &import.name, *e)
                        .map_err(|e| Failure::Rejected(e.to_string()))?;
                }
            }
            linker.instantiate_and_start(&mut self.store, &module)
        } else {
            let positional = plan.positional_len();
            let externs: Vec<Extern> = wasmi_import_order(&module, info)
                .into_iter()
                .take_while(|&i| i < positional)
                .filter_map(|i| self.host[i])
                .collect();
            Instance::new(&mut self.store, &module, &externs)
        };
        let instance = result.map_err(|e| classify(&e))?;
        self.instance = Some(instance);
        Ok(())
    }

    fn call(&mut self, name: &str, args: &[Value]) -> Outcome<Vec<Value>> {
        let instance = self.instance.expect("instantiated before calls");
        let f = instance
            .get_func(&self.store, name)
            .ok_or_else(|| Failure::Rejected(format!("no exported function {name:?}")))?;
        let results_ty = f.ty(&self.store).results().to_vec();
        let args = args
            .iter()
            .map(|a| to_val(&mut self.store, Some(instance), a))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Failure::Rejected)?;
        let mut results: Vec<Val> = results_ty.iter().map(|t| Val::default_for_ty(*t)).collect();
        self.store
            .set_fuel(FUEL)
            .map_err(|e| Failure::Rejected(e.to_string()))?;
        f.call(&mut self.store, &args, &mut results)
            .map_err(|e| classify(&e))?;
        Ok(results.iter().map(|v| from_val(&self.store, v)).collect())
    }

    fn exports(&mut self, info: &ModuleInfo) -> Snapshot {
        let Some(instance) = self.instance else {
            return Vec::new();
        };
        info.exports
            .iter()
            .map(|e| {
                let state = match instance.get_export(&self.store, &e.name) {
                    Some(x) => self.state(&x),
                    None => State::Absent,
                };
                (e.name.clone(), state)
            })
            .collect()
    }

    fn host_entities(&mut self) -> Snapshot {
        self.host
            .iter()
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

impl WasmiSide {
    fn state(&self, e: &Extern) -> State {
        let store = &self.store;
        match e {
            Extern::Func(f) => State::Func(func_ty(store, f)),
            Extern::Global(g) => State::Global(from_val(store, &g.get(store))),
            Extern::Memory(m) => State::Memory {
                pages: m.size(store),
                bytes: m.data(store).to_vec(),
            },
            Extern::Table(t) => {
                let elems = (0..t.size(store))
                    .map(|i| match t.get(store, i) {
                        Some(Ref::Func(f)) => from_val(store, &Val::FuncRef(f)),
                        Some(Ref::Extern(x)) => from_val(store, &Val::ExternRef(x)),
                        None => Value::I32(-1),
                    })
                    .collect();
                State::Table(elems)
            }
        }
    }
}

/// Declaration indices of `info`'s imports in the order wasmi's
/// `Instance::new` expects them: wasmi groups imports by kind (functions,
/// tables, memories, globals), keeping declaration order within a kind.
fn wasmi_import_order(module: &Module, info: &ModuleInfo) -> Vec<usize> {
    let kind_of_wasmi = |t: &wasmi::ExternType| match t {
        wasmi::ExternType::Func(_) => 0,
        wasmi::ExternType::Table(_) => 1,
        wasmi::ExternType::Memory(_) => 2,
        wasmi::ExternType::Global(_) => 3,
    };
    let kind_of_ours = |t: &ExternTy| match t {
        ExternTy::Func(_) => 0,
        ExternTy::Table { .. } => 1,
        ExternTy::Memory(_) => 2,
        ExternTy::Global { .. } => 3,
    };
    let mut used = vec![false; info.imports.len()];
    let mut order = Vec::new();
    for import in module.imports() {
        let kind = kind_of_wasmi(import.ty());
        let found = info.imports.iter().enumerate().position(|(i, ours)| {
            !used[i]
                && ours.module == import.module()
                && ours.name == import.name()
                && kind_of_ours(&ours.ty) == kind
        });
        match found {
            Some(i) => {
                used[i] = true;
                order.push(i);
            }
            // Cannot happen for a module both read alike; stop the list
            // short, which fails instantiation as a short list would.
            None => break,
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first finding of the `instantiate` oracle was its own: wasmi
    /// wants positional imports grouped by kind, so a module importing a
    /// memory before a table looked like a Keel divergence.
    #[test]
    fn positional_imports_follow_wasmi_order() {
        // (module (import "" "" (memory 1)) (import "" "" (table 1 funcref))
        //         (import "m" "f" (func)))
        let wasm: &[u8] = &[
            0, 97, 115, 109, 1, 0, 0, 0, // header
            1, 4, 1, 96, 0, 0, // type section: (func)
            2, 18, 3, // import section, 3 imports
            0, 0, 2, 0, 1, // "" "" memory min 1
            0, 0, 1, 112, 0, 1, // "" "" table funcref min 1
            1, 109, 1, 102, 0, 0, // "m" "f" func type 0
        ];
        let info = ModuleInfo::read(wasm, keel_features()).expect("valid");
        let engine = Engine::default();
        let module = Module::new(&engine, wasm).expect("wasmi compiles it");
        assert_eq!(wasmi_import_order(&module, &info), vec![2, 1, 0]);
    }
}
