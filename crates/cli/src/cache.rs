//! `keel run`'s compile cache, and `keel cache info|clear`.
//!
//! Each entry is a precompiled artifact, `<module hash>-<engine hash>.cwasm`
//! in the cache directory (`KEEL_CACHE_DIR`, else `$XDG_CACHE_HOME/keel`,
//! else `~/.cache/keel`), signed with a key kept in the directory (`key`,
//! created on first use, readable by its owner only) and loaded with
//! `Module::deserialize_authenticated_file`: an entry that is corrupt,
//! truncated, or was not written by this cache fails that check and is
//! compiled again and replaced, never run and never a crash. Entries are
//! written to a temporary file and renamed into place, so several `keel
//! run`s at once, or one that dies, never leave a torn entry. After each
//! write the least recently used entries (by modification time, which a
//! hit refreshes) are removed until the cache is under its bound: 1 GiB,
//! or `KEEL_CACHE_MAX_SIZE` bytes.

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use keel::{Config, Engine, Module};
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

/// The bound on the cache's size when `KEEL_CACHE_MAX_SIZE` is not set.
const DEFAULT_MAX_SIZE: u64 = 1 << 30;
const ENTRY_EXTENSION: &str = "cwasm";

/// A compile cache directory.
pub struct Cache {
    dir: PathBuf,
    max_size: u64,
}

impl Cache {
    /// The cache directory from the environment.
    pub fn from_env() -> anyhow::Result<Cache> {
        let dir = match std::env::var_os("KEEL_CACHE_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => match std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
                Some(base) => PathBuf::from(base).join("keel"),
                None => match std::env::var_os("HOME") {
                    Some(home) => PathBuf::from(home).join(".cache/keel"),
                    None => bail!("no cache directory: set KEEL_CACHE_DIR or HOME"),
                },
            },
        };
        let max_size = match std::env::var("KEEL_CACHE_MAX_SIZE") {
            Ok(v) => v
                .parse()
                .with_context(|| format!("KEEL_CACHE_MAX_SIZE=`{v}` is not a number of bytes"))?,
            Err(_) => DEFAULT_MAX_SIZE,
        };
        Ok(Cache { dir, max_size })
    }

    /// The key that signs this cache's entries, created on first use.
    pub fn key(&self) -> anyhow::Result<Vec<u8>> {
        let path = self.dir.join("key");
        if let Ok(key) = std::fs::read(&path)
            && key.len() == 32
        {
            return Ok(key);
        }
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create the cache `{}`", self.dir.display()))?;
        let mut key = vec![0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut key))
            .context("cannot read random bytes for the cache key")?;
        // Written aside and renamed: of several runs creating it at once,
        // one key wins and every run then reads that one.
        let tmp = self.temporary("key");
        write_private(&tmp, &key)?;
        if std::fs::hard_link(&tmp, &path).is_err() {
            // Another run created it first: use that one.
        }
        let _ = std::fs::remove_file(&tmp);
        let key = std::fs::read(&path).context("cannot read the cache key")?;
        if key.len() != 32 {
            bail!(
                "the cache key `{}` is damaged: run `keel cache clear`",
                path.display()
            );
        }
        Ok(key)
    }

    /// The module in the file `path` for `engine` (whose config has this
    /// cache's key): from the cache, or compiled. A compiled module is
    /// stored at once, unless it compiles lazily: then the returned entry
    /// stores it once the guest is done, so that the guest need not wait
    /// for the functions it does not run.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        path: &Path,
    ) -> anyhow::Result<(Module, Option<PendingEntry<'_>>)> {
        // A hit needs only the module's hash, read through a small buffer:
        // reading a module of several MB whole into fresh memory costs more
        // than hashing it.
        if let Ok(digest) = hash_file(path) {
            let entry = self.entry_path(engine, &digest);
            if let Ok(module) = Module::deserialize_authenticated_file(engine, &entry) {
                // A hit makes the entry the most recently used.
                if let Ok(f) = std::fs::File::options().append(true).open(&entry) {
                    let _ = f.set_modified(SystemTime::now());
                }
                return Ok((module, None));
            }
        }
        let wasm =
            std::fs::read(path).with_context(|| format!("failed to read `{}`", path.display()))?;
        // Keyed by the bytes compiled, whatever the file holds by now.
        let entry = self.entry_path(engine, &Sha256::digest(&wasm).into());
        let module = Module::new(engine, &wasm)?;
        let entry = PendingEntry {
            cache: self,
            path: entry,
        };
        if module.lazy_compilation_progress().is_some() {
            return Ok((module, Some(entry)));
        }
        entry.store(&module);
        Ok((module, None))
    }

    /// The entry for the module whose SHA-256 is `module`, compiled by `engine`.
    fn entry_path(&self, engine: &Engine, module: &[u8; 32]) -> PathBuf {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let hex: String = module[..16].iter().map(|b| format!("{b:02x}")).collect();
        self.dir
            .join(format!("{hex}-{:016x}.{ENTRY_EXTENSION}", h.finish()))
    }

    fn temporary(&self, what: &str) -> PathBuf {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        self.dir
            .join(format!(".{what}.{}.{nanos}.tmp", std::process::id()))
    }

    fn store(&self, path: &Path, artifact: &[u8]) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self.temporary("entry");
        let written = write_private(&tmp, artifact)
            .and_then(|()| std::fs::rename(&tmp, path).context("cannot move the entry into place"));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }

    /// The entries, oldest first, with their sizes.
    fn entries(&self) -> Vec<(PathBuf, u64, SystemTime)> {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut entries: Vec<_> = dir
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == ENTRY_EXTENSION))
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                Some((e.path(), meta.len(), meta.modified().ok()?))
            })
            .collect();
        entries.sort_by_key(|e| e.2);
        entries
    }

    /// Removes the least recently used entries until the cache fits its
    /// bound (keeping at least the newest), and temporary files that a run
    /// which died left behind more than an hour ago.
    fn evict(&self) -> anyhow::Result<()> {
        if let Ok(dir) = std::fs::read_dir(&self.dir) {
            let stale = |e: &std::fs::DirEntry| {
                e.metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age.as_secs() > 3600)
            };
            for e in dir.flatten() {
                if e.path().extension().is_some_and(|x| x == "tmp") && stale(&e) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let entries = self.entries();
        let mut total: u64 = entries.iter().map(|e| e.1).sum();
        for (path, len, _) in &entries[..entries.len().saturating_sub(1)] {
            if total <= self.max_size {
                break;
            }
            if std::fs::remove_file(path).is_ok() {
                total -= len;
            }
        }
        Ok(())
    }
}

/// The SHA-256 of the file at `path`, read a piece at a time.
fn hash_file(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 64 << 10];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => return Ok(hasher.finalize().into()),
            Ok(n) => hasher.update(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Writes `bytes` to a new file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create `{}`", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// A module compiled for want of a cache entry, to be stored later.
pub struct PendingEntry<'a> {
    cache: &'a Cache,
    path: PathBuf,
}

impl PendingEntry<'_> {
    /// Stores `module` (compiling what it has not compiled yet). The cache
    /// is an optimization: failing to store is not an error.
    pub fn store(self, module: &Module) {
        if let Ok(artifact) = module.serialize()
            && self.cache.store(&self.path, &artifact).is_ok()
        {
            let _ = self.cache.evict();
        }
    }
}

/// How `keel run` gets its module's code: the compile cache (`--no-cache`
/// and Wasmtime's `-C cache=y|n`) and lazy compilation
/// (`-C lazy-compilation=y|n`).
#[derive(Args, Default)]
pub struct CompileOptions {
    /// Compiles every time, without reading or writing the compile cache.
    #[arg(long)]
    no_cache: bool,
    /// Code generation options, as Wasmtime's: `cache=y|n`, and Keel's
    /// `lazy-compilation=y|n` (on by default: a module not in the cache
    /// compiles each function at its first call, and the rest in the
    /// background).
    #[arg(short = 'C', value_name = "KEY=VAL")]
    codegen: Vec<String>,
}

impl CompileOptions {
    /// Whether the cache is on (the default) and whether compilation is
    /// lazy (the default).
    fn parse(&self) -> anyhow::Result<(bool, bool)> {
        let (mut cache, mut lazy) = (!self.no_cache, true);
        for option in &self.codegen {
            let (key, value) = option.split_once('=').unwrap_or((option, "y"));
            let on = match value {
                "y" | "yes" | "true" => true,
                "n" | "no" | "false" => false,
                other => bail!("-C {key}=`{other}`: expected y or n"),
            };
            match key {
                "cache" => cache &= on,
                "lazy-compilation" => lazy = on,
                key => bail!(
                    "unknown option -C {key} (Keel knows -C cache=y|n and -C lazy-compilation=y|n)"
                ),
            }
        }
        Ok((cache, lazy))
    }

    /// Sets up `config` and returns the cache to use with it (which gives
    /// `config` its key); `None` when off.
    pub fn configure(&self, config: &mut Config) -> anyhow::Result<Option<Cache>> {
        let (enabled, lazy) = self.parse()?;
        config.lazy_compilation(lazy);
        if !enabled {
            return Ok(None);
        }
        let cache = Cache::from_env()?;
        // A cache that cannot be set up (a read-only home, say) only costs
        // the compile it would have saved.
        match cache.key() {
            Ok(key) => {
                config.artifact_key(key);
                Ok(Some(cache))
            }
            Err(_) => Ok(None),
        }
    }
}

/// `keel cache info` and `keel cache clear`.
#[derive(Subcommand)]
pub enum CacheCommand {
    /// Prints where the cache is, its entries and their size.
    Info,
    /// Removes every entry (and the signing key).
    Clear,
}

impl CacheCommand {
    /// Runs the subcommand.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let cache = Cache::from_env()?;
        match self {
            CacheCommand::Info => {
                let entries = cache.entries();
                let bytes: u64 = entries.iter().map(|e| e.1).sum();
                println!("directory: {}", cache.dir.display());
                println!("entries: {}", entries.len());
                println!("size: {bytes} bytes (limit {} bytes)", cache.max_size);
            }
            CacheCommand::Clear => {
                for (path, _, _) in cache.entries() {
                    std::fs::remove_file(&path)
                        .with_context(|| format!("cannot remove `{}`", path.display()))?;
                }
                let _ = std::fs::remove_file(cache.dir.join("key"));
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
