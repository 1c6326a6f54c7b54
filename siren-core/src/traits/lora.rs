/// Slot `lora-targets`: which linear sites get LoRA adapters.
///
/// Contract: a pure function of the site name (`model.layers.{i}.self_attn.k_proj`,
/// `model.layers.{i}.mlp.up_proj`, ...); `lm_head` and embeddings are never selected.
pub trait LoraTargets: Send + Sync {
    /// Whether the linear site `site` gets an adapter.
    fn select(&self, site: &str) -> bool;
}
