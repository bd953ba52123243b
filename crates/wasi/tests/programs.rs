//! C programs, compiled for `wasm32-wasi` with Zig, that call every WASI
//! preview 1 function and check the results.

mod common;

use common::{program, run, scratch};
use keel_wasi::{DirPerms, InputStream, MemoryInputPipe, WasiCtx};
use std::io::{Read, Write};

#[test]
fn file_system_functions() {
    let dir = scratch("fs");
    let mut b = WasiCtx::builder();
    b.arg("wasi_fs")
        .preopened_dir(&dir, "sandbox", DirPerms::ReadWrite)
        .unwrap();
    let out = run(&program("wasi_fs"), &mut b);
    out.assert_passed(0);
    // What the guest did is visible on the host, and only inside the dir.
    let content = std::fs::read(dir.join("file.txt")).unwrap();
    assert_eq!(content.len(), 4097);
    assert_eq!(&content[..5], b"HELLO");
    assert_eq!(content[4096], b'!');
    assert!(!dir.join("sub").exists());
    assert!(!dir.join("hard.txt").exists());
}

#[test]
fn args_env_clocks_random_poll_stdin_exit() {
    let mut b = WasiCtx::builder();
    b.args(&["wasi_misc", "one", "two"])
        .env("A", "1")
        .env("B", "two")
        .stdin(InputStream::Memory(MemoryInputPipe::new(
            "line one\nline two\n",
        )));
    let out = run(&program("wasi_misc"), &mut b);
    out.assert_passed(7);
}

#[test]
fn sockets_accept_recv_send_shutdown() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(b"hello socket").unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        reply
    });
    let mut b = WasiCtx::builder();
    b.arg("wasi_sock").preopened_socket(listener);
    let out = run(&program("wasi_sock"), &mut b);
    out.assert_passed(0);
    assert_eq!(client.join().unwrap(), "HELLO SOCKET");
}
