//! `siren internalize <config>`: stage 2 with the internalizer named in `[internalizer]`; see
//! `siren_core::stages::internalize`.

use std::path::Path;

use siren_core::stages;
use siren_core::traits::TrainReport;

/// The arguments of `siren internalize`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run config (TOML).
    pub config: std::path::PathBuf,
    /// Override a config key: `--set alignment.kind=mse` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Continue the training from the newest checkpoint (a harvest always resumes).
    #[arg(long)]
    pub resume: bool,
}

pub fn run(config_path: &Path, overrides: &[String], resume: bool) -> anyhow::Result<TrainReport> {
    let (config, run, ds) = super::open_run(config_path, overrides)?;
    let report = stages::internalize::run(&config, &ds, &run, resume)?;
    super::print_train_report(&report);
    println!(
        "wrote {} (the CoT teacher in harvest-*/) and {} (metrics.jsonl, training.svg/.png, \
         checkpoints/, policy/)",
        stages::internalize::stage_dir(&run).display(),
        stages::internalize::train_dir(&config, &run)?.display()
    );
    Ok(report)
}
