use super::{AlignmentLoss, RunCtx, TrainReport};
use crate::Result;
pub use crate::train::CotExample;
use crate::train::{Policy, Teacher};

/// Slot `internalizer`: stage 2, teaches the answer-only policy what the CoT policy knows.
///
/// Contract: starts from the given policy (the stage-1 weights, with fresh adapters on the
/// sites the `lora-targets` slot selects), trains only those, reads the teacher's examples
/// and stored states (never evaluation data), checkpoints and resumes like a
/// [`super::PolicyTrainer`], and reports its losses. `align` is the `alignment-loss` slot;
/// methods without a hidden-state term ignore it.
pub trait Internalizer: Send + Sync {
    /// Trains `policy` to answer as the CoT `teacher` does, without the reasoning.
    fn internalize(
        &self,
        policy: &mut Policy,
        teacher: &Teacher,
        align: &dyn AlignmentLoss,
        ctx: &RunCtx,
    ) -> Result<TrainReport>;
}
