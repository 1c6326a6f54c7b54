//! Data-parallel training and sharded scoring under `torchrun` (docs/distributed.md): two
//! tch-cpu ranks over gloo, each with half of every batch, against one process with the whole
//! batch, on a tiny random decoder and a small MovieLens-format dataset.
//!
//! Each run is a child process of this test binary (`dist_child`), launched by torchrun for
//! two ranks and alone for one; every process uses one intra-op thread (torchrun's default per
//! rank), so that the two sides differ only by how the work is split. LoRA dropout is off: its
//! masks are drawn per process and per micro-batch, so with dropout the ranks draw other masks
//! than one process does (docs/distributed.md).
#![cfg(feature = "tch")]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};
use siren_core::traits::{Reward, RewardParts};
use siren_core::{Plugin, Result};

/// A reward that varies with any text (the length of the completion), so that GRPO's groups
/// on a random decoder are not flat and its policy-gradient term trains.
#[derive(Debug, Clone)]
struct LengthReward;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct NoParams {}

impl Plugin for LengthReward {
    type Params = NoParams;
    const SUMMARY: &'static str = "test only: the completion's length modulo 5, halved";
    fn from_params(_: NoParams) -> Result<Self> {
        Ok(Self)
    }
}

impl Reward for LengthReward {
    fn score(&self, completion: &str, _truth: f32) -> RewardParts {
        RewardParts {
            format: 0.0,
            rating: (completion.chars().count() % 5) as f32 / 2.0,
            predicted: None,
        }
    }
}

siren_core::register_reward!("test-length", LengthReward);

/// torchrun from the environment's PATH (scripts/env.sh puts the project's venv first) or the
/// project's venv.
fn torchrun() -> PathBuf {
    let from_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("torchrun"))
            .find(|f| f.is_file())
    });
    let venv = std::env::var_os("SIREN_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| siren_tests::repo_root().join(".venv"))
        .join("bin/torchrun");
    from_path.or(venv.is_file().then_some(venv)).unwrap_or_else(|| {
        panic!(
            "torchrun is not on PATH nor in the project's venv: run `bash scripts/setup-torch.sh` \
             and `source scripts/env.sh`"
        )
    })
}

/// Child side: runs the `siren` command line of `SIREN_DIST_CHILD_ARGS` (a JSON list), which
/// joins the torchrun job when launched by one.
#[test]
#[ignore = "run by the data-parallel tests, under torchrun"]
fn dist_child() {
    if let Ok(args) = std::env::var("SIREN_DIST_CHILD_ARGS") {
        let args: Vec<String> = serde_json::from_str(&args).unwrap();
        siren_cli::init_logging(0);
        siren_cli::run_args(args).unwrap();
    }
}

/// Runs `siren ARGS` on `ranks` ranks (torchrun for two or more, a plain process for one);
/// returns its output, panicking with it when the run fails.
fn siren(ranks: usize, args: &[&str]) -> String {
    let (ok, text) = launch(ranks, args);
    assert!(ok, "siren {args:?} on {ranks} ranks:\n{text}");
    text
}

/// Runs `siren ARGS` on `ranks` ranks: whether it succeeded, and its output.
fn launch(ranks: usize, args: &[&str]) -> (bool, String) {
    let me = std::env::current_exe().unwrap();
    let mut c = if ranks > 1 {
        let mut c = Command::new(torchrun());
        c.args([
            "--standalone",
            &format!("--nproc_per_node={ranks}"),
            "--no-python",
        ])
        .arg(&me);
        c
    } else {
        Command::new(&me)
    };
    // torchrun leaves a log folder in TMPDIR per launch: keep them in one that goes away.
    let scratch = tempfile::tempdir().unwrap();
    c.env("TMPDIR", scratch.path());
    let mut all = vec!["siren"];
    all.extend_from_slice(args);
    c.args(["--exact", "dist_child", "--ignored", "--nocapture"])
        .env(
            "SIREN_DIST_CHILD_ARGS",
            serde_json::to_string(&all).unwrap(),
        )
        .env("OMP_NUM_THREADS", "1")
        .env("SIREN_DIST_TIMEOUT_S", "300");
    let out = c.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// An adapter's tensors by name, in name order.
type Adapter = Vec<(String, Vec<f32>)>;

fn adapter(dir: &Path) -> Adapter {
    let path = dir.join("runs/tiny/stage1/policy/adapter_model.safetensors");
    let mut w: Vec<(String, Vec<f32>)> = siren_core::engine::Weights::from_safetensors(&path)
        .unwrap()
        .take_all()
        .unwrap()
        .into_iter()
        .map(|(k, (_, v))| (k, v))
        .collect();
    w.sort_by(|a, b| a.0.cmp(&b.0));
    w
}

/// The largest difference between two adapters with the same tensors.
fn max_diff(a: &Adapter, b: &Adapter) -> f32 {
    assert_eq!(
        a.iter().map(|x| &x.0).collect::<Vec<_>>(),
        b.iter().map(|x| &x.0).collect::<Vec<_>>()
    );
    a.iter()
        .zip(b)
        .flat_map(|((_, x), (_, y))| x.iter().zip(y).map(|(p, q)| (p - q).abs()))
        .fold(0.0, f32::max)
}

/// The largest difference between the initial (zero) and trained `lora_B` tensors: how far
/// training moved the weights the comparison is about.
fn moved(a: &Adapter) -> f32 {
    a.iter()
        .filter(|(k, _)| k.contains("lora_B"))
        .flat_map(|(_, v)| v.iter().map(|x| x.abs()))
        .fold(0.0, f32::max)
}

/// The hashes the ranks logged for their trained weights.
fn agreed_hashes(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| l.split("ranks agree (hash ").nth(1))
        .map(|h| h.trim_end_matches(')').to_string())
        .collect()
}

/// [`siren_tests::tiny_config`] in `dir` (made if missing) on `tch-cpu`, the device whose
/// collectives torchrun's gloo serves.
fn tch_config(dir: &Path, rest: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let c = siren_tests::tiny_config(dir, rest);
    let text = std::fs::read_to_string(&c).unwrap();
    std::fs::write(
        &c,
        text.replace("device = \"flex\"", "device = \"tch-cpu\""),
    )
    .unwrap();
    c
}

/// The training config of the trainer tests: 3 steps of 4 prompts, no dropout.
fn config(dir: &Path, trainer: &str) -> PathBuf {
    tch_config(
        dir,
        &format!(
            r#"[training]
lr = 1e-4
lora_dropout = 0.0
batch_size = 4
max_examples = 12
max_steps = 3
checkpoint_every = 1
{trainer}"#
        ),
    )
}

/// Trains `trainer` once alone and once on two ranks; returns both adapters and the log of the
/// two-rank run.
fn train_both(tmp: &Path, trainer: &str) -> (Adapter, Adapter, String) {
    let (one, two) = (tmp.join("one"), tmp.join("two"));
    let (c1, c2) = (config(&one, trainer), config(&two, trainer));
    siren(1, &["train", c1.to_str().unwrap()]);
    let log = siren(2, &["train", c2.to_str().unwrap()]);
    (adapter(&one), adapter(&two), log)
}

fn check_two_ranks_match_one(trainer: &str, what: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let (one, two, log) = train_both(tmp.path(), trainer);
    let (d, m) = (max_diff(&one, &two), moved(&one));
    eprintln!("{what}: max |one rank − two ranks| = {d:e} (weights moved up to {m:e})");
    assert!(m > 1e-5, "{what}: training did not move the weights ({m})");
    assert!(
        d <= 1e-6,
        "{what}: two ranks differ from one by {d}; the two ranks' log:\n{log}"
    );
    let hashes = agreed_hashes(&log);
    assert_eq!(hashes.len(), 2, "{what}: one hash line per rank:\n{log}");
    assert_eq!(hashes[0], hashes[1]);
    // Rank 0 alone wrote the run's files, with one metrics row per step.
    let stage = tmp.path().join("two/runs/tiny/stage1");
    let rows = std::fs::read_to_string(stage.join("metrics.jsonl")).unwrap();
    assert_eq!(rows.lines().count(), 3, "{rows}");
    let a = std::fs::read_to_string(tmp.path().join("one/runs/tiny/stage1/metrics.jsonl")).unwrap();
    for (x, y) in a.lines().zip(rows.lines()) {
        let (x, y): (serde_json::Value, serde_json::Value) = (
            serde_json::from_str(x).unwrap(),
            serde_json::from_str(y).unwrap(),
        );
        let (lx, ly) = (x["loss"].as_f64().unwrap(), y["loss"].as_f64().unwrap());
        assert!(
            (lx - ly).abs() <= 1e-5 * lx.abs().max(1.0),
            "{what}: loss {lx} vs {ly}"
        );
    }
    // Resume with another world size: back to the two ranks' step-2 checkpoint, then the last
    // step alone, as if the job had lost a rank.
    let ckpts = stage.join("checkpoints");
    std::fs::remove_dir_all(ckpts.join("step-000003")).unwrap();
    std::fs::write(ckpts.join("latest"), "step-000002\n").unwrap();
    let c2 = tmp.path().join("two/t.toml");
    siren(1, &["train", c2.to_str().unwrap(), "--resume"]);
    let resumed = adapter(&tmp.path().join("two"));
    let d = max_diff(&one, &resumed);
    eprintln!("{what}: two ranks for 2 steps, then 1 alone: max |one rank − resumed| = {d:e}");
    assert!(
        d <= 1e-6,
        "{what}: resumed with another world size, differs by {d}"
    );
}

#[test]
fn ao_sft_on_two_ranks_matches_one_rank_with_the_whole_batch() {
    check_two_ranks_match_one("micro_batch = 2\n[trainer]\nkind = \"ao-sft\"\n", "ao-sft");
}

/// GRPO: each rank samples the groups of its half of the prompts (seeded as the single process
/// seeds that generation batch: each rank's half is one batch of 4 samples), and the loss is
/// normalised over all samples of the step.
#[test]
fn grpo_on_two_ranks_matches_one_rank_with_the_whole_batch() {
    check_two_ranks_match_one(
        r#"micro_batch = 4
[trainer]
kind = "grpo"
[trainer.params]
group_size = 2
generation_batch = 4
max_response_tokens = 6
kl_coef = 0.05
inner_steps = 2
[reward]
kind = "test-length"
"#,
        "grpo",
    );
}

/// `siren eval` on two ranks writes exactly the files of one process: the CoT completions and
/// the answer-only distributions, byte for byte.
#[test]
fn sharded_eval_writes_the_single_process_files() {
    let tmp = tempfile::tempdir().unwrap();
    let mut outputs = Vec::new();
    for (ranks, dir) in [(1, "one"), (2, "two")] {
        let dir = tmp.path().join(dir);
        let c = config(&dir, "");
        siren(ranks, &["eval", c.to_str().unwrap(), "--base"]);
        let eval = dir.join("runs/tiny/eval");
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&eval)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&p).unwrap())
            })
            .collect();
        files.sort();
        outputs.push(files);
    }
    let names: Vec<&String> = outputs[0].iter().map(|f| &f.0).collect();
    assert!(
        names.iter().any(|n| n.ends_with("-cot.jsonl"))
            && names.iter().any(|n| n.ends_with("-ao.jsonl")),
        "{names:?}"
    );
    assert_eq!(names, outputs[1].iter().map(|f| &f.0).collect::<Vec<_>>());
    for ((name, a), (_, b)) in outputs[0].iter().zip(&outputs[1]) {
        assert!(a == b, "{name} differs between one process and two ranks");
    }
}

/// The stage-2 adapter under `dir`'s run (its one `adapter_model.safetensors` in `stage2/`).
fn stage2_adapter(dir: &Path) -> Adapter {
    fn find(d: &Path) -> Option<PathBuf> {
        for e in std::fs::read_dir(d).ok()? {
            let p = e.ok()?.path();
            if p.is_dir() {
                if let Some(f) = find(&p) {
                    return Some(f);
                }
            } else if p
                .file_name()
                .is_some_and(|n| n == "adapter_model.safetensors")
            {
                return Some(p);
            }
        }
        None
    }
    let path = find(&dir.join("runs/tiny/stage2")).expect("a stage-2 adapter");
    let mut w: Adapter = siren_core::engine::Weights::from_safetensors(&path)
        .unwrap()
        .take_all()
        .unwrap()
        .into_iter()
        .map(|(k, (_, v))| (k, v))
        .collect();
    w.sort_by(|a, b| a.0.cmp(&b.0));
    w
}

/// Stage 2 (`ha-ce`: hidden alignment and cross-entropy, so that the tiny teacher, whose
/// reasoning is empty, still gives a gradient): one process trains stage 1 in each folder; then
/// `siren internalize` alone and on two ranks (rank 0 harvests the teacher, rank 1 reads the
/// harvest) give the same adapters.
#[test]
fn internalizing_on_two_ranks_matches_one_rank_with_the_whole_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let mut adapters = Vec::new();
    for (ranks, name) in [(1, "one"), (2, "two")] {
        let dir = tmp.path().join(name);
        let c = tch_config(
            &dir,
            &siren_tests::tiny_pipeline(
                "lora_dropout = 0.0\n",
                "ha-ce",
                "lr = 1e-3\nlora_dropout = 0.0\nmax_steps = 3\nbatch_size = 4\n",
            ),
        );
        siren(1, &["train", c.to_str().unwrap()]);
        let log = siren(ranks, &["internalize", c.to_str().unwrap()]);
        if ranks == 2 {
            let hashes = agreed_hashes(&log);
            assert_eq!(hashes.len(), 2, "one hash line per rank:\n{log}");
            assert_eq!(hashes[0], hashes[1]);
        }
        adapters.push(stage2_adapter(&dir));
    }
    let (d, m) = (max_diff(&adapters[0], &adapters[1]), moved(&adapters[0]));
    eprintln!("ha-ce: max |one rank − two ranks| = {d:e} (weights moved up to {m:e})");
    assert!(m > 1e-5, "ha-ce: training did not move the weights ({m})");
    assert!(d <= 1e-6, "ha-ce: two ranks differ from one by {d}");
}

/// `siren run` under torchrun: every stage of the tiny pipeline (baselines on rank 0, stage 1
/// and stage 2 data-parallel, the evaluation sharded), one report.
#[test]
fn the_whole_pipeline_runs_under_torchrun() {
    let tmp = tempfile::tempdir().unwrap();
    let c = tch_config(
        tmp.path(),
        &siren_tests::tiny_pipeline("", "ha-ce", "max_steps = 2\nbatch_size = 4\n"),
    );
    let log = siren(2, &["run", c.to_str().unwrap()]);
    let run = tmp.path().join("runs/tiny");
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    for stage in ["baselines", "train", "internalize", "eval"] {
        assert!(
            report.contains(&format!("| {stage} |")),
            "{stage}:\n{report}"
        );
    }
    // Both ranks trained (two agreeing hash lines per training: stage 1 and stage 2).
    let hashes = agreed_hashes(&log);
    assert_eq!(hashes.len(), 4, "{log}");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(m["train"]["ranks"], 2, "{m}");
    let methods: Vec<&str> = m["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["method"].as_str())
        .collect();
    assert!(methods.contains(&"global-mean"), "{methods:?}");
    assert!(methods.iter().any(|m| m.ends_with("-ao")), "{methods:?}");
}

/// Drops every time (`*_ms*`, `*seconds*`) from a JSON value: what a rank measures for itself.
fn without_latency(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.retain(|k, _| !k.contains("_ms") && !k.contains("seconds"));
            m.values_mut().for_each(without_latency);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(without_latency),
        _ => {}
    }
}

fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let mut v = serde_json::from_str(l).unwrap();
            without_latency(&mut v);
            v
        })
        .collect()
}

/// `siren predict` (users with several candidates score on their own prefix: one unit each),
/// `siren rank --input` and the reranking evaluation on two ranks write the single-process
/// files: byte for byte for `predict`, equal apart from latencies for `rank`.
#[test]
fn sharded_predict_and_rank_write_the_single_process_files() {
    let tmp = tempfile::tempdir().unwrap();
    let mut outputs = Vec::new();
    for (ranks, name) in [(1, "one"), (2, "two")] {
        let dir = tmp.path().join(name);
        let c = tch_config(
            &dir,
            "[encoder]\nkind = \"hashing\"\n[clusterer]\nkind = \"kmeans\"\n[namer]\nkind = \
             \"keywords\"\n[sketch]\nkind = \"paper\"\n[topics]\nk = 3\nnearest = 3\n",
        );
        let c = c.to_str().unwrap();
        let pairs = dir.join("pairs.jsonl");
        let lines: Vec<String> = [
            ("3", "7"),
            ("3", "2"),
            ("4", "1"),
            ("10", "11"),
            ("5", "3"),
            ("5", "4"),
            ("6", "0"),
        ]
        .iter()
        .map(|(u, i)| serde_json::json!({"user": u, "item": i}).to_string())
        .collect();
        std::fs::write(&pairs, lines.join("\n")).unwrap();
        let requests = dir.join("users.jsonl");
        std::fs::write(
            &requests,
            "{\"user\": \"3\", \"candidates\": [\"7\", \"2\", \"5\"], \"k\": 2}\n{\"user\": 4, \
             \"k\": 3}\n{\"user\": \"6\", \"k\": 2}\n",
        )
        .unwrap();
        let set = [
            "--set",
            "prompt.strategy=\"sketch\"",
            "--set",
            "rank.candidates=4",
            "--set",
            "rank.cutoffs=[1,3]",
        ];
        let (predicted, ranked) = (dir.join("predicted.jsonl"), dir.join("ranked.jsonl"));
        let mut args = vec!["predict", c, "--input", pairs.to_str().unwrap()];
        args.extend(["--output", predicted.to_str().unwrap()]);
        args.extend(&set[..2]);
        siren(ranks, &args);
        let mut args = vec!["rank", c, "--input", requests.to_str().unwrap()];
        args.extend(["--output", ranked.to_str().unwrap()]);
        args.extend(set);
        siren(ranks, &args);
        let mut args = vec!["rank", c, "--evaluate"];
        args.extend(set);
        siren(ranks, &args);
        let run = dir.join("runs/tiny");
        let mut report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("rank.json")).unwrap()).unwrap();
        without_latency(&mut report);
        outputs.push((
            std::fs::read(&predicted).unwrap(),
            json_lines(&ranked),
            json_lines(&run.join("rank.jsonl")),
            report,
        ));
    }
    let (one, two) = (&outputs[0], &outputs[1]);
    assert!(one.0 == two.0, "siren predict: two ranks wrote other bytes");
    assert_eq!(one.1.len(), 3);
    assert_eq!(one.1, two.1, "siren rank --input");
    assert!(!one.2.is_empty());
    assert_eq!(one.2, two.2, "siren rank --evaluate: rank.jsonl");
    assert_eq!(one.3, two.3, "siren rank --evaluate: rank.json");
}

/// A command that does not split its work refuses to run as one rank of several, saying which
/// commands do.
#[test]
fn commands_that_do_not_split_refuse_several_ranks() {
    let tmp = tempfile::tempdir().unwrap();
    let c = config(tmp.path(), "");
    let (ok, log) = launch(2, &["baselines", c.to_str().unwrap()]);
    assert!(!ok, "{log}");
    assert!(
        log.contains("rank 0 of 2") && log.contains("only train, internalize, run"),
        "{log}"
    );
    assert!(!tmp.path().join("runs/tiny/metrics.json").exists());
}
