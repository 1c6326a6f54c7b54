//! `siren train <config>`: stage 1 with the trainer named in `[trainer]`; see
//! `siren_core::stages::train`.

use std::path::Path;

use siren_core::stages;
use siren_core::traits::TrainReport;

/// The arguments of `siren train`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run config (TOML).
    pub config: std::path::PathBuf,
    /// Override a config key: `--set training.lr=1e-5` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Continue from the newest checkpoint of this run.
    #[arg(long)]
    pub resume: bool,
}

pub fn run(config_path: &Path, overrides: &[String], resume: bool) -> anyhow::Result<TrainReport> {
    let (config, run, ds) = super::open_run(config_path, overrides)?;
    let report = stages::train::run(&config, &ds, &run, resume)?;
    super::print_train_report(&report);
    let stage = stages::train::stage_dir(&run);
    println!(
        "wrote {} (metrics.jsonl, training.svg/.png, checkpoints/, policy/)",
        stage.display()
    );
    Ok(report)
}
