//! The `bert` text encoder against HF transformers on tiny random BERT and XLM-RoBERTa
//! checkpoints (`tests/fixtures/encoders`, made by `scripts/make-encoder-fixtures.py`): last
//! hidden states and L2-normalised mean / CLS embeddings, on flex and tch-cpu. Plus the
//! `hashing` encoder through the registry.

use siren_core::traits::TextEncoder;
use siren_encoders::bert::{BertModel, Pooling, pool};
use siren_plugins as _;

mod common;
use common::*;

fn check(arch: &str) {
    let dir = siren_tests::repo_root()
        .join("tests/fixtures/encoders")
        .join(arch);
    let exp = dir.join("expected.safetensors");
    let (shape, ids) = read_i64(&exp, "input_ids");
    let (_, mask) = read_i64(&exp, "attention_mask");
    let (b, s) = (shape[0], shape[1]);
    let seqs: Vec<Vec<u32>> = (0..b)
        .map(|i| {
            (0..s)
                .filter(|&k| mask[i * s + k] == 1)
                .map(|k| ids[i * s + k] as u32)
                .collect()
        })
        .collect();
    let (hshape, want_h) = read_f32(&exp, "last_hidden_state");
    let hd = hshape[2];
    let real: Vec<bool> = mask.iter().map(|&m| m == 1).collect();
    for (dev_name, device) in devices() {
        let model = BertModel::load(&dir, &device).unwrap();
        let (h, keep) = model.forward(&seqs, &device).unwrap();
        assert_eq!(h.dims(), [b, s, hd]);
        let d = max_diff_real(&host(h.clone()), &want_h, hd, &real);
        assert!(d <= TOL, "{arch}/{dev_name}: last hidden state {d}");
        for (pooling, name) in [(Pooling::Mean, "mean"), (Pooling::Cls, "cls")] {
            let e = pool(h.clone(), keep.clone(), pooling).unwrap();
            let (_, want) = read_f32(&exp, name);
            let dp = max_diff(&e.data, &want);
            assert!(dp <= TOL, "{arch}/{dev_name}: {name} pooling {dp}");
        }
        eprintln!("{arch}/{dev_name}: encoder parity ok (hidden max abs diff {d:.2e})");
    }
}

#[test]
fn bert_matches_transformers() {
    check("bert");
}

#[test]
fn xlm_roberta_matches_transformers() {
    check("xlm-roberta");
}

#[test]
fn unsupported_configs_are_named() {
    let v = serde_json::json!({"model_type": "bert", "hidden_act": "relu", "vocab_size": 8,
        "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
        "intermediate_size": 8, "max_position_embeddings": 8});
    let e = siren_encoders::bert::BertSpec::from_config(&v, "x/config.json")
        .unwrap_err()
        .to_string();
    assert!(e.contains("hidden_act") && e.contains("relu"), "{e}");
    // A missing folder fails on first use, naming the folder and the fix.
    let enc =
        siren_encoders::bert::Bert::new(std::path::Path::new("/nowhere/model"), "flex").unwrap();
    let e = enc.encode(&["x".into()]).unwrap_err().to_string();
    assert!(
        e.contains("/nowhere/model") && e.contains("fetch-assets"),
        "{e}"
    );
}

#[test]
fn hashing_encoder_resolves_and_is_normalised() {
    let enc =
        siren_core::registry::build::<dyn TextEncoder>("hashing", &Default::default()).unwrap();
    let e = enc
        .encode(&["The Matrix, Action|Sci-Fi".into(), "Toy Story".into()])
        .unwrap();
    assert_eq!((e.n, e.dim), (2, 256));
    for i in 0..2 {
        let n: f32 = e.row(i).iter().map(|x| x * x).sum();
        assert!((n - 1.0).abs() < 1e-5);
    }
}
