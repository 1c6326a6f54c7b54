use crate::Result;

pub use crate::engine::DecoderSpec;
use crate::engine::Weights;
use crate::engine::gguf::Gguf;

/// Slot `backbone`: adapts one architecture to the shared decoder engine. Everything the
/// engine needs to know about the architecture comes from here: the decoder spec read from
/// HF `config.json`, and, for GGUF files, the spec read from the file's metadata with the
/// tensors under HF names and any fix-ups the architecture's converter calls for. Backbones
/// register under the name HF writes as `model_type` (and llama.cpp as `general.architecture`),
/// so a model folder or GGUF file finds its backbone without being told.
///
/// Contract: [`Backbone::spec`] accepts the architecture's HF `config.json` and rejects options
/// the engine does not implement (e.g. sliding-window attention) with an error naming the key;
/// tensors are named as HF names them for the architecture (Llama-style names:
/// `model.layers.3.self_attn.k_proj.weight`).
pub trait Backbone: Send + Sync {
    /// Parses HF `config.json`.
    fn spec(&self, hf_config: &serde_json::Value) -> Result<DecoderSpec>;

    /// Reads a GGUF file whose `general.architecture` names this backbone: the decoder spec
    /// (from [`Gguf::common_spec`] and the architecture's own facts) and every tensor under
    /// its HF name (through [`Gguf::weights`]). The default refuses: the backbone reads HF
    /// folders only.
    fn gguf(&self, file: &Gguf) -> Result<(DecoderSpec, Weights)> {
        Err(crate::CoreError::config(
            file.path().display().to_string(),
            format!(
                "GGUF architecture `{}` has a backbone that reads HF model folders only",
                file.architecture()?
            ),
        ))
    }
}
