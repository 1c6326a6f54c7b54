//! `siren rank <config> (--input users.jsonl | --evaluate)`: candidate ranking and the
//! reranking evaluation; see `siren_core::stages::rank`.

use std::path::{Path, PathBuf};

use siren_core::stages;
use siren_core::stages::eval::Weights;

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
