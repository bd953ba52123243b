//! C programs for tests and benchmarks, compiled to WebAssembly with Zig's C
//! compiler (the PyPI package `ziglang`, version pinned in
//! `scripts/ziglang-version`).
//!
//! The compiler is installed on first use by `scripts/install-zig` into
//! `.tools/ziglang`, so `cargo test` works on a fresh machine that can reach
//! PyPI. Compiled modules are cached in `target/test-programs`, keyed by the
//! source, the flags and the compiler version.

#![forbid(unsafe_code)]

use std::collections::hash_map::DefaultHasher;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where the C sources live.
pub fn programs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("programs")
}

fn zig_version() -> String {
    std::fs::read_to_string(root().join("scripts/ziglang-version"))
        .expect("scripts/ziglang-version is readable")
        .trim()
        .to_string()
}

/// Makes sure the pinned Zig is installed, installing it if needed. Safe to
/// call from tests running in parallel (and from several processes).
pub fn ensure_zig() -> Result<PathBuf, String> {
    let dir = root().join(".tools/ziglang");
    let marker = dir.join(format!(".installed-{}", zig_version()));
    if marker.exists() {
        return Ok(dir);
    }
    std::fs::create_dir_all(root().join(".tools")).map_err(|e| e.to_string())?;
    let lock = File::create(root().join(".tools/install.lock")).map_err(|e| e.to_string())?;
    lock.lock().map_err(|e| e.to_string())?;
    if !marker.exists() {
        let status = Command::new(root().join("scripts/install-zig"))
            .status()
            .map_err(|e| format!("cannot run scripts/install-zig: {e}"))?;
        if !status.success() {
            return Err("scripts/install-zig failed (is PyPI reachable?)".into());
        }
    }
    Ok(dir)
}

/// What a program is compiled for.
#[derive(Copy, Clone, Debug, Hash)]
pub enum Target {
    /// No operating system: exports only, no imports (`wasm32-freestanding`).
    Freestanding,
    /// A WASI command (`wasm32-wasi`), linked with wasi-libc.
    Wasi,
}

/// Compiles `programs/<name>.c` with extra `flags`, returning the module.
/// Panics with the compiler's output if compilation fails: a test program
/// that does not build is a broken test.
pub fn compile(name: &str, target: Target, flags: &[&str]) -> Vec<u8> {
    let source = programs_dir().join(format!("{name}.c"));
    let text = std::fs::read(&source).unwrap_or_else(|e| panic!("{}: {e}", source.display()));
    let mut h = DefaultHasher::new();
    (&text, target, flags, zig_version()).hash(&mut h);
    let cache = root().join("target/test-programs");
    std::fs::create_dir_all(&cache).expect("target/test-programs is writable");
    let out = cache.join(format!("{name}-{:016x}.wasm", h.finish()));
    if let Ok(bytes) = std::fs::read(&out) {
        return bytes;
    }
    // One compilation at a time, across threads and test processes: on a
    // fresh machine concurrent `zig cc` runs race to build wasi-libc into
    // Zig's shared cache and one of them fails to find a half-written file.
    let lock =
        std::fs::File::create(cache.join(".lock")).expect("target/test-programs is writable");
    lock.lock().expect("lock target/test-programs/.lock");
    if let Ok(bytes) = std::fs::read(&out) {
        return bytes;
    }
    let zig = ensure_zig().unwrap_or_else(|e| panic!("Zig is not available: {e}"));
    let tmp = out.with_extension(format!("tmp{}", std::process::id()));
    let mut cmd = Command::new("python3");
    cmd.env("PYTHONPATH", &zig).args(["-m", "ziglang", "cc"]);
    match target {
        Target::Freestanding => cmd.args([
            "-target",
            "wasm32-freestanding",
            "-nostdlib",
            "-Wl,--no-entry",
        ]),
        Target::Wasi => cmd.args(["-target", "wasm32-wasi"]),
    };
    cmd.args(flags).arg("-o").arg(&tmp).arg(&source);
    let output = cmd.output().expect("python3 runs");
    assert!(
        output.status.success(),
        "zig cc failed for {name}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::rename(&tmp, &out).expect("rename into the cache");
    std::fs::read(&out).expect("compiled module is readable")
}
