//! Every `wasi_snapshot_preview1` function is implemented, and each is
//! called by at least one test program or corner-case test.

mod common;

use keel::Linker;
use keel_wasi::WasiCtx;

/// The whole preview 1 interface.
const PREVIEW1: &[&str] = &[
    "args_get",
    "args_sizes_get",
    "environ_get",
    "environ_sizes_get",
    "clock_res_get",
    "clock_time_get",
    "fd_advise",
    "fd_allocate",
    "fd_close",
    "fd_datasync",
    "fd_fdstat_get",
    "fd_fdstat_set_flags",
    "fd_fdstat_set_rights",
    "fd_filestat_get",
    "fd_filestat_set_size",
    "fd_filestat_set_times",
    "fd_pread",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "fd_pwrite",
    "fd_read",
    "fd_readdir",
    "fd_renumber",
    "fd_seek",
    "fd_sync",
    "fd_tell",
    "fd_write",
    "path_create_directory",
    "path_filestat_get",
    "path_filestat_set_times",
    "path_link",
    "path_open",
    "path_readlink",
    "path_remove_directory",
    "path_rename",
    "path_symlink",
    "path_unlink_file",
    "poll_oneoff",
    "proc_exit",
    "proc_raise",
    "sched_yield",
    "random_get",
    "sock_accept",
    "sock_recv",
    "sock_send",
    "sock_shutdown",
];

fn imports(wasm: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        if let Ok(wasmparser::Payload::ImportSection(reader)) = payload {
            for import in reader.into_imports().flatten() {
                if import.module == keel_wasi::PREVIEW1 {
                    names.push(import.name.to_string());
                }
            }
        }
    }
    names
}

#[test]
fn every_function_is_defined() {
    let engine = common::engine();
    let mut linker = Linker::new(engine);
    keel_wasi::add_to_linker(&mut linker, |c: &mut WasiCtx| c).unwrap();
    let mut store = keel::Store::new(engine, WasiCtx::builder().build().unwrap());
    for name in PREVIEW1 {
        assert!(
            linker.get(&mut store, keel_wasi::PREVIEW1, name).is_some(),
            "{name} is not defined"
        );
    }
    assert_eq!(PREVIEW1.len(), 46);
}

#[test]
fn the_async_linker_defines_the_same_functions_with_the_same_types() {
    let engine = common::engine();
    let mut sync = Linker::new(engine);
    keel_wasi::add_to_linker(&mut sync, |c: &mut WasiCtx| c).unwrap();
    let mut asynchronous = Linker::new(engine);
    keel_wasi::add_to_linker_async(&mut asynchronous, |c: &mut WasiCtx| c).unwrap();
    let mut store = keel::Store::new(engine, WasiCtx::builder().build().unwrap());
    for module in [keel_wasi::PREVIEW1, keel_wasi::UNSTABLE] {
        for name in PREVIEW1 {
            let a = sync
                .get(&mut store, module, name)
                .and_then(|e| e.into_func());
            let b = asynchronous
                .get(&mut store, module, name)
                .and_then(|e| e.into_func());
            match (a, b) {
                (Some(a), Some(b)) => {
                    assert_eq!(a.ty(&store), b.ty(&store), "{module}::{name}")
                }
                (None, None) => {}
                (a, b) => panic!(
                    "{module}::{name}: sync linker {}, async linker {}",
                    a.is_some(),
                    b.is_some()
                ),
            }
        }
    }
}

#[test]
fn every_function_is_exercised_by_a_test_program() {
    let mut used: Vec<String> = Vec::new();
    for program in ["wasi_fs", "wasi_misc", "wasi_sock", "wasi_escape"] {
        used.extend(imports(&common::program(program)));
    }
    let missing: Vec<&&str> = PREVIEW1
        .iter()
        .filter(|f| !used.iter().any(|u| u == *f))
        .collect();
    assert!(
        missing.is_empty(),
        "never called by a test program: {missing:?}"
    );
}
