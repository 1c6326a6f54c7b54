use crate::Result;

/// Row-major `n × dim` matrix of embeddings.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    /// Number of rows.
    pub n: usize,
    /// Width of each row.
    pub dim: usize,
    /// `n * dim` values, row-major.
    pub data: Vec<f32>,
}

impl Embeddings {
    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

/// Slot `text-encoder`: item text → embedding.
///
/// Contract: returns one row per input text, in order; rows are L2-normalised (norm 1 within
/// 1e-4, or all-zero for empty text); texts longer than the encoder's maximum length are
/// truncated, never an error; the same text gives the same row regardless of batch.
pub trait TextEncoder: Send + Sync {
    /// Encodes `texts`.
    fn encode(&self, texts: &[String]) -> Result<Embeddings>;
    /// A key identifying the encoder and its weights, for embedding caches.
    fn cache_key(&self) -> String;
}
