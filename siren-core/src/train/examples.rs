//! What every trainer takes and returns: the training examples, where a stage runs
//! ([`RunCtx`]) and its [`TrainReport`]. (The slots in `traits` take these types.)

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::TrainingConfig;

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

/// A training example whose CoT answer matched the label, with the teacher's reasoning.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CotExample {
    /// The prompt and label.
    pub example: Example,
    /// The whole reasoning block, `<think>…</think>`, as the stage-1 model wrote it.
    pub thinking: String,
}
