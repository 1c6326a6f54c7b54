//! `siren baselines <config>`: fit every `[[baselines]]` entry on the fit set and evaluate on
//! the configured split; see `siren_core::stages::baselines`.

use std::path::Path;

use siren_core::config::RunConfig;
use siren_core::metrics::Metrics;
use siren_core::run::RunDir;

/// The arguments of `siren baselines`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run config (TOML).
    pub config: std::path::PathBuf,
    /// Override a config key: `--set baselines.3.params.factors=64` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

pub fn run(config_path: &Path, overrides: &[String]) -> anyhow::Result<Metrics> {
    let config = RunConfig::load(config_path, overrides)?;
    config.validate()?;
    if config.baselines.is_empty() {
        anyhow::bail!(
            "{}: no [[baselines]] configured; add e.g. `[[baselines]]\\nkind = \"user-avg\"`",
            config_path.display()
        );
    }
    let run = RunDir::create(
        &config,
        &format!("{} (unused: baselines run on the CPU)", config.device),
    )?;
    let ds = siren_core::stages::load_dataset(&config)?;
    let metrics = siren_core::stages::baselines::run(&config, &ds, &run)?;
    print!("{}", metrics.table());
    println!("wrote {}", run.file("metrics.json").display());
    Ok(metrics)
}
