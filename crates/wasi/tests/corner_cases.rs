//! What a C library hides: raw WASI calls with bad pointers, bad
//! descriptors, missing rights and odd iovecs, from hand-written wasm. Each
//! must give an errno (never a trap, never a host crash).

mod common;

use keel::{Instance, Linker, Module, Store};
use keel_wasi::{DirPerms, WasiCtx};

const EFAULT: i32 = 21;
const EBADF: i32 = 8;
const EINVAL: i32 = 28;
const EILSEQ: i32 = 25;
const ENOTCAPABLE: i32 = 76;

const WAT: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_renumber" (func $fd_renumber (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_unstable" "fd_write" (func $old_fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 16)
  (func (export "fd_write") (param i32 i32 i32 i32) (result i32)
    (call $fd_write (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "old_fd_write") (param i32 i32 i32 i32) (result i32)
    (call $old_fd_write (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "fd_read") (param i32 i32 i32 i32) (result i32)
    (call $fd_read (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "fd_close") (param i32) (result i32) (call $fd_close (local.get 0)))
  (func (export "fd_renumber") (param i32 i32) (result i32) (call $fd_renumber (local.get 0) (local.get 1)))
  (func (export "args_get") (param i32 i32) (result i32) (call $args_get (local.get 0) (local.get 1)))
  (func (export "random_get") (param i32 i32) (result i32) (call $random_get (local.get 0) (local.get 1)))
  (func (export "clock_time_get") (param i32 i64 i32) (result i32)
    (call $clock_time_get (local.get 0) (local.get 1) (local.get 2)))
  (func (export "poll_oneoff") (param i32 i32 i32 i32) (result i32)
    (call $poll_oneoff (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "path_open") (param i32 i32 i32 i32) (result i32)
    (call $path_open (i32.const 3) (i32.const 0) (local.get 0) (local.get 1) (local.get 2)
      (i64.const 2) (i64.const 2) (i32.const 0) (local.get 3))))"#;

struct Guest {
    store: Store<WasiCtx>,
    instance: Instance,
}

impl Guest {
    fn new() -> Guest {
        let engine = common::engine();
        let dir = common::scratch("corner");
        std::fs::write(dir.join("f.txt"), "x").unwrap();
        let mut b = WasiCtx::builder();
        b.arg("corner")
            .preopened_dir(&dir, "d", DirPerms::ReadWrite)
            .unwrap();
        let module = Module::new(engine, WAT).unwrap();
        let mut linker = Linker::new(engine);
        keel_wasi::add_to_linker(&mut linker, |c: &mut WasiCtx| c).unwrap();
        let mut store = Store::new(engine, b.build());
        let instance = linker.instantiate(&mut store, &module).unwrap();
        Guest { store, instance }
    }

    fn write(&mut self, at: usize, bytes: &[u8]) {
        let m = self.instance.get_memory(&mut self.store, "memory").unwrap();
        m.write(&mut self.store, at, bytes).unwrap();
    }

    fn iovec(&mut self, at: usize, buf: u32, len: u32) {
        let mut b = buf.to_le_bytes().to_vec();
        b.extend_from_slice(&len.to_le_bytes());
        self.write(at, &b);
    }

    fn call4(&mut self, name: &str, a: i32, b: i32, c: i32, d: i32) -> i32 {
        let f = self
            .instance
            .get_typed_func::<(i32, i32, i32, i32), i32>(&mut self.store, name)
            .unwrap();
        f.call(&mut self.store, (a, b, c, d)).unwrap()
    }

    fn call2(&mut self, name: &str, a: i32, b: i32) -> i32 {
        let f = self
            .instance
            .get_typed_func::<(i32, i32), i32>(&mut self.store, name)
            .unwrap();
        f.call(&mut self.store, (a, b)).unwrap()
    }
}

const END: i32 = 16 * 65536;

#[test]
fn bad_pointers_are_efault() {
    let mut g = Guest::new();
    g.iovec(0, 100, 4);
    // The iovec table itself outside memory.
    assert_eq!(g.call4("fd_write", 1, END - 4, 1, 200), EFAULT);
    assert_eq!(g.call4("fd_write", 1, -8, 1, 200), EFAULT);
    // A buffer that runs past the end.
    g.iovec(8, (END - 2) as u32, 4);
    assert_eq!(g.call4("fd_write", 1, 8, 1, 200), EFAULT);
    // The result pointer outside memory.
    assert_eq!(g.call4("fd_write", 1, 0, 1, END), EFAULT);
    // Absurd counts read past the end of memory.
    assert_eq!(g.call4("fd_write", 1, 0, 0x1000_0000, 200), EFAULT);
    assert_eq!(g.call2("args_get", END, 0), EFAULT);
    assert_eq!(g.call2("random_get", END - 8, 16), EFAULT);
    assert_eq!(g.call4("poll_oneoff", END - 40, 0, 1, 200), EFAULT);
    assert_eq!(g.call4("poll_oneoff", 0, 64, 0x0100_0000, 200), EFAULT);
    assert_eq!(g.call4("path_open", END - 2, 10, 0, 200), EFAULT);
    // Nothing crashed: a valid call still works.
    g.write(100, b"ok\n\n");
    assert_eq!(g.call4("fd_write", 1, 0, 1, 200), 0);
}

#[test]
fn iovec_edge_cases() {
    let mut g = Guest::new();
    // No iovecs, and an empty one: nothing written, success.
    assert_eq!(g.call4("fd_write", 1, 0, 0, 200), 0);
    g.iovec(0, 100, 0);
    assert_eq!(g.call4("fd_write", 1, 0, 1, 200), 0);
    // Iovecs that together exceed 4 GiB: EINVAL (each is in bounds).
    let count = 70_000u32;
    let table: Vec<u8> = (0..count)
        .flat_map(|_| {
            let mut e = 4096u32.to_le_bytes().to_vec();
            e.extend_from_slice(&65536u32.to_le_bytes());
            e
        })
        .collect();
    g.write(4096 + 65536, &[0; 16]);
    g.write(200_000, &table);
    assert_eq!(g.call4("fd_write", 1, 200_000, count as i32, 0), EINVAL);
    // Reading into overlapping buffers is allowed.
    g.iovec(0, 300, 8);
    g.iovec(8, 300, 8);
    assert_eq!(g.call4("fd_read", 0, 0, 2, 200), 0);
}

#[test]
fn bad_descriptors_and_missing_rights() {
    let mut g = Guest::new();
    g.iovec(0, 100, 1);
    assert_eq!(g.call4("fd_write", 99, 0, 1, 200), EBADF);
    assert_eq!(g.call4("fd_write", -1, 0, 1, 200), EBADF);
    assert_eq!(
        g.call4("fd_write", 0, 0, 1, 200),
        ENOTCAPABLE,
        "stdin is not writable"
    );
    assert_eq!(
        g.call4("fd_read", 1, 0, 1, 200),
        ENOTCAPABLE,
        "stdout is not readable"
    );
    assert_eq!(
        g.call4("fd_write", 3, 0, 1, 200),
        ENOTCAPABLE,
        "a directory is not writable"
    );
    assert_eq!(g.call2("fd_renumber", 1, 77), EBADF);
    assert_eq!(g.call2("fd_renumber", 77, 1), EBADF);
    let close = g
        .instance
        .get_typed_func::<i32, i32>(&mut g.store, "fd_close")
        .unwrap();
    assert_eq!(close.call(&mut g.store, 1).unwrap(), 0);
    assert_eq!(g.call4("fd_write", 1, 0, 1, 200), EBADF, "closed");
    let clock = g
        .instance
        .get_typed_func::<(i32, i64, i32), i32>(&mut g.store, "clock_time_get")
        .unwrap();
    assert_eq!(clock.call(&mut g.store, (42, 0, 0)).unwrap(), EINVAL);
}

#[test]
fn paths_must_be_utf8_and_rights_are_enforced() {
    let mut g = Guest::new();
    g.write(500, &[0xff, 0xfe, b'a']);
    assert_eq!(g.call4("path_open", 500, 3, 0, 200), EILSEQ);
    g.write(600, b"f.txt");
    assert_eq!(
        g.call4("path_open", 600, 5, 0, 200),
        0,
        "f.txt opens with FD_READ"
    );
}

#[test]
fn wasi_unstable_functions_work() {
    let mut g = Guest::new();
    g.write(100, b"x");
    g.iovec(0, 100, 1);
    assert_eq!(g.call4("old_fd_write", 1, 0, 1, 200), 0);
}

#[test]
fn a_module_without_memory_gets_an_error_not_a_crash() {
    let engine = common::engine();
    let module = Module::new(
        engine,
        r#"(module
            (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
            (func (export "_start") (drop (call $w (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 0)))))"#,
    )
    .unwrap();
    let mut linker = Linker::new(engine);
    keel_wasi::add_to_linker(&mut linker, |c: &mut WasiCtx| c).unwrap();
    let mut store = Store::new(engine, WasiCtx::builder().build());
    let i = linker.instantiate(&mut store, &module).unwrap();
    let err = i
        .get_typed_func::<(), ()>(&mut store, "_start")
        .unwrap()
        .call(&mut store, ())
        .unwrap_err();
    assert!(format!("{err:#}").contains("export its memory"), "{err:#}");
}

#[test]
fn a_mistyped_import_is_a_link_error() {
    let engine = common::engine();
    let module = Module::new(
        engine,
        r#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i64))))"#,
    )
    .unwrap();
    let mut linker = Linker::new(engine);
    keel_wasi::add_to_linker(&mut linker, |c: &mut WasiCtx| c).unwrap();
    let mut store = Store::new(engine, WasiCtx::builder().build());
    let err = linker.instantiate(&mut store, &module).unwrap_err();
    assert!(
        err.to_string().contains("incompatible import type"),
        "{err}"
    );
}

#[test]
fn proc_raise_of_a_fatal_signal_ends_the_guest() {
    let engine = common::engine();
    let module = Module::new(
        engine,
        r#"(module
            (import "wasi_snapshot_preview1" "proc_raise" (func $raise (param i32) (result i32)))
            (memory (export "memory") 1)
            (func (export "_start") (drop (call $raise (i32.const 15))) unreachable))"#,
    )
    .unwrap();
    let mut linker = Linker::new(engine);
    keel_wasi::add_to_linker(&mut linker, |c: &mut WasiCtx| c).unwrap();
    let mut store = Store::new(engine, WasiCtx::builder().build());
    let i = linker.instantiate(&mut store, &module).unwrap();
    let err = i
        .get_typed_func::<(), ()>(&mut store, "_start")
        .unwrap()
        .call(&mut store, ())
        .unwrap_err();
    assert!(format!("{err:#}").contains("raised signal 15"), "{err:#}");
    assert!(
        err.downcast_ref::<keel::Trap>().is_none(),
        "a signal, not the unreachable after it"
    );
}
