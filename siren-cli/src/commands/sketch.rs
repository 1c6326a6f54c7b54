//! `siren sketch <config>`: the sketch stage (encode items, cluster, name topics, build every
//! user's sketch, measure prompt lengths); see `siren_core::stages::sketch`.

use std::path::Path;

use siren_core::stages;

/// The arguments of `siren sketch`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run config (TOML).
    pub config: std::path::PathBuf,
    /// Override a config key: `--set clusterer.kind=hnsw` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

pub fn run(config_path: &Path, overrides: &[String]) -> anyhow::Result<serde_json::Value> {
    let (config, run, ds) = super::open_run(config_path, overrides)?;
    let out = stages::sketch::run(&config, &ds, &run)?;
    println!("{} topics:", out.topics.len());
    for t in &out.topics {
        println!("  {:>2}  {:<60} {:>6} items", t.id, t.name, t.size);
    }
    let r = &out.report;
    if let Some(tokens) = r["tokens"].as_object().filter(|t| !t.is_empty()) {
        println!("\ninput tokens per prompt ({} prompts):", tokens["prompts"]);
        println!("  {:<14} {:>10} {:>10}", "strategy", "mean", "median");
        for s in ["recent", "sketch", "full-history", "more-history"] {
            println!(
                "  {s:<14} {:>10.1} {:>10.1}",
                tokens[s]["mean"].as_f64().unwrap_or(f64::NAN),
                tokens[s]["median"].as_f64().unwrap_or(f64::NAN)
            );
        }
        println!(
            "  sketch vs full history: {:+.1}%",
            100.0
                * tokens["sketch_vs_full_history"]
                    .as_f64()
                    .unwrap_or(f64::NAN)
        );
    }
    println!("\nseconds: {}", r["seconds"]);
    println!("wrote {}", run.path().display());
    Ok(out.report)
}
