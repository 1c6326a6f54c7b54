//! `llama`: Llama 2/3 and SmolLM-style checkpoints (`model_type = "llama"`).

use serde::Deserialize;
use serde_json::{Value, json};
use siren_core::engine::gguf::{Gguf, llama_cpp_name, unpermute_qk};
use siren_core::engine::{DecoderSpec, RopeScaling, Weights};
use siren_core::traits::Backbone;
use siren_core::{CoreError, Plugin, Result};

use crate::HfConfig;

/// No parameters.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlamaParams {}

/// The `llama` backbone.
#[derive(Debug, Clone)]
pub struct Llama;

impl Plugin for Llama {
    type Params = LlamaParams;
    const SUMMARY: &'static str = "Llama architecture (HF LlamaForCausalLM; Llama-3 RoPE scaling)";
    fn from_params(_: LlamaParams) -> Result<Self> {
        Ok(Self)
    }
}

siren_core::register_backbone!("llama", Llama);

/// Llama-3 `rope_scaling`, or `None`; other scaling types are rejected.
pub(crate) fn rope_scaling(c: &HfConfig<'_>) -> Result<Option<RopeScaling>> {
    let Some((key, rs)) = c.rope_scaling_section() else {
        return Ok(None);
    };
    let kind = rs
        .get("rope_type")
        .or_else(|| rs.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if kind != "llama3" {
        return Err(CoreError::config(
            format!("{} config.json `{key}.rope_type`", c.arch),
            format!("`{kind}` is not supported (supported: llama3)"),
        ));
    }
    let sub = HfConfig {
        v: rs,
        arch: c.arch,
    };
    Ok(Some(RopeScaling::Llama3 {
        factor: sub.f64_or("factor", 8.0)?,
        low_freq_factor: sub.f64_or("low_freq_factor", 1.0)?,
        high_freq_factor: sub.f64_or("high_freq_factor", 4.0)?,
        original_max_position_embeddings: sub.usize_or("original_max_position_embeddings", 8192)?,
    }))
}

impl Backbone for Llama {
    fn spec(&self, hf_config: &Value) -> Result<DecoderSpec> {
        let c = HfConfig {
            v: hf_config,
            arch: "llama",
        };
        c.model_type(&["llama"])?;
        c.require(
            "pretraining_tp",
            &json!(1),
            "tensor-parallel slicing is not implemented",
        )?;
        let spec = DecoderSpec {
            rope_scaling: rope_scaling(&c)?,
            mlp_bias: c.bool_or("mlp_bias", false)?,
            ..c.common_spec(None, 2048)?
        };
        spec.validate()?;
        Ok(spec)
    }

    /// llama.cpp's `llama` files: the common metadata, its tensor names, and q/k rows
    /// un-permuted (llama.cpp's converter permutes them for this architecture only).
    fn gguf(&self, g: &Gguf) -> Result<(DecoderSpec, Weights)> {
        let spec = g.common_spec()?;
        spec.validate()?;
        let (q, kv) = (spec.num_heads, spec.num_kv_heads);
        let weights = g.weights(|name, shape, data| {
            let Some(hf) = llama_cpp_name(name) else {
                return Ok(None);
            };
            let data = unpermute_qk(g, name, &hf, &shape, data, q, kv)?;
            Ok(Some((hf, shape, data)))
        })?;
        Ok((spec, weights))
    }
}
