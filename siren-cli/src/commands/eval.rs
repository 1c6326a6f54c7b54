//! `siren eval <config>`: CoT and answer-only rows of the decoder (trained weights of stage 1
//! when the run has them) next to the baselines; see `siren_core::stages::eval`.

use std::path::{Path, PathBuf};

use siren_core::config::RunConfig;
use siren_core::metrics::Metrics;
use siren_core::run::RunDir;
use siren_core::stages;
use siren_core::stages::eval::{Modes, Weights};

pub fn run(
    config_path: &Path,
    overrides: &[String],
    base: bool,
    adapter: Option<PathBuf>,
    modes: Modes,
) -> anyhow::Result<Metrics> {
    let config = RunConfig::load(config_path, overrides)?;
    config.validate()?;
    if base && adapter.is_some() {
        anyhow::bail!("--base and --adapter exclude each other");
    }
    let weights = match (base, adapter) {
        (true, _) => Weights::Base,
        (_, Some(p)) => Weights::Adapter(p),
        _ => Weights::Auto,
    };
    let run = RunDir::create(&config, &config.device)?;
    let ds = stages::load_dataset(&config)?;
    let m = stages::eval::run(&config, &ds, &run, &weights, modes)?;
    print!("{}", m.table());
    println!("wrote {}", run.file("metrics.json").display());
    Ok(m)
}
