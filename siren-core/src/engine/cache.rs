//! The key/value cache, passed explicitly to every forward call.

use burn::tensor::{Bool, Int, Tensor};

/// Keys and values of every layer for the tokens seen so far, with their padding mask and
/// the next position of each sequence.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    /// Per layer: keys and values `[batch, kv_heads, seen, head_dim]`.
    pub(crate) layers: Vec<Option<(Tensor<4>, Tensor<4>)>>,
    /// `[batch, seen]`, true where the token is padding.
    pub(crate) pad: Option<Tensor<2, Bool>>,
    /// `[batch, 1]`: the position the next token of each sequence takes.
    pub(crate) next_position: Option<Tensor<2, Int>>,
}

impl KvCache {
    /// An empty cache for a model with `num_layers` layers.
    pub fn new(num_layers: usize) -> Self {
        Self {
            layers: vec![None; num_layers],
            pad: None,
            next_position: None,
        }
    }

    /// Number of cached tokens per sequence (including padding).
    pub fn len(&self) -> usize {
        self.pad.as_ref().map(|p| p.dims()[1]).unwrap_or(0)
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
