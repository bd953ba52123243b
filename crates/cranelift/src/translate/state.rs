//! The translator's model of the wasm operand and control stacks.
//!
//! Wasm values live on an operand stack of Cranelift [`Value`]s. Each
//! structured control instruction pushes a [`ControlFrame`] naming the
//! Cranelift blocks that its branches target. Code after an unconditional
//! branch is unreachable: the translator still tracks its control structure
//! (so that `else` and `end` pair up) but emits nothing for it.

use cranelift_codegen::ir::{Block, Value};

/// What kind of structured instruction opened a frame.
#[derive(Debug)]
pub(crate) enum ControlKind {
    /// `block`, or the function body itself.
    Block,
    /// `loop`: branches go back to `header`.
    Loop {
        /// The loop header, whose parameters are the loop's parameters.
        header: Block,
    },
    /// `if`: the false edge goes to `else_block`. Only reachable `if`s get
    /// this kind; one in unreachable code is a placeholder frame.
    If {
        /// Where the condition's false edge goes; takes the block's
        /// parameters. Without an `else`, it falls through to the end.
        else_block: Block,
        /// Whether `else` was seen.
        has_else: bool,
        /// The block's parameters as they were at the `if`, for the else arm.
        params: Vec<Value>,
        /// The fuel not yet charged at the `if`, which each arm (and the
        /// false edge of an `if` without `else`) charges with its own.
        fuel: super::meter::CarriedFuel,
    },
    /// `try_table`: a block whose calls and throws go to `pad` (see
    /// `exceptions.rs`).
    TryTable {
        /// The landing pad: takes the exception object.
        pad: Block,
        /// The catch clauses, tested in order.
        catches: Vec<wasmparser::Catch>,
        /// Whether anything reaches the pad.
        pad_used: bool,
    },
    /// The legacy `try` (see `exceptions.rs`): its body's calls and throws
    /// go to `pad` until the first `catch`; each `catch` or `catch_all`
    /// opens an arm block that the pad branches to.
    LegacyTry {
        /// The landing pad: takes the exception object.
        pad: Block,
        /// Whether anything reaches the pad.
        pad_used: bool,
        /// The arms so far: the tag caught (none for `catch_all`) and the
        /// arm's block, which takes the exception object.
        arms: Vec<(Option<keel_environ::TagIndex>, Block)>,
        /// In an arm: the exception it caught, for `rethrow`.
        caught: Option<Value>,
        /// Closed by `delegate` to this label (counted from the frames
        /// around the `try`) rather than by `end`.
        delegate_to: Option<u32>,
    },
}

/// One open structured instruction.
#[derive(Debug)]
pub(crate) struct ControlFrame {
    /// What opened it.
    pub kind: ControlKind,
    /// The block after `end`; its parameters are the frame's results.
    pub following: Block,
    /// Number of parameters (multi-value block types).
    pub num_params: usize,
    /// Number of results.
    pub num_results: usize,
    /// Operand stack height below the frame's parameters.
    pub stack_height: usize,
    /// Whether some branch targets `following`.
    pub exit_is_branched_to: bool,
    /// A frame opened in unreachable code: it has no blocks of its own and
    /// only exists so that its `end` pairs up.
    pub unreachable: bool,
}

impl ControlFrame {
    /// The block a branch to this frame jumps to, and how many values it
    /// carries.
    pub fn branch_target(&self) -> (Block, usize) {
        match self.kind {
            ControlKind::Loop { header } => (header, self.num_params),
            _ => (self.following, self.num_results),
        }
    }

    /// Whether a branch to this frame leaves it (rather than looping).
    pub fn branch_exits(&self) -> bool {
        !matches!(self.kind, ControlKind::Loop { .. })
    }
}

/// Operand and control stacks, plus reachability.
#[derive(Default)]
pub(crate) struct TranslationState {
    /// The operand stack.
    pub stack: Vec<Value>,
    /// The control stack; the function body is the bottom frame.
    pub control: Vec<ControlFrame>,
    /// Whether the current instruction can execute.
    pub reachable: bool,
    /// Indices in `control` of the open `try_table` frames, innermost
    /// last: the landing pad of a call is found without walking the
    /// control stack (which a hostile module makes deep).
    pub try_tables: Vec<usize>,
}

impl TranslationState {
    /// Clears the stacks for a new function.
    pub fn reset(&mut self) {
        self.stack.clear();
        self.control.clear();
        self.try_tables.clear();
        self.reachable = true;
    }

    /// Pops one value. Validation guarantees it exists in reachable code.
    pub fn pop1(&mut self) -> Value {
        self.stack
            .pop()
            .expect("validated: operand stack underflow")
    }

    /// Pops two values, returning them in push order.
    pub fn pop2(&mut self) -> (Value, Value) {
        let b = self.pop1();
        let a = self.pop1();
        (a, b)
    }

    /// Pops three values, returning them in push order.
    pub fn pop3(&mut self) -> (Value, Value, Value) {
        let c = self.pop1();
        let (a, b) = self.pop2();
        (a, b, c)
    }

    /// Pushes one value.
    pub fn push1(&mut self, v: Value) {
        self.stack.push(v);
    }

    /// The top `n` values, in push order.
    pub fn peekn(&self, n: usize) -> &[Value] {
        &self.stack[self.stack.len() - n..]
    }

    /// Removes the top `n` values.
    pub fn popn(&mut self, n: usize) {
        let len = self.stack.len() - n;
        self.stack.truncate(len);
    }

    /// The frame `depth` levels up from the innermost (a branch label).
    pub fn frame_mut(&mut self, depth: u32) -> &mut ControlFrame {
        let i = self.control.len() - 1 - depth as usize;
        &mut self.control[i]
    }
}
