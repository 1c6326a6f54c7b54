use crate::Result;
use crate::data::Dataset;

/// Slot `dataset`: reads files into the in-memory data model.
///
/// Contract: deterministic for given params; every malformed record is an error naming the
/// file, the 1-based line and the field (or skipped and counted when the loader's
/// `on_bad_row = "skip"`); the returned dataset has a non-empty `history` and `valid` split.
pub trait DatasetLoader: Send + Sync {
    /// Loads the dataset and its splits.
    fn load(&self) -> Result<Dataset>;
}
