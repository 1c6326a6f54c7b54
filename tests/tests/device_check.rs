//! `device-check` (the SIREN-rs side of `scripts/device-check.sh`) on the tiny Llama parity
//! fixture, whose reference logits and hidden states were made by transformers: parity within
//! tolerance, a planted error reported at its size, every timed phase finishing with finite
//! numbers, and bad inputs named.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::TensorView;
use siren_tests::repo_root;

fn fixture() -> std::path::PathBuf {
    repo_root().join("tests/fixtures/parity/llama")
}

/// Runs the `device-check` binary's command line (`args[0]` is the program name).
fn device_check(args: &[&str]) -> anyhow::Result<()> {
    siren_benchmarks::device_check::run_args(args)
}

fn i64_bytes(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Writes a prepared folder: the fixture's checkpoint, its transformers reference as the parity
/// tensors (one logit moved by `plant`), small token tensors for the timed phases, and a plan.
fn prepare(dir: &Path, plant: f32) {
    prepare_in(dir, plant, "f32");
}

fn prepare_in(dir: &Path, plant: f32, dtype: &str) {
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture().join(f), dir.join(f)).unwrap();
    }
    let bytes = std::fs::read(fixture().join("expected.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let get = |n: &str| st.tensor(n).unwrap();
    let ids = get("input_ids");
    let mask: Vec<i64> = get("attention_mask")
        .data()
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let s = ids.shape()[1];
    let lens: Vec<i64> = mask.chunks(s).map(|r| r.iter().sum()).collect();
    let mut logits: Vec<f32> = get("logits")
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    // The last token of the first row is real in a left-padded batch.
    let v = get("logits").shape()[2];
    logits[(s - 1) * v + 3] += plant;
    let mut t: HashMap<String, (safetensors::Dtype, Vec<usize>, Vec<u8>)> = HashMap::new();
    let mut put = |n: &str, d, shape: Vec<usize>, b: Vec<u8>| {
        t.insert(n.to_string(), (d, shape, b));
    };
    use safetensors::Dtype::{F32, I64};
    put("parity_ids", I64, ids.shape().to_vec(), ids.data().to_vec());
    put("parity_len", I64, vec![lens.len()], i64_bytes(&lens));
    put(
        "parity_logits",
        F32,
        get("logits").shape().to_vec(),
        f32_bytes(&logits),
    );
    let h = get("hidden_states");
    put("parity_hidden", F32, h.shape().to_vec(), h.data().to_vec());
    let tok =
        |n: usize, k: i64| -> Vec<i64> { (0..n as i64).map(|i| 3 + (i * 7 + k) % 90).collect() };
    put("prompts", I64, vec![2, 6], i64_bytes(&tok(12, 1)));
    put("grpo_prompts", I64, vec![2, 5], i64_bytes(&tok(10, 2)));
    put(
        "grpo_adv",
        F32,
        vec![6],
        f32_bytes(&[1.0, -0.5, -0.5, 0.8, 0.2, -1.0]),
    );
    put("align_teacher", I64, vec![2, 10], i64_bytes(&tok(20, 3)));
    put("align_student", I64, vec![2, 5], i64_bytes(&tok(10, 4)));
    put("answer_ids", I64, vec![5], i64_bytes(&[10, 11, 12, 13, 14]));
    put("align_labels", I64, vec![2], i64_bytes(&[0, 4]));
    let views: Vec<(String, TensorView<'_>)> = t
        .iter()
        .map(|(n, (d, shape, b))| (n.clone(), TensorView::new(*d, shape.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, &dir.join("inputs.safetensors")).unwrap();
    let plan = serde_json::json!({
        "dtype": dtype, "batches": [1, 2], "cot_tokens": 3, "reason_tokens": 6,
        "ratio_batches": [1], "repeats": 1, "pad_id": 0, "prompt_tokens": 6,
        "grpo": {"group": 3, "response_tokens": 4, "lora_r": 2, "lr": 1e-3, "clip": 0.2, "beta": 0.04},
        "align": {"lora_r": 2, "lr": 1e-3},
    });
    std::fs::write(dir.join("plan.json"), plan.to_string()).unwrap();
}

fn run(dir: &Path, only: &str) -> serde_json::Value {
    run_on(dir, only, "flex")
}

fn run_on(dir: &Path, only: &str, device: &str) -> serde_json::Value {
    let out = dir.join(format!("{only}.json"));
    device_check(&[
        "device-check",
        "--model",
        &dir.display().to_string(),
        "--device",
        device,
        "--only",
        only,
        "--out",
        &out.display().to_string(),
    ])
    .unwrap();
    serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap()
}

#[test]
fn parity_is_within_tolerance_and_a_planted_error_is_reported_at_its_size() {
    let tmp = tempfile::tempdir().unwrap();
    prepare(tmp.path(), 0.0);
    let r = run(tmp.path(), "parity");
    let p = &r["parity"];
    assert!(p["logits_max_abs"].as_f64().unwrap() < 1e-4, "{p}");
    assert!(p["hidden_max_abs"].as_f64().unwrap() < 1e-4, "{p}");
    assert_eq!(p["argmax_agree"].as_f64().unwrap(), 1.0, "{p}");
    assert_eq!(p["layers"], 3);

    let planted = tempfile::tempdir().unwrap();
    prepare(planted.path(), 0.5);
    let p = run(planted.path(), "parity")["parity"].clone();
    let d = p["logits_max_abs"].as_f64().unwrap();
    assert!((d - 0.5).abs() < 1e-3, "planted 0.5, reported {d}");
    assert!(p["hidden_max_abs"].as_f64().unwrap() < 1e-4, "{p}");
}

#[test]
fn every_timed_phase_finishes_with_finite_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    prepare(tmp.path(), 0.0);
    let r = run(tmp.path(), "speed,grpo,align");
    let speed = &r["speed"];
    assert_eq!(speed["ao"].as_array().unwrap().len(), 2);
    for row in speed["ao"].as_array().unwrap() {
        assert!(row["ms"].as_f64().unwrap() > 0.0, "{row}");
    }
    for row in speed["cot"].as_array().unwrap() {
        assert_eq!(row["new_tokens"], 3);
        assert!(row["tokens_per_s"].as_f64().unwrap() > 0.0, "{row}");
    }
    assert_eq!(speed["ratio"][0]["reason_tokens"], 6);
    assert!(speed["ratio"][0]["ratio"].as_f64().unwrap() > 0.0);
    let g = &r["grpo"];
    assert_eq!(
        (g["prompts"].as_u64(), g["group"].as_u64()),
        (Some(2), Some(3))
    );
    for k in ["sampling_s", "reference_s", "update_s", "step_s", "loss"] {
        assert!(g[k].as_f64().unwrap().is_finite(), "{k}: {g}");
    }
    let a = &r["align"];
    assert_eq!(a["teacher_tokens"], 10);
    // 1 − cos ∈ [0, 2] plus a cross-entropy over five classes: positive and finite.
    let loss = a["loss"].as_f64().unwrap();
    assert!(loss.is_finite() && loss > 0.0, "{a}");
    assert!(r["peak_rss_mb"].as_f64().unwrap() > 0.0);
}

#[test]
fn bf16_models_train_with_f32_adapters() {
    // The GPU profile runs speed and training in bf16: LoRA adapters stay f32 (as PEFT's) on a
    // bf16 model, so the update must cast between the two. LibTorch computes in bf16 on CPU.
    if !siren_backends::compiled_in().contains(&"tch-cpu") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    prepare_in(tmp.path(), 0.0, "bf16");
    let r = run_on(tmp.path(), "speed,grpo,align", "tch-cpu");
    assert_eq!(r["dtype"], "bf16");
    assert!(r["grpo"]["loss"].as_f64().unwrap().is_finite(), "{r}");
    assert!(r["align"]["loss"].as_f64().unwrap().is_finite(), "{r}");
    assert_eq!(r["speed"]["cot"][1]["new_tokens"], 3);
}

#[test]
fn bad_inputs_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    prepare(tmp.path(), 0.0);
    let dir = tmp.path().display().to_string();
    let e = device_check(&[
        "device-check",
        "--model",
        &dir,
        "--device",
        "flex",
        "--only",
        "speeed",
    ])
    .unwrap_err()
    .to_string();
    assert!(e.contains("unknown phase `speeed`"), "{e}");
    std::fs::write(tmp.path().join("plan.json"), r#"{"dtype": "f64"}"#).unwrap();
    let e = format!(
        "{:#}",
        device_check(&["device-check", "--model", &dir, "--device", "flex"]).unwrap_err()
    );
    assert!(
        e.contains("plan.json") && e.contains("not a device-check plan"),
        "{e}"
    );
    prepare(tmp.path(), 0.0);
    std::fs::write(tmp.path().join("inputs.safetensors"), b"not safetensors").unwrap();
    let e = format!(
        "{:#}",
        device_check(&["device-check", "--model", &dir, "--device", "flex"]).unwrap_err()
    );
    assert!(
        e.contains("inputs.safetensors") && e.contains("not a safetensors file"),
        "{e}"
    );
}
