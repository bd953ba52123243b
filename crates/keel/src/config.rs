//! Engine configuration.

use keel_cranelift::{CompilerSettings, OptLevel as CraneliftOptLevel};
use keel_environ::Tunables;
use wasmparser::WasmFeatures;

/// How hard the compiler optimizes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OptLevel {
    /// No optimizations.
    None,
    /// Optimize for speed (the default).
    Speed,
    /// Optimize for speed and size.
    SpeedAndSize,
}

/// Global settings for an [`Engine`](crate::Engine): which WebAssembly
/// features are accepted, how code is compiled and what it may use.
#[derive(Clone, Debug)]
pub struct Config {
    pub(crate) features: WasmFeatures,
    pub(crate) compiler: CompilerSettings,
    pub(crate) max_wasm_stack: usize,
    pub(crate) allocation_strategy: crate::InstanceAllocationStrategy,
    pub(crate) memory_init_cow: bool,
    /// Whether epochs may interrupt by signal (see
    /// [`Config::epoch_by_signal`]).
    pub(crate) epoch_signal_allowed: bool,
    /// Whether fuel may live in a register (see
    /// [`Config::fuel_in_register`]).
    pub(crate) fuel_register_allowed: bool,
    /// The key that signs and authenticates artifacts.
    pub(crate) artifact_key: Option<crate::artifact::ArtifactKey>,
    /// Whether modules compile each function at its first call.
    pub(crate) lazy_compilation: bool,
    /// Whether a lazily compiled module's other functions compile on a
    /// thread in the background.
    pub(crate) lazy_compilation_in_background: bool,
    /// Whether fuel checks are compiled so that a store can refill and
    /// yield when the fuel it gave wasm runs out
    /// ([`Config::async_support`]).
    pub(crate) async_support: bool,
    /// Usable bytes of each fiber stack an async call runs on.
    pub(crate) async_stack_size: usize,
    /// Whether a pooled fiber stack is zeroed before reuse.
    pub(crate) async_stack_zeroing: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

macro_rules! feature_setters {
    ($($(#[$doc:meta])* $name:ident => $flag:ident;)*) => {$(
        $(#[$doc])*
        pub fn $name(&mut self, enable: bool) -> &mut Self {
            self.features.set(WasmFeatures::$flag, enable);
            self
        }
    )*};
}

impl Config {
    /// The default configuration: WebAssembly 2.0 plus multiple memories,
    /// extended constant expressions, relaxed SIMD, typed function
    /// references, tail calls and exception handling, optimizing for speed,
    /// 512 KiB of wasm stack, 4 GiB of reserved address space per memory
    /// with a 32 MiB guard, instances allocated on demand, memories
    /// initialized from copy-on-write images where possible.
    pub fn new() -> Config {
        Config {
            features: WasmFeatures::WASM2
                | WasmFeatures::EXTENDED_CONST
                | WasmFeatures::MULTI_MEMORY
                | WasmFeatures::RELAXED_SIMD
                | WasmFeatures::FUNCTION_REFERENCES
                | WasmFeatures::TAIL_CALL
                | if crate::vm::exception::exceptions_supported() {
                    WasmFeatures::EXCEPTIONS
                } else {
                    WasmFeatures::empty()
                },
            compiler: CompilerSettings::default(),
            max_wasm_stack: 512 * 1024,
            allocation_strategy: crate::InstanceAllocationStrategy::OnDemand,
            memory_init_cow: true,
            epoch_signal_allowed: true,
            fuel_register_allowed: true,
            artifact_key: None,
            lazy_compilation: false,
            lazy_compilation_in_background: true,
            async_support: false,
            async_stack_size: 2 << 20,
            async_stack_zeroing: false,
        }
    }

    /// A secret key with which this engine signs the artifacts it
    /// serializes ([`Module::serialize`](crate::Module::serialize),
    /// [`Engine::precompile_module`](crate::Engine::precompile_module)),
    /// with HMAC-SHA-256, and without which
    /// [`Module::deserialize_authenticated`](crate::Module::deserialize_authenticated)
    /// refuses to load any. A host that keeps artifacts on storage others
    /// can write keeps the key to itself and loads them without `unsafe`.
    /// (The key does not enter the artifact's fingerprint: an artifact
    /// signed with another key is refused as such.)
    pub fn artifact_key(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        self.artifact_key = Some(crate::artifact::ArtifactKey::new(key.as_ref()));
        self
    }

    feature_setters! {
        /// Blocks and functions with several results.
        wasm_multi_value => MULTI_VALUE;
        /// `memory.copy`, `memory.fill`, passive segments and friends.
        wasm_bulk_memory => BULK_MEMORY;
        /// `funcref`/`externref` values and several tables.
        wasm_reference_types => REFERENCE_TYPES;
        /// 128-bit SIMD.
        wasm_simd => SIMD;
        /// Non-trapping float-to-int conversions.
        wasm_saturating_float_to_int => SATURATING_FLOAT_TO_INT;
        /// Sign-extension operators.
        wasm_sign_extension => SIGN_EXTENSION;
        /// Several memories per module.
        wasm_multi_memory => MULTI_MEMORY;
        /// Arithmetic in constant expressions.
        wasm_extended_const => EXTENDED_CONST;
        /// 128-bit integer addition and subtraction and 64-bit widening
        /// multiplication (`i64.add128`, `i64.mul_wide_s`, ...). Off by
        /// default, as in Wasmtime.
        wasm_wide_arithmetic => WIDE_ARITHMETIC;
        /// 64-bit memories: `i64` addresses, sizes and `memory.grow`
        /// operands. Off by default, as in Wasmtime. Every access to a
        /// 64-bit memory is bounds-checked in code (guard pages cannot
        /// cover a 64-bit index), with one comparison when the static
        /// offset fits the guard. Such a memory never moves, so it grows at
        /// most to [`Config::memory_reservation`] (4 GiB by default; raise
        /// it for larger memories). Tables with 64-bit indices come with it.
        wasm_memory64 => MEMORY64;
        /// Memories of one-byte pages (custom-page-sizes: `(pagesize 1)`),
        /// for small memories sized to the byte. Off by default, as in
        /// Wasmtime. Every access to such a memory is bounds-checked in
        /// code: its length may end inside a host page.
        wasm_custom_page_sizes => CUSTOM_PAGE_SIZES;
        /// Relaxed SIMD (`f32x4.relaxed_madd`, `i8x16.relaxed_swizzle`,
        /// ...). On by default, as in Wasmtime. Keel always gives the
        /// results of the specification's deterministic profile, the same
        /// on every host (see [`Config::relaxed_simd_deterministic`]).
        wasm_relaxed_simd => RELAXED_SIMD;
        /// Typed function references: `(ref $t)` and `(ref null $t)`
        /// types, `call_ref`, `ref.as_non_null`, `br_on_null`,
        /// `br_on_non_null`, non-nullable locals, tables with initializer
        /// expressions. On by default, as in Wasmtime. `call_ref` checks
        /// only for null: the reference's type is proved by validation.
        wasm_function_references => FUNCTION_REFERENCES;
        /// Tail calls: `return_call`, `return_call_indirect` and (with
        /// typed function references) `return_call_ref`, real tail calls
        /// that reuse the caller's frame, so endless tail recursion runs
        /// in constant stack. On by default, as in Wasmtime.
        wasm_tail_call => TAIL_CALL;
        /// Exception handling: tags, `throw`, `throw_ref`, `try_table`
        /// and `exnref`. On by default, as in Wasmtime (on x86-64, where
        /// Keel can deliver exceptions to wasm handlers; an engine refuses
        /// it elsewhere).
        wasm_exceptions => EXCEPTIONS;
        /// The legacy form of exception handling that older toolchains
        /// emit: `try` with `catch`, `catch_all` or `delegate`, and
        /// `rethrow`. Off by default, as in Wasmtime (where the switch is
        /// hidden). Translated to the same landing pads as `try_table`.
        wasm_legacy_exceptions => LEGACY_EXCEPTIONS;
    }

    /// Accepted for source compatibility with Wasmtime 48: Keel's relaxed
    /// SIMD is always deterministic, whatever this says. Each relaxed
    /// operator gives the result of the specification's deterministic
    /// profile (the non-relaxed operator it relaxes; a fused multiply-add;
    /// a signed dot product that wraps), on every host: the results of
    /// Wasmtime with `relaxed_simd_deterministic(true)`. Wasmtime's default
    /// (`false`) instead picks the machine's fastest instruction, whose
    /// results for some inputs differ between x86-64 and AArch64.
    pub fn relaxed_simd_deterministic(&mut self, enable: bool) -> &mut Self {
        let _ = enable;
        self
    }

    /// The compiler's optimization level.
    pub fn cranelift_opt_level(&mut self, level: OptLevel) -> &mut Self {
        self.compiler.opt_level = match level {
            OptLevel::None => CraneliftOptLevel::None,
            OptLevel::Speed => CraneliftOptLevel::Speed,
            OptLevel::SpeedAndSize => CraneliftOptLevel::SpeedAndSize,
        };
        self
    }

    /// Make every NaN produced by a float operation canonical, for
    /// deterministic execution across hosts.
    pub fn cranelift_nan_canonicalization(&mut self, enable: bool) -> &mut Self {
        self.compiler.nan_canonicalization = enable;
        self
    }

    /// Run Cranelift's IR verifier on every function (slow).
    pub fn cranelift_debug_verifier(&mut self, enable: bool) -> &mut Self {
        self.compiler.debug_verifier = enable;
        self
    }

    /// Whether [`Module::new`](crate::Module::new) compiles each function
    /// at its first call rather than all of them up front (off by
    /// default). The whole module is still validated up front; what is
    /// deferred is code generation, so a big program starts after
    /// compiling only what it runs. Each call then enters its callee
    /// through a stub (a direct call and an indirect jump), and a
    /// function's first call waits for its compilation.
    ///
    /// Meanwhile a thread of the module's own compiles the functions no
    /// call has needed yet, the callees of those called so far first (see
    /// [`Config::lazy_compilation_in_background`]), so that the program
    /// soon runs no compiler at all; once all are compiled, the module
    /// switches to them linked as eager compilation links them, and runs
    /// as fast as an eagerly compiled one.
    ///
    /// Applies on x86-64 Linux with 4 KiB pages, when epochs are not
    /// checked by signal (see [`Config::epoch_by_signal`]: a signal that
    /// arrives while a function compiles would be missed), and to modules
    /// of up to some 30 MiB of code; otherwise modules compile eagerly.
    /// [`Module::serialize`](crate::Module::serialize) of a lazily
    /// compiled module compiles the functions not compiled yet and writes
    /// the same artifact as eager compilation.
    pub fn lazy_compilation(&mut self, enable: bool) -> &mut Self {
        self.lazy_compilation = enable;
        self
    }

    /// With [`Config::lazy_compilation`], whether each module also
    /// compiles its functions on a background thread before they are
    /// called (on by default). Off, a function compiles only at its first
    /// call: a host that runs many modules at once keeps their compilation
    /// to what they run, on their own threads.
    pub fn lazy_compilation_in_background(&mut self, enable: bool) -> &mut Self {
        self.lazy_compilation_in_background = enable;
        self
    }

    /// Compile functions on several threads.
    pub fn parallel_compilation(&mut self, enable: bool) -> &mut Self {
        self.compiler.parallel = enable;
        self
    }

    /// The most native stack wasm may use, in bytes, before it traps with
    /// "call stack exhausted".
    pub fn max_wasm_stack(&mut self, size: usize) -> &mut Self {
        self.max_wasm_stack = size;
        self
    }

    /// Every store can make async calls
    /// ([`TypedFunc::call_async`](crate::TypedFunc::call_async) and the
    /// other `_async` methods), which run wasm on a fiber stack of
    /// [`Config::async_stack_size`] bytes, whatever this says (as in
    /// Wasmtime 48, where this switch is deprecated); synchronous calls
    /// keep running on the caller's stack.
    ///
    /// What it changes is fuel (off by default): with
    /// [`Config::consume_fuel`] too, running out of the fuel a store gave
    /// wasm calls the runtime instead of trapping at once, so that
    /// [`Store::fuel_async_yield_interval`](crate::Store::fuel_async_yield_interval)
    /// can hand out fuel a slice at a time and yield between slices. Each
    /// fuel charge then tests the sign of the new count and branches,
    /// where an engine without it jumps to a trap on the add's carry:
    /// branchy code runs up to 15% slower with fuel (`run-fuel-async/` in
    /// BENCHMARKS.md), loops no slower.
    pub fn async_support(&mut self, enable: bool) -> &mut Self {
        self.async_support = enable;
        self.choose_epoch_check();
        self
    }

    /// The size of the stack each async call runs wasm and the host
    /// functions it calls on (2 MiB by default). It must exceed
    /// [`Config::max_wasm_stack`]: what is left below the wasm limit is for
    /// the host functions. A guard page below each stack turns an overflow
    /// of host code into a fault rather than a silent overwrite.
    pub fn async_stack_size(&mut self, size: usize) -> &mut Self {
        self.async_stack_size = size;
        self
    }

    /// Whether a fiber stack is zeroed before it is reused by another
    /// store (off by default, as in Wasmtime 48). Wasm never reads a stack
    /// slot it has not written, nor does safe host code, so what one
    /// call leaves on a stack is unreachable to the next; zeroing is
    /// defense in depth against a bug in that, paid with an `madvise` and a
    /// page fault per reuse (a few microseconds). It matters with the
    /// pooling allocator, whose stacks serve one store after another; an
    /// on-demand stack is a fresh mapping for each store, and a store
    /// reuses its own stack for its own calls.
    pub fn async_stack_zeroing(&mut self, enable: bool) -> &mut Self {
        self.async_stack_zeroing = enable;
        self
    }

    /// Whether wasm consumes fuel as it runs (off by default). With fuel
    /// on, every store starts with none: set it with
    /// [`Store::set_fuel`](crate::Store::set_fuel). A guest that runs out
    /// traps with [`Trap::OutOfFuel`](crate::Trap::OutOfFuel).
    ///
    /// The cost model is Wasmtime 48's, so a guest spends the same fuel
    /// under both: every operator costs 1 except `nop`, `drop`, `block`,
    /// `loop`, `else`, `end`, `return` and `unreachable` (free), entering a
    /// function costs 1, and `memory.fill`/`copy`/`init` and
    /// `table.fill`/`copy`/`init`/`grow` cost 1 more per byte or element,
    /// charged before they run. Every charge is checked, so a guest
    /// completes exactly when its fuel covers what it spends, and one that
    /// runs out stops at the end of the basic block that overspent (with
    /// none left). Here Keel is stricter than Wasmtime, which checks only at
    /// function entries and loop headers and so lets straight-line code run
    /// past the fuel it was given.
    pub fn consume_fuel(&mut self, enable: bool) -> &mut Self {
        self.compiler.tunables.consume_fuel = enable;
        self.choose_epoch_check();
        self
    }

    /// Whether wasm checks its store's epoch deadline (off by default), so
    /// that [`Engine::increment_epoch`](crate::Engine::increment_epoch)
    /// from any thread can interrupt it. Checks sit at each loop header and
    /// function entry, where Wasmtime puts its checks, or by signal; see
    /// [`Config::epoch_by_signal`]. With this on, a
    /// store's deadline starts at 0 ticks: set one with
    /// [`Store::set_epoch_deadline`](crate::Store::set_epoch_deadline)
    /// before running wasm.
    pub fn epoch_interruption(&mut self, enable: bool) -> &mut Self {
        self.compiler.tunables.epoch_interruption = enable;
        self.choose_epoch_check();
        self
    }

    /// Whether epoch deadlines interrupt wasm by signal (a Keel setting;
    /// on by default where it is supported: x86-64 Linux with SSE4.1, and
    /// only while fuel is off, because a deadline callback reads the fuel
    /// from the store).
    ///
    /// On, loops and direct calls carry no check at all. A tick that
    /// reaches a store's deadline makes the store's interrupt page
    /// inaccessible and sends `SIGURG` to the thread running the store's
    /// wasm; the handler stops it where it is, runs the deadline callback
    /// (or traps with [`Trap::Interrupt`](crate::Trap::Interrupt)) and
    /// resumes it. A signal that finds the thread outside wasm code (in a
    /// host function or a builtin) is ignored, so compiled code checks the
    /// page, with a single one-byte load that faults once it is protected,
    /// after each call that may leave wasm and at the entry of each function
    /// that can be entered from outside. The remaining cost is a load per
    /// host call and per entry. A deadline is caught within one
    /// instruction of wasm code, as soon as the signal arrives; a signal
    /// that arrives while another handler runs on top of wasm is
    /// repeated at the next tick. System calls of host functions are
    /// restarted after the signal (`SA_RESTART`). Keel installs its
    /// `SIGURG` handler when the first engine is created and hands any
    /// signal that is not its own to the handler installed before; a host
    /// that installs its own `SIGURG` handler afterwards must chain to
    /// Keel's, or turn this off.
    ///
    /// Off, or where unsupported, a check at each loop header and function
    /// entry (Wasmtime's places) loads the store's interrupt word and
    /// branches to the runtime when it is set.
    pub fn epoch_by_signal(&mut self, enable: bool) -> &mut Self {
        self.epoch_signal_allowed = enable;
        self.choose_epoch_check();
        self
    }

    /// Whether, with fuel on, wasm keeps its fuel count in a register (a
    /// Keel setting; on by default where it is supported: x86-64 Linux).
    ///
    /// On, the count lives in a register that all generated code reserves
    /// for it (`r15`), so a call from wasm to wasm costs fuel nothing but
    /// the callee's unit, and only the crossings between host and wasm
    /// (and the trap handler) write it back to the store. Every other
    /// function then has one register fewer to allocate, and typed calls
    /// ([`TypedFunc::call`](crate::TypedFunc::call)) enter wasm through
    /// the same trampoline as untyped ones, which sets the register.
    ///
    /// Off, a function keeps the count in a register of its own and
    /// writes it to the store before each call and return, and reads it
    /// back after each call. The counts are the same either way.
    pub fn fuel_in_register(&mut self, enable: bool) -> &mut Self {
        self.fuel_register_allowed = enable;
        self.choose_epoch_check();
        self
    }

    /// Derives the code-shaping settings that depend on several others:
    /// how epochs are checked and where fuel lives.
    fn choose_epoch_check(&mut self) {
        let t = &mut self.compiler.tunables;
        t.epoch_by_signal = self.epoch_signal_allowed
            && t.epoch_interruption
            && !t.consume_fuel
            && crate::vm::epoch_by_signal_supported();
        t.fuel_in_register =
            self.fuel_register_allowed && t.consume_fuel && crate::vm::fuel_in_register_supported();
        t.fuel_yields = self.async_support && t.consume_fuel;
    }

    /// Bytes of address space reserved for each linear memory. At 4 GiB or
    /// more, 32-bit memory accesses need no explicit bounds checks.
    pub fn memory_reservation(&mut self, bytes: u64) -> &mut Self {
        self.compiler.tunables.memory_reservation = bytes;
        self
    }

    /// Bytes of guard region after each memory's reservation.
    pub fn memory_guard_size(&mut self, bytes: u64) -> &mut Self {
        self.compiler.tunables.memory_guard_size = bytes;
        self
    }

    /// How instances are allocated: on demand (the default) or from a
    /// pool reserved when the engine is created.
    pub fn allocation_strategy(
        &mut self,
        strategy: impl Into<crate::InstanceAllocationStrategy>,
    ) -> &mut Self {
        self.allocation_strategy = strategy.into();
        self
    }

    /// Whether a memory whose data segments all have constant offsets
    /// starts as a copy-on-write mapping of an image built once per module
    /// (the default), instead of copying the segments at every
    /// instantiation.
    pub fn memory_init_cow(&mut self, enable: bool) -> &mut Self {
        self.memory_init_cow = enable;
        self
    }

    pub(crate) fn tunables(&self) -> &Tunables {
        &self.compiler.tunables
    }
}
