//! Shared facts of the Keel WebAssembly runtime.
//!
//! This crate is the leaf that both the compiler (`keel-cranelift`) and the
//! runtime (`keel`) depend on; they never depend on each other. It holds:
//!
//! - [`Module`]: what a parsed and validated module declares (types, imports,
//!   exports, segments, names), produced by [`ModuleParser`];
//! - typed indices ([`FuncIndex`], [`DefinedFuncIndex`], ...) that keep
//!   imported and defined entities apart;
//! - [`VMOffsets`]: the one definition of the per-instance context layout
//!   that generated code and the runtime agree on;
//! - [`TrapKind`] and the [`builtins`] list of runtime entry points;
//! - [`CompiledModuleInfo`]: the plain-data output of compilation.
//!
//! Nothing here touches the host: no `unsafe`, no memory mapping, no code
//! generation.

#![forbid(unsafe_code)]

mod artifact;
pub mod builtins;
mod code_tables;
mod const_expr;
mod error;
mod indices;
mod module;
mod parse;
mod trap;
mod tunables;
mod types;
mod vmoffsets;

pub use artifact::*;
pub use code_tables::*;
pub use const_expr::*;
pub use error::*;
pub use indices::*;
pub use module::*;
pub use parse::*;
pub use trap::*;
pub use tunables::*;
pub use types::*;
pub use vmoffsets::*;

pub use cranelift_entity::{EntityRef, PrimaryMap, SecondaryMap};
pub use wasmparser;

/// WebAssembly page size in bytes (64 KiB).
pub const WASM_PAGE_SIZE: u64 = 65536;
/// The largest number of pages a 32-bit memory may have (4 GiB).
pub const WASM32_MAX_PAGES: u64 = 65536;
