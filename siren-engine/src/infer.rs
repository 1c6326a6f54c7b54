//! Scoring APIs on top of the forward pass: per-token log-probabilities of given completions
//! (policy-gradient training) and hidden states / logits at chosen positions (hidden-state
//! alignment, one-token answers).

use burn::tensor::activation::log_softmax;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

use super::decoder::{Batch, Decoder};
use crate::{EngineError, Result};

/// Log-probabilities of completion tokens given their prompts.
#[derive(Debug, Clone)]
pub struct CompletionScores {
    /// `[batch, max_completion_len]`: `log p(c_j | prompt, c_<j)`; 0 where `mask` is 0.
    pub logprobs: Tensor<2>,
    /// `[batch, max_completion_len]`: 1 for real completion tokens, 0 for padding.
    pub mask: Tensor<2>,
}

/// Scores `completions[i]` after `prompts[i]` in one forward pass: prompts are left-padded and
/// completions right-padded, so every completion starts at the same column. The result keeps
/// the autodiff graph when the model is on an autodiff device (GRPO's ratio and KL terms).
/// Empty completions are allowed (their row is all mask 0); empty prompts are an error.
pub fn completion_logprobs(
    model: &Decoder,
    prompts: &[Vec<u32>],
    completions: &[Vec<u32>],
    pad_id: u32,
    device: &Device,
) -> Result<CompletionScores> {
    completion_logprobs_at(model, prompts, completions, pad_id, 1.0, device)
}

/// [`completion_logprobs`] of the distribution sampled at `temperature` (logits divided by
/// it, as VERL scores the samples it drew at that temperature).
pub fn completion_logprobs_at(
    model: &Decoder,
    prompts: &[Vec<u32>],
    completions: &[Vec<u32>],
    pad_id: u32,
    temperature: f32,
    device: &Device,
) -> Result<CompletionScores> {
    check_temperature(temperature)?;
    if prompts.len() != completions.len() || prompts.is_empty() {
        return Err(EngineError::Data(format!(
            "completion_logprobs needs one completion per prompt (got {} prompts, {} completions)",
            prompts.len(),
            completions.len()
        )));
    }
    if prompts.iter().any(Vec::is_empty) {
        return Err(EngineError::Data(
            "completion_logprobs: a prompt is empty".into(),
        ));
    }
    let b = prompts.len();
    let p = prompts.iter().map(Vec::len).max().unwrap_or(0);
    let c = completions.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let s = p + c;
    let (mut ids, mut pad, mut pos) = (
        Vec::with_capacity(b * s),
        Vec::with_capacity(b * s),
        Vec::with_capacity(b * s),
    );
    let (mut targets, mut mask) = (Vec::with_capacity(b * c), Vec::with_capacity(b * c));
    for (prompt, comp) in prompts.iter().zip(completions) {
        let lead = p - prompt.len();
        for k in 0..s {
            let real = if k < lead {
                None
            } else if k < p {
                Some(prompt[k - lead])
            } else {
                comp.get(k - p).copied()
            };
            ids.push(i64::from(real.unwrap_or(pad_id)));
            pad.push(real.is_none());
            pos.push(if k < lead { 0 } else { (k - lead) as i64 });
        }
        for j in 0..c {
            targets.push(i64::from(comp.get(j).copied().unwrap_or(pad_id)));
            mask.push(if j < comp.len() { 1f32 } else { 0f32 });
        }
    }
    let batch = Batch {
        ids: Tensor::from_data(TensorData::new(ids, [b, s]), device),
        pad: Tensor::<2, Bool>::from_data(TensorData::new(pad, [b, s]), device),
        positions: Tensor::from_data(TensorData::new(pos, [b, s]), device),
    };
    // Logits at column p-1+j predict completion token j: only the last c+1 columns are needed.
    let logits = model.forward_tail(&batch, None, false, c + 1).logits; // [b, c+1, v]
    Ok(token_logprobs(
        logits.narrow(1, 0, c),
        targets,
        mask,
        temperature,
        device,
    ))
}

fn check_temperature(t: f32) -> Result<()> {
    if t > 0.0 && t.is_finite() {
        Ok(())
    } else {
        Err(EngineError::config(
            "temperature",
            format!("log-probabilities need a temperature > 0, got {t}"),
        ))
    }
}

/// Log-probabilities of `targets` (`[b·c]`, row-major) under `logits` `[b, c, v]` at
/// `temperature`, masked by `mask` (`[b·c]`).
fn token_logprobs(
    logits: Tensor<3>,
    targets: Vec<i64>,
    mask: Vec<f32>,
    temperature: f32,
    device: &Device,
) -> CompletionScores {
    let [b, c, _] = logits.dims();
    let logits = if temperature == 1.0 {
        logits
    } else {
        logits.div_scalar(f64::from(temperature))
    };
    let logp = log_softmax(logits, 2);
    let idx: Tensor<3, Int> = Tensor::from_data(TensorData::new(targets, [b, c, 1]), device);
    let mask = Tensor::<2>::from_data(TensorData::new(mask, [b, c]), device);
    let logprobs = logp.gather(2, idx).reshape([b, c]).mul(mask.clone());
    CompletionScores { logprobs, mask }
}

/// Completions that share prompts: completion `i` continues `prompts[owner[i]]`.
#[derive(Debug, Clone, Copy)]
pub struct SharedPrefix<'a> {
    /// The distinct prompts.
    pub prompts: &'a [Vec<u32>],
    /// For each completion, the index of its prompt.
    pub owner: &'a [usize],
    /// The completions.
    pub completions: &'a [Vec<u32>],
}

/// [`completion_logprobs_at`] for completions that share prompts, with every shared token
/// computed once, at two levels:
/// 1. the prefix all prompts share (a system prompt) runs once and its keys and values are
///    fanned out to the prompts;
/// 2. the rest of each distinct prompt runs once on top (a left-padded batch that keeps its
///    keys and values), its cache is fanned out to the prompt's completions
///    ([`super::KvCache::select_rows`]), and the completions (right-padded) run on top of it.
///
/// On an autodiff device the gradients of every completion flow back through the one computed
/// copy of each shared token. Same result layout as [`completion_logprobs`]:
/// `[completions, longest completion]`.
pub fn shared_prefix_logprobs(
    model: &Decoder,
    shared: SharedPrefix<'_>,
    pad_id: u32,
    temperature: f32,
    device: &Device,
) -> Result<CompletionScores> {
    check_temperature(temperature)?;
    let SharedPrefix {
        prompts,
        owner,
        completions,
    } = shared;
    if owner.len() != completions.len() || completions.is_empty() {
        return Err(EngineError::Data(format!(
            "shared_prefix_logprobs needs one owner per completion (got {} owners, {} \
             completions)",
            owner.len(),
            completions.len()
        )));
    }
    if let Some(&o) = owner.iter().find(|&&o| o >= prompts.len()) {
        return Err(EngineError::Data(format!(
            "shared_prefix_logprobs: owner {o} is not one of the {} prompts",
            prompts.len()
        )));
    }
    if prompts.iter().any(Vec::is_empty) {
        return Err(EngineError::Data(
            "shared_prefix_logprobs: a prompt is empty".into(),
        ));
    }
    let n = completions.len();
    let c = completions.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let (mut targets, mut mask) = (Vec::with_capacity(n * c), Vec::with_capacity(n * c));
    for comp in completions {
        for j in 0..c {
            targets.push(i64::from(comp.get(j).copied().unwrap_or(pad_id)));
            mask.push(if j < comp.len() { 1f32 } else { 0f32 });
        }
    }
    // 1. The prefix every prompt shares, once (worth it from a few tokens on).
    let k0 = if prompts.len() > 1 {
        super::common_prefix_len(prompts)
    } else {
        0
    };
    let (mut cache, start) = if k0 >= 8 {
        let mut c = super::KvCache::new(model.layers.len());
        let b = Batch::left_padded(&[prompts[0][..k0].to_vec()], pad_id, device)?;
        model.prefill(&b, &mut c);
        (c.select_rows(&vec![0; prompts.len()], device), k0)
    } else {
        (super::KvCache::new(model.layers.len()), 0)
    };
    // 2. The rest of each prompt once; its last logits predict its completions' first token.
    let rest: Vec<Vec<u32>> = prompts.iter().map(|p| p[start..].to_vec()).collect();
    let prefix = Batch::left_padded_from(&rest, pad_id, &vec![start as i64; rest.len()], device)?;
    let first = model
        .forward_tail(&prefix, Some(&mut cache), false, 1)
        .logits; // [p, 1, v]
    let idx = Tensor::<1, Int>::from_data(
        TensorData::new(owner.iter().map(|&o| o as i64).collect(), [n]),
        device,
    );
    let first = first.select(0, idx);
    let logits = if c == 1 {
        first
    } else {
        // 3. Completion tokens 0..c-2 on the fanned-out cache predict tokens 1..c-1.
        let mut rows = cache.select_rows(owner, device);
        let start = rows
            .next_position
            .clone()
            .ok_or_else(|| EngineError::Numeric("prefix cache has no positions".into()))?;
        let w = c - 1;
        let (mut ids, mut pad) = (Vec::with_capacity(n * w), Vec::with_capacity(n * w));
        for comp in completions {
            for j in 0..w {
                let t = comp.get(j).copied();
                ids.push(i64::from(t.unwrap_or(pad_id)));
                pad.push(t.is_none());
            }
        }
        let steps = Tensor::<1, Int>::arange(0..w as i64, device)
            .reshape([1, w])
            .expand([n, w]);
        let batch = Batch {
            ids: Tensor::from_data(TensorData::new(ids, [n, w]), device),
            pad: Tensor::<2, Bool>::from_data(TensorData::new(pad, [n, w]), device),
            positions: start.expand([n, w]).add(steps),
        };
        let rest = model.forward_tail(&batch, Some(&mut rows), false, w).logits;
        Tensor::cat(vec![first, rest], 1)
    };
    Ok(token_logprobs(logits, targets, mask, temperature, device))
}

/// Hidden states and logits of each sequence at one chosen position.
#[derive(Debug, Clone)]
pub struct PositionStates {
    /// HF `hidden_states` at the positions: `L + 1` tensors `[batch, hidden]` (embeddings,
    /// layers `1..L-1`, final-normed layer `L`).
    pub hidden: Vec<Tensor<2>>,
    /// `[batch, vocab]` next-token logits at the positions.
    pub logits: Tensor<2>,
}

/// Runs `seqs` (left-padded) and returns every layer's hidden state and the logits at
/// `positions[i]` of sequence `i` (an index into the sequence; `None` = its last token).
pub fn states_at(
    model: &Decoder,
    seqs: &[Vec<u32>],
    positions: &[Option<usize>],
    pad_id: u32,
    device: &Device,
) -> Result<PositionStates> {
    if seqs.len() != positions.len() {
        return Err(EngineError::Data(format!(
            "states_at: {} sequences but {} positions",
            seqs.len(),
            positions.len()
        )));
    }
    let batch = Batch::left_padded(seqs, pad_id, device)?;
    let [b, s] = batch.ids.dims();
    let mut cols = Vec::with_capacity(b);
    for (i, (seq, at)) in seqs.iter().zip(positions).enumerate() {
        let at = at.unwrap_or(seq.len() - 1);
        if at >= seq.len() {
            return Err(EngineError::Data(format!(
                "states_at: position {at} is past the end of sequence {i} (length {})",
                seq.len()
            )));
        }
        cols.push((s - seq.len() + at) as i64);
    }
    // Logits only from the first chosen column on (the output projection is costly).
    let tail = s - cols.iter().copied().min().unwrap_or(0) as usize;
    let out = model.forward_tail(&batch, None, true, tail);
    let pick = |t: Tensor<3>, offset: i64| -> Tensor<2> {
        let w = t.dims()[2];
        let c: Vec<i64> = cols.iter().map(|c| c - offset).collect();
        let idx: Tensor<3, Int> = Tensor::<1, Int>::from_data(TensorData::new(c, [b]), device)
            .reshape([b, 1, 1])
            .expand([b, 1, w]);
        t.gather(1, idx).reshape([b, w])
    };
    Ok(PositionStates {
        hidden: out.hidden_states.into_iter().map(|t| pick(t, 0)).collect(),
        logits: pick(out.logits, (s - tail) as i64),
    })
}
