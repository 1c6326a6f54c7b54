//! `cot-sft`: supervised fine-tuning on reasoning, from one of two sources.
//!
//! `source = "sampled"` (default): the policy's own reasoning (rejection sampling, as in
//! STaR / RFT). Per step, `group_size` completions of each prompt are sampled; those in the
//! `<think>…</think><answer>…</answer>` format whose rating equals the label (within
//! `tolerance`) are kept, and the loss is their token-mean cross-entropy. A step that keeps
//! nothing makes no update (its loss is logged as 0 and `kept` as 0). A prompt is computed
//! once for all of its completions, when sampling and in the loss.
//!
//! `source = "built"`: rationales built from what each prompt shows
//! ([`siren_core::prompt::rationale`]: the candidate's liked or disliked topic, the closest
//! recent ratings, the recent mean), followed by the true rating: the target after the bare
//! prompt is `\n<think>\n{rationale}\n</think>\n<answer>{r}</answer>`, learnt by
//! teacher-forced cross-entropy. A warm start that gives a small model a reasoning habit
//! grounded in its prompt, for GRPO to start from. The rationale never holds the target's
//! rating nor anything after the target in time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use siren_core::answer::{format_ok, parse_rating};
use siren_core::train::{Policy, run_loop};
use siren_core::traits::{Example, PolicyTrainer, Reward, RunCtx, TrainReport};
use siren_core::{CoreError, Plugin, Result};

/// Parameters of `cot-sft`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CotSftParams {
    /// Where the reasoning comes from: `sampled` (the policy's own, kept when right) or
    /// `built` (rationales built from the prompt).
    pub source: Source,
    /// Samples per prompt.
    pub group_size: usize,
    /// Sampling temperature.
    pub temperature: f32,
    /// Nucleus mass (1 = off).
    pub top_p: f32,
    /// Most tokens per completion.
    pub max_response_tokens: usize,
    /// A completion is kept when |rating − label| ≤ tolerance (0: exact, the authors' mask).
    pub tolerance: f32,
    /// Sequences per generation call.
    pub generation_batch: usize,
}

/// Where `cot-sft`'s reasoning comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The policy's own completions whose rating is right (rejection sampling).
    Sampled,
    /// Rationales built from what each prompt shows, with the true rating as the answer.
    Built,
}

impl Default for CotSftParams {
    fn default() -> Self {
        Self {
            source: Source::Sampled,
            group_size: 4,
            temperature: 0.8,
            top_p: 1.0,
            max_response_tokens: 512,
            tolerance: 0.0,
            generation_batch: 64,
        }
    }
}

/// The `cot-sft` trainer.
#[derive(Debug, Clone)]
pub struct CotSft {
    p: CotSftParams,
}

impl Plugin for CotSft {
    type Params = CotSftParams;
    const SUMMARY: &'static str =
        "rejection-sampling CoT SFT: learn the policy's own correct reasoning completions";
    fn from_params(p: CotSftParams) -> Result<Self> {
        if p.group_size == 0 || p.max_response_tokens == 0 || p.generation_batch == 0 {
            return Err(CoreError::config(
                "cot-sft group_size",
                "group_size, max_response_tokens and generation_batch must be at least 1",
            ));
        }
        if !(p.temperature > 0.0 && p.temperature.is_finite() && p.tolerance >= 0.0) {
            return Err(CoreError::config(
                "cot-sft temperature",
                "temperature must be > 0 and tolerance ≥ 0",
            ));
        }
        Ok(Self { p })
    }
}

siren_core::register_trainer!("cot-sft", CotSft);

impl PolicyTrainer for CotSft {
    fn train(
        &self,
        policy: &mut Policy,
        examples: &[Example],
        _reward: &dyn Reward,
        ctx: &RunCtx,
    ) -> Result<TrainReport> {
        let p = &self.p;
        if p.source == Source::Built {
            return self.train_built(policy, examples, ctx);
        }
        let prompts = crate::encode_prompts(
            "cot-sft",
            policy,
            examples.iter().map(|e| &e.prompt),
            ctx.training.max_prompt_tokens,
        )?;
        let hash = crate::settings_hash(p, ctx, examples)?;
        let sampling = crate::Sampling {
            group_size: p.group_size,
            temperature: p.temperature,
            top_k: 0,
            top_p: p.top_p,
            max_response_tokens: p.max_response_tokens,
            generation_batch: p.generation_batch,
        };
        let micro = ctx.training.micro_batch;
        run_loop(
            "cot-sft",
            policy,
            examples.len(),
            hash,
            ctx,
            &mut |policy, optim, input| {
                let samples =
                    crate::sample_groups(policy, &prompts, &input.indices, &sampling, input.seed)?;
                let mut kept = Vec::new();
                let mut fmt = 0usize;
                for s in samples {
                    let text = policy.decode_completion(&s.ids)?;
                    let ok = format_ok(&text);
                    fmt += usize::from(ok);
                    let right = parse_rating(&text)
                        .is_some_and(|r| (r - examples[s.prompt].rating).abs() <= p.tolerance);
                    if ok && right {
                        kept.push(s);
                    }
                }
                let n = input.indices.len() * p.group_size;
                let mut m = BTreeMap::from([
                    ("kept".to_string(), kept.len() as f64),
                    ("format_rate".to_string(), fmt as f64 / n as f64),
                    ("accuracy".to_string(), kept.len() as f64 / n as f64),
                ]);
                if kept.is_empty() {
                    m.insert("loss".into(), 0.0);
                    return Ok(m);
                }
                let tokens: usize = kept.iter().map(|s| s.ids.len()).sum();
                let chunks: Vec<&[crate::Sample]> = kept.chunks(micro).collect();
                let loss = crate::accumulated_step(
                    policy,
                    optim,
                    input.lr,
                    input.step,
                    chunks.len(),
                    &mut |policy, k| {
                        // Kept completions of one prompt share its computation.
                        let rows: Vec<usize> = chunks[k].iter().map(|s| s.prompt).collect();
                        let (uniq, owner) = crate::distinct(&rows);
                        let pr: Vec<Vec<u32>> = uniq.iter().map(|&i| prompts[i].clone()).collect();
                        let co: Vec<Vec<u32>> = chunks[k].iter().map(|s| s.ids.clone()).collect();
                        let sc = policy.scores_shared(
                            siren_core::engine::SharedPrefix {
                                prompts: &pr,
                                owner: &owner,
                                completions: &co,
                            },
                            1.0,
                        )?;
                        Ok(sc.logprobs.sum().neg().div_scalar(tokens as f64))
                    },
                )?;
                m.insert("loss".into(), loss);
                Ok(m)
            },
        )
    }
}

impl CotSft {
    /// `source = "built"`: teacher-forced SFT of each example's built rationale and rating.
    fn train_built(
        &self,
        policy: &mut Policy,
        examples: &[Example],
        ctx: &RunCtx,
    ) -> Result<TrainReport> {
        let mut targets = Vec::with_capacity(examples.len());
        for e in examples {
            let r = e.rationale.as_deref().ok_or_else(|| {
                CoreError::Data(format!(
                    "cot-sft (source = \"built\"): example `{}` has no rationale",
                    e.id
                ))
            })?;
            targets.push(built_target(r, e.rating));
        }
        let inputs: Vec<String> = examples.iter().map(|e| e.prompt.clone()).collect();
        let settings = crate::settings_hash(&self.p, ctx, examples)?.to_le_bytes();
        let hash = siren_core::hash::fnv1a(
            std::iter::once(settings.as_slice()).chain(targets.iter().map(|t| t.as_bytes())),
        );
        crate::teacher_forced("cot-sft", policy, &inputs, &targets, hash, ctx)
    }
}

/// The completion `cot-sft` learns for a built rationale:
/// `\n<think>\n{rationale}\n</think>\n<answer>{r}</answer>`.
pub fn built_target(rationale: &str, rating: f32) -> String {
    format!(
        "\n<think>\n{rationale}\n</think>\n<answer>{}</answer>",
        siren_core::answer::rating_text(rating)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_targets_are_in_the_tag_format() {
        let t = built_target("Liked topic.", 4.0);
        assert_eq!(t, "\n<think>\nLiked topic.\n</think>\n<answer>4</answer>");
        assert!(format_ok(&t));
        assert_eq!(parse_rating(&t), Some(4.0));
    }
}
