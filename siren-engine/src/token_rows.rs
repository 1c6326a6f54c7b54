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
pub(crate) fn take_rows(w: Tensor<2>, ids: &[u32]) -> Tensor<2> {
    let device = w.device();
    let idx = Tensor::<1, Int>::from_data(
        TensorData::new(ids.iter().map(|&i| i64::from(i)).collect(), [ids.len()]),
        &device,
    );
    w.select(0, idx)
}

/// `w` `[rows, h]` with rows `ids` set to `values` `[n, h]`.
pub(crate) fn put_rows(w: Tensor<2>, ids: &[u32], values: Tensor<2>) -> Tensor<2> {
    let mut w = w;
    let [_, h] = values.dims();
    for (k, &id) in ids.iter().enumerate() {
        let i = id as usize;
        w = w.slice_assign([i..i + 1, 0..h], values.clone().narrow(0, k, 1));
    }
    w
}

#[cfg(test)]
mod tests {
    use crate::Batch;
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
