//! A run's trained model: where each stage's weights live in the run folder, which weights a
//! command uses ([`Weights`]: the base model, stage 1's, stage 2's over stage 1's, or an
//! adapter), loading the configured model with them merged in, and the calibration that goes
//! with them. Evaluation, prediction, serving and ranking use this directly; the stages that
//! write the weights use the same folders.

use std::path::{Path, PathBuf};

use crate::config::{RunConfig, SlotConfig};
use crate::engine::{Decoder, TextTokenizer};
use crate::run::RunDir;
use crate::{CoreError, Result};

/// The folder of stage 1 inside a run.
pub fn stage1_dir(run: &RunDir) -> PathBuf {
    run.stage1()
}

/// The trained weights of stage 1 inside a run.
pub fn stage1_policy_dir(run: &RunDir) -> PathBuf {
    RunDir::policy_of(&run.stage1())
}

/// The folder of stage 2 inside a run.
pub fn stage2_dir(run: &RunDir) -> PathBuf {
    run.stage2()
}

/// The training folder of this config's internalization: `stage2/<internalizer>-<hash>/`,
/// keyed by everything that shapes the training (internalizer, loss, LoRA targets, stage-1
/// weights, harvest and training settings, seed), so that runs with another internalizer or
/// loss sit beside each other and share the harvest.
pub fn stage2_train_dir(config: &RunConfig, run: &RunDir) -> Result<PathBuf> {
    let key = serde_json::json!({
        "internalizer": internalizer_slot(config),
        "alignment": alignment_slot(config),
        "lora": lora_slot(config),
        "stage1": stage1_weights(config, run),
        "harvest": config.internalization.harvest,
        "training": config.internalization.training(&config.training)?,
        "seed": config.seed,
    })
    .to_string();
    let hash = crate::hash::fnv1a([key.as_bytes()]);
    Ok(stage2_dir(run).join(format!(
        "{}-{:08x}",
        internalizer_slot(config).kind,
        hash & 0xffff_ffff
    )))
}

/// The trained adapters of this config's stage 2 inside a run.
pub fn stage2_policy_dir(config: &RunConfig, run: &RunDir) -> Result<PathBuf> {
    Ok(RunDir::policy_of(&stage2_train_dir(config, run)?))
}

/// The `[internalizer]` slot, `hidden-align` when absent.
pub fn internalizer_slot(config: &RunConfig) -> SlotConfig {
    config
        .internalizer
        .clone()
        .unwrap_or_else(|| SlotConfig::named("hidden-align"))
}

/// The `[alignment]` slot, `cosine` when absent.
pub fn alignment_slot(config: &RunConfig) -> SlotConfig {
    config
        .alignment
        .clone()
        .unwrap_or_else(|| SlotConfig::named("cosine"))
}

/// The `[internalization.lora]` slot, `kv` when absent.
pub fn lora_slot(config: &RunConfig) -> SlotConfig {
    config
        .internalization
        .lora
        .clone()
        .unwrap_or_else(|| SlotConfig::named("kv"))
}

/// Where the stage-1 weights are read from.
pub fn stage1_weights(config: &RunConfig, run: &RunDir) -> PathBuf {
    config
        .internalization
        .stage1
        .clone()
        .unwrap_or_else(|| stage1_policy_dir(run))
}

/// The weights file of a trained-weights folder (PEFT adapter or full model).
pub fn weights_file(dir: &Path) -> Result<PathBuf> {
    for f in ["adapter_model.safetensors", "model.safetensors"] {
        let p = dir.join(f);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(CoreError::Data(format!(
        "{}: no trained weights (adapter_model.safetensors + adapter_config.json, or \
         model.safetensors); run `siren train` first or set [internalization] stage1",
        dir.display()
    )))
}

/// `model` with trained weights from `dir` merged in: a PEFT adapter folder (merged into the
/// base weights) or a full fine-tuning's `model.safetensors` (every parameter by path).
pub fn with_weights(model: Decoder, dir: &Path) -> Result<Decoder> {
    let file = weights_file(dir)?;
    if dir.join("adapter_config.json").is_file() {
        return Ok(model.load_peft(dir)?.0.merge_lora());
    }
    let map = crate::engine::Weights::from_safetensors(&file)?.take_all()?;
    Ok(model.with_tensors_by_path(map)?)
}

/// The run's `[model]` on `device` with its tokenizer, with `<answer>`/`</answer>` made single
/// tokens when `[training] answer_tokens` is set and `[model] adapters` merged in order (every
/// stage that runs the decoder loads it so).
/// `what` names the stage in the error when the config has no `[model]`.
pub fn load_run_model(
    config: &RunConfig,
    device: &burn::tensor::Device,
    what: &str,
) -> Result<(Decoder, TextTokenizer)> {
    let m = config.model.as_ref().ok_or_else(|| {
        CoreError::config(
            "model",
            format!("{what} needs a [model] table (path = ...)"),
        )
    })?;
    let (mut model, mut tok) = crate::loading::load_model(&m.path, m.backbone.as_deref(), device)?;
    if config.training.answer_tokens {
        model = crate::engine::add_answer_tokens(model, &mut tok)?;
    }
    for dir in &m.adapters {
        tracing::info!(
            "merging the trained weights of {} into the model",
            dir.display()
        );
        model = with_weights(model, dir)?;
    }
    Ok((model, tok))
}

/// Token ids whose rows train with the LoRA adapters: `<answer>` and `</answer>` when
/// `[training] answer_tokens` made them single tokens, else none.
pub fn trained_token_ids(config: &RunConfig, tok: &TextTokenizer) -> Vec<u32> {
    if !config.training.answer_tokens {
        return Vec::new();
    }
    crate::engine::ANSWER_TOKENS
        .iter()
        .filter_map(|t| tok.token_id(t))
        .collect()
}

/// Which weights to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub enum Weights {
    /// Stage 2's if the run has them, else stage 1's, else the base model.
    Auto,
    /// The base model.
    Base,
    /// Stage 1's trained weights.
    Stage1,
    /// Stage 2's adapters over the stage-1 weights.
    Stage2,
    /// A PEFT adapter folder over the base model.
    Adapter(PathBuf),
}

/// The calibration `config` applies to answer-only distributions and the file it came from,
/// unless `[eval] calibration = "none"`: `[model] calibration`; else, given the run and the
/// method of the weights in use (`trained`), the fit on all rows that the run's own evaluation
/// wrote (`<eval folder>/<method>-calibration.json`, `[eval] calibrate` on valid), so that a
/// trained model's predictions carry the calibration fitted when it was evaluated. `siren eval`
/// passes no `trained`: its calibrated rows never depend on a file an evaluation writes.
pub fn model_calibration(
    config: &RunConfig,
    trained: Option<(&RunDir, &str)>,
) -> Result<Option<(crate::calibration::Calibration, PathBuf)>> {
    if config.eval.calibration == Some(crate::config::CalibrationUse::None) {
        return Ok(None);
    }
    let path = match config.model.as_ref().and_then(|m| m.calibration.clone()) {
        Some(p) => p,
        None => match trained {
            Some((run, method)) => {
                let p = run
                    .file(config.eval.folder())
                    .join(format!("{method}-calibration.json"));
                if !p.is_file() {
                    return Ok(None);
                }
                p
            }
            None => return Ok(None),
        },
    };
    let c = crate::calibration::Calibration::read(&path, 5)?;
    Ok(Some((c, path)))
}

/// The concrete weights `weights` means for this run (`Auto` resolved: stage 2's if the run
/// has them, else stage 1's, else the base model) and the files that hold them.
pub fn resolve_weights(
    config: &RunConfig,
    run: &RunDir,
    weights: &Weights,
) -> Result<(Weights, Vec<PathBuf>)> {
    let stage1 = stage1_weights(config, run);
    let stage2 = stage2_policy_dir(config, run)?;
    let which = match weights {
        Weights::Auto if weights_file(&stage2).is_ok() => Weights::Stage2,
        Weights::Auto if weights_file(&stage1).is_ok() => Weights::Stage1,
        Weights::Auto => Weights::Base,
        w => w.clone(),
    };
    // The model's own merged weights come first (`[model] adapters`).
    let mut files: Vec<PathBuf> = config
        .model
        .iter()
        .flat_map(|m| m.adapters.iter())
        .map(|d| weights_file(d))
        .collect::<Result<_>>()?;
    files.extend(match &which {
        Weights::Base | Weights::Auto => Vec::new(),
        Weights::Adapter(dir) => vec![weights_file(dir)?],
        Weights::Stage1 => vec![weights_file(&stage1)?],
        Weights::Stage2 => vec![weights_file(&stage1)?, weights_file(&stage2)?],
    });
    Ok((which, files))
}

/// The method name of the rows of `weights` (resolved): `base`, `adapter`, the trainer's or
/// the internalizer's name.
pub fn method_name(config: &RunConfig, weights: &Weights) -> String {
    match weights {
        Weights::Base | Weights::Auto => config
            .model
            .as_ref()
            .filter(|m| !m.adapters.is_empty())
            .and_then(|m| m.name.clone())
            .unwrap_or_else(|| "base".into()),
        Weights::Adapter(_) => "adapter".into(),
        Weights::Stage1 => config
            .trainer
            .as_ref()
            .map_or("stage1".to_string(), |t| t.kind.clone()),
        Weights::Stage2 => internalizer_slot(config).kind,
    }
}

/// `model` (the base, loaded) with the weights `weights` names applied, and the method name
/// of its rows (see [`method_name`]).
pub fn weighted_model(
    config: &RunConfig,
    run: &RunDir,
    weights: &Weights,
    model: Decoder,
) -> Result<(Decoder, String)> {
    let (which, _) = resolve_weights(config, run, weights)?;
    let stage1 = stage1_weights(config, run);
    let method = method_name(config, &which);
    let model = match which {
        Weights::Base | Weights::Auto => model,
        Weights::Adapter(dir) => {
            tracing::info!("evaluating with the adapter in {}", dir.display());
            model.load_peft(&dir)?.0.merge_lora()
        }
        Weights::Stage1 => {
            tracing::info!("evaluating the stage-1 weights in {}", stage1.display());
            with_weights(model, &stage1)?
        }
        Weights::Stage2 => {
            let dir = stage2_policy_dir(config, run)?;
            tracing::info!(
                "evaluating the stage-2 adapters in {} over {}",
                dir.display(),
                stage1.display()
            );
            with_weights(with_weights(model, &stage1)?, &dir)?
        }
    };
    Ok((model, method))
}
