//! `keel run`'s compile cache, as users meet it: it fills, hits, survives
//! damage and concurrent runs, stays within its bound, and can be turned
//! off, inspected and cleared.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn module(dir: &Path, name: &str, value: i32) -> String {
    let path = dir.join(name);
    let wat = format!(r#"(module (func (export "get") (result i32) (i32.const {value})))"#);
    std::fs::write(&path, wat).unwrap();
    path.to_string_lossy().into_owned()
}

/// A fresh cache directory and a folder for modules.
fn setup(name: &str) -> (PathBuf, PathBuf) {
    let root = std::env::temp_dir().join(format!("keel-cache-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let cache = root.join("cache");
    let modules = root.join("modules");
    std::fs::create_dir_all(&modules).unwrap();
    (cache, modules)
}

fn keel(cache: &Path, max_size: Option<u64>, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keel"));
    cmd.env("KEEL_CACHE_DIR", cache).args(args);
    match max_size {
        Some(n) => cmd.env("KEEL_CACHE_MAX_SIZE", n.to_string()),
        None => cmd.env_remove("KEEL_CACHE_MAX_SIZE"),
    };
    cmd
}

fn get(cache: &Path, max_size: Option<u64>, module: &str, extra: &[&str]) -> String {
    let mut args = vec!["run"];
    args.extend_from_slice(extra);
    args.extend(["--invoke", "get", module]);
    let o: Output = keel(cache, max_size, &args).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// The cache's entries (not its key or temporary files).
fn entries(cache: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(cache)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|x| x == "cwasm"));
    v.sort();
    v
}

fn leftovers(cache: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(cache)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "tmp"))
        .collect()
}

#[test]
fn a_run_fills_the_cache_and_the_next_one_loads_from_it() {
    let (cache, dir) = setup("hit");
    let m = module(&dir, "m.wat", 7);
    assert_eq!(get(&cache, None, &m, &[]), "7\n");
    let [entry] = entries(&cache).try_into().unwrap();
    let inode = std::fs::metadata(&entry).unwrap().ino();
    assert_eq!(get(&cache, None, &m, &[]), "7\n");
    // A hit reads the entry; it does not write a new one.
    assert_eq!(std::fs::metadata(&entry).unwrap().ino(), inode);
    assert_eq!(entries(&cache), [entry]);

    let info = keel(&cache, None, &["cache", "info"]).output().unwrap();
    let info = String::from_utf8(info.stdout).unwrap();
    assert!(info.contains("entries: 1"), "{info}");
    assert!(
        keel(&cache, None, &["cache", "clear"])
            .status()
            .unwrap()
            .success()
    );
    assert!(entries(&cache).is_empty());
}

#[test]
fn a_damaged_or_foreign_entry_is_compiled_again_and_replaced() {
    let (cache, dir) = setup("damaged");
    let m = module(&dir, "m.wat", 11);
    assert_eq!(get(&cache, None, &m, &[]), "11\n");
    let [entry] = entries(&cache).try_into().unwrap();
    let good = std::fs::read(&entry).unwrap();

    let damages: [(&str, Vec<u8>); 4] = [
        ("truncated", good[..good.len() / 3].to_vec()),
        ("empty", Vec::new()),
        ("flipped", {
            let mut b = good.clone();
            let at = b.len() / 2;
            b[at] ^= 0x40;
            b
        }),
        ("earlier format", {
            let mut b = good.clone();
            b[8] = 4;
            b
        }),
    ];
    for (what, bytes) in damages {
        std::fs::write(&entry, bytes).unwrap();
        assert_eq!(get(&cache, None, &m, &[]), "11\n", "{what}");
        assert_eq!(std::fs::read(&entry).unwrap(), good, "{what}: replaced");
    }
    // An artifact the cache's key did not sign (here: made by `keel
    // compile`, unsigned) is not trusted either.
    let foreign = dir.join("foreign.cwasm");
    let o = keel(
        &cache,
        None,
        &["compile", &m, "-o", &foreign.to_string_lossy()],
    )
    .output()
    .unwrap();
    assert!(o.status.success());
    std::fs::copy(&foreign, &entry).unwrap();
    assert_eq!(get(&cache, None, &m, &[]), "11\n");
    assert_eq!(std::fs::read(&entry).unwrap(), good);
}

#[test]
fn four_runs_at_once_of_a_new_module_all_succeed_and_leave_one_entry() {
    let (cache, dir) = setup("concurrent");
    let m = module(&dir, "m.wat", 4);
    let children: Vec<_> = (0..4)
        .map(|_| {
            keel(&cache, None, &["run", "--invoke", "get", &m])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success());
        assert_eq!(String::from_utf8_lossy(&o.stdout), "4\n");
    }
    assert_eq!(entries(&cache).len(), 1);
    assert!(leftovers(&cache).is_empty(), "{:?}", leftovers(&cache));
    assert_eq!(get(&cache, None, &m, &[]), "4\n");
}

#[test]
fn a_full_cache_drops_its_least_recently_used_entries() {
    let (cache, dir) = setup("full");
    let a = module(&dir, "a.wat", 1);
    let b = module(&dir, "b.wat", 2);
    assert_eq!(get(&cache, None, &a, &[]), "1\n");
    let [entry_a] = entries(&cache).try_into().unwrap();
    let size = std::fs::metadata(&entry_a).unwrap().len();
    // Room for one entry: storing b evicts a, then storing a evicts b.
    let bound = Some(size + size / 2);
    assert_eq!(get(&cache, bound, &b, &[]), "2\n");
    let [entry_b] = entries(&cache).try_into().unwrap();
    assert_ne!(entry_b, entry_a);
    assert_eq!(get(&cache, bound, &a, &[]), "1\n");
    assert_eq!(entries(&cache), std::slice::from_ref(&entry_a));
    // With room for both, a hit refreshes an entry, so the one evicted
    // next is the other.
    assert_eq!(get(&cache, None, &b, &[]), "2\n");
    assert_eq!(entries(&cache).len(), 2);
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(get(&cache, None, &a, &[]), "1\n");
    let c = module(&dir, "c.wat", 3);
    assert_eq!(get(&cache, Some(2 * size + size / 2), &c, &[]), "3\n");
    let left = entries(&cache);
    assert_eq!(left.len(), 2);
    assert!(
        left.contains(&entry_a) && !left.contains(&entry_b),
        "{left:?}"
    );
}

#[test]
fn the_cache_can_be_turned_off() {
    let (cache, dir) = setup("off");
    let m = module(&dir, "m.wat", 5);
    assert_eq!(get(&cache, None, &m, &["--no-cache"]), "5\n");
    assert_eq!(get(&cache, None, &m, &["-C", "cache=n"]), "5\n");
    assert!(entries(&cache).is_empty());
    let o = keel(
        &cache,
        None,
        &["run", "-C", "cache=maybe", "--invoke", "get", &m],
    )
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn a_lazily_compiled_run_stores_its_entry_when_the_guest_is_done() {
    // A module not in the cache compiles lazily; its entry, written after
    // the guest finished (here: trapped, after calling one function of
    // three), holds every function and is the same as an eager run's.
    let (lazy_cache, dir) = setup("lazy");
    let (eager_cache, _) = setup("eager");
    let path = dir.join("m.wat");
    std::fs::write(
        &path,
        r#"(module
            (func $unused (result i32) (i32.const 1))
            (func $boom (unreachable))
            (func (export "get") (result i32) (call $boom) (call $unused)))"#,
    )
    .unwrap();
    let m = path.to_string_lossy().into_owned();
    for (cache, flag) in [
        (&lazy_cache, "lazy-compilation=y"),
        (&eager_cache, "lazy-compilation=n"),
    ] {
        let o = keel(cache, None, &["run", "-C", flag, "--invoke", "get", &m])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(134), "{flag}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("unreachable"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let [lazy_entry] = entries(&lazy_cache).try_into().unwrap();
    let [eager_entry] = entries(&eager_cache).try_into().unwrap();
    let (lazy_bytes, eager_bytes) = (
        std::fs::read(lazy_entry).unwrap(),
        std::fs::read(eager_entry).unwrap(),
    );
    // The same artifact but for the signature (each cache has its key):
    // the trailer's last 32 bytes.
    assert_eq!(lazy_bytes.len(), eager_bytes.len());
    let unsigned = lazy_bytes.len() - 32;
    assert!(lazy_bytes[..unsigned] == eager_bytes[..unsigned]);
    let o = keel(
        &lazy_cache,
        None,
        &["run", "-C", "lazy-compilation=maybe", &m],
    )
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(1));
}
