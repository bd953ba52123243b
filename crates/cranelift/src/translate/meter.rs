//! Fuel metering and epoch checks: what keeps a guest under its host's
//! control.
//!
//! **Fuel.** The store keeps a counter, minus one minus the fuel left.
//! Inside a function it lives in a Cranelift variable; costs of
//! straight-line code accumulate at translation time (`pending`) and are
//! added to the variable where control leaves a basic block, so most blocks
//! cost one add. Every add is the check: an unsigned add that carries
//! (`uadd_overflow_trap`, an `add` and a `jb` to a trap) is a cost larger
//! than the fuel left, and traps with `OutOfFuel` (the runtime then sets the
//! store's counter to "none left"). So no guest spends fuel it does not
//! have, by more than the block it is finishing, and loops need no check
//! of their own. Function entry's unit is charged with the first block's
//! cost, before the first operator that could be observed or trap, so a
//! call made with no fuel left runs nothing. A conditional branch out of a
//! block charges on its taken edge, so that a loop's exit test and its body
//! share one add; an `if` charges nothing itself, its arms (or its false
//! edge) charge the condition's cost with their own. Small loops are
//! charged several iterations at a time (`batch.rs`). The variable goes back to the store before every call, return
//! and `unreachable` and is reloaded after every call, so callees, host
//! functions and traps see the count; a bulk operation is charged its
//! length before it runs. The cost of each operator is [`operator_cost`];
//! the model is Wasmtime 48's, so that a guest that finishes spends the
//! same fuel under both. (Wasmtime checks only at function entries and loop
//! headers, so it lets a guest run past its fuel until the next check;
//! Keel stops it at the first block that overspends.)
//!
//! **Epochs.** The engine sets the store's interrupt word (reached through
//! `VMStoreContext::epoch_interrupt`, a pointer that never changes) once its
//! epoch reaches the store's deadline, from whatever thread ticks it. A check
//! is one load of that word and a branch to a cold call of the `new_epoch`
//! builtin: the word's address is loaded once per function (readonly), so a
//! loop header pays a load and a not-taken branch and nothing else. Checks
//! sit where Wasmtime 48 puts them, so that a host sees the same
//! interruptions: at every loop header, at every function entry (a call tree
//! without loops passes one at every level), and before a bulk operation or
//! `memory.grow` of unknown or large length. (With fuel on too, a batched
//! loop, `batch.rs`, checks once per batch of iterations rather than at
//! each one.)
//!
//! The interrupt word is loaded without `readonly`, in its own alias region,
//! and every check's cold path calls a builtin; the call clobbers every
//! region, so alias analysis can never reuse an earlier load of the word for
//! a later check.

use super::FuncTranslator;
use crate::trap::trap_code;
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Value, condcodes::IntCC, types};
use cranelift_frontend::Variable;
use keel_environ::builtins::BuiltinFunctionIndex;
use keel_environ::{TrapKind, vm_store_context, vmctx};
use wasmparser::Operator;

/// Bulk operations whose constant length costs at most this are charged
/// without a check of their own, as straight-line code is.
const SMALL_BULK_COST: i64 = 128;

/// The fuel an operator costs, before any cost per byte or element of a
/// bulk operation. Operators that generate no code of their own (`nop`,
/// `drop`) and structure (`block`, `loop`, `else`, `end`, `return`,
/// `unreachable`) are free; everything else costs 1.
pub(crate) fn operator_cost(op: &Operator<'_>) -> i64 {
    match op {
        Operator::Nop | Operator::Drop => 0,
        Operator::Block { .. }
        | Operator::Loop { .. }
        | Operator::Unreachable
        | Operator::Return
        | Operator::Else
        | Operator::End => 0,
        _ => 1,
    }
}

/// Whether `op` can neither be observed nor trap, so that the function's
/// entry unit may be charged after it: it only reads and writes locals and
/// the operand stack, or opens a block or an `if` (whose arms go on
/// checking).
pub(super) fn is_pure(op: &Operator<'_>) -> bool {
    use Operator as O;
    matches!(
        op,
        O::Nop
            | O::Drop
            | O::Block { .. }
            | O::If { .. }
            | O::LocalGet { .. }
            | O::LocalSet { .. }
            | O::LocalTee { .. }
            | O::I32Const { .. }
            | O::I64Const { .. }
            | O::F32Const { .. }
            | O::F64Const { .. }
            | O::Select
            | O::I32Eqz
            | O::I32Eq
            | O::I32Ne
            | O::I32LtS
            | O::I32LtU
            | O::I32GtS
            | O::I32GtU
            | O::I32LeS
            | O::I32LeU
            | O::I32GeS
            | O::I32GeU
            | O::I64Eqz
            | O::I64Eq
            | O::I64Ne
            | O::I64LtS
            | O::I64LtU
            | O::I64GtS
            | O::I64GtU
            | O::I64LeS
            | O::I64LeU
            | O::I64GeS
            | O::I64GeU
            | O::I32Add
            | O::I32Sub
            | O::I32Mul
            | O::I32And
            | O::I32Or
            | O::I32Xor
            | O::I32Shl
            | O::I32ShrS
            | O::I32ShrU
            | O::I64Add
            | O::I64Sub
            | O::I64Mul
            | O::I64And
            | O::I64Or
            | O::I64Xor
            | O::I64Shl
            | O::I64ShrS
            | O::I64ShrU
            | O::I32WrapI64
            | O::I64ExtendI32S
            | O::I64ExtendI32U
    )
}

/// Per-function metering state.
#[derive(Default)]
pub(crate) struct Meter {
    /// The fuel variable, when fuel is on.
    fuel: Option<Variable>,
    /// Cost of the operators translated since the variable was last
    /// updated.
    pending: i64,
    /// The store's interrupt word's address, when epochs are on.
    epoch_word: Option<Value>,
    /// The store's interrupt page, when epochs are checked by fault.
    epoch_page: Option<Value>,
    /// The function's `VMStoreContext`.
    store_context: Option<Value>,
    /// Whether `pending` still holds the function's entry unit: nothing
    /// but [`is_pure`] operators ran since the entry, so charging it may
    /// wait for the first charge of the body.
    entry_pending: bool,
    /// Whether an operator that is not [`is_pure`] ran since the last
    /// charge: an `if` then charges what is pending rather than carry it
    /// into its arms, so that no side effect runs more than one basic
    /// block ahead of its charge.
    effects_pending: bool,
}

/// The fuel an `if` has not charged yet when its arms begin: each arm
/// starts from it, so that the condition's cost and the arm's share one
/// add.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CarriedFuel {
    pending: i64,
    entry_pending: bool,
    effects_pending: bool,
}

impl Meter {
    /// Whether any metering is on for this function.
    pub fn is_on(&self) -> bool {
        self.fuel.is_some() || self.epoch_word.is_some()
    }

    /// The fuel variable, when fuel is on.
    pub fn fuel_variable(&self) -> Option<Variable> {
        self.fuel
    }
}

impl FuncTranslator<'_, '_> {
    /// Sets up metering at function entry (after parameters and locals are
    /// defined) and emits the entry checks. `escapes`: whether anything but
    /// a direct call from this module's wasm can enter the function.
    pub(super) fn meter_function_entry(&mut self, escapes: bool) {
        let fuel = self.env.tunables.consume_fuel;
        let epoch = self.env.tunables.epoch_interruption;
        self.meter = Meter::default();
        if !fuel && !epoch {
            return;
        }
        let store_context = self
            .env
            .load_vmctx_readonly(&mut self.b, vmctx::STORE_CONTEXT);
        self.meter.store_context = Some(store_context);
        if epoch {
            let word = self.b.ins().load(
                self.env.pointer_type,
                crate::translate::env::FuncEnvironment::readonly_flags(),
                store_context,
                vm_store_context::EPOCH_INTERRUPT as i32,
            );
            self.meter.epoch_word = Some(word);
            if self.env.tunables.epoch_by_signal {
                let page = self.env.load_vmctx_readonly(&mut self.b, vmctx::EPOCH_PAGE);
                self.meter.epoch_page = Some(page);
            }
        }
        if fuel {
            let var = self.b.declare_var(types::I64);
            self.meter.fuel = Some(var);
            self.fuel_from_caller();
            // Entering a function costs one unit, so that even an empty
            // function is not free. It is charged before the first
            // operator that could be observed (see `is_pure`): a call made
            // with no fuel left runs nothing.
            self.meter.pending = 1;
            self.meter.entry_pending = true;
        }
        if self.meter.epoch_page.is_some() {
            // By signal, only a function the host can enter (by a typed
            // call straight into its body, or a trampoline) checks: a call
            // from wasm continues code that the signal reaches.
            if escapes {
                self.epoch_check_by_fault();
            }
        } else if epoch {
            self.epoch_check();
        }
    }

    /// Accounts for `op` before it is translated.
    pub(super) fn meter_before_op(&mut self, op: &Operator<'_>) {
        if self.meter.fuel.is_none() {
            return;
        }
        self.meter.pending += operator_cost(op);
        if !is_pure(op) {
            if self.meter.entry_pending {
                // Charged with the operator's own cost, before it runs.
                self.fuel_flush();
            }
            self.meter.effects_pending = true;
        }
        match op {
            // Control leaves the function (or may, for a call): the store
            // must hold the true count.
            Operator::Unreachable
            | Operator::Return
            | Operator::Call { .. }
            | Operator::CallIndirect { .. }
            | Operator::CallRef { .. }
            | Operator::ReturnCall { .. }
            | Operator::ReturnCallIndirect { .. }
            | Operator::ReturnCallRef { .. }
            | Operator::Throw { .. }
            | Operator::ThrowRef
            | Operator::Rethrow { .. } => {
                self.fuel_charge_pending(false);
                self.fuel_to_callee();
            }
            // An `if` after side effects ends their block; otherwise it
            // carries its pending cost into both arms (see
            // `meter_fuel_to_carry`).
            Operator::If { .. } if self.meter.effects_pending => self.fuel_flush(),
            // The end of a basic block.
            Operator::Loop { .. }
            | Operator::Br { .. }
            | Operator::BrTable { .. }
            | Operator::End
            | Operator::Else
            | Operator::Catch { .. }
            | Operator::CatchAll
            | Operator::Delegate { .. } => self.fuel_flush(),
            // Conditional branches whose operand is a reference: charged
            // before the branch, on both edges.
            Operator::BrOnNull { .. } | Operator::BrOnNonNull { .. } => self.fuel_flush(),
            // A branch out of a block charges on its taken edge (see
            // `meter_exit_edge`); a loop's back edge charges here.
            Operator::BrIf { relative_depth }
                if !self.state.frame_mut(*relative_depth).branch_exits() =>
            {
                self.fuel_flush()
            }
            _ => {}
        }
    }

    /// Whether a conditional branch out of a block must charge pending fuel
    /// on its taken edge: the fall-through path keeps the pending cost and
    /// charges it with what follows, so that a loop's exit test costs its
    /// body no separate update.
    pub(super) fn meter_pending_on_exit_edge(&self) -> bool {
        self.meter.fuel.is_some() && self.meter.pending != 0
    }

    /// On the taken edge of a conditional exit: charges the pending fuel
    /// and keeps it pending for the fall-through path.
    pub(super) fn meter_exit_edge(&mut self) {
        let carried = self.meter_fuel_to_carry();
        self.fuel_flush();
        self.meter_carried_fuel(carried);
    }

    /// At an `if`: the fuel not yet charged, which the then arm goes on
    /// from (it stays pending) and the else arm or false edge starts from
    /// (see [`Self::meter_carried_fuel`]).
    pub(super) fn meter_fuel_to_carry(&self) -> CarriedFuel {
        CarriedFuel {
            pending: self.meter.pending,
            entry_pending: self.meter.entry_pending,
            effects_pending: self.meter.effects_pending,
        }
    }

    /// At the start of an `if`'s else arm or false edge: resumes from the
    /// fuel the `if` carried.
    pub(super) fn meter_carried_fuel(&mut self, carried: CarriedFuel) {
        if self.meter.fuel.is_some() {
            self.meter.pending = carried.pending;
            self.meter.entry_pending = carried.entry_pending;
            self.meter.effects_pending = carried.effects_pending;
        }
    }

    /// Where control leaves a basic block for a join: charges what is
    /// pending.
    pub(super) fn meter_end_of_block(&mut self) {
        self.fuel_flush();
    }

    /// Accounts for `op` after it was translated (and is still reachable).
    pub(super) fn meter_after_op(&mut self, op: &Operator<'_>) {
        if self.meter.fuel.is_some()
            && matches!(
                op,
                Operator::Call { .. } | Operator::CallIndirect { .. } | Operator::CallRef { .. }
            )
        {
            // The callee (or the host) may have spent or added fuel.
            self.fuel_from_caller();
        }
        if self.meter.epoch_page.is_some() && self.may_run_code_outside_wasm(op) {
            // A tick's signal that arrived while the thread ran host or
            // runtime code was ignored: check on the way back.
            self.epoch_check_by_fault();
        }
    }

    /// Before the `throw_ref` builtin unwinds: the store holds the true
    /// count (the unwinder hands it to the handler in the fuel register,
    /// which host code cannot read).
    pub(super) fn meter_before_unwind(&mut self) {
        if self.env.tunables.fuel_in_register {
            self.fuel_to_store();
        }
    }

    /// At a landing pad, reached from a call or a throw: the count is
    /// where callers leave it; and, with epochs checked by signal, the
    /// thread may come from host code (the unwinder), so it checks.
    pub(super) fn meter_at_landing_pad(&mut self) {
        if self.meter.fuel.is_some() {
            self.fuel_from_caller();
        }
        self.epoch_check_by_fault();
    }

    /// Whether `op` may run code that is not a wasm function body (a host
    /// function, a builtin, a trampoline), where the interrupting signal
    /// is ignored. Direct calls of this module's functions stay in wasm.
    /// (Float rounding never becomes a libcall where signals are used: the
    /// engine requires SSE4.1 for them.)
    fn may_run_code_outside_wasm(&self, op: &Operator<'_>) -> bool {
        use Operator as O;
        match op {
            O::Call { function_index } => self
                .env
                .module
                .is_imported_func(keel_environ::FuncIndex::from_u32(*function_index)),
            O::CallIndirect { .. }
            | O::CallRef { .. }
            | O::MemoryGrow { .. }
            | O::MemoryFill { .. }
            | O::MemoryCopy { .. }
            | O::MemoryInit { .. }
            | O::DataDrop { .. }
            | O::TableGet { .. }
            | O::TableGrow { .. }
            | O::TableFill { .. }
            | O::TableCopy { .. }
            | O::TableInit { .. }
            | O::ElemDrop { .. }
            | O::RefFunc { .. } => true,
            _ => false,
        }
    }

    /// The checks at a loop header, emitted in the header block. Fuel needs
    /// none (each add checks). With epochs by signal a loop has no epoch
    /// check either: while it runs, the thread is in wasm code, where the
    /// signal reaches it.
    /// Whether epochs are checked by signal and page checks (see
    /// [`Self::epoch_check_by_fault`]).
    pub(super) fn epochs_checked_by_fault(&self) -> bool {
        self.meter.epoch_page.is_some()
    }

    pub(super) fn meter_loop_header(&mut self) {
        if self.meter.epoch_page.is_none() && self.meter.epoch_word.is_some() {
            self.epoch_check();
        }
    }

    /// Before the function returns: the store gets the fuel count back.
    pub(super) fn meter_before_return(&mut self) {
        if self.meter.fuel.is_some() {
            self.fuel_charge_pending(false);
            self.fuel_to_callee();
        }
    }

    /// Charges a bulk operation `per_unit` fuel per byte or element of
    /// `units` (an `i32` operand, or an `i64` one of a 64-bit memory or
    /// table) and checks the fuel before the operation runs, so that a
    /// guest cannot buy gigabytes of work with its last unit. A large or
    /// unknown length also gets an epoch check, so that a guest past its
    /// deadline starts no more bulk work. (`memory.grow` costs nothing per
    /// page but is checked the same way, as in Wasmtime.)
    ///
    /// A 64-bit length is charged at most [`Self::bulk_units_cap`]: no
    /// operation that does its work is longer, and a longer one traps out
    /// of bounds, as it would without metering, rather than out of fuel;
    /// the cap also keeps every charge below 2^63, which the fuel check
    /// relies on.
    pub(super) fn meter_bulk(&mut self, units: Value, per_unit: i64) {
        if !self.meter.is_on() {
            return;
        }
        let cap = self.bulk_units_cap();
        let constant = super::env::constant(&self.b, units).map(|n| n.min(cap) as i64);
        if let Some(var) = self.meter.fuel.filter(|_| per_unit > 0) {
            match constant {
                Some(n) => self.meter.pending += n * per_unit,
                None => {
                    self.fuel_flush();
                    let n = if self.b.func.dfg.value_type(units) == types::I64 {
                        let cap = self.b.ins().iconst(types::I64, cap as i64);
                        self.b.ins().umin(units, cap)
                    } else {
                        self.b.ins().uextend(types::I64, units)
                    };
                    let n = if per_unit == 1 {
                        n
                    } else {
                        self.b.ins().imul_imm_u(n, per_unit)
                    };
                    let fuel = self.b.use_var(var);
                    let fuel = self.fuel_add(n, fuel);
                    self.fuel_define(fuel);
                }
            }
        }
        if constant.is_some_and(|n| n * per_unit <= SMALL_BULK_COST) {
            return;
        }
        self.fuel_flush();
        self.epoch_check();
    }

    /// The longest a bulk operation that does its work can be, in bytes or
    /// elements: a memory never grows past its reservation, a table never
    /// past a few million elements; at least 2^32, the most a 32-bit
    /// operand can say, and at most 2^48, which no host's address space
    /// reaches.
    fn bulk_units_cap(&self) -> u64 {
        self.env.tunables.memory_reservation.clamp(1 << 32, 1 << 48)
    }

    /// The fuel a bulk operation costs per byte or element of its length
    /// (the operand on top of the stack), or `None` if `op` is not one.
    pub(super) fn bulk_cost(op: &Operator<'_>) -> Option<i64> {
        match op {
            Operator::MemoryFill { .. }
            | Operator::MemoryCopy { .. }
            | Operator::MemoryInit { .. }
            | Operator::TableFill { .. }
            | Operator::TableCopy { .. }
            | Operator::TableInit { .. }
            | Operator::TableGrow { .. } => Some(1),
            Operator::MemoryGrow { .. } => Some(0),
            _ => None,
        }
    }

    /// Adds the pending cost to the fuel variable, trapping with
    /// `OutOfFuel` when the add carries (the cost exceeds the fuel left).
    /// The constant is the add's first operand so that the add takes it as
    /// an immediate rather than folding a load of the counter into itself.
    fn fuel_flush(&mut self) {
        self.fuel_charge_pending(true);
    }

    /// [`Self::fuel_flush`]; `sync` says whether the pinned register gets
    /// the new count now (not needed right before `fuel_to_callee`).
    fn fuel_charge_pending(&mut self, sync: bool) {
        let Some(var) = self.meter.fuel else {
            return;
        };
        let pending = std::mem::take(&mut self.meter.pending);
        self.meter.entry_pending = false;
        self.meter.effects_pending = false;
        if pending != 0 {
            let fuel = self.b.use_var(var);
            let cost = self.b.ins().iconst(types::I64, pending);
            let fuel = self.fuel_add(cost, fuel);
            if sync {
                self.fuel_define(fuel);
            } else {
                self.b.def_var(var, fuel);
            }
        }
    }

    /// The count after charging `cost` to `fuel`. A charge that carries
    /// (exceeds the fuel left) traps with `OutOfFuel`; with
    /// `Tunables::fuel_yields` it calls `out_of_fuel` instead, in a cold
    /// block, which refills the count from the store's reserve (perhaps
    /// yielding first) and takes the charge, or traps. The hot path is the
    /// same add; the test of its carry is a branch rather than a trapping
    /// jump.
    fn fuel_add(&mut self, cost: Value, fuel: Value) -> Value {
        let Some(ctx) = self
            .meter
            .store_context
            .filter(|_| self.env.tunables.fuel_yields)
        else {
            // A constant goes first, so that the add takes it as an
            // immediate rather than folding a load of the count into itself.
            let (a, b) = if super::env::constant(&self.b, cost).is_some() {
                (cost, fuel)
            } else {
                (fuel, cost)
            };
            return self
                .b
                .ins()
                .uadd_overflow_trap(a, b, trap_code(TrapKind::OutOfFuel));
        };
        // The count is negative while fuel is left (minus one minus what
        // is left) and a charge is below 2^63 (a block's cost, or a bulk
        // length times a small cost), so the add carries exactly when the
        // sum is not negative: a `test` and a branch on the sign, which the
        // CPU fuses, rather than a carry flag moved into a register.
        let sum = self.b.ins().iadd(cost, fuel);
        let overspent = self
            .b
            .ins()
            .icmp_imm_s(IntCC::SignedGreaterThanOrEqual, sum, 0);
        let cold = self.b.create_block();
        let cont = self.b.create_block();
        let charged = self.b.append_block_param(cont, types::I64);
        self.b.ins().brif(overspent, cold, &[], cont, &[sum.into()]);
        self.b.set_cold_block(cold);
        self.b.seal_block(cold);
        self.b.switch_to_block(cold);
        // The store gets the count before the charge, and the charge.
        let flags = self.env.store_context_flags();
        self.b
            .ins()
            .store(flags, fuel, ctx, vm_store_context::FUEL_CONSUMED as i32);
        if self.env.tunables.fuel_in_register {
            self.b.ins().set_pinned_reg(fuel);
        }
        self.b
            .ins()
            .store(flags, cost, ctx, vm_store_context::SLOW_PATH_STATUS as i32);
        let answer = self.call_slow_path(BuiltinFunctionIndex::out_of_fuel);
        let host_error = self.b.ins().icmp_imm_s(IntCC::Equal, answer, 2);
        self.b
            .ins()
            .trapnz(host_error, trap_code(TrapKind::HostError));
        self.b.ins().trapz(answer, trap_code(TrapKind::OutOfFuel));
        let refilled = self.b.ins().load(
            types::I64,
            flags,
            ctx,
            vm_store_context::FUEL_CONSUMED as i32,
        );
        if self.env.tunables.fuel_in_register {
            self.b.ins().set_pinned_reg(refilled);
        }
        self.b.ins().jump(cont, &[refilled.into()]);
        self.b.seal_block(cont);
        self.b.switch_to_block(cont);
        charged
    }

    /// Gives the fuel variable a new count. With fuel in a register the
    /// register gets it too, at once (a move): a trap anywhere then leaves
    /// the trap handler the count as of the last charge, never older, so a
    /// trapping guest is forgiven at most the block it was in.
    pub(super) fn fuel_define(&mut self, count: Value) {
        let Some(var) = self.meter.fuel else {
            return;
        };
        self.b.def_var(var, count);
        if self.env.tunables.fuel_in_register {
            self.b.ins().set_pinned_reg(count);
        }
    }

    /// Defines the fuel variable from where callers leave the count: the
    /// pinned register or the store.
    fn fuel_from_caller(&mut self) {
        match self.meter.fuel {
            Some(var) if self.env.tunables.fuel_in_register => {
                let fuel = self.b.ins().get_pinned_reg(types::I64);
                self.b.def_var(var, fuel);
            }
            _ => self.fuel_from_store(),
        }
    }

    /// Puts the fuel variable where callees, callers and the trap handler
    /// expect the count: the pinned register or the store.
    fn fuel_to_callee(&mut self) {
        match self.meter.fuel {
            Some(var) if self.env.tunables.fuel_in_register => {
                let fuel = self.b.use_var(var);
                self.b.ins().set_pinned_reg(fuel);
            }
            _ => self.fuel_to_store(),
        }
    }

    fn fuel_from_store(&mut self) {
        let (Some(var), Some(ctx)) = (self.meter.fuel, self.meter.store_context) else {
            return;
        };
        let flags = self.env.store_context_flags();
        let fuel = self.b.ins().load(
            types::I64,
            flags,
            ctx,
            vm_store_context::FUEL_CONSUMED as i32,
        );
        self.b.def_var(var, fuel);
    }

    fn fuel_to_store(&mut self) {
        let (Some(var), Some(ctx)) = (self.meter.fuel, self.meter.store_context) else {
            return;
        };
        let fuel = self.b.use_var(var);
        let flags = self.env.store_context_flags();
        self.b
            .ins()
            .store(flags, fuel, ctx, vm_store_context::FUEL_CONSUMED as i32);
    }

    /// Loads a byte of the store's interrupt page, which faults once the
    /// deadline has passed; the runtime's fault handler then calls
    /// `new_epoch` from here and resumes past this load (see
    /// `vm/sys/unix/epoch_resume.rs`). The fault-free path is this one
    /// instruction.
    ///
    /// The sequence point before it keeps alias analysis from treating the
    /// load as redundant with an earlier check's (the page's bytes never
    /// change, so without it a later check would be removed as a repeat of
    /// an earlier one). It emits no code.
    pub(super) fn epoch_check_by_fault(&mut self) {
        let Some(page) = self.meter.epoch_page else {
            return;
        };
        self.b.ins().sequence_point();
        let flags = MemFlagsData::new()
            .with_aligned()
            .with_alias_region(Some(self.env.epoch_region()))
            .with_trap_code(Some(trap_code(TrapKind::EpochCheck)));
        self.b.ins().load(types::I8, flags, page, 0);
    }

    /// Calls `new_epoch` (which traps or extends the deadline) when the
    /// store's interrupt word is set.
    fn epoch_check(&mut self) {
        let Some(word) = self.meter.epoch_word else {
            return;
        };
        // Flushed on both paths alike: the cold path below must not be the
        // only one that counts what came before.
        self.fuel_flush();
        let region = self.env.epoch_region();
        let flags = MemFlagsData::trusted().with_alias_region(Some(region));
        let interrupted = self.b.ins().load(types::I64, flags, word, 0);
        self.cold_slow_path(interrupted, BuiltinFunctionIndex::new_epoch, |t, status| {
            let host_error = t.b.ins().icmp_imm_s(IntCC::Equal, status, 2);
            t.b.ins().trapnz(host_error, trap_code(TrapKind::HostError));
            t.b.ins().trapz(status, trap_code(TrapKind::Interrupt));
        });
    }

    /// When `cond` is non-zero, in a cold block: gives the store the fuel
    /// count (the runtime, or a callback, may read or set it), calls
    /// `builtin` through the slow-path trampoline, reloads the count, and
    /// lets `trap_on` turn the builtin's answer into traps; then rejoins.
    /// (With fuel in a register, the register gets the count too, before
    /// and after: a trap here must not make the trap handler write back an
    /// older count over the store's.)
    fn cold_slow_path(
        &mut self,
        cond: Value,
        builtin: BuiltinFunctionIndex,
        trap_on: impl FnOnce(&mut Self, Value),
    ) {
        let cold = self.b.create_block();
        let cont = self.b.create_block();
        self.b.ins().brif(cond, cold, &[], cont, &[]);
        self.b.set_cold_block(cold);
        self.b.seal_block(cold);
        self.b.switch_to_block(cold);
        self.fuel_to_store();
        if self.env.tunables.fuel_in_register {
            self.fuel_to_callee();
        }
        let answer = self.call_slow_path(builtin);
        self.fuel_from_store();
        if self.env.tunables.fuel_in_register {
            self.fuel_to_callee();
        }
        trap_on(self, answer);
        self.b.ins().jump(cont, &[]);
        self.b.seal_block(cont);
        self.b.switch_to_block(cont);
    }
}

impl FuncTranslator<'_, '_> {
    /// Calls a slow-path builtin through the engine's register-preserving
    /// trampoline and returns its answer (an `i32`). Nothing the function
    /// holds in registers is clobbered, so a check in a hot loop costs the
    /// loop no register and no spill; every load here stays in the cold
    /// block (none is `can_move`).
    fn call_slow_path(&mut self, builtin: BuiltinFunctionIndex) -> Value {
        let ptr = self.env.pointer_type;
        let readonly = MemFlagsData::trusted().with_readonly();
        let vmctx = self.env.vmctx;
        let ctx = self
            .b
            .ins()
            .load(ptr, readonly, vmctx, vmctx::STORE_CONTEXT as i32);
        let stub = self
            .b
            .ins()
            .load(ptr, readonly, ctx, vm_store_context::SLOW_PATH_CALL as i32);
        let array = self
            .b
            .ins()
            .load(ptr, readonly, vmctx, vmctx::BUILTINS as i32);
        let callee = self
            .b
            .ins()
            .load(ptr, readonly, array, builtin.array_offset() as i32);
        let sig = self.env.slow_path_sig_ref(&mut self.b);
        self.b.ins().call_indirect(sig, stub, &[vmctx, callee]);
        let flags = self.env.store_context_flags();
        self.b.ins().load(
            types::I32,
            flags,
            ctx,
            vm_store_context::SLOW_PATH_STATUS as i32,
        )
    }
}
