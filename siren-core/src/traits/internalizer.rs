use super::{AlignmentLoss, Example, RunCtx, TrainReport};
use crate::Result;
use crate::train::{Policy, Teacher};

/// A training example whose CoT answer matched the label, with the teacher's reasoning.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CotExample {
    /// The prompt and label.
    pub example: Example,
    /// The whole reasoning block, `<think>…</think>`, as the stage-1 model wrote it.
    pub thinking: String,
}

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
