//! `keel run [OPTIONS] MODULE [ARGS...]`
//!
//! Runs a WASI command (its `_start`), or calls an export (`--invoke`).
//! Flags follow `wasmtime run`: `--dir HOST[::GUEST]` (plus Keel's
//! `::readonly` suffix), `--env NAME=VAL` and `--env NAME`, `--invoke`,
//! `--tcplisten ADDR`, and the limits of `limits.rs` (`-W fuel=N`,
//! `--timeout 2s`, ...). Everything after MODULE goes to the guest, even
//! `--help`.

use crate::cache::{Cache, CompileOptions, PendingEntry};
use crate::limits::LimitOptions;
use anyhow::{Context as _, bail};
use clap::Args;
use keel::{Config, Engine, Func, Linker, Module, Store, StoreLimits, Val, ValType};
use keel_wasi::{DirPerms, I32Exit, WasiCtx};
use std::path::Path;
use std::process::ExitCode;

/// Runs a module with WASI: calls `_start`, or `--invoke NAME` with ARGS.
#[derive(Args)]
pub struct RunCommand {
    /// Calls this export instead of `_start`; the arguments after the
    /// module are its arguments, and its results are printed one per line.
    #[arg(long, value_name = "NAME")]
    invoke: Option<String>,
    /// Gives the guest a host directory: `HOST` (seen under the same
    /// path), `HOST::GUEST`, or either with `::readonly` appended.
    #[arg(long = "dir", value_name = "HOST[::GUEST][::readonly]")]
    dirs: Vec<String>,
    /// Sets an environment variable for the guest (`NAME=VAL`), or passes
    /// the host's value of `NAME`.
    #[arg(long = "env", value_name = "NAME[=VAL]")]
    envs: Vec<String>,
    /// Gives the guest a TCP socket listening on this address, for
    /// `sock_accept`.
    #[arg(long = "tcplisten", value_name = "ADDR")]
    listen: Vec<String>,
    #[command(flatten)]
    limits: LimitOptions,
    #[command(flatten)]
    cache: CompileOptions,
    /// Allows MODULE to be a precompiled artifact (`keel compile`), whose
    /// machine code runs as it is: only for artifacts you made or trust.
    #[arg(long)]
    allow_precompiled: bool,
    /// The module (binary `.wasm` or text `.wat`, or with
    /// `--allow-precompiled` a `.cwasm` artifact), then the arguments: to
    /// the program, or to the invoked function. Everything after the
    /// module is passed on, even `--help`.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "MODULE [ARGS]"
    )]
    module_and_args: Vec<String>,
}

/// What the store holds: the guest's WASI state and its resource limits.
struct Host {
    wasi: WasiCtx,
    limits: StoreLimits,
}

/// A `--dir` value.
fn parse_dir(spec: &str) -> anyhow::Result<(String, String, DirPerms)> {
    let mut parts: Vec<&str> = spec.split("::").collect();
    let perms = if parts.len() > 1 && parts.last() == Some(&"readonly") {
        parts.pop();
        DirPerms::ReadOnly
    } else {
        DirPerms::ReadWrite
    };
    match parts.as_slice() {
        [host] => Ok((host.to_string(), host.to_string(), perms)),
        [host, guest] => Ok((host.to_string(), guest.to_string(), perms)),
        _ => bail!("invalid --dir `{spec}`: expected HOST[::GUEST][::readonly]"),
    }
}

impl RunCommand {
    /// The module's path.
    fn module(&self) -> &Path {
        // clap guarantees at least one value (`required`).
        Path::new(
            self.module_and_args
                .first()
                .map(String::as_str)
                .unwrap_or_default(),
        )
    }

    /// Everything after the module.
    fn args(&self) -> &[String] {
        self.module_and_args.get(1..).unwrap_or_default()
    }

    fn wasi_ctx(&self) -> anyhow::Result<WasiCtx> {
        let mut b = WasiCtx::builder();
        b.inherit_stdio();
        // argv[0] is the module's file name only, as `wasmtime run` does:
        // the guest has no business knowing where the host keeps it.
        let module = self.module();
        let argv0 = module.file_name().unwrap_or(module.as_os_str());
        b.arg(argv0.to_string_lossy());
        if self.invoke.is_none() {
            b.args(self.args());
        }
        for e in &self.envs {
            match e.split_once('=') {
                Some((k, v)) => {
                    b.env(k, v);
                }
                // An empty name is reported by `build`.
                None if e.is_empty() => {
                    b.env("", "");
                }
                None => {
                    if let Ok(v) = std::env::var(e) {
                        b.env(e.as_str(), v);
                    }
                }
            }
        }
        for d in &self.dirs {
            let (host, guest, perms) = parse_dir(d)?;
            b.preopened_dir(&host, guest, perms)
                .with_context(|| format!("cannot open directory `{host}` for --dir"))?;
        }
        for addr in &self.listen {
            let l = std::net::TcpListener::bind(addr)
                .with_context(|| format!("cannot listen on `{addr}`"))?;
            b.preopened_socket(l);
        }
        // An argument or variable the guest could not see as given (a NUL
        // byte, an empty name, a name with `=`) is an error, not a surprise.
        Ok(b.build()?)
    }

    /// Compiles, instantiates and runs the module. The guest's exit status
    /// is Keel's.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let limits = self.limits.limits()?;
        let mut config = Config::new();
        limits.configure(&mut config);
        let cache = self.cache.configure(&mut config)?;
        let engine = Engine::new(&config)?;
        let (module, pending_entry) = load_module(
            &engine,
            self.module(),
            self.allow_precompiled,
            cache.as_ref(),
        )
        .with_context(|| format!("failed to load `{}`", self.module().display()))?;
        let mut linker = Linker::new(&engine);
        keel_wasi::add_to_linker(&mut linker, |host: &mut Host| &mut host.wasi)?;
        let store_limits = limits.store_limits();
        let limited = store_limits.is_some();
        let host = Host {
            wasi: self.wasi_ctx()?,
            limits: store_limits.unwrap_or_default(),
        };
        let mut store = Store::new(&engine, host);
        if limited {
            store.limiter(|host| &mut host.limits);
        }
        limits.arm(&engine, &mut store)?;
        let result = self.run(&mut store, &linker, &module);
        if let Some(entry) = pending_entry {
            entry.store(&module);
        }
        match result {
            Ok(code) => Ok(code),
            Err(e) => match e.downcast_ref::<I32Exit>() {
                Some(I32Exit(code)) => Ok(ExitCode::from(*code as u8)),
                None => Err(limits.explain(e)),
            },
        }
    }

    fn run(
        &self,
        store: &mut Store<Host>,
        linker: &Linker<Host>,
        module: &Module,
    ) -> anyhow::Result<ExitCode> {
        let instance = linker.instantiate(&mut *store, module)?;
        if self.invoke.is_none()
            && let Some(start) = instance.get_func(&mut *store, "_start")
        {
            start.call(&mut *store, &[], &mut [])?;
            return Ok(ExitCode::SUCCESS);
        }
        // A reactor: initialize it, then call what was asked for.
        if let Some(init) = instance.get_func(&mut *store, "_initialize") {
            init.call(&mut *store, &[], &mut [])?;
        }
        let func = match &self.invoke {
            Some(name) => instance
                .get_func(&mut *store, name)
                .with_context(|| format!("no exported function named `{name}`"))?,
            None => match instance.get_func(&mut *store, "") {
                Some(f) => f,
                None => return Ok(ExitCode::SUCCESS),
            },
        };
        let args = if self.invoke.is_some() {
            self.args()
        } else {
            &[]
        };
        let results = invoke(store, func, args)?;
        for r in results {
            println!("{}", format_val(&r));
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Calls `func` with `args` parsed according to its parameter types.
fn invoke(store: &mut Store<Host>, func: Func, args: &[String]) -> anyhow::Result<Vec<Val>> {
    let ty = func.ty(&*store);
    if ty.params().len() != args.len() {
        bail!(
            "the function takes {} arguments, {} given",
            ty.params().len(),
            args.len()
        );
    }
    let params = ty
        .params()
        .zip(args)
        .map(|(t, a)| {
            parse_val(&t, a).with_context(|| format!("invalid argument `{a}` for type {t}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut results: Vec<Val> = ty.results().map(|_| Val::I32(0)).collect();
    func.call(&mut *store, &params, &mut results)?;
    Ok(results)
}

fn parse_val(ty: &ValType, s: &str) -> anyhow::Result<Val> {
    // Integers may be given signed or as their unsigned bit pattern.
    Ok(match ty {
        ValType::I32 => {
            let v = parse_int(s)?;
            Val::I32(i32::try_from(v).or_else(|_| u32::try_from(v).map(|u| u as i32))?)
        }
        ValType::I64 => {
            let v = parse_int(s)?;
            Val::I64(i64::try_from(v).or_else(|_| u64::try_from(v).map(|u| u as i64))?)
        }
        ValType::F32 => Val::F32(s.parse::<f32>()?.to_bits()),
        ValType::F64 => Val::F64(s.parse::<f64>()?.to_bits()),
        other => bail!("arguments of type {other} are not supported on the command line"),
    })
}

fn parse_int(s: &str) -> anyhow::Result<i128> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let v = match digits.strip_prefix("0x") {
        Some(hex) => i128::from_str_radix(hex, 16)?,
        None => digits.parse::<i128>()?,
    };
    Ok(if neg { -v } else { v })
}

fn format_val(v: &Val) -> String {
    match v {
        Val::I32(x) => x.to_string(),
        Val::I64(x) => x.to_string(),
        Val::F32(b) => f32::from_bits(*b).to_string(),
        Val::F64(b) => f64::from_bits(*b).to_string(),
        Val::V128(x) => format!("{:#034x}", x.as_u128()),
        Val::FuncRef(None) | Val::ExternRef(None) | Val::ExnRef(None) => "null".to_string(),
        Val::FuncRef(Some(_)) => "<funcref>".to_string(),
        Val::ExternRef(Some(_)) => "<externref>".to_string(),
        Val::ExnRef(Some(_)) => "<exnref>".to_string(),
    }
}

/// Compiles the module at `path` (or takes it from the compile cache), or
/// loads it if it is a precompiled artifact and those are allowed. A
/// module compiled lazily comes with the cache entry to store once the
/// guest is done.
fn load_module<'c>(
    engine: &Engine,
    path: &Path,
    allow_precompiled: bool,
    cache: Option<&'c Cache>,
) -> anyhow::Result<(Module, Option<PendingEntry<'c>>)> {
    if Engine::detect_precompiled_file(path)?.is_none() {
        return match cache {
            Some(cache) => cache.load_or_compile(engine, path),
            None => Ok((Module::from_file(engine, path)?, None)),
        };
    }
    if !allow_precompiled {
        bail!("running a precompiled module requires the `--allow-precompiled` flag");
    }
    // SAFETY: the user vouched for the artifact with `--allow-precompiled`
    // (its header, version, settings and checksum are still checked), and
    // the CLI does not change the file while it runs.
    #[allow(unsafe_code)]
    let module = unsafe { Module::deserialize_file(engine, path)? };
    Ok((module, None))
}
