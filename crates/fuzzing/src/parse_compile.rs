//! The `parse_compile` oracle: arbitrary bytes into `keel::Module::new`.
//!
//! Keel must return (never panic, hang or crash) and, for binary input,
//! agree with `wasmparser` validating the same bytes with Keel's features:
//! a module it validates must compile, one it rejects must be rejected,
//! and `Module::validate` must say the same. Text input (anything not
//! starting with `\0asm`) goes through the `wat` parser and only has to
//! return.

use crate::generate::{KeelVariant, keel_engine, keel_features};
use crate::{Finding, Stats, Verdict};

/// The oracle.
pub fn run(data: &[u8]) -> Verdict {
    // The compiler settings come from the input's length, which mutations
    // change often, so every setting sees every kind of module.
    let variant = match data.len() % 8 {
        0 => KeelVariant {
            opt_level: 0,
            ..KeelVariant::DEFAULT
        },
        1 => KeelVariant {
            opt_level: 2,
            nan_canonicalization: true,
            ..KeelVariant::DEFAULT
        },
        // Fuel and epoch checks change the translation of every loop,
        // call and bulk operation.
        2 => KeelVariant {
            fuel: true,
            epochs: true,
            ..KeelVariant::DEFAULT
        },
        3 => KeelVariant {
            fuel: true,
            fuel_in_store: true,
            ..KeelVariant::DEFAULT
        },
        _ => KeelVariant::DEFAULT,
    };
    let engine = keel_engine(variant);
    let compiled = keel::Module::new(&engine, data);
    let mut stats = Stats {
        compiled: usize::from(compiled.is_ok()),
        ..Stats::default()
    };
    if !data.starts_with(b"\0asm") {
        return Ok(stats);
    }
    let valid = wasmparser::Validator::new_with_features(keel_features()).validate_all(data);
    let module = || Finding::new(String::new()).with_module(data);
    match (&valid, &compiled) {
        (Ok(_), Err(e)) => {
            return Err(Finding {
                message: format!("Keel rejects a module that wasmparser validates: {e:#}"),
                ..module()
            });
        }
        (Err(e), Ok(_)) => {
            return Err(Finding {
                message: format!("Keel compiles a module that wasmparser rejects: {e}"),
                ..module()
            });
        }
        _ => {}
    }
    let validated = keel::Module::validate(&engine, data);
    if validated.is_ok() != valid.is_ok() {
        return Err(Finding {
            message: format!(
                "keel::Module::validate says {:?}, wasmparser says {:?}",
                validated.err().map(|e| e.to_string()),
                valid.err().map(|e| e.to_string())
            ),
            ..module()
        });
    }
    stats.inconclusive = false;
    Ok(stats)
}
