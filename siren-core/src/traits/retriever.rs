use crate::Result;
use crate::data::{Dataset, Interaction};

/// Slot `retriever`: proposes candidate items for a user from implicit feedback (which items
/// users interacted with, not the ratings they gave), for reranking.
///
/// Contract: [`Retriever::fit`] learns only from `fit` (never from the evaluated split), is
/// deterministic for a given `seed`, and returns a model that gives a finite score to every
/// item of `dataset` for every user, including users and items absent from `fit`. Excluding
/// the items a user has already seen is the caller's work
/// ([`crate::stages::rank::Candidates`]), so every retriever excludes them the same way.
pub trait Retriever: Send + Sync {
    /// Fits the model on the interactions in `fit`.
    fn fit(
        &self,
        dataset: &Dataset,
        fit: &[Interaction],
        seed: u64,
    ) -> Result<Box<dyn RetrievalModel>>;
}

/// A fitted retriever.
pub trait RetrievalModel: Send + Sync {
    /// Writes `user`'s score of every item into `scores` (one per item of the dataset,
    /// `scores.len() == dataset.items.len()`); higher is proposed first.
    fn scores(&self, user: u32, scores: &mut [f32]);
}
