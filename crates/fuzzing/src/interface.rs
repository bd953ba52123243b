//! A module's interface (its imports and exports with their types), read
//! once with `wasmparser` and shared by both engines.
//!
//! The oracles work from this description rather than from either engine's
//! reflection API, so that a Keel bug in `Module::imports` or
//! `Instance::exports` shows up as a disagreement instead of silently
//! steering the test.

use std::fmt;
use wasmparser::{
    ExternalKind, Parser, Payload, RefType, ValType, Validator, WasmFeatures,
    types::{EntityType, Types},
};

/// A value type, in the subset of WebAssembly 2.0 that both engines share.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ValTy {
    I32,
    I64,
    F32,
    F64,
    V128,
    FuncRef,
    ExternRef,
    /// Only Keel runs modules with exceptions (see `differential.rs`).
    ExnRef,
}

impl fmt::Display for ValTy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValTy::I32 => "i32",
            ValTy::I64 => "i64",
            ValTy::F32 => "f32",
            ValTy::F64 => "f64",
            ValTy::V128 => "v128",
            ValTy::FuncRef => "funcref",
            ValTy::ExternRef => "externref",
            ValTy::ExnRef => "exnref",
        })
    }
}

/// A function signature.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FuncTy {
    pub params: Vec<ValTy>,
    pub results: Vec<ValTy>,
}

impl fmt::Display for FuncTy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[ValTy]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        write!(
            f,
            "[{}] -> [{}]",
            list(&self.params).join(" "),
            list(&self.results).join(" ")
        )
    }
}

/// Memory sizes in pages, or table sizes in elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    pub min: u32,
    pub max: Option<u32>,
}

impl Limits {
    /// Import matching (spec 3.3.3): the provided limits must lie within
    /// the expected ones.
    pub(crate) fn fits(&self, expected: &Limits) -> bool {
        self.min >= expected.min
            && match (expected.max, self.max) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(e), Some(a)) => a <= e,
            }
    }
}

/// The type of something imported or exported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ExternTy {
    Func(FuncTy),
    Global { ty: ValTy, mutable: bool },
    Memory(Limits),
    Table { elem: ValTy, limits: Limits },
}

impl ExternTy {
    /// Whether a definition of type `self` satisfies an import of type
    /// `expected` (WebAssembly 2.0 has no subtyping beyond limits).
    pub(crate) fn matches(&self, expected: &ExternTy) -> bool {
        match (self, expected) {
            (ExternTy::Func(a), ExternTy::Func(b)) => a == b,
            (
                ExternTy::Global { ty, mutable },
                ExternTy::Global {
                    ty: ety,
                    mutable: emut,
                },
            ) => ty == ety && mutable == emut,
            (ExternTy::Memory(a), ExternTy::Memory(b)) => a.fits(b),
            (
                ExternTy::Table { elem, limits },
                ExternTy::Table {
                    elem: eelem,
                    limits: elimits,
                },
            ) => elem == eelem && limits.fits(elimits),
            _ => false,
        }
    }
}

/// One import.
#[derive(Clone, Debug)]
pub(crate) struct Import {
    pub module: String,
    pub name: String,
    pub ty: ExternTy,
}

/// One export.
#[derive(Clone, Debug)]
pub(crate) struct Export {
    pub name: String,
    pub ty: ExternTy,
    /// A function export that is one of the module's imported functions
    /// (calling it runs the host, no wasm).
    pub imported_func: bool,
}

/// What the oracles need to know about a valid module.
#[derive(Clone, Debug, Default)]
pub(crate) struct ModuleInfo {
    pub imports: Vec<Import>,
    pub exports: Vec<Export>,
}

impl ModuleInfo {
    /// Validates `wasm` with `features` and reads its interface. Fails with
    /// the validator's message, or if the module uses types outside
    /// WebAssembly 2.0 (which the features should have excluded).
    pub(crate) fn read(wasm: &[u8], features: WasmFeatures) -> Result<ModuleInfo, String> {
        let types = Validator::new_with_features(features)
            .validate_all(wasm)
            .map_err(|e| e.to_string())?;
        let mut info = ModuleInfo::default();
        let mut func_imports = 0;
        for payload in Parser::new(0).parse_all(wasm) {
            match payload.map_err(|e| e.to_string())? {
                Payload::ImportSection(reader) => {
                    for import in reader.into_imports() {
                        let import = import.map_err(|e| e.to_string())?;
                        let ty = types
                            .as_ref()
                            .entity_type_from_import(&import)
                            .ok_or("import without a type")?;
                        if matches!(ty, EntityType::Func(_)) {
                            func_imports += 1;
                        }
                        let unplanned = match ty {
                            EntityType::Memory(m) => m.memory64 || m.page_size_log2.is_some(),
                            EntityType::Table(t) => t.table64,
                            _ => false,
                        };
                        if unplanned {
                            // The host plans provide 32-bit ones of 64 KiB
                            // pages only.
                            return Err("a 64-bit or custom-page-size import".into());
                        }
                        info.imports.push(Import {
                            module: import.module.to_string(),
                            name: import.name.to_string(),
                            ty: extern_ty(&types, ty)?,
                        });
                    }
                }
                Payload::ExportSection(reader) => {
                    for export in reader {
                        let export = export.map_err(|e| e.to_string())?;
                        if !matches!(
                            export.kind,
                            ExternalKind::Func
                                | ExternalKind::Global
                                | ExternalKind::Memory
                                | ExternalKind::Table
                        ) {
                            return Err(format!("unsupported export kind {:?}", export.kind));
                        }
                        let ty = types
                            .as_ref()
                            .entity_type_from_export(&export)
                            .ok_or("export without a type")?;
                        info.exports.push(Export {
                            name: export.name.to_string(),
                            ty: extern_ty(&types, ty)?,
                            imported_func: export.kind == ExternalKind::Func
                                && export.index < func_imports,
                        });
                    }
                }
                _ => {}
            }
        }
        Ok(info)
    }

    /// Whether two imports share a module and name (allowed by the spec,
    /// but a name-based linker can only define one of them).
    pub(crate) fn has_duplicate_import_names(&self) -> bool {
        let mut seen = std::collections::HashSet::new();
        self.imports
            .iter()
            .any(|i| !seen.insert((i.module.as_str(), i.name.as_str())))
    }
}

fn val_ty(t: ValType) -> Result<ValTy, String> {
    Ok(match t {
        ValType::I32 => ValTy::I32,
        ValType::I64 => ValTy::I64,
        ValType::F32 => ValTy::F32,
        ValType::F64 => ValTy::F64,
        ValType::V128 => ValTy::V128,
        ValType::Ref(r) if r == RefType::FUNCREF => ValTy::FuncRef,
        ValType::Ref(r) if r == RefType::EXTERNREF => ValTy::ExternRef,
        ValType::Ref(r) if r == RefType::EXNREF => ValTy::ExnRef,
        ValType::Ref(r) => return Err(format!("unsupported reference type {r:?}")),
    })
}

fn limits(initial: u64, maximum: Option<u64>) -> Result<Limits, String> {
    let narrow = |v: u64| u32::try_from(v).map_err(|_| format!("limit {v} beyond 32 bits"));
    Ok(Limits {
        min: narrow(initial)?,
        max: maximum.map(narrow).transpose()?,
    })
}

fn extern_ty(types: &Types, ty: EntityType) -> Result<ExternTy, String> {
    Ok(match ty {
        EntityType::Func(id) => {
            let f = types[id].unwrap_func();
            ExternTy::Func(FuncTy {
                params: f
                    .params()
                    .iter()
                    .map(|t| val_ty(*t))
                    .collect::<Result<_, _>>()?,
                results: f
                    .results()
                    .iter()
                    .map(|t| val_ty(*t))
                    .collect::<Result<_, _>>()?,
            })
        }
        EntityType::Global(g) => ExternTy::Global {
            ty: val_ty(g.content_type)?,
            mutable: g.mutable,
        },
        EntityType::Memory(m) => {
            if m.shared {
                return Err(format!("unsupported memory type {m:?}"));
            }
            ExternTy::Memory(limits(m.initial, m.maximum)?)
        }
        EntityType::Table(t) => {
            if t.shared {
                return Err(format!("unsupported table type {t:?}"));
            }
            ExternTy::Table {
                elem: val_ty(ValType::Ref(t.element_type))?,
                limits: limits(t.initial, t.maximum)?,
            }
        }
        EntityType::Tag(_) | EntityType::FuncExact(_) => {
            return Err(format!("unsupported entity {ty:?}"));
        }
    })
}
