//! `siren run <config>`: the whole pipeline with reuse of finished stages; see
//! `siren_core::stages::pipeline`.

use std::path::Path;

use siren_core::config::RunConfig;
use siren_core::stages::pipeline::{self, Outcome};

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
