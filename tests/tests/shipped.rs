//! The shipped model, `models/siren-smollm2-movies`: its files match `SHA256SUMS`, its adapters
//! are PEFT folders that load over SmolLM2 (when the fetched weights are present), and its
//! topic model covers the shipped Movies split.

use std::path::PathBuf;

use siren_core::stages::internalize::with_weights;
use siren_plugins as _;
use siren_tests::{assets_dir, repo_root};

fn model_dir() -> PathBuf {
    repo_root().join("models/siren-smollm2-movies")
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn shipped_files_match_their_checksums() {
    let dir = model_dir();
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).expect("SHA256SUMS ships");
    let mut names = Vec::new();
    for line in sums.lines().filter(|l| !l.trim().is_empty()) {
        let (want, name) = line.split_once("  ").expect("`<sha256>  <file>` lines");
        let bytes = std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(sha256(&bytes), want, "{name}");
        names.push(name.to_string());
    }
    for f in [
        "stage1/adapter_config.json",
        "stage1/adapter_model.safetensors",
        "stage2/adapter_config.json",
        "stage2/adapter_model.safetensors",
        "topic-model.json",
        "config.toml",
    ] {
        assert!(names.iter().any(|n| n == f), "{f} is not in SHA256SUMS");
    }
    assert!(dir.join("README.md").is_file(), "the model card");
}

#[test]
fn the_topic_model_covers_the_shipped_split() {
    let m = siren_core::stages::sketch::TopicModelFile::read(&model_dir().join("topic-model.json"))
        .unwrap();
    let ds = siren_core::stages::load_dataset(
        &siren_core::config::RunConfig::load(
            &repo_root().join("configs/shipped-movies.toml"),
            &[format!(
                "dataset.params.dir={:?}",
                repo_root().join("data/amazon-movies").display().to_string()
            )],
        )
        .unwrap(),
    )
    .unwrap();
    let missing = ds
        .items
        .iter()
        .filter(|it| !m.items.contains_key(&it.id))
        .count();
    assert_eq!(missing, 0, "items of the split without a topic");
    assert_eq!(m.names.len(), m.centers.len());
}

#[test]
fn shipped_adapters_load_over_smollm2() {
    let gguf = assets_dir().join("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    if !siren_tests::asset_present(&gguf) {
        return;
    }
    let device = siren_core::burn::tensor::Device::flex();
    let (model, tok) = siren_core::loading::load_model(&gguf, None, &device).unwrap();
    let model = with_weights(model, &model_dir().join("stage1")).unwrap();
    let model = with_weights(model, &model_dir().join("stage2")).unwrap();
    let rt = siren_core::rating::RatingTokens::new(&tok, 5).unwrap();
    let prompt = tok
        .encode(
            "<|im_start|>user\nRecent ratings (title | genres | rating):\nHeat | 5\nCandidate: \
             Alien\nRating?<|im_end|>\n<|im_start|>assistant\n\n<think>\n</think>\n<answer>",
            false,
        )
        .unwrap();
    let s = siren_core::rating::answer_scores(&model, None, &[prompt], &rt, tok.pad_id(), &device)
        .unwrap();
    let sum: f32 = s[0].probs.iter().sum();
    assert!((sum - 1.0).abs() < 1e-4 && s[0].probs.iter().all(|p| p.is_finite()));
    // Trained to answer with a rating: most of the next-token mass is on 1..5.
    assert!(s[0].mass > 0.5, "rating mass {}", s[0].mass);
}
