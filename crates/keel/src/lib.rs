//! Keel: a WebAssembly runtime that compiles with Cranelift and runs
//! untrusted code in a sandbox.
//!
//! The API follows Wasmtime's names and signatures where they overlap, so a
//! host program ports by renaming the crate:
//!
//! ```
//! use keel::{Caller, Engine, Linker, Module, Store};
//!
//! fn main() -> keel::Result<()> {
//!     let engine = Engine::default();
//!     let module = Module::new(
//!         &engine,
//!         r#"(module
//!              (import "host" "log" (func $log (param i32)))
//!              (func (export "run") (param i32) (result i32)
//!                (call $log (local.get 0))
//!                (i32.mul (local.get 0) (i32.const 2))))"#,
//!     )?;
//!     let mut linker = Linker::new(&engine);
//!     linker.func_wrap("host", "log", |mut caller: Caller<'_, Vec<i32>>, x: i32| {
//!         caller.data_mut().push(x);
//!     })?;
//!     let mut store = Store::new(&engine, Vec::new());
//!     let instance = linker.instantiate(&mut store, &module)?;
//!     let run = instance.get_typed_func::<i32, i32>(&mut store, "run")?;
//!     assert_eq!(run.call(&mut store, 21)?, 42);
//!     assert_eq!(store.data(), &[21]);
//!     Ok(())
//! }
//! ```
//!
//! Traps are errors carrying a [`Trap`] and a [`WasmBacktrace`]; the host
//! process always survives them. See `ARCHITECTURE.md` for how the pieces
//! fit together.

// The compiler holds the `unsafe` fence: only the modules below marked
// `#[allow(unsafe_code)]` may contain `unsafe`, each for the reason given
// (`crates/cli/tests/tidy.rs` checks that no other `allow` appears).
#![deny(unsafe_code)]

mod allocation;
mod artifact;
mod config;
mod engine;
mod exnref;
mod externals;
// `ExternRef::from_raw`: a handle from a pointer wasm handed back, and the
// store set's raw counts of the boxes wasm may hold.
#[allow(unsafe_code)]
mod externref;
// The host-call ABI: native calls into wasm, the array entries of host
// functions, and values from raw slots.
#[allow(unsafe_code)]
mod func;
// Creating an instance's context from checked imports; handles to what an
// instance owns.
#[allow(unsafe_code)]
mod instance;
mod instance_pre;
mod lazy;
mod limits;
mod linker;
mod metering;
// Loading precompiled artifacts, whose code is trusted as the compiler's.
#[allow(unsafe_code)]
mod module;
// Raw accessors over what the store owns, and handles from raw pointers.
#[allow(unsafe_code)]
mod store;
mod trap;
mod types;
mod values;
// The runtime core: memory mappings, generated code, signals, contexts.
#[allow(unsafe_code)]
mod vm;

pub use allocation::{InstanceAllocationStrategy, PoolingAllocationConfig};
pub use anyhow::{self, Error, bail, ensure, format_err};
pub use artifact::ArtifactError;
pub use config::{Config, OptLevel};
pub use engine::{Engine, Precompiled};
pub use exnref::{ExnRef, ThrownException};
pub use externals::{Extern, Global, Memory, MemoryAccessError, Table, Tag};
pub use externref::ExternRef;
pub use func::{
    Caller, Func, IntoFunc, TypedFunc, WasmParams, WasmResults, WasmRet, WasmTy, WasmTyList,
};
pub use instance::{Export, Instance};
pub use instance_pre::InstancePre;
pub use limits::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
pub use linker::Linker;
pub use metering::UpdateDeadline;
pub use module::{ExportType, ImportType, Module};
pub use store::{AsContext, AsContextMut, Store, StoreContext, StoreContextMut};
pub use trap::{FrameInfo, Trap, WasmBacktrace};
pub use types::{
    ExternType, FuncType, FuncTypeId, GlobalType, HeapType, MemoryType, MemoryTypeBuilder,
    Mutability, RefType, TableType, TagType, ValType,
};
pub use values::{Ref, V128, Val};

/// `Result` with Keel's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
