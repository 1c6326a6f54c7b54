//! Sweeps and backbone comparisons (`siren sweep`, `siren compare`): the pipeline
//! ([`super::pipeline`]) once per point, then one table and one chart.
//!
//! A sweep point is a set of `--set` overrides. Points that change only stage-2 or evaluation
//! keys (`internalizer`, `alignment`, `internalization.*`, `eval.*`, `pipeline.*`) share the
//! run folder, so they reuse its sketch, stage 1 and CoT harvest. Any other key gives each
//! point its own run, `<name>-<key>-<value>`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::config::RunConfig;
use crate::metrics::Metrics;
use crate::{CoreError, Result};

/// Keys whose points can share one run folder.
const SHARED_PREFIXES: [&str; 5] = [
    "internalizer",
    "alignment",
    "internalization",
    "eval",
    "pipeline",
];

/// One point: a label and its overrides.
#[derive(Debug, Clone)]
pub struct Point {
    /// Shown in the table.
    pub label: String,
    /// `KEY=VALUE` overrides.
    pub sets: Vec<String>,
    /// Its run's name suffix when set (points of one suffix share a run folder).
    pub run: Option<String>,
}

/// The points of a config's `[[sweep.points]]`.
pub fn listed(points: &[crate::config::SweepPoint]) -> Vec<Point> {
    points
        .iter()
        .map(|p| Point {
            label: p.label.clone(),
            sets: p.set.clone(),
            run: Some(p.run.clone().unwrap_or_else(|| slug(&p.label))),
        })
        .collect()
}

/// The cartesian product of `--grid KEY=V1,V2,...` arguments.
pub fn grid(args: &[String]) -> Result<Vec<Point>> {
    if args.is_empty() {
        return Err(CoreError::config(
            "--grid",
            "no grid: give at least one KEY=V1,V2",
        ));
    }
    let mut points = vec![Point {
        label: String::new(),
        sets: Vec::new(),
        run: None,
    }];
    for a in args {
        let (key, vals) = a
            .split_once('=')
            .ok_or_else(|| CoreError::config("--grid", format!("`{a}` is not KEY=V1,V2,...")))?;
        let vals: Vec<&str> = vals
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect();
        if vals.is_empty() {
            return Err(CoreError::config("--grid", format!("`{a}` has no values")));
        }
        let mut next = Vec::new();
        for p in &points {
            for v in &vals {
                let mut sets = p.sets.clone();
                sets.push(format!("{key}={v}"));
                let short = key.rsplit('.').next().unwrap_or(key);
                let label = if p.label.is_empty() {
                    format!("{short}={v}")
                } else {
                    format!("{} {short}={v}", p.label)
                };
                next.push(Point {
                    label,
                    sets,
                    run: None,
                });
            }
        }
        points = next;
    }
    Ok(points)
}

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '.' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// Whether every override of every point may share the base run folder.
pub fn shares_run(points: &[Point]) -> bool {
    points.iter().all(|p| p.run.is_none())
        && points.iter().flat_map(|p| &p.sets).all(|s| {
            let key = s.split('=').next().unwrap_or("");
            SHARED_PREFIXES
                .iter()
                .any(|p| key == *p || key.starts_with(&format!("{p}.")))
        })
}

/// The rows of a point's own models: the baselines, stage 1 (or the base model) and this
/// point's stage 2, whose rows are renamed `stage1-…` and `stage2-ao…` so that points with
/// different trainers or internalizers line up. Rows other points left in a shared run are dropped.
fn point_rows(cfg: &RunConfig, m: Metrics) -> Metrics {
    let stage2 = format!("{}-ao", super::internalize::internalizer_slot(cfg).kind);
    let stage1 = super::eval::method_name(cfg, &super::eval::Weights::Stage1);
    let mut m = super::pipeline::own_rows(cfg, m);
    for r in &mut m.results {
        if r.method == stage2 || r.method.starts_with(&format!("{stage2}-")) {
            r.method = format!("stage2-ao{}", &r.method[stage2.len()..]);
        } else if cfg.trainer.is_some() && r.method.starts_with(&format!("{stage1}-")) {
            r.method = format!("stage1{}", &r.method[stage1.len()..]);
        }
    }
    m
}

/// Runs the pipeline once per point and writes `runs/<out>/report.md` and `sweep.svg`.
/// Returns the report path and each point's rows (see [`point_rows`]).
pub fn run(
    config_path: &Path,
    base: &[String],
    points: &[Point],
    out: &str,
    title: &str,
) -> Result<(PathBuf, Vec<Metrics>)> {
    if points.is_empty() {
        return Err(CoreError::config("sweep", "no points to run"));
    }
    let shared = shares_run(points);
    let base_cfg = RunConfig::load(config_path, base)?;
    let mut all = Vec::new();
    for (k, p) in points.iter().enumerate() {
        let mut sets = base.to_vec();
        sets.extend(p.sets.iter().cloned());
        if let Some(r) = &p.run {
            sets.push(format!("name={}-{}", base_cfg.name, slug(r)));
        } else if !shared {
            sets.push(format!("name={}-{}", base_cfg.name, slug(&p.label)));
        }
        let cfg = RunConfig::load(config_path, &sets)?;
        tracing::info!(
            "==== point {}/{}: {} (run `{}`)",
            k + 1,
            points.len(),
            p.label,
            cfg.name
        );
        let outcome = super::pipeline::run(&cfg)?;
        all.push(point_rows(&cfg, outcome.metrics));
    }
    let dir = base_cfg.runs_dir.join(out);
    std::fs::create_dir_all(&dir).map_err(|e| CoreError::io(&dir, e))?;
    // Columns: every method, in first-seen order.
    let mut methods: Vec<String> = Vec::new();
    for m in &all {
        for r in &m.results {
            if !methods.contains(&r.method) {
                methods.push(r.method.clone());
            }
        }
    }
    let mut s = format!(
        "# {title}\n\nMAE / RMSE on {} `{}`.\n\n| point |",
        all[0].dataset, all[0].split
    );
    for m in &methods {
        let _ = write!(s, " {m} |");
    }
    s.push_str("\n|---|");
    s.push_str(&"---|".repeat(methods.len()));
    s.push('\n');
    for (p, m) in points.iter().zip(&all) {
        let _ = write!(s, "| {} (n = {}) |", p.label, m.n);
        for name in &methods {
            match m.results.iter().find(|r| &r.method == name) {
                Some(r) => {
                    let _ = write!(s, " {:.4} / {:.4} |", r.mae, r.rmse);
                }
                None => s.push_str(" |"),
            }
        }
        s.push('\n');
    }
    let labels: Vec<String> = points.iter().map(|p| p.label.clone()).collect();
    let series: Vec<(String, Vec<f64>)> = methods
        .iter()
        .map(|name| {
            let v = all
                .iter()
                .map(|m| {
                    m.results
                        .iter()
                        .find(|r| &r.method == name)
                        .map_or(f64::NAN, |r| r.mae)
                })
                .collect();
            (format!("{name} MAE"), v)
        })
        .collect();
    crate::plot::write_bars(&dir.join("sweep"), title, &labels, &series)?;
    let _ = writeln!(s, "\n![MAE per point](sweep.svg)\n");
    let _ = writeln!(
        s,
        "Runs: {}.",
        if shared {
            format!(
                "all points in `{}` (shared sketch, stage 1 and harvest)",
                base_cfg.name
            )
        } else {
            "one per point, `<name>-<point>`".to_string()
        }
    );
    let path = dir.join("report.md");
    crate::files::write_atomic(&path, s.as_bytes())?;
    Ok((path, all))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_are_cartesian_and_sharing_follows_the_keys() {
        let p = grid(&[
            "alignment.kind=cosine,mse".into(),
            "eval.decoder=argmax,median".into(),
        ])
        .unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!(p[1].label, "kind=cosine decoder=median");
        assert_eq!(
            p[1].sets,
            vec!["alignment.kind=cosine", "eval.decoder=median"]
        );
        assert!(shares_run(&p));
        let p = grid(&["topics.k=10,20".into()]).unwrap();
        assert!(!shares_run(&p));
        assert_eq!(slug(&p[0].label), "k-10");
        assert!(grid(&["topics.k".into()]).is_err());
        assert!(grid(&["topics.k=".into()]).is_err());
        assert!(grid(&[]).is_err());
    }
}
