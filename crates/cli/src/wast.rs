//! `keel wast FILE...`

use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Runs spec test scripts and reports failing directives. Each script runs
/// with the WebAssembly features of the version or proposal its path names
/// (see `keel_wast::config_for_script`).
#[derive(Args)]
pub struct WastCommand {
    /// Scripts to run.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

impl WastCommand {
    /// Runs every script; prints one line per failing directive and a
    /// final `N passed, M failed`.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let (mut passed, mut failed) = (0usize, 0usize);
        for file in &self.files {
            let text = match std::fs::read_to_string(file) {
                Ok(t) => t,
                Err(e) => {
                    println!("{}: cannot read: {e}", file.display());
                    failed += 1;
                    continue;
                }
            };
            let config = keel_wast::config_for_script(&file.to_string_lossy());
            match keel_wast::run_script(&text, &config) {
                Ok(report) => {
                    passed += report.passed;
                    failed += report.failures.len();
                    for f in report.failures {
                        println!("{}:{}:{}: {}", file.display(), f.line, f.column, f.message);
                    }
                }
                Err(e) => {
                    println!(
                        "{}: {}",
                        file.display(),
                        format!("{e:#}").replace('\n', " ")
                    );
                    failed += 1;
                }
            }
        }
        println!("{passed} passed, {failed} failed");
        Ok(if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }
}
