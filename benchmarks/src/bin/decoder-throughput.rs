//! Prefill and decode throughput of the decoder engine at batch 1, printed as one JSON line per
//! device. `benchmarks/decoder-vs-transformers.sh` runs it beside HF transformers on the same
//! weights and prompt and prints the ratios.
//!
//! ```text
//! decoder-throughput <model.gguf> <prompt_ids.json> <new_tokens> <repeats> <device>...
//! ```
//! `prompt_ids.json` is a JSON array of token ids (the harness writes it with the model's
//! tokenizer so both sides see the same tokens).

use std::time::Instant;

use anyhow::{Context, bail};
use siren_core::burn::tensor::{Device, Tensor, TensorData};
use siren_core::engine::{Batch, Decoder, KvCache};
use siren_core::loading::load_gguf;

fn argmax_last(logits: Tensor<3>) -> anyhow::Result<u32> {
    let [b, s, v] = logits.dims();
    let ids = logits
        .narrow(1, s - 1, 1)
        .reshape([b, v])
        .argmax(1)
        .try_into_vec_as::<i64>()
        .map_err(|e| anyhow::anyhow!("reading argmax: {e:?}"))?;
    Ok(ids[0] as u32)
}

/// One timed run: (prefill seconds, decode seconds for `new_tokens` greedy steps).
fn run_once(
    model: &Decoder,
    prompt: &[u32],
    new_tokens: usize,
    device: &Device,
) -> anyhow::Result<(f64, f64)> {
    let t = Instant::now();
    let mut cache = KvCache::new(model.layers.len());
    let batch = Batch::left_padded(&[prompt.to_vec()], 0, device)?;
    let mut next = argmax_last(model.forward(&batch, Some(&mut cache), false).logits)?;
    let prefill = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for k in 0..new_tokens {
        let pos = (prompt.len() + k) as i64;
        let step = Batch {
            ids: Tensor::from_data(TensorData::new(vec![i64::from(next)], [1, 1]), device),
            pad: Tensor::from_data(TensorData::new(vec![false], [1, 1]), device),
            positions: Tensor::from_data(TensorData::new(vec![pos], [1, 1]), device),
        };
        next = argmax_last(model.forward(&step, Some(&mut cache), false).logits)?;
    }
    Ok((prefill, t.elapsed().as_secs_f64()))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 6 {
        bail!(
            "usage: {} <model.gguf> <prompt_ids.json> <new_tokens> <repeats> <device>...",
            args[0]
        );
    }
    let model_path = std::path::Path::new(&args[1]);
    let prompt: Vec<u32> = serde_json::from_str(
        &std::fs::read_to_string(&args[2]).with_context(|| format!("reading {}", args[2]))?,
    )
    .with_context(|| format!("{}: expected a JSON array of token ids", args[2]))?;
    let new_tokens: usize = args[3].parse().context("new_tokens")?;
    let repeats: usize = args[4].parse().context("repeats")?;
    for spec in &args[5..] {
        let (device, label) = siren_backends::open(spec)?;
        let t = Instant::now();
        let (model, _) = load_gguf(model_path, &device)?;
        let load = t.elapsed().as_secs_f64();
        run_once(&model, &prompt, 2, &device)?; // warm-up
        let mut pre = Vec::new();
        let mut dec = Vec::new();
        for _ in 0..repeats.max(1) {
            let (p, d) = run_once(&model, &prompt, new_tokens, &device)?;
            pre.push(p);
            dec.push(d);
        }
        let (p, d) = (median(pre), median(dec));
        println!(
            "{}",
            serde_json::json!({
                "impl": "siren-rs",
                "device": spec,
                "label": label,
                "load_s": load,
                "prompt_tokens": prompt.len(),
                "new_tokens": new_tokens,
                "prefill_s": p,
                "decode_s": d,
                "prefill_tok_s": prompt.len() as f64 / p,
                "decode_tok_s": new_tokens as f64 / d,
            })
        );
    }
    Ok(())
}
