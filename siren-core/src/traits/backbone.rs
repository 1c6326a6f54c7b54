use crate::Result;

pub use crate::engine::DecoderSpec;

/// Slot `backbone`: adapts one HF architecture to the shared decoder engine.
///
/// Contract: [`Backbone::spec`] accepts the architecture's HF `config.json` and rejects options
/// the engine does not implement (e.g. sliding-window attention) with an error naming the key;
/// [`Backbone::tensor_name`] maps an engine site name (`layers.3.self_attn.k_proj.weight`) to the
/// checkpoint's tensor name.
pub trait Backbone: Send + Sync {
    /// Parses HF `config.json`.
    fn spec(&self, hf_config: &serde_json::Value) -> Result<DecoderSpec>;
    /// Checkpoint tensor name of an engine tensor (engine names follow HF Llama:
    /// `model.layers.3.self_attn.k_proj.weight`); the identity for HF-style checkpoints.
    fn tensor_name(&self, engine_name: &str) -> String {
        engine_name.to_string()
    }
    /// Default chat template (Jinja), used when the checkpoint has none.
    fn default_chat_template(&self) -> Option<&'static str>;
}
