//! `keel compile [OPTIONS] MODULE -o OUTPUT`
//!
//! Compiles a module ahead of time into an artifact that `keel run
//! --allow-precompiled` (and `Module::deserialize`) loads without
//! compiling. The options that shape the code (`-W fuel=N` and `--fuel`
//! turn fuel metering on, `--timeout` epoch checks) must be the ones the
//! artifact will run with: loading it under others is refused by name.

use crate::limits::LimitOptions;
use anyhow::Context as _;
use clap::Args;
use keel::{Config, Engine};
use std::path::PathBuf;
use std::process::ExitCode;

/// Compiles a module into a precompiled artifact.
#[derive(Args)]
pub struct CompileCommand {
    #[command(flatten)]
    limits: LimitOptions,
    /// Where to write the artifact (default: MODULE with the extension
    /// `.cwasm`).
    #[arg(short = 'o', long = "output", value_name = "OUTPUT")]
    output: Option<PathBuf>,
    /// The module (binary `.wasm` or text `.wat`).
    #[arg(value_name = "MODULE")]
    module: PathBuf,
}

impl CompileCommand {
    /// Compiles and writes the artifact (to a temporary name first, so that
    /// a failure never leaves a partial artifact under the output name).
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let limits = self.limits.limits()?;
        let mut config = Config::new();
        limits.configure(&mut config);
        let engine = Engine::new(&config)?;
        let bytes = std::fs::read(&self.module)
            .with_context(|| format!("failed to read `{}`", self.module.display()))?;
        let artifact = engine
            .precompile_module(&bytes)
            .with_context(|| format!("failed to compile `{}`", self.module.display()))?;
        let output = self
            .output
            .unwrap_or_else(|| self.module.with_extension("cwasm"));
        let tmp = output.with_extension(format!("cwasm.tmp{}", std::process::id()));
        std::fs::write(&tmp, &artifact)
            .and_then(|()| std::fs::rename(&tmp, &output))
            .with_context(|| format!("failed to write `{}`", output.display()))?;
        Ok(ExitCode::SUCCESS)
    }
}
