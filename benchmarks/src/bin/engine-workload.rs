//! The SIREN workload on the engine, the per-sequence path against the shared-prefix path, in
//! one run on the same weights, prompts and samples (issue "compute each user prompt once"):
//!
//! - `peak`: a 1024³ f32 matmul on the device, the reference for achieved GFLOP/s;
//! - `grpo`: one GRPO step on `--prompts` training prompts × `--group` samples of up to
//!   `--response` tokens (sampling at T = 1 with no early stop, so every sample is that long):
//!   sampling (per sequence, shared prefix with the cache grown by concatenation, shared
//!   prefix with the preallocated cache), reference log-probs (no gradient), then the policy's
//!   log-probs with gradients and the AdamW update, in micro-batches of `--micro` sequences.
//!   The shared-prefix column is the `grpo` trainer's own step
//!   ([`siren_trainers::grpo::step`]: whole groups per micro-batch, the GRPO loss with the KL
//!   term, advantages from the config's `reward` slot, gradients accumulated into one update);
//!   the per-sequence column steps AdamW on each micro-batch's summed log-probs. Seconds per
//!   phase and achieved GFLOP/s;
//! - `ao-sft`: one answer-only SFT step at micro-batch `--micro` on prompts cut or padded to
//!   `--sft-tokens` tokens: forward, backward and optimizer seconds, the attention and
//!   output-projection share measured on their own, GFLOP/s and peak resident memory;
//! - `rank`: `--candidates` items for one user, each pair alone against the user prefix
//!   computed once (answer-only distributions compared);
//! - `eval`: answer-only seconds per user on `--eval-users` valid users at each batch size of
//!   `--batches`, plain left-padded batches against the common prefix + length buckets.
//!
//! ```text
//! engine-workload CONFIG [--set KEY=VALUE]... [--only grpo,ao-sft,rank,eval] [--prompts 8]
//!     [--group 8] [--response 64] [--micro 4] [--sft-tokens 512] [--candidates 100]
//!     [--eval-users 64] [--batches 1,8,16,32] [--json FILE] [--no-per-sequence]
//! ```
//! `--no-per-sequence` skips the per-sequence GRPO columns (long at reasoning lengths); the
//! shared path's sampling is always also timed with the cache grown by concatenation (the path
//! the preallocated cache replaced), and the samples of every path are compared.
//! `benchmarks/engine-workload.sh` builds and runs it. FLOPs are counted from the model's
//! shapes: `2·(linear weights)·tokens` per forward, plus attention `4·layers·heads·head_dim`
//! per (query, key) pair and the output projection on the columns that need logits; a LoRA
//! backward computes input gradients only (one more forward's worth), a full one also weight
//! gradients.

use std::time::Instant;

use anyhow::{Context, bail};
use siren_core::answer::AO_SUFFIX;
use siren_core::burn::module::Module;
use siren_core::burn::optim::{AdamWConfig, GradientsParams};
use siren_core::burn::tensor::{Device, Tensor};
use siren_core::config::RunConfig;
use siren_core::engine::{
    Decoder, GenerationConfig, LoraSpec, SharedPrefix, completion_logprobs_at, generate,
    generate_shared, shared_prefix_logprobs,
};
use siren_core::rating::{RatingTokens, answer_scores, score_grouped};
use siren_core::registry;
use siren_core::run::RunDir;
use siren_core::stages;
use siren_core::traits::Reward;
use siren_trainers::grpo::{self, GrpoParams, Learner, LossAgg, StepSettings};
use siren_trainers::{Sampling, Stops};
use {siren_backends as _, siren_plugins as _};

/// The seed of every sampling path.
const SEED: u64 = 7;

struct Args {
    config: std::path::PathBuf,
    sets: Vec<String>,
    only: Vec<String>,
    prompts: usize,
    group: usize,
    response: usize,
    micro: usize,
    sft_tokens: usize,
    candidates: usize,
    eval_users: usize,
    batches: Vec<usize>,
    json: Option<std::path::PathBuf>,
    checkpointing: bool,
    per_sequence: bool,
}

fn parse() -> anyhow::Result<Args> {
    let mut a = Args {
        config: Default::default(),
        sets: Vec::new(),
        only: ["peak", "grpo", "ao-sft", "rank", "eval"]
            .map(String::from)
            .to_vec(),
        prompts: 8,
        group: 8,
        response: 64,
        micro: 4,
        sft_tokens: 512,
        candidates: 100,
        eval_users: 64,
        batches: vec![1, 8, 16, 32],
        json: None,
        checkpointing: false,
        per_sequence: true,
    };
    let mut config = None;
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        let mut val = || it.next().with_context(|| format!("{x} needs a value"));
        match x.as_str() {
            "--set" => a.sets.push(val()?),
            "--only" => {
                a.only = val()?.split(',').map(str::to_string).collect();
                a.only.push("peak".into());
            }
            "--prompts" => a.prompts = val()?.parse()?,
            "--group" => a.group = val()?.parse()?,
            "--response" => a.response = val()?.parse()?,
            "--micro" => a.micro = val()?.parse()?,
            "--sft-tokens" => a.sft_tokens = val()?.parse()?,
            "--candidates" => a.candidates = val()?.parse()?,
            "--eval-users" => a.eval_users = val()?.parse()?,
            "--batches" => {
                a.batches = val()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            "--json" => a.json = Some(val()?.into()),
            "--checkpointing" => a.checkpointing = true,
            "--no-per-sequence" => a.per_sequence = false,
            _ if config.is_none() && !x.starts_with("--") => config = Some(x.into()),
            _ => bail!("unexpected argument `{x}`"),
        }
    }
    a.config = config.context("usage: engine-workload CONFIG [options] (see the source docs)")?;
    Ok(a)
}

/// FLOP model of one decoder (see the module docs).
struct Flops {
    linear: f64,
    layers: f64,
    attn_width: f64,
    head: f64,
}

impl Flops {
    fn new(m: &Decoder) -> Self {
        let s = &m.spec;
        let (h, hd) = (s.hidden_size as f64, s.head_dim as f64);
        let (nh, nkv, ff) = (
            s.num_heads as f64,
            s.num_kv_heads as f64,
            s.intermediate_size as f64,
        );
        let per_layer = h * nh * hd * 2.0 + h * nkv * hd * 2.0 + 3.0 * h * ff;
        Self {
            linear: per_layer * s.num_layers as f64,
            layers: s.num_layers as f64,
            attn_width: nh * hd,
            head: h * s.vocab_size as f64,
        }
    }
    /// Forward FLOPs: `tokens` computed, `pairs` (query, key) attention pairs, `logits`
    /// columns of the output projection.
    fn forward(&self, tokens: f64, pairs: f64, logits: f64) -> f64 {
        2.0 * self.linear * tokens
            + 4.0 * self.layers * self.attn_width * pairs
            + 2.0 * self.head * logits
    }
}

fn rss_peak_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn reset_rss_peak() {
    // Writing 5 to clear_refs resets the peak resident set size (Linux ≥ 4.0).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn matmul_peak(device: &Device) -> anyhow::Result<f64> {
    let n = 1024;
    let a = Tensor::<2>::random(
        [n, n],
        siren_core::burn::tensor::Distribution::Default,
        device,
    );
    let b = Tensor::<2>::random(
        [n, n],
        siren_core::burn::tensor::Distribution::Default,
        device,
    );
    let _ = a.clone().matmul(b.clone()).sum().into_scalar::<f32>();
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        let _ = a.clone().matmul(b.clone()).sum().into_scalar::<f32>();
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(2.0 * (n as f64).powi(3) / best / 1e9)
}

fn lora(model: Decoder) -> anyhow::Result<Decoder> {
    let spec = LoraSpec {
        r: 8,
        alpha: 16.0,
        dropout: 0.0,
    };
    Ok(model.add_lora(&spec, |_| true, 1)?.0)
}

fn timed<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<(T, f64)> {
    let t = Instant::now();
    let v = f()?;
    Ok((v, t.elapsed().as_secs_f64()))
}

/// What every part of the benchmark shares.
struct Bench<'a> {
    args: &'a Args,
    config: RunConfig,
    ds: siren_core::data::Dataset,
    device: Device,
    base: Decoder,
    tok: siren_core::engine::TextTokenizer,
    flops: Flops,
    pad: u32,
    sketches: stages::sketch::PromptSketches,
    peak: f64,
}

/// The seconds and FLOPs of one GRPO step on both paths (`[per-sequence, shared prefix]`).
struct GrpoTimes {
    sampling: [f64; 2],
    sampling_grown: f64,
    reference: [f64; 2],
    update: [f64; 2],
    gen_flops: [f64; 2],
    lp_flops: [f64; 2],
    same: bool,
    /// Prompts, group size, response tokens, mean prompt tokens.
    shape: (usize, usize, usize, f64),
}

/// Prints the GRPO table and returns its JSON.
fn grpo_table(t: &GrpoTimes) -> serde_json::Value {
    let [s_plain, s_shared] = t.sampling;
    let s_grown = t.sampling_grown;
    let [ref_plain, ref_shared] = t.reference;
    let [upd_plain, upd_shared] = t.update;
    let [gen_flops_plain, gen_flops_shared] = t.gen_flops;
    let [lp_plain, lp_shared] = t.lp_flops;
    let same = t.same;
    let (prompts, g, response, mean_p) = t.shape;
    let total_plain = s_plain + ref_plain + upd_plain;
    let total_shared = s_shared + ref_shared + upd_shared;
    let gf = |f: f64, s: f64| f / s / 1e9;
    println!(
        "| phase | per-sequence s | shared-prefix s | ratio | per-seq GFLOP/s | shared GFLOP/s |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| sampling | {s_plain:.1} | {s_shared:.1} | {:.2}× | {:.0} | {:.0} |",
        s_plain / s_shared,
        gf(gen_flops_plain, s_plain),
        gf(gen_flops_shared, s_shared)
    );
    println!(
        "| reference log-probs | {ref_plain:.1} | {ref_shared:.1} | {:.2}× | {:.0} | {:.0} |",
        ref_plain / ref_shared,
        gf(lp_plain, ref_plain),
        gf(lp_shared, ref_shared)
    );
    println!(
        "| policy log-probs + backward + AdamW | {upd_plain:.1} | {upd_shared:.1} | {:.2}× | {:.0} | {:.0} |",
        upd_plain / upd_shared,
        gf(2.0 * lp_plain, upd_plain),
        gf(2.0 * lp_shared, upd_shared)
    );
    println!(
        "| **step** | **{total_plain:.1}** | **{total_shared:.1}** | **{:.2}×** | | |",
        total_plain / total_shared
    );
    let total_grown = s_grown + ref_shared + upd_shared;
    println!(
        "| sampling, shared prefix with the cache grown by concatenation (before) | | {s_grown:.1} | {:.2}× slower | | {:.0} |",
        s_grown / s_shared,
        gf(gen_flops_shared, s_grown)
    );
    println!(
        "| step with that sampling (before) | | {total_grown:.1} | {:.2}× slower | | |",
        total_grown / total_shared
    );
    println!("samples identical on every path: {same}");
    serde_json::json!({
        "sampling_grown_cache_s": s_grown, "step_grown_cache_s": total_grown,
        "prompts": prompts, "group": g, "response": response, "prompt_tokens": mean_p,
        "sampling_s": [s_plain, s_shared], "reference_s": [ref_plain, ref_shared],
        "update_s": [upd_plain, upd_shared], "step_s": [total_plain, total_shared],
        "gflops": [gf(gen_flops_plain + 3.0 * lp_plain, total_plain), gf(gen_flops_shared + 3.0 * lp_shared, total_shared)],
        "samples_identical": same,
    })
}

/// The policy's log-probs, backward and an AdamW update per micro-batch of `micro` sequences,
/// each prompt computed with its completion (the per-sequence path).
fn per_sequence_updates(
    mut m: Decoder,
    (repeated, comps): (&[Vec<u32>], &[Vec<u32>]),
    micro: usize,
    pad: u32,
    optim: &mut siren_core::burn::optim::ModuleOptimizer,
    device: &Device,
) -> anyhow::Result<()> {
    for c in (0..comps.len()).collect::<Vec<_>>().chunks(micro) {
        let pr: Vec<Vec<u32>> = c.iter().map(|&j| repeated[j].clone()).collect();
        let co: Vec<Vec<u32>> = c.iter().map(|&j| comps[j].clone()).collect();
        let sc = completion_logprobs_at(&m, &pr, &co, pad, 1.0, device)?;
        let grads = GradientsParams::from_grads(sc.logprobs.sum().backward(), &m);
        m = optim.step(1e-5, m, grads);
    }
    Ok(())
}

/// The shared-prefix path of [`grpo`]: the `grpo` trainer's own step (sampling with the
/// preallocated cache, reference log-probs, then the policy's log-probs, the GRPO loss and
/// backward per micro-batch of whole groups, one AdamW update) on a copy of `policy`, with
/// advantages from the config's `reward` slot.
fn trainer_step(
    b: &Bench<'_>,
    (ex, prompts): (&[siren_core::train::Example], &[Vec<u32>]),
    (policy, ref_model): (&Decoder, &Decoder),
    train_dev: &Device,
) -> anyhow::Result<grpo::StepOutcome> {
    let Bench {
        args, config, tok, ..
    } = b;
    let g = args.group;
    let rw = stages::train::reward_slot(config);
    let reward = registry::build::<dyn Reward>(&rw.kind, &rw.params)?;
    let settings = StepSettings {
        sampling: Sampling {
            group_size: g,
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            max_response_tokens: args.response,
            generation_batch: prompts.len() * g,
        },
        stops: Stops::default(),
        micro_batch: args.micro,
        clip: (0.8, 1.2),
        kl_coef: GrpoParams::default().kl_coef,
        inner_steps: 1,
        loss_agg: LossAgg::SeqMeanTokenMean,
    };
    let mut trained = policy.clone();
    let mut optim = config.training.optimizer();
    let indices: Vec<usize> = (0..prompts.len()).collect();
    Ok(grpo::step(
        Learner {
            model: &mut trained,
            optim: &mut optim,
            reference: Some(ref_model.clone()),
            device: train_dev,
            pad: b.pad,
        },
        prompts,
        &indices,
        &settings,
        (config.training.lr, 0, SEED),
        &mut |samples| {
            let rewards: Vec<f32> = samples
                .iter()
                .map(|x| {
                    let text = tok.decode_generated(&x.ids)?;
                    Ok(reward.score(&text, ex[x.prompt].rating).total())
                })
                .collect::<siren_core::Result<_>>()?;
            Ok(grpo::group_advantages(&rewards, g, 1e-6).0)
        },
    )?)
}

/// One GRPO step, per sequence against shared prefix (see the module docs).
fn grpo(b: &Bench<'_>) -> anyhow::Result<serde_json::Value> {
    let Bench {
        args,
        config,
        ds,
        device,
        tok,
        flops,
        sketches,
        ..
    } = b;
    let pad = b.pad;

    let rows = stages::sample_rows(&ds.train, Some(args.prompts), config.seed);
    let ex = stages::examples(config, ds, &rows, sketches, tok)?;
    let prompts: Vec<Vec<u32>> = ex
        .iter()
        .map(|e| tok.encode(&e.prompt, false))
        .collect::<Result<_, _>>()?;
    let g = args.group;
    let owner: Vec<usize> = (0..prompts.len())
        .flat_map(|i| std::iter::repeat_n(i, g))
        .collect();
    let repeated: Vec<Vec<u32>> = owner.iter().map(|&o| prompts[o].clone()).collect();
    let cfg = GenerationConfig {
        max_new_tokens: args.response,
        temperature: 1.0,
        seed: SEED,
        pad_id: pad,
        ..GenerationConfig::default()
    };
    let train_dev = device.clone().autodiff();
    let (tmodel, _) = stages::load_run_model(config, &train_dev, "the benchmark")?;
    let policy = lora(tmodel)?;
    let infer = policy.valid();
    let n = owner.len() as f64;
    let p_tokens: f64 = prompts.iter().map(|p| p.len() as f64).sum();
    let mean_p = p_tokens / prompts.len() as f64;
    println!(
        "\n## GRPO step: {} prompts × G={g}, {} response tokens, prompts of {mean_p:.0} tokens",
        prompts.len(),
        args.response
    );
    // Sampling: per sequence; shared prefix with the cache grown by concatenation (the
    // earlier path); shared prefix with the preallocated cache (the trainer's step below).
    let per_seq = args.per_sequence;
    let skip = |run: bool, f: &dyn Fn() -> anyhow::Result<Vec<Vec<u32>>>| {
        if run {
            timed(f)
        } else {
            Ok((Vec::new(), f64::NAN))
        }
    };
    let (plain_samples, s_plain) =
        skip(per_seq, &|| Ok(generate(&infer, &repeated, &cfg, device)?))?;
    let grown = GenerationConfig {
        preallocate: false,
        ..cfg.clone()
    };
    let (grown_samples, s_grown) =
        timed(|| Ok(generate_shared(&infer, &prompts, &owner, &grown, device)?))?;
    let micro = args.micro;
    let ref_model = infer.clone();
    let out = trainer_step(b, (&ex, &prompts), (&policy, &ref_model), &train_dev)?;
    let (s_shared, ref_shared, upd_shared) = (out.sampling_s, out.reference_s, out.update_s);
    let shared_samples: Vec<Vec<u32>> = out.samples.into_iter().map(|x| x.ids).collect();
    let same = (!per_seq || plain_samples == shared_samples) && grown_samples == shared_samples;
    let r = args.response as f64;
    let gen_flops_plain = flops.forward(n * mean_p, n * mean_p * mean_p / 2.0, n)
        + flops.forward(n * r, n * r * (mean_p + r / 2.0), n * r);
    let gen_flops_shared = flops.forward(p_tokens, p_tokens * mean_p / 2.0, prompts.len() as f64)
        + flops.forward(n * r, n * r * (mean_p + r / 2.0), n * r);
    // The per-sequence path's log-probs on the same samples.
    let comps = shared_samples;
    let (_, ref_plain) = skip(per_seq, &|| {
        for c in (0..comps.len()).collect::<Vec<_>>().chunks(micro) {
            let pr: Vec<Vec<u32>> = c.iter().map(|&j| repeated[j].clone()).collect();
            let co: Vec<Vec<u32>> = c.iter().map(|&j| comps[j].clone()).collect();
            completion_logprobs_at(&ref_model, &pr, &co, pad, 1.0, device)?;
        }
        Ok(Vec::new())
    })?;
    let mut optim = AdamWConfig::new().init();
    let mut upd_plain = f64::NAN;
    if per_seq {
        upd_plain = timed(|| {
            let m = policy.clone();
            per_sequence_updates(m, (&repeated, &comps), micro, pad, &mut optim, &train_dev)
        })?
        .1;
    }
    let lp_plain = flops.forward(
        n * (mean_p + r),
        n * (mean_p + r).powi(2) / 2.0,
        n * (r + 1.0),
    );
    let lp_shared = flops.forward(
        p_tokens + n * r,
        p_tokens * mean_p / 2.0 + n * r * (mean_p + r / 2.0),
        n * r,
    );
    Ok(grpo_table(&GrpoTimes {
        sampling: [s_plain, s_shared],
        sampling_grown: s_grown,
        reference: [ref_plain, ref_shared],
        update: [upd_plain, upd_shared],
        gen_flops: [gen_flops_plain, gen_flops_shared],
        lp_flops: [lp_plain, lp_shared],
        same,
        shape: (prompts.len(), g, args.response, mean_p),
    }))
}

/// Seconds of causal attention alone (forward and backward) at the ao-sft shapes, times the
/// number of layers.
fn attention_alone(
    micro: usize,
    len: usize,
    s: &siren_core::engine::DecoderSpec,
    train_dev: &Device,
) -> f64 {
    let (bb, nh, hd) = (micro, s.num_heads, s.head_dim);
    let q = Tensor::<4>::random(
        [bb, nh, len, hd],
        siren_core::burn::tensor::Distribution::Default,
        train_dev,
    )
    .require_grad();
    let k = Tensor::<4>::random(
        [bb, nh, len, hd],
        siren_core::burn::tensor::Distribution::Default,
        train_dev,
    )
    .require_grad();
    let v = Tensor::<4>::random(
        [bb, nh, len, hd],
        siren_core::burn::tensor::Distribution::Default,
        train_dev,
    )
    .require_grad();
    let mask = Tensor::<2, siren_core::burn::tensor::Bool>::tril_mask([len, len], 0, train_dev)
        .reshape([1, 1, len, len])
        .expand([bb, nh, len, len]);
    let t = Instant::now();
    let sc = q
        .matmul(k.swap_dims(2, 3))
        .mul_scalar(0.125)
        .mask_fill(mask, -1e9);
    let o = siren_core::burn::tensor::activation::softmax(sc, 3).matmul(v);
    let _ = o.sum().backward();
    t.elapsed().as_secs_f64() * s.num_layers as f64
}

/// Seconds of the output projection and log-softmax alone (forward and backward) on the
/// answer columns of a micro-batch.
fn head_alone(micro: usize, base: &Decoder, train_dev: &Device) -> f64 {
    let x = Tensor::<2>::random(
        [micro * 3, base.spec.hidden_size],
        siren_core::burn::tensor::Distribution::Default,
        train_dev,
    )
    .require_grad();
    let w = base.embed_tokens.weight.val();
    let w = Tensor::<2>::from_data(w.into_data(), train_dev);
    let t = Instant::now();
    let l = x.matmul(w.transpose());
    let _ = siren_core::burn::tensor::activation::log_softmax(l, 1)
        .sum()
        .backward();
    t.elapsed().as_secs_f64()
}

/// One answer-only SFT step, per sequence against shared prefix, with the attention and
/// output-projection shares.
fn ao_sft(b: &Bench<'_>) -> anyhow::Result<serde_json::Value> {
    let Bench {
        args,
        config,
        ds,
        device,
        base,
        tok,
        flops,
        sketches,
        ..
    } = b;
    let (pad, peak) = (b.pad, b.peak);

    let rows = stages::sample_rows(&ds.train, Some(args.micro * 4), config.seed + 1);
    let ex = stages::examples(config, ds, &rows, sketches, tok)?;
    let len = args.sft_tokens;
    let mut prompts = Vec::new();
    let mut comps = Vec::new();
    for e in ex.iter().take(args.micro) {
        let mut p = tok.encode(&format!("{}{AO_SUFFIX}", e.prompt), false)?;
        // Cut to the last `len` tokens, or repeat the head to reach `len`.
        while p.len() < len {
            let extra: Vec<u32> = p[..(len - p.len()).min(p.len())].to_vec();
            p.splice(0..0, extra);
        }
        p.drain(..p.len() - len);
        prompts.push(p);
        comps.push(tok.encode(&format!("{}</answer>", e.rating as u32), false)?);
    }
    let b = prompts.len() as f64;
    let train_dev = if args.checkpointing {
        device.clone().autodiff().gradient_checkpointing()
    } else {
        device.clone().autodiff()
    };
    let (tmodel, _) = stages::load_run_model(config, &train_dev, "the benchmark")?;
    let mut m = lora(tmodel)?;
    let mut optim = AdamWConfig::new().init();
    let owner: Vec<usize> = (0..prompts.len()).collect();
    let c = comps.iter().map(Vec::len).max().unwrap_or(1) as f64;
    let f_fwd = flops.forward(b * (len as f64 + c), b * (len as f64).powi(2) / 2.0, b * c);
    let mut rows_out = Vec::new();
    for (name, shared) in [("per-sequence", false), ("shared prefix", true)] {
        reset_rss_peak();
        let mut best = (f64::INFINITY, 0.0, 0.0, 0.0);
        for _ in 0..3 {
            let t = Instant::now();
            let sc = if shared {
                shared_prefix_logprobs(
                    &m,
                    SharedPrefix {
                        prompts: &prompts,
                        owner: &owner,
                        completions: &comps,
                    },
                    pad,
                    1.0,
                    &train_dev,
                )?
            } else {
                completion_logprobs_at(&m, &prompts, &comps, pad, 1.0, &train_dev)?
            };
            let loss = sc.logprobs.sum().neg();
            let _ = loss.clone().into_scalar::<f32>();
            let fwd = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let grads = GradientsParams::from_grads(loss.backward(), &m);
            let bwd = t.elapsed().as_secs_f64();
            let t = Instant::now();
            m = optim.step(1e-5, m, grads);
            let _ = m.layers[0]
                .self_attn
                .q_proj
                .adapter
                .as_ref()
                .map(|a| a.lora_b.val().sum().into_scalar::<f32>());
            let opt = t.elapsed().as_secs_f64();
            if fwd + bwd + opt < best.0 {
                best = (fwd + bwd + opt, fwd, bwd, opt);
            }
        }
        let rss = rss_peak_mb();
        let gflops = 2.0 * f_fwd / best.0 / 1e9;
        rows_out.push((name, best, gflops, rss));
    }
    // Attention and the output projection alone, at the same shapes (fwd + bwd).
    let s = &base.spec;
    let attn_s = attention_alone(args.micro, len, s, &train_dev);
    let head_s = head_alone(args.micro, base, &train_dev);
    println!(
        "\n## ao-sft step: micro-batch {} × {len} tokens, LoRA r=8 on every linear site",
        args.micro
    );
    println!(
        "| path | forward s | backward s | AdamW s | step s | GFLOP/s | % of matmul peak | peak RSS MB |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, (tot, f, bw, o), gflops, rss) in &rows_out {
        println!(
            "| {name} | {f:.2} | {bw:.2} | {o:.3} | {tot:.2} | {gflops:.0} | {:.0}% | {rss:.0} |",
            100.0 * gflops / peak
        );
    }
    println!(
        "attention alone (fwd+bwd, {} layers): {attn_s:.2} s; output projection + log-softmax on the answer columns: {head_s:.3} s",
        s.num_layers
    );
    Ok(serde_json::json!({
        "micro": args.micro, "tokens": len,
        "rows": rows_out.iter().map(|(n, (t, f, b, o), g, r)| serde_json::json!({"path": n, "step_s": t, "forward_s": f, "backward_s": b, "optimizer_s": o, "gflops": g, "peak_rss_mb": r})).collect::<Vec<_>>(),
        "attention_s": attn_s, "head_s": head_s,
    }))
}

/// `--candidates` candidates of one user: each pair alone against the user prefix once.
fn rank(b: &Bench<'_>) -> anyhow::Result<serde_json::Value> {
    let Bench {
        args,
        config,
        ds,
        device,
        base,
        tok,
        sketches,
        ..
    } = b;
    let pad = b.pad;
    let rt = RatingTokens::new(tok, 5)?;

    // One valid user, `--candidates` items of the catalog as candidates.
    let user = ds.valid[0].user;
    let pb = siren_core::prompt::PromptBuilder::new(config.prompt.clone())?;
    let full = stages::predict::full_timelines(ds);
    let count = |s: &str| tok.encode(s, false).map(|v| v.len()).unwrap_or(0);
    // Candidates the user has not rated (the ranking case).
    let seen: std::collections::HashSet<u32> = full[user as usize].iter().map(|x| x.item).collect();
    let step = (ds.items.len() / (args.candidates + seen.len())).max(1);
    let items: Vec<u32> = (0..ds.items.len())
        .step_by(step)
        .map(|i| i as u32)
        .filter(|i| !seen.contains(i))
        .take(args.candidates)
        .collect();
    let mut prompts = Vec::new();
    for &item in &items {
        let p = stages::predict::pair_prompt(ds, &full, sketches, &pb, (user, item), &count)?;
        let text = stages::render_prompt(tok, &p)?;
        prompts.push(tok.encode(&format!("{text}{AO_SUFFIX}"), false)?);
    }
    let bsz = config.eval.batch_size;
    let (alone, t_alone) = timed(|| {
        let mut out = Vec::new();
        for c in prompts.chunks(bsz) {
            out.extend(answer_scores(base, None, c, &rt, pad, device)?);
        }
        Ok(out)
    })?;
    let group: Vec<usize> = (0..prompts.len()).collect();
    let ((cached, stats), t_cached) = timed(|| {
        Ok(score_grouped(
            base,
            &prompts,
            &[group],
            &rt,
            (pad, bsz),
            device,
            &|_| {},
        )?)
    })?;
    let d = alone
        .iter()
        .zip(&cached)
        .flat_map(|(a, b)| a.probs.iter().zip(&b.probs).map(|(x, y)| (x - y).abs()))
        .fold(0f32, f32::max);
    let mean_len = prompts.iter().map(Vec::len).sum::<usize>() as f64 / prompts.len() as f64;
    println!(
        "\n## {} candidates for one user (prompts of {mean_len:.0} tokens, batch {bsz})",
        prompts.len()
    );
    println!("| path | s | s/candidate | prompt tokens computed |");
    println!("|---|---|---|---|");
    println!(
        "| each pair alone | {t_alone:.1} | {:.3} | {} |",
        t_alone / prompts.len() as f64,
        stats.total_tokens
    );
    println!(
        "| user prefix once | {t_cached:.1} | {:.3} | {} |",
        t_cached / prompts.len() as f64,
        stats.computed_tokens
    );
    println!(
        "speed-up {:.1}×; max difference of the distributions {d:.2e}",
        t_alone / t_cached
    );
    Ok(serde_json::json!({
        "candidates": prompts.len(), "alone_s": t_alone, "cached_s": t_cached,
        "speedup": t_alone / t_cached, "max_diff": d,
        "tokens": [stats.total_tokens, stats.computed_tokens],
    }))
}

/// Answer-only seconds per user at each batch size: plain batches against the common prefix
/// and length buckets.
fn eval(b: &Bench<'_>) -> anyhow::Result<serde_json::Value> {
    let Bench {
        args,
        config,
        ds,
        device,
        base,
        tok,
        sketches,
        ..
    } = b;
    let pad = b.pad;
    let rt = RatingTokens::new(tok, 5)?;

    let rows = stages::sample_rows(&ds.valid, Some(args.eval_users), config.seed);
    let ex = stages::examples(config, ds, &rows, sketches, tok)?;
    let prompts: Vec<Vec<u32>> = ex
        .iter()
        .map(|e| tok.encode(&format!("{}{AO_SUFFIX}", e.prompt), false))
        .collect::<Result<_, _>>()?;
    let n = prompts.len() as f64;
    println!("\n## answer-only evaluation, {} valid users", prompts.len());
    println!(
        "| batch | plain s/user | prefix + buckets s/user | ratio | padding plain → bucketed |"
    );
    println!("|---|---|---|---|---|");
    let mut out = Vec::new();
    for &bsz in &args.batches {
        let (_, plain) = timed(|| {
            for c in prompts.chunks(bsz) {
                answer_scores(base, None, c, &rt, pad, device)?;
            }
            Ok(())
        })?;
        let ((_, st), fast) = timed(|| {
            Ok(score_grouped(
                base,
                &prompts,
                &[],
                &rt,
                (pad, bsz),
                device,
                &|_| {},
            )?)
        })?;
        println!(
            "| {bsz} | {:.3} | {:.3} | {:.2}× | {:.1}% → {:.1}% |",
            plain / n,
            fast / n,
            plain / fast,
            100.0 * st.pad_fraction_unbucketed,
            100.0 * st.pad_fraction
        );
        out.push(serde_json::json!({"batch": bsz, "plain_s_per_user": plain / n, "fast_s_per_user": fast / n,
            "pad_plain": st.pad_fraction_unbucketed, "pad_bucketed": st.pad_fraction, "prefix": st.common_prefix}));
    }
    Ok(serde_json::json!(out))
}

fn main() -> anyhow::Result<()> {
    let args = parse()?;
    let config = RunConfig::load(&args.config, &args.sets)?;
    config.validate()?;
    let run = RunDir::create(&config, &config.device)?;
    let ds = stages::load_dataset(&config)?;
    let (device, label) = siren_core::device::open(&config.device)?;
    let (base, tok) = stages::load_run_model(&config, &device, "the benchmark")?;
    let flops = Flops::new(&base);
    let pad = tok.pad_id();
    let sketches = stages::sketches_for(&config, &ds, &run)?;
    let want = |s: &str| args.only.iter().any(|o| o == s);
    let mut report = serde_json::Map::new();
    report.insert("device".into(), serde_json::json!(label));
    let peak = matmul_peak(&device)?;
    println!(
        "device {label}: 1024³ f32 matmul {peak:.1} GFLOP/s (the peak GFLOP/s below refer to)"
    );
    report.insert("matmul_gflops".into(), serde_json::json!(peak));
    let bench = Bench {
        args: &args,
        config,
        ds,
        device,
        base,
        tok,
        flops,
        pad,
        sketches,
        peak,
    };

    if want("grpo") {
        report.insert("grpo".into(), grpo(&bench)?);
    }

    if want("ao-sft") {
        report.insert("ao_sft".into(), ao_sft(&bench)?);
    }

    if want("rank") {
        report.insert("rank".into(), rank(&bench)?);
    }
    if want("eval") {
        report.insert("eval".into(), eval(&bench)?);
    }
    let json = serde_json::Value::Object(report);
    println!("\n{json}");
    if let Some(p) = &args.json {
        std::fs::write(p, serde_json::to_vec_pretty(&json)?)?;
    }
    Ok(())
}
