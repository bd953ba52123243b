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

/// Where `unsafe` may appear (see ARCHITECTURE.md).
fn unsafe_allowed(path: &str) -> bool {
    path.starts_with("crates/keel/src/vm/")
        || path.starts_with("crates/keel/src/func")
        || path == "crates/keel/src/store.rs"
        || path == "crates/keel/src/instance.rs"
        || path.contains("/tests/")
}

#[test]
fn unsafe_stays_in_its_fence() {
    for (path, text) in crate_files() {
        if unsafe_allowed(&path) {
            continue;
        }
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let bad = code.contains("unsafe ") && !code.contains("unsafe_code");
            assert!(!bad, "{path}:{}: `unsafe` outside the runtime core", i + 1);
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
