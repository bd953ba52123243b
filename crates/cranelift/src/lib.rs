//! Keel's compiler: WebAssembly to machine code with Cranelift.
//!
//! [`Compiler::compile_module`] takes a parsed module
//! ([`keel_environ::ModuleTranslation`]), validates and translates every
//! function body to Cranelift IR (in parallel), compiles it for the host and
//! lays the results out in one text section. The output, a
//! [`CompiledModule`], is plain data: machine code whose only references to
//! the outside world go through the `VMContext` argument, plus the tables
//! the runtime needs (trap sites, address map, a few load-time relocations).
//!
//! This crate has no `unsafe` and never maps memory or runs code.

#![forbid(unsafe_code)]

mod compile;
mod lazy;
mod signatures;
mod trampolines;
mod translate;
mod trap;

use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use keel_environ::{CompiledModuleInfo, ModuleError, Tunables};
use thiserror::Error;

pub use lazy::LazyText;
pub use signatures::VAL_RAW_SIZE;
pub use trap::{trap_code, trap_kind};

/// Why compilation failed.
#[derive(Debug, Error)]
pub enum CompileError {
    /// The module is malformed, invalid or unsupported.
    #[error(transparent)]
    Module(#[from] ModuleError),
    /// An operator Keel does not implement.
    #[error("unsupported: {message} (at offset 0x{offset:x})")]
    Unsupported {
        /// What is not supported.
        message: String,
        /// Byte offset in the module.
        offset: u64,
    },
    /// Cranelift refused a function: a bug in Keel or Cranelift, reported
    /// rather than crashing the host.
    #[error("internal compiler error in function {func}: {message}")]
    Codegen {
        /// Index of the function in the module's function index space.
        func: u32,
        /// What Cranelift said.
        message: String,
    },
    /// The host cannot be targeted, or a setting was rejected.
    #[error("cannot configure the code generator: {0}")]
    Isa(String),
}

impl From<wasmparser::BinaryReaderError> for CompileError {
    fn from(e: wasmparser::BinaryReaderError) -> Self {
        CompileError::Module(e.into())
    }
}

/// How hard Cranelift optimizes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum OptLevel {
    /// No optimizations.
    None,
    /// Optimize for speed.
    Speed,
    /// Optimize for speed and size.
    SpeedAndSize,
}

/// The version of the conventions generated code follows beyond what the
/// settings say: the calling convention of wasm functions, the context
/// layout, the encoding of trap and call sites. Part of every artifact's
/// fingerprint, so that an artifact (or a cache entry) of a build with
/// other conventions is refused rather than run. Bump it with any such
/// change. (2: wasm functions use Cranelift's `tail` convention; 3: tags
/// in the context, exception handler sites, the `exn_new` and `throw_ref`
/// builtins.)
pub const CODE_ABI_VERSION: u32 = 3;

/// Compiler settings.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CompilerSettings {
    /// Optimization level.
    pub opt_level: OptLevel,
    /// Make every NaN result canonical (for deterministic execution).
    pub nan_canonicalization: bool,
    /// Run Cranelift's IR verifier (slow; for debugging).
    pub debug_verifier: bool,
    /// Compile functions on several threads.
    pub parallel: bool,
    /// Code-shaping settings shared with the runtime.
    pub tunables: Tunables,
}

impl Default for CompilerSettings {
    fn default() -> Self {
        CompilerSettings {
            opt_level: OptLevel::Speed,
            nan_canonicalization: false,
            debug_verifier: false,
            parallel: true,
            tunables: Tunables::default(),
        }
    }
}

/// A module's compiled code and the tables describing it.
#[derive(Clone, Debug)]
pub struct CompiledModule {
    /// The text section: every function, then every array-call trampoline.
    pub text: Vec<u8>,
    /// Where things are in `text`.
    pub info: CompiledModuleInfo,
}

/// Compiles modules for the host.
pub struct Compiler {
    isa: OwnedTargetIsa,
    settings: CompilerSettings,
}

impl Compiler {
    /// A compiler for the host CPU, using every feature it detects.
    pub fn new(settings: CompilerSettings) -> Result<Compiler, CompileError> {
        let mut flags = settings::builder();
        let opt = match settings.opt_level {
            OptLevel::None => "none",
            OptLevel::Speed => "speed",
            OptLevel::SpeedAndSize => "speed_and_size",
        };
        let bool_str = |b: bool| if b { "true" } else { "false" };
        let set = |flags: &mut settings::Builder, name: &str, value: &str| {
            flags
                .set(name, value)
                .map_err(|e| CompileError::Isa(format!("{name}={value}: {e}")))
        };
        set(&mut flags, "opt_level", opt)?;
        set(
            &mut flags,
            "enable_verifier",
            bool_str(settings.debug_verifier),
        )?;
        // Backtraces walk the frame-pointer chain.
        set(&mut flags, "preserve_frame_pointers", "true")?;
        // Frames larger than a page touch each page in order, so a huge
        // frame cannot jump over a guard page.
        set(&mut flags, "enable_probestack", "true")?;
        set(&mut flags, "probestack_strategy", "inline")?;
        // More results than registers go through a hidden return area.
        set(&mut flags, "enable_multi_ret_implicit_sret", "true")?;
        set(&mut flags, "unwind_info", "false")?;
        // Fuel in a register: every function leaves it alone but for the
        // fuel count itself (see `translate/meter.rs`).
        set(
            &mut flags,
            "enable_pinned_reg",
            bool_str(settings.tunables.fuel_in_register),
        )?;
        set(
            &mut flags,
            "enable_nan_canonicalization",
            bool_str(settings.nan_canonicalization),
        )?;
        let isa = cranelift_native::builder()
            .map_err(|e| CompileError::Isa(e.to_string()))?
            .finish(settings::Flags::new(flags))
            .map_err(|e| CompileError::Isa(e.to_string()))?;
        Ok(Compiler { isa, settings })
    }

    /// The settings this compiler was made with.
    pub fn settings(&self) -> &CompilerSettings {
        &self.settings
    }

    /// Everything that shapes the code this compiler generates, as named
    /// settings: the target, every Cranelift flag and CPU feature, and
    /// every code-shaping setting. Code compiled under one list runs only
    /// where the same list holds; a precompiled artifact carries it so that
    /// loading can name the first setting that differs.
    pub fn fingerprint(&self) -> Vec<(String, String)> {
        let s = &self.settings;
        let t = &s.tunables;
        let mut entries = vec![
            ("code_abi".to_string(), CODE_ABI_VERSION.to_string()),
            ("target".to_string(), self.isa.triple().to_string()),
            ("opt_level".into(), format!("{:?}", s.opt_level)),
            (
                "nan_canonicalization".into(),
                s.nan_canonicalization.to_string(),
            ),
            (
                "memory_reservation".into(),
                t.memory_reservation.to_string(),
            ),
            ("memory_guard_size".into(), t.memory_guard_size.to_string()),
            ("consume_fuel".into(), t.consume_fuel.to_string()),
            (
                "epoch_interruption".into(),
                t.epoch_interruption.to_string(),
            ),
            ("epoch_by_signal".into(), t.epoch_by_signal.to_string()),
            ("fuel_in_register".into(), t.fuel_in_register.to_string()),
            ("fuel_yields".into(), t.fuel_yields.to_string()),
        ];
        for v in self.isa.flags().iter().chain(self.isa.isa_flags()) {
            entries.push((format!("cranelift.{}", v.name), v.value_string()));
        }
        entries
    }
}
