//! One file per subcommand.

pub mod baselines;
pub mod devices;
pub mod eval;
pub mod generate;
pub mod internalize;
pub mod paired;
pub mod plugins;
pub mod predict;
pub mod rank;
pub mod run;
pub mod sketch;
pub mod sweep;
pub mod train;

use siren_core::config::RunConfig;
use siren_core::data::Dataset;
use siren_core::run::RunDir;
use siren_core::traits::TrainReport;

/// Loads and validates the config, opens its run folder and loads its dataset: the start of
/// every command that runs a stage.
pub(crate) fn open_run(
    config_path: &std::path::Path,
    overrides: &[String],
) -> anyhow::Result<(RunConfig, RunDir, Dataset)> {
    let config = RunConfig::load(config_path, overrides)?;
    config.validate()?;
    let run = RunDir::create(&config, &config.device)?;
    let ds = siren_core::stages::load_dataset(&config)?;
    Ok((config, run, ds))
}

/// Prints a training stage's step count and last-step metrics.
pub(crate) fn print_train_report(report: &TrainReport) {
    println!("{} steps; last step:", report.steps);
    for (k, v) in &report.metrics {
        println!("  {k:<18} {v:.4}");
    }
}
