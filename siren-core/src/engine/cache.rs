//! The key/value cache, passed explicitly to every forward call.

use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

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

    /// Records that `batch` was appended: `pad` is the padding of every cached key (old and
    /// new), and each sequence continues after the batch's last position.
    pub(crate) fn advance(&mut self, pad: Tensor<2, Bool>, batch: &super::Batch) {
        let s = batch.ids.dims()[1];
        self.pad = Some(pad);
        self.next_position = Some(batch.positions.clone().narrow(1, s - 1, 1).add_scalar(1));
    }

    /// Number of cached tokens per sequence (including padding).
    pub fn len(&self) -> usize {
        self.pad.as_ref().map(|p| p.dims()[1]).unwrap_or(0)
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of cached sequences.
    pub fn rows(&self) -> usize {
        self.pad.as_ref().map(|p| p.dims()[0]).unwrap_or(0)
    }

    /// A cache whose row `i` is row `rows[i]` of this one: a prefix computed once, fanned out
    /// to each of its continuations. On an autodiff device the gradients of every copy flow
    /// back into the one computed prefix.
    pub fn select_rows(&self, rows: &[usize], device: &Device) -> Self {
        let idx = Tensor::<1, Int>::from_data(
            TensorData::new(rows.iter().map(|&r| r as i64).collect(), [rows.len()]),
            device,
        );
        Self {
            layers: self
                .layers
                .iter()
                .map(|l| {
                    l.as_ref().map(|(k, v)| {
                        (
                            k.clone().select(0, idx.clone()),
                            v.clone().select(0, idx.clone()),
                        )
                    })
                })
                .collect(),
            // Through ints: a selected bool tensor comes back as bytes on some backends.
            pad: self
                .pad
                .as_ref()
                .map(|p| p.clone().int().select(0, idx.clone()).bool()),
            next_position: self
                .next_position
                .as_ref()
                .map(|p| p.clone().select(0, idx.clone())),
        }
    }
}
