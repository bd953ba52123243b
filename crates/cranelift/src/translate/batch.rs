//! Fuel charged once per several iterations of a small loop.
//!
//! A loop whose body is straight-line code (no calls, no nested control,
//! no bulk operation) pays an add and a branch per iteration with fuel on,
//! which in a loop of six instructions is a sixth of its time. Here such a
//! loop is translated three ways: [`BATCH`] copies of the body in a row,
//! entered through a check that charges [`BATCH`] iterations at once, and
//! the loop as it is normally translated (each iteration charged), entered
//! instead when the fuel left does not cover a whole batch. So the copies
//! charge nothing of their own, and a guest still spends exactly what it
//! runs: a branch out of the copies refunds the part of the batch it did
//! not run, and a guest whose fuel runs out does so in the per-iteration
//! loop, at the block that overspends, as anywhere else.
//!
//! The loops taken: an empty block type; a body of at most
//! [`MAX_BODY_OPS`] operators that [`batchable`] accepts, `if`s (each
//! charged as its dearer arm, the cheaper arm refunding the difference),
//! branches only out of the loop (`br_if` to an enclosing label) and, as
//! the last operator, the back edge (`br 0`, or `br_if 0` for a loop that
//! falls out at its end). Everything else is translated as usual.
//!
//! With epochs on as well, the check sits before each batch, so a deadline
//! is noticed within one batch of iterations (at most [`BATCH`] times
//! [`MAX_BODY_OPS`] operators of straight-line code) rather than at the
//! next iteration.

use super::FuncTranslator;
use super::meter::{is_pure, operator_cost};
use super::state::{ControlFrame, ControlKind};
use cranelift_codegen::ir::{Block, BlockArg, InstBuilder, condcodes::IntCC};
use wasmparser::Operator;

/// Iterations charged at once.
pub(super) const BATCH: i64 = 4;

/// Longest body copied: each copy adds its code again.
const MAX_BODY_OPS: usize = 24;

/// Where reading a loop's body ahead stands.
pub(super) enum Scan {
    /// The body so far fits; read on.
    More,
    /// The body ended (at its `end`) and is batched.
    Batch,
    /// The body does not fit; translate what was read as usual.
    No,
}

/// Reads a loop's body ahead, one operator at a time, to decide whether it
/// is batched.
#[derive(Default)]
pub(super) struct LoopScan {
    ops: usize,
    /// How many `if`s the next operator is inside.
    ifs: u32,
    /// The previous operator was the back edge, so only `end` may follow.
    back_edge: bool,
}

impl LoopScan {
    /// Takes the body's next operator.
    pub fn push(&mut self, op: &Operator<'_>) -> Scan {
        use Operator as O;
        self.ops += 1;
        if self.back_edge {
            return if matches!(op, O::End) {
                Scan::Batch
            } else {
                Scan::No
            };
        }
        if self.ops > MAX_BODY_OPS {
            return Scan::No;
        }
        match op {
            O::Br { relative_depth: 0 } | O::BrIf { relative_depth: 0 } if self.ifs == 0 => {
                self.back_edge = true;
                Scan::More
            }
            // Out of the loop (a branch to an `if` of the body, or back to
            // the loop from inside one, is not taken here).
            O::BrIf { relative_depth } if *relative_depth > self.ifs => Scan::More,
            O::If { .. } => {
                self.ifs += 1;
                Scan::More
            }
            O::Else if self.ifs > 0 => Scan::More,
            O::End if self.ifs > 0 => {
                self.ifs -= 1;
                Scan::More
            }
            op if batchable(op) => Scan::More,
            _ => Scan::No,
        }
    }
}

/// What one iteration of a batched body costs, charging each `if` as its
/// dearer arm: the iteration's cost, and each `if`'s arms' costs in the
/// order the `if`s come.
fn iteration_costs(ops: &[(Operator<'_>, u64)]) -> (i64, Vec<ArmCosts>) {
    let mut arms = Vec::new();
    // Per open `if`: its index in `arms`, and the cost so far of the arm
    // being read. The bottom entry is the body outside any `if`.
    let mut open: Vec<(usize, i64)> = vec![(usize::MAX, 0)];
    for (op, _) in ops {
        if let Some(top) = open.last_mut() {
            top.1 += operator_cost(op);
        }
        match op {
            Operator::If { .. } => {
                arms.push(ArmCosts::default());
                open.push((arms.len() - 1, 0));
            }
            // `else` and `end` come only inside an `if` here (validation
            // and `LoopScan`), so the bottom entry is never an arm.
            Operator::Else => {
                if let Some((i, cost)) = open.last_mut()
                    && let Some(a) = arms.get_mut(*i)
                {
                    a.then = std::mem::take(cost);
                    a.has_else = true;
                }
            }
            Operator::End if open.len() > 1 => {
                if let Some((i, cost)) = open.pop()
                    && let Some(a) = arms.get_mut(i)
                {
                    if a.has_else {
                        a.else_ = cost;
                    } else {
                        a.then = cost;
                    }
                    if let Some(top) = open.last_mut() {
                        top.1 += a.then.max(a.else_);
                    }
                }
            }
            _ => {}
        }
    }
    (open.first().map_or(0, |o| o.1), arms)
}

/// The costs of an `if`'s arms in a batched body (an absent else arm costs
/// nothing).
#[derive(Clone, Copy, Default)]
struct ArmCosts {
    then: i64,
    else_: i64,
    has_else: bool,
}

impl ArmCosts {
    /// What the batch charges for the `if`'s arms.
    fn dearer(&self) -> i64 {
        self.then.max(self.else_)
    }
}

/// Whether `op` may sit in a batched loop's body: it neither calls out of
/// wasm nor opens or closes control, so its cost is charged with the
/// batch's and nothing between the copies needs the count.
fn batchable(op: &Operator<'_>) -> bool {
    use Operator as O;
    if matches!(op, O::Block { .. } | O::If { .. }) {
        return false;
    }
    is_pure(op)
        || matches!(
            op,
            O::I32Load { .. }
                | O::I64Load { .. }
                | O::F32Load { .. }
                | O::F64Load { .. }
                | O::I32Load8S { .. }
                | O::I32Load8U { .. }
                | O::I32Load16S { .. }
                | O::I32Load16U { .. }
                | O::I64Load8S { .. }
                | O::I64Load8U { .. }
                | O::I64Load16S { .. }
                | O::I64Load16U { .. }
                | O::I64Load32S { .. }
                | O::I64Load32U { .. }
                | O::I32Store { .. }
                | O::I64Store { .. }
                | O::F32Store { .. }
                | O::F64Store { .. }
                | O::I32Store8 { .. }
                | O::I32Store16 { .. }
                | O::I64Store8 { .. }
                | O::I64Store16 { .. }
                | O::I64Store32 { .. }
                | O::MemorySize { .. }
                | O::GlobalGet { .. }
                | O::GlobalSet { .. }
                | O::TypedSelect { .. }
                | O::I32DivS
                | O::I32DivU
                | O::I32RemS
                | O::I32RemU
                | O::I64DivS
                | O::I64DivU
                | O::I64RemS
                | O::I64RemU
                | O::I32Clz
                | O::I32Ctz
                | O::I32Popcnt
                | O::I64Clz
                | O::I64Ctz
                | O::I64Popcnt
                | O::I32Rotl
                | O::I32Rotr
                | O::I64Rotl
                | O::I64Rotr
                | O::I32Extend8S
                | O::I32Extend16S
                | O::I64Extend8S
                | O::I64Extend16S
                | O::I64Extend32S
                | O::F32Add
                | O::F32Sub
                | O::F32Mul
                | O::F32Div
                | O::F32Min
                | O::F32Max
                | O::F32Abs
                | O::F32Neg
                | O::F32Sqrt
                | O::F32Copysign
                | O::F64Add
                | O::F64Sub
                | O::F64Mul
                | O::F64Div
                | O::F64Min
                | O::F64Max
                | O::F64Abs
                | O::F64Neg
                | O::F64Sqrt
                | O::F64Copysign
                | O::F32Eq
                | O::F32Ne
                | O::F32Lt
                | O::F32Gt
                | O::F32Le
                | O::F32Ge
                | O::F64Eq
                | O::F64Ne
                | O::F64Lt
                | O::F64Gt
                | O::F64Le
                | O::F64Ge
                | O::F32ConvertI32S
                | O::F32ConvertI32U
                | O::F32ConvertI64S
                | O::F32ConvertI64U
                | O::F64ConvertI32S
                | O::F64ConvertI32U
                | O::F64ConvertI64S
                | O::F64ConvertI64U
                | O::F32DemoteF64
                | O::F64PromoteF32
                | O::I32ReinterpretF32
                | O::I64ReinterpretF64
                | O::F32ReinterpretI32
                | O::F64ReinterpretI64
        )
}

impl FuncTranslator<'_, '_> {
    /// Translates a batched loop: `body` is everything after its `loop`
    /// (of empty block type) up to and including its `end`, as
    /// [`LoopScan`] accepted it. Called where the `loop` would be
    /// translated, with nothing pending.
    pub(super) fn translate_batched_loop(
        &mut self,
        loop_op: (&Operator<'_>, u64),
        body: &[(Operator<'_>, u64)],
    ) -> Result<(), crate::CompileError> {
        self.meter_before_op(loop_op.0);
        let Some(fuel) = self.meter.fuel_variable() else {
            return self.translate_as_usual(loop_op, body);
        };
        let ops = &body[..body.len().saturating_sub(1)];
        let (iteration, arms) = iteration_costs(ops);
        let batch = BATCH * iteration;
        let falls_out = matches!(ops.last(), Some((Operator::BrIf { .. }, _)));
        let height = self.state.stack.len();

        // The check: charge a whole batch, or take the per-iteration loop.
        let check = self.b.create_block();
        let slow = self.b.create_block();
        let copies: Vec<Block> = (0..BATCH).map(|_| self.b.create_block()).collect();
        let after = self.b.create_block();
        self.b.ins().jump(check, &[]);
        self.b.switch_to_block(check);
        self.meter_loop_header();
        // The add of `batch` would carry exactly when the count is above
        // `u64::MAX - batch` (a compare with an immediate, and one branch).
        let count = self.b.use_var(fuel);
        let short = self.b.ins().icmp_imm_s(
            IntCC::UnsignedGreaterThan,
            count,
            (u64::MAX - batch as u64) as i64,
        );
        self.b.ins().brif(short, slow, &[], copies[0], &[]);
        self.b.seal_block(slow);

        let mut spent = 0;
        for (i, &copy) in copies.iter().enumerate() {
            self.b.seal_block(copy);
            self.b.switch_to_block(copy);
            if i == 0 {
                let charged = self.b.ins().iadd_imm_s(count, batch);
                self.fuel_define(charged);
            }
            let next = copies.get(i + 1).copied().unwrap_or(check);
            self.state.control.push(ControlFrame {
                kind: ControlKind::Loop { header: next },
                following: after,
                num_params: 0,
                num_results: 0,
                stack_height: height,
                exit_is_branched_to: false,
                unreachable: false,
            });
            // Per open `if`: its arms' costs, and what was spent when its
            // arms began.
            let mut ifs: Vec<(ArmCosts, i64)> = Vec::new();
            let mut next_if = 0;
            for (op, offset) in ops {
                self.b
                    .set_srcloc(cranelift_codegen::ir::SourceLoc::new(*offset as u32));
                spent += operator_cost(op);
                let refund = batch - spent;
                match op {
                    Operator::If { .. } => {
                        let costs = arms.get(next_if).copied().unwrap_or_default();
                        next_if += 1;
                        ifs.push((costs, spent));
                        self.translate_operator(op, *offset)?;
                    }
                    Operator::Else => {
                        // The then arm was charged as the dearer arm.
                        if let Some((costs, start)) = ifs.last() {
                            self.refund(costs.dearer() - costs.then);
                            spent = *start;
                        }
                        self.translate_operator(op, *offset)?;
                    }
                    Operator::End => {
                        if let Some((costs, start)) = ifs.pop() {
                            if costs.has_else {
                                self.refund(costs.dearer() - costs.else_);
                            } else {
                                // An empty else arm, so that the false edge
                                // has a block to refund in.
                                self.refund(costs.dearer() - costs.then);
                                self.translate_operator(&Operator::Else, *offset)?;
                                self.refund(costs.dearer());
                            }
                            spent = start + costs.dearer();
                        }
                        self.translate_operator(op, *offset)?;
                    }
                    Operator::Br { relative_depth: 0 } => {
                        self.b.ins().jump(next, &[]);
                    }
                    Operator::BrIf { relative_depth: 0 } => {
                        // Taken: the next copy; not taken: out of the loop,
                        // with what the batch did not run refunded.
                        let cond = self.state.pop1();
                        let exit = self.b.create_block();
                        self.b.ins().brif(cond, next, &[], exit, &[]);
                        self.b.seal_block(exit);
                        self.b.switch_to_block(exit);
                        self.refund(refund);
                        self.b.ins().jump(after, &[]);
                    }
                    Operator::BrIf { relative_depth } => {
                        let cond = self.state.pop1();
                        let frame = self.state.frame_mut(*relative_depth);
                        if frame.branch_exits() {
                            frame.exit_is_branched_to = true;
                        }
                        let (target, n) = frame.branch_target();
                        let args: Vec<BlockArg> = self
                            .state
                            .peekn(n)
                            .iter()
                            .map(|v| BlockArg::Value(*v))
                            .collect();
                        let exit = self.b.create_block();
                        let stay = self.b.create_block();
                        self.b.ins().brif(cond, exit, &[], stay, &[]);
                        self.b.seal_block(exit);
                        self.b.seal_block(stay);
                        self.b.switch_to_block(exit);
                        self.refund(refund);
                        self.b.ins().jump(target, &args);
                        self.b.switch_to_block(stay);
                    }
                    op => self.translate_operator(op, *offset)?,
                }
            }
            self.state.control.pop();
            self.state.stack.truncate(height);
        }
        self.b.seal_block(check);

        // The per-iteration loop, translated as usual.
        self.b.switch_to_block(slow);
        self.translate_as_usual(loop_op, body)?;
        // After a loop that ends with `br 0` nothing follows (the code
        // after it is unreachable, as the usual translation left it).
        if falls_out {
            if self.state.reachable {
                self.b.ins().jump(after, &[]);
            }
            self.b.seal_block(after);
            self.b.switch_to_block(after);
            self.state.reachable = true;
        }
        Ok(())
    }

    /// Translates a loop that is not batched, or the per-iteration loop of
    /// one that is: the `loop`, then its body and `end`.
    fn translate_as_usual(
        &mut self,
        loop_op: (&Operator<'_>, u64),
        body: &[(Operator<'_>, u64)],
    ) -> Result<(), crate::CompileError> {
        self.translate_metered(loop_op.0, loop_op.1)?;
        for (op, offset) in body {
            self.translate_metered(op, *offset)?;
        }
        Ok(())
    }

    /// Gives back `amount` of a batch's charge (never more than it took,
    /// so the count cannot wrap). The pinned register keeps the whole
    /// batch until the next charge, call or return sets it: a trap in
    /// between is charged what the batch took, never less than was run.
    fn refund(&mut self, amount: i64) {
        if let (Some(fuel), true) = (self.meter.fuel_variable(), amount != 0) {
            let count = self.b.use_var(fuel);
            let count = self.b.ins().iadd_imm_s(count, -amount);
            self.b.def_var(fuel, count);
        }
    }
}
