//! Answer-only vs CoT latency of one model on the same prompts, in one run (paper §4 RQ2, the
//! ">100×" claim): per-sample latency at batch 1 and mean output tokens of greedy CoT decoding
//! (up to `</answer>` or `[eval] max_new_tokens`) and of the one-forward answer-only rating
//! (prompt + "\n<think>\n</think>\n<answer>", rating tokens read from one forward pass), then
//! answer-only throughput at batch 32. The weights are the run's newest (stage 2, else stage
//! 1, else the base model) unless `--stage` says otherwise. Prints a markdown table and one
//! JSON line.
//!
//! ```text
//! ao-vs-cot-latency CONFIG [--set KEY=VALUE]... [--n N] [--stage 1|2|base]
//! ```
//! `benchmarks/ao-vs-cot-latency.sh` builds and runs it on the paper config.

use std::time::Instant;

use anyhow::{Context, bail};
use siren_core::answer::AO_SUFFIX;
use siren_core::config::RunConfig;
use siren_core::engine::{GenerationConfig, generate};
use siren_core::rating::{RatingTokens, rating_distributions};
use siren_core::run::RunDir;
use siren_core::stages::{self, eval::Weights};
use {siren_backends as _, siren_plugins as _};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut config, mut sets, mut n, mut weights) = (None, Vec::new(), 20usize, Weights::Auto);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--set" => sets.push(args.next().context("--set needs KEY=VALUE")?),
            "--n" => n = args.next().context("--n needs a number")?.parse()?,
            "--stage" => {
                weights = match args.next().as_deref() {
                    Some("1") => Weights::Stage1,
                    Some("2") => Weights::Stage2,
                    Some("base") => Weights::Base,
                    other => bail!("--stage takes 1, 2 or base, not {other:?}"),
                }
            }
            _ if config.is_none() => config = Some(std::path::PathBuf::from(a)),
            _ => bail!("unexpected argument `{a}`"),
        }
    }
    let path = config.context(
        "usage: ao-vs-cot-latency CONFIG [--set KEY=VALUE]... [--n N] [--stage 1|2|base]",
    )?;
    let config = RunConfig::load(&path, &sets)?;
    config.validate()?;
    let model_cfg = config.model.as_ref().context("the config has no [model]")?;
    let run = RunDir::create(&config, &config.device)?;
    let ds = stages::load_dataset(&config)?;
    let (device, label) = siren_core::device::open(&config.device)?;
    let (model, tok) = stages::load_run_model(&config, &device, "the benchmark")?;
    let (model, method) = stages::eval::weighted_model(&config, &run, &weights, model)?;
    let rows = stages::sample_rows(ds.split(config.eval.split), Some(n), config.seed);
    let sketches = stages::sketches_for(&config, &ds, &run)?;
    let examples = stages::examples(&config, &ds, &rows, &sketches, &tok)?;
    let cot: Vec<Vec<u32>> = examples
        .iter()
        .map(|e| tok.encode(&e.prompt, false))
        .collect::<Result<_, _>>()?;
    let ao: Vec<Vec<u32>> = examples
        .iter()
        .map(|e| tok.encode(&format!("{}{AO_SUFFIX}", e.prompt), false))
        .collect::<Result<_, _>>()?;
    let rt = RatingTokens::new(&tok, 5)?;
    let pad = tok.pad_id();
    let gen_cfg = GenerationConfig {
        stop_tokens: tok.eos.into_iter().collect(),
        stop: tok.stop_strings(&["</answer>".to_string()]),
        pad_id: pad,
        ..GenerationConfig::greedy(config.eval.max_new_tokens)
    };
    // One untimed pass of each kind (allocator and backend warm-up).
    generate(&model, &cot[..1], &gen_cfg, &device)?;
    rating_distributions(&model, &ao[..1], &rt, pad, &device)?;

    let (mut cot_s, mut cot_tokens) = (0.0, 0usize);
    for p in &cot {
        let t = Instant::now();
        let out = generate(&model, std::slice::from_ref(p), &gen_cfg, &device)?;
        cot_s += t.elapsed().as_secs_f64();
        cot_tokens += out[0].len();
    }
    let mut ao_s = 0.0;
    for p in &ao {
        let t = Instant::now();
        rating_distributions(&model, std::slice::from_ref(p), &rt, pad, &device)?;
        ao_s += t.elapsed().as_secs_f64();
    }
    let batch: Vec<Vec<u32>> = ao.iter().cycle().take(32).cloned().collect();
    let t = Instant::now();
    rating_distributions(&model, &batch, &rt, pad, &device)?;
    let b32 = t.elapsed().as_secs_f64();

    let n = examples.len() as f64;
    let prompt_tokens = cot.iter().map(Vec::len).sum::<usize>() as f64 / n;
    let (cot_lat, ao_lat) = (cot_s / n, ao_s / n);
    println!(
        "{} (`{method}` weights), {label}, {n} {} prompts of {prompt_tokens:.0} tokens on average, \
         CoT up to {} new tokens",
        model_cfg.path.display(),
        config.eval.split.as_str(),
        config.eval.max_new_tokens
    );
    println!();
    println!("| decoding | batch | s/sample | mean output tokens | samples/s |");
    println!("|---|---|---|---|---|");
    println!(
        "| CoT (greedy) | 1 | {cot_lat:.3} | {:.1} | {:.2} |",
        cot_tokens as f64 / n,
        1.0 / cot_lat
    );
    println!(
        "| answer-only | 1 | {ao_lat:.3} | 1 | {:.2} |",
        1.0 / ao_lat
    );
    println!(
        "| answer-only | 32 | {:.3} | 1 | {:.2} |",
        b32 / 32.0,
        32.0 / b32
    );
    println!();
    println!(
        "CoT / answer-only latency at batch 1: {:.1}×",
        cot_lat / ao_lat
    );
    println!(
        "{}",
        serde_json::json!({
            "model": model_cfg.path, "weights": method, "device": label, "n": n,
            "prompt_tokens": prompt_tokens, "cot_s": cot_lat, "cot_tokens": cot_tokens as f64 / n,
            "ao_s": ao_lat, "ao_b32_s_per_sample": b32 / 32.0, "ratio": cot_lat / ao_lat,
        })
    );
    Ok(())
}
