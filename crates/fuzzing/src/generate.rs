//! Module generation: a `wasm-smith` configuration that matches what Keel
//! supports, and the Keel engines the oracles compile with.
//!
//! Keel's default `Config` accepts WebAssembly 2.0 (SIMD, bulk memory,
//! reference types, multi-value, sign extension, saturating conversions)
//! plus multiple memories and extended constant expressions. The generator
//! must produce exactly that language: a feature Keel lacks would only make
//! modules Keel rightly rejects, and a feature left off would go untested.
//! When Keel gains a feature, turn it on in [`keel_features`] and in
//! [`smith_config`]; [`Generated::new`] checks that every generated module
//! validates with [`keel_features`], so the two cannot drift apart silently.

use arbitrary::{Result, Unstructured};
use std::sync::Mutex;
use wasmparser::WasmFeatures;

/// The features the fuzzers' engines enable: those of Keel's default
/// `Config`, plus wide arithmetic, 64-bit memories and tables and custom
/// page sizes (see
/// [`KeelVariant`]'s configuration).
pub fn keel_features() -> WasmFeatures {
    WasmFeatures::WASM2
        | WasmFeatures::EXTENDED_CONST
        | WasmFeatures::MULTI_MEMORY
        | WasmFeatures::RELAXED_SIMD
        | WasmFeatures::WIDE_ARITHMETIC
        | WasmFeatures::MEMORY64
        | WasmFeatures::CUSTOM_PAGE_SIZES
        | WasmFeatures::TAIL_CALL
        | WasmFeatures::FUNCTION_REFERENCES
        | WasmFeatures::EXCEPTIONS
}

/// What a generated module is for: the two targets stress different parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Mostly code: many instructions, few imports, run to completion.
    Differential,
    /// Mostly module structure: imports, segments, start functions.
    Instantiate,
}

/// Largest memory a generated module declares (initial or maximum), in
/// bytes. Small memories keep comparing them cheap; `memory.grow` beyond a
/// declared maximum is exercised anyway.
const MAX_MEMORY_BYTES: u64 = 4 * 65536;

/// A `wasm-smith` configuration for `purpose`, partly chosen by the input
/// (swarm testing: each input also picks which features and sizes it
/// stresses, which finds more than always enabling everything).
pub fn smith_config(u: &mut Unstructured<'_>, purpose: Purpose) -> Result<wasm_smith::Config> {
    let simd = u.ratio(3, 4)?;
    let mut c = wasm_smith::Config {
        // What Keel supports.
        bulk_memory_enabled: true,
        reference_types_enabled: true,
        multi_value_enabled: u.ratio(7, 8)?,
        saturating_float_to_int_enabled: true,
        sign_extension_ops_enabled: true,
        simd_enabled: simd,
        // Keel's relaxed SIMD is deterministic, with the results wasmi's
        // has too (fused multiply-add, signed wrapping dot products).
        relaxed_simd_enabled: simd,
        extended_const_enabled: true,
        max_memories: u.int_in_range(1..=3)?,
        wide_arithmetic_enabled: true,
        memory64_enabled: u.ratio(1, 3)?,
        custom_page_sizes_enabled: u.ratio(1, 3)?,
        tail_call_enabled: u.ratio(1, 3)?,
        // wasmi lacks exceptions: the differential oracle compares modules
        // that use them with Keel in another configuration.
        exceptions_enabled: u.ratio(1, 4)?,
        // What it does not (wasm-smith makes typed function references
        // only together with the rest of GC).
        threads_enabled: false,
        shared_everything_threads_enabled: false,
        gc_enabled: false,
        custom_descriptors_enabled: false,
        compact_imports_enabled: false,
        acquire_release_atomics_enabled: false,
        multibyte_array_access_enabled: false,
        // Shape.
        allow_floats: u.ratio(9, 10)?,
        max_memory32_bytes: MAX_MEMORY_BYTES,
        max_memory64_bytes: u128::from(MAX_MEMORY_BYTES),
        max_table_elements: 200,
        max_tables: u.int_in_range(1..=3)?,
        max_types: 20,
        max_globals: 12,
        max_funcs: 12,
        max_data_segments: 8,
        max_element_segments: 8,
        max_elements: 16,
        export_everything: true,
        // Deterministic NaN bits, so memories can be compared bit for bit.
        canonicalize_nans: true,
        // A trapping generated module is still interesting, but one that
        // avoids traps runs further, so both kinds are made.
        disallow_traps: u.ratio(1, 4)?,
        min_uleb_size: if u.ratio(1, 16)? { 5 } else { 1 },
        generate_custom_sections: u.ratio(1, 16)?,
        ..wasm_smith::Config::default()
    };
    match purpose {
        Purpose::Differential => {
            c.max_imports = u.int_in_range(0..=4)?;
            c.max_instructions = u.int_in_range(10..=200)?;
            // Left to choose, wasm-smith makes most modules without a
            // single function from fuzzer-sized inputs: nothing to compare.
            c.min_funcs = u.int_in_range(2..=6)?;
        }
        Purpose::Instantiate => {
            c.max_imports = 12;
            c.min_imports = u.int_in_range(0..=3)?;
            c.max_instructions = 30;
            c.min_data_segments = u.int_in_range(0..=2)?;
            c.min_element_segments = u.int_in_range(0..=2)?;
            c.max_funcs = 6;
            c.min_funcs = 1;
        }
    }
    Ok(c)
}

/// A generated module, ready to run.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The binary.
    pub wasm: Vec<u8>,
}

impl Generated {
    /// Generates a module for `purpose` from `u`. Every loop and call
    /// consumes from a fuel global and traps when it is spent, so that
    /// every run terminates, also Keel's runs without fuel or epochs (the
    /// ones compared with wasmi); `fuel` is that budget.
    ///
    /// # Panics
    ///
    /// If the module uses a feature Keel lacks: the configuration above is
    /// then out of step with [`keel_features`].
    pub fn new(u: &mut Unstructured<'_>, purpose: Purpose, fuel: u32) -> Result<Generated> {
        let config = smith_config(u, purpose)?;
        let mut module = wasm_smith::Module::new(config, u)?;
        module
            .ensure_termination(fuel)
            .map_err(|_| arbitrary::Error::IncorrectFormat)?;
        let wasm = module.to_bytes();
        if let Err(e) =
            wasmparser::Validator::new_with_features(keel_features()).validate_all(&wasm)
        {
            panic!(
                "wasm-smith generated a module outside Keel's features ({e}); \
                 bring `smith_config` in step with `keel_features`"
            );
        }
        Ok(Generated { wasm })
    }
}

/// Compiler settings the oracles vary, to cover more of the compiler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeelVariant {
    /// Cranelift's optimization level: 0 none, 1 speed, 2 speed and size.
    pub opt_level: u8,
    /// Keel's own NaN canonicalization.
    pub nan_canonicalization: bool,
    /// Instances come from the pooling allocator, whose slots the previous
    /// inputs' instances used: a leak between tenants shows up as a
    /// divergence from the reference.
    pub pooling: bool,
    /// Fuel metering compiled in (`Config::consume_fuel`).
    pub fuel: bool,
    /// With fuel, the count kept in the store between calls rather than in
    /// a register (`Config::fuel_in_register(false)`).
    pub fuel_in_store: bool,
    /// Epoch checks compiled in (`Config::epoch_interruption`).
    pub epochs: bool,
    /// Each function compiled at its first call
    /// (`Config::lazy_compilation`, without the background thread, so that
    /// what compiles when depends on the input alone).
    pub lazy: bool,
    /// Instantiation and calls through the `_async` methods, on a fiber
    /// stack (driven by polling: nothing in a fuzz run waits).
    pub asynchronous: bool,
}

impl KeelVariant {
    /// The default configuration.
    pub const DEFAULT: KeelVariant = KeelVariant {
        opt_level: 1,
        nan_canonicalization: false,
        pooling: false,
        fuel: false,
        fuel_in_store: false,
        epochs: false,
        lazy: false,
        asynchronous: false,
    };

    /// A variant chosen by the input, mostly the default.
    pub fn arbitrary(u: &mut Unstructured<'_>) -> Result<KeelVariant> {
        // Async calls go by another bit of the length left, for the same
        // reason as lazy compilation below, in every variant.
        let asynchronous = (u.len() / 2) % 2 == 1;
        if u.ratio(3, 4)? {
            return Ok(KeelVariant {
                asynchronous,
                ..KeelVariant::DEFAULT
            });
        }
        // Lazy compilation goes by the parity of what input is left rather
        // than a byte of its own, so that saved inputs keep their meaning.
        let lazy = u.len() % 2 == 1;
        Ok(KeelVariant {
            opt_level: u.int_in_range(0..=2)?,
            nan_canonicalization: u.arbitrary()?,
            lazy,
            asynchronous,
            ..KeelVariant::DEFAULT
        })
    }

    fn config(self) -> keel::Config {
        let mut config = keel::Config::new();
        config
            .cranelift_opt_level(match self.opt_level {
                0 => keel::OptLevel::None,
                1 => keel::OptLevel::Speed,
                _ => keel::OptLevel::SpeedAndSize,
            })
            .cranelift_nan_canonicalization(self.nan_canonicalization)
            .consume_fuel(self.fuel)
            .fuel_in_register(!self.fuel_in_store)
            .epoch_interruption(self.epochs)
            .lazy_compilation(self.lazy)
            .lazy_compilation_in_background(false)
            .wasm_wide_arithmetic(true)
            .wasm_memory64(true)
            .wasm_custom_page_sizes(true)
            // One thread: the fuzzer shares the machine, and a single thread
            // keeps a failing input's behaviour reproducible.
            .parallel_compilation(false);
        if self.pooling {
            // Room for anything the generator makes (at most 3 memories
            // and tables per module, a few instances per input), so that
            // the pool's limits never differ from the reference's.
            let mut pool = keel::PoolingAllocationConfig::new();
            pool.total_core_instances(32)
                .total_memories(96)
                .total_tables(96)
                .max_memories_per_module(4)
                .max_tables_per_module(4)
                .table_elements(MAX_TABLE_ELEMENTS);
            config.allocation_strategy(pool);
        }
        config
    }

    fn slot(self) -> usize {
        usize::from(self.fuel_in_store) * 96
            + usize::from(self.lazy) * 48
            + usize::from(self.opt_level.min(2)) * 16
            + usize::from(self.nan_canonicalization) * 8
            + usize::from(self.pooling) * 4
            + usize::from(self.fuel) * 2
            + usize::from(self.epochs)
    }
}

/// Keel's own bound on table sizes, which a pooled table slot matches.
const MAX_TABLE_ELEMENTS: usize = 10_000_000;

/// Uses of one engine before it is replaced. Engines intern every function
/// signature they see (and compile a host trampoline per signature), which
/// is right for a program but grows without bound over millions of random
/// modules; replacing engines now and then keeps a long campaign's memory
/// flat without hiding real leaks (which grow per store or per module).
pub(crate) const ENGINE_USES: usize = 2_000;

/// A Keel engine for `variant`, shared between inputs.
pub fn keel_engine(variant: KeelVariant) -> keel::Engine {
    static ENGINES: Mutex<Vec<Option<(keel::Engine, usize)>>> = Mutex::new(Vec::new());
    let mut engines = ENGINES.lock().unwrap_or_else(|e| e.into_inner());
    if engines.is_empty() {
        engines.resize(192, None);
    }
    let slot = &mut engines[variant.slot()];
    match slot {
        Some((engine, uses)) if *uses < ENGINE_USES => {
            *uses += 1;
            engine.clone()
        }
        _ => {
            let engine = keel::Engine::new(&variant.config())
                .expect("Keel supports the host it is fuzzed on");
            *slot = Some((engine.clone(), 1));
            engine
        }
    }
}
