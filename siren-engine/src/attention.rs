//! Grouped-query self-attention with RoPE, optional Qwen3 q/k RMSNorm, and a KV cache.

use burn::module::Module;
use burn::nn::RmsNorm;
use burn::tensor::activation::softmax;
use burn::tensor::{Bool, DType, Tensor};

use super::cache::LayerKv;
use super::lora::LoraLinear;
use super::rope;

/// Score given to masked positions (finite, so fully masked padding rows stay finite).
const MASKED: f32 = -1.0e9;

/// One attention block; field names mirror HF (`self_attn.q_proj`, ...).
#[derive(Module, Debug)]
pub struct Attention {
    /// Query projection.
    pub q_proj: LoraLinear,
    /// Key projection.
    pub k_proj: LoraLinear,
    /// Value projection.
    pub v_proj: LoraLinear,
    /// Output projection.
    pub o_proj: LoraLinear,
    /// Per-head query norm (Qwen3).
    pub q_norm: Option<RmsNorm>,
    /// Per-head key norm (Qwen3).
    pub k_norm: Option<RmsNorm>,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads.
    pub num_kv_heads: usize,
    /// Head width.
    pub head_dim: usize,
}

impl Attention {
    /// Keys and values of `x` `[b, s, hidden]` (k-norm and RoPE applied), `[b, kv, s, hd]`.
    fn keys_values(
        &self,
        x: Tensor<3>,
        cos: &Tensor<4>,
        sin: &Tensor<4>,
    ) -> (Tensor<4>, Tensor<4>) {
        let [b, s, _] = x.dims();
        let (nkv, hd) = (self.num_kv_heads, self.head_dim);
        let k = self.k_proj.forward(x.clone()).reshape([b, s, nkv, hd]);
        let v = self.v_proj.forward(x).reshape([b, s, nkv, hd]);
        let k = match &self.k_norm {
            Some(n) => n.forward(k),
            None => k,
        };
        (rope::apply(k.swap_dims(1, 2), cos, sin), v.swap_dims(1, 2))
    }

    /// Appends the keys and values of `x` to this layer's cache slot without computing the
    /// attention output (a prefix whose outputs nothing reads).
    pub fn append_kv(
        &self,
        x: Tensor<3>,
        cos: &Tensor<4>,
        sin: &Tensor<4>,
        slot: &mut Option<LayerKv>,
    ) {
        let (k, v) = self.keys_values(x, cos, sin);
        LayerKv::extend(slot, k, v);
    }

    /// `x` `[b, s, hidden]`; `mask` `[b, 1, s, t]` (true = masked) over the `t` keys (cached +
    /// new); `past` is this layer's cache slot, extended in place when given.
    pub fn forward(
        &self,
        x: Tensor<3>,
        cos: &Tensor<4>,
        sin: &Tensor<4>,
        mask: &Tensor<4, Bool>,
        past: Option<&mut Option<LayerKv>>,
    ) -> Tensor<3> {
        let [b, s, _] = x.dims();
        let (nh, nkv, hd) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let q = self.q_proj.forward(x.clone()).reshape([b, s, nh, hd]);
        let q = match &self.q_norm {
            Some(n) => n.forward(q),
            None => q,
        };
        let q = rope::apply(q.swap_dims(1, 2), cos, sin);
        let (k, v) = self.keys_values(x, cos, sin);
        let (k, v) = match past {
            Some(slot) => LayerKv::extend(slot, k, v),
            None => (k, v),
        };
        let t = k.dims()[2];
        let rep = nh / nkv;
        let dtype = q.dtype();
        // Grouped-query attention without copying keys and values per query head: the query
        // heads of one kv head (HF's `repeat_kv` order: head = kv·rep + r) are stacked along
        // the rows, `[b, kv, rep·s, hd]`, against that head's `[b, kv, t, hd]` keys. The
        // scale goes on the queries (smaller than the scores once t > hd).
        let q = q
            .mul_scalar(1.0 / (hd as f64).sqrt())
            .reshape([b, nkv, rep * s, hd]);
        // Scores and softmax in f32 whatever the model's float type (HF does the same).
        let scores = q
            .matmul(k.swap_dims(2, 3))
            .cast(DType::F32)
            .reshape([b, nkv, rep, s, t]);
        let masked = mask
            .clone()
            .reshape([b, 1, 1, s, t])
            .expand([b, nkv, rep, s, t]);
        let scores = scores.mask_fill(masked, MASKED);
        let probs = softmax(scores, 4).reshape([b, nkv, rep * s, t]).cast(dtype);
        let out = probs.matmul(v).reshape([b, nh, s, hd]); // [b, nh, s, hd]
        self.o_proj
            .forward(out.swap_dims(1, 2).reshape([b, s, nh * hd]))
    }
}
