//! File helpers shared by every layer (the engine, plots, run folders): nothing here depends
//! on the rest of the crate but its error type.

use std::path::Path;

use crate::{CoreError, Result};

/// Writes `bytes` to `path` atomically (temporary file + rename), so a crash never leaves a
/// half-written artifact.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| CoreError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| CoreError::io(path, e))
}
