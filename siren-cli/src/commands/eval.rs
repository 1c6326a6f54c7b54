//! `siren eval <config>`: CoT and answer-only rows of the decoder (the run's newest trained
//! weights, or those `--stage`, `--base` or `--adapter` name) next to the baselines; see `siren_core::stages::eval`.

use std::path::{Path, PathBuf};

use siren_core::config::RunConfig;
use siren_core::metrics::Metrics;
use siren_core::run::RunDir;
use siren_core::stages;
use siren_core::stages::eval::{Modes, Weights};

/// The arguments of `siren eval`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run config (TOML).
    pub config: PathBuf,
    /// Override a config key: `--set eval.sample=200` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// The model's calibration (`[model] calibration`) on the distributions: `model`
    /// (default, when the model has one) or `none` (sets `[eval] calibration`).
    #[arg(long, value_enum)]
    pub calibration: Option<crate::CalibrationArg>,
    /// Evaluate the base model even when the run has trained weights.
    #[arg(long)]
    pub base: bool,
    /// Evaluate with this PEFT adapter folder.
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// Evaluate the weights of stage 1 or 2 of the run (default: the newest it has).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub stage: Option<u8>,
    /// Skip the reasoning (CoT) rows.
    #[arg(long)]
    pub no_cot: bool,
    /// Skip the answer-only rows.
    #[arg(long)]
    pub no_ao: bool,
}

pub fn run(
    config_path: &Path,
    overrides: &[String],
    base: bool,
    adapter: Option<PathBuf>,
    stage: Option<u8>,
    modes: Modes,
) -> anyhow::Result<Metrics> {
    let config = RunConfig::load(config_path, overrides)?;
    config.validate()?;
    if usize::from(base) + usize::from(adapter.is_some()) + usize::from(stage.is_some()) > 1 {
        anyhow::bail!("--base, --adapter and --stage exclude each other");
    }
    let weights = match (base, adapter, stage) {
        (true, _, _) => Weights::Base,
        (_, Some(p), _) => Weights::Adapter(p),
        (_, _, Some(1)) => Weights::Stage1,
        (_, _, Some(_)) => Weights::Stage2,
        _ => Weights::Auto,
    };
    let run = RunDir::create(&config, &config.device)?;
    let ds = stages::load_dataset(&config)?;
    let m = stages::eval::run(&config, &ds, &run, &weights, modes, false)?;
    print!("{}", m.table());
    println!("wrote {}", run.file("metrics.json").display());
    Ok(m)
}
