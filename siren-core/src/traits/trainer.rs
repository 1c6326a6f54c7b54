use std::collections::BTreeMap;
use std::path::PathBuf;

use super::Reward;
use crate::Result;
use crate::train::{Policy, TrainingConfig};

/// One training prompt with its true rating.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Example {
    /// Stable id (user and item).
    pub id: String,
    /// Rendered prompt (chat template applied).
    pub prompt: String,
    /// True rating.
    pub rating: f32,
    /// A rationale built from what the prompt shows ([`crate::prompt::rationale`]), for
    /// trainers that learn to reason from built rationales (`cot-sft`, `source = "built"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rationale: Option<String>,
}

/// Where and how a stage runs.
#[derive(Debug, Clone)]
pub struct RunCtx {
    /// The run folder (`runs/<name>/`).
    pub run_dir: PathBuf,
    /// Seed for every random choice.
    pub seed: u64,
    /// Tensor device (plain; trainers move the policy to its autodiff twin).
    pub device: burn::tensor::Device,
    /// Settings shared by every trainer (`[training]`).
    pub training: TrainingConfig,
    /// Continue from the newest checkpoint under `run_dir` (else a folder that already holds
    /// checkpoints is an error, so that no training is overwritten).
    pub resume: bool,
}

/// Summary of a training stage.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainReport {
    /// Optimizer steps taken.
    pub steps: usize,
    /// Final metrics by name.
    pub metrics: BTreeMap<String, f64>,
}

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
