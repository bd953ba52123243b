//! Name-based linking of imports.

use crate::func::{HostFunc, IntoFunc};
use crate::store::{AsContext, AsContextMut, StoreInner};
use crate::{Caller, Engine, Extern, Func, FuncType, Instance, InstancePre, Module, Val};
use anyhow::bail;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

#[derive(Clone)]
pub(crate) enum Definition {
    /// Something that already lives in a store.
    Extern(Extern),
    /// A host function, put into a store when a module needs it.
    HostFunc(Arc<HostFunc>),
}

impl Definition {
    /// The definition as an extern of `store`, placing a host function in
    /// it.
    pub(crate) fn to_extern(&self, store: &mut crate::store::StoreOpaque) -> Extern {
        match self {
            Definition::Extern(e) => e.clone(),
            Definition::HostFunc(h) => Extern::Func(store.add_host_func(h.clone())),
        }
    }
}

/// Resolves imports by `(module, name)` for stores with data `T`.
///
/// Host functions defined with [`Linker::func_wrap`] belong to no store:
/// one linker can instantiate into many stores.
pub struct Linker<T: 'static> {
    engine: Engine,
    map: HashMap<(String, String), Definition>,
    allow_shadowing: bool,
    _marker: PhantomData<fn() -> T>,
}

impl<T: 'static> Clone for Linker<T> {
    fn clone(&self) -> Self {
        Linker {
            engine: self.engine.clone(),
            map: self.map.clone(),
            allow_shadowing: self.allow_shadowing,
            _marker: PhantomData,
        }
    }
}

impl<T: 'static> Linker<T> {
    /// An empty linker.
    pub fn new(engine: &Engine) -> Linker<T> {
        Linker {
            engine: engine.clone(),
            map: HashMap::new(),
            allow_shadowing: false,
            _marker: PhantomData,
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Whether a later definition may replace an earlier one of the same
    /// name (by default that is an error).
    pub fn allow_shadowing(&mut self, allow: bool) -> &mut Self {
        self.allow_shadowing = allow;
        self
    }

    fn insert(&mut self, module: &str, name: &str, def: Definition) -> crate::Result<()> {
        let key = (module.to_string(), name.to_string());
        if !self.allow_shadowing && self.map.contains_key(&key) {
            bail!("import of `{module}::{name}` defined twice");
        }
        self.map.insert(key, def);
        Ok(())
    }

    /// Defines `module::name` as `item`, which lives in `store`.
    pub fn define(
        &mut self,
        store: impl AsContext<Data = T>,
        module: &str,
        name: &str,
        item: impl Into<Extern>,
    ) -> crate::Result<&mut Self> {
        let item = item.into();
        if !item.store_id_matches(&store.as_context().0.opaque) {
            bail!("definition of `{module}::{name}` comes from another store");
        }
        self.insert(module, name, Definition::Extern(item))?;
        Ok(self)
    }

    /// Defines `module::name` as a host function from a typed closure.
    pub fn func_wrap<Params, Args>(
        &mut self,
        module: &str,
        name: &str,
        func: impl IntoFunc<T, Params, Args>,
    ) -> crate::Result<&mut Self> {
        let host = func.into_host_func(&self.engine)?;
        self.insert(module, name, Definition::HostFunc(host))?;
        Ok(self)
    }

    /// Defines `module::name` as an already built host function.
    pub(crate) fn define_host_func(
        &mut self,
        module: &str,
        name: &str,
        host: Arc<HostFunc>,
    ) -> crate::Result<()> {
        self.insert(module, name, Definition::HostFunc(host))
    }

    /// Defines `module::name` as a host function of type `ty` taking and
    /// returning [`Val`]s.
    pub fn func_new(
        &mut self,
        module: &str,
        name: &str,
        ty: FuncType,
        func: impl Fn(Caller<'_, T>, &[Val], &mut [Val]) -> crate::Result<()> + Send + Sync + 'static,
    ) -> crate::Result<&mut Self> {
        let host = Func::host_new(&self.engine, ty, func)?;
        self.insert(module, name, Definition::HostFunc(host))?;
        Ok(self)
    }

    /// Defines every export of `instance` under `module`.
    pub fn instance(
        &mut self,
        mut store: impl AsContextMut<Data = T>,
        module: &str,
        instance: Instance,
    ) -> crate::Result<&mut Self> {
        for export in instance.exports(&mut store) {
            let name = export.name().to_string();
            self.insert(module, &name, Definition::Extern(export.into_extern()))?;
        }
        Ok(self)
    }

    fn resolve(&self, store: &mut StoreInner<T>, module: &str, name: &str) -> Option<Extern> {
        let def = self.map.get(&(module.to_string(), name.to_string()))?;
        Some(def.to_extern(&mut store.opaque))
    }

    /// The definition of `module::name`, placed in `store` if needed.
    pub fn get(
        &self,
        mut store: impl AsContextMut<Data = T>,
        module: &str,
        name: &str,
    ) -> Option<Extern> {
        self.resolve(store.as_context_mut().0, module, name)
    }

    /// The definition of every import of `module`, in import order.
    fn definitions(&self, module: &Module) -> crate::Result<Vec<Definition>> {
        module
            .env()
            .imports
            .iter()
            .map(|import| {
                let key = (import.module.to_string(), import.field.to_string());
                match self.map.get(&key) {
                    Some(d) => Ok(d.clone()),
                    None => bail!(
                        "unknown import: `{}::{}` has not been defined",
                        import.module,
                        import.field
                    ),
                }
            })
            .collect()
    }

    /// Instantiates `module`, resolving every import by name.
    pub fn instantiate(
        &self,
        mut store: impl AsContextMut<Data = T>,
        module: &Module,
    ) -> crate::Result<Instance> {
        let store = store.as_context_mut().0;
        let imports: Vec<Extern> = self
            .definitions(module)?
            .iter()
            .map(|d| d.to_extern(&mut store.opaque))
            .collect();
        Instance::new_inner(store, module, &imports)
    }

    /// Resolves every import of `module` now, for instantiating it many
    /// times with [`InstancePre::instantiate`]. Fails if an import is
    /// missing, or (for host functions) has the wrong type.
    pub fn instantiate_pre(&self, module: &Module) -> crate::Result<InstancePre<T>> {
        if !Engine::same(&self.engine, module.engine()) {
            bail!("cross-engine instantiation is not supported");
        }
        InstancePre::new(module, self.definitions(module)?)
    }

    /// The default export of the instance defined as `module`: its `""`
    /// export, or `_start`.
    pub fn get_default(
        &self,
        mut store: impl AsContextMut<Data = T>,
        module: &str,
    ) -> crate::Result<Func> {
        for name in ["", "_start"] {
            if let Some(Extern::Func(f)) = self.get(&mut store, module, name) {
                return Ok(f);
            }
        }
        bail!("no default function defined for `{module}`")
    }
}
