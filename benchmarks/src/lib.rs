//! Shared helpers for the SIREN-rs benches (`cargo bench -p siren-benchmarks`), and the
//! SIREN-rs side of the device check ([`device_check`], the `device-check` binary).

pub mod device_check;

use std::path::PathBuf;

/// The paper's Movies split shipped with the project (`data/amazon-movies`).
pub fn paper_movies_dir() -> Option<PathBuf> {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/amazon-movies");
    d.join("history.jsonl.gz").is_file().then_some(d)
}
