//! The sandbox-escape suite: every way out of a preopened directory that
//! we know of, tried from inside a wasm program, must fail with the
//! expected errno and leave everything outside untouched.
//!
//! The attacks (see `crates/test-programs/programs/wasi_escape.c`): `..`
//! (plain, nested, from a subdirectory, as a directory), absolute paths,
//! absolute and relative symlinks (followed, traversed as a directory,
//! looping, created by the guest), hard links in and out, renames in and
//! out, unlink/mkdir/rmdir/set-times/truncate outside, a NUL byte hiding a
//! path, every mutation of a read-only preopen, and a race that swaps a
//! directory for a symlink while the guest opens paths through it.

mod common;

use common::{program, run, scratch};
use keel_wasi::{DirPerms, WasiCtx};
use std::os::unix::fs::symlink;
use std::path::Path;

/// A path that would leave its preopen (`EPERM`, as Wasmtime answers).
const PERM: i32 = 63;
/// A descriptor lacking a right, such as writing in a read-only preopen.
const NOTCAPABLE: i32 = 76;
const LOOP: i32 = 32;
const INVAL: i32 = 28;
const OK: i32 = 0;

/// Each attack and the errno it must get.
const EXPECTED: &[(&str, i32)] = &[
    ("dotdot-open", PERM),
    ("dotdot-nested", PERM),
    ("dotdot-directory", PERM),
    ("absolute-etc-passwd", PERM),
    ("absolute-host-path", PERM),
    ("absolute-symlink-follow", PERM),
    ("relative-symlink-follow", PERM),
    ("directory-symlink-traverse", PERM),
    ("symlink-loop", LOOP),
    ("symlink-nofollow", LOOP),
    ("symlink-truncate-outside", PERM),
    ("stat-dotdot", PERM),
    ("stat-through-symlink", PERM),
    ("set-times-through-symlink", PERM),
    ("hardlink-outside-in", PERM),
    ("hardlink-inside-out", PERM),
    ("hardlink-through-dir-symlink", PERM),
    ("rename-out", PERM),
    ("rename-in", PERM),
    ("rename-into-readonly", NOTCAPABLE),
    ("unlink-dotdot", PERM),
    ("unlink-through-dir-symlink", PERM),
    ("mkdir-outside", PERM),
    ("rmdir-outside", PERM),
    ("symlink-create-absolute", NOTCAPABLE),
    // Creating a link whose target is relative is allowed...
    ("symlink-create-relative-escape", OK),
    // ...but following it out is not.
    ("symlink-created-then-followed", PERM),
    ("subdir-dotdot-escape", PERM),
    // A descriptor is a capability for what is beneath it, not its parent.
    ("subdir-dotdot-to-parent", PERM),
    ("nul-in-path", INVAL),
    ("readonly-create", NOTCAPABLE),
    ("readonly-open-for-write", NOTCAPABLE),
    ("readonly-truncate", NOTCAPABLE),
    ("readonly-unlink", NOTCAPABLE),
    ("readonly-mkdir", NOTCAPABLE),
    ("readonly-symlink", NOTCAPABLE),
    ("readonly-set-times", NOTCAPABLE),
    ("readonly-rename-out", NOTCAPABLE),
    ("readonly-read-allowed", OK),
];

/// A snapshot of everything outside the sandbox that an escape could touch.
fn snapshot(root: &Path) -> Vec<(String, Vec<u8>, std::time::SystemTime)> {
    let mut out = Vec::new();
    for dir in ["outside", "outside/dir", "ro"] {
        let mut entries: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            let content = if m.is_file() {
                std::fs::read(e.path()).unwrap()
            } else {
                vec![]
            };
            out.push((
                e.path().display().to_string(),
                content,
                m.modified().unwrap(),
            ));
        }
    }
    out
}

fn setup(name: &str) -> std::path::PathBuf {
    let root = scratch(name);
    let outside = root.join("outside");
    std::fs::create_dir_all(outside.join("dir")).unwrap();
    std::fs::write(outside.join("secret.txt"), "top secret\n").unwrap();
    let sandbox = root.join("sandbox");
    std::fs::create_dir_all(sandbox.join("sub")).unwrap();
    std::fs::write(sandbox.join("file.txt"), "inside\n").unwrap();
    symlink(outside.join("secret.txt"), sandbox.join("abs_link")).unwrap();
    symlink("../outside/secret.txt", sandbox.join("rel_link")).unwrap();
    symlink("../outside", sandbox.join("dir_link")).unwrap();
    symlink("loop_b", sandbox.join("loop_a")).unwrap();
    symlink("loop_a", sandbox.join("loop_b")).unwrap();
    std::fs::create_dir_all(root.join("ro")).unwrap();
    std::fs::write(root.join("ro/keep.txt"), "keep me\n").unwrap();
    root
}

#[test]
fn every_escape_attempt_fails_with_the_right_errno() {
    let root = setup("escape");
    let before = snapshot(&root);
    let secret_path = root.join("outside/secret.txt").display().to_string();
    let mut b = WasiCtx::builder();
    b.args(&["wasi_escape", secret_path.as_str()])
        .preopened_dir(root.join("sandbox"), "sandbox", DirPerms::ReadWrite)
        .unwrap()
        .preopened_dir(root.join("ro"), "ro", DirPerms::ReadOnly)
        .unwrap();
    let out = run(&program("wasi_escape"), &mut b);
    assert_eq!(out.exit, Some(0), "{out:#?}");
    let got: Vec<(String, i32)> = out
        .stdout
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            match (w.next(), w.next(), w.next(), w.next()) {
                (Some("attack"), Some(name), Some("errno"), Some(n)) => {
                    Some((name.to_string(), n.parse().unwrap()))
                }
                _ => None,
            }
        })
        .collect();
    let mut wrong = Vec::new();
    for (name, expected) in EXPECTED {
        let actual = got.iter().find(|(n, _)| n == name).map(|(_, e)| *e);
        println!("attack {name:32} errno {actual:?} (expected {expected})");
        if actual != Some(*expected) {
            wrong.push(format!("{name}: got {actual:?}, expected {expected}"));
        }
    }
    assert_eq!(
        got.len(),
        EXPECTED.len(),
        "every attack ran: {}",
        out.stdout
    );
    assert!(
        wrong.is_empty(),
        "attacks with the wrong result:\n{}",
        wrong.join("\n")
    );
    assert_eq!(
        snapshot(&root),
        before,
        "something outside the sandbox changed"
    );
    assert!(!root.join("outside/planted").exists() && !root.join("outside/moved").exists());
}

#[test]
fn swapping_a_directory_for_a_symlink_never_leaks_the_outside() {
    let root = setup("race");
    let race = root.join("sandbox/race");
    let real = root.join("sandbox/race_real");
    std::fs::create_dir_all(&real).unwrap();
    std::fs::write(real.join("target.txt"), "harmless\n").unwrap();
    symlink("race_real", &race).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flipper = {
        let (stop, race) = (stop.clone(), race.clone());
        let outside = root.join("outside");
        std::fs::write(outside.join("target.txt"), "top secret\n").unwrap();
        std::thread::spawn(move || {
            let mut flips = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Atomically replace `race` with a link to the outside and back.
                let tmp = race.with_extension("tmp");
                let _ = std::fs::remove_file(&tmp);
                let target: &Path = if flips.is_multiple_of(2) {
                    outside.as_path()
                } else {
                    Path::new("race_real")
                };
                symlink(target, &tmp).unwrap();
                std::fs::rename(&tmp, &race).unwrap();
                flips += 1;
            }
            flips
        })
    };
    let mut b = WasiCtx::builder();
    b.args(&["wasi_escape", "race"])
        .preopened_dir(root.join("sandbox"), "sandbox", DirPerms::ReadWrite)
        .unwrap()
        .preopened_dir(root.join("ro"), "ro", DirPerms::ReadOnly)
        .unwrap();
    let out = run(&program("wasi_escape"), &mut b);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let flips = flipper.join().unwrap();
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("race "))
        .expect("race result")
        .to_string();
    println!("{line} (host flipped the link {flips} times)");
    assert!(line.ends_with("leaked 0"), "{line}");
    let opened: u64 = line.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!(
        opened > 0,
        "the race must actually open files through the flipping link: {line}"
    );
    assert!(flips > 100, "the host must actually flip the link: {flips}");
}
