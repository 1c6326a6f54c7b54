//! Dataset loaders, registered in the `dataset` slot:
//! [`siren_jsonl`] (the paper's preprocessed split), [`amazon2023`] (raw Amazon Reviews 2023)
//! and [`movielens`] (RecBole's atomic `.inter` / `.item` files).

pub mod amazon2023;
pub mod movielens;
pub mod siren_jsonl;

use std::path::{Path, PathBuf};

use crate::data::io::OnBadRow;
use crate::data::{Dataset, Interaction, process};
use crate::{CoreError, Result};

/// Checks a rating is finite and in `[1, 5]`.
pub(crate) fn check_rating(r: f64) -> std::result::Result<f32, String> {
    if r.is_finite() && (1.0..=5.0).contains(&r) {
        Ok(r as f32)
    } else {
        Err(format!("rating {r} is outside [1, 5]"))
    }
}

/// The first of `candidates` that exists, or an error listing them all.
pub(crate) fn first_existing(candidates: &[PathBuf]) -> Result<PathBuf> {
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            let list: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
            CoreError::io(
                candidates.first().cloned().unwrap_or_default(),
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("file not found (looked for {})", list.join(", ")),
                ),
            )
        })
}

/// Checks a `balance_ratio` parameter (finite, ≥ 1).
pub(crate) fn check_balance_ratio(ratio: f64) -> Result<()> {
    if ratio.is_finite() && ratio >= 1.0 {
        Ok(())
    } else {
        Err(CoreError::config(
            "params of dataset: balance_ratio",
            format!("must be a finite number ≥ 1, got {ratio}"),
        ))
    }
}

/// Checks that `path` is an existing file, with an error naming it.
pub(crate) fn require_file(path: &Path) -> Result<()> {
    if path.is_file() {
        Ok(())
    } else {
        Err(CoreError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "file not found"),
        ))
    }
}

/// Shared processing of raw interactions: optional balancing, k-core, leave-last-out, compact.
pub(crate) struct Processing {
    pub k_core: usize,
    pub balance: bool,
    pub balance_ratio: f64,
    pub seed: u64,
    pub min_history: usize,
}

impl Processing {
    pub(crate) fn apply(&self, ds: &mut Dataset, raw: Vec<Interaction>) -> Result<()> {
        let n_raw = raw.len();
        let mut xs = raw;
        if self.balance {
            xs = process::balance(xs, self.balance_ratio, self.seed)?;
        }
        xs = process::k_core(xs, self.k_core);
        if xs.is_empty() {
            return Err(CoreError::Data(format!(
                "dataset `{}` is empty after filtering ({n_raw} interactions read, k_core = {}, \
                 balance = {})",
                ds.name, self.k_core, self.balance
            )));
        }
        tracing::info!(
            "{}: {} of {n_raw} interactions kept after processing",
            ds.name,
            xs.len()
        );
        process::leave_last_out(ds, xs, self.min_history)?;
        process::compact(ds);
        Ok(())
    }
}

/// The configured dataset name, or the file/folder name.
pub(crate) fn dataset_name(p: &Option<String>, fallback: &Path) -> String {
    p.clone().unwrap_or_else(|| {
        fallback
            .file_stem()
            .and_then(|s| s.to_str())
            .map(|s| s.trim_end_matches(".jsonl").to_string())
            .unwrap_or_else(|| "dataset".to_string())
    })
}

/// Default for `on_bad_row` fields.
pub(crate) fn default_on_bad_row() -> OnBadRow {
    OnBadRow::Error
}
