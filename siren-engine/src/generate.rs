//! Text generation: greedy or sampled (temperature, top-k, top-p, seed), with stop tokens, a
//! stop predicate (e.g. stop strings, see [`super::TextTokenizer::stop_strings`]) and
//! `max_new_tokens`; with or without the KV cache.

use std::sync::Arc;

use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::cache::KvCache;
use super::decoder::{Batch, Decoder};
use crate::{EngineError, Result};

/// A predicate on a sequence's generated tokens; true ends that sequence.
pub type StopFn = Arc<dyn Fn(&[u32]) -> bool + Send + Sync>;

/// How to pick each next token.
#[derive(Clone)]
pub struct GenerationConfig {
    /// Maximum number of new tokens per sequence.
    pub max_new_tokens: usize,
    /// Softmax temperature; 0 means greedy (argmax).
    pub temperature: f32,
    /// Keep only the `k` most likely tokens (0 = off).
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches `p` (1 = off).
    pub top_p: f32,
    /// Seed of the sampler (each call with the same seed and inputs draws the same tokens).
    pub seed: u64,
    /// Token ids that end a sequence (kept in its output).
    pub stop_tokens: Vec<u32>,
    /// Ends a sequence when true of its generated tokens (the completing token is kept).
    pub stop: Option<StopFn>,
    /// Id used to left-pad prompts.
    pub pad_id: u32,
    /// Reuse keys/values across steps (off recomputes the whole sequence each step).
    pub use_cache: bool,
    /// With the cache: reserve it for `max_new_tokens` up front, so each token is written in
    /// place, and drop finished sequences from the batch once a quarter of it has finished.
    /// Off is the earlier path (the cache grows by concatenation, copying every layer's keys
    /// and values at each token; finished sequences stay in the batch), kept as the
    /// reference benchmarks compare against. Both draw the same tokens.
    pub preallocate: bool,
}

impl std::fmt::Debug for GenerationConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenerationConfig")
            .field("max_new_tokens", &self.max_new_tokens)
            .field("temperature", &self.temperature)
            .field("top_k", &self.top_k)
            .field("top_p", &self.top_p)
            .field("seed", &self.seed)
            .field("stop_tokens", &self.stop_tokens)
            .field("stop", &self.stop.as_ref().map(|_| "<fn>"))
            .field("pad_id", &self.pad_id)
            .field("use_cache", &self.use_cache)
            .field("preallocate", &self.preallocate)
            .finish()
    }
}

impl Default for GenerationConfig {
    fn default() -> Self {
        Self {
            max_new_tokens: 64,
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            seed: 0,
            stop_tokens: Vec::new(),
            stop: None,
            pad_id: 0,
            use_cache: true,
            preallocate: true,
        }
    }
}

impl GenerationConfig {
    /// Greedy decoding of up to `max_new_tokens` tokens.
    pub fn greedy(max_new_tokens: usize) -> Self {
        Self {
            max_new_tokens,
            ..Self::default()
        }
    }

    fn validate(&self) -> Result<()> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(EngineError::config(
                "generation.temperature",
                format!("must be finite and >= 0, got {}", self.temperature),
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(EngineError::config(
                "generation.top_p",
                format!("must be in (0, 1], got {}", self.top_p),
            ));
        }
        Ok(())
    }
}

/// Picks next tokens from `[batch, vocab]` logits on the host.
struct Sampler {
    rng: StdRng,
}

impl Sampler {
    /// Next tokens from the last position of `logits` `[batch, s, vocab]`, whose batch row
    /// `j` continues output row `rows[j]` (increasing) of `total`. Sampling draws one number
    /// per output row in order, for rows no longer in the batch too, so that dropping finished
    /// rows leaves every other row's draws as they were.
    fn pick(
        &mut self,
        cfg: &GenerationConfig,
        logits: Tensor<3>,
        rows: &[usize],
        total: usize,
    ) -> Result<Vec<(usize, u32)>> {
        let [b, s, v] = logits.dims();
        let last = logits.narrow(1, s - 1, 1).reshape([b, v]);
        if cfg.temperature == 0.0 {
            let ids = last
                .argmax(1)
                .try_into_vec_as::<i64>()
                .map_err(|e| EngineError::Numeric(format!("reading argmax: {e:?}")))?;
            return Ok(rows.iter().zip(ids).map(|(&r, i)| (r, i as u32)).collect());
        }
        let host = last
            .try_into_vec_as::<f32>()
            .map_err(|e| EngineError::Numeric(format!("reading logits: {e:?}")))?;
        let mut batch = rows.iter().zip(host.chunks_exact(v)).peekable();
        let mut out = Vec::with_capacity(rows.len());
        for r in 0..total {
            match batch.next_if(|&(&j, _)| j == r) {
                Some((_, row)) => out.push((r, sample_row(row, cfg, &mut self.rng)?)),
                None => {
                    let _: f32 = self.rng.random();
                }
            }
        }
        Ok(out)
    }
}

/// The filtered, renormalised next-token distribution HF's sampling uses (temperature, then
/// top-k, then top-p), as `(token, probability)` sorted by decreasing probability.
pub fn sampling_distribution(
    logits: &[f32],
    temperature: f32,
    top_k: usize,
    top_p: f32,
) -> Vec<(u32, f32)> {
    let mut order: Vec<(u32, f32)> = logits
        .iter()
        .enumerate()
        .map(|(i, &l)| (i as u32, l / temperature))
        .collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1));
    if top_k > 0 && top_k < order.len() {
        order.truncate(top_k);
    }
    let max = order.first().map(|x| x.1).unwrap_or(0.0);
    let mut total = 0f64;
    for x in order.iter_mut() {
        x.1 = (x.1 - max).exp();
        total += f64::from(x.1);
    }
    for x in order.iter_mut() {
        x.1 = (f64::from(x.1) / total) as f32;
    }
    if top_p < 1.0 {
        // HF's rule: drop the least likely tokens whose cumulative mass (ascending) is at
        // most 1 - top_p; always keep the most likely one.
        let mut tail = 0f32;
        let mut drop = 0;
        for x in order.iter().rev() {
            tail += x.1;
            if tail <= 1.0 - top_p {
                drop += 1;
            } else {
                break;
            }
        }
        let keep = (order.len() - drop).max(1);
        order.truncate(keep);
        let kept: f32 = order.iter().map(|x| x.1).sum();
        for x in order.iter_mut() {
            x.1 /= kept;
        }
    }
    order
}

fn sample_row(row: &[f32], cfg: &GenerationConfig, rng: &mut StdRng) -> Result<u32> {
    if row.iter().any(|x| x.is_nan()) {
        return Err(EngineError::Numeric("NaN in next-token logits".into()));
    }
    if cfg.top_p >= 1.0 {
        let u: f32 = rng.random();
        return Ok(draw_without_top_p(row, cfg.temperature, cfg.top_k, u));
    }
    let dist = sampling_distribution(row, cfg.temperature, cfg.top_k, cfg.top_p);
    let u: f32 = rng.random();
    let mut acc = 0f32;
    for &(tok, p) in &dist {
        acc += p;
        if u < acc {
            return Ok(tok);
        }
    }
    Ok(dist.last().map(|x| x.0).unwrap_or(0))
}

/// The token [`sample_row`] draws for `u` without top-p, without sorting the whole vocabulary:
/// the distribution of [`sampling_distribution`] is walked in its order (decreasing
/// probability, ties by token id) only as far as `u` needs, by growing chunks selected in
/// linear time. Only the normaliser is summed in another order (token order, in f64), so the
/// probabilities agree to f64 rounding before their cast to f32.
fn draw_without_top_p(row: &[f32], temperature: f32, top_k: usize, u: f32) -> u32 {
    let before = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    let mut rest: Vec<(u32, f32)> = row
        .iter()
        .enumerate()
        .map(|(i, &l)| (i as u32, l / temperature))
        .collect();
    if top_k > 0 && top_k < rest.len() {
        rest.select_nth_unstable_by(top_k - 1, before);
        rest.truncate(top_k);
    }
    let Some(max) = rest.iter().map(|x| x.1).max_by(f32::total_cmp) else {
        return 0;
    };
    let total: f64 = rest.iter().map(|x| f64::from((x.1 - max).exp())).sum();
    let mut acc = 0f32;
    let mut last = 0;
    let mut chunk = 64;
    while !rest.is_empty() {
        let m = chunk.min(rest.len());
        if m < rest.len() {
            rest.select_nth_unstable_by(m - 1, before);
        }
        let mut head: Vec<(u32, f32)> = rest.drain(..m).collect();
        head.sort_by(before);
        for (tok, x) in head {
            acc += (f64::from((x - max).exp()) / total) as f32;
            if u < acc {
                return tok;
            }
            last = tok;
        }
        chunk *= 16;
    }
    last
}

/// Tracks which sequences are finished.
struct Outputs<'a> {
    out: Vec<Vec<u32>>,
    done: Vec<bool>,
    cfg: &'a GenerationConfig,
}

impl Outputs<'_> {
    /// Appends each unfinished sequence's token (`(row, token)`); true when all are finished.
    fn push(&mut self, next: &[(usize, u32)]) -> bool {
        for &(k, t) in next {
            if !self.done[k] {
                self.out[k].push(t);
                self.done[k] = self.cfg.stop_tokens.contains(&t)
                    || self.cfg.stop.as_ref().is_some_and(|f| f(&self.out[k]));
            }
        }
        self.done.iter().all(|&d| d)
    }
}

/// Continues each prompt (a left-padded batch) by up to `cfg.max_new_tokens` tokens.
pub fn generate(
    model: &Decoder,
    prompts: &[Vec<u32>],
    cfg: &GenerationConfig,
    device: &Device,
) -> Result<Vec<Vec<u32>>> {
    cfg.validate()?;
    let mut outs = Outputs {
        out: vec![Vec::new(); prompts.len()],
        done: vec![false; prompts.len()],
        cfg,
    };
    if cfg.max_new_tokens == 0 {
        return Ok(outs.out);
    }
    let mut sampler = Sampler {
        rng: StdRng::seed_from_u64(cfg.seed),
    };
    if !cfg.use_cache {
        let mut seqs: Vec<Vec<u32>> = prompts.to_vec();
        let rows: Vec<usize> = (0..seqs.len()).collect();
        for _ in 0..cfg.max_new_tokens {
            let batch = Batch::left_padded(&seqs, cfg.pad_id, device)?;
            let logits = model.forward_tail(&batch, None, false, 1).logits;
            let next = sampler.pick(cfg, logits, &rows, rows.len())?;
            for &(k, t) in &next {
                seqs[k].push(t);
            }
            if outs.push(&next) {
                break;
            }
        }
        return Ok(outs.out);
    }
    let owner: Vec<usize> = (0..prompts.len()).collect();
    decode_cached(model, prompts, &owner, cfg, device, &mut sampler, &mut outs)?;
    Ok(outs.out)
}

/// [`generate`] for continuations that share prompts: row `i` of the result continues
/// `prompts[owner[i]]`. Each prompt is computed once and its KV cache fanned out to its rows
/// ([`KvCache::select_rows`]), so G samples of one prompt cost one prefill. The tokens drawn
/// are those of [`generate`] on the prompts repeated as `owner` says, with the same seed.
pub fn generate_shared(
    model: &Decoder,
    prompts: &[Vec<u32>],
    owner: &[usize],
    cfg: &GenerationConfig,
    device: &Device,
) -> Result<Vec<Vec<u32>>> {
    cfg.validate()?;
    if let Some(&o) = owner.iter().find(|&&o| o >= prompts.len()) {
        return Err(EngineError::Data(format!(
            "generate_shared: owner {o} is not one of the {} prompts",
            prompts.len()
        )));
    }
    let mut outs = Outputs {
        out: vec![Vec::new(); owner.len()],
        done: vec![false; owner.len()],
        cfg,
    };
    if cfg.max_new_tokens == 0 || owner.is_empty() {
        return Ok(outs.out);
    }
    let mut sampler = Sampler {
        rng: StdRng::seed_from_u64(cfg.seed),
    };
    if !cfg.use_cache {
        let rows: Vec<Vec<u32>> = owner.iter().map(|&o| prompts[o].clone()).collect();
        return generate(model, &rows, cfg, device);
    }
    decode_cached(model, prompts, owner, cfg, device, &mut sampler, &mut outs)?;
    Ok(outs.out)
}

/// The cached decoding loop: prefill `prompts` once, fan the cache out to `owner`'s rows,
/// then one token per step for every row until all are done.
fn decode_cached(
    model: &Decoder,
    prompts: &[Vec<u32>],
    owner: &[usize],
    cfg: &GenerationConfig,
    device: &Device,
    sampler: &mut Sampler,
    outs: &mut Outputs<'_>,
) -> Result<()> {
    let mut cache = KvCache::new(model.layers.len());
    let batch = Batch::left_padded(prompts, cfg.pad_id, device)?;
    let mut logits = model
        .forward_tail(&batch, Some(&mut cache), false, 1)
        .logits;
    if cfg.preallocate {
        // Every token but the last is fed back.
        cache.reserve(cfg.max_new_tokens.saturating_sub(1));
    }
    let identity = owner.len() == prompts.len() && owner.iter().enumerate().all(|(i, &o)| i == o);
    if !identity {
        let idx = Tensor::<1, burn::tensor::Int>::from_data(
            TensorData::new(owner.iter().map(|&o| o as i64).collect(), [owner.len()]),
            device,
        );
        logits = logits.select(0, idx);
        cache = cache.select_rows(owner, device);
    }
    let total = owner.len();
    // Batch row j continues output row rows[j].
    let mut rows: Vec<usize> = (0..total).collect();
    let mut next = sampler.pick(cfg, logits, &rows, total)?;
    for step in 0..cfg.max_new_tokens {
        if outs.push(&next) || step + 1 == cfg.max_new_tokens {
            break;
        }
        if cfg.preallocate {
            let live: Vec<usize> = (0..rows.len()).filter(|&j| !outs.done[rows[j]]).collect();
            if live.len() * 4 <= rows.len() * 3 {
                cache = cache.select_rows(&live, device);
                rows = live.iter().map(|&j| rows[j]).collect();
                next = live.iter().map(|&j| next[j]).collect();
            }
        }
        let positions = cache
            .next_position
            .clone()
            .ok_or_else(|| EngineError::Numeric("cache has no positions after prefill".into()))?;
        let b = rows.len();
        let ids: Vec<i64> = next.iter().map(|&(_, t)| i64::from(t)).collect();
        let step_batch = Batch {
            ids: Tensor::from_data(TensorData::new(ids, [b, 1]), device),
            pad: Tensor::from_data(TensorData::new(vec![false; b], [b, 1]), device),
            positions,
        };
        let logits = model
            .forward_tail(&step_batch, Some(&mut cache), false, 1)
            .logits;
        next = sampler.pick(cfg, logits, &rows, total)?;
    }
    Ok(())
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
    let cfg = GenerationConfig {
        max_new_tokens,
        pad_id,
        stop_tokens: stop.to_vec(),
        use_cache,
        ..GenerationConfig::default()
    };
    generate(model, prompts, &cfg, device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_and_top_p_follow_hf_order() {
        // Probabilities at T=1: softmax([ln 0.5, ln 0.3, ln 0.15, ln 0.05]).
        let logits = [0.5f32.ln(), 0.3f32.ln(), 0.15f32.ln(), 0.05f32.ln()];
        let d = sampling_distribution(&logits, 1.0, 0, 1.0);
        let p: Vec<f32> = d.iter().map(|x| x.1).collect();
        for (a, b) in p.iter().zip([0.5, 0.3, 0.15, 0.05]) {
            assert!((a - b).abs() < 1e-6);
        }
        // top-p 0.75: the tail 0.05 + 0.15 ≤ 0.25 goes → two tokens, renormalised.
        let d = sampling_distribution(&logits, 1.0, 0, 0.75);
        assert_eq!(d.len(), 2);
        assert!((d[0].1 - 0.625).abs() < 1e-6 && (d[1].1 - 0.375).abs() < 1e-6);
        // top-p 0.85 drops only the 0.05 token.
        assert_eq!(sampling_distribution(&logits, 1.0, 0, 0.85).len(), 3);
        // top-k 1 is greedy whatever the temperature.
        let d = sampling_distribution(&logits, 5.0, 1, 1.0);
        assert_eq!(d, vec![(0, 1.0)]);
        // Temperature 0.5 squares the odds: 0.5² : 0.3² ...
        let d = sampling_distribution(&logits, 0.5, 2, 1.0);
        assert!((d[0].1 - 0.25 / 0.34).abs() < 1e-5);
    }

    #[test]
    fn the_partial_walk_draws_what_the_sorted_distribution_draws() {
        // Logits of a 49,152-token vocabulary like a model's (a few likely tokens, a long
        // tail, ties), and draws u over [0, 1) including ones deep in the tail.
        let mut rng = StdRng::seed_from_u64(3);
        let mut differ = 0;
        for case in 0..40 {
            let n = if case % 4 == 0 { 300 } else { 49_152 };
            let logits: Vec<f32> = (0..n)
                .map(|i: usize| {
                    let x: f32 = rng.random::<f32>() * 8.0 - 4.0;
                    if i.is_multiple_of(97) {
                        2.5
                    } else if i.is_multiple_of(13) {
                        x + 6.0
                    } else {
                        x
                    }
                })
                .collect();
            for (t, k) in [(1.0, 0), (0.7, 0), (1.0, 50), (1.3, 1000)] {
                let dist = sampling_distribution(&logits, t, k, 1.0);
                for j in 0..50 {
                    let u: f32 = if j < 5 {
                        1.0 - 1e-7 * j as f32
                    } else {
                        rng.random()
                    };
                    let mut acc = 0f32;
                    let mut want = dist.last().unwrap().0;
                    for &(tok, p) in &dist {
                        acc += p;
                        if u < acc {
                            want = tok;
                            break;
                        }
                    }
                    let got = draw_without_top_p(&logits, t, k, u);
                    assert_eq!(got, want, "case {case} T={t} k={k} u={u}");
                    differ += usize::from(got != dist[0].0);
                }
            }
        }
        // Most draws are not the most likely token: the walk goes past its first chunk.
        assert!(differ > 4000, "{differ}");
    }

    #[test]
    fn sampling_is_seeded_and_matches_its_distribution() {
        let logits = [0.5f32.ln(), 0.3f32.ln(), 0.2f32.ln()];
        let cfg = GenerationConfig {
            temperature: 1.0,
            ..GenerationConfig::default()
        };
        let draw = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..20_000)
                .map(|_| sample_row(&logits, &cfg, &mut rng).unwrap())
                .collect::<Vec<_>>()
        };
        let a = draw(7);
        assert_eq!(a, draw(7));
        assert_ne!(a, draw(8));
        for (tok, p) in [(0u32, 0.5f64), (1, 0.3), (2, 0.2)] {
            let f = a.iter().filter(|&&t| t == tok).count() as f64 / a.len() as f64;
            assert!((f - p).abs() < 0.015, "token {tok}: {f} vs {p}");
        }
    }
}
