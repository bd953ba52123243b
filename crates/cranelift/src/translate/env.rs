//! How generated code reaches everything outside the function: the
//! `VMContext`, memories, tables, globals, other functions and builtins.
//!
//! Every load from the context goes through here, with flags that tell
//! Cranelift the truth: fields that never change for the life of an instance
//! are `readonly` and `can_move` (so they are deduplicated and hoisted out of
//! loops), heap accesses may trap with `HEAP_OUT_OF_BOUNDS`, and each kind of
//! mutable memory gets its own alias region so that a store to the heap does
//! not force a global to be reloaded.

use crate::signatures::{ir_type, wasm_signature};
use crate::trap::trap_code;
use cranelift_codegen::ir::{
    self, AbiParam, AliasRegion, AliasRegionData, ExtFuncData, ExternalName, FuncRef, InstBuilder,
    MemFlagsData, SigRef, Signature, Type, UserExternalName, Value, condcodes::IntCC, types,
};
use cranelift_codegen::isa::TargetIsa;
use cranelift_frontend::FunctionBuilder;
use keel_environ::builtins::{BuiltinFunctionIndex, BuiltinType};
use keel_environ::{
    FuncIndex, GlobalIndex, MemoryIndex, Module, TableIndex, TrapKind, Tunables, TypeIndex,
    VMOffsets, vm_func_ref, vm_function_import, vm_memory_definition, vm_memory_ref,
    vm_store_context, vm_table_definition, vmctx,
};
use std::collections::HashMap;

/// Alias regions of one function. Any address belongs to at most one.
struct Regions {
    heap: AliasRegion,
    globals: AliasRegion,
    tables: AliasRegion,
    memory_lengths: AliasRegion,
    store_context: AliasRegion,
    epoch: AliasRegion,
}

/// Per-function view of the module and its context layout.
pub(crate) struct FuncEnvironment<'a> {
    pub module: &'a Module,
    pub offsets: &'a VMOffsets,
    pub tunables: &'a Tunables,
    pub isa: &'a dyn TargetIsa,
    pub pointer_type: Type,
    /// The `vmctx` parameter of the function being translated.
    pub vmctx: Value,
    regions: Option<Regions>,
    builtin_sigs: HashMap<BuiltinFunctionIndex, SigRef>,
    wasm_sigs: HashMap<TypeIndex, SigRef>,
    direct_callees: HashMap<FuncIndex, FuncRef>,
    slow_path_sig: Option<SigRef>,
}

impl<'a> FuncEnvironment<'a> {
    pub fn new(
        module: &'a Module,
        offsets: &'a VMOffsets,
        tunables: &'a Tunables,
        isa: &'a dyn TargetIsa,
    ) -> Self {
        FuncEnvironment {
            module,
            offsets,
            tunables,
            isa,
            pointer_type: isa.pointer_type(),
            vmctx: Value::from_u32(0),
            regions: None,
            builtin_sigs: HashMap::new(),
            wasm_sigs: HashMap::new(),
            direct_callees: HashMap::new(),
            slow_path_sig: None,
        }
    }

    /// Prepares for a new function whose context parameter is `vmctx`.
    pub fn start_function(&mut self, b: &mut FunctionBuilder<'_>, vmctx: Value) {
        self.vmctx = vmctx;
        self.builtin_sigs.clear();
        self.wasm_sigs.clear();
        self.direct_callees.clear();
        self.slow_path_sig = None;
        let mut region = |id: u32, name: &'static str| {
            b.func.dfg.alias_regions.insert(AliasRegionData {
                user_id: id,
                description: name.into(),
            })
        };
        self.regions = Some(Regions {
            heap: region(1, "heap"),
            globals: region(2, "globals"),
            tables: region(3, "tables"),
            memory_lengths: region(4, "memory lengths"),
            store_context: region(5, "store context"),
            epoch: region(6, "epoch interrupt word"),
        });
    }

    fn regions(&self) -> &Regions {
        self.regions.as_ref().expect("start_function was called")
    }

    // ---- flags --------------------------------------------------------

    /// A field that never changes while the instance exists.
    pub fn readonly_flags() -> MemFlagsData {
        MemFlagsData::trusted().with_readonly().with_can_move()
    }

    /// A linear-memory access: may fault, little-endian, unaligned.
    pub fn heap_flags(&self) -> MemFlagsData {
        MemFlagsData::new()
            .with_endianness(ir::Endianness::Little)
            .with_trap_code(Some(trap_code(TrapKind::MemoryOutOfBounds)))
            .with_alias_region(Some(self.regions().heap))
    }

    /// A table element access (already bounds-checked).
    pub fn table_flags(&self) -> MemFlagsData {
        MemFlagsData::trusted().with_alias_region(Some(self.regions().tables))
    }

    /// A mutable field of the `VMStoreContext` (the fuel count).
    pub fn store_context_flags(&self) -> MemFlagsData {
        MemFlagsData::trusted().with_alias_region(Some(self.regions().store_context))
    }

    /// The alias region of the store's epoch interrupt word, which other
    /// threads write.
    pub fn epoch_region(&self) -> AliasRegion {
        self.regions().epoch
    }

    fn global_flags(&self, mutable: bool) -> MemFlagsData {
        if mutable {
            MemFlagsData::trusted().with_alias_region(Some(self.regions().globals))
        } else {
            Self::readonly_flags()
        }
    }

    // ---- the context ----------------------------------------------------

    /// Loads a pointer-sized field of the context that never changes.
    pub fn load_vmctx_readonly(&self, b: &mut FunctionBuilder<'_>, offset: u32) -> Value {
        b.ins().load(
            self.pointer_type,
            Self::readonly_flags(),
            self.vmctx,
            offset_i32(offset),
        )
    }

    // ---- memories ---------------------------------------------------------

    /// The base address of a linear memory; never changes.
    pub fn memory_base(&self, b: &mut FunctionBuilder<'_>, mem: MemoryIndex) -> Value {
        self.load_vmctx_readonly(b, self.offsets.memory_ref(mem) + vm_memory_ref::BASE)
    }

    /// The current byte length of a linear memory.
    pub fn memory_length(&self, b: &mut FunctionBuilder<'_>, mem: MemoryIndex) -> Value {
        let def =
            self.load_vmctx_readonly(b, self.offsets.memory_ref(mem) + vm_memory_ref::DEFINITION);
        let flags = MemFlagsData::trusted().with_alias_region(Some(self.regions().memory_lengths));
        b.ins().load(
            self.pointer_type,
            flags,
            def,
            offset_i32(vm_memory_definition::CURRENT_LENGTH),
        )
    }

    /// Computes the host address of a `size`-byte access at `index +
    /// offset` in memory `mem`. Returns the address and a static offset
    /// to fold into the load or store.
    ///
    /// When the memory has 64 KiB pages (so its length ends on a host page;
    /// see `Memory::has_wasm_pages`) and the reservation and guard cover
    /// every possible address, no check is emitted: an out-of-bounds access faults on the guard and the
    /// signal handler turns it into a trap. Otherwise the address is
    /// compared with the current length, and an out-of-bounds one is
    /// replaced by null (with a conditional move, so that a mispredicted
    /// check cannot speculatively read out of bounds); the access then
    /// faults on the null page.
    pub fn heap_address(
        &self,
        b: &mut FunctionBuilder<'_>,
        mem: MemoryIndex,
        index: Value,
        offset: u64,
        size: u8,
    ) -> (Value, i32) {
        let ty = self.module.memories[mem];
        if ty.memory64 {
            return self.heap_address64(b, mem, index, offset, size);
        }
        let base = self.memory_base(b, mem);
        let index = b.ins().uextend(types::I64, index);
        if ty.has_wasm_pages() && self.tunables.access_needs_no_check(offset, u64::from(size)) {
            return unchecked_address(b, base, index, offset);
        }
        // index < 2^32 and offset < 2^32, so none of these sums overflow.
        let end = b.ins().iadd_imm_s(index, (offset + u64::from(size)) as i64);
        let length = self.memory_length(b, mem);
        let oob = b.ins().icmp(IntCC::UnsignedGreaterThan, end, length);
        guarded_address(b, base, index, offset, oob)
    }

    /// [`Self::heap_address`] for a 64-bit memory, which guard pages cannot
    /// cover: an index below 2^32 (the zero extension of an `i32`) whose
    /// access ends within the guard needs no check, as in a 32-bit memory,
    /// and neither does a constant index whose access ends within the
    /// minimum size (a memory never shrinks). Otherwise, when the access
    /// ends within the guard, comparing the index with the length is
    /// enough: from the length to the end of the guard nothing is
    /// accessible, so an access that starts at or below the length either
    /// fits or faults. Only a larger static offset, or a memory of one-byte
    /// pages (whose length may end inside an accessible host page), needs
    /// the full sum, which traps if it overflows.
    fn heap_address64(
        &self,
        b: &mut FunctionBuilder<'_>,
        mem: MemoryIndex,
        index: Value,
        offset: u64,
        size: u8,
    ) -> (Value, i32) {
        let base = self.memory_base(b, mem);
        let ty = self.module.memories[mem];
        let access_end = offset.checked_add(u64::from(size));
        let minimum_bytes = ty.minimum.saturating_mul(ty.page_size());
        let constant_in_bounds = constant(b, index)
            .zip(access_end)
            .and_then(|(index, end)| index.checked_add(end))
            .is_some_and(|end| end <= minimum_bytes);
        let below_4gib = ty.has_wasm_pages()
            && is_zero_extended_i32(b, index)
            && self.tunables.access_needs_no_check(offset, u64::from(size));
        if constant_in_bounds || below_4gib {
            return unchecked_address(b, base, index, offset);
        }
        let length = self.memory_length(b, mem);
        let oob_code = trap_code(TrapKind::MemoryOutOfBounds);
        let oob = match access_end {
            Some(end) if ty.has_wasm_pages() && end <= self.tunables.memory_guard_size => {
                b.ins().icmp(IntCC::UnsignedGreaterThan, index, length)
            }
            Some(end) => {
                let end = b.ins().iconst(types::I64, end as i64);
                let end = b.ins().uadd_overflow_trap(index, end, oob_code);
                b.ins().icmp(IntCC::UnsignedGreaterThan, end, length)
            }
            None => {
                let offset = b.ins().iconst(types::I64, offset as i64);
                let start = b.ins().uadd_overflow_trap(index, offset, oob_code);
                let size = b.ins().iconst(types::I64, i64::from(size));
                let end = b.ins().uadd_overflow_trap(start, size, oob_code);
                b.ins().icmp(IntCC::UnsignedGreaterThan, end, length)
            }
        };
        guarded_address(b, base, index, offset, oob)
    }

    // ---- globals ------------------------------------------------------

    /// Where a global's value is stored: a base address and an offset.
    fn global_location(&self, b: &mut FunctionBuilder<'_>, index: GlobalIndex) -> (Value, i32) {
        match self.module.defined_global_index(index) {
            Some(def) => (self.vmctx, offset_i32(self.offsets.defined_global(def))),
            None => {
                let ptr = self.load_vmctx_readonly(b, self.offsets.imported_global_ptr(index));
                (ptr, 0)
            }
        }
    }

    /// Reads a global.
    pub fn global_get(&self, b: &mut FunctionBuilder<'_>, index: GlobalIndex) -> Value {
        let global = self.module.globals[index];
        let (base, offset) = self.global_location(b, index);
        b.ins().load(
            ir_type(global.ty, self.pointer_type),
            self.global_flags(global.mutable),
            base,
            offset,
        )
    }

    /// Writes a (mutable) global.
    pub fn global_set(&self, b: &mut FunctionBuilder<'_>, index: GlobalIndex, value: Value) {
        let (base, offset) = self.global_location(b, index);
        b.ins().store(self.global_flags(true), value, base, offset);
    }

    // ---- tables ---------------------------------------------------------

    /// The table's `VMTableDefinition` (its address never changes).
    pub fn table_definition(&self, b: &mut FunctionBuilder<'_>, table: TableIndex) -> Value {
        self.load_vmctx_readonly(b, self.offsets.table_definition_ptr(table))
    }

    /// The table's current number of elements.
    pub fn table_size(&self, b: &mut FunctionBuilder<'_>, table: TableIndex) -> Value {
        let def = self.table_definition(b, table);
        b.ins().load(
            self.pointer_type,
            self.table_flags(),
            def,
            offset_i32(vm_table_definition::CURRENT_ELEMENTS),
        )
    }

    /// The address of element `index` of `table`, trapping with
    /// `TableOutOfBounds` when it is past the end (and null under
    /// misspeculation: see the Spectre guard below).
    pub fn table_element_address(
        &self,
        b: &mut FunctionBuilder<'_>,
        table: TableIndex,
        index: Value,
    ) -> Value {
        let def = self.table_definition(b, table);
        let flags = self.table_flags();
        let length = b.ins().load(
            self.pointer_type,
            flags,
            def,
            offset_i32(vm_table_definition::CURRENT_ELEMENTS),
        );
        let index = widen_to_i64(b, index);
        let oob = b
            .ins()
            .icmp(IntCC::UnsignedGreaterThanOrEqual, index, length);
        b.ins().trapnz(oob, trap_code(TrapKind::TableOutOfBounds));
        let base = b.ins().load(
            self.pointer_type,
            flags,
            def,
            offset_i32(vm_table_definition::BASE),
        );
        let scaled = b.ins().ishl_imm_u(index, 3);
        let addr = b.ins().iadd(base, scaled);
        // Spectre guard, as for dynamic heap checks: a processor that
        // mispredicts the trap above and runs ahead must not read past the
        // table, so an out-of-bounds index yields null with a conditional
        // move, which is not predicted.
        let null = b.ins().iconst(self.pointer_type, 0);
        b.ins().select_spectre_guard(oob, null, addr)
    }

    /// Loads element `index` of `table` (trapping out of bounds). A funcref
    /// table stores `funcref | 1`, or 0 for an element not initialized yet,
    /// which the `table_lazy_func_ref` builtin initializes on this first
    /// use (the encoding is documented in `keel`'s `vm/table.rs`).
    pub fn load_table_element(
        &mut self,
        b: &mut FunctionBuilder<'_>,
        table: TableIndex,
        index: Value,
    ) -> Value {
        let addr = self.table_element_address(b, table, index);
        let flags = self.table_flags();
        let word = b.ins().load(self.pointer_type, flags, addr, 0);
        if !self.module.tables[table].ty.heap.is_func() {
            return word;
        }
        let lazy = b.create_block();
        let done = b.create_block();
        b.append_block_param(done, self.pointer_type);
        let decoded = b.ins().band_imm_s(word, !1i64);
        b.ins().brif(word, done, &[decoded.into()], lazy, &[]);
        b.set_cold_block(lazy);
        b.seal_block(lazy);
        b.switch_to_block(lazy);
        let table_arg = b.ins().iconst(types::I32, i64::from(table.as_u32()));
        let index_arg = widen_to_i64(b, index);
        let initialized = self.call_builtin(
            b,
            BuiltinFunctionIndex::table_lazy_func_ref,
            &[table_arg, index_arg],
        );
        b.ins().jump(done, &[initialized.into()]);
        b.seal_block(done);
        b.switch_to_block(done);
        b.block_params(done)[0]
    }

    /// Stores `value` as element `index` of `table` (trapping out of
    /// bounds), in the table's encoding (see `load_table_element`).
    pub fn store_table_element(
        &mut self,
        b: &mut FunctionBuilder<'_>,
        table: TableIndex,
        index: Value,
        value: Value,
    ) {
        let addr = self.table_element_address(b, table, index);
        let word = if self.module.tables[table].ty.heap.is_func() {
            b.ins().bor_imm_u(value, 1)
        } else {
            value
        };
        b.ins().store(self.table_flags(), word, addr, 0);
    }

    // ---- calls ----------------------------------------------------------

    /// The Cranelift signature for a wasm type, imported once per function.
    pub fn wasm_sig_ref(&mut self, b: &mut FunctionBuilder<'_>, ty: TypeIndex) -> SigRef {
        if let Some(s) = self.wasm_sigs.get(&ty) {
            return *s;
        }
        let sig = wasm_signature(self.isa, &self.module.types[ty]);
        let s = b.import_signature(sig);
        self.wasm_sigs.insert(ty, s);
        s
    }

    /// A direct-call reference to a function defined in this module.
    pub fn direct_callee(&mut self, b: &mut FunctionBuilder<'_>, callee: FuncIndex) -> FuncRef {
        if let Some(f) = self.direct_callees.get(&callee) {
            return *f;
        }
        let sig = self.wasm_sig_ref(b, self.module.functions[callee].type_index);
        let name = b.func.declare_imported_user_function(UserExternalName {
            namespace: 0,
            index: callee.as_u32(),
        });
        let f = b.import_function(ExtFuncData {
            name: ExternalName::user(name),
            signature: sig,
            colocated: true,
            patchable: false,
        });
        self.direct_callees.insert(callee, f);
        f
    }

    /// For a call to an imported function: its code and its context.
    pub fn imported_callee(
        &self,
        b: &mut FunctionBuilder<'_>,
        callee: FuncIndex,
    ) -> (Value, Value) {
        let base = self.offsets.imported_function(callee);
        let code = self.load_vmctx_readonly(b, base + vm_function_import::WASM_CALL);
        let ctx = self.load_vmctx_readonly(b, base + vm_function_import::VMCTX);
        (code, ctx)
    }

    /// Loads a typed `VMFuncRef`'s code and context for `call_ref`: its
    /// type is known from validation, so only null is checked, by faulting
    /// on the first load.
    pub fn non_null_func_ref(
        &self,
        b: &mut FunctionBuilder<'_>,
        func_ref: Value,
    ) -> (Value, Value) {
        let null_check = MemFlagsData::new()
            .with_aligned()
            .with_trap_code(Some(trap_code(TrapKind::NullReference)));
        self.callee_of_func_ref(b, func_ref, null_check)
    }

    /// A funcref's code, loaded with `code_flags`, and its context. A
    /// funcref's fields never change once it is visible to wasm; the
    /// context is loaded after the code, so a null check on the code's
    /// load comes first.
    fn callee_of_func_ref(
        &self,
        b: &mut FunctionBuilder<'_>,
        func_ref: Value,
        code_flags: MemFlagsData,
    ) -> (Value, Value) {
        let code = b.ins().load(
            self.pointer_type,
            code_flags,
            func_ref,
            offset_i32(vm_func_ref::WASM_CALL),
        );
        let ctx = b.ins().load(
            self.pointer_type,
            MemFlagsData::trusted().with_readonly(),
            func_ref,
            offset_i32(vm_func_ref::VMCTX),
        );
        (code, ctx)
    }

    /// Loads a `VMFuncRef` for `call_indirect`: checks it is not null (by
    /// faulting on its type load) and has signature `ty`; returns its code
    /// and context.
    pub fn checked_func_ref(
        &self,
        b: &mut FunctionBuilder<'_>,
        func_ref: Value,
        ty: TypeIndex,
    ) -> (Value, Value) {
        // Loading the type index from a null funcref faults on the null
        // page; the trap table reports that as a call to null.
        let null_check = MemFlagsData::new()
            .with_aligned()
            .with_trap_code(Some(trap_code(TrapKind::IndirectCallToNull)));
        let actual = b.ins().load(
            types::I32,
            null_check,
            func_ref,
            offset_i32(vm_func_ref::TYPE_INDEX),
        );
        let type_ids = self.load_vmctx_readonly(b, vmctx::TYPE_IDS);
        let expected = b.ins().load(
            types::I32,
            Self::readonly_flags(),
            type_ids,
            offset_i32(ty.as_u32() * 4),
        );
        let mismatch = b.ins().icmp(IntCC::NotEqual, actual, expected);
        b.ins().trapnz(mismatch, trap_code(TrapKind::BadSignature));
        self.callee_of_func_ref(b, func_ref, MemFlagsData::trusted().with_readonly())
    }

    // ---- builtins -------------------------------------------------------

    fn builtin_sig_ref(
        &mut self,
        b: &mut FunctionBuilder<'_>,
        builtin: BuiltinFunctionIndex,
    ) -> SigRef {
        if let Some(s) = self.builtin_sigs.get(&builtin) {
            return *s;
        }
        let ptr = self.pointer_type;
        let conv = |t: BuiltinType| match t {
            BuiltinType::Vmctx | BuiltinType::Ptr => ptr,
            BuiltinType::I32 => types::I32,
            BuiltinType::I64 => types::I64,
        };
        let bsig = builtin.signature();
        let mut sig = Signature::new(self.isa.default_call_conv());
        sig.params
            .extend(bsig.params.iter().map(|t| AbiParam::new(conv(*t))));
        sig.returns.push(AbiParam::new(conv(bsig.result)));
        let s = b.import_signature(sig);
        self.builtin_sigs.insert(builtin, s);
        s
    }

    /// The signature of the slow-path trampoline, imported once per
    /// function.
    pub fn slow_path_sig_ref(&mut self, b: &mut FunctionBuilder<'_>) -> SigRef {
        if let Some(s) = self.slow_path_sig {
            return s;
        }
        let s = b.import_signature(crate::trampolines::slow_path_signature(self.isa));
        self.slow_path_sig = Some(s);
        s
    }

    /// Calls a runtime builtin with the context prepended to `args`.
    pub fn call_builtin(
        &mut self,
        b: &mut FunctionBuilder<'_>,
        builtin: BuiltinFunctionIndex,
        args: &[Value],
    ) -> Value {
        let sig = self.builtin_sig_ref(b, builtin);
        // Readonly but not `can_move`: most builtin calls sit on cold paths
        // (epoch checks, lazy table elements) inside hot loops,
        // and hoisting the callee's address out of the loop would hold a
        // callee-saved register for the whole loop to serve a call that
        // almost never happens.
        let flags = MemFlagsData::trusted().with_readonly();
        let array = b.ins().load(
            self.pointer_type,
            flags,
            self.vmctx,
            offset_i32(vmctx::BUILTINS),
        );
        let callee = b.ins().load(
            self.pointer_type,
            flags,
            array,
            offset_i32(builtin.array_offset()),
        );
        let mut call_args = Vec::with_capacity(args.len() + 1);
        call_args.push(self.vmctx);
        call_args.extend_from_slice(args);
        let call = b.ins().call_indirect(sig, callee, &call_args);
        b.inst_results(call)[0]
    }

    /// After a `memory_grow` or `table_grow` builtin: its result -2 means
    /// the store's resource limiter failed, which traps (the store keeps
    /// the limiter's error for the caller).
    pub fn trap_if_limiter_failed(&self, b: &mut FunctionBuilder<'_>, result: Value) {
        let failed = b.ins().icmp_imm_s(IntCC::Equal, result, -2);
        b.ins().trapnz(failed, trap_code(TrapKind::HostError));
    }

    /// The global value Cranelift checks the stack pointer against in
    /// every prologue: `vmctx->store_context->stack_limit`.
    pub fn stack_limit_global(func: &mut ir::Function) -> ir::GlobalValue {
        let vmctx_gv = func.create_global_value(ir::GlobalValueData::VMContext);
        let readonly = func
            .dfg
            .mem_flags
            .insert_unchecked(MemFlagsData::trusted().with_readonly());
        let trusted = func.dfg.mem_flags.insert_unchecked(MemFlagsData::trusted());
        let store_ctx = func.create_global_value(ir::GlobalValueData::Load {
            base: vmctx_gv,
            offset: offset_i32(vmctx::STORE_CONTEXT).into(),
            global_type: types::I64,
            flags: readonly,
        });
        func.create_global_value(ir::GlobalValueData::Load {
            base: store_ctx,
            offset: offset_i32(vm_store_context::STACK_LIMIT).into(),
            global_type: types::I64,
            flags: trusted,
        })
    }
}

/// Context offsets are bounded by `VMOffsets::new` to fit in `u32`; the
/// ones used as immediates are small in practice, and a module whose context
/// exceeds 2 GiB has already been refused by the entity limits.
/// `base + index + offset` with no bounds check, the offset folded into
/// the access when it fits.
fn unchecked_address(
    b: &mut FunctionBuilder<'_>,
    base: Value,
    index: Value,
    offset: u64,
) -> (Value, i32) {
    let addr = b.ins().iadd(base, index);
    if let Ok(offset) = i32::try_from(offset) {
        return (addr, offset);
    }
    let addr = b.ins().iadd_imm_s(addr, offset as i64);
    (addr, 0)
}

/// `v` zero-extended to 64 bits if it is an `i32` (an index or length of a
/// 32-bit memory or table), as is if it is already an `i64` (a 64-bit
/// one's).
pub(super) fn widen_to_i64(b: &mut FunctionBuilder<'_>, v: Value) -> Value {
    if b.func.dfg.value_type(v) == types::I64 {
        v
    } else {
        b.ins().uextend(types::I64, v)
    }
}

/// `v`, an `i64` size or old size, as the index type of a memory or table:
/// as is if `is_64`, else reduced to an `i32`.
pub(super) fn narrow_to_index_type(b: &mut FunctionBuilder<'_>, v: Value, is_64: bool) -> Value {
    if is_64 {
        v
    } else {
        b.ins().ireduce(types::I32, v)
    }
}

/// `base + index + offset`, or null (whose page faults) when `oob` is set,
/// chosen by a conditional move that the processor does not predict, so
/// that a mispredicted check cannot read out of bounds even speculatively.
fn guarded_address(
    b: &mut FunctionBuilder<'_>,
    base: Value,
    index: Value,
    offset: u64,
    oob: Value,
) -> (Value, i32) {
    let addr = b.ins().iadd(base, index);
    let addr = b.ins().iadd_imm_s(addr, offset as i64);
    let null = b.ins().iconst(types::I64, 0);
    (b.ins().select_spectre_guard(oob, null, addr), 0)
}

/// The value of `v`, unsigned (zero-extended from its type's width), if
/// an `iconst` defines it.
pub(super) fn constant(b: &FunctionBuilder<'_>, v: Value) -> Option<u64> {
    let inst = b.func.dfg.value_def(v).inst()?;
    match b.func.dfg.insts[inst] {
        ir::InstructionData::UnaryImm {
            opcode: ir::Opcode::Iconst,
            imm,
        } => {
            let bits = b.func.dfg.value_type(v).bits();
            Some((imm.bits() as u64) & (u64::MAX >> (64 - bits)))
        }
        _ => None,
    }
}

/// Whether `v` is the zero extension of a 32-bit value (so below 2^32).
fn is_zero_extended_i32(b: &FunctionBuilder<'_>, v: Value) -> bool {
    let Some(inst) = b.func.dfg.value_def(v).inst() else {
        return false;
    };
    match b.func.dfg.insts[inst] {
        ir::InstructionData::Unary {
            opcode: ir::Opcode::Uextend,
            arg,
        } => b.func.dfg.value_type(arg).bits() <= 32,
        _ => false,
    }
}

pub(crate) fn offset_i32(offset: u32) -> i32 {
    i32::try_from(offset).expect("context offsets fit in i32")
}
