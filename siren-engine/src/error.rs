//! The engine's error type. siren-core turns each variant into its own variant of the same name
//! (`impl From<EngineError> for EngineError`), so messages read the same at every layer.

use std::path::PathBuf;

/// Result with [`EngineError`].
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// What can go wrong while loading, running or saving a decoder.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// A model configuration problem: `location` is the file or the key.
    #[error("config {location}: {message}")]
    Config {
        /// Where: a file such as `config.json`, or a key.
        location: String,
        /// What was wrong and what was expected.
        message: String,
    },
    /// A malformed record in a file (a GGUF header, a tokenizer file).
    #[error("{}:{line}: {}{message}", path.display(), field.as_ref().map(|f| format!("field `{f}`: ")).unwrap_or_default())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number (0 where the file has no lines).
        line: usize,
        /// The offending field, when one is to blame.
        field: Option<String>,
        /// What was found and what was expected.
        message: String,
    },
    /// A file that could not be opened, read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Well-formed but unusable input (a missing tensor, a wrong shape, an empty batch...).
    #[error("{0}")]
    Data(String),
    /// A compute device that cannot run what was asked.
    #[error("device `{name}`: {reason}")]
    Device {
        /// The device.
        name: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// A numerical failure or an invalid argument to an algorithm.
    #[error("{0}")]
    Numeric(String),
    /// JSON of a model file (`config.json`, `adapter_config.json`, `tokenizer_config.json`).
    #[error("{}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
}

impl EngineError {
    /// Builds an [`EngineError::Config`].
    pub fn config(location: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Config {
            location: location.into(),
            message: message.into(),
        }
    }

    /// Builds an [`EngineError::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
