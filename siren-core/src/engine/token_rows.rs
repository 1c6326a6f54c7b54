//! Trainable token rows (PEFT's "trainable tokens"): the embedding rows (and the rows of an
//! untied `lm_head`) of a few chosen token ids train while the rest of both matrices stays
//! frozen. This is how the new `<answer>`/`</answer>` tokens learn under LoRA, where every base
//! parameter is frozen.
//!
//! The chosen rows live in a small parameter of their own (`[n, hidden]`), initialised from
//! the matrices; the forward pass replaces those ids' embeddings and logit columns by it, as
//! PEFT's `TrainableTokensLayer` does. With tied embeddings the same rows serve both. They save
//! in PEFT's layout next to the LoRA tensors
//! (`base_model.model.model.embed_tokens.token_adapter.trainable_tokens_delta`, and
//! `base_model.model.lm_head.token_adapter.trainable_tokens_delta` for an untied head) with
//! `trainable_token_indices` in `adapter_config.json`, and fold into the matrices when merged.

use burn::module::{Module, Param};
use burn::tensor::{Int, Tensor, TensorData};

use super::decoder::Decoder;
use crate::{CoreError, Result};

/// The trained rows of a few token ids.
#[derive(Module, Debug)]
pub struct TokenRows {
    /// Embedding rows `[n, hidden]` of `ids`, in order.
    pub embed: Param<Tensor<2>>,
    /// Rows `[n, hidden]` of an untied `lm_head` (tied models use `embed` for both).
    pub head: Option<Param<Tensor<2>>>,
    /// The token ids, distinct.
    #[module(skip)]
    pub ids: Vec<u32>,
    /// Whether the rows replace the base ones (off = the base model, like a disabled adapter).
    #[module(skip)]
    pub enabled: bool,
}

impl TokenRows {
    /// `[b, s, n]` one-hot selector of the chosen ids in `ids`.
    fn selector(&self, ids: &Tensor<2, Int>, dtype: burn::tensor::DType) -> Tensor<3> {
        let [b, s] = ids.dims();
        let n = self.ids.len();
        let device = ids.device();
        let chosen: Tensor<3, Int> = Tensor::<1, Int>::from_data(
            TensorData::new(self.ids.iter().map(|&i| i64::from(i)).collect(), [n]),
            &device,
        )
        .reshape([1, 1, n])
        .expand([b, s, n]);
        ids.clone()
            .unsqueeze_dim::<3>(2)
            .expand([b, s, n])
            .equal(chosen)
            .float()
            .cast(dtype)
    }

    /// Token embeddings `x` `[b, s, h]` of `ids` with the chosen ids' rows replaced.
    pub(crate) fn embed(&self, x: Tensor<3>, ids: &Tensor<2, Int>) -> Tensor<3> {
        if !self.enabled {
            return x;
        }
        let sel = self.selector(ids, x.dtype());
        let keep = sel.clone().sum_dim(2).neg().add_scalar(1.0); // [b, s, 1]
        x.mul(keep)
            .add(sel.matmul(self.embed.val().unsqueeze::<3>()))
    }

    /// Logits `[b, t, v]` with the chosen ids' columns recomputed from `hidden` `[b, t, h]`.
    pub(crate) fn logits(&self, logits: Tensor<3>, hidden: Tensor<3>) -> Tensor<3> {
        if !self.enabled {
            return logits;
        }
        let [b, t, v] = logits.dims();
        let n = self.ids.len();
        let device = logits.device();
        let rows = self.head.as_ref().unwrap_or(&self.embed).val();
        let fresh = hidden
            .matmul(rows.transpose().unsqueeze::<3>())
            .cast(logits.dtype()); // [b, t, n]
        let mut onehot = vec![0f32; n * v];
        let mut mask = vec![1f32; v];
        for (k, &id) in self.ids.iter().enumerate() {
            onehot[k * v + id as usize] = 1.0;
            mask[id as usize] = 0.0;
        }
        let place = Tensor::<2>::from_data(TensorData::new(onehot, [n, v]), &device);
        let keep = Tensor::<1>::from_data(TensorData::new(mask, [v]), &device)
            .reshape([1, 1, v])
            .expand([b, t, v]);
        logits.mul(keep).add(fresh.matmul(place.unsqueeze::<3>()))
    }
}

/// Rows `ids` of `w` `[rows, h]` as `[n, h]`.
fn take_rows(w: Tensor<2>, ids: &[u32]) -> Tensor<2> {
    let device = w.device();
    let idx = Tensor::<1, Int>::from_data(
        TensorData::new(ids.iter().map(|&i| i64::from(i)).collect(), [ids.len()]),
        &device,
    );
    w.select(0, idx)
}

/// `w` `[rows, h]` with rows `ids` set to `values` `[n, h]`.
fn put_rows(w: Tensor<2>, ids: &[u32], values: Tensor<2>) -> Tensor<2> {
    let mut w = w;
    let [_, h] = values.dims();
    for (k, &id) in ids.iter().enumerate() {
        let i = id as usize;
        w = w.slice_assign([i..i + 1, 0..h], values.clone().narrow(0, k, 1));
    }
    w
}

impl Decoder {
    /// Makes the embedding rows (and untied `lm_head` rows) of `ids` trainable on their own,
    /// starting from their current values; every other parameter keeps its state. Ids out of
    /// the vocabulary or repeated are an error.
    pub fn train_token_rows(self, ids: &[u32]) -> Result<Self> {
        let v = self.spec.vocab_size;
        let mut seen = std::collections::BTreeSet::new();
        for &id in ids {
            if id as usize >= v || !seen.insert(id) {
                return Err(CoreError::Data(format!(
                    "trainable token ids must be distinct and below the vocabulary size {v} \
                     (got {ids:?})"
                )));
            }
        }
        if ids.is_empty() {
            return Ok(self);
        }
        let embed = take_rows(self.embed_tokens.weight.val().detach(), ids);
        let head = self
            .lm_head
            .as_ref()
            .map(|h| take_rows(h.weight.val().detach().transpose(), ids));
        self.with_token_rows(ids.to_vec(), embed, head)
    }

    /// Attaches token rows with the given values (`[n, hidden]` each).
    pub(crate) fn with_token_rows(
        mut self,
        ids: Vec<u32>,
        embed: Tensor<2>,
        head: Option<Tensor<2>>,
    ) -> Result<Self> {
        let h = self.spec.hidden_size;
        let n = ids.len();
        for (what, t) in
            std::iter::once(("embedding", &embed)).chain(head.iter().map(|t| ("lm_head", t)))
        {
            if t.dims() != [n, h] {
                return Err(CoreError::Data(format!(
                    "trainable {what} rows have shape {:?}; expected [{n}, {h}] for ids {ids:?}",
                    t.dims()
                )));
            }
        }
        if head.is_some() != self.lm_head.is_some() {
            return Err(CoreError::Data(
                "trainable lm_head rows need an untied lm_head (and an untied lm_head needs them)"
                    .into(),
            ));
        }
        self.token_rows = Some(TokenRows {
            embed: Param::from_tensor(embed),
            head: head.map(Param::from_tensor),
            ids,
            enabled: true,
        });
        Ok(self)
    }

    /// Writes the trained token rows into the embedding (and `lm_head`) and drops them.
    pub fn merge_token_rows(mut self) -> Self {
        let Some(tr) = self.token_rows.take() else {
            return self;
        };
        if !tr.enabled {
            return self;
        }
        let e = self.embed_tokens.weight.val().detach();
        let grad = e.is_require_grad();
        self.embed_tokens.weight =
            Param::from_tensor(put_rows(e, &tr.ids, tr.embed.val().detach()))
                .set_require_grad(grad);
        if let Some(head) = self.lm_head.as_mut() {
            let rows = tr.head.as_ref().unwrap_or(&tr.embed).val().detach();
            let w = head.weight.val().detach();
            let g = w.is_require_grad();
            head.weight = Param::from_tensor(put_rows(w.transpose(), &tr.ids, rows).transpose())
                .set_require_grad(g);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::Batch;
    use crate::testkit::tiny_decoder;
    use burn::tensor::{Device, Tensor};

    fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.try_into_vec_as::<f32>().unwrap()
    }

    #[test]
    fn rows_replace_the_base_rows_and_merge_exactly() {
        let device = Device::flex();
        let model = tiny_decoder(5, &device).unwrap();
        let batch = Batch::left_padded(&[vec![6, 12, 7], vec![12, 3]], 0, &device).unwrap();
        let base = host(model.forward(&batch, None, false).logits);
        // Untouched rows: the same outputs.
        let model = model.train_token_rows(&[12, 3]).unwrap();
        let same = host(model.forward(&batch, None, false).logits);
        for (a, b) in base.iter().zip(&same) {
            assert!((a - b).abs() < 1e-5);
        }
        // Changed rows change the outputs, and merging gives the same outputs without them.
        let mut model = model;
        let tr = model.token_rows.as_mut().unwrap();
        tr.embed = burn::module::Param::from_tensor(tr.embed.val().add_scalar(0.5));
        if let Some(h) = tr.head.as_mut() {
            *h = burn::module::Param::from_tensor(h.val().mul_scalar(-1.0));
        }
        let moved = host(model.forward(&batch, None, false).logits);
        assert!(moved.iter().zip(&base).any(|(a, b)| (a - b).abs() > 1e-3));
        let merged = model.merge_token_rows();
        assert!(merged.token_rows.is_none());
        let after = host(merged.forward(&batch, None, false).logits);
        for (a, b) in moved.iter().zip(&after) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        assert!(
            tiny_decoder(5, &device)
                .unwrap()
                .train_token_rows(&[3, 3])
                .is_err()
        );
    }
}
