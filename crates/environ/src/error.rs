//! Errors found while reading a module.

use thiserror::Error;

/// A module could not be accepted: it is malformed, invalid, or uses a
/// feature that is switched off or not implemented.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ModuleError {
    /// The bytes are not a well-formed or valid module, as `wasmparser`
    /// reports it. `offset` is the byte offset in the module.
    #[error("{message} (at offset 0x{offset:x})")]
    Invalid {
        /// What is wrong.
        message: String,
        /// Where in the binary it was found.
        offset: u64,
    },
    /// The module is valid but uses something Keel does not implement.
    #[error("unsupported: {message} (at offset 0x{offset:x})")]
    Unsupported {
        /// What is not supported.
        message: String,
        /// Where in the binary it was found.
        offset: u64,
    },
    /// A limit of the implementation was exceeded (too many functions, a
    /// table too large for this configuration, ...).
    #[error("implementation limit exceeded: {0}")]
    Limit(String),
}

impl From<wasmparser::BinaryReaderError> for ModuleError {
    fn from(e: wasmparser::BinaryReaderError) -> Self {
        ModuleError::Invalid {
            message: e.message().to_string(),
            offset: e.offset(),
        }
    }
}

impl ModuleError {
    /// Builds an [`ModuleError::Unsupported`] error.
    pub fn unsupported(message: impl Into<String>, offset: u64) -> Self {
        ModuleError::Unsupported {
            message: message.into(),
            offset,
        }
    }
}

/// Result type of this crate.
pub type ModuleResult<T> = Result<T, ModuleError>;
