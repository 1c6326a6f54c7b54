//! `siren train <config>`: stage 1 with the trainer named in `[trainer]`; see
//! `siren_core::stages::train`.

use std::path::Path;

use siren_core::stages;
use siren_core::traits::TrainReport;

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
