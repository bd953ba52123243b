// The kernels written in C (`crates/test-programs/programs`), each built
// for wasm with Zig and, for the `native/<kernel>` figures, natively with
// the same compiler. Shared by `build.rs` (which builds the native
// libraries) and the benchmark (`include!`d by both, so plain comments).

#[allow(dead_code)] // build.rs and the benchmark each read some fields
/// A C kernel: `programs/<source>.c`, exporting `run() -> i64`.
pub struct CKernel {
    /// The figure name (`run/<name>`).
    pub name: &'static str,
    /// The source file's stem.
    pub source: &'static str,
    /// Flags for the wasm build.
    pub wasm_flags: &'static [&'static str],
    /// Flags for the native build (for the build machine's CPU).
    pub native_flags: &'static [&'static str],
    /// What `run` is called in the native library.
    pub symbol: &'static str,
}

pub const C_KERNELS: &[CKernel] = &[
    CKernel {
        name: "simd-image",
        source: "bench_simd",
        wasm_flags: &["-O3", "-msimd128"],
        native_flags: &["-O3", "-ffp-contract=off"],
        symbol: "keel_native_simd_image",
    },
    CKernel {
        name: "matmul",
        source: "bench_matmul",
        wasm_flags: &["-O2"],
        native_flags: &["-O2", "-ffp-contract=off"],
        symbol: "keel_native_matmul",
    },
    CKernel {
        name: "hash",
        source: "bench_hash",
        wasm_flags: &["-O2"],
        native_flags: &["-O2", "-ffp-contract=off"],
        symbol: "keel_native_hash",
    },
    CKernel {
        name: "sort",
        source: "bench_sort",
        wasm_flags: &["-O2"],
        native_flags: &["-O2", "-ffp-contract=off"],
        symbol: "keel_native_sort",
    },
    CKernel {
        name: "interp",
        source: "bench_interp",
        wasm_flags: &["-O2"],
        native_flags: &["-O2", "-ffp-contract=off"],
        symbol: "keel_native_interp",
    },
    CKernel {
        name: "tail-interp",
        source: "bench_tail_interp",
        wasm_flags: &["-O2", "-mtail-call"],
        native_flags: &["-O2", "-ffp-contract=off"],
        symbol: "keel_native_tail_interp",
    },
];
