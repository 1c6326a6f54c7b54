//! Stage-1 trainers on a synthetic rating task a tiny random-init decoder can learn: the prompt
//! `rate X` has the true rating X. A short supervised warm-start teaches the output format with
//! *random* ratings (so the format is known but the rating is a guess); GRPO must then learn the
//! rating from the reward alone. Also: `--resume` after SIGKILL ends with exactly the weights
//! of an uninterrupted run, `ao-sft` learns the rating, and a NaN loss stops with an error.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use siren_core::burn::optim::{AdamWConfig, GradientsParams};
use siren_core::burn::tensor::Device;
use siren_core::engine::{GenerationConfig, LoraSpec};
use siren_core::registry::build;
use siren_core::testkit::{tiny_decoder, tiny_tokenizer};
use siren_core::train::{Policy, TrainingConfig, Tuning};
use siren_core::traits::{Example, PolicyTrainer, Reward, RunCtx};
use siren_plugins as _;

const SEED: u64 = 11;

fn examples() -> Vec<Example> {
    (0..30)
        .map(|i| {
            let r = 1 + i % 5;
            Example {
                id: format!("e{i}"),
                prompt: format!("rate {r}"),
                rating: r as f32,
                rationale: None,
            }
        })
        .collect()
}

/// A LoRA policy on the tiny decoder that writes `<think> Y </think> <answer> Z </answer>`
/// with Y, Z unrelated to the prompt (supervised warm-start, deterministic).
fn warm_policy(dropout: f64) -> Policy {
    let device = Device::flex().autodiff();
    let model = tiny_decoder(SEED, &device).unwrap();
    let mut policy = Policy::new(
        model,
        tiny_tokenizer().unwrap(),
        Tuning::Lora(LoraSpec {
            r: 8,
            alpha: 16.0,
            dropout,
        }),
        &|_| true,
        SEED,
        "tiny",
    )
    .unwrap();
    let ex = examples();
    let prompts: Vec<Vec<u32>> = ex
        .iter()
        .map(|e| policy.encode(&e.prompt).unwrap())
        .collect();
    let comps: Vec<Vec<u32>> = (0..ex.len())
        .map(|i| {
            // Each prompt appears 6 times with ratings cycling 1..5: the warm start
            // learns the format and a flat guess of the rating.
            let (y, z) = (1 + (i / 5 + 2) % 5, 1 + (i / 5) % 5);
            let mut c = policy
                .encode(&format!("<think> {y} </think> <answer> {z} </answer>"))
                .unwrap();
            c.push(policy.tokenizer.eos.unwrap());
            c
        })
        .collect();
    let mut optim = AdamWConfig::new().with_weight_decay(0.0).init();
    device.seed(SEED);
    for _ in 0..60 {
        let sc = policy.scores(&prompts, &comps).unwrap();
        let loss = sc.logprobs.sum().neg().div(sc.mask.sum());
        let grads = GradientsParams::from_grads(loss.backward(), &policy.model);
        policy.model = optim.step(1e-2, policy.model.clone(), grads);
    }
    policy
}

fn grpo() -> Box<dyn PolicyTrainer> {
    let params: siren_core::config::Params = toml::from_str(
        "group_size = 8\ntemperature = 1.0\nmax_response_tokens = 8\nkl_coef = 0.001\ngeneration_batch = 80",
    )
    .unwrap();
    build::<dyn PolicyTrainer>("grpo", &params).unwrap()
}

fn reward() -> Box<dyn Reward> {
    build::<dyn Reward>("regression", &Default::default()).unwrap()
}

fn ctx(dir: &Path, steps: usize, resume: bool) -> RunCtx {
    RunCtx {
        run_dir: dir.to_path_buf(),
        seed: SEED,
        device: Device::flex(),
        training: TrainingConfig {
            lr: 1e-3,
            batch_size: 10,
            micro_batch: 40,
            max_steps: Some(steps),
            epochs: 100,
            checkpoint_every: 2,
            keep_checkpoints: 2,
            ..TrainingConfig::default()
        },
        resume,
    }
}

/// Greedy answers of the policy on `rate 1..5`: (mean reward, MAE with unparsable = 2).
fn greedy_eval(policy: &Policy) -> (f64, f64) {
    let r = reward();
    let cfg = GenerationConfig {
        stop_tokens: vec![policy.tokenizer.eos.unwrap()],
        stop: policy.tokenizer.stop_strings(&["</answer>".to_string()]),
        ..GenerationConfig::greedy(8)
    };
    let prompts: Vec<Vec<u32>> = (1..=5)
        .map(|k| policy.encode(&format!("rate {k}")).unwrap())
        .collect();
    let outs = policy.generate(&prompts, &cfg).unwrap();
    let (mut rew, mut mae) = (0.0, 0.0);
    for (k, ids) in outs.iter().enumerate() {
        let text = policy.decode_completion(ids).unwrap();
        let p = r.score(&text, (k + 1) as f32);
        rew += f64::from(p.total());
        mae += p.predicted.map_or(2.0, |x| {
            f64::from((x.clamp(1.0, 5.0) - (k + 1) as f32).abs())
        });
    }
    (rew / 5.0, mae / 5.0)
}

fn rows(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn grpo_raises_reward_and_lowers_mae_on_a_synthetic_task() {
    let tmp = tempfile::tempdir().unwrap();
    let mut policy = warm_policy(0.0);
    let (r0, mae0) = greedy_eval(&policy);
    let report = grpo()
        .train(
            &mut policy,
            &examples(),
            reward().as_ref(),
            &ctx(tmp.path(), 100, false),
        )
        .unwrap();
    let (r1, mae1) = greedy_eval(&policy);
    let m = rows(tmp.path());
    assert_eq!(m.len(), 100);
    let mean = |s: &[serde_json::Value], k: &str| {
        s.iter().map(|r| r[k].as_f64().unwrap()).sum::<f64>() / s.len() as f64
    };
    let (first, last) = (&m[..10], &m[90..]);
    eprintln!(
        "GRPO on `rate X`: sampled reward {:.3} → {:.3}, sampled MAE {:.3} → {:.3}, format rate {:.2} → {:.2}; greedy reward {r0:.3} → {r1:.3}, greedy MAE {mae0:.3} → {mae1:.3} ({} steps)",
        mean(first, "reward_mean"),
        mean(last, "reward_mean"),
        mean(first, "mae"),
        mean(last, "mae"),
        mean(first, "format_rate"),
        mean(last, "format_rate"),
        report.steps
    );
    assert!(
        mean(first, "format_rate") > 0.5,
        "the warm start teaches the format"
    );
    assert!(
        mean(last, "reward_mean") > mean(first, "reward_mean") + 0.5,
        "sampled reward must rise"
    );
    assert!(
        mean(last, "mae") < mean(first, "mae") - 0.4,
        "sampled MAE must fall"
    );
    assert!(mae1 < mae0 - 0.4, "greedy MAE {mae0} → {mae1}");
    assert!(r1 > r0 + 0.4, "greedy reward {r0} → {r1}");
    assert!(tmp.path().join("training.svg").is_file());
    assert!(tmp.path().join("checkpoints/latest").is_file());
}

/// The run the resume test kills and the one it compares with: warm start, then 12 GRPO steps
/// with checkpoints every 2, LoRA dropout on (so the per-step seeds matter).
fn resumable_run(dir: &Path, resume: bool) {
    let mut policy = warm_policy(0.1);
    grpo()
        .train(
            &mut policy,
            &examples(),
            reward().as_ref(),
            &ctx(dir, 12, resume),
        )
        .unwrap();
}

/// Child side of the resume test: trains into `SIREN_RESUME_CHILD_DIR` (resuming when
/// `SIREN_RESUME_CHILD_RESUME` is set). Runs in its own process: the backend's random
/// generator (dropout) is per process, so tests running beside it in one process would draw
/// from it too.
#[test]
#[ignore = "run by resume_after_sigkill_matches_an_uninterrupted_run"]
fn resume_child() {
    if let Ok(dir) = std::env::var("SIREN_RESUME_CHILD_DIR") {
        resumable_run(
            Path::new(&dir),
            std::env::var("SIREN_RESUME_CHILD_RESUME").is_ok(),
        );
    }
}

fn child(dir: &Path, resume: bool) -> std::process::Child {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", "resume_child", "--ignored", "--nocapture"])
        .env("SIREN_RESUME_CHILD_DIR", dir);
    if resume {
        c.env("SIREN_RESUME_CHILD_RESUME", "1");
    }
    c.spawn().unwrap()
}

fn final_weights(dir: &Path) -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    siren_core::engine::Weights::from_safetensors(
        &dir.join("checkpoints/step-000012/weights.safetensors"),
    )
    .unwrap()
    .take_all()
    .unwrap()
    .into_iter()
    .collect()
}

#[test]
fn resume_after_sigkill_matches_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    assert!(child(&a, false).wait().unwrap().success());
    let whole = final_weights(&a);

    let mut killed = child(&b, false);
    let latest = b.join("checkpoints/latest");
    let t = Instant::now();
    let killed_at = loop {
        if let Ok(s) = std::fs::read_to_string(&latest)
            && s.trim() >= "step-000004"
        {
            killed.kill().unwrap(); // SIGKILL
            break s;
        }
        assert!(
            killed.try_wait().unwrap().is_none(),
            "the child finished before it could be killed"
        );
        assert!(
            t.elapsed() < Duration::from_secs(300),
            "child made no checkpoint"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    killed.wait().unwrap();
    assert!(
        killed_at.trim() < "step-000012",
        "killed after the end: {killed_at}"
    );
    assert!(child(&b, true).wait().unwrap().success());
    let resumed = final_weights(&b);
    let mut worst = 0f32;
    assert_eq!(
        whole.keys().collect::<Vec<_>>(),
        resumed.keys().collect::<Vec<_>>()
    );
    for (k, (s, x)) in &whole {
        let (s2, y) = &resumed[k];
        assert_eq!(s, s2, "{k}");
        for (p, q) in x.iter().zip(y) {
            worst = worst.max((p - q).abs());
        }
    }
    eprintln!("killed at {killed_at}; resumed vs uninterrupted adapters: max abs diff {worst:e}");
    assert!(worst <= 1e-6, "max abs diff {worst}");
    // GRPO moved the adapters (else the comparison proves nothing).
    let start = warm_policy(0.1).trainable().unwrap();
    let moved = whole
        .iter()
        .map(|(k, (_, x))| {
            x.iter()
                .zip(&start[k].1)
                .map(|(p, q)| (p - q).abs())
                .fold(0f32, f32::max)
        })
        .fold(0f32, f32::max);
    assert!(moved > 1e-3, "GRPO did not change the adapters ({moved})");
    // Every step is logged once, in order.
    let steps: Vec<u64> = rows(&b)
        .iter()
        .map(|r| r["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, (1..=12).collect::<Vec<u64>>());
}

#[test]
fn a_folder_with_checkpoints_needs_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let mut policy = warm_policy(0.0);
    let t = build::<dyn PolicyTrainer>("ao-sft", &Default::default()).unwrap();
    t.train(
        &mut policy,
        &examples(),
        reward().as_ref(),
        &ctx(tmp.path(), 2, false),
    )
    .unwrap();
    let e = t
        .train(
            &mut policy,
            &examples(),
            reward().as_ref(),
            &ctx(tmp.path(), 4, false),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("--resume"), "{e}");
}

#[test]
fn ao_sft_learns_the_rating_and_nan_stops_training() {
    let tmp = tempfile::tempdir().unwrap();
    let mut policy = warm_policy(0.0);
    let t = build::<dyn PolicyTrainer>("ao-sft", &Default::default()).unwrap();
    let mut c = ctx(&tmp.path().join("ok"), 30, false);
    c.training.lr = 5e-3;
    let report = t
        .train(&mut policy, &examples(), reward().as_ref(), &c)
        .unwrap();
    let m = rows(&tmp.path().join("ok"));
    let (l0, l1) = (
        m[0]["loss"].as_f64().unwrap(),
        m[29]["loss"].as_f64().unwrap(),
    );
    eprintln!("ao-sft: loss {l0:.3} → {l1:.3} in {} steps", report.steps);
    assert!(l1 < 0.5 * l0, "loss {l0} → {l1}");

    // An absurd learning rate drives the loss to inf/NaN: the run stops with an error naming
    // the step, and the newest checkpoint is one whose weights are finite.
    let dir = tmp.path().join("nan");
    let mut c = ctx(&dir, 200, false);
    c.training.lr = 1e30;
    c.training.checkpoint_every = 1;
    let mut policy = warm_policy(0.0);
    let e = t
        .train(&mut policy, &examples(), reward().as_ref(), &c)
        .unwrap_err()
        .to_string();
    eprintln!("{e}");
    assert!(
        e.contains("step") && (e.contains("NaN") || e.contains("inf")),
        "{e}"
    );
    let latest = std::fs::read_to_string(dir.join("checkpoints/latest")).unwrap();
    let w = siren_core::engine::Weights::from_safetensors(
        &dir.join("checkpoints")
            .join(latest.trim())
            .join("weights.safetensors"),
    )
    .unwrap();
    let mut w = w;
    for name in w.remaining() {
        let (_, v) = w.take_raw(&name).unwrap().unwrap();
        assert!(
            v.iter().all(|x| x.is_finite()),
            "checkpoint tensor {name} is not finite"
        );
    }
}

/// `cot-sft` on built rationales: teacher-forced learning of `<think> rationale </think>`
/// and the rating after the bare prompt; the loss falls and greedy decoding writes a non-empty
/// reasoning in the tag format. An example without a rationale is named.
#[test]
fn cot_sft_learns_built_rationales() {
    let tmp = tempfile::tempdir().unwrap();
    let params: siren_core::config::Params = toml::from_str("source = \"built\"").unwrap();
    let t = build::<dyn PolicyTrainer>("cot-sft", &params).unwrap();
    // The rationale names two ratings (the synthetic task's "recent ratings"), the answer
    // follows it.
    let ex: Vec<Example> = examples()
        .into_iter()
        .map(|mut e| {
            let r = e.rating as usize;
            e.rationale = Some(format!("{} {}", 1 + r % 5, 1 + (r + 1) % 5));
            e
        })
        .collect();
    let mut policy = warm_policy(0.0);
    let mut c = ctx(&tmp.path().join("ok"), 40, false);
    c.training.lr = 5e-3;
    t.train(&mut policy, &ex, reward().as_ref(), &c).unwrap();
    let m = rows(&tmp.path().join("ok"));
    let (l0, l1) = (
        m[0]["loss"].as_f64().unwrap(),
        m[m.len() - 1]["loss"].as_f64().unwrap(),
    );
    eprintln!("cot-sft (built): loss {l0:.3} → {l1:.3}");
    assert!(l1 < 0.5 * l0, "loss {l0} → {l1}");
    let cfg = GenerationConfig {
        stop_tokens: vec![policy.tokenizer.eos.unwrap()],
        stop: policy.tokenizer.stop_strings(&["</answer>".to_string()]),
        ..GenerationConfig::greedy(10)
    };
    let prompt = policy.encode("rate 3").unwrap();
    let out = policy.generate(&[prompt], &cfg).unwrap();
    let text = policy.decode_completion(&out[0]).unwrap();
    assert!(siren_core::answer::format_ok(&text), "{text}");
    assert_eq!(
        text.split_whitespace().collect::<Vec<_>>()[1..3],
        ["4", "5"],
        "{text}"
    );

    let mut bare = ex.clone();
    bare[3].rationale = None;
    let e = t
        .train(
            &mut warm_policy(0.0),
            &bare,
            reward().as_ref(),
            &ctx(&tmp.path().join("bare"), 2, false),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("e3") && e.contains("rationale"), "{e}");
}

/// Full fine-tuning: every parameter trains, the reference policy stays at the starting
/// weights, and a checkpoint holds every parameter.
#[test]
fn full_finetuning_trains_every_parameter_against_a_frozen_reference() {
    let tmp = tempfile::tempdir().unwrap();
    let device = Device::flex().autodiff();
    let mut policy = Policy::new(
        tiny_decoder(SEED, &device).unwrap(),
        tiny_tokenizer().unwrap(),
        Tuning::Full,
        &|_| false,
        SEED,
        "tiny",
    )
    .unwrap();
    let all = policy.model.tensors_by_path(false).unwrap().len();
    let start = policy.trainable().unwrap();
    assert_eq!(start.len(), all, "every parameter trains");
    let t = build::<dyn PolicyTrainer>("ao-sft", &Default::default()).unwrap();
    let mut c = ctx(tmp.path(), 20, false);
    c.training.full_finetune = true;
    t.train(&mut policy, &examples(), reward().as_ref(), &c)
        .unwrap();
    let m = rows(tmp.path());
    let (l0, l1) = (
        m[0]["loss"].as_f64().unwrap(),
        m[19]["loss"].as_f64().unwrap(),
    );
    eprintln!("full fine-tuning ao-sft: loss {l0:.3} → {l1:.3} in 20 steps");
    assert!(l1 < 0.5 * l0, "loss {l0} → {l1}");
    let reference = policy.reference_model().tensors_by_path(false).unwrap();
    let now = policy.trainable().unwrap();
    let key = start
        .keys()
        .find(|k| k.starts_with("embed_tokens"))
        .unwrap_or_else(|| panic!("no embedding among {:?}", start.keys()));
    assert_eq!(
        reference[key], start[key],
        "the reference stays at the start"
    );
    assert_ne!(now[key], start[key], "the embeddings trained");
    let w = siren_core::engine::Weights::from_safetensors(
        &tmp.path()
            .join("checkpoints/step-000020/weights.safetensors"),
    )
    .unwrap();
    assert_eq!(w.remaining().len(), all);
}
