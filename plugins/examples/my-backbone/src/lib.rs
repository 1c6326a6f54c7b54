//! A third-party `backbone`: Mistral (HF `MistralForCausalLM`, `model_type = "mistral"`).
//!
//! Mistral is the Llama layer (RMSNorm, RoPE, grouped-query attention, SwiGLU) with attention
//! limited to a sliding window of `sliding_window` positions. The shared engine attends to every
//! earlier position, which is the same thing whenever the window is at least the context
//! (`sliding_window >= max_position_embeddings`, or no window, as Mistral v0.2 and later ship);
//! a shorter window is refused, naming the key. Everything else is read with the toolkit the
//! built-in backbones use ([`siren_backbones::HfConfig`]); nothing in the engine knows of this file.
//!
//! It registers under the name HF writes as `model_type`, so `[model] path = "<mistral folder>"`
//! finds it without `backbone = ...`, in any binary that links this crate (`use my_backbone as _;`).
use serde_json::Value;
use siren_backbones::HfConfig;
use siren_core::engine::DecoderSpec;
use siren_core::traits::Backbone;
use siren_core::{Plugin, Result};

/// No parameters.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {}

/// The `mistral` backbone.
pub struct Mistral;

impl Plugin for Mistral {
    type Params = Params;
    const SUMMARY: &'static str = "Mistral architecture (HF MistralForCausalLM; windows as long as the context)";
    fn from_params(_: Params) -> Result<Self> {
        Ok(Self)
    }
}

siren_core::register_backbone!("mistral", Mistral);

impl Backbone for Mistral {
    fn spec(&self, hf_config: &Value) -> Result<DecoderSpec> {
        let c = HfConfig { v: hf_config, arch: "mistral" };
        c.model_type(&["mistral"])?;
        if let Some((key, _)) = c.rope_scaling_section() {
            return Err(c.err(key, "RoPE scaling is not implemented for mistral"));
        }
        let spec = c.common_spec(None, 32768)?;
        if let Some(window) = c.v.get("sliding_window").filter(|w| !w.is_null()) {
            let w = c.usize("sliding_window")?;
            if w < spec.max_position_embeddings {
                return Err(c.err(
                    "sliding_window",
                    format!(
                        "{window} is shorter than max_position_embeddings {}: sliding-window attention is not implemented",
                        spec.max_position_embeddings
                    ),
                ));
            }
        }
        spec.validate()?;
        Ok(spec)
    }
}
