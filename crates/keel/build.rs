//! Builds the few lines of C that Rust cannot express: the setjmp must be
//! called from the frame it returns into.

fn main() {
    println!("cargo:rerun-if-changed=src/vm/sys/unix/setjmp.c");
    cc::Build::new()
        .file("src/vm/sys/unix/setjmp.c")
        .warnings(true)
        .compile("keel_setjmp");
}
