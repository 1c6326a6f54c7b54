use super::{Example, RunCtx, TrainReport};
use crate::Result;
use crate::train::Policy;

/// A training example whose CoT answer matched the label, with the teacher's reasoning.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CotExample {
    /// The prompt and label.
    pub example: Example,
    /// The thinking text between `<think>` and `</think>`.
    pub thinking: String,
}

/// Slot `internalizer`: stage 2, teaches the answer-only policy what the CoT policy knows.
///
/// Contract: starts from the given policy (the stage-1 checkpoint), trains only the adapters
/// its LoRA targets select, never reads evaluation data, and reports its losses.
pub trait Internalizer: Send + Sync {
    /// Trains `policy` on `examples`.
    fn internalize(
        &self,
        policy: &mut Policy,
        examples: &[CotExample],
        ctx: &RunCtx,
    ) -> Result<TrainReport>;
}
