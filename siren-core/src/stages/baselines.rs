//! The rating baselines (`siren baselines`): fits every `[[baselines]]` entry on the fit set
//! of the evaluated split and scores it on the whole split; writes the rows to `metrics.json`
//! and every prediction to `predictions.csv`.

use std::fmt::Write as _;
use std::time::Instant;

use crate::config::RunConfig;
use crate::data::{Dataset, Interaction};
use crate::metrics::{MethodResult, Metrics};
use crate::registry::build;
use crate::run::RunDir;
use crate::traits::RatingBaseline;
use crate::{CoreError, Result};

use super::stage::{Ctx, Stage, Status};

/// Fits and scores the baselines.
pub fn run(config: &RunConfig, ds: &Dataset, run: &RunDir) -> Result<Metrics> {
    if config.baselines.is_empty() {
        return Err(CoreError::config(
            "baselines",
            "no [[baselines]] configured; add e.g. `[[baselines]]\nkind = \"user-avg\"`",
        ));
    }
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
            .fit(ds, &fit, config.seed)
            .map_err(|e| CoreError::Numeric(format!("fitting baseline `{}`: {e}", b.kind)))?;
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
    write_predictions(run, ds, targets, &columns)?;
    run.record_metrics(&ds.name, split.as_str(), targets.len(), results)
}

fn write_predictions(
    run: &RunDir,
    ds: &Dataset,
    targets: &[Interaction],
    columns: &[(String, Vec<f32>)],
) -> Result<()> {
    let mut out = String::from("user_id,item_id,rating");
    for (name, _) in columns {
        let _ = write!(out, ",{name}");
    }
    out.push('\n');
    for (k, x) in targets.iter().enumerate() {
        let _ = write!(
            out,
            "{},{},{}",
            ds.users[x.user as usize], ds.items[x.item as usize].id, x.rating
        );
        for (_, pred) in columns {
            let _ = write!(out, ",{:.4}", pred[k]);
        }
        out.push('\n');
    }
    Ok(crate::files::write_atomic(
        &run.file("predictions.csv"),
        out.as_bytes(),
    )?)
}

/// The rating baselines as a stage of `siren run` (always runs: fitting them takes seconds).
pub struct Baselines;

impl Stage for Baselines {
    fn name(&self) -> &'static str {
        "baselines"
    }

    fn by_default(&self, _: &RunConfig) -> bool {
        true
    }

    fn run(&self, ctx: &mut Ctx<'_>) -> Result<(Status, String)> {
        let m = run(ctx.config, ctx.ds, ctx.run)?;
        let d = format!("{} baselines on {} rows", ctx.config.baselines.len(), m.n);
        ctx.metrics = Some(m);
        Ok((Status::Ran, d))
    }
}
