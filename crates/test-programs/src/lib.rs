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
    compile_with(name, target, flags, &[])
}

/// A real program of several MB for the benchmarks: SQLite (the
/// amalgamation that `scripts/fetch-sqlite` fetches from the npm registry,
/// pinned) with the driver `programs/sqlite_bench.c`, a WASI command,
/// built at `-O2` with DWARF (as a debug-enabled release ships).
pub fn sqlite() -> Vec<u8> {
    let dir = root().join(".tools/sqlite");
    let status = Command::new(root().join("scripts/fetch-sqlite"))
        .status()
        .expect("scripts/fetch-sqlite runs");
    assert!(
        status.success(),
        "scripts/fetch-sqlite failed (is the npm registry reachable?)"
    );
    let include = format!("-I{}", dir.display());
    compile_with(
        "sqlite_bench",
        Target::Wasi,
        &[
            "-O2",
            "-g",
            &include,
            "-DSQLITE_THREADSAFE=0",
            "-DSQLITE_OMIT_LOAD_EXTENSION",
            "-D_WASI_EMULATED_MMAN",
            "-D_WASI_EMULATED_SIGNAL",
            "-D_WASI_EMULATED_PROCESS_CLOCKS",
            "-lwasi-emulated-mman",
            "-lwasi-emulated-signal",
            "-lwasi-emulated-process-clocks",
        ],
        &[dir.join("sqlite3.c")],
    )
}

/// [`compile`], with more C files compiled and linked in (part of the
/// cache key, by content).
pub fn compile_with(name: &str, target: Target, flags: &[&str], extra: &[PathBuf]) -> Vec<u8> {
    let target_args: &[&str] = match target {
        Target::Freestanding => &[
            "-target",
            "wasm32-freestanding",
            "-nostdlib",
            "-Wl,--no-entry",
        ],
        Target::Wasi => &["-target", "wasm32-wasi"],
    };
    let mut key = format!("{target:?} {flags:?}");
    for path in extra {
        let text = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut h = DefaultHasher::new();
        text.hash(&mut h);
        key.push_str(&format!(" {:016x}", h.finish()));
    }
    let out = cached_build(name, &key, "wasm", |zig, source, out| {
        let extra: Vec<String> = extra.iter().map(|p| p.display().to_string()).collect();
        let mut flags = flags.to_vec();
        flags.extend(extra.iter().map(String::as_str));
        zig_cc(zig, target_args, &flags, source, out)
    });
    std::fs::read(&out).expect("compiled module is readable")
}

/// Compiles `programs/<name>.c` for the machine running this (not for
/// wasm), with its `run` export renamed to `symbol`, into a static library
/// `lib<symbol>.a`, for the benchmark's native figures. Returns the
/// directory that holds the library. Panics as [`compile`] does.
pub fn compile_native(name: &str, symbol: &str, flags: &[&str]) -> PathBuf {
    let define = format!("-Drun={symbol}");
    let mut args = vec!["-c", &define, "-Wno-unknown-attributes"];
    args.extend_from_slice(flags);
    let key = format!("native {symbol} {flags:?}");
    cached_build(name, &key, "d", |zig, source, out| {
        std::fs::create_dir_all(out).expect("the cache is writable");
        let object = out.join(format!("{symbol}.o"));
        zig_cc(zig, &[], &args, source, &object)?;
        let library = out.join(format!("lib{symbol}.a"));
        let mut ar = zig_command(zig, "ar");
        ar.arg("rcs").arg(&library).arg(&object);
        run_tool(ar, name)
    })
}

/// Builds `programs/<name>.c` into the cache at a path keyed by the
/// source, `key` and the compiler version, unless it is already there;
/// `build(zig, source, out)` writes `out`. One build at a time, across
/// threads and test processes: on a fresh machine concurrent `zig cc` runs
/// race to build wasi-libc into Zig's shared cache and one of them fails
/// to find a half-written file.
fn cached_build(
    name: &str,
    key: &str,
    extension: &str,
    build: impl FnOnce(&Path, &Path, &Path) -> Result<(), String>,
) -> PathBuf {
    let source = programs_dir().join(format!("{name}.c"));
    let text = std::fs::read(&source).unwrap_or_else(|e| panic!("{}: {e}", source.display()));
    let mut h = DefaultHasher::new();
    (&text, key, zig_version()).hash(&mut h);
    let cache = root().join("target/test-programs");
    std::fs::create_dir_all(&cache).expect("target/test-programs is writable");
    let out = cache.join(format!("{name}-{:016x}.{extension}", h.finish()));
    if out.exists() {
        return out;
    }
    let lock =
        std::fs::File::create(cache.join(".lock")).expect("target/test-programs is writable");
    lock.lock().expect("lock target/test-programs/.lock");
    if out.exists() {
        return out;
    }
    let zig = ensure_zig().unwrap_or_else(|e| panic!("Zig is not available: {e}"));
    let tmp = out.with_extension(format!("tmp{}", std::process::id()));
    if let Err(e) = build(&zig, &source, &tmp) {
        panic!("{e}");
    }
    std::fs::rename(&tmp, &out).expect("rename into the cache");
    out
}

/// `python3 -m ziglang <tool>`, with the installed Zig.
fn zig_command(zig: &Path, tool: &str) -> Command {
    let mut cmd = Command::new("python3");
    cmd.env("PYTHONPATH", zig).args(["-m", "ziglang", tool]);
    cmd
}

fn zig_cc(
    zig: &Path,
    target_args: &[&str],
    flags: &[&str],
    source: &Path,
    out: &Path,
) -> Result<(), String> {
    let mut cmd = zig_command(zig, "cc");
    cmd.args(target_args)
        .args(flags)
        .arg("-o")
        .arg(out)
        .arg(source);
    run_tool(cmd, &source.display().to_string())
}

fn run_tool(mut cmd: Command, what: &str) -> Result<(), String> {
    let output = cmd
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "zig failed for {what}:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}
