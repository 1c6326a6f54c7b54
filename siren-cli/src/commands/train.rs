//! `siren train <config>`: stage 1 with the trainer named in `[trainer]`; see
//! `siren_core::stages::train`.

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
    let report = stages::train::run(&config, &ds, &run, resume)?;
    println!("{} steps; last step:", report.steps);
    for (k, v) in &report.metrics {
        println!("  {k:<18} {v:.4}");
    }
    let stage = stages::train::stage_dir(&run);
    println!(
        "wrote {} (metrics.jsonl, training.svg, checkpoints/, policy/)",
        stage.display()
    );
    Ok(report)
}
