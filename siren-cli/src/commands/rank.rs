//! `siren rank <config> (--input users.jsonl | --evaluate)`: candidate ranking and the
//! reranking evaluation; see `siren_core::stages::rank`.

use std::path::{Path, PathBuf};

use siren_core::stages;
use siren_core::stages::eval::Weights;

/// The arguments of `siren rank`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run config (TOML).
    pub config: PathBuf,
    /// JSONL file of ranking requests.
    #[arg(
        long,
        conflicts_with = "evaluate",
        required_unless_present = "evaluate"
    )]
    pub input: Option<PathBuf>,
    /// Where to write the rankings (default runs/<name>/rankings.jsonl).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Run the reranking evaluation on [eval] split ([rank] settings).
    #[arg(long)]
    pub evaluate: bool,
    /// Use the weights of stage 1 or 2 (default: the newest the run has).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub stage: Option<u8>,
    /// The model's calibration (`[model] calibration`) on the distributions: `model`
    /// (default, when the model has one) or `none` (sets `[eval] calibration`).
    #[arg(long, value_enum)]
    pub calibration: Option<crate::CalibrationArg>,
    /// Override a config key: `--set rank.sample=300` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

pub fn run(
    config_path: &Path,
    overrides: &[String],
    input: Option<&Path>,
    output: Option<PathBuf>,
    evaluate: bool,
    weights: Weights,
) -> anyhow::Result<()> {
    let (config, run, ds) = super::open_run(config_path, overrides)?;
    if evaluate {
        stages::rank::evaluate(&config, &ds, &run, &weights)?;
        println!("wrote {}", run.file("rank.md").display());
        return Ok(());
    }
    let input = input.ok_or_else(|| anyhow::anyhow!("give --input users.jsonl or --evaluate"))?;
    let output = output.unwrap_or_else(|| run.file("rankings.jsonl"));
    let n = stages::rank::rank_file(&config, &ds, &run, &weights, input, &output)?;
    println!("wrote {n} rankings to {}", output.display());
    Ok(())
}
