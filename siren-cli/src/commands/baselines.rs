//! `siren baselines <config>`: fit every `[[baselines]]` entry on the fit set and evaluate on
//! the configured split.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use siren_core::config::RunConfig;
use siren_core::metrics::{MethodResult, Metrics};
use siren_core::registry::build;
use siren_core::run::RunDir;
use siren_core::traits::RatingBaseline;

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
    let split = config.eval.split;
    let targets = ds.split(split);
    let fit = ds.fit_set(split);
    let truth: Vec<f32> = targets.iter().map(|x| x.rating).collect();

    let mut results = Vec::new();
    let mut columns: Vec<(String, Vec<f32>)> = Vec::new();
    for b in &config.baselines {
        let baseline = build::<dyn RatingBaseline>(&b.kind, &b.params)?;
        let t = Instant::now();
        let model = baseline
            .fit(&ds, &fit, config.seed)
            .with_context(|| format!("fitting baseline `{}`", b.kind))?;
        let pred: Vec<f32> = targets
            .iter()
            .map(|x| model.predict(x.user, x.item))
            .collect();
        let secs = t.elapsed().as_secs_f64();
        let mut r = MethodResult::evaluate(&b.kind, &pred, &truth)?;
        r.extra
            .insert("fit_seconds".into(), serde_json::json!(secs));
        tracing::info!(
            "{}: MAE {:.4} RMSE {:.4} ({secs:.2}s)",
            b.kind,
            r.mae,
            r.rmse
        );
        results.push(r);
        columns.push((b.kind.clone(), pred));
    }

    write_predictions(&run, &ds, targets, &columns)?;
    let metrics = run.record_metrics(&ds.name, split.as_str(), targets.len(), results)?;
    print!("{}", metrics.table());
    println!("wrote {}", run.file("metrics.json").display());
    Ok(metrics)
}

fn write_predictions(
    run: &RunDir,
    ds: &siren_core::data::Dataset,
    targets: &[siren_core::data::Interaction],
    columns: &[(String, Vec<f32>)],
) -> anyhow::Result<()> {
    let path = run.file("predictions.csv");
    let mut out = Vec::new();
    write!(out, "user_id,item_id,rating")?;
    for (name, _) in columns {
        write!(out, ",{name}")?;
    }
    writeln!(out)?;
    for (k, x) in targets.iter().enumerate() {
        write!(
            out,
            "{},{},{}",
            ds.users[x.user as usize], ds.items[x.item as usize].id, x.rating
        )?;
        for (_, pred) in columns {
            write!(out, ",{:.4}", pred[k])?;
        }
        writeln!(out)?;
    }
    siren_core::run::write_atomic(&path, &out)?;
    Ok(())
}
