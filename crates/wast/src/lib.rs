//! Runs WebAssembly specification test scripts (`.wast`) against Keel.
//!
//! [`run_script`] executes every directive of a script and reports each
//! failing one with its line and column. Modules are compiled from their
//! text or binary form, `register`ed under a name, invoked, and their
//! results compared exactly (NaN patterns as the spec defines them).
//!
//! The matching rules, in one place:
//! - `assert_return`: every result matches its pattern; `nan:canonical`
//!   and `nan:arithmetic` follow the spec's definitions on the bits.
//! - `assert_trap`: the call (or instantiation) fails with a [`keel::Trap`]
//!   whose message matches (see [`trap_matches`]).
//! - `assert_exhaustion`: the call traps with `StackOverflow`.
//! - `assert_invalid`, `assert_malformed`: the module fails to compile (the
//!   message is not compared: wording differs between implementations).
//! - `assert_unlinkable`: the module compiles but fails to link.

#![forbid(unsafe_code)]

mod values;

use anyhow::{Context as _, anyhow, bail};
use keel::{Config, Engine, Extern, Instance, Linker, Module, Store, Trap, Val};
use std::collections::HashMap;
use wast::parser::{self, ParseBuffer};
use wast::{QuoteWat, QuoteWatTest, Wast, WastArg, WastDirective, WastExecute, WastInvoke, Wat};

/// The configuration a script runs with, chosen from its path.
///
/// Scripts assert what is *invalid* as well as what works, so they must run
/// with the features of the specification version or proposal they were
/// written for: a WebAssembly 1.0 or 2.0 script expects a second memory to
/// be rejected, the multi-memory proposal's scripts expect it to work.
/// Proposals that are off by default (wide arithmetic, 64-bit memories,
/// custom page sizes) are on for their own scripts. Everything else uses Keel's defaults.
pub fn config_for_script(path: &str) -> Config {
    let mut config = Config::new();
    let multi_memory_script = path.contains("multi-memory") || path.contains("memory-multi");
    let before_multi_memory =
        path.contains("wasm-v1") || path.contains("wasm-v2") || path.contains("proposals/");
    config.wasm_multi_memory(multi_memory_script || !before_multi_memory);
    if path.contains("wide-arithmetic") {
        config.wasm_wide_arithmetic(true);
    }
    if path.contains("memory64") {
        config.wasm_memory64(true);
    }
    if path.contains("legacy-exceptions") {
        config.wasm_legacy_exceptions(true);
    }
    if path.contains("custom-page-sizes") {
        // Its scripts use 64-bit memories and several memories too.
        config
            .wasm_custom_page_sizes(true)
            .wasm_memory64(true)
            .wasm_multi_memory(true);
    }
    config
}

/// A directive that did not behave as the script says.
#[derive(Debug, Clone)]
pub struct Failure {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What went wrong.
    pub message: String,
}

/// What running one script found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Directives that behaved as expected.
    pub passed: usize,
    /// Directives that did not.
    pub failures: Vec<Failure>,
}

/// How a script runs, beyond its engine's configuration.
#[derive(Clone, Copy, Debug, Default)]
pub struct ScriptOptions {
    /// Every module goes through a precompiled artifact before use:
    /// compiled, serialized (signed with a key the runner sets) and loaded
    /// back with `Module::deserialize_authenticated`, so that what the
    /// script checks holds of loaded artifacts too.
    pub through_artifacts: bool,
}

/// Runs the script `text` with a fresh store. Fails only if the script
/// cannot be parsed at all; directive failures are in the report.
pub fn run_script(text: &str, config: &Config) -> anyhow::Result<Report> {
    run_script_with(text, config, ScriptOptions::default())
}

/// [`run_script`] with options.
pub fn run_script_with(
    text: &str,
    config: &Config,
    options: ScriptOptions,
) -> anyhow::Result<Report> {
    let buf = parse_buffer(text)?;
    let wast: Wast<'_> = parser::parse(&buf).map_err(|mut e| {
        e.set_text(text);
        anyhow!("{e}")
    })?;
    let mut config = config.clone();
    if options.through_artifacts {
        config.artifact_key(b"keel-wast: scripts through artifacts");
    }
    let mut runner = Runner::new(&config, options)?;
    let mut report = Report::default();
    for directive in wast.directives {
        let span = directive.span();
        let (line, col) = span.linecol_in(text);
        match runner.run(directive) {
            Ok(()) => report.passed += 1,
            Err(e) => report.failures.push(Failure {
                line: line + 1,
                column: col + 1,
                message: format!("{e:#}").replace('\n', " "),
            }),
        }
    }
    Ok(report)
}

/// Every module a script contains, as binaries: those it instantiates or
/// defines, and those it expects to be invalid, malformed, unlinkable or
/// to trap at instantiation. Modules that cannot be encoded (malformed
/// text) are skipped. The fuzzers seed their corpora with these.
pub fn script_modules(text: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    let buf = parse_buffer(text)?;
    let wast: Wast<'_> = parser::parse(&buf).map_err(|e| anyhow!("{e}"))?;
    let mut modules = Vec::new();
    for directive in wast.directives {
        let encoded = match directive {
            WastDirective::Module(mut m)
            | WastDirective::ModuleDefinition(mut m)
            | WastDirective::AssertInvalid { module: mut m, .. }
            | WastDirective::AssertMalformed { module: mut m, .. } => encode(&mut m),
            WastDirective::AssertUnlinkable { module, .. }
            | WastDirective::AssertTrap {
                exec: WastExecute::Wat(module),
                ..
            } => encode(&mut QuoteWat::Wat(module)),
            _ => continue,
        };
        if let Ok(bytes) = encoded {
            modules.push(bytes);
        }
    }
    Ok(modules)
}

struct Runner {
    engine: Engine,
    store: Store<()>,
    linker: Linker<()>,
    current: Option<Instance>,
    instances: HashMap<String, Instance>,
    definitions: HashMap<String, Module>,
    options: ScriptOptions,
}

/// Values returned by an `invoke` or `get`.
type Outcome = anyhow::Result<Vec<Val>>;

impl Runner {
    fn new(config: &Config, options: ScriptOptions) -> anyhow::Result<Runner> {
        let engine = Engine::new(config)?;
        let mut store = Store::new(&engine, ());
        // Under fuel or epochs, scripts get all the fuel and time there is:
        // what they check must not change because metering is on.
        if store.set_fuel(u64::MAX).is_err() {
            // Fuel is off in this configuration: nothing to give.
        }
        store.set_epoch_deadline(u64::MAX);
        let mut linker = Linker::new(&engine);
        linker.allow_shadowing(true);
        define_spectest(&mut linker, &mut store)?;
        Ok(Runner {
            engine,
            store,
            linker,
            current: None,
            instances: HashMap::new(),
            definitions: HashMap::new(),
            options,
        })
    }

    fn run(&mut self, directive: WastDirective<'_>) -> anyhow::Result<()> {
        match directive {
            WastDirective::Module(mut module) => {
                let name = module.name().map(|id| id.name().to_string());
                let module = self.compile(&mut module)?;
                let instance = self.linker.instantiate(&mut self.store, &module)?;
                self.bind(name, instance)?;
            }
            WastDirective::ModuleDefinition(mut module) => {
                let name = module.name().map(|id| id.name().to_string());
                let compiled = self.compile(&mut module)?;
                if let Some(name) = name {
                    self.definitions.insert(name, compiled);
                }
            }
            WastDirective::ModuleInstance {
                instance, module, ..
            } => {
                let def = module
                    .and_then(|m| self.definitions.get(m.name()))
                    .ok_or_else(|| anyhow!("unknown module definition"))?
                    .clone();
                let inst = self.linker.instantiate(&mut self.store, &def)?;
                self.bind(instance.map(|id| id.name().to_string()), inst)?;
            }
            WastDirective::Register { name, module, .. } => {
                let instance = self.instance(module.map(|m| m.name()))?;
                self.linker.instance(&mut self.store, name, instance)?;
            }
            WastDirective::Invoke(invoke) => {
                self.invoke(&invoke)?;
            }
            WastDirective::AssertReturn { exec, results, .. } => {
                let values = self.execute(exec)?;
                values::check_results(&self.store, &values, &results)?;
            }
            WastDirective::AssertTrap { exec, message, .. } => match self.execute(exec) {
                Ok(values) => bail!("expected trap `{message}`, got {values:?}"),
                Err(e) => check_trap(&e, message)?,
            },
            WastDirective::AssertException { exec, .. } => match self.execute(exec) {
                Ok(values) => bail!("expected an uncaught exception, got {values:?}"),
                Err(e) if e.is::<keel::ThrownException>() => {
                    // Taken, as a host would, so that it does not linger.
                    if self.store.take_pending_exception().is_none() {
                        bail!("an uncaught exception left no pending exception");
                    }
                }
                Err(e) => bail!("expected an uncaught exception, got: {e:#}"),
            },
            WastDirective::AssertExhaustion { call, message, .. } => match self.invoke(&call) {
                Ok(values) => bail!("expected stack exhaustion, got {values:?}"),
                Err(e) => {
                    if e.downcast_ref::<Trap>() != Some(&Trap::StackOverflow) {
                        bail!("expected `{message}`, got: {e:#}");
                    }
                }
            },
            WastDirective::AssertInvalid { mut module, .. }
            | WastDirective::AssertMalformed { mut module, .. } => {
                if let Ok(bytes) = encode(&mut module)
                    && Module::new(&self.engine, &bytes).is_ok()
                {
                    bail!("expected the module to be rejected, but it compiled");
                }
            }
            WastDirective::AssertUnlinkable {
                module, message, ..
            } => {
                let module = self.compile(&mut QuoteWat::Wat(module))?;
                if self.linker.instantiate(&mut self.store, &module).is_ok() {
                    bail!("expected a link error `{message}`, but instantiation succeeded");
                }
            }
            other => bail!("unsupported directive {:?}", other.span()),
        }
        Ok(())
    }

    /// Makes `instance` the current one and, if the script named it, lets
    /// `invoke`, `get` and `register` find it by that name and later
    /// modules import from it under the name, as `wasmtime wast` does.
    fn bind(&mut self, name: Option<String>, instance: Instance) -> anyhow::Result<()> {
        self.current = Some(instance);
        if let Some(name) = name {
            self.linker.instance(&mut self.store, &name, instance)?;
            self.instances.insert(name, instance);
        }
        Ok(())
    }

    fn compile(&self, module: &mut QuoteWat<'_>) -> anyhow::Result<Module> {
        let bytes = encode(module)?;
        let module = Module::new(&self.engine, &bytes)?;
        if !self.options.through_artifacts {
            return Ok(module);
        }
        let artifact = module.serialize()?;
        drop(module);
        Module::deserialize_authenticated(&self.engine, artifact)
    }

    fn instance(&self, name: Option<&str>) -> anyhow::Result<Instance> {
        match name {
            Some(n) => self
                .instances
                .get(n)
                .copied()
                .ok_or_else(|| anyhow!("no module named `{n}`")),
            None => self.current.ok_or_else(|| anyhow!("no current module")),
        }
    }

    fn invoke(&mut self, invoke: &WastInvoke<'_>) -> Outcome {
        let instance = self.instance(invoke.module.map(|m| m.name()))?;
        let func = instance
            .get_func(&mut self.store, invoke.name)
            .ok_or_else(|| anyhow!("no function export `{}`", invoke.name))?;
        let mut args = Vec::with_capacity(invoke.args.len());
        for a in &invoke.args {
            match a {
                WastArg::Core(a) => args.push(values::arg(&mut self.store, a)?),
                _ => bail!("component-model arguments are not supported"),
            }
        }
        let ty = func.ty(&self.store);
        let mut results: Vec<Val> = ty.results().map(|_| Val::I32(0)).collect();
        func.call(&mut self.store, &args, &mut results)?;
        Ok(results)
    }

    fn execute(&mut self, exec: WastExecute<'_>) -> Outcome {
        match exec {
            WastExecute::Invoke(invoke) => self.invoke(&invoke),
            WastExecute::Wat(module) => {
                let module = self.compile(&mut QuoteWat::Wat(module))?;
                self.linker.instantiate(&mut self.store, &module)?;
                Ok(vec![])
            }
            WastExecute::Get { module, global, .. } => {
                let instance = self.instance(module.map(|m| m.name()))?;
                let g = instance
                    .get_global(&mut self.store, global)
                    .ok_or_else(|| anyhow!("no global export `{global}`"))?;
                Ok(vec![g.get(&mut self.store)])
            }
        }
    }
}

/// A parse buffer that accepts the unusual Unicode the spec's `names.wast`
/// uses on purpose.
fn parse_buffer(text: &str) -> anyhow::Result<ParseBuffer<'_>> {
    let mut lexer = wast::lexer::Lexer::new(text);
    lexer.allow_confusing_unicode(true);
    ParseBuffer::new_with_lexer(lexer).map_err(|e| anyhow!("{e}"))
}

/// Encodes a module from the script, text or binary.
fn encode(module: &mut QuoteWat<'_>) -> anyhow::Result<Vec<u8>> {
    match module.to_test().map_err(|e| anyhow!("{e}"))? {
        QuoteWatTest::Binary(bytes) => Ok(bytes),
        QuoteWatTest::Text(text) => {
            let text = String::from_utf8(text).context("module text is not UTF-8")?;
            let buf = parse_buffer(&text)?;
            let mut wat: Wat<'_> = parser::parse(&buf).map_err(|e| anyhow!("{e}"))?;
            wat.encode().map_err(|e| anyhow!("{e}"))
        }
    }
}

/// Spec messages Keel words differently, and the trap each stands for.
const TRAP_ALIASES: &[(&str, Trap)] = &[
    ("undefined element", Trap::TableOutOfBounds),
    ("out of bounds table access", Trap::TableOutOfBounds),
    ("uninitialized element", Trap::IndirectCallToNull),
    ("unreachable", Trap::UnreachableCodeReached),
    ("indirect call type mismatch", Trap::BadSignature),
    ("call stack exhausted", Trap::StackOverflow),
    ("null function reference", Trap::NullReference),
];

/// Whether a trap matches the message a script expects: Keel's message
/// starts with it (or contains it), or the message is one of the spec's
/// words for the same trap.
pub fn trap_matches(trap: Trap, expected: &str) -> bool {
    let actual = trap.to_string();
    actual.contains(expected)
        || TRAP_ALIASES
            .iter()
            .any(|(msg, t)| (expected.starts_with(msg) || msg.starts_with(expected)) && *t == trap)
}

fn check_trap(error: &anyhow::Error, expected: &str) -> anyhow::Result<()> {
    match error.downcast_ref::<Trap>() {
        Some(trap) if trap_matches(*trap, expected) => Ok(()),
        Some(trap) => bail!("expected trap `{expected}`, got `{trap}`"),
        None => bail!("expected trap `{expected}`, got error: {error:#}"),
    }
}

/// The `spectest` module the scripts import from.
fn define_spectest(linker: &mut Linker<()>, store: &mut Store<()>) -> anyhow::Result<()> {
    use keel::{
        GlobalType, Memory, MemoryType, Mutability, Ref, RefType, Table, TableType, ValType,
    };
    linker.func_wrap("spectest", "print", || {})?;
    linker.func_wrap("spectest", "print_i32", |_: i32| {})?;
    linker.func_wrap("spectest", "print_i64", |_: i64| {})?;
    linker.func_wrap("spectest", "print_f32", |_: f32| {})?;
    linker.func_wrap("spectest", "print_f64", |_: f64| {})?;
    linker.func_wrap("spectest", "print_i32_f32", |_: i32, _: f32| {})?;
    linker.func_wrap("spectest", "print_f64_f64", |_: f64, _: f64| {})?;
    let globals: [(&str, ValType, Val); 4] = [
        ("global_i32", ValType::I32, Val::I32(666)),
        ("global_i64", ValType::I64, Val::I64(666)),
        ("global_f32", ValType::F32, Val::F32(666.6f32.to_bits())),
        ("global_f64", ValType::F64, Val::F64(666.6f64.to_bits())),
    ];
    for (name, ty, value) in globals {
        let g = keel::Global::new(&mut *store, GlobalType::new(ty, Mutability::Const), value)?;
        linker.define(&*store, "spectest", name, g)?;
    }
    let table = Table::new(
        &mut *store,
        TableType::new(RefType::FUNCREF, 10, Some(20)),
        Ref::Func(None),
    )?;
    linker.define(&*store, "spectest", "table", table)?;
    let memory = Memory::new(&mut *store, MemoryType::new(1, Some(2)))?;
    linker.define(&*store, "spectest", "memory", Extern::Memory(memory))?;
    Ok(())
}
