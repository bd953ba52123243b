//! Operating-system specific code: signal handlers, alternate signal
//! stacks, thread stack bounds. The one module to port for a new platform.

#[cfg(unix)]
pub mod unix;
#[cfg(unix)]
pub use unix::*;
