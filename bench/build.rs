//! Builds the C kernels natively (with the same Zig C compiler that builds
//! them for wasm), for the `native/<kernel>` figures.

include!("src/c_kernels.rs");

fn main() {
    for kernel in C_KERNELS {
        let dir =
            keel_test_programs::compile_native(kernel.source, kernel.symbol, kernel.native_flags);
        println!("cargo:rustc-link-search=native={}", dir.display());
        println!("cargo:rustc-link-lib=static={}", kernel.symbol);
    }
    println!("cargo:rerun-if-changed=src/c_kernels.rs");
    println!("cargo:rerun-if-changed=../crates/test-programs/programs");
}
