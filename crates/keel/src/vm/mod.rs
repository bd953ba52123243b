//! The runtime core: everything that touches raw memory, generated code or
//! signals. It holds nearly all of Keel's `unsafe` code; the public API
//! above it reaches the machine only through the small types here (the few
//! API modules allowed `unsafe` are listed in `lib.rs`).
//!
//! The runtime never depends on the API layer nor on the compiler
//! (`crates/cli/tests/tidy.rs` checks its paths): where it must call up
//! into a store, the store installs a
//! [`libcalls::StoreHooks`] in its [`vmcontext::VMStoreContext`].
//!
//! - [`mmap`]: anonymous mappings.
//! - [`memory`], [`table`]: linear memories and tables;
//!   [`memory_image`]: copy-on-write initial contents of memories.
//! - [`pool`]: the pooling allocator's slots; [`spare_memories`]: released
//!   reservations of on-demand memories, kept for the next one.
//! - [`vmcontext`]: the structs generated code shares with the runtime.
//! - [`instance`]: an instance's context and initialization.
//! - [`code_memory`], [`code_registry`]: loaded code and its lookup tables;
//!   [`lazy`]: functions compiled at their first call.
//! - [`traphandlers`], [`sys`]: entering wasm, signals, unwinding.
//! - [`libcalls`]: builtins generated code calls.
//! - [`epoch`]: the epoch counter, store deadlines and interrupt words.
//! - [`externref`]: externref boxes and their raw reference counts.
//! - [`exception`]: exception objects, and the jump to a landing pad.
//! - [`fiber`]: stacks of their own for async calls.

pub mod code_memory;
pub mod code_registry;
pub mod epoch;
pub mod exception;
pub mod externref;
pub mod fiber;
pub mod instance;
pub mod lazy;
pub mod libcalls;
pub mod memory;
pub mod memory_image;
pub mod mmap;
pub mod pool;
pub mod spare_memories;
pub mod sys;
pub mod table;
pub mod traphandlers;
pub mod val_raw;
pub mod vmcontext;

/// Whether wasm can keep its fuel in a register here: the trap handler
/// reads that register (`r15`) back from the signal context (x86-64
/// Linux). Elsewhere fuel lives in the store between calls.
pub fn fuel_in_register_supported() -> bool {
    cfg!(all(target_os = "linux", target_arch = "x86_64"))
}

/// Whether epochs can be checked by fault and signal here (see
/// `vm/epoch.rs`): the fault and signal handlers can send the thread to
/// `traphandlers::epoch_check_resume` (x86-64 Linux), and the compiler
/// never turns float rounding into a call out of wasm code (SSE4.1).
/// Elsewhere epochs are checked by the interrupt word.
pub fn epoch_by_signal_supported() -> bool {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        std::is_x86_feature_detected!("sse4.1")
    }
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    {
        false
    }
}

pub use instance::{Allocation, Imports, Instance, LoadedModule, SharedFunctionImports};
pub use memory::LinearMemory;
pub use table::Table;
pub use val_raw::ValRaw;
