//! From bytes to a validated [`Module`] plus the function bodies to compile.
//!
//! Parsing and validating module-level sections happens here, in one pass.
//! Function bodies are only located: each comes with a `wasmparser` function
//! validator that the compiler runs while it translates that body, so that
//! bodies are validated in parallel and read once.

use crate::types::{convert_func_type, convert_ref_type, convert_val_type};
use crate::{
    ConstExpr, DataMode, DataSegment, DefinedFuncIndex, ElemItems, ElemMode, ElemSegment,
    EntityIndex, FuncIndex, FunctionDecl, Global, GlobalIndex, Import, Memory, MemoryIndex, Module,
    ModuleError, ModuleResult, Table, TableIndex, TagIndex, TypeIndex,
};
use cranelift_entity::PrimaryMap;
use wasmparser::{
    FuncToValidate, FunctionBody, Parser, Payload, TypeRef, ValidPayload, Validator,
    ValidatorResources, WasmFeatures,
};

/// A function body awaiting compilation, with the validator for it.
pub struct FunctionBodyData<'data> {
    /// The body's bytes.
    pub body: FunctionBody<'data>,
    /// Validates the body operator by operator during translation.
    pub validator: FuncToValidate<ValidatorResources>,
}

/// The result of parsing a module: its declarations and its bodies.
pub struct ModuleTranslation<'data> {
    /// What the module declares.
    pub module: Module,
    /// The bodies of defined functions.
    pub function_bodies: PrimaryMap<DefinedFuncIndex, FunctionBodyData<'data>>,
    /// The features the module was validated with.
    pub features: WasmFeatures,
}

/// Parses and validates a module's sections.
pub struct ModuleParser {
    features: WasmFeatures,
}

impl ModuleParser {
    /// A parser that accepts exactly the given features.
    pub fn new(features: WasmFeatures) -> Self {
        ModuleParser { features }
    }

    /// Parses `bytes`, validating everything but function bodies.
    pub fn parse<'data>(&self, bytes: &'data [u8]) -> ModuleResult<ModuleTranslation<'data>> {
        let mut validator = Validator::new_with_features(self.features);
        let mut t = ModuleTranslation {
            module: Module::default(),
            function_bodies: PrimaryMap::new(),
            features: self.features,
        };
        let mut saw_end = false;
        // The reader must know the features too: some encodings (64-bit
        // limits, memory indices) are only well-formed with a feature on.
        let mut parser = Parser::new(0);
        parser.set_features(self.features);
        for payload in parser.parse_all(bytes) {
            let payload = payload?;
            match validator.payload(&payload)? {
                ValidPayload::Ok => {}
                ValidPayload::Func(validator, body) => {
                    t.function_bodies.push(FunctionBodyData { body, validator });
                    continue;
                }
                ValidPayload::End(_) => {
                    saw_end = true;
                    continue;
                }
                ValidPayload::Parser(_) => {
                    return Err(ModuleError::unsupported("nested modules or components", 0));
                }
            }
            self.read_payload(&mut t.module, bytes, payload)?;
        }
        if !saw_end {
            return Err(ModuleError::Invalid {
                message: "unexpected end of module".into(),
                offset: bytes.len() as u64,
            });
        }
        Ok(t)
    }

    /// Reads the module-level sections of `bytes` without validating them
    /// and without reading function bodies: for the wasm an artifact
    /// carries, which was validated when the artifact was compiled (and
    /// holds no code section).
    pub fn parse_metadata(&self, bytes: &[u8]) -> ModuleResult<Module> {
        let mut module = Module::default();
        let mut parser = Parser::new(0);
        parser.set_features(self.features);
        let truncated = || ModuleError::Invalid {
            message: "unexpected end of module".into(),
            offset: bytes.len() as u64,
        };
        let mut rest = bytes;
        loop {
            let wasmparser::Chunk::Parsed { consumed, payload } = parser.parse(rest, true)? else {
                return Err(truncated());
            };
            rest = rest.get(consumed..).ok_or_else(truncated)?;
            match payload {
                // Its entries (empty bodies in an artifact) say nothing the
                // function section does not: skipped whole.
                Payload::CodeSectionStart { size, .. } => {
                    parser.skip_section();
                    rest = rest.get(size as usize..).ok_or_else(truncated)?;
                }
                Payload::End(_) => return Ok(module),
                payload => self.read_payload(&mut module, bytes, payload)?,
            }
        }
    }

    /// Reads one payload of `bytes` (the whole module) into `m`. The
    /// payload's offsets count from the start of `bytes` (a `Parser::new(0)`
    /// over them).
    fn read_payload(&self, m: &mut Module, bytes: &[u8], payload: Payload<'_>) -> ModuleResult<()> {
        match payload {
            Payload::TypeSection(reader) => {
                let range = reader.range();
                let section = usize::try_from(range.start)
                    .ok()
                    .zip(usize::try_from(range.end).ok())
                    .and_then(|(start, end)| bytes.get(start..end));
                if let Some(types) = section.and_then(|s| read_plain_func_types(s, range.start)) {
                    for ty in types {
                        m.types.push(ty);
                    }
                    return Ok(());
                }
                for group in reader {
                    let group = group?;
                    for sub in group.types() {
                        match &sub.composite_type.inner {
                            wasmparser::CompositeInnerType::Func(ft) => {
                                m.types.push(convert_func_type(ft, 0)?);
                            }
                            other => {
                                return Err(ModuleError::unsupported(
                                    format!("composite type {other:?}"),
                                    0,
                                ));
                            }
                        }
                    }
                }
            }
            Payload::ImportSection(reader) => {
                let offset = reader.range().start;
                for import in reader.into_imports() {
                    let import = import?;
                    let index = match import.ty {
                        TypeRef::Func(ty) | TypeRef::FuncExact(ty) => {
                            m.num_imported_funcs += 1;
                            EntityIndex::Function(m.functions.push(FunctionDecl {
                                type_index: TypeIndex::from_u32(ty),
                                escapes: true,
                            }))
                        }
                        TypeRef::Table(ty) => {
                            m.num_imported_tables += 1;
                            EntityIndex::Table(m.tables.push(convert_table(&ty, offset)?))
                        }
                        TypeRef::Memory(ty) => {
                            m.num_imported_memories += 1;
                            EntityIndex::Memory(m.memories.push(convert_memory(&ty, offset)?))
                        }
                        TypeRef::Global(ty) => {
                            m.num_imported_globals += 1;
                            EntityIndex::Global(m.globals.push(convert_global(&ty, offset)?))
                        }
                        TypeRef::Tag(tag) => {
                            m.num_imported_tags += 1;
                            EntityIndex::Tag(m.tags.push(TypeIndex::from_u32(tag.func_type_idx)))
                        }
                    };
                    m.imports.push(Import {
                        module: import.module.to_string(),
                        field: import.name.to_string(),
                        index,
                    });
                }
            }
            Payload::FunctionSection(reader) => {
                for ty in reader {
                    m.functions.push(FunctionDecl {
                        type_index: TypeIndex::from_u32(ty?),
                        escapes: false,
                    });
                }
            }
            Payload::TableSection(reader) => {
                let offset = reader.range().start;
                for table in reader {
                    let table = table?;
                    m.tables.push(convert_table(&table.ty, offset)?);
                    let init = match table.init {
                        wasmparser::TableInit::RefNull => None,
                        wasmparser::TableInit::Expr(e) => Some(self.const_expr(m, &e)?),
                    };
                    m.table_inits.push(init);
                }
            }
            Payload::MemorySection(reader) => {
                let offset = reader.range().start;
                for memory in reader {
                    m.memories.push(convert_memory(&memory?, offset)?);
                }
            }
            Payload::TagSection(reader) => {
                for tag in reader {
                    m.tags.push(TypeIndex::from_u32(tag?.func_type_idx));
                }
            }
            Payload::GlobalSection(reader) => {
                let offset = reader.range().start;
                for global in reader {
                    let global = global?;
                    m.globals.push(convert_global(&global.ty, offset)?);
                    let init = self.const_expr(m, &global.init_expr)?;
                    m.global_inits.push(init);
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export?;
                    let index = match export.kind {
                        wasmparser::ExternalKind::Func | wasmparser::ExternalKind::FuncExact => {
                            let f = FuncIndex::from_u32(export.index);
                            mark_escaping(m, f);
                            EntityIndex::Function(f)
                        }
                        wasmparser::ExternalKind::Table => {
                            EntityIndex::Table(TableIndex::from_u32(export.index))
                        }
                        wasmparser::ExternalKind::Memory => {
                            EntityIndex::Memory(MemoryIndex::from_u32(export.index))
                        }
                        wasmparser::ExternalKind::Global => {
                            EntityIndex::Global(GlobalIndex::from_u32(export.index))
                        }
                        wasmparser::ExternalKind::Tag => {
                            EntityIndex::Tag(TagIndex::from_u32(export.index))
                        }
                    };
                    m.export_index
                        .insert(export.name.to_string(), m.exports.len());
                    m.exports.push((export.name.to_string(), index));
                }
            }
            Payload::StartSection { func, .. } => {
                // The host calls it, through its array entry.
                let f = FuncIndex::from_u32(func);
                mark_escaping(m, f);
                m.start = Some(f);
            }
            Payload::ElementSection(reader) => {
                for elem in reader {
                    let elem = elem?;
                    let offset = elem.range.start;
                    let (ty, items) = match elem.items {
                        wasmparser::ElementItems::Functions(funcs) => {
                            let mut v = Vec::new();
                            for f in funcs {
                                let f = FuncIndex::from_u32(f?);
                                mark_escaping(m, f);
                                v.push(f);
                            }
                            (crate::WasmRefType::FUNCREF, ElemItems::Functions(v.into()))
                        }
                        wasmparser::ElementItems::Expressions(ty, exprs) => {
                            let mut v = Vec::new();
                            for e in exprs {
                                v.push(self.const_expr(m, &e?)?);
                            }
                            (
                                convert_ref_type(ty, offset)?,
                                ElemItems::Expressions(v.into()),
                            )
                        }
                    };
                    let mode = match elem.kind {
                        wasmparser::ElementKind::Active {
                            table_index,
                            offset_expr,
                        } => ElemMode::Active {
                            table: TableIndex::from_u32(table_index.unwrap_or(0)),
                            offset: self.const_expr(m, &offset_expr)?,
                        },
                        wasmparser::ElementKind::Passive => ElemMode::Passive,
                        wasmparser::ElementKind::Declared => ElemMode::Declared,
                    };
                    m.elems.push(ElemSegment { mode, ty, items });
                }
            }
            Payload::DataSection(reader) => {
                // The segments' bytes are at most the section's.
                let r = reader.range();
                m.data
                    .reserve(usize::try_from(r.end - r.start).unwrap_or(0));
                for data in reader {
                    let data = data?;
                    let start = m.data.len();
                    m.data.extend_from_slice(data.data);
                    let end = m.data.len();
                    let range = u32::try_from(start)
                        .ok()
                        .zip(u32::try_from(end).ok())
                        .map(|(s, e)| s..e)
                        .ok_or_else(|| ModuleError::Limit("data segments exceed 4 GiB".into()))?;
                    let mode = match data.kind {
                        wasmparser::DataKind::Active {
                            memory_index,
                            offset_expr,
                        } => DataMode::Active {
                            memory: MemoryIndex::from_u32(memory_index),
                            offset: self.const_expr(m, &offset_expr)?,
                        },
                        wasmparser::DataKind::Passive => DataMode::Passive,
                    };
                    m.datas.push(DataSegment { mode, range });
                }
            }
            Payload::CustomSection(reader) => {
                if reader.name() == "name" {
                    m.names.push_section(reader.data());
                }
            }
            Payload::Version { .. }
            | Payload::DataCountSection { .. }
            | Payload::CodeSectionStart { .. }
            | Payload::End(_) => {}
            other => {
                let (_, range) = other.as_section().unwrap_or((0, 0..0));
                return Err(ModuleError::unsupported(
                    "module section not supported",
                    range.start,
                ));
            }
        }
        Ok(())
    }

    /// Reads a constant expression and notes the functions it references.
    fn const_expr(&self, m: &mut Module, e: &wasmparser::ConstExpr<'_>) -> ModuleResult<ConstExpr> {
        let expr = ConstExpr::from_wasmparser(e)?;
        for op in expr.ops() {
            if let crate::ConstOp::RefFunc(f) = op
                && let Some(decl) = m.functions.get_mut(*f)
            {
                decl.escapes = true;
            }
        }
        Ok(expr)
    }
}

/// Notes that function `f` escapes its instance. An index out of range
/// (which validation rules out, and which only the unvalidated bytes of a
/// damaged artifact could hold) is ignored rather than a panic.
fn mark_escaping(m: &mut Module, f: FuncIndex) {
    if let Some(decl) = m.functions.get_mut(f) {
        decl.escapes = true;
    }
}

fn convert_table(ty: &wasmparser::TableType, offset: u64) -> ModuleResult<Table> {
    if ty.shared {
        return Err(ModuleError::unsupported("shared tables", offset));
    }
    Ok(Table {
        ty: convert_ref_type(ty.element_type, offset)?,
        minimum: ty.initial,
        maximum: ty.maximum,
        table64: ty.table64,
    })
}

fn convert_memory(ty: &wasmparser::MemoryType, offset: u64) -> ModuleResult<Memory> {
    if ty.shared {
        return Err(ModuleError::unsupported(
            "shared memories (threads)",
            offset,
        ));
    }
    Ok(Memory {
        minimum: ty.initial,
        maximum: ty.maximum,
        memory64: ty.memory64,
        shared: false,
        // Validation allows only 0 and 16.
        page_size_log2: ty.page_size_log2.map_or(16, |l| l as u8),
    })
}

fn convert_global(ty: &wasmparser::GlobalType, offset: u64) -> ModuleResult<Global> {
    if ty.shared {
        return Err(ModuleError::unsupported("shared globals", offset));
    }
    Ok(Global {
        ty: convert_val_type(ty.content_type, offset)?,
        mutable: ty.mutable,
    })
}

/// The function types of a type section (its contents after the section
/// header, at `offset` in the module) when all are plain function types,
/// outside rec groups and without subtyping (every type section but GC's);
/// `None` otherwise, or when anything does not read (the general reader
/// then reads the section, and reports what is wrong). Read this way
/// because wasmparser's general reader builds a rec group for each type,
/// which took a big program's 61 types 15 to 35 µs when loading an
/// artifact.
fn read_plain_func_types(section: &[u8], offset: u64) -> Option<Vec<crate::WasmFuncType>> {
    let mut reader = wasmparser::BinaryReader::new(section, offset);
    let count = reader.read_var_u32().ok()?;
    // Each type takes at least three bytes: no bigger reservation than the
    // section can fill.
    let mut types = Vec::with_capacity((count as usize).min(section.len() / 3));
    for _ in 0..count {
        if reader.read_u8().ok()? != 0x60 {
            return None;
        }
        let params = read_val_types(&mut reader)?;
        let results = read_val_types(&mut reader)?;
        types.push(crate::WasmFuncType::new(params, results));
    }
    reader.eof().then_some(types)
}

/// A vector of value types, as a function type's parameters or results.
fn read_val_types(reader: &mut wasmparser::BinaryReader<'_>) -> Option<Vec<crate::WasmValType>> {
    let count = reader.read_var_u32().ok()?;
    (0..count)
        .map(|_| {
            let ty = reader.read::<wasmparser::ValType>().ok()?;
            convert_val_type(ty, 0).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::read_plain_func_types;
    use crate::types::convert_func_type;

    /// The function types of a type section's contents as wasmparser's
    /// general reader reads them.
    fn by_general_reader(section: &[u8]) -> Vec<crate::WasmFuncType> {
        let reader = wasmparser::TypeSectionReader::new(wasmparser::BinaryReader::new(section, 0))
            .expect("a section count");
        let mut types = Vec::new();
        for group in reader {
            for sub in group.expect("a rec group").types() {
                let wasmparser::CompositeInnerType::Func(ft) = &sub.composite_type.inner else {
                    panic!("only function types here");
                };
                types.push(convert_func_type(ft, 0).expect("a supported type"));
            }
        }
        types
    }

    #[test]
    fn plain_function_types_read_as_the_general_reader_reads_them() {
        #[rustfmt::skip]
        let section = [
            6,
            // (func)
            0x60, 0, 0,
            // (func (param i32 i64 f32 f64) (result v128))
            0x60, 4, 0x7f, 0x7e, 0x7d, 0x7c, 1, 0x7b,
            // (func (param funcref externref exnref) (result i32 i64 f64))
            0x60, 3, 0x70, 0x6f, 0x69, 3, 0x7f, 0x7e, 0x7c,
            // (func (param (ref null 0) (ref 1)) (result (ref func) (ref null extern)))
            0x60, 2, 0x63, 0, 0x64, 1, 2, 0x64, 0x70, 0x63, 0x6f,
            // (func (result (ref null 2))) and (func (param i32))
            0x60, 0, 1, 0x63, 2,
            0x60, 1, 0x7f, 0,
        ];
        let fast = read_plain_func_types(&section, 0).expect("all plain function types");
        assert_eq!(fast.len(), 6);
        assert_eq!(fast, by_general_reader(&section));
    }

    #[test]
    fn anything_but_plain_function_types_is_left_to_the_general_reader() {
        // A rec group, a subtype, a struct type, a count past the end,
        // bytes after the last type, a byte that is no value type, and a
        // value type Keel does not support (`nullfuncref`).
        for section in [
            &[1, 0x4e, 1, 0x60, 0, 0][..],
            &[1, 0x50, 0, 0x60, 0, 0],
            &[1, 0x5f, 0],
            &[2, 0x60, 0, 0],
            &[1, 0x60, 0, 0, 0],
            &[1, 0x60, 1, 0xff, 0],
            &[1, 0x60, 0, 1, 0x73],
        ] {
            assert_eq!(read_plain_func_types(section, 0), None, "{section:x?}");
        }
    }
}
