//! End-to-end tests across SIREN-rs crates live in `tests/tests/`. This library holds their
//! shared helpers.

use std::path::PathBuf;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The paper's Movies split shipped with the project (`data/amazon-movies`).
pub fn paper_movies_dir() -> Option<PathBuf> {
    let d = repo_root().join("data/amazon-movies");
    d.join("history.jsonl.gz").is_file().then_some(d)
}

/// The fetched assets folder (`assets/`, or `$SIREN_ASSETS`).
pub fn assets_dir() -> PathBuf {
    std::env::var_os("SIREN_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("assets"))
}
