//! Stage-1 trainers, registered in the `policy-trainer` slot (paper §3.2 stage 1, appendix C):
//!
//! | name | what it optimises |
//! |---|---|
//! | [`ao_sft`] `ao-sft` | cross-entropy of the rating after an empty reasoning block (the AO-SFT rows of Tables 3 and 5) |
//! | [`cot_sft`] `cot-sft` | cross-entropy of the policy's own reasoning completions whose rating is right (rejection-sampling SFT) |
//! | [`grpo`] `grpo` | GRPO: G samples per prompt scored by the `reward` slot, group-normalised advantages, clipped ratio, k3 KL to the reference policy |
//!
//! Both run on [`siren_core::train::run_loop`], which owns data order, checkpoints, `--resume`,
//! metrics and the NaN stop; the settings shared by every trainer are `[training]`.
#![warn(missing_docs)]

pub mod ao_sft;
pub mod cot_sft;
pub mod grpo;

use serde::Serialize;
use std::collections::BTreeMap;

use siren_core::train::{Policy, run_loop};
pub(crate) use siren_core::train::{accumulated_step, host};
use siren_core::traits::{Example, RunCtx, TrainReport};
use siren_core::{CoreError, Result};

/// Token ids of each text, keeping the last `max` tokens of longer ones (logged once, with
/// how many were cut, under `name`).
pub(crate) fn encode_prompts<S: AsRef<str>>(
    name: &str,
    policy: &Policy,
    texts: impl IntoIterator<Item = S>,
    max: usize,
) -> Result<Vec<Vec<u32>>> {
    let (mut out, mut cut) = (Vec::new(), 0);
    for text in texts {
        let mut ids = policy.encode(text.as_ref())?;
        if ids.is_empty() {
            return Err(CoreError::Data(format!(
                "{name}: a training prompt is empty"
            )));
        }
        if ids.len() > max {
            cut += 1;
            ids.drain(..ids.len() - max);
        }
        out.push(ids);
    }
    if cut > 0 {
        tracing::warn!(
            "{name}: {cut} of {} prompts are longer than training.max_prompt_tokens = {max} \
             and keep their last {max} tokens",
            out.len()
        );
    }
    Ok(out)
}

/// The hash that ties a checkpoint to the settings that shaped it: the trainer's params, the
/// shared training settings and the examples.
pub(crate) fn settings_hash(
    params: &impl Serialize,
    ctx: &RunCtx,
    examples: &[Example],
) -> Result<u64> {
    let p = serde_json::to_vec(params).map_err(|e| CoreError::Numeric(e.to_string()))?;
    let t = serde_json::to_vec(&ctx.training).map_err(|e| CoreError::Numeric(e.to_string()))?;
    let ratings: Vec<[u8; 4]> = examples.iter().map(|e| e.rating.to_le_bytes()).collect();
    let mut parts: Vec<&[u8]> = vec![&p, &t];
    for (e, r) in examples.iter().zip(&ratings) {
        parts.push(e.prompt.as_bytes());
        parts.push(r);
    }
    Ok(siren_core::hash::fnv1a(parts))
}

/// Teacher-forced supervised training: the token-mean cross-entropy of each `targets[i]`
/// after `inputs[i]` (the loop of `ao-sft` and of `cot-sft` on built rationales). Targets are
/// tokenized as they read after their input (the text tokenized whole) when the input's tokens
/// are a prefix of the whole, else on their own; micro-batches group prompts of similar length.
pub(crate) fn teacher_forced(
    name: &str,
    policy: &mut Policy,
    inputs: &[String],
    targets: &[String],
    hash: u64,
    ctx: &RunCtx,
) -> Result<TrainReport> {
    let prompts = crate::encode_prompts(name, policy, inputs, ctx.training.max_prompt_tokens)?;
    // Targets tokenized as they read after their input (the text tokenized whole), when the
    // input's tokens are a prefix of the whole; else on their own.
    let data: Vec<(Vec<u32>, Vec<u32>)> = prompts
        .into_iter()
        .zip(inputs.iter().zip(targets))
        .map(|(p, (i, t))| {
            let alone = policy.encode(i)?;
            let whole = policy.encode(&format!("{i}{t}"))?;
            let target = if whole.starts_with(&alone) && whole.len() > alone.len() {
                whole[alone.len()..].to_vec()
            } else {
                policy.encode(t)?
            };
            Ok((p, target))
        })
        .collect::<Result<_>>()?;
    let micro = ctx.training.micro_batch;
    run_loop(
        name,
        policy,
        data.len(),
        hash,
        ctx,
        &mut |policy, optim, input| {
            // Micro-batches of prompts of similar length (the step's loss is the same
            // whatever the grouping): less padding.
            let lens: Vec<usize> = input.indices.iter().map(|&i| data[i].0.len()).collect();
            let (groups, pad_fraction, unbucketed) =
                siren_core::batching::length_buckets(&lens, micro, true);
            let order: Vec<Vec<usize>> = groups
                .iter()
                .map(|g| g.iter().map(|&j| input.indices[j]).collect())
                .collect();
            let chunks: Vec<&[usize]> = order.iter().map(Vec::as_slice).collect();
            // Counts over the whole step (every rank's share): the token-mean is the step's.
            let tokens: usize = input.batch.iter().map(|&i| data[i].1.len()).sum();
            let prompt_tokens: usize = input.batch.iter().map(|&i| data[i].0.len()).sum();
            let loss = crate::accumulated_step(
                policy,
                optim,
                input.lr,
                input.step,
                chunks.len(),
                &mut |policy, k| {
                    let prompts: Vec<Vec<u32>> =
                        chunks[k].iter().map(|&i| data[i].0.clone()).collect();
                    let comps: Vec<Vec<u32>> =
                        chunks[k].iter().map(|&i| data[i].1.clone()).collect();
                    // The prefix all prompts share (the system prompt) is computed once.
                    let owner: Vec<usize> = (0..prompts.len()).collect();
                    let sc = policy.scores_shared(
                        siren_core::engine::SharedPrefix {
                            prompts: &prompts,
                            owner: &owner,
                            completions: &comps,
                        },
                        1.0,
                    )?;
                    Ok(sc.logprobs.sum().neg().div_scalar(tokens as f64))
                },
            )?;
            Ok(BTreeMap::from([
                ("loss".to_string(), loss),
                ("answer_tokens".to_string(), tokens as f64),
                ("prompt_tokens".to_string(), prompt_tokens as f64),
                ("pad_fraction".to_string(), pad_fraction),
                ("pad_fraction_unbucketed".to_string(), unbucketed),
            ]))
        },
    )
}

/// How a trainer samples completions.
#[derive(Debug, Clone)]
pub struct Sampling {
    /// Completions per prompt.
    pub group_size: usize,
    /// Sampling temperature.
    pub temperature: f32,
    /// Top-k filter (0 = off).
    pub top_k: usize,
    /// Nucleus mass (1 = off).
    pub top_p: f32,
    /// Most tokens per completion.
    pub max_response_tokens: usize,
    /// Sequences per generation call.
    pub generation_batch: usize,
}

/// Where sampled completions end: at any of `tokens`, or where `strings` says a stop string
/// was written. None of either: every completion runs to `max_response_tokens`.
#[derive(Clone, Default)]
pub struct Stops {
    /// End-of-sequence ids.
    pub tokens: Vec<u32>,
    /// The stop-string check of the tokenizer.
    pub strings: Option<siren_core::engine::StopFn>,
}

impl Stops {
    /// EOS or `</answer>` under `policy`'s tokenizer: where a trainer's completions end.
    pub fn answer(policy: &Policy) -> Self {
        Self {
            tokens: policy.tokenizer.eos.into_iter().collect(),
            strings: policy.tokenizer.stop_strings(&["</answer>".to_string()]),
        }
    }
}

/// One sampled completion of prompt `prompt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Index of its prompt.
    pub prompt: usize,
    /// The completion's token ids.
    pub ids: Vec<u32>,
}

/// The distinct prompts of `rows` (prompt indices, in first-appearance order) and, for each
/// row, the position of its prompt among them: the input of the shared-prefix engine calls.
pub(crate) fn distinct(rows: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let (mut uniq, mut owner) = (Vec::new(), Vec::with_capacity(rows.len()));
    for &r in rows {
        let pos = match uniq.iter().position(|&u| u == r) {
            Some(p) => p,
            None => {
                uniq.push(r);
                uniq.len() - 1
            }
        };
        owner.push(pos);
    }
    (uniq, owner)
}

/// `group_size` completions of each prompt in `indices` (consecutive per prompt), sampled with
/// the current weights, ending at EOS or `</answer>`; seeded by `seed`.
pub(crate) fn sample_groups(
    policy: &Policy,
    prompts: &[Vec<u32>],
    indices: &[usize],
    s: &Sampling,
    seed: u64,
) -> Result<Vec<Sample>> {
    let model = policy.inference_model();
    let on = (&model, &policy.inference_device(), policy.pad_id());
    sample_on(on, prompts, indices, (s, &Stops::answer(policy)), seed)
}

/// `group_size` completions of each prompt in `indices` (consecutive per prompt) from `model`
/// (no autodiff) on `device`, batches padded with `pad`, ending as `stops` says; seeded by
/// `seed` (generation call `k` draws from `seed + k`). Each generation call computes each of
/// its prompts once and samples all of that prompt's completions from it.
pub fn sample_on(
    (model, device, pad): (
        &siren_core::engine::Decoder,
        &siren_core::burn::tensor::Device,
        u32,
    ),
    prompts: &[Vec<u32>],
    indices: &[usize],
    (s, stops): (&Sampling, &Stops),
    seed: u64,
) -> Result<Vec<Sample>> {
    use siren_core::engine::{GenerationConfig, generate_shared};
    let queue: Vec<usize> = indices
        .iter()
        .flat_map(|&i| std::iter::repeat_n(i, s.group_size))
        .collect();
    let mut samples = Vec::with_capacity(queue.len());
    for (k, chunk) in queue.chunks(s.generation_batch).enumerate() {
        let cfg = GenerationConfig {
            max_new_tokens: s.max_response_tokens,
            temperature: s.temperature,
            top_k: s.top_k,
            top_p: s.top_p,
            seed: seed.wrapping_add(k as u64),
            stop_tokens: stops.tokens.clone(),
            stop: stops.strings.clone(),
            pad_id: pad,
            use_cache: true,
            ..GenerationConfig::default()
        };
        let (uniq, owner) = distinct(chunk);
        let batch: Vec<Vec<u32>> = uniq.iter().map(|&i| prompts[i].clone()).collect();
        for (ids, &i) in generate_shared(model, &batch, &owner, &cfg, device)?
            .into_iter()
            .zip(chunk)
        {
            samples.push(Sample { prompt: i, ids });
        }
    }
    Ok(samples)
}
