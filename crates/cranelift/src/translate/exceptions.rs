//! Exception handling: `try_table`, `throw`, `throw_ref`.
//!
//! A `try_table` opens a block with a *landing pad*: a Cranelift block
//! that takes the exception object and tests the table's catch clauses in
//! order, comparing the object's tag identity with that of each clause's
//! tag (tags are compared by identity, not index: two imports may be one
//! tag). A clause that matches branches to its label with the exception's
//! fields (and the object, for the `_ref` forms); when none matches, the
//! pad goes on to the pad of the enclosing `try_table` of the same
//! function, and past the outermost one it hands the exception to the
//! `throw_ref` builtin, which looks for a handler in the callers.
//!
//! Three kinds of edges reach a pad:
//!
//! - every call inside the `try_table` is a Cranelift `try_call` whose
//!   only handler is the pad (a catch-all: the pad does the matching), so
//!   an exception that unwinds to the call's return address resumes there
//!   (the runtime's unwinder reads the call sites from the code tables);
//! - `throw` and `throw_ref` inside it jump to the pad directly: an
//!   exception caught in the function that throws it never leaves wasm;
//! - an inner pad that matched nothing.
//!
//! Calls use the `tail` convention, which Cranelift's exceptional edges
//! treat as clobbering every register: the unwinder restores only the
//! stack and frame pointers (and the fuel register), never a callee-saved
//! register.

use super::FuncTranslator;
use super::state::ControlKind;
use crate::signatures::VAL_RAW_SIZE;
use crate::signatures::ir_type;
use crate::trap::trap_code;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    Block, BlockArg, ExceptionTableData, ExceptionTableItem, FuncRef, InstBuilder, MemFlagsData,
    SigRef, Value,
};
use keel_environ::builtins::BuiltinFunctionIndex;
use keel_environ::{TagIndex, TrapKind, vm_exception};
use wasmparser::Catch;

/// What a call inside a `try_table` calls.
#[derive(Copy, Clone)]
pub(super) enum Callee {
    /// A function of this module.
    Direct(FuncRef),
    /// Code at an address, with a signature.
    Indirect(SigRef, Value),
}

/// The exception object's flags: it never changes once thrown, and wasm
/// only ever holds valid (non-null, checked) objects when it reads one.
fn object_flags() -> MemFlagsData {
    MemFlagsData::trusted().with_readonly()
}

impl FuncTranslator<'_, '_> {
    /// The landing pad of the innermost `try_table` around the current
    /// instruction, marked as used.
    pub(super) fn current_pad(&mut self) -> Option<Block> {
        let index = *self.state.try_tables.last()?;
        self.pad_of(index)
    }

    /// The landing pad of the handler frame at `index` in the control
    /// stack, marked as used.
    fn pad_of(&mut self, index: usize) -> Option<Block> {
        match &mut self.state.control[index].kind {
            ControlKind::TryTable { pad, pad_used, .. }
            | ControlKind::LegacyTry { pad, pad_used, .. } => {
                *pad_used = true;
                Some(*pad)
            }
            _ => None,
        }
    }

    /// A call that returns its results; inside a `try_table`, a `try_call`
    /// whose exceptional edge goes to the landing pad.
    pub(super) fn call_may_throw(&mut self, callee: Callee, args: &[Value]) -> Vec<Value> {
        let Some(pad) = self.current_pad() else {
            let inst = match callee {
                Callee::Direct(f) => self.b.ins().call(f, args),
                Callee::Indirect(sig, code) => self.b.ins().call_indirect(sig, code, args),
            };
            return self.b.inst_results(inst).to_vec();
        };
        let sig = match callee {
            Callee::Direct(f) => self.b.func.dfg.ext_funcs[f].signature,
            Callee::Indirect(sig, _) => sig,
        };
        let returns: Vec<_> = self.b.func.dfg.signatures[sig]
            .returns
            .iter()
            .map(|r| r.value_type)
            .collect();
        let next = self.b.create_block();
        for ty in &returns {
            self.b.append_block_param(next, *ty);
        }
        let rets: Vec<BlockArg> = (0..returns.len() as u32)
            .map(BlockArg::TryCallRet)
            .collect();
        let normal = self.b.func.dfg.block_call(next, &rets);
        let caught = self.b.func.dfg.block_call(pad, &[BlockArg::TryCallExn(0)]);
        let table = ExceptionTableData::new(sig, normal, [ExceptionTableItem::Default(caught)]);
        let table = self.b.func.dfg.exception_tables.push(table);
        match callee {
            Callee::Direct(f) => self.b.ins().try_call(f, args, table),
            Callee::Indirect(_, code) => self.b.ins().try_call_indirect(code, args, table),
        };
        self.b.seal_block(next);
        self.b.switch_to_block(next);
        self.b.block_params(next).to_vec()
    }

    /// The identity of a tag: the address of its `VMTagDefinition`.
    fn tag_identity(&mut self, tag: TagIndex) -> Value {
        match self.env.module.defined_tag_index(tag) {
            Some(defined) => {
                let offset = self.env.offsets.defined_tag(defined);
                self.b.ins().iadd_imm_u(self.env.vmctx, i64::from(offset))
            }
            None => {
                let offset = self.env.offsets.imported_tag_ptr(tag);
                self.env.load_vmctx_readonly(&mut self.b, offset)
            }
        }
    }

    /// Sends `exn` (a non-null exception object) to the innermost handler:
    /// this function's landing pad, or the callers'.
    fn throw_object(&mut self, exn: Value) {
        let pad = self.current_pad();
        self.throw_object_to(pad, exn);
    }

    /// Sends `exn` to `pad`, or to the callers without one.
    fn throw_object_to(&mut self, pad: Option<Block>, exn: Value) {
        match pad {
            Some(pad) => {
                self.b.ins().jump(pad, &[BlockArg::Value(exn)]);
            }
            None => self.throw_to_callers(exn),
        }
        self.state.reachable = false;
    }

    /// Hands `exn` to the `throw_ref` builtin, which resumes at a handler
    /// of a caller or returns when no frame of this activation has one.
    fn throw_to_callers(&mut self, exn: Value) {
        self.meter_before_unwind();
        let ptr = self.env.pointer_type;
        let fp = self.b.ins().get_frame_pointer(ptr);
        self.env
            .call_builtin(&mut self.b, BuiltinFunctionIndex::throw_ref, &[exn, fp]);
        self.b.ins().trap(trap_code(TrapKind::UncaughtException));
    }

    /// Opens a `try_table`: a block with a landing pad for its catches.
    pub(super) fn try_table(&mut self, table: &wasmparser::TryTable) {
        super::control::block(self, table.ty);
        let pad = self.b.create_block();
        self.b.append_block_param(pad, self.env.pointer_type);
        let frame = self
            .state
            .control
            .last_mut()
            .expect("a block was just opened");
        frame.kind = ControlKind::TryTable {
            pad,
            catches: table.catches.clone(),
            pad_used: false,
        };
        let index = self.state.control.len() - 1;
        self.state.try_tables.push(index);
    }

    /// Emits a closed `try_table`'s landing pad (its frame is popped, so
    /// catch labels count from the enclosing frames, as they do in the
    /// instruction).
    pub(super) fn landing_pad(&mut self, pad: Block, catches: &[Catch]) {
        self.b.switch_to_block(pad);
        self.b.seal_block(pad);
        self.meter_at_landing_pad();
        let exn = self.b.block_params(pad)[0];
        let thrown_tag = self.b.ins().load(
            self.env.pointer_type,
            object_flags(),
            exn,
            vm_exception::TAG as i32,
        );
        for catch in catches {
            let (tag, label, with_ref) = match *catch {
                Catch::One { tag, label } => (Some(tag), label, false),
                Catch::OneRef { tag, label } => (Some(tag), label, true),
                Catch::All { label } => (None, label, false),
                Catch::AllRef { label } => (None, label, true),
            };
            let Some(tag) = tag else {
                let args = if with_ref { vec![exn] } else { vec![] };
                self.branch_to_label(label, &args);
                return;
            };
            let tag = TagIndex::from_u32(tag);
            let identity = self.tag_identity(tag);
            let matches = self.b.ins().icmp(IntCC::Equal, thrown_tag, identity);
            let caught = self.b.create_block();
            let next = self.b.create_block();
            self.b.ins().brif(matches, caught, &[], next, &[]);
            self.b.seal_block(caught);
            self.b.seal_block(next);
            self.b.switch_to_block(caught);
            let mut args = self.exception_fields(exn, tag);
            if with_ref {
                args.push(exn);
            }
            self.branch_to_label(label, &args);
            self.b.switch_to_block(next);
        }
        // No clause matched: the enclosing handlers of this function, then
        // the callers'.
        self.throw_object(exn);
    }

    /// Loads the fields an exception of `tag` carries.
    fn exception_fields(&mut self, exn: Value, tag: TagIndex) -> Vec<Value> {
        let ptr = self.env.pointer_type;
        let fields = self
            .b
            .ins()
            .load(ptr, object_flags(), exn, vm_exception::FIELDS as i32);
        let types: Vec<_> = self.env.module.tag_type(tag).params().to_vec();
        types
            .iter()
            .enumerate()
            .map(|(i, ty)| {
                let offset = (i as u32 * VAL_RAW_SIZE) as i32;
                self.b
                    .ins()
                    .load(ir_type(*ty, ptr), MemFlagsData::trusted(), fields, offset)
            })
            .collect()
    }

    /// Branches to the label `depth` levels up with `args`.
    fn branch_to_label(&mut self, depth: u32, args: &[Value]) {
        let (block, _) = super::control::branch_target(self, depth);
        let args: Vec<BlockArg> = args.iter().map(|v| BlockArg::Value(*v)).collect();
        self.b.ins().jump(block, &args);
    }

    /// `throw`: a new exception of `tag` carrying the top operands.
    pub(super) fn throw(&mut self, tag: u32) {
        let tag = TagIndex::from_u32(tag);
        let n = self.env.module.tag_type(tag).params().len();
        let index = self
            .b
            .ins()
            .iconst(cranelift_codegen::ir::types::I32, i64::from(tag.as_u32()));
        let exn = self
            .env
            .call_builtin(&mut self.b, BuiltinFunctionIndex::exn_new, &[index]);
        // Null: the store's exception heap is full (its error is kept).
        self.b.ins().trapz(exn, trap_code(TrapKind::HostError));
        let fields = self.b.ins().load(
            self.env.pointer_type,
            object_flags(),
            exn,
            vm_exception::FIELDS as i32,
        );
        let values = self.state.peekn(n).to_vec();
        for (i, v) in values.into_iter().enumerate() {
            let offset = (i as u32 * VAL_RAW_SIZE) as i32;
            self.b
                .ins()
                .store(MemFlagsData::trusted(), v, fields, offset);
        }
        self.state.popn(n);
        self.throw_object(exn);
    }

    /// The legacy `try`: a block whose body's calls and throws go to a
    /// landing pad, as a `try_table`'s do; its `catch` arms follow.
    pub(super) fn legacy_try(&mut self, ty: wasmparser::BlockType) {
        super::control::block(self, ty);
        let pad = self.b.create_block();
        self.b.append_block_param(pad, self.env.pointer_type);
        let frame = self
            .state
            .control
            .last_mut()
            .expect("a block was just opened");
        frame.kind = ControlKind::LegacyTry {
            pad,
            pad_used: false,
            arms: Vec::new(),
            caught: None,
            delegate_to: None,
        };
        let index = self.state.control.len() - 1;
        self.state.try_tables.push(index);
    }

    /// `catch` (with a tag) or `catch_all`: ends the body or the previous
    /// arm, and opens an arm the landing pad branches to when the
    /// exception matches. An arm is not covered by its own `try`.
    pub(super) fn legacy_catch(&mut self, tag: Option<u32>) {
        let index = self.state.control.len() - 1;
        let frame = &self.state.control[index];
        if frame.unreachable {
            return;
        }
        let (following, results, height) = (frame.following, frame.num_results, frame.stack_height);
        if self.state.reachable {
            let args: Vec<BlockArg> = self
                .state
                .peekn(results)
                .iter()
                .map(|v| BlockArg::Value(*v))
                .collect();
            self.b.ins().jump(following, &args);
            self.state.control[index].exit_is_branched_to = true;
        }
        if self.state.try_tables.last() == Some(&index) {
            self.state.try_tables.pop();
        }
        self.state.stack.truncate(height);
        let arm = self.b.create_block();
        let exn = self.b.append_block_param(arm, self.env.pointer_type);
        let tag = tag.map(TagIndex::from_u32);
        if let ControlKind::LegacyTry { arms, caught, .. } = &mut self.state.control[index].kind {
            arms.push((tag, arm));
            *caught = Some(exn);
        }
        self.b.switch_to_block(arm);
        self.state.reachable = true;
        if let Some(tag) = tag {
            let fields = self.exception_fields(exn, tag);
            self.state.stack.extend(fields);
        }
    }

    /// Emits a closed legacy `try`'s landing pad: its arms in order, then
    /// (no arm matching, or a `delegate`) the handler `outer` names: the
    /// enclosing one, or for `delegate` the one around its label.
    pub(super) fn legacy_landing_pad(
        &mut self,
        pad: Block,
        arms: &[(Option<TagIndex>, Block)],
        outer: Option<Block>,
    ) {
        self.b.switch_to_block(pad);
        self.b.seal_block(pad);
        self.meter_at_landing_pad();
        let exn = self.b.block_params(pad)[0];
        let thrown_tag = self.b.ins().load(
            self.env.pointer_type,
            object_flags(),
            exn,
            vm_exception::TAG as i32,
        );
        for &(tag, arm) in arms {
            let Some(tag) = tag else {
                self.b.ins().jump(arm, &[BlockArg::Value(exn)]);
                self.seal_arms(arms);
                return;
            };
            let identity = self.tag_identity(tag);
            let matches = self.b.ins().icmp(IntCC::Equal, thrown_tag, identity);
            let next = self.b.create_block();
            self.b
                .ins()
                .brif(matches, arm, &[BlockArg::Value(exn)], next, &[]);
            self.b.seal_block(next);
            self.b.switch_to_block(next);
        }
        self.seal_arms(arms);
        self.throw_object_to(outer, exn);
    }

    /// Seals the arms of a closed legacy `try` (their only predecessor,
    /// the landing pad, is emitted, or nothing reaches them).
    pub(super) fn seal_arms(&mut self, arms: &[(Option<TagIndex>, Block)]) {
        for &(_, arm) in arms {
            self.b.seal_block(arm);
        }
    }

    /// The handler a `delegate` to `depth` goes to (counted from the
    /// frames around the closed `try`): the innermost handler frame at or
    /// outside that label.
    pub(super) fn delegate_target(&mut self, depth: u32) -> Option<Block> {
        let label = self.state.control.len().checked_sub(1 + depth as usize)?;
        // `try_tables` is in ascending order: a binary search, so that deep
        // nests of delegating `try`s compile in linear time.
        let tables = &self.state.try_tables;
        let index = tables[tables.partition_point(|&i| i <= label).checked_sub(1)?];
        self.pad_of(index)
    }

    /// `rethrow`: throws again the exception the arm `depth` levels up
    /// caught.
    pub(super) fn legacy_rethrow(&mut self, depth: u32) -> Result<(), crate::CompileError> {
        let frame = self.state.frame_mut(depth);
        let ControlKind::LegacyTry {
            caught: Some(exn), ..
        } = &frame.kind
        else {
            return Err(crate::CompileError::Unsupported {
                message: "rethrow outside a catch".into(),
                offset: 0,
            });
        };
        let exn = *exn;
        self.throw_object(exn);
        Ok(())
    }

    /// `delegate`: closes a legacy `try` whose body's exceptions go to the
    /// handler around label `depth`.
    pub(super) fn legacy_delegate(&mut self, depth: u32) {
        if let Some(frame) = self.state.control.last_mut()
            && let ControlKind::LegacyTry { delegate_to, .. } = &mut frame.kind
        {
            *delegate_to = Some(depth);
        }
    }

    /// `throw_ref`: throws a caught exception again; null traps.
    pub(super) fn throw_ref(&mut self) {
        let exn = self.state.pop1();
        self.b.ins().trapz(exn, trap_code(TrapKind::NullReference));
        self.throw_object(exn);
    }
}
