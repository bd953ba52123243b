//! Instantiation and exports.

use crate::func::{WasmParams, WasmResults};
use crate::store::{AsContextMut, StoreInner, StoreOpaque, Stored};
use crate::trap::trap_error;
use crate::types::limits_match;
use crate::vm::vmcontext::{VMFunctionImport, VMGlobalDefinition, VMTagDefinition};
use crate::vm::{Imports, Instance as VmInstance, LinearMemory, Table as VmTable};
use crate::{Extern, Func, Global, GlobalType, Memory, Module, Table, TypedFunc};
use anyhow::{Context as _, bail};
use keel_environ::{EntityIndex, EntityRef};
use std::ptr::NonNull;

/// An instance of a module in a store.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Instance(pub(crate) Stored);

/// What a store keeps per instance.
pub(crate) struct InstanceData {
    pub handle: Box<VmInstance>,
    pub module: Module,
    exports: Vec<Option<Extern>>,
}

/// An export of an instance.
#[derive(Clone, Debug)]
pub struct Export {
    name: String,
    definition: Extern,
}

impl Export {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// What it is.
    pub fn into_extern(self) -> Extern {
        self.definition
    }
}

impl Instance {
    /// Instantiates `module` with `imports`, given in the module's import
    /// order. Runs the start function. A trap while initializing segments
    /// or in the start function fails instantiation with that trap.
    pub fn new(
        mut store: impl AsContextMut,
        module: &Module,
        imports: &[Extern],
    ) -> crate::Result<Instance> {
        let store = store.as_context_mut().0;
        Instance::new_inner(store, module, imports)
    }

    pub(crate) fn new_inner<T: 'static>(
        store: &mut StoreInner<T>,
        module: &Module,
        imports: &[Extern],
    ) -> crate::Result<Instance> {
        let opaque = &mut store.opaque;
        if !crate::Engine::same(opaque.engine(), module.engine()) {
            bail!("cross-engine instantiation is not supported");
        }
        let env = module.env();
        if imports.len() != env.imports.len() {
            bail!(
                "expected {} imports, found {}",
                env.imports.len(),
                imports.len()
            );
        }
        let mut functions = Vec::with_capacity(env.num_imported_funcs);
        let mut tables: Vec<*mut VmTable> = Vec::with_capacity(env.num_imported_tables);
        let mut memories: Vec<*mut LinearMemory> = Vec::with_capacity(env.num_imported_memories);
        let mut globals: Vec<*mut VMGlobalDefinition> =
            Vec::with_capacity(env.num_imported_globals);
        let mut tags: Vec<*mut VMTagDefinition> = Vec::with_capacity(env.num_imported_tags);
        for (import, ext) in env.imports.iter().zip(imports) {
            if !ext.store_id_matches(opaque) {
                bail!(
                    "import `{}::{}` comes from another store",
                    import.module,
                    import.field
                );
            }
            let incompatible = |detail: String| {
                anyhow::anyhow!(
                    "incompatible import type for `{}::{}`: {detail}",
                    import.module,
                    import.field
                )
            };
            match (import.index, ext) {
                (EntityIndex::Function(f), Extern::Func(func)) => {
                    let func_ref = func.func_ref(opaque);
                    let r = opaque.func_ref_value(func.0);
                    check_func_import(module, import, f, r.type_index)?;
                    functions.push(VMFunctionImport {
                        wasm_call: r.wasm_call,
                        vmctx: r.vmctx,
                        func_ref: func_ref.as_ptr(),
                    });
                }
                (EntityIndex::Table(t), Extern::Table(table)) => {
                    let expected = module.loaded().engine_table(env.tables[t]);
                    let ptr = opaque.tables[opaque.check(table.0)];
                    let actual = opaque.table(table.0);
                    if actual.ty() != expected.ty
                        || actual.is_64() != expected.table64
                        || !limits_match(
                            actual.size(),
                            actual.maximum(),
                            expected.minimum,
                            expected.maximum,
                        )
                    {
                        return Err(incompatible(format!(
                            "expected table {} {} {:?}..{:?}, found {} {} {}..{:?}",
                            index_type(expected.table64),
                            expected.ty,
                            expected.minimum,
                            expected.maximum,
                            index_type(actual.is_64()),
                            actual.ty(),
                            actual.size(),
                            actual.maximum()
                        )));
                    }
                    tables.push(ptr.as_ptr());
                }
                (EntityIndex::Memory(m), Extern::Memory(memory)) => {
                    let expected = env.memories[m];
                    let ptr = opaque.memories[opaque.check(memory.0)];
                    let actual = opaque.memory(memory.0).ty();
                    if actual.memory64 != expected.memory64
                        || actual.page_size_log2 != expected.page_size_log2
                        || !limits_match(
                            actual.minimum,
                            actual.maximum,
                            expected.minimum,
                            expected.maximum,
                        )
                    {
                        let describe = |m: &keel_environ::Memory| {
                            format!(
                                "{} memory of {}..{:?} pages of {} bytes",
                                index_type(m.memory64),
                                m.minimum,
                                m.maximum,
                                m.page_size()
                            )
                        };
                        return Err(incompatible(format!(
                            "expected {}, found {}",
                            describe(&expected),
                            describe(&actual)
                        )));
                    }
                    memories.push(ptr.as_ptr());
                }
                (EntityIndex::Global(g), Extern::Global(global)) => {
                    let expected = module.loaded().engine_global(env.globals[g]);
                    let expected = GlobalType::from_wasm(expected);
                    let data = &opaque.globals[opaque.check(global.0)];
                    // An immutable global may be of a subtype.
                    let matches = data.ty.mutability() == expected.mutability()
                        && match expected.mutability() {
                            crate::Mutability::Var => data.ty.content() == expected.content(),
                            crate::Mutability::Const => {
                                data.ty.content().matches(expected.content())
                            }
                        };
                    if !matches {
                        return Err(incompatible(format!(
                            "expected global {:?} {}, found {:?} {}",
                            expected.mutability(),
                            expected.content(),
                            data.ty.mutability(),
                            data.ty.content()
                        )));
                    }
                    globals.push(data.def.as_ptr());
                }
                (EntityIndex::Tag(t), Extern::Tag(tag)) => {
                    let expected = module.loaded().type_ids[env.tags[t].index()];
                    let actual = opaque.tag_type_index(tag.0);
                    if actual != expected {
                        let engine = module.engine();
                        return Err(incompatible(format!(
                            "expected tag {}, found tag {}",
                            engine.type_of(expected),
                            engine.type_of(actual)
                        )));
                    }
                    tags.push(opaque.tag_definition(tag.0));
                }
                (expected, _) => {
                    return Err(incompatible(format!(
                        "expected a {}, found a {}",
                        entity_kind(expected),
                        extern_kind(ext)
                    )));
                }
            }
        }

        Instance::new_resolved(
            store,
            module,
            &Imports {
                functions: &functions,
                tables: &tables,
                memories: &memories,
                globals: &globals,
                tags: &tags,
            },
        )
    }

    /// Instantiates `module` with imports already checked against its
    /// import types and owned by `store` (or kept alive by it).
    pub(crate) fn new_resolved<T: 'static>(
        store: &mut StoreInner<T>,
        module: &Module,
        imports: &Imports<'_>,
    ) -> crate::Result<Instance> {
        let env = module.env();
        store.check_counts(
            1,
            env.memories.len() - env.num_imported_memories,
            env.tables.len() - env.num_imported_tables,
        )?;
        // Initial memory and table sizes count against the store's limits.
        for (_, table) in env.tables.iter().skip(env.num_imported_tables) {
            if !store.limit_table(0, table.minimum, table.maximum)? {
                bail!(
                    "table minimum size of {} elements exceeds the store's limit",
                    table.minimum
                );
            }
        }
        for (_, mem) in env.memories.iter().skip(env.num_imported_memories) {
            let desired = mem.bytes(mem.minimum);
            let maximum = mem.maximum.map(|pages| mem.bytes(pages));
            if !store.limit_memory(0, desired, maximum)? {
                bail!(
                    "memory minimum size of {} pages exceeds the store's limit",
                    mem.minimum
                );
            }
        }

        let opaque = &mut store.opaque;
        let store_index = opaque.instances.len();
        let store_ptr: *mut StoreOpaque = opaque;
        let store_context = opaque.store_context_ptr();
        // SAFETY: the imports were checked above and are owned by this
        // store, which outlives the instance; the store pointers point into
        // the boxed store.
        let handle = unsafe {
            VmInstance::new(
                module.loaded().clone(),
                imports,
                store_ptr.cast(),
                store_context,
                store_index,
                module.engine().allocation(),
            )
        }
        .context("failed to create instance")?;
        opaque.keep_module(module);
        opaque.instances.push(InstanceData {
            handle,
            module: module.clone(),
            exports: vec![None; env.exports.len()],
        });
        let instance = Instance(opaque.stored(store_index));
        // The store knows every tag its exceptions may carry, exported or
        // not (`ExnRef::tag`).
        for t in env.num_imported_tags..env.tags.len() {
            let def = opaque.instances[store_index]
                .handle
                .tag_ptr(keel_environ::TagIndex::new(t));
            let def = NonNull::new(def).expect("tags of an instance are not null");
            // SAFETY: a tag definition of an instance the store now owns.
            unsafe { opaque.tag_handle(def) };
        }

        opaque.instances[store_index]
            .handle
            .initialize_segments()
            .map_err(trap_error)?;

        if let Some(start) = env.start {
            let func_ref = opaque.instances[store_index].handle.func_ref(start);
            let func_ref = NonNull::new(func_ref).expect("funcrefs of an instance are not null");
            // SAFETY: a funcref of an instance the store now owns.
            let func = unsafe { opaque.func_from_ref(func_ref) };
            let mut no_values = [crate::vm::ValRaw::default()];
            // The start function escapes (it is exported to the host by
            // being called from it), so it has an array entry.
            func.call_raw(opaque, &mut no_values)?;
        }
        Ok(instance)
    }

    fn data<'a>(&self, store: &'a StoreOpaque) -> &'a InstanceData {
        &store.instances[store.check(self.0)]
    }

    /// The export `name`, if there is one.
    pub fn get_export(&self, mut store: impl AsContextMut, name: &str) -> Option<Extern> {
        let store = &mut store.as_context_mut().0.opaque;
        let data = self.data(store);
        let i = *data.module.env().export_index.get(name)?;
        Some(self.export_at(store, i))
    }

    fn export_at(&self, store: &mut StoreOpaque, i: usize) -> Extern {
        let index = store.check(self.0);
        if let Some(e) = &store.instances[index].exports[i] {
            return e.clone();
        }
        let data = &store.instances[index];
        let (_, entity) = data.module.env().exports[i];
        let vm = &data.handle;
        // Why each arm below is sound: the pointers come from an instance that this
        // store owns, so what they point to lives as long as the store; a
        // global's storage holds a value of the type the module declares.
        let ext = match entity {
            EntityIndex::Function(f) => {
                let r = NonNull::new(vm.func_ref(f)).expect("funcrefs of an instance are not null");
                // SAFETY: see above.
                Extern::Func(unsafe { store.func_from_ref(r) })
            }
            EntityIndex::Memory(m) => {
                let p = NonNull::new(vm.memory(m)).expect("memories of an instance are not null");
                // SAFETY: see above.
                Extern::Memory(unsafe { store.memory_handle(p) })
            }
            EntityIndex::Table(t) => {
                let p = NonNull::new(vm.table(t)).expect("tables of an instance are not null");
                // SAFETY: see above.
                Extern::Table(unsafe { store.table_handle(p) })
            }
            EntityIndex::Tag(t) => {
                let p = NonNull::new(vm.tag_ptr(t)).expect("tags of an instance are not null");
                // SAFETY: see above.
                Extern::Tag(unsafe { store.tag_handle(p) })
            }
            EntityIndex::Global(g) => {
                let ty = data
                    .module
                    .loaded()
                    .engine_global(data.module.env().globals[g]);
                let ty = GlobalType::from_wasm(ty);
                let p =
                    NonNull::new(vm.global_ptr(g)).expect("globals of an instance are not null");
                // SAFETY: see above.
                Extern::Global(unsafe { store.global_handle(p, ty) })
            }
        };
        store.instances[index].exports[i] = Some(ext.clone());
        ext
    }

    /// All exports, in order.
    pub fn exports(&self, mut store: impl AsContextMut) -> std::vec::IntoIter<Export> {
        let store = &mut store.as_context_mut().0.opaque;
        let module = self.data(store).module.clone();
        let exports: Vec<Export> = module
            .env()
            .exports
            .iter()
            .enumerate()
            .map(|(i, (name, _))| Export {
                name: name.clone(),
                definition: self.export_at(store, i),
            })
            .collect();
        exports.into_iter()
    }

    /// The exported function `name`.
    pub fn get_func(&self, store: impl AsContextMut, name: &str) -> Option<Func> {
        self.get_export(store, name)?.into_func()
    }

    /// The exported function `name` with a static signature.
    pub fn get_typed_func<Params: WasmParams, Results: WasmResults>(
        &self,
        mut store: impl AsContextMut,
        name: &str,
    ) -> crate::Result<TypedFunc<Params, Results>> {
        let f = self
            .get_func(&mut store, name)
            .ok_or_else(|| anyhow::anyhow!("failed to find function export `{name}`"))?;
        f.typed(&store)
            .with_context(|| format!("failed to convert function `{name}` to given type"))
    }

    /// The exported memory `name`.
    pub fn get_memory(&self, store: impl AsContextMut, name: &str) -> Option<Memory> {
        self.get_export(store, name)?.into_memory()
    }

    /// The exported global `name`.
    pub fn get_global(&self, store: impl AsContextMut, name: &str) -> Option<Global> {
        self.get_export(store, name)?.into_global()
    }

    /// The exported table `name`.
    pub fn get_table(&self, store: impl AsContextMut, name: &str) -> Option<Table> {
        self.get_export(store, name)?.into_table()
    }

    /// The exported tag `name`.
    pub fn get_tag(&self, store: impl AsContextMut, name: &str) -> Option<crate::Tag> {
        self.get_export(store, name)?.into_tag()
    }
}

/// Checks that a function whose signature has engine-wide id `actual` may
/// satisfy import `import` of `module`, which imports function `f`.
pub(crate) fn check_func_import(
    module: &Module,
    import: &keel_environ::Import,
    f: keel_environ::FuncIndex,
    actual: keel_environ::SharedTypeIndex,
) -> crate::Result<()> {
    let env = module.env();
    let expected = module.loaded().type_ids[env.functions[f].type_index.as_u32() as usize];
    if actual != expected {
        bail!(
            "incompatible import type for `{}::{}`: expected {}, found {}",
            import.module,
            import.field,
            module.engine().type_of(expected),
            module.engine().type_of(actual)
        );
    }
    Ok(())
}

pub(crate) fn entity_kind(e: EntityIndex) -> &'static str {
    match e {
        EntityIndex::Function(_) => "function",
        EntityIndex::Table(_) => "table",
        EntityIndex::Memory(_) => "memory",
        EntityIndex::Global(_) => "global",
        EntityIndex::Tag(_) => "tag",
    }
}

/// How an import mismatch names an index type.
fn index_type(is_64: bool) -> &'static str {
    if is_64 { "i64" } else { "i32" }
}

fn extern_kind(e: &Extern) -> &'static str {
    match e {
        Extern::Func(_) => "function",
        Extern::Table(_) => "table",
        Extern::Memory(_) => "memory",
        Extern::Global(_) => "global",
        Extern::Tag(_) => "tag",
    }
}
