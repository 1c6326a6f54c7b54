/// The parts of a reward.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct RewardParts {
    /// Format term (e.g. ±1 for the `<think>…</think><answer>…</answer>` structure).
    pub format: f32,
    /// Rating term.
    pub rating: f32,
    /// Parsed rating, when the answer parsed.
    pub predicted: Option<f32>,
}

impl RewardParts {
    /// Total reward.
    pub fn total(&self) -> f32 {
        self.format + self.rating
    }
}

/// Slot `reward`: scores one completion for GRPO.
///
/// Contract: pure and deterministic; never panics on any string; finite output.
pub trait Reward: Send + Sync {
    /// Scores `completion` against the true rating `truth`.
    fn score(&self, completion: &str, truth: f32) -> RewardParts;
}
