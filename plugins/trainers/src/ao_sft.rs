//! `ao-sft`: answer-only supervised fine-tuning. With `target = "answer"` (default) the input
//! is the prompt followed by an empty reasoning block and an open answer tag
//! ([`siren_core::answer::AO_SUFFIX`]) and the loss is the token-mean cross-entropy of the
//! rating (`4`, `4.5`) and, by default, the closing `</answer>` tag. With `target = "format"`
//! the input is the bare prompt and the target the whole answer in the tag format, starting
//! with the answer-only suffix, `\n<think>\n</think>\n<answer>4</answer>` (so a model that
//! writes it reads, at `<answer>`, exactly what answer-only evaluation feeds it): a format
//! warm start for models too small to
//! follow the format from the instruction alone (GRPO learns nothing while every sample
//! misses the format: all rewards are equal).

use serde::{Deserialize, Serialize};
use siren_core::answer::{AO_SUFFIX, rating_text};
use siren_core::train::Policy;
use siren_core::traits::{Example, PolicyTrainer, Reward, RunCtx, TrainReport};
use siren_core::{Plugin, Result};

/// Parameters of `ao-sft`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AoSftParams {
    /// Also learn the closing `</answer>` tag (default true), so that generation stops there.
    pub close_tag: bool,
    /// `answer` (after the answer-only suffix) or `format` (the whole tagged answer).
    pub target: Target,
}

/// What `ao-sft` learns to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// The rating after prompt + `AO_SUFFIX`.
    Answer,
    /// `<think>\n</think>\n<answer>r</answer>` after the bare prompt.
    Format,
}

impl Default for AoSftParams {
    fn default() -> Self {
        Self {
            close_tag: true,
            target: Target::Answer,
        }
    }
}

/// The `ao-sft` trainer.
#[derive(Debug, Clone)]
pub struct AoSft {
    p: AoSftParams,
}

impl Plugin for AoSft {
    type Params = AoSftParams;
    const SUMMARY: &'static str =
        "answer-only SFT: cross-entropy of the rating after an empty <think></think>";
    fn from_params(p: AoSftParams) -> Result<Self> {
        Ok(Self { p })
    }
}

siren_core::register_trainer!("ao-sft", AoSft);

impl PolicyTrainer for AoSft {
    fn train(
        &self,
        policy: &mut Policy,
        examples: &[Example],
        _reward: &dyn Reward,
        ctx: &RunCtx,
    ) -> Result<TrainReport> {
        let (inputs, targets): (Vec<String>, Vec<String>) = examples
            .iter()
            .map(|e| {
                // The format target writes the answer-only suffix itself, so that a model that
                // generates it feeds answer-only evaluation exactly the tokens it learned.
                let (input, mut target) = match self.p.target {
                    Target::Answer => (format!("{}{AO_SUFFIX}", e.prompt), String::new()),
                    Target::Format => (e.prompt.clone(), AO_SUFFIX.to_string()),
                };
                target.push_str(&rating_text(e.rating));
                if self.p.close_tag {
                    target.push_str("</answer>");
                }
                (input, target)
            })
            .unzip();
        let hash = crate::settings_hash(&self.p, ctx, examples)?;
        crate::teacher_forced("ao-sft", policy, &inputs, &targets, hash, ctx)
    }
}
