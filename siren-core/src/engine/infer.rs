//! Scoring APIs on top of the forward pass: per-token log-probabilities of given completions
//! (policy-gradient training) and hidden states / logits at chosen positions (hidden-state
//! alignment, one-token answers).

use burn::tensor::activation::log_softmax;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

use super::decoder::{Batch, Decoder};
use crate::{CoreError, Result};

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
    if prompts.len() != completions.len() || prompts.is_empty() {
        return Err(CoreError::Data(format!(
            "completion_logprobs needs one completion per prompt (got {} prompts, {} completions)",
            prompts.len(),
            completions.len()
        )));
    }
    if prompts.iter().any(Vec::is_empty) {
        return Err(CoreError::Data(
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
    let logp = log_softmax(logits.narrow(1, 0, c), 2);
    let idx: Tensor<3, Int> = Tensor::from_data(TensorData::new(targets, [b, c, 1]), device);
    let mask = Tensor::<2>::from_data(TensorData::new(mask, [b, c]), device);
    let logprobs = logp.gather(2, idx).reshape([b, c]).mul(mask.clone());
    Ok(CompletionScores { logprobs, mask })
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
        return Err(CoreError::Data(format!(
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
            return Err(CoreError::Data(format!(
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
