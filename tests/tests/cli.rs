//! The `siren` command line end to end: baselines, metrics.json, and its error messages.

use std::path::{Path, PathBuf};

use approx::assert_abs_diff_eq;
use siren_tests::{assets_dir, paper_movies_dir, repo_root, small_movielens, tiny_config};

fn config(name: &str) -> String {
    repo_root().join("configs").join(name).display().to_string()
}

fn metrics(runs: &Path, name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(runs.join(name).join("metrics.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn row<'a>(m: &'a serde_json::Value, method: &str) -> &'a serde_json::Value {
    m["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["method"] == method)
        .unwrap_or_else(|| panic!("no row for {method} in {m}"))
}

fn siren(args: &[&str]) -> anyhow::Result<()> {
    let mut v = vec!["siren"];
    v.extend_from_slice(args);
    siren_cli::run_args(v)
}

#[test]
fn baselines_write_metrics_predictions_and_run_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let (inter, item) = small_movielens(tmp.path());
    let runs = tmp.path().join("runs");
    siren(&[
        "baselines",
        &config("quickstart.toml"),
        "--set",
        &format!("runs_dir={:?}", runs.display().to_string()),
        "--set",
        &format!("dataset.params.inter={:?}", inter.display().to_string()),
        "--set",
        &format!("dataset.params.item={:?}", item.display().to_string()),
    ])
    .unwrap();
    let m = metrics(&runs, "quickstart");
    assert_eq!(m["split"], "valid");
    assert_eq!(m["n"], 30);
    let methods = siren_tests::method_names(&m);
    assert_eq!(methods, ["global-mean", "user-avg", "item-avg", "mf"]);
    for r in m["results"].as_array().unwrap() {
        let (mae, rmse) = (r["mae"].as_f64().unwrap(), r["rmse"].as_f64().unwrap());
        assert!(mae > 0.0 && mae <= rmse && rmse < 4.0, "{r}");
    }
    let dir = runs.join("quickstart");
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["seed"], 42);
    assert!(run["git_revision"].as_str().is_some_and(|s| !s.is_empty()));
    let resolved = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    assert!(
        resolved.contains("s.inter"),
        "the resolved config has the override:\n{resolved}"
    );
    let preds = std::fs::read_to_string(dir.join("predictions.csv")).unwrap();
    assert!(preds.starts_with("user_id,item_id,rating,global-mean,user-avg,item-avg,mf\n"));
    assert_eq!(preds.lines().count(), 31);
}

#[test]
fn config_errors_name_the_key_and_list_valid_names() {
    let q = config("quickstart.toml");
    let e = siren(&["baselines", &q, "--set", "baselines.3.params.factorz=8"])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("rating-baseline `mf`") && e.contains("unknown field `factorz`"),
        "{e}"
    );
    let e = siren(&["baselines", &q, "--set", "baselines.0.kind=median"])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(
            "unknown rating-baseline `median`; valid names: baseline-only, constant, global-mean, \
             item-avg, mf, user-avg"
        ),
        "{e}"
    );
    let e = siren(&["baselines", &q, "--set", "clusterer.kind=nope"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown topic-clusterer `nope`"), "{e}");
    let e = siren(&["baselines", &q, "--set", "dataset.params.kcore=3"])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("dataset `movielens`") && e.contains("unknown field `kcore`"),
        "{e}"
    );
    let e = siren(&["baselines", &q, "--set", "eval.split=train"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("split"), "{e}");
}

#[test]
fn paper_movies_reference_numbers() {
    let dir = paper_movies_dir().expect("data/amazon-movies ships with the project");
    let tmp = tempfile::tempdir().unwrap();
    siren(&[
        "baselines",
        &config("paper-movies.toml"),
        "--set",
        &format!("runs_dir={:?}", tmp.path().display().to_string()),
        "--set",
        &format!("dataset.params.dir={:?}", dir.display().to_string()),
    ])
    .unwrap();
    let m = metrics(tmp.path(), "paper-movies");
    assert_eq!(m["n"], 2629);
    let g = row(&m, "global-mean");
    assert_abs_diff_eq!(g["mae"].as_f64().unwrap(), 1.2750, epsilon = 5e-4);
    assert_abs_diff_eq!(g["rmse"].as_f64().unwrap(), 1.3841, epsilon = 5e-4);
    let u = row(&m, "user-avg");
    assert_abs_diff_eq!(u["mae"].as_f64().unwrap(), 0.9641, epsilon = 5e-4);
    assert_abs_diff_eq!(u["rmse"].as_f64().unwrap(), 1.3081, epsilon = 5e-4);
    let mf = row(&m, "mf");
    assert!(mf["rmse"].as_f64().unwrap() <= 1.24, "mf {mf}");
}

#[test]
fn quickstart_on_movielens_100k() {
    let assets = assets_dir();
    let inter = assets.join("ml-100k/ml-100k.inter");
    if !siren_tests::asset_present(&inter) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    siren(&[
        "baselines",
        &config("quickstart.toml"),
        "--set",
        &format!("runs_dir={:?}", tmp.path().display().to_string()),
        "--set",
        &format!("dataset.params.inter={:?}", inter.display().to_string()),
        "--set",
        &format!(
            "dataset.params.item={:?}",
            assets.join("ml-100k/ml-100k.item").display().to_string()
        ),
    ])
    .unwrap();
    let m = metrics(tmp.path(), "quickstart");
    assert_eq!(m["n"], 943, "one valid rating per ML-100K user");
    let ua = row(&m, "user-avg")["rmse"].as_f64().unwrap();
    let gm = row(&m, "global-mean")["rmse"].as_f64().unwrap();
    let mf = row(&m, "mf")["rmse"].as_f64().unwrap();
    assert!(ua < gm && mf < gm, "user-avg {ua}, mf {mf}, global {gm}");
}

/// `siren train` and `siren eval` end to end on a tiny random decoder (written as a HF folder)
/// and a small MovieLens-format dataset: stage-1 artifacts, the --resume guard, and the CoT /
/// answer-only rows next to a baseline on the same sampled rows.
#[test]
fn train_then_eval_on_a_tiny_model() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tiny_config(
        tmp.path(),
        r#"[training]
lr = 1e-3
batch_size = 4
micro_batch = 2
max_examples = 8
max_steps = 2
checkpoint_every = 1
[trainer]
kind = "ao-sft"
"#,
    );
    let c = cfg.to_str().unwrap();
    siren(&["train", c]).unwrap();
    let stage = tmp.path().join("runs/tiny/stage1");
    for f in [
        "policy/adapter_config.json",
        "policy/adapter_model.safetensors",
        "metrics.jsonl",
        "training.svg",
        "training.png",
        "examples.sample.txt",
        "checkpoints/step-000002/optimizer.bpk",
    ] {
        assert!(stage.join(f).is_file(), "missing {f}");
    }
    let rows = std::fs::read_to_string(stage.join("metrics.jsonl")).unwrap();
    assert_eq!(rows.lines().count(), 2);
    let e = siren(&["train", c]).unwrap_err().to_string();
    assert!(e.contains("--resume"), "{e}");
    siren(&["train", c, "--resume"]).unwrap();
    let m = metrics(&tmp.path().join("runs"), "tiny");
    assert_eq!(m["train"]["steps"], 2);

    siren(&["eval", c]).unwrap();
    siren(&["eval", c, "--base", "--no-cot"]).unwrap();
    let m = metrics(&tmp.path().join("runs"), "tiny");
    assert_eq!(m["n"], 5);
    row(&m, "global-mean");
    for method in [
        "ao-sft-cot",
        "ao-sft-ao",
        "ao-sft-ao-expected",
        "ao-sft-ao-median",
        "base-ao",
    ] {
        let r = row(&m, method);
        for k in ["mae", "rmse", "mean_output_tokens", "latency_s"] {
            assert!(r[k].is_number(), "{method}: no {k} in {r}");
        }
    }
    assert_eq!(row(&m, "ao-sft-ao-median")["decoder"], "median");
    assert!(row(&m, "ao-sft-cot")["parse_rate"].is_number());
    assert!(row(&m, "ao-sft-cot")["format_rate"].is_number());
    for f in ["ao-sft-cot.jsonl", "ao-sft-ao.jsonl"] {
        assert!(tmp.path().join("runs/tiny/eval").join(f).is_file(), "{f}");
    }
}

#[test]
fn internalize_then_eval_on_a_tiny_model() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tiny_pipeline_config(tmp.path());
    let c = cfg.to_str().unwrap();
    let runs = tmp.path().join("runs");
    let e = siren(&["internalize", c]).unwrap_err().to_string();
    assert!(e.contains("siren train"), "stage 2 needs stage 1: {e}");
    siren(&["train", c]).unwrap();
    siren(&["internalize", c]).unwrap();
    let stage2 = runs.join("tiny/stage2");
    let harvest: Vec<PathBuf> = std::fs::read_dir(&stage2)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("harvest-")
        })
        .collect();
    assert_eq!(harvest.len(), 1);
    for f in [
        "index.json",
        "kept.jsonl",
        "cot.jsonl",
        "states-00000.safetensors",
    ] {
        assert!(harvest[0].join(f).is_file(), "missing {f}");
    }
    let m = metrics(&runs, "tiny");
    let sec = &m["internalize"];
    assert_eq!(sec["internalizer"], "hidden-align");
    assert_eq!(sec["steps"], 2);
    assert!(sec["kept"].as_u64().unwrap() >= 1, "{sec}");
    let dir = PathBuf::from(sec["dir"].as_str().unwrap());
    let adapter: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("policy/adapter_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        adapter["target_modules"],
        serde_json::json!(["k_proj", "v_proj"])
    );

    // Another internalizer and loss: its own folder, the same harvest.
    siren(&["internalize", c, "--set", "internalizer.kind=ce"]).unwrap();
    siren(&["internalize", c, "--set", "alignment.kind=mse"]).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&stage2)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(
        names[0].starts_with("ce-") && names[1].starts_with("harvest-"),
        "{names:?}"
    );
    let e = siren(&["internalize", c]).unwrap_err().to_string();
    assert!(e.contains("--resume"), "{e}");

    siren(&["eval", c, "--no-cot"]).unwrap();
    siren(&["eval", c, "--no-cot", "--stage", "1"]).unwrap();
    siren(&["eval", c, "--no-cot", "--set", "internalizer.kind=ce"]).unwrap();
    let m = metrics(&runs, "tiny");
    for method in [
        "hidden-align-ao",
        "hidden-align-ao-expected",
        "ao-sft-ao",
        "ce-ao-median",
    ] {
        assert!(row(&m, method)["mae"].is_number(), "{method}");
    }
    // The decoder of the main answer-only row is a config choice.
    siren(&["eval", c, "--no-cot", "--set", "eval.decoder=median"]).unwrap();
    let m = metrics(&runs, "tiny");
    assert_eq!(row(&m, "hidden-align-ao")["decoder"], "median");
    assert_eq!(row(&m, "hidden-align-ao-argmax")["decoder"], "argmax");
}

/// The config of the tiny end-to-end tests: stage 1 (full fine-tuning into the tag format),
/// stage 2 and the evaluation of a tiny HF-folder model on a small MovieLens-format dataset.
fn tiny_pipeline_config(dir: &Path) -> PathBuf {
    tiny_config(
        dir,
        &siren_tests::tiny_pipeline("", "hidden-align", "max_steps = 2\nbatch_size = 4\n"),
    )
}

fn stage_status(report: &str, stage: &str) -> String {
    report
        .lines()
        .find(|l| l.starts_with(&format!("| {stage} |")))
        .unwrap_or_else(|| panic!("no {stage} row in\n{report}"))
        .split('|')
        .nth(2)
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn run_reuses_finished_stages_and_sweeps_compare() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tiny_pipeline_config(tmp.path());
    let c = cfg.to_str().unwrap();
    let runs = tmp.path().join("runs");
    siren(&["run", c]).unwrap();
    let report = std::fs::read_to_string(runs.join("tiny/report.md")).unwrap();
    for stage in ["baselines", "train", "internalize", "eval"] {
        assert_eq!(stage_status(&report, stage), "ran", "{stage}");
    }
    assert!(report.contains("| hidden-align-ao |") && report.contains("| ao-sft-cot |"));
    assert!(report.contains("## Resolved config"));
    let png = siren_core::plot::png::font().is_some();
    for f in ["report-metrics", "report-latency"] {
        let f = runs.join("tiny").join(f);
        assert!(f.with_extension("svg").is_file(), "{}", f.display());
        assert_eq!(f.with_extension("png").is_file(), png, "{}", f.display());
    }

    // Only the internalizer changes: stage 1 and its evaluation are reused.
    siren(&["run", c, "--set", "internalizer.kind=ce"]).unwrap();
    let report = std::fs::read_to_string(runs.join("tiny/report.md")).unwrap();
    assert_eq!(stage_status(&report, "train"), "reused");
    assert_eq!(stage_status(&report, "internalize"), "ran");
    assert!(report.contains("1 evaluated, 1 reused"), "{report}");
    assert!(report.contains("| ce-ao |"));
    // The run folder now holds both internalizers' rows; the report shows its own only.
    assert!(!report.contains("| hidden-align-ao |"), "{report}");
    // Nothing changes: everything is reused.
    siren(&["run", c]).unwrap();
    let report = std::fs::read_to_string(runs.join("tiny/report.md")).unwrap();
    for stage in ["train", "internalize", "eval"] {
        assert_eq!(stage_status(&report, stage), "reused", "{stage}");
    }
    assert!(report.contains("| hidden-align-ao |") && !report.contains("| ce-ao |"));
    // Predictions for pairs, with the stage-2 weights.
    let pairs = tmp.path().join("pairs.jsonl");
    std::fs::write(
        &pairs,
        "{\"user\": \"3\", \"item\": \"7\"}\n{\"user\": 4, \"item\": 1}\n",
    )
    .unwrap();
    siren(&["predict", c, "--input", pairs.to_str().unwrap()]).unwrap();
    let out = std::fs::read_to_string(runs.join("tiny/predictions.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["user"], "4");
    let r = rows[0]["rating"].as_f64().unwrap();
    assert!((1.0..=5.0).contains(&r), "{out}");
    assert_eq!(rows[0]["probs"].as_array().unwrap().len(), 5);
    std::fs::write(
        &pairs,
        "{\"user\": \"3\", \"item\": \"7\"}\n{\"user\": \"nobody\", \"item\": \"7\"}\n",
    )
    .unwrap();
    let e = siren(&["predict", c, "--input", pairs.to_str().unwrap()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("pairs.jsonl:2") && e.contains("`nobody`"), "{e}");

    // Stage-1 settings changed under the same name: refused, not overwritten.
    let e = siren(&["run", c, "--set", "training.lr=0.5"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("other settings"), "{e}");

    // A stage-2 sweep shares the run.
    siren(&["sweep", c, "--grid", "alignment.kind=cosine,mse"]).unwrap();
    let sweep = std::fs::read_to_string(runs.join("tiny-sweep-alignment-kind/report.md")).unwrap();
    assert!(sweep.contains("| kind=cosine (n = 5) |") && sweep.contains("| kind=mse (n = 5) |"));
    assert!(
        sweep.contains("stage2-ao-median") && !sweep.contains("ce-ao"),
        "{sweep}"
    );
    assert!(runs.join("tiny-sweep-alignment-kind/sweep.svg").is_file());
    assert_eq!(
        runs.join("tiny-sweep-alignment-kind/sweep.png").is_file(),
        png
    );

    // Two backbones side by side (base weights, answer-only).
    let other = tmp.path().join("tiny2");
    siren_core::testkit::write_tiny_model(&other, 6).unwrap();
    let specs = format!(
        "{},{}@llama",
        tmp.path().join("tiny").display(),
        other.display()
    );
    siren(&[
        "compare",
        c,
        "--backbones",
        &specs,
        "--set",
        "pipeline.stages=[\"baselines\",\"eval\"]",
        "--set",
        "pipeline.cot=false",
    ])
    .unwrap();
    let cmp = std::fs::read_to_string(runs.join("tiny-compare/report.md")).unwrap();
    assert!(
        cmp.contains("| tiny (n = 5) |") && cmp.contains("| tiny2 (n = 5) |"),
        "{cmp}"
    );
    assert!(cmp.contains("base-ao"), "{cmp}");
}

#[test]
fn ablation_configs_extend_the_paper_config_and_carry_their_grid() {
    let dir = repo_root().join("configs/ablations");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    assert_eq!(names.len(), 7, "{names:?}");
    for p in names {
        let c = siren_core::config::RunConfig::load(&p, &[]).unwrap();
        assert_eq!(
            c.dataset.kind,
            "siren-jsonl",
            "{}: the paper's base",
            p.display()
        );
        let sw = c.sweep.as_ref().expect("a [sweep] grid or points");
        let points = if sw.grid.is_empty() {
            siren_core::stages::sweep::listed(&sw.points)
        } else {
            siren_core::stages::sweep::grid(&sw.grid).unwrap()
        };
        // Every point's overrides give a valid config.
        for pt in &points {
            siren_core::config::RunConfig::load(&p, &pt.sets)
                .unwrap_or_else(|e| panic!("{} point {}: {e}", p.display(), pt.label));
        }
        assert!(points.len() >= 2, "{}", p.display());
    }
    // Another base from the command line; a cycle is an error naming it.
    let c = siren_core::config::RunConfig::load(
        &dir.join("alignment-loss.toml"),
        &["extends=../quickstart.toml".to_string()],
    )
    .unwrap();
    assert_eq!(c.dataset.kind, "movielens");
    assert_eq!(c.alignment, None, "the grid, not the base, sets the loss");
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("a.toml"), "extends = \"b.toml\"\n").unwrap();
    std::fs::write(tmp.path().join("b.toml"), "extends = \"a.toml\"\n").unwrap();
    let e = siren_core::config::RunConfig::load(&tmp.path().join("a.toml"), &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("cycle"), "{e}");
}
