//! `siren predict <config> --input pairs.jsonl`: one-forward ratings for (user, item) pairs
//! with the run's trained weights; see `siren_core::stages::predict`.

use std::path::{Path, PathBuf};

use siren_core::config::RunConfig;
use siren_core::run::RunDir;
use siren_core::stages;
use siren_core::stages::eval::Weights;

/// The arguments of `siren predict`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run config (TOML).
    pub config: PathBuf,
    /// JSONL file of pairs.
    #[arg(long)]
    pub input: PathBuf,
    /// Where to write the predictions.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Use the weights of stage 1 or 2 (default: the newest the run has).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub stage: Option<u8>,
    /// The model's calibration (`[model] calibration`) on the distributions: `model`
    /// (default, when the model has one) or `none` (sets `[eval] calibration`).
    #[arg(long, value_enum)]
    pub calibration: Option<crate::CalibrationArg>,
    /// Override a config key (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

pub fn run(
    config_path: &Path,
    overrides: &[String],
    input: &Path,
    output: Option<PathBuf>,
    stage: Option<u8>,
) -> anyhow::Result<PathBuf> {
    let config = RunConfig::load(config_path, overrides)?;
    config.validate()?;
    let weights = match stage {
        Some(1) => Weights::Stage1,
        Some(_) => Weights::Stage2,
        None => Weights::Auto,
    };
    let run = RunDir::create(&config, &config.device)?;
    let ds = stages::load_dataset(&config)?;
    let output = output.unwrap_or_else(|| run.file("predictions.jsonl"));
    let n = stages::predict::run(&config, &ds, &run, &weights, input, &output)?;
    println!("wrote {n} predictions to {}", output.display());
    Ok(output)
}
