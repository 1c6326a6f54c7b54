//! The pipeline runner (`siren run`): the stages of `[pipeline] stages` in order — rating
//! baselines, interest sketch, stage 1, stage 2, evaluation — then `report.md` with its charts.
//!
//! Each stage is a type ([`super::stage::Stage`]) listed once in [`PIPELINE`]; the runner asks
//! each whether the run folder holds its outputs for this config and runs it otherwise.
//!
//! Reuse: the sketch stage is skipped when `sketch.key` matches its settings
//! ([`super::sketch::key`]; it reads cached item embeddings when it runs); stage 1 is skipped
//! when `stage1/key.txt` matches the config ([`super::train::key`]); stage 2 when this config's keyed folder holds
//! its adapters ([`super::internalize::train_dir`]) and the CoT harvest is shared by every
//! internalizer; evaluations are reused when the weights' bytes and every setting that shapes
//! them are the same (`eval/cache-<key>.json`). So a config that changes only `[internalizer]`
//! redoes only stage 2 and its evaluation. After a crash, `siren run` again resumes training
//! from the newest checkpoint and a harvest from its last decoded batch.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use crate::config::RunConfig;
use crate::metrics::{MethodResult, Metrics};
use crate::run::RunDir;
use crate::{CoreError, Result};

use super::PIPELINE;
use super::stage::{Ctx, Stage, Status};

/// What one stage did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StageLog {
    /// Stage name.
    pub stage: String,
    /// `ran` or `reused`.
    pub status: String,
    /// Wall time.
    pub seconds: f64,
    /// One line on what it produced or reused.
    pub detail: String,
}

/// The outcome of a pipeline run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The run's metrics after the last stage.
    pub metrics: Metrics,
    /// What each stage did.
    pub stages: Vec<StageLog>,
    /// `runs/<name>/report.md`.
    pub report: PathBuf,
}

/// The stages this config runs, in pipeline order: those `[pipeline] stages` names, else each
/// stage of [`PIPELINE`] that runs by default for this config ([`Stage::by_default`]).
pub fn stages_of(config: &RunConfig) -> Result<Vec<&'static dyn Stage>> {
    if let Some(list) = &config.pipeline.stages {
        for s in list {
            if !PIPELINE.iter().any(|p| p.name() == s) {
                let valid: Vec<&str> = PIPELINE.iter().map(|p| p.name()).collect();
                return Err(CoreError::config(
                    "pipeline.stages",
                    format!("unknown stage `{s}`; valid: {}", valid.join(", ")),
                ));
            }
        }
        return Ok(PIPELINE
            .iter()
            .copied()
            .filter(|p| list.iter().any(|l| l == p.name()))
            .collect());
    }
    Ok(PIPELINE
        .iter()
        .copied()
        .filter(|p| p.by_default(config))
        .collect())
}

/// Runs the pipeline and writes `report.md`.
pub fn run(config: &RunConfig) -> Result<Outcome> {
    config.validate()?;
    let stages = stages_of(config)?;
    let run = RunDir::create(config, &config.device)?;
    let ds = super::load_dataset(config)?;
    let mut ctx = Ctx {
        config,
        ds: &ds,
        run: &run,
        metrics: None,
    };
    let mut logs: Vec<StageLog> = Vec::new();
    let total = stages.len();
    for (k, stage) in stages.iter().enumerate() {
        let name = stage.name();
        tracing::info!("== stage {}/{total}: {name}", k + 1);
        let t = Instant::now();
        let (status, detail) = match stage.done(config, &run)? {
            Some(detail) => (Status::Reused, detail),
            None if stage.distributed() || crate::dist::size() == 1 => stage.run(&mut ctx)?,
            // A data-parallel run: rank 0 runs the stage, the others wait for what it writes.
            None if crate::dist::is_leader() => {
                let out = stage.run(&mut ctx)?;
                crate::dist::barrier()?;
                out
            }
            None => {
                crate::dist::barrier()?;
                (Status::Ran, "on rank 0".to_string())
            }
        };
        let seconds = t.elapsed().as_secs_f64();
        let status = status.as_str();
        tracing::info!("== {name}: {status} ({seconds:.1}s): {detail}");
        logs.push(StageLog {
            stage: name.to_string(),
            status: status.to_string(),
            seconds,
            detail,
        });
    }
    let metrics = own_rows(
        config,
        match ctx.metrics {
            Some(m) => m,
            None => Metrics::read(&run.file("metrics.json"))?,
        },
    );
    // Rank 0 writes the report of a data-parallel run.
    let report = if crate::dist::is_leader() {
        write_report(config, &run, &metrics, &logs)?
    } else {
        run.file("report.md")
    };
    Ok(Outcome {
        metrics,
        stages: logs,
        report,
    })
}

/// The rows of `m` that this config's stages produce: its `[[baselines]]`, `base-*` (or, for a
/// `[model]` with adapters and a `name`, `<name>-*`), `adapter-*`, stage 1's `<trainer>-cot*` /
/// `<trainer>-ao*` and stage 2's `<internalizer>-ao*`. A run folder shared by a sweep also
/// holds the rows of the other points, which the run's report leaves out.
pub fn own_rows(config: &RunConfig, mut m: Metrics) -> Metrics {
    let stage1 = super::eval::method_name(config, &super::eval::Weights::Stage1);
    let base = super::eval::method_name(config, &super::eval::Weights::Base);
    let stage2 = format!("{}-ao", super::internalize::internalizer_slot(config).kind);
    m.results.retain(|r| {
        let own = |p: &str| r.method == p || r.method.starts_with(&format!("{p}-"));
        config.baselines.iter().any(|b| b.kind == r.method)
            || own("base")
            || own(&base)
            || own("adapter")
            || own(&stage2)
            || own(&format!("{stage1}-cot"))
            || own(&format!("{stage1}-ao"))
    });
    m
}

fn num(r: &MethodResult, k: &str) -> Option<f64> {
    r.extra.get(k).and_then(serde_json::Value::as_f64)
}

/// The metrics table of a report: one row per method.
pub fn metrics_table(m: &Metrics) -> String {
    let mut s = String::from(
        "| method | MAE | RMSE | output tokens | s/sample | parsed |\n|---|---|---|---|---|---|\n",
    );
    for r in &m.results {
        let cell = |v: Option<f64>, p: usize| v.map_or(String::new(), |v| format!("{v:.p$}"));
        let _ = writeln!(
            s,
            "| {} | {:.4} | {:.4} | {} | {} | {} |",
            r.method,
            r.mae,
            r.rmse,
            cell(num(r, "mean_output_tokens"), 1),
            cell(num(r, "latency_s"), 3),
            cell(num(r, "parse_rate"), 3)
        );
    }
    s
}

fn write_report(
    config: &RunConfig,
    run: &RunDir,
    m: &Metrics,
    logs: &[StageLog],
) -> Result<PathBuf> {
    let methods: Vec<String> = m.results.iter().map(|r| r.method.clone()).collect();
    crate::plot::write_bars(
        &run.file("report-metrics"),
        &format!("{} · {} {} (n = {})", config.name, m.dataset, m.split, m.n),
        &methods,
        &[
            ("MAE".to_string(), m.results.iter().map(|r| r.mae).collect()),
            (
                "RMSE".to_string(),
                m.results.iter().map(|r| r.rmse).collect(),
            ),
        ],
    )?;
    let timed: Vec<&MethodResult> = m
        .results
        .iter()
        .filter(|r| num(r, "latency_s").is_some())
        .collect();
    if !timed.is_empty() {
        crate::plot::write_bars(
            &run.file("report-latency"),
            "latency per sample (s): CoT vs answer-only",
            &timed.iter().map(|r| r.method.clone()).collect::<Vec<_>>(),
            &[(
                "s/sample".to_string(),
                timed
                    .iter()
                    .map(|r| num(r, "latency_s").unwrap_or(0.0))
                    .collect(),
            )],
        )?;
    }
    let mut s = String::new();
    let _ = writeln!(s, "# {}\n", config.name);
    let _ = writeln!(
        s,
        "{} · split `{}` · {} rows · device `{}` · seed {} · revision {}\n",
        m.dataset,
        m.split,
        m.n,
        config.device,
        config.seed,
        crate::run::git_revision()
    );
    let _ = writeln!(s, "## Metrics\n\n{}", metrics_table(m));
    if m.results.iter().any(|r| r.method.contains("-cal-")) {
        let _ = writeln!(
            s,
            "Rows named `*-cal-*` are calibrated: each half of the evaluated rows is scored by a \
             calibration fitted on the other half's labels (a cross-fit on this split).\n"
        );
    }
    if m.results.iter().any(|r| r.method.contains("-modelcal-")) {
        let _ = writeln!(
            s,
            "Rows named `*-modelcal-*` apply the model's own calibration (`[model] \
             calibration`, fitted on the split the model was tuned on: in-sample there, held \
             out on any other split).\n"
        );
    }
    let _ = writeln!(s, "![MAE and RMSE](report-metrics.svg)\n");
    if !timed.is_empty() {
        let _ = writeln!(s, "![latency](report-latency.svg)\n");
    }
    let _ = writeln!(
        s,
        "## Stages\n\n| stage | status | seconds | detail |\n|---|---|---|---|"
    );
    for l in logs {
        let _ = writeln!(
            s,
            "| {} | {} | {:.1} | {} |",
            l.stage, l.status, l.seconds, l.detail
        );
    }
    let mut curves = Vec::new();
    for dir in [
        super::train::stage_dir(run),
        super::internalize::train_dir(config, run)?,
    ] {
        let svg = dir.join("training.svg");
        if svg.is_file()
            && let Ok(rel) = svg.strip_prefix(run.path())
        {
            curves.push(rel.display().to_string());
        }
    }
    if !curves.is_empty() {
        let _ = writeln!(s, "\n## Training curves\n");
        for c in curves {
            let _ = writeln!(s, "![{c}]({c})\n");
        }
    }
    let _ = writeln!(
        s,
        "\n## Resolved config\n\n```toml\n{}```",
        config.to_toml()?
    );
    let path = run.file("report.md");
    crate::files::write_atomic(&path, s.as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(method: &str) -> MethodResult {
        MethodResult {
            method: method.into(),
            mae: 0.7,
            rmse: 1.2,
            extra: Default::default(),
        }
    }

    fn names(config: &RunConfig) -> Result<Vec<&'static str>> {
        Ok(stages_of(config)?.iter().map(|s| s.name()).collect())
    }

    #[test]
    fn stages_run_in_pipeline_order_by_default_or_as_listed() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
        let quick = RunConfig::load(&dir.join("quickstart.toml"), &[]).unwrap();
        assert_eq!(
            names(&quick).unwrap(),
            ["baselines", "sketch", "train", "internalize", "eval"]
        );
        let shipped = RunConfig::load(&dir.join("shipped-movies.toml"), &[]).unwrap();
        assert_eq!(names(&shipped).unwrap(), ["baselines", "sketch", "eval"]);
        let listed = RunConfig::load(
            &dir.join("quickstart.toml"),
            &["pipeline.stages=[\"eval\",\"baselines\"]".to_string()],
        )
        .unwrap();
        assert_eq!(names(&listed).unwrap(), ["baselines", "eval"]);
        let bad = RunConfig::load(
            &dir.join("quickstart.toml"),
            &["pipeline.stages=[\"sketch\",\"rerank\"]".to_string()],
        )
        .unwrap();
        let e = names(&bad).unwrap_err().to_string();
        assert!(
            e.contains("pipeline.stages")
                && e.contains("`rerank`")
                && e.contains("baselines, sketch, train, internalize, eval"),
            "{e}"
        );
    }

    #[test]
    fn a_named_models_rows_are_its_own() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/shipped-movies.toml");
        let config = RunConfig::load(&path, &[]).unwrap();
        let m = Metrics {
            dataset: "amazon-movies".into(),
            split: "valid".into(),
            n: 10,
            results: [
                "constant",
                "mf",
                "siren-smollm2-ao",
                "siren-smollm2-ao-expected",
                "siren-smollm2-ao-cal-median",
                "someone-else-ao",
                "base-ao",
            ]
            .iter()
            .map(|m| row(m))
            .collect(),
            sections: Default::default(),
        };
        let kept: Vec<String> = own_rows(&config, m)
            .results
            .into_iter()
            .map(|r| r.method)
            .collect();
        assert_eq!(
            kept,
            [
                "constant",
                "mf",
                "siren-smollm2-ao",
                "siren-smollm2-ao-expected",
                "siren-smollm2-ao-cal-median",
                "base-ao"
            ]
        );
    }
}
