//! The key/value cache, passed explicitly to every forward call.

use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

/// One layer's cached keys and values `[batch, kv_heads, capacity, head_dim]`, of which the
/// first `len` positions are filled. Without spare room (`len` = capacity) each new token is
/// appended by concatenation, which copies the whole cache; with room
/// ([`KvCache::reserve`]) it is written in place.
#[derive(Debug, Clone)]
pub struct LayerKv {
    pub(crate) k: Tensor<4>,
    pub(crate) v: Tensor<4>,
    pub(crate) len: usize,
}

impl LayerKv {
    /// Appends `k`, `v` (`[b, kv, s, hd]`) along the sequence and returns the filled keys and
    /// values (cached + new).
    pub(crate) fn extend(
        slot: &mut Option<LayerKv>,
        k: Tensor<4>,
        v: Tensor<4>,
    ) -> (Tensor<4>, Tensor<4>) {
        let s = k.dims()[2];
        let layer = match slot.take() {
            Some(mut l) if l.len + s <= l.k.dims()[2] => {
                // In place: the cache holds the only reference to its buffer once the views
                // of the previous step are gone.
                let [b, h, _, d] = k.dims();
                let at = [0..b, 0..h, l.len..l.len + s, 0..d];
                l.k = l.k.slice_assign(at.clone(), k);
                l.v = l.v.slice_assign(at, v);
                l.len += s;
                l
            }
            Some(l) => {
                let len = l.len + s;
                LayerKv {
                    k: Tensor::cat(vec![l.k.narrow(2, 0, l.len), k], 2),
                    v: Tensor::cat(vec![l.v.narrow(2, 0, l.len), v], 2),
                    len,
                }
            }
            None => LayerKv { k, v, len: s },
        };
        let out = layer.filled();
        *slot = Some(layer);
        out
    }

    /// The filled keys and values, `[b, kv, len, hd]` (views on the cache's buffers).
    fn filled(&self) -> (Tensor<4>, Tensor<4>) {
        if self.len == self.k.dims()[2] {
            (self.k.clone(), self.v.clone())
        } else {
            (
                self.k.clone().narrow(2, 0, self.len),
                self.v.clone().narrow(2, 0, self.len),
            )
        }
    }
}

/// Keys and values of every layer for the tokens seen so far, with their padding mask and
/// the next position of each sequence.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    /// Per layer: keys and values `[batch, kv_heads, seen (+ spare room), head_dim]`.
    pub(crate) layers: Vec<Option<LayerKv>>,
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

    /// Makes room for `extra` more tokens per sequence in every layer, so that appending them
    /// writes in place instead of copying the whole cache at each token (generation knows its
    /// bound: `max_new_tokens`). The cached values are unchanged; a forward on an autodiff
    /// device should not use a reserved cache (the in-place writes are not part of a graph).
    pub fn reserve(&mut self, extra: usize) {
        for l in self.layers.iter_mut().flatten() {
            let cap = l.k.dims()[2];
            if cap - l.len >= extra {
                continue;
            }
            let [b, h, _, d] = l.k.dims();
            let grow = |t: &Tensor<4>| {
                let room = Tensor::<4>::zeros([b, h, extra, d], &t.device()).cast(t.dtype());
                Tensor::cat(vec![t.clone().narrow(2, 0, l.len), room], 2)
            };
            l.k = grow(&l.k);
            l.v = grow(&l.v);
        }
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
                    l.as_ref().map(|l| LayerKv {
                        k: l.k.clone().select(0, idx.clone()),
                        v: l.v.clone().select(0, idx.clone()),
                        len: l.len,
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
