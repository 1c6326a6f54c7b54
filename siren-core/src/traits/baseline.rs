use crate::Result;
use crate::data::{Dataset, Interaction};

/// Slot `rating-baseline`: a classic rating predictor.
///
/// Contract: [`RatingBaseline::fit`] learns only from `fit` (never from the evaluated split),
/// is deterministic for a given `seed`, and returns a model whose predictions are finite and in
/// `[1, 5]` for every user and item index of `dataset`, including ones absent from `fit`.
pub trait RatingBaseline: Send + Sync {
    /// Fits the model on `fit` interactions.
    fn fit(
        &self,
        dataset: &Dataset,
        fit: &[Interaction],
        seed: u64,
    ) -> Result<Box<dyn RatingModel>>;
}

/// A fitted rating predictor.
pub trait RatingModel: Send + Sync {
    /// Predicted rating of `item` by `user` (indices into the dataset), in `[1, 5]`.
    fn predict(&self, user: u32, item: u32) -> f32;

    /// A score that orders one user's items (higher first) when the model retrieves
    /// candidates: the prediction before it is clipped to the scale, so that items above the
    /// top of the scale stay ordered. Default: [`RatingModel::predict`].
    fn score(&self, user: u32, item: u32) -> f32 {
        self.predict(user, item)
    }
}
