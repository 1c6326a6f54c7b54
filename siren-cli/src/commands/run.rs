//! `siren run <config>`: the whole pipeline with reuse of finished stages; see
//! `siren_core::stages::pipeline`.

use std::path::Path;

use siren_core::config::RunConfig;
use siren_core::stages::pipeline::{self, Outcome};

/// The arguments of `siren run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run config (TOML).
    pub config: std::path::PathBuf,
    /// Override a config key: `--set internalizer.kind=ce` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

pub fn run(config_path: &Path, overrides: &[String]) -> anyhow::Result<Outcome> {
    let config = RunConfig::load(config_path, overrides)?;
    let out = pipeline::run(&config)?;
    for s in &out.stages {
        println!(
            "{:<12} {:<7} {:>8.1}s  {}",
            s.stage, s.status, s.seconds, s.detail
        );
    }
    println!();
    print!("{}", pipeline::metrics_table(&out.metrics));
    println!("\nreport: {}", out.report.display());
    Ok(out)
}
