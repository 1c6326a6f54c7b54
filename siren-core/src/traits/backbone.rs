use crate::Result;

/// Architecture-independent shape of a decoder-only transformer, produced by a [`Backbone`]
/// from a HF `config.json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DecoderSpec {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// SwiGLU inner width.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_layers: usize,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads (grouped-query attention).
    pub num_kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE base.
    pub rope_theta: f64,
    /// Maximum positions.
    pub max_position_embeddings: usize,
    /// lm_head shares the embedding matrix.
    pub tie_word_embeddings: bool,
    /// q/k/v projections have biases.
    pub attention_bias: bool,
    /// Per-head RMSNorm on queries and keys (Qwen3).
    pub qk_norm: bool,
}

/// Slot `backbone`: adapts one HF architecture to the shared decoder engine.
///
/// Contract: [`Backbone::spec`] accepts the architecture's HF `config.json` and rejects options
/// the engine does not implement (e.g. sliding-window attention) with an error naming the key;
/// [`Backbone::tensor_name`] maps an engine site name (`layers.3.self_attn.k_proj.weight`) to the
/// checkpoint's tensor name.
pub trait Backbone: Send + Sync {
    /// Parses HF `config.json`.
    fn spec(&self, hf_config: &serde_json::Value) -> Result<DecoderSpec>;
    /// Checkpoint tensor name of an engine site.
    fn tensor_name(&self, site: &str) -> String;
    /// Default chat template (Jinja), used when the checkpoint has none.
    fn default_chat_template(&self) -> Option<&'static str>;
}
