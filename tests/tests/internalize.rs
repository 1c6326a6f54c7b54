//! Stage 2 on a synthetic task where reasoning helps: the prompt `rate a b c` (digits 1..5)
//! has the rating r = (a + b + c) mod 5 + 1. The reasoning writes the partial sum
//! s = (a + b) mod 5 + 1, so each step the model takes is a function of two tokens, while an
//! answer-only model must compute a function of three in one pass.
//!
//! From one random-init tiny decoder and an equal step budget:
//! - the **CoT model** (stage 1) is trained on `<think> s </think> <answer> r </answer>`;
//! - **AO-SFT** (`ao-sft`) is trained on the answer after the empty reasoning block.
//!
//! Stage 2 harvests the CoT model (greedy, kept where right, teacher states at `<answer>`)
//! and trains fresh adapters with an internalizer; each is scored answer-only in one forward
//! pass. The test asserts that CoT beats AO-SFT and that `hidden-align` recovers at least
//! half of the AO→CoT MAE gap of the CoT model, compares the alignment losses and LoRA target
//! sets, and checks that the exported PEFT adapters load back to identical predictions.

use std::path::Path;

use siren_core::answer::{AO_SUFFIX, parse_rating};
use siren_core::burn::optim::{AdamWConfig, GradientsParams};
use siren_core::burn::tensor::Device;
use siren_core::engine::{Decoder, GenerationConfig, LoraSpec};
use siren_core::rating::{RatingDecoder, RatingTokens, rating_distributions};
use siren_core::registry::build;
use siren_core::testkit::{tiny_decoder, tiny_tokenizer};
use siren_core::train::teacher::{HarvestConfig, harvest};
use siren_core::train::{Policy, Teacher, TrainingConfig, Tuning};
use siren_core::traits::{
    AlignmentLoss, Example, Internalizer, LoraTargets, PolicyTrainer, Reward, RunCtx,
};
use siren_plugins as _;

const SEED: u64 = 5;
const STAGE1_STEPS: usize = 150;

fn digit(x: usize) -> usize {
    x % 5 + 1
}

/// All 125 prompts with their rating and reasoning.
fn task() -> Vec<(Example, String)> {
    let mut v = Vec::new();
    for a in 1..=5 {
        for b in 1..=5 {
            for c in 1..=5 {
                let s = digit(a + b);
                let r = digit(s + c);
                v.push((
                    Example {
                        id: format!("{a}{b}{c}"),
                        prompt: format!("rate {a} {b} {c}"),
                        rating: r as f32,
                        rationale: None,
                    },
                    format!("<think> {s} </think> <answer> {r} </answer>"),
                ));
            }
        }
    }
    v
}

fn fresh(tuning: Tuning) -> Policy {
    let device = Device::flex().autodiff();
    Policy::new(
        tiny_decoder(SEED, &device).unwrap(),
        tiny_tokenizer().unwrap(),
        tuning,
        &|_| true,
        SEED,
        "tiny",
    )
    .unwrap()
}

/// Stage 1: full fine-tuning on the reasoning traces (teacher forcing).
fn cot_model() -> Policy {
    let mut policy = fresh(Tuning::Full);
    let t = task();
    let prompts: Vec<Vec<u32>> = t
        .iter()
        .map(|(e, _)| policy.encode(&e.prompt).unwrap())
        .collect();
    let comps: Vec<Vec<u32>> = t
        .iter()
        .map(|(_, c)| {
            let mut ids = policy.encode(c).unwrap();
            ids.push(policy.tokenizer.eos.unwrap());
            ids
        })
        .collect();
    let mut optim = AdamWConfig::new().with_weight_decay(0.0).init();
    for _ in 0..STAGE1_STEPS {
        let sc = policy.scores(&prompts, &comps).unwrap();
        let loss = sc.logprobs.sum().neg().div(sc.mask.sum());
        let grads = GradientsParams::from_grads(loss.backward(), &policy.model);
        policy.model = optim.step(3e-3, policy.model.clone(), grads);
    }
    policy
}

fn ctx(dir: &Path, lr: f64, steps: usize, full: bool) -> RunCtx {
    RunCtx {
        run_dir: dir.to_path_buf(),
        seed: SEED,
        device: Device::flex(),
        training: TrainingConfig {
            lr,
            batch_size: 125,
            micro_batch: 125,
            max_steps: Some(steps),
            epochs: 10_000,
            checkpoint_every: 1000,
            full_finetune: full,
            lora_dropout: 0.0,
            // The CoT model is trained by a plain AdamW loop without clipping: every model of
            // the comparison trains with the same optimizer.
            grad_clip: 0.0,
            ..TrainingConfig::default()
        },
        resume: false,
    }
}

/// Answer-only MAE of `model` under each decoder (argmax, expected, median).
fn ao_mae(model: &Decoder) -> [f64; 3] {
    let tok = tiny_tokenizer().unwrap();
    let rt = RatingTokens::new(&tok, 5).unwrap();
    let t = task();
    let prompts: Vec<Vec<u32>> = t
        .iter()
        .map(|(e, _)| {
            tok.encode(&format!("{}{AO_SUFFIX}", e.prompt), false)
                .unwrap()
        })
        .collect();
    let d = rating_distributions(model, &prompts, &rt, 0, &Device::flex()).unwrap();
    RatingDecoder::ALL.map(|dec| {
        t.iter()
            .zip(&d)
            .map(|((e, _), p)| f64::from((dec.decode(p, &rt.values) - e.rating).abs()))
            .sum::<f64>()
            / t.len() as f64
    })
}

/// Greedy CoT MAE (an unparsable answer counts as the mean rating 3).
fn cot_mae(policy: &Policy) -> f64 {
    let cfg = GenerationConfig {
        stop_tokens: vec![policy.tokenizer.eos.unwrap()],
        stop: policy.tokenizer.stop_strings(&["</answer>".to_string()]),
        ..GenerationConfig::greedy(8)
    };
    let t = task();
    let prompts: Vec<Vec<u32>> = t
        .iter()
        .map(|(e, _)| policy.encode(&e.prompt).unwrap())
        .collect();
    let outs = policy.generate(&prompts, &cfg).unwrap();
    t.iter()
        .zip(&outs)
        .map(|((e, _), ids)| {
            let text = policy.decode_completion(ids).unwrap();
            let p = parse_rating(&text).unwrap_or(3.0).clamp(1.0, 5.0);
            f64::from((p - e.rating).abs())
        })
        .sum::<f64>()
        / t.len() as f64
}

fn stage2(
    cot: &Policy,
    teacher: &Teacher,
    internalizer: &str,
    loss: &str,
    targets: &str,
    dir: &Path,
    steps: usize,
) -> (Policy, [f64; 3]) {
    let t = build::<dyn LoraTargets>(targets, &Default::default()).unwrap();
    let mut policy = Policy::new(
        cot.model.clone(),
        tiny_tokenizer().unwrap(),
        Tuning::Lora(LoraSpec {
            r: 8,
            alpha: 16.0,
            dropout: 0.0,
        }),
        &|s| t.select(s),
        SEED,
        "tiny cot",
    )
    .unwrap();
    let i = build::<dyn Internalizer>(internalizer, &Default::default()).unwrap();
    let a = build::<dyn AlignmentLoss>(loss, &Default::default()).unwrap();
    i.internalize(
        &mut policy,
        teacher,
        a.as_ref(),
        &ctx(dir, 1e-2, steps, false),
    )
    .unwrap();
    let m = ao_mae(&policy.inference_model());
    (policy, m)
}

/// AO-SFT (`ao-sft`, full fine-tuning) from the same initial weights with the same budget.
fn ao_sft(dir: &Path) -> [f64; 3] {
    let mut policy = fresh(Tuning::Full);
    let examples: Vec<Example> = task().into_iter().map(|(e, _)| e).collect();
    let reward = build::<dyn Reward>("regression", &Default::default()).unwrap();
    build::<dyn PolicyTrainer>("ao-sft", &Default::default())
        .unwrap()
        .train(
            &mut policy,
            &examples,
            reward.as_ref(),
            &ctx(dir, 3e-3, STAGE1_STEPS, true),
        )
        .unwrap();
    ao_mae(&policy.inference_model())
}

/// Rows of the comparison: internalizer, alignment loss, LoRA targets.
const RUNS: [(&str, &str, &str); 7] = [
    ("hidden-align", "cosine", "kv"),
    ("hidden-align", "mae", "kv"),
    ("hidden-align", "mse", "kv"),
    ("hidden-align", "cosine", "all-linear"),
    ("ce", "cosine", "kv"),
    ("kd", "cosine", "kv"),
    ("ha-ce", "cosine", "kv"),
];

/// Stage-2 steps: few enough that the methods differ in how far they get.
const STAGE2_STEPS: usize = 30;

fn harvest_cfg() -> HarvestConfig {
    HarvestConfig {
        max_new_tokens: 8,
        batch_size: 64,
        max_examples: None,
        shard_size: 50,
    }
}

fn examples() -> Vec<Example> {
    task().into_iter().map(|(e, _)| e).collect()
}

#[test]
fn hidden_align_internalizes_reasoning_on_a_synthetic_task() {
    let tmp = tempfile::tempdir().unwrap();
    let cot = cot_model();
    let cot_m = cot_mae(&cot);
    let before = ao_mae(&cot.inference_model());
    let sft = ao_sft(&tmp.path().join("ao-sft"));
    let teacher = harvest(
        &cot.inference_model(),
        &cot.tokenizer,
        &examples(),
        &harvest_cfg(),
        64,
        &tmp.path().join("harvest"),
        &Device::flex(),
    )
    .unwrap();
    eprintln!(
        "`rate a b c`, 125 prompts, {STAGE1_STEPS} stage-1 steps: CoT MAE {cot_m:.3}; AO-SFT \
         MAE {sft:.3?}; CoT model answer-only before stage 2 {before:.3?} (argmax, expected, \
         median); teacher kept {} of {}",
        teacher.examples.len(),
        teacher.decoded
    );
    assert!(cot_m <= 0.05, "the CoT model solves the task: {cot_m}");
    assert!(
        sft[0] >= cot_m + 0.5,
        "CoT beats AO-SFT: {cot_m} vs {sft:?}"
    );
    assert!(
        before[0] >= cot_m + 0.5,
        "answer-only lags CoT before stage 2: {before:?}"
    );
    assert_eq!(teacher.examples.len(), 125);

    let mut after = std::collections::BTreeMap::new();
    for (name, loss, targets) in RUNS {
        let dir = tmp.path().join(format!("{name}-{loss}-{targets}"));
        let (policy, m) = stage2(&cot, &teacher, name, loss, targets, &dir, STAGE2_STEPS);
        let gap = (before[0] - m[0]) / (before[0] - cot_m);
        eprintln!(
            "{name:<12} {loss:<6} {targets:<10}: answer-only MAE {m:.3?}, {:.0}% of the gap closed",
            100.0 * gap
        );
        if (name, loss, targets) == RUNS[0] {
            check_peft_round_trip(&cot, &policy, &dir.join("policy"));
            check_the_student_moves(&cot, &policy, &teacher, &dir);
        }
        after.insert((name, loss, targets), m);
    }
    let ha = after[&RUNS[0]];
    assert!(
        ha[0] <= before[0] - 0.5 * (before[0] - cot_m),
        "hidden-align closes at least half of the gap: {before:?} → {ha:?} (CoT {cot_m})"
    );
    assert!(
        ha[0] + 0.2 < after[&("ce", "cosine", "kv")][0],
        "hidden alignment beats CE at the same budget: {after:?}"
    );
    assert!(
        after[&("hidden-align", "cosine", "all-linear")][0] <= ha[0],
        "more adapted sites learn at least as fast: {after:?}"
    );
    for loss in ["mae", "mse"] {
        let m = after[&("hidden-align", loss, "kv")];
        assert!(m[0] < before[0] - 0.3, "{loss} learns too: {m:?}");
    }
}

/// Stage 2 on a non-empty teacher moves the student towards it: the alignment loss falls
/// from its first to its last step, and the mean teacher–student cosine over layers (what the
/// stage reports before and after) rises.
fn check_the_student_moves(cot: &Policy, trained: &Policy, teacher: &Teacher, dir: &Path) {
    use siren_core::train::teacher::{layer_cosines, thinking_inner};
    assert!(
        teacher
            .examples
            .iter()
            .all(|c| !thinking_inner(&c.thinking).is_empty()),
        "every kept example has reasoning"
    );
    let losses: Vec<f64> = std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"]
                .as_f64()
                .unwrap()
        })
        .collect();
    let (first, last) = (losses[0], losses[losses.len() - 1]);
    assert!(
        last < 0.5 * first,
        "the alignment loss falls: {first} → {last}"
    );
    let rows: Vec<usize> = (0..teacher.examples.len()).collect();
    let mean = |m: &siren_core::engine::Decoder| {
        let c =
            layer_cosines(m, &cot.tokenizer, teacher, &rows, (64, 64), &Device::flex()).unwrap();
        assert_eq!(c.len(), teacher.layers);
        c.iter().sum::<f64>() / c.len() as f64
    };
    let (before, after) = (
        mean(&cot.inference_model()),
        mean(&trained.inference_model()),
    );
    eprintln!(
        "teacher–student cosine, mean over layers: {before:.4} → {after:.4}; loss {first:.4} → {last:.4}"
    );
    assert!(
        after > before,
        "the student's states move to the teacher's: {before} → {after}"
    );
}

/// The exported PEFT folder, loaded over the CoT model, predicts what the trained policy
/// predicts: bit-identical distributions with the adapters attached; merged into the weights, the same
/// argmax and median ratings and distributions within 1e-4 (the sum is rounded differently).
fn check_peft_round_trip(cot: &Policy, trained: &Policy, dir: &Path) {
    trained.export(dir).unwrap();
    assert!(dir.join("adapter_model.safetensors").is_file());
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("adapter_config.json")).unwrap())
            .unwrap();
    assert_eq!(
        cfg["target_modules"],
        serde_json::json!(["k_proj", "v_proj"])
    );
    let tok = tiny_tokenizer().unwrap();
    let rt = RatingTokens::new(&tok, 5).unwrap();
    let prompts: Vec<Vec<u32>> = task()
        .iter()
        .map(|(e, _)| {
            tok.encode(&format!("{}{AO_SUFFIX}", e.prompt), false)
                .unwrap()
        })
        .collect();
    let dev = Device::flex();
    let dists = |m: &Decoder| rating_distributions(m, &prompts, &rt, 0, &dev).unwrap();
    let want = dists(&trained.inference_model());
    let (loaded, spec) = cot.inference_model().load_peft(dir).unwrap();
    assert_eq!(spec.r, 8);
    assert_eq!(
        dists(&loaded),
        want,
        "adapters loaded back: identical distributions"
    );
    let merged = dists(&loaded.merge_lora());
    for (a, b) in merged.iter().zip(&want) {
        for dec in [RatingDecoder::Argmax, RatingDecoder::Median] {
            assert_eq!(dec.decode(a, &rt.values), dec.decode(b, &rt.values));
        }
        let (x, y) = (
            RatingDecoder::Expected.decode(a, &rt.values),
            RatingDecoder::Expected.decode(b, &rt.values),
        );
        assert!((x - y).abs() < 1e-4, "merged: expected {x} vs {y}");
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-4, "merged: {a:?} vs {b:?}");
        }
    }
}

#[test]
fn a_killed_harvest_resumes_to_the_same_teacher() {
    let tmp = tempfile::tempdir().unwrap();
    let cot = cot_model();
    let ex = examples();
    let run = |dir: &Path| {
        harvest(
            &cot.inference_model(),
            &cot.tokenizer,
            &ex,
            &harvest_cfg(),
            64,
            dir,
            &Device::flex(),
        )
        .unwrap()
    };
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let whole = run(&a);
    // A harvest killed after 70 decoded prompts, in the middle of writing a line, before any
    // states: what is left on disk.
    std::fs::create_dir_all(&b).unwrap();
    let log = std::fs::read_to_string(a.join("cot.jsonl")).unwrap();
    let mut cut: String = log.lines().take(70).map(|l| format!("{l}\n")).collect();
    cut.push_str(&log.lines().nth(70).unwrap()[..20]);
    std::fs::write(b.join("cot.jsonl"), cut).unwrap();
    // And one shard already written.
    std::fs::copy(
        a.join("states-00000.safetensors"),
        b.join("states-00000.safetensors"),
    )
    .unwrap();
    let resumed = run(&b);
    assert_eq!(resumed.examples, whole.examples);
    let rows: Vec<usize> = (0..whole.examples.len()).collect();
    assert_eq!(resumed.rows(&rows).unwrap(), whole.rows(&rows).unwrap());
    assert_eq!(
        std::fs::read_to_string(b.join("cot.jsonl"))
            .unwrap()
            .lines()
            .count(),
        125,
        "each prompt decoded once"
    );
    // A complete harvest is read back, not redone; a bad row is an error naming it.
    let again = run(&b);
    assert_eq!(again.examples.len(), whole.examples.len());
    let e = whole.rows(&[999]).unwrap_err().to_string();
    assert!(e.contains("999"), "{e}");
}
