//! Greedy decoding with or without the KV cache.

use burn::tensor::{Device, Tensor, TensorData};

use super::cache::KvCache;
use super::decoder::{Batch, Decoder};
use crate::{CoreError, Result};

fn argmax_last(logits: Tensor<3>) -> Result<Vec<u32>> {
    let [b, s, v] = logits.dims();
    let last = logits.narrow(1, s - 1, 1).reshape([b, v]);
    let ids = last
        .argmax(1)
        .try_into_vec_as::<i64>()
        .map_err(|e| CoreError::Numeric(format!("reading argmax: {e:?}")))?;
    Ok(ids.into_iter().map(|i| i as u32).collect())
}

/// Greedy continuation of each prompt by up to `max_new_tokens` tokens (left-padded batch). A
/// sequence ends after emitting one of `stop` (included in its output). With `use_cache` the
/// prompt is encoded once and each new token attends to the cache; without it the whole
/// sequence is recomputed every step (the reference the cache is tested against).
pub fn greedy(
    model: &Decoder,
    prompts: &[Vec<u32>],
    max_new_tokens: usize,
    pad_id: u32,
    stop: &[u32],
    use_cache: bool,
    device: &Device,
) -> Result<Vec<Vec<u32>>> {
    let mut out: Vec<Vec<u32>> = vec![Vec::new(); prompts.len()];
    let mut done = vec![false; prompts.len()];
    let mut push = |next: &[u32], out: &mut Vec<Vec<u32>>| {
        for (k, &t) in next.iter().enumerate() {
            if !done[k] {
                out[k].push(t);
                done[k] = stop.contains(&t);
            }
        }
        done.iter().all(|&d| d)
    };
    if max_new_tokens == 0 {
        return Ok(out);
    }
    if !use_cache {
        let mut seqs: Vec<Vec<u32>> = prompts.to_vec();
        for _ in 0..max_new_tokens {
            let batch = Batch::left_padded(&seqs, pad_id, device)?;
            let next = argmax_last(model.forward(&batch, None, false).logits)?;
            for (k, &t) in next.iter().enumerate() {
                seqs[k].push(t);
            }
            if push(&next, &mut out) {
                break;
            }
        }
        return Ok(out);
    }
    let mut cache = KvCache::new(model.layers.len());
    let batch = Batch::left_padded(prompts, pad_id, device)?;
    let mut next = argmax_last(model.forward(&batch, Some(&mut cache), false).logits)?;
    let b = prompts.len();
    for step in 0..max_new_tokens {
        if push(&next, &mut out) || step + 1 == max_new_tokens {
            break;
        }
        let positions = cache
            .next_position
            .clone()
            .ok_or_else(|| CoreError::Numeric("cache has no positions after prefill".into()))?;
        let ids: Vec<i64> = next.iter().map(|&t| i64::from(t)).collect();
        let step_batch = Batch {
            ids: Tensor::from_data(TensorData::new(ids, [b, 1]), device),
            pad: Tensor::from_data(TensorData::new(vec![false; b], [b, 1]), device),
            positions,
        };
        next = argmax_last(model.forward(&step_batch, Some(&mut cache), false).logits)?;
    }
    Ok(out)
}
