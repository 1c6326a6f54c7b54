//! The example backbone reads a Mistral `config.json` by name, next to the built-in backbones,
//! and refuses what the engine does not implement. Its parity with transformers is checked in
//! `tests/tests/engine_parity.rs` (`mistral_example_backbone_matches_transformers`).
use my_backbone as _;
use serde_json::json;
use siren_core::registry::build;
use siren_core::traits::Backbone;
use siren_plugins as _;

fn config(window: serde_json::Value) -> serde_json::Value {
    json!({"model_type": "mistral", "vocab_size": 96, "hidden_size": 32, "intermediate_size": 64,
           "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
           "max_position_embeddings": 128, "rms_norm_eps": 1e-6, "rope_theta": 50000.0,
           "hidden_act": "silu", "sliding_window": window})
}

#[test]
fn mistral_resolves_by_name_and_reads_its_config() {
    let b = build::<dyn Backbone>("mistral", &Default::default()).unwrap();
    assert!(build::<dyn Backbone>("llama", &Default::default()).is_ok(), "built-ins are linked too");
    for window in [json!(null), json!(128), json!(4096)] {
        let spec = b.spec(&config(window)).unwrap();
        assert_eq!((spec.num_heads, spec.num_kv_heads, spec.head_dim), (4, 2, 8));
        assert_eq!(spec.rope_theta, 50000.0);
        assert!(!spec.qk_norm && !spec.tie_word_embeddings);
    }
}

#[test]
fn a_window_shorter_than_the_context_is_refused_naming_the_key() {
    let b = build::<dyn Backbone>("mistral", &Default::default()).unwrap();
    let e = b.spec(&config(json!(64))).unwrap_err().to_string();
    assert!(e.contains("sliding_window") && e.contains("not implemented"), "{e}");
    let mut other = config(json!(null));
    other["model_type"] = json!("llama");
    let e = b.spec(&other).unwrap_err().to_string();
    assert!(e.contains("model_type"), "{e}");
}
