//! Unix (Linux) support.

pub mod signals;
pub mod thread;

pub use signals::install_signal_handlers;
