//! Unix (Linux) support.

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub mod epoch_resume;
#[cfg(target_arch = "x86_64")]
pub mod lazy_entry;
pub mod signals;
pub mod thread;

pub use signals::install_signal_handlers;
