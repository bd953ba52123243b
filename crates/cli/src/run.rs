//! `keel run [OPTIONS] MODULE [ARGS...]`

use anyhow::{Context as _, bail};
use clap::Args;
use keel::{Engine, Func, Linker, Module, Store, Val, ValType};
use std::path::PathBuf;
use std::process::ExitCode;

/// Runs a module: calls `--invoke NAME` with ARGS, or its default export.
#[derive(Args)]
pub struct RunCommand {
    /// The export to call, with the arguments that follow the module.
    #[arg(long, value_name = "NAME")]
    invoke: Option<String>,
    /// The module (binary `.wasm` or text `.wat`).
    module: PathBuf,
    /// Arguments: to the invoked function, or to the program.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

impl RunCommand {
    /// Compiles, instantiates and runs the module.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let engine = Engine::default();
        let module = Module::from_file(&engine, &self.module)
            .with_context(|| format!("failed to load `{}`", self.module.display()))?;
        let mut store = Store::new(&engine, ());
        let linker = Linker::new(&engine);
        let instance = linker.instantiate(&mut store, &module)?;
        let func = match &self.invoke {
            Some(name) => instance
                .get_func(&mut store, name)
                .with_context(|| format!("no exported function named `{name}`"))?,
            None => match instance
                .get_func(&mut store, "_start")
                .or_else(|| instance.get_func(&mut store, ""))
            {
                Some(f) => f,
                None => return Ok(ExitCode::SUCCESS),
            },
        };
        let results = invoke(&mut store, func, &self.args)?;
        for r in results {
            println!("{}", format_val(&r));
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Calls `func` with `args` parsed according to its parameter types.
fn invoke(store: &mut Store<()>, func: Func, args: &[String]) -> anyhow::Result<Vec<Val>> {
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
        Val::FuncRef(None) => "null".to_string(),
        Val::FuncRef(Some(_)) => "<funcref>".to_string(),
        Val::ExternRef(None) => "null".to_string(),
        Val::ExternRef(Some(_)) => "<externref>".to_string(),
    }
}
