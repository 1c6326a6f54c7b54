//! Stage 2 (paper §3.2, Eq. 12): internalizes the stage-1 model's reasoning into answer-only
//! prediction with the internalizer named in `[internalizer]` (default `hidden-align`) and the
//! loss in `[alignment]` (default `cosine`).
//!
//! 1. Loads the base model with the stage-1 weights merged in (`[internalization] stage1`,
//!    default `runs/<name>/stage1/policy`): this is the CoT teacher.
//! 2. Harvests the teacher ([`crate::train::teacher::harvest`]) on the training prompts into
//!    `runs/<name>/stage2/harvest-<hash>/`; the hash covers the stage-1 weights, the prompts
//!    and the decoding settings, so a harvest is reused by every internalizer and loss.
//! 3. Adds fresh adapters on the `[internalization.lora]` sites (default `kv`) and trains them
//!    with `[internalization.training]` in `stage2/<internalizer>-<hash>/` ([`train_dir`]:
//!    checkpoints, `metrics.jsonl`, `training.svg`; `--resume` as in stage 1).
//! 4. Writes the adapters in PEFT layout to `<that folder>/policy/` (their base is the stage-1
//!    model, merged) and section `internalize` of `metrics.json`.

use std::path::Path;
use std::time::Instant;

use burn::module::Module;
use rand::SeedableRng as _;
use rand::seq::SliceRandom as _;

use crate::config::RunConfig;
use crate::data::Dataset;
use crate::registry::build;
use crate::run::RunDir;
use crate::train::{Policy, teacher};
use crate::traits::{AlignmentLoss, Example, Internalizer, LoraTargets, RunCtx, TrainReport};
use crate::{CoreError, Result};

use super::stage::{Ctx, Stage, Status};

pub use crate::trained::{
    alignment_slot, internalizer_slot, lora_slot, stage1_weights, stage2_dir as stage_dir,
    stage2_policy_dir as policy_dir, stage2_train_dir as train_dir, weights_file, with_weights,
};

/// The key of a CoT harvest: its settings, the stage-1 weights' bytes and every example's
/// prompt and rating.
fn harvest_hash(settings: &serde_json::Value, stage1_bytes: &[u8], examples: &[Example]) -> u64 {
    let settings = settings.to_string();
    let ratings: Vec<[u8; 4]> = examples.iter().map(|e| e.rating.to_le_bytes()).collect();
    let mut parts: Vec<&[u8]> = vec![settings.as_bytes(), stage1_bytes];
    for (e, r) in examples.iter().zip(&ratings) {
        parts.push(e.prompt.as_bytes());
        parts.push(r);
    }
    crate::hash::fnv1a(parts)
}

fn log_teacher(teacher: &crate::train::Teacher, think_mean: f64, cos_before: &[f64]) {
    tracing::info!(
        "CoT teacher: {:.1} think tokens on average ({} kept of {}); teacher–student cosine \
         before stage 2, mean over layers {:.4}",
        think_mean,
        teacher.examples.len(),
        teacher.decoded,
        mean(cos_before)
    );
}

/// Runs stage 2; `resume` continues its training from the newest checkpoint.
pub fn run(config: &RunConfig, ds: &Dataset, run: &RunDir, resume: bool) -> Result<TrainReport> {
    let ic = &config.internalization;
    let training = ic.training(&config.training)?;
    let is = internalizer_slot(config);
    let internalizer = build::<dyn Internalizer>(&is.kind, &is.params)?;
    let al = alignment_slot(config);
    let align = build::<dyn AlignmentLoss>(&al.kind, &al.params)?;
    let ls = lora_slot(config);
    let targets = build::<dyn LoraTargets>(&ls.kind, &ls.params)?;
    let stage1 = stage1_weights(config, run);
    let stage1_bytes =
        std::fs::read(weights_file(&stage1)?).map_err(|e| CoreError::io(&stage1, e))?;
    let t = Instant::now();

    let (device, label) = crate::device::open(&config.device)?;
    let (model, tok) = super::load_run_model(config, &device.clone().autodiff(), "stage 2")?;
    let model_path = &config
        .model
        .as_ref()
        .map(|m| m.path.clone())
        .unwrap_or_default();
    let model = with_weights(model, &stage1)?;
    tracing::info!(
        "stage 2: teacher = {} + {}",
        model_path.display(),
        stage1.display()
    );

    let (teacher, hdir, harvest_s) = harvest_teacher(
        config,
        (ds, run),
        (&model.valid(), &tok, &device),
        &stage1_bytes,
    )?;

    // What the teacher holds and how far apart the student's states start (a fixed seeded
    // sample of the kept examples, read again after training).
    let think_mean = teacher.think_tokens_mean(&tok)?;
    let probe = probe_rows(teacher.examples.len(), config.seed);
    let cos_shape = (training.max_prompt_tokens, ic.harvest.batch_size);
    let cos_before =
        teacher::layer_cosines(&model.valid(), &tok, &teacher, &probe, cos_shape, &device)?;
    log_teacher(&teacher, think_mean, &cos_before);

    let trained_tokens = super::trained_token_ids(config, &tok);
    let mut policy = Policy::new(
        model,
        tok,
        training.tuning(),
        &|s| targets.select(s),
        training.seed_or(config.seed),
        format!("{} + {} (merged)", model_path.display(), stage1.display()),
    )?
    .train_tokens(&trained_tokens)?;
    tracing::info!(
        "stage 2: `{}` (loss `{}`) on {} CoT examples, {} trainable parameters{}, device {label}",
        is.kind,
        al.kind,
        teacher.examples.len(),
        policy.trainable_count()?,
        policy.tuning_note(&ls.kind)
    );
    let tdir = train_dir(config, run)?;
    let ctx = RunCtx {
        run_dir: tdir.clone(),
        seed: training.seed_or(config.seed),
        device: device.clone(),
        training,
        resume,
    };
    let report = internalizer.internalize(&mut policy, &teacher, align.as_ref(), &ctx)?;
    let out = tdir.join("policy");
    let cos_after = teacher::layer_cosines(
        &policy.model.valid(),
        &policy.tokenizer,
        &teacher,
        &probe,
        cos_shape,
        &device,
    )?;
    let (loss_first, loss_last) = loss_ends(&tdir.join("metrics.jsonl"));
    tracing::info!(
        "stage 2: loss {} → {}; teacher–student cosine, mean over layers, {:.4} → {:.4}",
        loss_first.map_or("–".into(), |x| format!("{x:.6}")),
        loss_last.map_or("–".into(), |x| format!("{x:.6}")),
        mean(&cos_before),
        mean(&cos_after)
    );
    let seconds = t.elapsed().as_secs_f64();
    if !crate::dist::is_leader() {
        // Rank 0 writes the weights; the others go on once they are there.
        crate::dist::barrier()?;
        return Ok(report);
    }
    policy.export(&out)?;
    tracing::info!(
        "stage 2 done: {} steps, adapters in {} ({seconds:.0}s)",
        report.steps,
        out.display()
    );
    run.record_section(
        &ds.name,
        config.eval.split.as_str(),
        super::eval_rows(config, ds),
        "internalize",
        serde_json::json!({
            "internalizer": is.kind,
            "alignment": al.kind,
            "lora": ls.kind,
            "dir": tdir,
            "stage1": stage1,
            "harvest": hdir,
            "decoded": teacher.decoded,
            "kept": teacher.examples.len(),
            "harvest_seconds": harvest_s,
            "kept_rate": teacher.examples.len() as f64 / teacher.decoded.max(1) as f64,
            "think_tokens_mean": think_mean,
            "loss_first": loss_first,
            "loss_last": loss_last,
            "cosine_probe_examples": probe.len(),
            "cosine_per_layer_before": cos_before,
            "cosine_per_layer_after": cos_after,
            "cosine_mean_before": mean(&cos_before),
            "cosine_mean_after": mean(&cos_after),
            "steps": report.steps,
            "final": report.metrics,
            "seconds": seconds,
            "device": label,
        }),
    )?;
    crate::dist::barrier()?;
    Ok(report)
}

/// Stage 2's CoT teacher: the stage-1 model's (`model`, merged) reasoning on training
/// prompts, harvested into `stage2/harvest-<hash>/` (rank 0 harvests in a data-parallel run;
/// the others read the finished harvest), with that folder and the harvest's seconds.
fn harvest_teacher(
    config: &RunConfig,
    (ds, run): (&Dataset, &RunDir),
    (model, tok, device): (
        &crate::engine::Decoder,
        &crate::engine::TextTokenizer,
        &burn::tensor::Device,
    ),
    stage1_bytes: &[u8],
) -> Result<(teacher::Teacher, std::path::PathBuf, f64)> {
    let ic = &config.internalization;
    let training = ic.training(&config.training)?;
    let model_path = config
        .model
        .as_ref()
        .map(|m| m.path.clone())
        .unwrap_or_default();
    // Rank 0 builds (or finds) the sketches; the other ranks of a data-parallel run read them.
    let sketches = crate::dist::leader_first(|| super::sketches_for(config, ds, run))?;
    let n = ic.harvest.max_examples.or(config.training.max_examples);
    let rows = super::sample_rows(&ds.train, n, config.seed);
    let examples = super::examples(config, ds, &rows, &sketches, tok)?;
    let settings = serde_json::json!({
        "model": model_path, "answer_tokens": training.answer_tokens,
        "max_new_tokens": ic.harvest.max_new_tokens,
        "max_prompt_tokens": training.max_prompt_tokens,
    });
    let hash = harvest_hash(&settings, stage1_bytes, &examples);
    let hdir = stage_dir(run).join(format!("harvest-{hash:016x}"));
    let t_h = Instant::now();
    // Rank 0 harvests into `hdir`; the other ranks read the finished harvest from there.
    let teacher = crate::dist::leader_first(|| {
        teacher::harvest(
            model,
            tok,
            &examples,
            &ic.harvest,
            training.max_prompt_tokens,
            &hdir,
            device,
        )
    })?;
    let harvest_s = t_h.elapsed().as_secs_f64();
    tracing::info!(
        "CoT teacher: {} kept of {} in {} ({harvest_s:.0}s)",
        teacher.examples.len(),
        teacher.decoded,
        hdir.display()
    );
    Ok((teacher, hdir, harvest_s))
}

/// Kept examples whose teacher–student cosines are reported before and after training.
const PROBE: usize = 64;

/// A seeded sample of [`PROBE`] of `n` kept examples (all of them when fewer), in order.
fn probe_rows(n: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    idx.truncate(PROBE);
    idx.sort_unstable();
    idx
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// The first and last `loss` of a training's `metrics.jsonl` (either is `None` when the file
/// or the key is missing: a diagnostic, never an error).
fn loss_ends(path: &Path) -> (Option<f64>, Option<f64>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let losses: Vec<f64> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("loss").and_then(serde_json::Value::as_f64))
        .collect();
    (losses.first().copied(), losses.last().copied())
}

/// Stage 2 as a stage of `siren run`: reused when this config's keyed folder
/// ([`train_dir`]) holds its adapters.
pub struct Internalize;

impl Stage for Internalize {
    /// Data-parallel under torchrun.
    fn distributed(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "internalize"
    }

    /// With an `[internalizer]`.
    fn by_default(&self, config: &RunConfig) -> bool {
        config.internalizer.is_some()
    }

    fn done(&self, config: &RunConfig, run: &RunDir) -> Result<Option<String>> {
        let dir = train_dir(config, run)?;
        Ok(weights_file(&dir.join("policy"))
            .is_ok()
            .then(|| format!("stage 2 in {}", dir.display())))
    }

    fn run(&self, ctx: &mut Ctx<'_>) -> Result<(Status, String)> {
        let dir = train_dir(ctx.config, ctx.run)?;
        let r = run(ctx.config, ctx.ds, ctx.run, true)?;
        Ok((
            Status::Ran,
            format!("{} steps into {}", r.steps, dir.display()),
        ))
    }
}
