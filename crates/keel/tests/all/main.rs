//! Integration tests of the embedding API. One binary, one module per topic.

mod api;
mod artifacts;
mod async_calls;
mod bad_input;
#[cfg(target_arch = "x86_64")]
mod exceptions;
mod externref;
mod function_references;
#[cfg(target_arch = "x86_64")]
mod lazy_compilation;
mod lazy_tables;
mod limits;
mod memory_types;
mod metering;
mod pooling;
mod simd_c;
mod tail_calls;
mod traps;
