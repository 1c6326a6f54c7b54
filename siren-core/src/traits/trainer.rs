use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::tensor::Tensor;

use super::Reward;
use crate::Result;

/// One training prompt with its true rating.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Example {
    /// Stable id (user and item).
    pub id: String,
    /// Rendered prompt (chat template applied).
    pub prompt: String,
    /// True rating.
    pub rating: f32,
}

/// Sampling options for [`Policy::generate`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GenerateOptions {
    /// Maximum new tokens.
    pub max_new_tokens: usize,
    /// 0 means greedy.
    pub temperature: f32,
    /// Nucleus mass.
    pub top_p: f32,
    /// Random seed.
    pub seed: u64,
}

/// What a trainer needs from a language-model policy; implemented by the decoder engine.
pub trait Policy: Send {
    /// Generates one completion per prompt.
    fn generate(&mut self, prompts: &[String], options: &GenerateOptions) -> Result<Vec<String>>;
    /// Per-token log-probabilities `[batch, completion_len]` of `completions` given `prompts`,
    /// differentiable with respect to the trainable parameters.
    fn log_probs(&self, prompts: &[String], completions: &[String]) -> Result<Tensor<2>>;
    /// Hidden states `[layers, batch, hidden]` of layers `1..=L` at the last token of each text.
    fn last_hidden_states(&self, texts: &[String]) -> Result<Tensor<3>>;
}

/// Where and how a stage runs.
#[derive(Debug, Clone)]
pub struct RunCtx {
    /// The run folder (`runs/<name>/`).
    pub run_dir: PathBuf,
    /// Seed for every random choice.
    pub seed: u64,
    /// Tensor device.
    pub device: burn::tensor::Device,
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
        policy: &mut dyn Policy,
        examples: &[Example],
        reward: &dyn Reward,
        ctx: &RunCtx,
    ) -> Result<TrainReport>;
}
