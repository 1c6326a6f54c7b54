//! `qwen3`: Qwen3 dense checkpoints (`model_type = "qwen3"`): per-head q/k RMSNorm, explicit
//! `head_dim`. Sliding-window attention and RoPE scaling are rejected.

use serde::Deserialize;
use serde_json::{Value, json};
use siren_core::engine::DecoderSpec;
use siren_core::traits::Backbone;
use siren_core::{Plugin, Result};

use crate::HfConfig;

/// No parameters.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Qwen3Params {}

/// The `qwen3` backbone.
#[derive(Debug, Clone)]
pub struct Qwen3;

impl Plugin for Qwen3 {
    type Params = Qwen3Params;
    const SUMMARY: &'static str = "Qwen3 architecture (HF Qwen3ForCausalLM; q/k norm)";
    fn from_params(_: Qwen3Params) -> Result<Self> {
        Ok(Self)
    }
}

siren_core::register_backbone!("qwen3", Qwen3);

impl Backbone for Qwen3 {
    fn spec(&self, hf_config: &Value) -> Result<DecoderSpec> {
        let c = HfConfig {
            v: hf_config,
            arch: "qwen3",
        };
        c.model_type(&["qwen3"])?;
        c.require(
            "hidden_act",
            &json!("silu"),
            "the engine implements SwiGLU with SiLU",
        )?;
        c.require(
            "use_sliding_window",
            &json!(false),
            "sliding-window attention is not implemented",
        )?;
        c.require(
            "rope_scaling",
            &Value::Null,
            "RoPE scaling (YaRN) is not implemented for qwen3",
        )?;
        let heads = c.usize("num_attention_heads")?;
        let spec = DecoderSpec {
            vocab_size: c.usize("vocab_size")?,
            hidden_size: c.usize("hidden_size")?,
            intermediate_size: c.usize("intermediate_size")?,
            num_layers: c.usize("num_hidden_layers")?,
            num_heads: heads,
            num_kv_heads: c.usize_or("num_key_value_heads", heads)?,
            head_dim: c.usize_or("head_dim", 128)?,
            rms_norm_eps: c.f64_or("rms_norm_eps", 1e-6)?,
            rope_theta: c.f64_or("rope_theta", 10000.0)?,
            rope_scaling: None,
            max_position_embeddings: c.usize_or("max_position_embeddings", 32768)?,
            tie_word_embeddings: c.bool_or("tie_word_embeddings", false)?,
            attention_bias: c.bool_or("attention_bias", false)?,
            mlp_bias: false,
            qk_norm: true,
        };
        spec.validate()?;
        Ok(spec)
    }

    fn default_chat_template(&self) -> Option<&'static str> {
        None
    }
}
