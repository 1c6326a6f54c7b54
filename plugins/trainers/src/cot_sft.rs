//! `cot-sft`: supervised fine-tuning on the policy's own reasoning (rejection sampling, as in
//! STaR / RFT). Per step, `group_size` completions of each prompt are sampled; those in the
//! `<think>…</think><answer>…</answer>` format whose rating equals the label (within
//! `tolerance`) are kept, and the loss is their token-mean cross-entropy. A step that keeps
//! nothing makes no update (its loss is logged as 0 and `kept` as 0). A prompt is computed
//! once for all of its completions, when sampling and in the loss.

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

impl Default for CotSftParams {
    fn default() -> Self {
        Self {
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
