//! Tiny fixtures for tests and examples: a word-level tokenizer and a seeded random decoder of
//! a few thousand parameters, and the same written as a HF model folder.

use crate::{EngineError, Result};

/// The words of [`tiny_tokenizer`], in id order.
pub const TINY_VOCAB: [&str; 13] = [
    "<pad>",
    "<eos>",
    "<think>",
    "</think>",
    "<answer>",
    "</answer>",
    "rate",
    "1",
    "2",
    "3",
    "4",
    "5",
    "<unk>",
];

/// A word-level tokenizer over [`TINY_VOCAB`] (whitespace-separated words; the four answer
/// tags are whole tokens; `<eos>` ends and `<pad>` pads), for tests and examples that train a
/// tiny decoder on synthetic rating tasks such as "rate 4" → `<answer> 4 </answer>`.
pub fn tiny_tokenizer() -> Result<crate::TextTokenizer> {
    crate::TextTokenizer::from_json(&tiny_tokenizer_json(), &tiny_tokenizer_config())
}

fn tiny_tokenizer_config() -> serde_json::Value {
    serde_json::json!({"eos_token": "<eos>", "pad_token": "<pad>"})
}

/// The `tokenizer.json` text of [`tiny_tokenizer`].
pub fn tiny_tokenizer_json() -> String {
    let vocab: serde_json::Map<String, serde_json::Value> = TINY_VOCAB
        .iter()
        .enumerate()
        .map(|(i, w)| ((*w).to_string(), serde_json::json!(i)))
        .collect();
    let added: Vec<serde_json::Value> = TINY_VOCAB[..6]
        .iter()
        .enumerate()
        .map(|(i, w)| {
            serde_json::json!({"id": i, "content": w, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": i < 2})
        })
        .collect();
    let json = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
        "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null,
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}
    });
    json.to_string()
}

/// A randomly initialised tiny Llama-shaped decoder (2 layers, width 32, vocabulary of
/// [`TINY_VOCAB`]; weights normal with std 0.02 as HF initialises them, norms 1), seeded.
/// `lm_head` gets std 0.3: with std 0.02 the logits of a width-32 model cannot exceed ~0.6,
/// so adapters alone could never make the model confident.
pub fn tiny_decoder(seed: u64, device: &burn::tensor::Device) -> Result<crate::Decoder> {
    let (spec, mut w) = tiny_weights(seed);
    crate::Decoder::from_weights(spec, &mut w, device)
}

/// Writes [`tiny_decoder`] and [`tiny_tokenizer`] as a HF model folder (`config.json`,
/// `model.safetensors`, `tokenizer.json`, `tokenizer_config.json`), for end-to-end tests of
/// the stages and the CLI.
pub fn write_tiny_model(dir: &std::path::Path, seed: u64) -> Result<()> {
    let (spec, w) = tiny_weights(seed);
    std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))?;
    let tensors = w.take_all()?;
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).map_err(|e| EngineError::io(&p, e))
    };
    write("model.safetensors", &crate::serialize_f32(&tensors)?)?;
    let config = serde_json::json!({
        "model_type": "llama", "architectures": ["LlamaForCausalLM"],
        "vocab_size": spec.vocab_size, "hidden_size": spec.hidden_size,
        "intermediate_size": spec.intermediate_size, "num_hidden_layers": spec.num_layers,
        "num_attention_heads": spec.num_heads, "num_key_value_heads": spec.num_kv_heads,
        "head_dim": spec.head_dim, "rms_norm_eps": spec.rms_norm_eps,
        "rope_theta": spec.rope_theta, "max_position_embeddings": spec.max_position_embeddings,
        "tie_word_embeddings": false, "hidden_act": "silu"
    });
    write("config.json", config.to_string().as_bytes())?;
    write("tokenizer.json", tiny_tokenizer_json().as_bytes())?;
    write(
        "tokenizer_config.json",
        tiny_tokenizer_config().to_string().as_bytes(),
    )
}

fn tiny_weights(seed: u64) -> (crate::DecoderSpec, crate::Weights) {
    use rand::{Rng, SeedableRng};
    let spec = crate::DecoderSpec {
        vocab_size: TINY_VOCAB.len(),
        hidden_size: 32,
        intermediate_size: 64,
        num_layers: 2,
        num_heads: 4,
        num_kv_heads: 2,
        head_dim: 8,
        rms_norm_eps: 1e-6,
        rope_theta: 10_000.0,
        rope_scaling: None,
        max_position_embeddings: 256,
        tie_word_embeddings: false,
        attention_bias: false,
        mlp_bias: false,
        qk_norm: false,
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut w = crate::Weights::default();
    let mut normal = |shape: Vec<usize>, std: f32| -> (Vec<usize>, Vec<f32>) {
        let n: usize = shape.iter().product();
        // Box-Muller.
        let data = (0..n)
            .map(|_| {
                let (u1, u2): (f32, f32) = (rng.random_range(1e-7..1.0), rng.random());
                std * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
            })
            .collect();
        (shape, data)
    };
    let (h, f, v, kv) = (32, 64, TINY_VOCAB.len(), 2 * 8);
    let mut put = |name: String, shape: Vec<usize>, w: &mut crate::Weights| {
        let std = if name == "lm_head.weight" { 0.3 } else { 0.02 };
        let (s, d) = normal(shape, std);
        w.insert(name, s, d);
    };
    put("model.embed_tokens.weight".into(), vec![v, h], &mut w);
    put("lm_head.weight".into(), vec![v, h], &mut w);
    for i in 0..2 {
        let p = format!("model.layers.{i}");
        put(format!("{p}.self_attn.q_proj.weight"), vec![h, h], &mut w);
        put(format!("{p}.self_attn.k_proj.weight"), vec![kv, h], &mut w);
        put(format!("{p}.self_attn.v_proj.weight"), vec![kv, h], &mut w);
        put(format!("{p}.self_attn.o_proj.weight"), vec![h, h], &mut w);
        put(format!("{p}.mlp.gate_proj.weight"), vec![f, h], &mut w);
        put(format!("{p}.mlp.up_proj.weight"), vec![f, h], &mut w);
        put(format!("{p}.mlp.down_proj.weight"), vec![h, f], &mut w);
        for n in ["input_layernorm", "post_attention_layernorm"] {
            w.insert(format!("{p}.{n}.weight"), vec![h], vec![1.0; h]);
        }
    }
    w.insert("model.norm.weight", vec![h], vec![1.0; h]);
    (spec, w)
}
