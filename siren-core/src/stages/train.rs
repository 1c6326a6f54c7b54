//! Stage 1 (paper §3.2): trains the configured decoder with the trainer named in `[trainer]`
//! (`ao-sft`, `grpo`, ...) on prompts of the training split, scoring samples with `[reward]`
//! (default `regression`).
//!
//! Writes into `runs/<name>/stage1/`: `checkpoints/`, `metrics.jsonl`, `training.svg`,
//! `examples.sample.txt`, the trained weights in `policy/` (a PEFT adapter folder for LoRA,
//! `model.safetensors` for full fine-tuning) and `key.txt` ([`key`]); section `train` of
//! `metrics.json` holds the final step's metrics and timing.

use std::path::PathBuf;
use std::time::Instant;

use crate::config::{RunConfig, SlotConfig};
use crate::data::Dataset;
use crate::registry::build;
use crate::run::RunDir;
use crate::train::{Policy, Tuning};
use crate::traits::{LoraTargets, PolicyTrainer, Reward, RunCtx, TrainReport};
use crate::{CoreError, Result};

use super::stage::{Ctx, Stage, Status};

pub use crate::trained::{stage1_dir as stage_dir, stage1_policy_dir as policy_dir};

/// The key of a stage-1 training: the hash of every config section its weights depend on
/// (model, data, prompts and sketches, trainer, reward, LoRA targets, `[training]`, seed; the
/// evaluated split where per-user sketches are built before it).
/// `siren train` writes it to `stage1/key.txt`; the pipeline runner reuses stage 1 when it
/// matches.
pub fn key(config: &RunConfig) -> u64 {
    let mut json = serde_json::json!({
        "model": config.model, "dataset": config.dataset, "prompt": config.prompt,
        "topics": config.topics, "encoder": config.encoder, "clusterer": config.clusterer,
        "namer": config.namer, "sketch": config.sketch, "trainer": config.trainer,
        "reward": config.reward, "lora": config.lora, "training": config.training,
        "warmup": config.warmup, "seed": config.seed,
    });
    // Per-user sketches come from the history before the evaluated split, so training prompts
    // depend on it there (prompts with sketches before their target do not: their keys stay).
    if config.prompt.sketch_scope == crate::prompt::SketchScope::PerUser {
        json["eval_split"] = serde_json::json!(config.eval.split);
    }
    // Relevance examples read `[rank]` for their lists; configs without them keep their keys.
    if config.relevance.is_some() {
        json["relevance"] = serde_json::json!({
            "relevance": config.relevance, "rank": config.rank.clone().unwrap_or_default(),
        });
    }
    crate::hash::fnv1a([json.to_string().as_bytes()])
}

/// The key `stage1/key.txt` records, if any.
pub fn recorded_key(run: &RunDir) -> Option<String> {
    recorded_key_in(&stage_dir(run))
}

fn recorded_key_in(dir: &std::path::Path) -> Option<String> {
    std::fs::read_to_string(dir.join("key.txt"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// The folder of stage 1's warm start inside a run.
pub fn warmup_dir(run: &RunDir) -> PathBuf {
    run.stage1_warmup()
}

/// The config of the warm start (`[warmup]`'s trainer and training keys over `[training]`),
/// if the config has one.
pub fn warmup_config(config: &RunConfig) -> Result<Option<RunConfig>> {
    let Some(w) = &config.warmup else {
        return Ok(None);
    };
    let mut c = config.clone();
    c.training = w.training(&config.training)?;
    c.trainer = Some(w.trainer.clone());
    c.warmup = None;
    Ok(Some(c))
}

/// The config stage 1 trains with: with a warm start (and no `training.init_adapter` of its
/// own), starting from the warm start's weights.
pub fn stage1_config(config: &RunConfig, run: &RunDir) -> RunConfig {
    let mut c = config.clone();
    if c.warmup.is_some() && c.training.init_adapter.is_none() {
        c.training.init_adapter = Some(warmup_dir(run).join("policy"));
    }
    c
}

/// The `[reward]` slot, `regression` when absent.
pub fn reward_slot(config: &RunConfig) -> SlotConfig {
    config
        .reward
        .clone()
        .unwrap_or_else(|| SlotConfig::named("regression"))
}

/// The `[lora]` slot, `all-linear` when absent.
pub fn lora_slot(config: &RunConfig) -> SlotConfig {
    config
        .lora
        .clone()
        .unwrap_or_else(|| SlotConfig::named("all-linear"))
}

/// Runs stage 1 (after its warm start, when `[warmup]` is configured; a finished warm start of
/// the same settings is reused); `resume` continues from the newest checkpoint.
pub fn run(config: &RunConfig, ds: &Dataset, run: &RunDir, resume: bool) -> Result<TrainReport> {
    if let Some(w) = warmup_config(config)? {
        let dir = warmup_dir(run);
        let k = format!("{:016x}", key(&w));
        let done = super::internalize::weights_file(&dir.join("policy")).is_ok();
        match recorded_key_in(&dir) {
            Some(r) if r == k && done => tracing::info!(
                "warm start: reusing {} (key {k})",
                dir.join("policy").display()
            ),
            Some(r) if r != k => {
                return Err(CoreError::Data(format!(
                    "{} holds a warm start trained with other settings (key {r}, this config \
                     {k}); give the run another name or move the folder away",
                    dir.display()
                )));
            }
            _ => {
                tracing::info!("warm start of stage 1 into {}", dir.display());
                train_into(&w, ds, run, resume, &dir, "warmup")?;
            }
        }
    }
    train_into(
        &stage1_config(config, run),
        ds,
        run,
        resume,
        &stage_dir(run),
        "train",
    )
}

/// Trains `config`'s `[trainer]` into `stage` (`policy/`, `key.txt`, checkpoints, curves);
/// `section` names its section of `metrics.json`.
fn train_into(
    config: &RunConfig,
    ds: &Dataset,
    run: &RunDir,
    resume: bool,
    stage: &std::path::Path,
    section: &str,
) -> Result<TrainReport> {
    let tr_cfg = config.trainer.as_ref().ok_or_else(|| {
        CoreError::config(
            "trainer",
            "stage 1 needs a [trainer] table (kind = \"ao-sft\" or \"grpo\")",
        )
    })?;
    let trainer = build::<dyn PolicyTrainer>(&tr_cfg.kind, &tr_cfg.params)?;
    let rw = reward_slot(config);
    let reward = build::<dyn Reward>(&rw.kind, &rw.params)?;
    let lora = lora_slot(config);
    let targets = build::<dyn LoraTargets>(&lora.kind, &lora.params)?;
    let t = Instant::now();

    let (device, label) = crate::device::open(&config.device)?;
    // Rank 0 builds (or finds) the sketches; the other ranks of a data-parallel run read them.
    let sketches = crate::dist::leader_first(|| super::sketches_for(config, ds, run))?;
    let rows = super::sample_rows(&ds.train, config.training.max_examples, config.seed);
    let (mut model, tok) = super::load_run_model(config, &device.clone().autodiff(), "stage 1")?;
    let model_path = &config
        .model
        .as_ref()
        .map(|m| m.path.clone())
        .unwrap_or_default();
    let mut tuning = config.training.tuning();
    if let Some(dir) = &config.training.init_adapter {
        if config.training.full_finetune {
            return Err(CoreError::config(
                "training.init_adapter",
                "an adapter start needs LoRA training (full_finetune = false)",
            ));
        }
        let (m, spec) = model.load_peft(dir)?;
        model = m;
        tuning = Tuning::Lora(spec.clone());
        tracing::info!(
            "starting from the adapter in {} (r={}, α={})",
            dir.display(),
            spec.r,
            spec.alpha
        );
    }
    let mut examples = super::examples(config, ds, &rows, &sketches, &tok)?;
    let relevance = super::relevance::examples(config, ds, &sketches, &tok)?;
    if !relevance.is_empty() {
        // One seeded mix, so every step sees both kinds.
        use rand::SeedableRng;
        use rand::seq::SliceRandom;
        examples.extend(relevance);
        examples.shuffle(&mut rand::rngs::StdRng::seed_from_u64(config.seed));
    }
    let leader = crate::dist::is_leader();
    std::fs::create_dir_all(stage).map_err(|e| CoreError::io(stage, e))?;
    let sample: String = examples
        .iter()
        .take(3)
        .map(|e| {
            let rationale = e.rationale.as_ref().map_or(String::new(), |r| {
                format!("--- rationale (cot-sft, source = \"built\"): {r}\n")
            });
            format!(
                "=== {} · rating {} ===\n{}\n{rationale}\n",
                e.id, e.rating, e.prompt
            )
        })
        .collect();
    if leader {
        crate::files::write_atomic(&stage.join("examples.sample.txt"), sample.as_bytes())?;
    }

    let trained_tokens = super::trained_token_ids(config, &tok);
    let mut policy = Policy::new(
        model,
        tok,
        tuning,
        &|s| targets.select(s),
        config.training.seed_or(config.seed),
        model_path.display().to_string(),
    )?
    .train_tokens(&trained_tokens)?;
    tracing::info!(
        "stage 1: `{}` on {} training prompts, {} ({} trainable parameters{}), device {label}",
        tr_cfg.kind,
        examples.len(),
        model_path.display(),
        policy.trainable_count()?,
        policy.tuning_note(&lora.kind)
    );
    let ctx = RunCtx {
        run_dir: stage.to_path_buf(),
        seed: config.training.seed_or(config.seed),
        device,
        training: config.training.clone(),
        resume,
    };
    let report = trainer.train(&mut policy, &examples, reward.as_ref(), &ctx)?;
    let out = stage.join("policy");
    let seconds = t.elapsed().as_secs_f64();
    if !leader {
        // Rank 0 writes the weights; the others go on once they are there.
        crate::dist::barrier()?;
        return Ok(report);
    }
    policy.export(&out)?;
    crate::files::write_atomic(
        &stage.join("key.txt"),
        format!("{:016x}\n", key(config)).as_bytes(),
    )?;
    tracing::info!(
        "stage 1 done: {} steps, weights in {} ({seconds:.0}s)",
        report.steps,
        out.display()
    );
    let mut record = serde_json::json!({
        "trainer": tr_cfg.kind,
        "reward": rw.kind,
        "examples": examples.len(),
        "steps": report.steps,
        "final": report.metrics,
        "seconds": seconds,
        "device": label,
    });
    if crate::dist::size() > 1 {
        record["ranks"] = serde_json::json!(crate::dist::size());
    }
    run.record_section(
        &ds.name,
        config.eval.split.as_str(),
        super::eval_rows(config, ds),
        section,
        record,
    )?;
    crate::dist::barrier()?;
    Ok(report)
}

/// Stage 1 as a stage of `siren run`: reused when `stage1/key.txt` records this config's
/// [`key`] and the weights are there.
pub struct Train;

impl Stage for Train {
    /// Data-parallel under torchrun.
    fn distributed(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "train"
    }

    /// With a `[trainer]`.
    fn by_default(&self, config: &RunConfig) -> bool {
        config.trainer.is_some()
    }

    fn done(&self, config: &RunConfig, run: &RunDir) -> Result<Option<String>> {
        let key = format!("{:016x}", key(&stage1_config(config, run)));
        let policy = policy_dir(run);
        let trained = super::internalize::weights_file(&policy).is_ok();
        match recorded_key(run) {
            Some(k) if k == key && trained => Ok(Some(format!(
                "stage 1 of key {key} in {}",
                policy.display()
            ))),
            Some(k) if k != key => Err(CoreError::Data(format!(
                "{} holds a stage 1 trained with other settings (key {k}, this config {key}); \
                 give the run another name or move the folder away",
                stage_dir(run).display()
            ))),
            _ => Ok(None),
        }
    }

    fn run(&self, ctx: &mut Ctx<'_>) -> Result<(Status, String)> {
        let r = run(ctx.config, ctx.ds, ctx.run, true)?;
        Ok((
            Status::Ran,
            format!("{} steps into {}", r.steps, policy_dir(ctx.run).display()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::SplitName;
    use crate::prompt::SketchScope;

    #[test]
    fn the_key_holds_the_evaluated_split_only_where_training_prompts_read_it() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/quickstart.toml");
        let valid = RunConfig::load(&path, &[]).unwrap();
        let mut test = valid.clone();
        test.eval.split = SplitName::Test;
        // Sketches built before each prompt's target: the split does not reach training.
        assert_eq!(valid.prompt.sketch_scope, SketchScope::BeforeTarget);
        assert_eq!(key(&valid), key(&test));
        // One sketch per user from the history before the evaluated split: it does.
        let (mut pv, mut pt) = (valid.clone(), test.clone());
        pv.prompt.sketch_scope = SketchScope::PerUser;
        pt.prompt.sketch_scope = SketchScope::PerUser;
        assert_ne!(key(&pv), key(&pt));
        assert_ne!(key(&pv), key(&valid));
    }
}
