//! The error type of siren-core.

use std::path::PathBuf;

/// Result with [`CoreError`].
pub type Result<T, E = CoreError> = std::result::Result<T, E>;

/// Everything that can go wrong in siren-core and in plugins built on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// A plugin name that no linked plugin registered.
    #[error("unknown {slot} `{name}`; valid names: {}", fmt_names(valid))]
    UnknownPlugin {
        /// The slot, e.g. `topic-clusterer`.
        slot: &'static str,
        /// The name asked for.
        name: String,
        /// Every registered name for the slot, sorted.
        valid: Vec<String>,
    },
    /// Two plugins registered the same name in one slot.
    #[error(
        "{slot} `{name}` is registered twice (by {first} and by {second}); plugin names must be unique"
    )]
    DuplicatePlugin {
        /// The slot.
        slot: &'static str,
        /// The duplicated name.
        name: String,
        /// Source file of the first registration.
        first: &'static str,
        /// Source file of the second registration.
        second: &'static str,
    },
    /// A configuration problem: `location` is the dotted key or the file.
    #[error("config {location}: {message}")]
    Config {
        /// Where: a file, a dotted key such as `clusterer.params`, or `--set`.
        location: String,
        /// What was wrong and what was expected.
        message: String,
    },
    /// A malformed record in a data file.
    #[error("{}:{line}: {}{message}", path.display(), field.as_ref().map(|f| format!("field `{f}`: ")).unwrap_or_default())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
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
    /// Data that is well-formed but unusable (an empty dataset, a user too short to split...).
    #[error("{0}")]
    Data(String),
    /// A compute device that is not compiled in or does not work here.
    #[error("device `{name}`: {reason}")]
    Device {
        /// The device spec, e.g. `tch-cuda:0`.
        name: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// A numerical failure (NaN, divergence) or an invalid argument to an algorithm.
    #[error("{0}")]
    Numeric(String),
    /// JSON (de)serialisation of a run artifact.
    #[error("{}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
}

impl CoreError {
    /// Builds a [`CoreError::Config`].
    pub fn config(location: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Config {
            location: location.into(),
            message: message.into(),
        }
    }

    /// Builds a [`CoreError::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

fn fmt_names(names: &[String]) -> String {
    if names.is_empty() {
        "none (no plugin of this kind is linked into this binary)".to_string()
    } else {
        names.join(", ")
    }
}

/// Each engine error becomes the core variant of the same name, so messages and matches are the
/// same whether an error came from the engine or from siren-core.
impl From<siren_engine::EngineError> for CoreError {
    fn from(e: siren_engine::EngineError) -> Self {
        use siren_engine::EngineError as E;
        match e {
            E::Config { location, message } => Self::Config { location, message },
            E::Parse {
                path,
                line,
                field,
                message,
            } => Self::Parse {
                path,
                line,
                field,
                message,
            },
            E::Io { path, source } => Self::Io { path, source },
            E::Data(m) => Self::Data(m),
            E::Device { name, reason } => Self::Device { name, reason },
            E::Numeric(m) => Self::Numeric(m),
            E::Json { path, source } => Self::Json { path, source },
            // `EngineError` is non-exhaustive: a variant added later reads as its message.
            other => Self::Data(other.to_string()),
        }
    }
}
