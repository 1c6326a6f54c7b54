//! `qwen3`: Qwen3 dense checkpoints (`model_type = "qwen3"`): per-head q/k RMSNorm, explicit
//! `head_dim`. Sliding-window attention and RoPE scaling are rejected.

use serde::Deserialize;
use serde_json::{Value, json};
use siren_core::engine::gguf::{Gguf, llama_cpp_name};
use siren_core::engine::{DecoderSpec, Weights};
use siren_core::traits::Backbone;
use siren_core::{CoreError, Plugin, Result};

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
            "use_sliding_window",
            &json!(false),
            "sliding-window attention is not implemented",
        )?;
        if let Some((key, _)) = c.rope_scaling_section() {
            return Err(CoreError::config(
                format!("qwen3 config.json `{key}`"),
                "RoPE scaling (YaRN) is not implemented for qwen3",
            ));
        }
        let spec = DecoderSpec {
            qk_norm: true,
            ..c.common_spec(Some(128), 32768)?
        };
        spec.validate()?;
        Ok(spec)
    }

    /// llama.cpp's `qwen3` files: the common metadata with per-head q/k norm, and its tensor
    /// names (no permuted rows).
    fn gguf(&self, g: &Gguf) -> Result<(DecoderSpec, Weights)> {
        let spec = DecoderSpec {
            qk_norm: true,
            ..g.common_spec()?
        };
        spec.validate()?;
        let weights =
            g.weights(|name, shape, data| Ok(llama_cpp_name(name).map(|hf| (hf, shape, data))))?;
        Ok((spec, weights))
    }
}
