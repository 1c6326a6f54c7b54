//! Prefix caching for scoring: a prompt prefix that many sequences continue (the system prompt
//! of every rating prompt, or one user's part of the prompt for many candidate items) is
//! computed once, and each continuation runs on top of its keys and values.

use burn::tensor::{Device, Tensor};

use super::cache::KvCache;
use super::decoder::{Batch, Decoder};
use crate::{EngineError, Result};

/// A computed prefix: its tokens and their keys and values (one sequence).
#[derive(Debug, Clone)]
pub struct Prefix {
    tokens: Vec<u32>,
    cache: KvCache,
}

impl Prefix {
    /// Runs `tokens` through `model` once and keeps their keys and values. An empty prefix is
    /// allowed (it computes nothing).
    pub fn new(model: &Decoder, tokens: &[u32], device: &Device) -> Result<Self> {
        let mut cache = KvCache::new(model.layers.len());
        if !tokens.is_empty() {
            let batch = Batch::left_padded(&[tokens.to_vec()], 0, device)?;
            model.prefill(&batch, &mut cache);
        }
        Ok(Self {
            tokens: tokens.to_vec(),
            cache,
        })
    }

    /// The prefix tokens.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Bytes held by the cached keys and values (f32), for memory accounting.
    pub fn cache_bytes(&self, model: &Decoder) -> usize {
        let s = &model.spec;
        2 * s.num_layers * s.num_kv_heads * s.head_dim * self.tokens.len() * 4
    }
}

/// Length of the longest token prefix that every sequence of `seqs` shares, leaving at least
/// one token of each sequence after it.
pub fn common_prefix_len(seqs: &[Vec<u32>]) -> usize {
    let Some(first) = seqs.first() else {
        return 0;
    };
    let mut n = first.len();
    for s in &seqs[1..] {
        n = n.min(first.iter().zip(s).take_while(|(a, b)| a == b).count());
    }
    let shortest = seqs.iter().map(Vec::len).min().unwrap_or(0);
    n.min(shortest.saturating_sub(1))
}

/// Next-token logits `[n, vocab]` after `prefix` + `tails[i]` for each tail: the tails run
/// left-padded on top of the prefix's cache (with no prefix, as a plain left-padded batch).
/// Equal to running each whole sequence alone, up to float rounding.
pub fn last_logits(
    model: &Decoder,
    prefix: Option<&Prefix>,
    tails: &[Vec<u32>],
    pad_id: u32,
    device: &Device,
) -> Result<Tensor<2>> {
    let n = tails.len();
    let logits = match prefix.filter(|p| !p.tokens.is_empty()) {
        None => {
            let batch = Batch::left_padded(tails, pad_id, device)?;
            model.forward_tail(&batch, None, false, 1).logits
        }
        Some(p) => {
            if tails.iter().any(Vec::is_empty) {
                return Err(EngineError::Data(
                    "a sequence continuing a cached prefix needs at least one token".into(),
                ));
            }
            let mut cache = p.cache.select_rows(&vec![0; n], device);
            let start = vec![p.tokens.len() as i64; n];
            let batch = Batch::left_padded_from(tails, pad_id, &start, device)?;
            model
                .forward_tail(&batch, Some(&mut cache), false, 1)
                .logits
        }
    };
    let v = logits.dims()[2];
    Ok(logits.reshape([n, v]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::tiny_decoder;

    #[test]
    fn common_prefix_leaves_a_token_to_each() {
        assert_eq!(common_prefix_len(&[vec![1, 2, 3, 4], vec![1, 2, 5]]), 2);
        assert_eq!(common_prefix_len(&[vec![1, 2, 3], vec![1, 2, 3]]), 2);
        assert_eq!(common_prefix_len(&[vec![1, 2, 3]]), 2);
        assert_eq!(common_prefix_len(&[vec![7], vec![8]]), 0);
        assert_eq!(common_prefix_len(&[]), 0);
    }

    #[test]
    fn cached_prefix_gives_the_logits_of_whole_sequences() {
        let device = Device::flex();
        let model = tiny_decoder(4, &device).unwrap();
        let seqs = vec![
            vec![6, 9, 2, 7, 3],
            vec![6, 9, 2, 10],
            vec![6, 9, 2, 4, 4, 8, 12],
        ];
        let k = common_prefix_len(&seqs);
        assert_eq!(k, 3);
        let whole = last_logits(&model, None, &seqs, 0, &device).unwrap();
        let prefix = Prefix::new(&model, &seqs[0][..k], &device).unwrap();
        let tails: Vec<Vec<u32>> = seqs.iter().map(|s| s[k..].to_vec()).collect();
        let cached = last_logits(&model, Some(&prefix), &tails, 0, &device).unwrap();
        let (a, b) = (
            whole.try_into_vec_as::<f32>().unwrap(),
            cached.try_into_vec_as::<f32>().unwrap(),
        );
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-4, "{x} vs {y}");
        }
    }
}
