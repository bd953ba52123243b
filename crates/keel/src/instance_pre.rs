//! `InstancePre`: a module whose imports were resolved once, instantiated
//! many times.

use crate::func::HostFunc;
use crate::linker::Definition;
use crate::store::AsContextMut;
use crate::vm::{Imports, SharedFunctionImports};
use crate::{Extern, Instance, Module};
use std::marker::PhantomData;
use std::sync::Arc;

/// A module with its imports resolved by a [`Linker`](crate::Linker),
/// ready to be instantiated in any number of stores with data `T`.
///
/// Made by [`Linker::instantiate_pre`](crate::Linker::instantiate_pre).
/// Name lookup and type checks happen once, there; when every import is a
/// host function (a WASI program, a plugin's host API), instantiation then
/// does no per-import work at all.
pub struct InstancePre<T: 'static> {
    module: Module,
    resolved: Arc<Resolved>,
    _marker: PhantomData<fn() -> T>,
}

pub(crate) struct Resolved {
    /// What each import resolved to, in import order.
    pub definitions: Vec<Definition>,
    /// When every import is a host function: the import records, and the
    /// functions, which every store instantiated into keeps alive.
    pub host_only: Option<(SharedFunctionImports, Arc<[Arc<HostFunc>]>)>,
}

impl<T: 'static> Clone for InstancePre<T> {
    fn clone(&self) -> Self {
        InstancePre {
            module: self.module.clone(),
            resolved: self.resolved.clone(),
            _marker: PhantomData,
        }
    }
}

impl<T: 'static> InstancePre<T> {
    pub(crate) fn new(module: &Module, definitions: Vec<Definition>) -> crate::Result<Self> {
        // Only host functions: prepare the import records once.
        let host_funcs: Option<Vec<&Arc<HostFunc>>> = definitions
            .iter()
            .map(|d| match d {
                Definition::HostFunc(h) => Some(h),
                Definition::Extern(_) => None,
            })
            .collect();
        let host_only = match host_funcs {
            Some(host_funcs) => Some(Self::prepare_host_imports(module, &host_funcs)?),
            None => None,
        };
        Ok(InstancePre {
            module: module.clone(),
            resolved: Arc::new(Resolved {
                definitions,
                host_only,
            }),
            _marker: PhantomData,
        })
    }

    /// Checks host functions against the module's function imports and
    /// makes the records instances will store.
    fn prepare_host_imports(
        module: &Module,
        host_funcs: &[&Arc<HostFunc>],
    ) -> crate::Result<(SharedFunctionImports, Arc<[Arc<HostFunc>]>)> {
        let mut records = Vec::with_capacity(host_funcs.len());
        for (import, h) in module.env().imports.iter().zip(host_funcs) {
            let keel_environ::EntityIndex::Function(f) = import.index else {
                crate::bail!(
                    "incompatible import type for `{}::{}`: expected a {}, found a function",
                    import.module,
                    import.field,
                    crate::instance::entity_kind(import.index)
                );
            };
            crate::instance::check_func_import(module, import, f, h.type_index())?;
            records.push(h.import());
        }
        let funcs = host_funcs.iter().map(|h| Arc::clone(h)).collect();
        Ok((SharedFunctionImports::new(records), funcs))
    }

    /// The module it instantiates.
    pub fn module(&self) -> &Module {
        &self.module
    }

    /// Creates a new instance in `store`, running the start function.
    ///
    /// Panics if an import was defined from a store other than this one, as
    /// Wasmtime does.
    pub fn instantiate(&self, mut store: impl AsContextMut<Data = T>) -> crate::Result<Instance> {
        let store = store.as_context_mut().0;
        if let Some((records, funcs)) = &self.resolved.host_only {
            if !crate::Engine::same(store.opaque.engine(), self.module.engine()) {
                crate::bail!("cross-engine instantiation is not supported");
            }
            store.opaque.keep_host_funcs(funcs);
            let imports = Imports {
                functions: records.as_slice(),
                tables: &[],
                memories: &[],
                globals: &[],
                tags: &[],
            };
            return Instance::new_resolved(store, &self.module, &imports);
        }
        let imports: Vec<Extern> = self
            .resolved
            .definitions
            .iter()
            .map(|d| d.to_extern(&mut store.opaque))
            .collect();
        Instance::new_inner(store, &self.module, &imports)
    }
}
