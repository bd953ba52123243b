//! `keel run`'s limits on the guest: fuel, a timeout, memory, tables,
//! instances and stack, with `wasmtime run`'s `-W` spellings and readable
//! long forms.
//!
//! A guest stopped by a limit gets a one-line error naming the limit and
//! the flag that set it, and exit status [`LIMIT_EXIT_CODE`].

use anyhow::{Context as _, bail};
use clap::Args;
use keel::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder, Trap};
use std::fmt;
use std::time::Duration;

/// Exit status when a limit set on the command line stopped the guest (a
/// timeout, fuel, or a refused growth with `trap-on-grow-failure`), as GNU
/// `timeout` exits when its command runs out of time.
pub const LIMIT_EXIT_CODE: u8 = 124;

/// The limit flags of `keel run`.
#[derive(Args, Default)]
pub struct LimitOptions {
    /// Wasmtime's limit options: `fuel=N`, `timeout=DURATION`,
    /// `max-memory-size=BYTES`, `max-table-elements=N`, `max-instances=N`,
    /// `max-wasm-stack=BYTES`, `trap-on-grow-failure[=y|n]`; and the wasm
    /// proposals `wide-arithmetic[=y|n]`, `memory64[=y|n]` and
    /// `custom-page-sizes[=y|n]` (off by default, as in Wasmtime),
    /// `relaxed-simd[=y|n]`, `function-references[=y|n]`,
    /// `tail-call[=y|n]` and `exceptions[=y|n]` (on by default), and
    /// `legacy-exceptions[=y|n]` (off by default).
    #[arg(short = 'W', value_name = "KEY[=VAL]")]
    wasm_options: Vec<String>,
    /// Fuel the guest may spend (about one unit per instruction).
    #[arg(long, value_name = "N")]
    fuel: Option<String>,
    /// Wall-clock time the guest may run, such as `2s`, `500ms` or `1m`.
    #[arg(long, value_name = "DURATION")]
    timeout: Option<String>,
    /// Largest size of any linear memory, such as `64MiB`.
    #[arg(long = "max-memory", value_name = "BYTES")]
    max_memory: Option<String>,
}

/// One limit, with the flag that set it (for messages).
struct Setting<V> {
    value: V,
    text: String,
    flag: String,
}

/// The limits in force for one run.
#[derive(Default)]
pub struct Limits {
    fuel: Option<Setting<u64>>,
    timeout: Option<Setting<Duration>>,
    max_memory: Option<Setting<usize>>,
    max_table_elements: Option<usize>,
    max_instances: Option<usize>,
    max_wasm_stack: Option<usize>,
    trap_on_grow_failure: bool,
    /// Wasm proposals switched on or off, by their index in [`PROPOSALS`].
    proposals: Vec<(usize, bool)>,
}

/// How a proposal is switched on or off.
type ProposalSwitch = fn(&mut Config, bool) -> &mut Config;

/// The wasm proposals `-W` switches, by Wasmtime's names.
const PROPOSALS: &[(&str, ProposalSwitch)] = &[
    ("wide-arithmetic", Config::wasm_wide_arithmetic),
    ("relaxed-simd", Config::wasm_relaxed_simd),
    ("memory64", Config::wasm_memory64),
    ("custom-page-sizes", Config::wasm_custom_page_sizes),
    ("function-references", Config::wasm_function_references),
    ("tail-call", Config::wasm_tail_call),
    ("exceptions", Config::wasm_exceptions),
    ("legacy-exceptions", Config::wasm_legacy_exceptions),
];

impl LimitOptions {
    /// Parses the flags into limits.
    pub fn limits(&self) -> anyhow::Result<Limits> {
        let mut limits = Limits::default();
        for option in &self.wasm_options {
            let (key, value) = match option.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (option.as_str(), None),
            };
            let flag = format!("-W {key}");
            let need = || value.with_context(|| format!("`{flag}` needs a value: `{flag}=...`"));
            match key {
                "fuel" => limits.fuel = Some(setting(need()?, flag.clone(), parse_count)?),
                "timeout" => limits.timeout = Some(setting(need()?, flag.clone(), parse_duration)?),
                "max-memory-size" => {
                    limits.max_memory = Some(setting(need()?, flag.clone(), parse_bytes)?)
                }
                "max-table-elements" => limits.max_table_elements = Some(count(need()?, &flag)?),
                "max-instances" => limits.max_instances = Some(count(need()?, &flag)?),
                "max-wasm-stack" => {
                    limits.max_wasm_stack = Some(
                        parse_bytes(need()?)
                            .with_context(|| format!("invalid value for `{flag}`"))?,
                    )
                }
                "trap-on-grow-failure" => limits.trap_on_grow_failure = yes_or_no(value, &flag)?,
                other => match PROPOSALS.iter().position(|(name, _)| *name == other) {
                    Some(i) => limits.proposals.push((i, yes_or_no(value, &flag)?)),
                    None => bail!(
                        "unknown option `-W {other}`: keel knows fuel, timeout, max-memory-size, \
                         max-table-elements, max-instances, max-wasm-stack, trap-on-grow-failure, \
                         wide-arithmetic, relaxed-simd, memory64, custom-page-sizes, \
                         function-references, tail-call, exceptions, legacy-exceptions"
                    ),
                },
            }
        }
        if let Some(v) = &self.fuel {
            limits.fuel = Some(setting(v, "--fuel".into(), parse_count)?);
        }
        if let Some(v) = &self.timeout {
            limits.timeout = Some(setting(v, "--timeout".into(), parse_duration)?);
        }
        if let Some(v) = &self.max_memory {
            limits.max_memory = Some(setting(v, "--max-memory".into(), parse_bytes)?);
        }
        Ok(limits)
    }
}

fn setting<V>(
    text: &str,
    flag: String,
    parse: impl Fn(&str) -> anyhow::Result<V>,
) -> anyhow::Result<Setting<V>> {
    let value = parse(text).with_context(|| format!("invalid value `{text}` for `{flag}`"))?;
    Ok(Setting {
        value,
        text: text.to_string(),
        flag,
    })
}

/// A switch's value: absent means on.
fn yes_or_no(value: Option<&str>, flag: &str) -> anyhow::Result<bool> {
    match value {
        None | Some("y" | "yes" | "true") => Ok(true),
        Some("n" | "no" | "false") => Ok(false),
        Some(other) => bail!("invalid value `{other}` for `{flag}`: use y or n"),
    }
}

fn count(text: &str, flag: &str) -> anyhow::Result<usize> {
    text.parse()
        .with_context(|| format!("invalid value `{text}` for `{flag}`: expected a count"))
}

fn parse_count(text: &str) -> anyhow::Result<u64> {
    Ok(text.replace('_', "").parse()?)
}

/// `1.5s`, `500ms`, `2m`, `1h`, `250us`; a plain number is seconds.
pub fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .context("expected a number with a unit, such as 2s")?;
    let seconds = match unit {
        "" | "s" => number,
        "ms" => number / 1e3,
        "us" => number / 1e6,
        "ns" => number / 1e9,
        "m" | "min" => number * 60.0,
        "h" => number * 3600.0,
        other => bail!("unknown unit `{other}`: use ns, us, ms, s, m or h"),
    };
    Duration::try_from_secs_f64(seconds).context("out of range")
}

/// `65536`, `64KiB`, `64MiB`, `2GiB` (also `K`, `M`, `G`, and `KB`, `MB`,
/// `GB` as powers of 1000).
pub fn parse_bytes(text: &str) -> anyhow::Result<usize> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().context("expected a number of bytes")?;
    let scale: u64 = match unit {
        "" | "B" => 1,
        "K" | "k" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => bail!("unknown unit `{other}`: use KiB, MiB or GiB"),
    };
    let bytes = number.checked_mul(scale).context("too large")?;
    usize::try_from(bytes).context("too large")
}

impl Limits {
    /// Turns on what the engine must compile in for these limits, and the
    /// wasm proposals asked for.
    pub fn configure(&self, config: &mut Config) {
        for &(i, on) in &self.proposals {
            (PROPOSALS[i].1)(config, on);
        }
        if self.fuel.is_some() {
            config.consume_fuel(true);
        }
        if self.timeout.is_some() {
            config.epoch_interruption(true);
        }
        if let Some(stack) = self.max_wasm_stack {
            config.max_wasm_stack(stack);
        }
    }

    /// The store's resource limits.
    pub fn store_limits(&self) -> Option<StoreLimits> {
        let any = self.max_memory.is_some()
            || self.max_table_elements.is_some()
            || self.max_instances.is_some()
            || self.trap_on_grow_failure;
        if !any {
            return None;
        }
        let mut b = StoreLimitsBuilder::new().trap_on_grow_failure(self.trap_on_grow_failure);
        if let Some(m) = &self.max_memory {
            b = b.memory_size(m.value);
        }
        if let Some(n) = self.max_table_elements {
            b = b.table_elements(n);
        }
        if let Some(n) = self.max_instances {
            b = b.instances(n);
        }
        Some(b.build())
    }

    /// Gives the store its fuel and arms the timeout, whose timer thread
    /// ticks the engine's epoch once when the time is up.
    pub fn arm<T>(&self, engine: &Engine, store: &mut Store<T>) -> anyhow::Result<()> {
        if let Some(fuel) = &self.fuel {
            store.set_fuel(fuel.value)?;
        }
        if let Some(timeout) = &self.timeout {
            store.set_epoch_deadline(1);
            let engine = engine.clone();
            let after = timeout.value;
            std::thread::Builder::new()
                .name("keel-timeout".into())
                .spawn(move || {
                    std::thread::sleep(after);
                    engine.increment_epoch();
                })
                .context("cannot start the timeout's timer thread")?;
        }
        Ok(())
    }

    /// Names the limit behind an error that a limit caused.
    pub fn explain(&self, error: anyhow::Error) -> anyhow::Error {
        let stopped = |what: String| LimitExceeded(what);
        let reason = match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => self.timeout.as_ref().map(|t| {
                stopped(format!(
                    "the guest ran past its {} timeout ({})",
                    t.text, t.flag
                ))
            }),
            Some(Trap::OutOfFuel) => self.fuel.as_ref().map(|f| {
                stopped(format!(
                    "the guest ran out of its {} units of fuel ({})",
                    f.text, f.flag
                ))
            }),
            _ => None,
        };
        let reason = reason.or_else(|| {
            let grow_failed = self.trap_on_grow_failure
                && error
                    .chain()
                    .any(|c| c.to_string().contains("past the store's limit"));
            grow_failed.then(|| {
                let limit = self
                    .max_memory
                    .as_ref()
                    .map(|m| format!(" of {} ({})", m.text, m.flag))
                    .unwrap_or_default();
                stopped(format!(
                    "the guest grew past its memory or table limit{limit} (-W trap-on-grow-failure)"
                ))
            })
        });
        if let Some(r) = reason {
            return error.context(r);
        }
        // An instantiation the store's limits refused: say which flags.
        let refused = error.chain().any(|c| {
            let c = c.to_string();
            c.contains("store's limit") || (c.contains("store's") && c.contains("limit of"))
        });
        let flags = self.store_flags();
        if refused && !flags.is_empty() {
            return error.context(format!("limited by {}", flags.join(", ")));
        }
        error
    }

    /// The store limits set, as the user wrote them.
    fn store_flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        if let Some(m) = &self.max_memory {
            let sep = if m.flag.starts_with("-W") { '=' } else { ' ' };
            flags.push(format!("{}{sep}{}", m.flag, m.text));
        }
        if let Some(n) = self.max_table_elements {
            flags.push(format!("-W max-table-elements={n}"));
        }
        if let Some(n) = self.max_instances {
            flags.push(format!("-W max-instances={n}"));
        }
        flags
    }
}

/// The error context of a guest stopped by a command-line limit.
#[derive(Debug)]
pub struct LimitExceeded(pub String);

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_parse() {
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("2 weeks").is_err());
        assert!(parse_duration("-1s").is_err());
        assert_eq!(parse_bytes("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("65536").unwrap(), 65536);
        assert_eq!(parse_bytes("2G").unwrap(), 2 << 30);
        assert_eq!(parse_bytes("10KB").unwrap(), 10_000);
        assert!(parse_bytes("99999999999999999999GiB").is_err());
        assert!(parse_bytes("lots").is_err());
    }

    #[test]
    fn w_options_and_long_forms_agree() {
        let o = LimitOptions {
            wasm_options: vec![
                "fuel=1_000".into(),
                "timeout=2s".into(),
                "max-memory-size=1048576".into(),
                "trap-on-grow-failure".into(),
            ],
            ..Default::default()
        };
        let l = o.limits().unwrap();
        assert_eq!(l.fuel.as_ref().unwrap().value, 1000);
        assert_eq!(l.timeout.as_ref().unwrap().value, Duration::from_secs(2));
        assert_eq!(l.max_memory.as_ref().unwrap().value, 1 << 20);
        assert!(l.trap_on_grow_failure);
        let o = LimitOptions {
            wasm_options: vec!["no-such-thing=1".into()],
            ..Default::default()
        };
        assert!(o.limits().is_err());
        let o = LimitOptions {
            wasm_options: vec!["fuel".into()],
            ..Default::default()
        };
        assert!(o.limits().is_err());
    }
}
