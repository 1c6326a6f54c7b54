//! Training infrastructure shared by every trainer (stage 1 and stage 2):
//!
//! - [`Policy`]: the decoder on an autodiff device, trained through LoRA or in full;
//! - [`TrainingConfig`] (`[training]`): AdamW, learning-rate schedule, batches, epochs,
//!   checkpoint cadence, LoRA rank;
//! - [`teacher`]: the CoT teacher of stage 2 (harvested CoT, hidden states on disk);
//! - [`run_loop`]: the step loop every trainer drives — deterministic data order, per-step
//!   seeds, checkpoints ([`Checkpoints`]) and exact `--resume`, `metrics.jsonl` with a plot,
//!   a progress bar with ETA, and a stop with a clear error on a NaN/inf loss (the last good
//!   checkpoint is kept).
//!
//! Exact resume: every random choice of step `s` (sampling, dropout) is drawn from a seed
//! derived from the run seed and `s`, the data order of epoch `e` from the run seed and `e`,
//! and the checkpoint holds the trainable weights and the optimizer state bit for bit. A run
//! killed after checkpoint `s` and resumed therefore takes the same steps `s+1..` as one that
//! was never interrupted. (The backend's random generator, used by dropout, is per process:
//! exactness holds for one training at a time in a process.)
//!
//! Data-parallel runs ([`crate::dist`]): every rank draws the same step batch and trains on
//! its shard of it; the gradients are summed over the ranks before the optimizer steps, so
//! every rank holds the same weights; rank 0 alone writes checkpoints, `metrics.jsonl` and the
//! plot. A checkpoint holds the whole state, so a run resumes with any number of ranks.

mod checkpoint;
mod examples;
pub mod optimizer;
mod policy;
pub mod teacher;

pub use checkpoint::{Checkpoints, TrainState};
pub use examples::{CotExample, Example, RunCtx, TrainReport};
pub use optimizer::{ClipMode, Optimizer};
pub use policy::{Policy, Tuning};
pub use teacher::{HarvestConfig, Teacher};

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

use burn::optim::AdamWConfig;
use burn::tensor::Tensor;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::engine::{Decoder, LoraSpec};
use crate::{CoreError, Result};

/// Learning-rate schedule after warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// Constant (the paper's choice).
    Constant,
    /// Linear decay to 0 at the last step.
    Linear,
    /// Cosine decay to 0 at the last step.
    Cosine,
}

/// Settings shared by every trainer (`[training]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingConfig {
    /// Peak learning rate (AdamW).
    pub lr: f64,
    /// Schedule after warm-up.
    pub schedule: Schedule,
    /// Linear warm-up steps from 0 to `lr`.
    pub warmup_steps: usize,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Clip gradients to this L2 norm before each update (0 = no clipping; default 1.0, as
    /// VERL).
    pub grad_clip: f64,
    /// `global` (one norm over every trainable tensor, default) or `per-parameter`.
    pub grad_clip_mode: ClipMode,
    /// Passes over the training examples.
    pub epochs: usize,
    /// Stop after this many steps (default: all epochs).
    pub max_steps: Option<usize>,
    /// Prompts per step.
    pub batch_size: usize,
    /// Sequences per forward/backward pass; gradients of a step's micro-batches are
    /// accumulated before the optimizer step.
    pub micro_batch: usize,
    /// Train on a seeded sample of this many training examples (default: all).
    pub max_examples: Option<usize>,
    /// Prompts longer than this many tokens keep their last tokens.
    pub max_prompt_tokens: usize,
    /// Save a checkpoint every this many steps (and at the end).
    pub checkpoint_every: usize,
    /// Checkpoints kept (newest first).
    pub keep_checkpoints: usize,
    /// Train every parameter instead of LoRA adapters.
    pub full_finetune: bool,
    /// LoRA rank.
    pub lora_r: usize,
    /// LoRA alpha (adapter output scaled by alpha / r).
    pub lora_alpha: f64,
    /// Dropout on the adapter input.
    pub lora_dropout: f64,
    /// Start from this PEFT adapter folder (e.g. an earlier run's `stage1/policy`) instead of
    /// fresh adapters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_adapter: Option<std::path::PathBuf>,
    /// Make `<answer>` and `</answer>` single tokens (the authors' setting; new embedding
    /// rows start as the mean of the tag's former pieces). Evaluation applies the same.
    pub answer_tokens: bool,
    /// Seed of training's own randomness (adapter initialisation, example order, sampled
    /// completions); default: the run's `seed`, which also fixes the data, sketches, training
    /// prompts and evaluation samples. A second training seed on the same prompts is
    /// `training.seed = 43`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        Self {
            lr: 1e-5,
            schedule: Schedule::Constant,
            warmup_steps: 0,
            weight_decay: 0.0,
            grad_clip: 1.0,
            grad_clip_mode: ClipMode::Global,
            epochs: 1,
            max_steps: None,
            batch_size: 8,
            micro_batch: 8,
            max_examples: None,
            max_prompt_tokens: 2048,
            checkpoint_every: 10,
            keep_checkpoints: 2,
            full_finetune: false,
            lora_r: 8,
            lora_alpha: 16.0,
            lora_dropout: 0.05,
            init_adapter: None,
            answer_tokens: false,
            seed: None,
        }
    }
}

impl TrainingConfig {
    /// The seed training draws from: `seed` when set, else the run's.
    pub fn seed_or(&self, run_seed: u64) -> u64 {
        self.seed.unwrap_or(run_seed)
    }

    /// Checks ranges; errors name the key.
    pub fn validate(&self) -> Result<()> {
        let bad = |k: &str, m: &str| Err(CoreError::config(format!("training.{k}"), m));
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr", "must be a positive number");
        }
        if self.epochs == 0 {
            return bad("epochs", "must be at least 1");
        }
        if self.batch_size == 0 || self.micro_batch == 0 {
            return bad(
                "batch_size",
                "batch_size and micro_batch must be at least 1",
            );
        }
        if self.checkpoint_every == 0 {
            return bad("checkpoint_every", "must be at least 1");
        }
        if self.max_prompt_tokens == 0 {
            return bad("max_prompt_tokens", "must be at least 1");
        }
        if !(0.0..1.0).contains(&self.lora_dropout) || self.lora_r == 0 {
            return bad("lora_r", "lora_r must be ≥ 1 and lora_dropout in [0, 1)");
        }
        if !(self.grad_clip.is_finite() && self.grad_clip >= 0.0) {
            return bad("grad_clip", "must be ≥ 0 (0 turns clipping off)");
        }
        Ok(())
    }

    /// The LoRA hyper-parameters, or `None` for full fine-tuning.
    pub fn tuning(&self) -> Tuning {
        if self.full_finetune {
            Tuning::Full
        } else {
            Tuning::Lora(LoraSpec {
                r: self.lora_r,
                alpha: self.lora_alpha,
                dropout: self.lora_dropout,
            })
        }
    }

    /// The optimizer: AdamW with torch's defaults (β 0.9/0.999, ε 1e-8) and this weight
    /// decay, clipping gradients as `grad_clip` and `grad_clip_mode` say.
    pub fn optimizer(&self) -> Optimizer {
        let mut c = AdamWConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(self.weight_decay as f32);
        let clip = (self.grad_clip > 0.0).then_some(self.grad_clip);
        if let (Some(g), ClipMode::PerParameter) = (clip, self.grad_clip_mode) {
            c = c.with_grad_clipping(Some(
                burn::optim::grad_clipping::GradientClippingConfig::Norm(g as f32),
            ));
        }
        let global = clip.filter(|_| self.grad_clip_mode == ClipMode::Global);
        Optimizer::new(c.init(), global)
    }

    /// Learning rate at step `step` (0-based) of `total`.
    pub fn lr_at(&self, step: usize, total: usize) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let span = total.saturating_sub(self.warmup_steps).max(1) as f64;
        let t = ((step - self.warmup_steps) as f64 / span).min(1.0);
        match self.schedule {
            Schedule::Constant => self.lr,
            Schedule::Linear => self.lr * (1.0 - t),
            Schedule::Cosine => self.lr * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()),
        }
    }
}

/// What one step gets.
#[derive(Debug, Clone)]
pub struct StepInput {
    /// 0-based step index.
    pub step: usize,
    /// Steps in the run.
    pub total_steps: usize,
    /// Learning rate for this step.
    pub lr: f64,
    /// Indices of the examples this rank trains on: its [`crate::dist::shard`] of `batch`
    /// (all of it in a single-process run).
    pub indices: Vec<usize>,
    /// Indices of the whole step's examples, over every rank. Losses are normalised by counts
    /// over these, so that the ranks' gradients sum to the whole step's.
    pub batch: Vec<usize>,
    /// Where `indices` starts in `batch`.
    pub offset: usize,
    /// Seed of every random choice of this step.
    pub seed: u64,
}

/// A step's measurements by name; `loss` is required.
pub type StepMetrics = BTreeMap<String, f64>;

/// Derives a step's seed from the run seed.
pub fn step_seed(seed: u64, step: usize) -> u64 {
    crate::hash::fnv1a([
        b"step".as_slice(),
        &seed.to_le_bytes(),
        &(step as u64).to_le_bytes(),
    ])
}

/// The examples of `step` under a per-epoch shuffle of `n` examples.
pub fn batch_indices(n: usize, batch: usize, seed: u64, step: usize) -> Vec<usize> {
    let per_epoch = n.div_ceil(batch);
    let (epoch, pos) = (step / per_epoch, step % per_epoch);
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = StdRng::seed_from_u64(crate::hash::fnv1a([
        b"epoch".as_slice(),
        &seed.to_le_bytes(),
        &(epoch as u64).to_le_bytes(),
    ]));
    order.shuffle(&mut rng);
    order[pos * batch..((pos + 1) * batch).min(n)].to_vec()
}

/// An error unless `value` is finite: the NaN/inf stop.
pub fn check_finite(what: &str, value: f64, step: usize) -> Result<()> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(CoreError::Numeric(format!(
            "step {}: {what} is {value}; training stopped before the optimizer step (the last \
             good checkpoint is kept; lower training.lr or check the data)",
            step + 1
        )))
    }
}

/// Host values of a tensor.
pub fn host<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.try_into_vec_as::<f32>()
        .map_err(|e| CoreError::Numeric(format!("reading a tensor: {e:?}")))
}

/// One optimizer update from `n_micro` micro-batches: `micro(policy, i)` returns micro-batch
/// `i`'s share of the loss (shares sum to the step's loss); gradients are accumulated and the
/// optimizer steps once. A non-finite share stops before the update. Returns the loss.
pub fn accumulated_step(
    policy: &mut Policy,
    optim: &mut Optimizer,
    lr: f64,
    step: usize,
    n_micro: usize,
    micro: &mut dyn FnMut(&Policy, usize) -> Result<Tensor<1>>,
) -> Result<f64> {
    let (grads, total) = accumulate(&*policy, |p| &p.model, step, n_micro, micro)?;
    policy.model = optim.step(lr, policy.model.clone(), grads)?;
    Ok(total)
}

/// [`accumulated_step`] on a bare decoder (on an autodiff device): `micro(model, i)` returns
/// micro-batch `i`'s share of the loss.
pub fn accumulated_update(
    model: &mut Decoder,
    optim: &mut Optimizer,
    (lr, step): (f64, usize),
    n_micro: usize,
    micro: &mut dyn FnMut(&Decoder, usize) -> Result<Tensor<1>>,
) -> Result<f64> {
    let (grads, total) = accumulate(&*model, |m| m, step, n_micro, micro)?;
    *model = optim.step(lr, model.clone(), grads)?;
    Ok(total)
}

/// The accumulated gradients of `n_micro` micro-batch losses of the decoder `model(of)`, and
/// their sum, each summed over the ranks of a data-parallel run; a non-finite loss is an
/// error (the NaN stop).
fn accumulate<T>(
    of: &T,
    model: impl Fn(&T) -> &Decoder,
    step: usize,
    n_micro: usize,
    micro: &mut dyn FnMut(&T, usize) -> Result<Tensor<1>>,
) -> Result<(burn::optim::GradientsParams, f64)> {
    use burn::optim::{GradientsAccumulator, GradientsParams};
    let mut acc = GradientsAccumulator::new();
    let mut total = 0.0;
    for i in 0..n_micro {
        let loss = micro(of, i)?;
        let v = f64::from(host(loss.clone())?[0]);
        check_finite("the loss", v, step)?;
        total += v;
        let grads = GradientsParams::from_grads(loss.backward(), model(of));
        acc.accumulate(model(of), grads);
    }
    // Data-parallel: the sum over ranks, the same on each, before the optimizer steps.
    let mut grads = acc.grads();
    crate::dist::reduce_gradients(model(of), &mut grads, &mut total)?;
    Ok((grads, total))
}

fn read_metrics(path: &Path, upto: usize) -> Result<Vec<serde_json::Value>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(CoreError::io(path, e)),
    };
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        // A line cut short by a crash ends the file.
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            tracing::warn!("{}:{}: unreadable line dropped", path.display(), i + 1);
            break;
        };
        if v["step"].as_u64().is_some_and(|s| s as usize <= upto) {
            rows.push(v);
        }
    }
    Ok(rows)
}

/// Writes `training.svg` and `training.png` (one panel per metric) from metrics rows; `path`
/// names the SVG.
pub fn plot_metrics(rows: &[serde_json::Value], title: &str, path: &Path) -> Result<()> {
    let mut names: Vec<String> = Vec::new();
    for r in rows {
        if let Some(o) = r.as_object() {
            for k in o.keys() {
                if k != "step" && o[k].is_number() && !names.contains(k) {
                    names.push(k.clone());
                }
            }
        }
    }
    let series: Vec<crate::plot::Series> = names
        .iter()
        .map(|n| crate::plot::Series {
            name: n.clone(),
            points: rows
                .iter()
                .filter_map(|r| Some((r["step"].as_f64()?, r[n].as_f64()?)))
                .collect(),
        })
        .collect();
    crate::plot::write_panels(&path.with_extension(""), title, &series, 3)
}

/// In a data-parallel run, checks that every rank trains `name` with the same settings hash,
/// seed and resumed step, and starts every rank from rank 0's weights.
fn join_ranks(
    name: &str,
    policy: &mut Policy,
    (hash, seed, start): (&str, u64, usize),
    batch_size: usize,
) -> Result<()> {
    if crate::dist::size() == 1 {
        return Ok(());
    }
    crate::dist::agree(
        "the training settings (trainer, settings hash, seed, resumed step)",
        crate::hash::fnv1a([
            name.as_bytes(),
            hash.as_bytes(),
            &seed.to_le_bytes(),
            &(start as u64).to_le_bytes(),
        ]),
    )?;
    let mut weights = policy.trainable()?;
    crate::dist::broadcast_tensors(&mut weights)?;
    policy.restore(weights)?;
    tracing::info!(
        "{name}: rank {} of {}, each step's batch of {batch_size} split across the ranks",
        crate::dist::rank(),
        crate::dist::size(),
    );
    Ok(())
}

/// `metrics.jsonl` rewritten with `rows` (a killed run may have logged steps after its
/// checkpoint), open for appending.
fn open_log(dir: &Path, path: &Path, rows: &[serde_json::Value]) -> Result<std::fs::File> {
    std::fs::create_dir_all(dir).map_err(|e| CoreError::io(dir, e))?;
    let mut text = String::new();
    for r in rows {
        text.push_str(&r.to_string());
        text.push('\n');
    }
    crate::files::write_atomic(path, text.as_bytes())?;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| CoreError::io(path, e))
}

/// Drives a trainer: `step_fn` performs one step (forward, backward, optimizer update(s)) on
/// the examples it is given and returns its metrics; this loop does everything else (see
/// the module docs). Writes under `ctx.run_dir`: `checkpoints/`, `metrics.jsonl`,
/// `training.svg`.
pub fn run_loop(
    name: &str,
    policy: &mut Policy,
    n_examples: usize,
    settings_hash: u64,
    ctx: &RunCtx,
    step_fn: &mut dyn FnMut(&mut Policy, &mut Optimizer, &StepInput) -> Result<StepMetrics>,
) -> Result<TrainReport> {
    let cfg = &ctx.training;
    cfg.validate()?;
    if n_examples == 0 {
        return Err(CoreError::Data(format!("{name}: no training examples")));
    }
    let per_epoch = n_examples.div_ceil(cfg.batch_size);
    let total = (per_epoch * cfg.epochs).min(cfg.max_steps.unwrap_or(usize::MAX));
    let ckpts = Checkpoints::new(ctx.run_dir.join("checkpoints"), cfg.keep_checkpoints);
    let hash = format!("{settings_hash:016x}");
    let mut optim = cfg.optimizer();
    let mut start = 0;
    match (ckpts.latest()?, ctx.resume) {
        (Some(path), true) => {
            let st = Checkpoints::read_state(&path)?;
            if st.trainer != name || st.settings_hash != hash || st.seed != ctx.seed {
                return Err(CoreError::Data(format!(
                    "{}: made by trainer `{}` with other settings (seed {}, settings {}); it \
                     cannot be resumed with these (trainer `{name}`, seed {}, settings {hash}). \
                     Move the folder away to start afresh.",
                    path.display(),
                    st.trainer,
                    st.seed,
                    st.settings_hash,
                    ctx.seed
                )));
            }
            let (st, o) = Checkpoints::load(&path, policy, optim)?;
            optim = o;
            start = st.step;
            tracing::info!(
                "resuming {name} from {} (step {start}/{total})",
                path.display()
            );
        }
        (Some(path), false) => {
            return Err(CoreError::Data(format!(
                "{} already holds a checkpoint ({}): pass --resume to continue it, or move the \
                 folder away to start afresh",
                ckpts.dir().display(),
                path.display()
            )));
        }
        (None, true) => tracing::info!("--resume: no checkpoint yet, starting {name} afresh"),
        (None, false) => {}
    }
    let leader = crate::dist::is_leader();
    join_ranks(name, policy, (&hash, ctx.seed, start), cfg.batch_size)?;
    let metrics_path = ctx.run_dir.join("metrics.jsonl");
    let mut rows = read_metrics(&metrics_path, start)?;
    let mut log = if leader {
        Some(open_log(&ctx.run_dir, &metrics_path, &rows)?)
    } else {
        None
    };
    let plot_path = ctx.run_dir.join("training.svg");
    let bar = if leader {
        crate::progress::bar(total as u64, name.to_string())
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_position(start as u64);
    let mut last = StepMetrics::new();
    let t0 = Instant::now();
    for step in start..total {
        let batch = batch_indices(n_examples, cfg.batch_size, ctx.seed, step);
        let (offset, indices) = crate::dist::shard(&batch);
        let input = StepInput {
            step,
            total_steps: total,
            lr: cfg.lr_at(step, total),
            indices,
            batch,
            offset,
            seed: step_seed(ctx.seed, step),
        };
        policy.device.seed(input.seed);
        let t = Instant::now();
        let mut m = step_fn(policy, &mut optim, &input)?;
        crate::dist::reduce_metrics(&mut m, input.indices.len() as f64)?;
        let loss = *m.get("loss").ok_or_else(|| {
            CoreError::Numeric(format!("{name}: step {} reported no `loss`", step + 1))
        })?;
        check_finite("the loss", loss, step)?;
        m.insert("lr".into(), input.lr);
        if let Some(g) = optim.last_grad_norm() {
            m.insert("grad_norm".into(), g);
        }
        m.insert("step_seconds".into(), t.elapsed().as_secs_f64());
        let mut row = serde_json::Map::new();
        row.insert("step".into(), serde_json::json!(step + 1));
        for (k, v) in &m {
            row.insert(k.clone(), serde_json::json!(v));
        }
        let row = serde_json::Value::Object(row);
        if let Some(log) = &mut log {
            writeln!(log, "{row}").map_err(|e| CoreError::io(&metrics_path, e))?;
        }
        rows.push(row);
        let summary: Vec<String> = ["loss", "reward_mean", "format_rate", "mae"]
            .iter()
            .filter_map(|k| m.get(*k).map(|v| format!("{k} {v:.3}")))
            .collect();
        bar.set_message(format!("{name} {}", summary.join(" ")));
        bar.inc(1);
        if leader && ((step + 1) % cfg.checkpoint_every == 0 || step + 1 == total) {
            let state = TrainState {
                step: step + 1,
                total_steps: total,
                seed: ctx.seed,
                trainer: name.to_string(),
                settings_hash: hash.clone(),
            };
            ckpts.save(policy, &optim, &state)?;
            plot_metrics(&rows, name, &plot_path)?;
        }
        tracing::debug!("{name} step {}/{total}: {}", step + 1, summary.join(", "));
        last = m;
    }
    bar.finish_and_clear();
    if leader {
        plot_metrics(&rows, name, &plot_path)?;
    }
    if crate::dist::size() > 1 {
        let weights = crate::dist::tensors_hash(&policy.trainable()?);
        crate::dist::agree("the trained weights", weights)?;
        tracing::info!("{name}: the trained weights of all ranks agree (hash {weights:016x})");
    }
    let done = total - start;
    tracing::info!(
        "{name}: {done} steps in {:.1}s ({total} in all)",
        t0.elapsed().as_secs_f64()
    );
    Ok(TrainReport {
        steps: total,
        metrics: last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_each_epoch_once() {
        let n = 10;
        let mut seen: Vec<usize> = (0..3).flat_map(|s| batch_indices(n, 4, 7, s)).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..n).collect::<Vec<_>>());
        assert_eq!(batch_indices(n, 4, 7, 2).len(), 2, "last batch is partial");
        assert_ne!(
            batch_indices(n, 4, 7, 0),
            batch_indices(n, 4, 7, 3),
            "each epoch reshuffles"
        );
        assert_eq!(batch_indices(n, 4, 7, 1), batch_indices(n, 4, 7, 1));
    }

    #[test]
    fn schedules() {
        let c = TrainingConfig {
            lr: 1.0,
            warmup_steps: 2,
            schedule: Schedule::Linear,
            ..TrainingConfig::default()
        };
        assert_eq!(c.lr_at(0, 12), 0.5);
        assert_eq!(c.lr_at(1, 12), 1.0);
        assert_eq!(c.lr_at(2, 12), 1.0);
        assert!((c.lr_at(7, 12) - 0.5).abs() < 1e-12);
        let c = TrainingConfig {
            schedule: Schedule::Cosine,
            warmup_steps: 0,
            lr: 1.0,
            ..TrainingConfig::default()
        };
        assert!((c.lr_at(5, 10) - 0.5).abs() < 1e-12);
        assert_eq!(
            TrainingConfig::default().lr_at(99, 100),
            TrainingConfig::default().lr
        );
    }

    #[test]
    fn nan_is_an_error_naming_the_step() {
        let e = check_finite("the loss", f64::NAN, 4)
            .unwrap_err()
            .to_string();
        assert!(e.contains("step 5") && e.contains("NaN"), "{e}");
        assert!(check_finite("x", 1.0, 0).is_ok());
    }

    #[test]
    fn bad_settings_name_the_key() {
        let c = TrainingConfig {
            lr: -1.0,
            ..TrainingConfig::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("training.lr")
        );
    }
}
