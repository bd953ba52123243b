//! Checks of the tree itself, so that the conventions in ARCHITECTURE.md
//! hold without anyone remembering them.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn crate_files() -> Vec<(String, String)> {
    let mut files = Vec::new();
    rust_files(&root().join("crates"), &mut files);
    files
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(root())
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            (rel, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// Files longer than this are hard to hold in mind: split them by
/// responsibility.
const MAX_LINES: usize = 1000;

#[test]
fn every_file_has_a_module_doc_and_a_readable_size() {
    for (path, text) in crate_files() {
        assert!(
            text.starts_with("//!"),
            "{path} must start with a `//!` module doc"
        );
        let lines = text.lines().count();
        assert!(
            lines <= MAX_LINES,
            "{path} has {lines} lines (limit {MAX_LINES})"
        );
    }
}

/// The modules of `keel` that may hold `unsafe` code (see ARCHITECTURE.md):
/// `crates/keel/src/lib.rs` denies `unsafe_code` and allows it on exactly
/// these `mod` lines, so the compiler refuses `unsafe` anywhere else.
const KEEL_UNSAFE_MODULES: &[&str] = &["externref", "func", "instance", "module", "store", "vm"];

const KEEL_SRC: &str = "crates/keel/src/";
const KEEL_LIB: &str = "crates/keel/src/lib.rs";

/// The top-level module of `keel` a file of `crates/keel/src` belongs to
/// (`lib` for the crate root).
fn keel_module(path: &str) -> Option<&str> {
    let rest = path.strip_prefix(KEEL_SRC)?;
    let first = rest.split('/').next().unwrap();
    Some(first.strip_suffix(".rs").unwrap_or(first))
}

/// Files outside `keel` with one `unsafe` block each, allowed by an
/// `#[allow(unsafe_code)]` on the block under a crate-level deny: `keel
/// run --allow-precompiled` loading the artifact the user vouched for.
const OTHER_UNSAFE_FILES: &[&str] = &["crates/cli/src/run.rs"];

/// Where `unsafe` may appear.
fn unsafe_allowed(path: &str) -> bool {
    if OTHER_UNSAFE_FILES.contains(&path) {
        return true;
    }
    match keel_module(path) {
        Some(module) => KEEL_UNSAFE_MODULES.contains(&module),
        None => path.contains("/tests/"),
    }
}

/// The code of a line, without its `//` comment.
fn code(line: &str) -> &str {
    line.split("//").next().unwrap_or("")
}

#[test]
fn unsafe_stays_in_its_fence() {
    for (path, text) in crate_files() {
        if unsafe_allowed(&path) {
            continue;
        }
        for (i, line) in text.lines().enumerate() {
            let code = code(line);
            let bad = code.contains("unsafe ") && !code.contains("unsafe_code");
            assert!(
                !bad,
                "{path}:{}: `unsafe` outside the modules allowed it ({KEEL_UNSAFE_MODULES:?})",
                i + 1
            );
        }
    }
}

/// The compiler holds the fence: `keel` denies `unsafe_code` at its root,
/// and the only exceptions are `#[allow(unsafe_code)]` on the `mod` lines
/// of [`KEEL_UNSAFE_MODULES`] in `lib.rs`, each under a comment saying why.
/// Writing `unsafe` anywhere else fails `cargo build`; allowing it anywhere
/// else fails this test.
#[test]
fn keel_denies_unsafe_code_but_in_its_allowed_modules() {
    let files = crate_files();
    let lib = &files
        .iter()
        .find(|(path, _)| path == KEEL_LIB)
        .expect("crates/keel/src/lib.rs exists")
        .1;
    assert!(
        lib.lines().any(|l| l.trim() == "#![deny(unsafe_code)]"),
        "{KEEL_LIB} must deny unsafe code: `#![deny(unsafe_code)]`"
    );
    let mut allowed = Vec::new();
    for (path, text) in files.iter().filter(|(p, _)| p.starts_with(KEEL_SRC)) {
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if !code(line).contains("unsafe_code") {
                continue;
            }
            let trimmed = line.trim();
            if path == KEEL_LIB && trimmed == "#![deny(unsafe_code)]" {
                continue;
            }
            let next = lines.get(i + 1).map_or("", |l| l.trim());
            let module = next
                .strip_prefix("mod ")
                .and_then(|m| m.strip_suffix(';'))
                .unwrap_or("");
            let ok = path == KEEL_LIB
                && trimmed == "#[allow(unsafe_code)]"
                && KEEL_UNSAFE_MODULES.contains(&module);
            assert!(
                ok,
                "{path}:{}: `unsafe_code` may only be allowed on the `mod` lines of \
                 {KEEL_UNSAFE_MODULES:?} in {KEEL_LIB} (found `{trimmed}`)",
                i + 1
            );
            let why = i > 0 && lines[i - 1].trim_start().starts_with("//");
            assert!(
                why,
                "{path}:{}: say why `mod {module}` needs `unsafe` in a comment above it",
                i + 1
            );
            allowed.push(module);
        }
    }
    allowed.sort_unstable();
    assert_eq!(
        allowed, KEEL_UNSAFE_MODULES,
        "every module of KEEL_UNSAFE_MODULES, and only those, gets `#[allow(unsafe_code)]` once"
    );
}

/// The runtime core sits below the API and beside the compiler: nothing in
/// `crates/keel/src/vm/` names the compiler or a `crate::` path outside
/// `crate::vm` (where it must call up into a store, it goes through the
/// `StoreHooks` the store installs).
#[test]
fn the_runtime_core_imports_neither_the_api_nor_the_compiler() {
    for (path, text) in crate_files() {
        if !path.starts_with("crates/keel/src/vm/") {
            continue;
        }
        for (i, line) in text.lines().enumerate() {
            assert!(
                !line.contains("keel_cranelift"),
                "{path}:{}: the runtime core must not depend on the compiler",
                i + 1
            );
            for (at, _) in line.match_indices("crate::") {
                let after = &line[at + "crate::".len()..];
                let ident: String = after
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                assert!(
                    ident == "vm",
                    "{path}:{}: the runtime core must not reach the API layer \
                     (`crate::{after}`); only `crate::vm::` paths",
                    i + 1
                );
            }
        }
    }
}

#[test]
fn architecture_md_names_every_crate_and_only_existing_paths() {
    let doc = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    for entry in std::fs::read_dir(root().join("crates")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            doc.contains(&format!("`crates/{name}`")),
            "ARCHITECTURE.md must describe crates/{name}"
        );
    }
    for piece in doc.split('`').skip(1).step_by(2) {
        let looks_like_path =
            piece.contains('/') && !piece.contains(' ') && !piece.starts_with("http");
        if looks_like_path {
            assert!(
                root().join(piece).exists(),
                "ARCHITECTURE.md names `{piece}`, which does not exist"
            );
        }
    }
}
