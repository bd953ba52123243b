//! Structured control flow: blocks, loops, ifs, branches, returns.
//!
//! Every frame's `following` block receives the frame's results as block
//! parameters; a loop's `header` receives its parameters. An `if` arm does
//! not need block parameters: the values it starts with were computed before
//! the `if` and dominate both arms.

use super::state::{ControlFrame, ControlKind};
use super::{FuncTranslator, block_type_arity};
use crate::CompileError;
use crate::trap::trap_code;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{Block, BlockArg, InstBuilder, JumpTableData, Value};
use cranelift_entity::packed_option::ReservedValue;
use keel_environ::TrapKind;
use wasmparser::{BlockType, BrTable, Operator};

fn args(values: &[Value]) -> Vec<BlockArg> {
    values.iter().map(|v| BlockArg::Value(*v)).collect()
}

/// Jumps to `block` passing the top `n` operands.
fn jump_with_top(t: &mut FuncTranslator<'_, '_>, block: Block, n: usize) {
    let a = args(t.state.peekn(n));
    t.b.ins().jump(block, &a);
}

fn new_block_with_params(
    t: &mut FuncTranslator<'_, '_>,
    types: &[cranelift_codegen::ir::Type],
) -> Block {
    let block = t.b.create_block();
    for ty in types {
        t.b.append_block_param(block, *ty);
    }
    block
}

pub(super) fn unreachable(t: &mut FuncTranslator<'_, '_>) {
    t.b.ins().trap(trap_code(TrapKind::UnreachableCodeReached));
    t.state.reachable = false;
}

pub(super) fn block(t: &mut FuncTranslator<'_, '_>, ty: BlockType) {
    let (params, results) = block_type_arity(&t.env, ty);
    let following = new_block_with_params(t, &results);
    t.state.control.push(ControlFrame {
        kind: ControlKind::Block,
        following,
        num_params: params.len(),
        num_results: results.len(),
        stack_height: t.state.stack.len() - params.len(),
        exit_is_branched_to: false,
        unreachable: false,
    });
}

pub(super) fn loop_(t: &mut FuncTranslator<'_, '_>, ty: BlockType) {
    let (params, results) = block_type_arity(&t.env, ty);
    let header = new_block_with_params(t, &params);
    let following = new_block_with_params(t, &results);
    jump_with_top(t, header, params.len());
    t.state.popn(params.len());
    t.b.switch_to_block(header);
    // Read the loop's parameters before the checks: a variable read in the
    // unsealed header (the fuel count) adds a block parameter of its own.
    let params = t.b.block_params(header).to_vec();
    t.meter_loop_header();
    t.state.stack.extend_from_slice(&params);
    t.state.control.push(ControlFrame {
        kind: ControlKind::Loop { header },
        following,
        num_params: params.len(),
        num_results: results.len(),
        stack_height: t.state.stack.len() - params.len(),
        exit_is_branched_to: false,
        unreachable: false,
    });
}

pub(super) fn if_(t: &mut FuncTranslator<'_, '_>, ty: BlockType) {
    let (params, results) = block_type_arity(&t.env, ty);
    let cond = t.state.pop1();
    let then_block = t.b.create_block();
    let else_block = t.b.create_block();
    let following = new_block_with_params(t, &results);
    t.b.ins().brif(cond, then_block, &[], else_block, &[]);
    t.b.seal_block(then_block);
    t.b.seal_block(else_block);
    t.b.switch_to_block(then_block);
    let saved = t.state.peekn(params.len()).to_vec();
    let fuel = t.meter_fuel_to_carry();
    t.state.control.push(ControlFrame {
        kind: ControlKind::If {
            else_block,
            has_else: false,
            params: saved,
            fuel,
        },
        following,
        num_params: params.len(),
        num_results: results.len(),
        stack_height: t.state.stack.len() - params.len(),
        exit_is_branched_to: false,
        unreachable: false,
    });
}

/// Switches to the else arm of the innermost `if`, restoring its params.
fn enter_else_arm(t: &mut FuncTranslator<'_, '_>) {
    let frame = t
        .state
        .control
        .last_mut()
        .expect("validated: else inside if");
    let height = frame.stack_height;
    let ControlKind::If {
        else_block,
        has_else,
        params,
        fuel,
    } = &mut frame.kind
    else {
        unreachable!("validated: else inside if");
    };
    *has_else = true;
    let (else_block, fuel) = (*else_block, *fuel);
    let params = std::mem::take(params);
    t.state.stack.truncate(height);
    t.state.stack.extend_from_slice(&params);
    t.b.switch_to_block(else_block);
    t.state.reachable = true;
    t.meter_carried_fuel(fuel);
}

pub(super) fn else_(t: &mut FuncTranslator<'_, '_>) {
    let frame = t
        .state
        .control
        .last_mut()
        .expect("validated: else inside if");
    frame.exit_is_branched_to = true;
    let (following, n) = (frame.following, frame.num_results);
    jump_with_top(t, following, n);
    enter_else_arm(t);
}

pub(super) fn end(t: &mut FuncTranslator<'_, '_>) {
    let frame = t
        .state
        .control
        .last()
        .expect("validated: end closes a frame");
    let (following, n) = (frame.following, frame.num_results);
    jump_with_top(t, following, n);
    close_frame(t, true);
}

/// Pops the innermost frame at its `end`. `fallthrough` says whether the
/// code before `end` was reachable (and so already jumped to `following`).
fn close_frame(t: &mut FuncTranslator<'_, '_>, fallthrough: bool) {
    let frame = t
        .state
        .control
        .pop()
        .expect("validated: end closes a frame");
    let mut following_reachable = fallthrough || frame.exit_is_branched_to;
    // A `try_table`, or a legacy `try` still in its body.
    if t.state.try_tables.last() == Some(&t.state.control.len()) {
        t.state.try_tables.pop();
    }
    match frame.kind {
        ControlKind::If {
            else_block,
            has_else: false,
            params,
            fuel,
        } => {
            // No else arm: the false edge carries the params through, and
            // validation ensured they have the result types. It charges the
            // fuel the `if` carried.
            t.b.switch_to_block(else_block);
            t.meter_carried_fuel(fuel);
            t.meter_end_of_block();
            let a = args(&params);
            t.b.ins().jump(frame.following, &a);
            following_reachable = true;
        }
        ControlKind::Loop { header } => t.b.seal_block(header),
        ControlKind::TryTable {
            pad,
            catches,
            pad_used: true,
        } => t.landing_pad(pad, &catches),
        ControlKind::LegacyTry {
            pad,
            pad_used,
            arms,
            delegate_to,
            ..
        } => {
            if pad_used {
                // After a `catch_all` nothing goes on to an outer handler
                // (whose pad is only marked used when something does).
                let catches_all = arms.last().is_some_and(|(tag, _)| tag.is_none());
                let outer = match delegate_to {
                    _ if catches_all => None,
                    Some(depth) => t.delegate_target(depth),
                    None => t.current_pad(),
                };
                t.legacy_landing_pad(pad, &arms, outer);
            } else {
                t.seal_arms(&arms);
            }
        }
        _ => {}
    }
    t.state.stack.truncate(frame.stack_height);
    t.b.seal_block(frame.following);
    if following_reachable {
        t.b.switch_to_block(frame.following);
        t.state
            .stack
            .extend_from_slice(t.b.block_params(frame.following));
        t.state.reachable = true;
        if t.state.control.is_empty() {
            // The end of the function body.
            let results = t.state.peekn(frame.num_results).to_vec();
            t.meter_before_return();
            t.b.ins().return_(&results);
            t.state.reachable = false;
        }
    } else {
        t.state.reachable = false;
    }
}

/// Handles an operator in unreachable code: only control structure matters.
pub(super) fn translate_unreachable(t: &mut FuncTranslator<'_, '_>, op: &Operator<'_>) {
    match op {
        Operator::Block { .. }
        | Operator::Loop { .. }
        | Operator::If { .. }
        | Operator::TryTable { .. }
        | Operator::Try { .. } => {
            t.state.control.push(ControlFrame {
                kind: ControlKind::Block,
                following: Block::reserved_value(),
                num_params: 0,
                num_results: 0,
                stack_height: t.state.stack.len(),
                exit_is_branched_to: false,
                unreachable: true,
            });
        }
        Operator::Else => {
            let frame = t.state.control.last().expect("validated: else inside if");
            // The then arm ended unreachable; the else arm of a reachable
            // `if` is reachable again.
            if !frame.unreachable && matches!(frame.kind, ControlKind::If { .. }) {
                enter_else_arm(t);
            }
        }
        Operator::Catch { .. } | Operator::CatchAll => {
            let frame = t.state.control.last().expect("validated: catch inside try");
            if !frame.unreachable && matches!(frame.kind, ControlKind::LegacyTry { .. }) {
                let tag = match op {
                    Operator::Catch { tag_index } => Some(*tag_index),
                    _ => None,
                };
                t.legacy_catch(tag);
            }
        }
        Operator::End | Operator::Delegate { .. } => {
            let frame = t
                .state
                .control
                .last()
                .expect("validated: end closes a frame");
            if frame.unreachable {
                t.state.control.pop();
            } else {
                if let Operator::Delegate { relative_depth } = op {
                    t.legacy_delegate(*relative_depth);
                }
                close_frame(t, false);
            }
        }
        _ => {}
    }
}

/// Marks the target of a branch `depth` levels up and returns its block and
/// the number of values the branch carries.
pub(super) fn branch_target(t: &mut FuncTranslator<'_, '_>, depth: u32) -> (Block, usize) {
    let frame = t.state.frame_mut(depth);
    if frame.branch_exits() {
        frame.exit_is_branched_to = true;
    }
    frame.branch_target()
}

pub(super) fn br(t: &mut FuncTranslator<'_, '_>, depth: u32) {
    let (block, n) = branch_target(t, depth);
    jump_with_top(t, block, n);
    t.state.reachable = false;
}

pub(super) fn br_if(t: &mut FuncTranslator<'_, '_>, depth: u32) {
    let cond = t.state.pop1();
    let exits = t.state.frame_mut(depth).branch_exits();
    let (block, n) = branch_target(t, depth);
    let next = t.b.create_block();
    let a = args(t.state.peekn(n));
    if exits && t.meter_pending_on_exit_edge() {
        let edge = t.b.create_block();
        t.b.ins().brif(cond, edge, &[], next, &[]);
        t.b.seal_block(edge);
        t.b.switch_to_block(edge);
        t.meter_exit_edge();
        t.b.ins().jump(block, &a);
    } else {
        t.b.ins().brif(cond, block, &a, next, &[]);
    }
    t.b.seal_block(next);
    t.b.switch_to_block(next);
}

/// `br_on_null`: branches with the operands below the reference when it
/// is null; otherwise goes on with the reference.
pub(super) fn br_on_null(t: &mut FuncTranslator<'_, '_>, depth: u32) {
    let r = t.state.pop1();
    let (block, n) = branch_target(t, depth);
    let next = t.b.create_block();
    let a = args(t.state.peekn(n));
    let is_null = t.b.ins().icmp_imm_u(IntCC::Equal, r, 0);
    t.b.ins().brif(is_null, block, &a, next, &[]);
    t.b.seal_block(next);
    t.b.switch_to_block(next);
    t.state.push1(r);
}

/// `br_on_non_null`: branches with the reference (the label's last value)
/// when it is not null; otherwise drops it and goes on.
pub(super) fn br_on_non_null(t: &mut FuncTranslator<'_, '_>, depth: u32) {
    let r = t.state.pop1();
    let (block, n) = branch_target(t, depth);
    let next = t.b.create_block();
    // Validation gives the label at least the reference.
    let mut a = args(t.state.peekn(n.saturating_sub(1)));
    a.push(BlockArg::Value(r));
    t.b.ins().brif(r, block, &a, next, &[]);
    t.b.seal_block(next);
    t.b.switch_to_block(next);
}

pub(super) fn br_table(
    t: &mut FuncTranslator<'_, '_>,
    targets: &BrTable<'_>,
) -> Result<(), CompileError> {
    let index = t.state.pop1();
    let (default_block, n) = branch_target(t, targets.default());
    let a = args(t.state.peekn(n));
    let default = t.b.func.dfg.block_call(default_block, &a);
    let mut table = Vec::with_capacity(targets.len() as usize);
    for depth in targets.targets() {
        let (block, _) = branch_target(t, depth?);
        table.push(t.b.func.dfg.block_call(block, &a));
    }
    let jt = t.b.create_jump_table(JumpTableData::new(default, &table));
    t.b.ins().br_table(index, jt);
    t.state.reachable = false;
    Ok(())
}

pub(super) fn return_(t: &mut FuncTranslator<'_, '_>) {
    let n = t.state.control[0].num_results;
    let results = t.state.peekn(n).to_vec();
    t.b.ins().return_(&results);
    t.state.reachable = false;
}

pub(super) fn select(t: &mut FuncTranslator<'_, '_>) {
    let (a, b, cond) = t.state.pop3();
    let v = t.b.ins().select(cond, a, b);
    t.state.push1(v);
}
