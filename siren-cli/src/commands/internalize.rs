//! `siren internalize <config>`: stage 2 with the internalizer named in `[internalizer]`; see
//! `siren_core::stages::internalize`.

use std::path::Path;

use siren_core::config::RunConfig;
use siren_core::run::RunDir;
use siren_core::stages;
use siren_core::traits::TrainReport;

pub fn run(config_path: &Path, overrides: &[String], resume: bool) -> anyhow::Result<TrainReport> {
    let config = RunConfig::load(config_path, overrides)?;
    config.validate()?;
    let run = RunDir::create(&config, &config.device)?;
    let ds = stages::load_dataset(&config)?;
    let report = stages::internalize::run(&config, &ds, &run, resume)?;
    println!("{} steps; last step:", report.steps);
    for (k, v) in &report.metrics {
        println!("  {k:<18} {v:.4}");
    }
    println!(
        "wrote {} (the CoT teacher in harvest-*/) and {} (metrics.jsonl, training.svg, \
         checkpoints/, policy/)",
        stages::internalize::stage_dir(&run).display(),
        stages::internalize::train_dir(&config, &run)?.display()
    );
    Ok(report)
}
