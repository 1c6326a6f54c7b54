use super::Reward;
use crate::Result;
use crate::train::Policy;
pub use crate::train::{Example, RunCtx, TrainReport};

/// Slot `policy-trainer`: stage 1 (answer-only SFT, CoT SFT, GRPO).
///
/// Contract: deterministic for `ctx.seed`; checkpoints under `ctx.run_dir` and resumes from
/// them; a NaN/inf loss stops with an error and keeps the last good checkpoint.
pub trait PolicyTrainer: Send + Sync {
    /// Trains `policy` on `examples`, scoring samples with `reward` where the method samples.
    fn train(
        &self,
        policy: &mut Policy,
        examples: &[Example],
        reward: &dyn Reward,
        ctx: &RunCtx,
    ) -> Result<TrainReport>;
}
