use super::Embeddings;
use crate::Result;

/// The result of clustering `n` items into `k` topics.
#[derive(Debug, Clone, PartialEq)]
pub struct Topics {
    /// `k × dim` centers.
    pub centers: Embeddings,
    /// For each item, the index of its topic.
    pub assignment: Vec<usize>,
    /// For each topic, item indices sorted by distance to its center (nearest first), at most
    /// the `m` asked for.
    pub nearest: Vec<Vec<usize>>,
}

/// Slot `topic-clusterer`: groups item embeddings into topics.
///
/// Contract: deterministic for a given `seed`; returns exactly `k` centers when there are at
/// least `k` distinct items (an error otherwise); every item is assigned; `nearest[t]` holds
/// up to `m` items of the whole corpus nearest center `t`.
pub trait TopicClusterer: Send + Sync {
    /// Clusters `items` into `k` topics.
    fn fit(&self, items: &Embeddings, k: usize, m: usize, seed: u64) -> Result<Topics>;
}
