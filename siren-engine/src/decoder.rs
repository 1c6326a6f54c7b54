//! The decoder module: embeddings, layers, final norm, `lm_head`.

use burn::module::{Module, ModuleMapper, Param};
use burn::nn::{Embedding, Linear, RmsNorm};
use burn::tensor::activation::silu;
use burn::tensor::{Bool, DType, Device, FloatDType, Int, Tensor, TensorData};

use super::attention::Attention;
use super::cache::KvCache;
use super::config::DecoderSpec;
use super::lora::{LoraLinear, fold_matmul, linear_forward};
use super::rope;
use super::token_rows::TokenRows;
use super::weights::Weights;
use crate::{EngineError, Result};

/// SwiGLU feed-forward: `down(silu(gate(x)) · up(x))`.
#[derive(Module, Debug)]
pub struct Mlp {
    /// Gate projection.
    pub gate_proj: LoraLinear,
    /// Up projection.
    pub up_proj: LoraLinear,
    /// Down projection.
    pub down_proj: LoraLinear,
}

impl Mlp {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let g = silu(self.gate_proj.forward(x.clone()));
        self.down_proj.forward(g.mul(self.up_proj.forward(x)))
    }
}

/// One pre-norm decoder layer.
#[derive(Module, Debug)]
pub struct DecoderLayer {
    /// Self-attention.
    pub self_attn: Attention,
    /// Feed-forward.
    pub mlp: Mlp,
    /// Norm before attention.
    pub input_layernorm: RmsNorm,
    /// Norm before the MLP.
    pub post_attention_layernorm: RmsNorm,
}

/// A decoder-only transformer (HF Llama layout; Qwen3 adds q/k norms).
#[derive(Module, Debug)]
pub struct Decoder {
    /// Token embeddings `[vocab, hidden]`.
    pub embed_tokens: Embedding,
    /// Decoder layers.
    pub layers: Vec<DecoderLayer>,
    /// Final norm.
    pub norm: RmsNorm,
    /// Output projection; `None` when tied to the embeddings.
    pub lm_head: Option<Linear>,
    /// Embedding (and untied `lm_head`) rows trained on their own (see `token_rows.rs`).
    pub token_rows: Option<TokenRows>,
    /// RoPE inverse frequencies.
    pub inv_freq: Vec<f32>,
    /// The configuration.
    #[module(skip)]
    pub spec: DecoderSpec,
}

/// A batch of token sequences, left-padded to one length.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Token ids `[batch, seq]`.
    pub ids: Tensor<2, Int>,
    /// `[batch, seq]`, true where the token is padding.
    pub pad: Tensor<2, Bool>,
    /// Position of each token `[batch, seq]` (0 for padding).
    pub positions: Tensor<2, Int>,
}

impl Batch {
    /// Left-pads `seqs` with `pad_id`; positions count real tokens from 0 (HF's
    /// `cumsum(mask) - 1`). Empty sequences are an error.
    pub fn left_padded(seqs: &[Vec<u32>], pad_id: u32, device: &Device) -> Result<Self> {
        Self::left_padded_from(seqs, pad_id, &vec![0; seqs.len()], device)
    }

    /// As [`Batch::left_padded`], with the first real token of sequence `i` at position
    /// `start[i]` (continuing a cached prefix).
    pub fn left_padded_from(
        seqs: &[Vec<u32>],
        pad_id: u32,
        start: &[i64],
        device: &Device,
    ) -> Result<Self> {
        if seqs.is_empty() || seqs.iter().any(|s| s.is_empty()) {
            return Err(EngineError::Data(
                "a batch needs at least one non-empty sequence each".into(),
            ));
        }
        let b = seqs.len();
        let s = seqs.iter().map(Vec::len).max().unwrap_or(0);
        let (mut ids, mut pad, mut pos) = (
            Vec::with_capacity(b * s),
            Vec::with_capacity(b * s),
            Vec::with_capacity(b * s),
        );
        for (row, seq) in seqs.iter().enumerate() {
            let n_pad = s - seq.len();
            for k in 0..s {
                if k < n_pad {
                    ids.push(i64::from(pad_id));
                    pad.push(true);
                    pos.push(0i64);
                } else {
                    ids.push(i64::from(seq[k - n_pad]));
                    pad.push(false);
                    pos.push(start[row] + (k - n_pad) as i64);
                }
            }
        }
        Ok(Self {
            ids: Tensor::from_data(TensorData::new(ids, [b, s]), device),
            pad: Tensor::from_data(TensorData::new(pad, [b, s]), device),
            positions: Tensor::from_data(TensorData::new(pos, [b, s]), device),
        })
    }
}

/// What every forward pass starts from.
struct Inputs {
    x: Tensor<3>,
    mask: Tensor<4, Bool>,
    cos: Tensor<4>,
    sin: Tensor<4>,
    pad: Tensor<2, Bool>,
}

/// Logits and (optionally) hidden states of a forward pass.
#[derive(Debug, Clone)]
pub struct ForwardOutput {
    /// `[batch, seq, vocab]`.
    pub logits: Tensor<3>,
    /// HF `output_hidden_states`: `L + 1` tensors `[batch, seq, hidden]` — the embeddings,
    /// layers `1..L-1`, and the final-normed output of layer `L`. Empty unless asked for.
    pub hidden_states: Vec<Tensor<3>>,
}

fn lora_linear(
    w: &mut Weights,
    name: &str,
    out: usize,
    inp: usize,
    bias: bool,
    device: &Device,
) -> Result<LoraLinear> {
    Ok(LoraLinear::new(w.linear(name, out, inp, bias, device)?))
}

fn rms(w: &mut Weights, name: &str, dim: usize, eps: f64, device: &Device) -> Result<RmsNorm> {
    Ok(RmsNorm {
        gamma: Param::from_tensor(w.take(&format!("{name}.weight"), [dim], device)?),
        epsilon: eps,
    })
}

impl Decoder {
    /// Builds the model from checkpoint tensors with HF Llama names (`model.embed_tokens.weight`,
    /// `model.layers.{i}.self_attn.q_proj.weight`, ...). Missing tensors and shape mismatches
    /// are errors naming the tensor.
    pub fn from_weights(spec: DecoderSpec, w: &mut Weights, device: &Device) -> Result<Self> {
        spec.validate()?;
        let (h, hd, eps) = (spec.hidden_size, spec.head_dim, spec.rms_norm_eps);
        let (nh, nkv, ff) = (spec.num_heads, spec.num_kv_heads, spec.intermediate_size);
        let embed = w.take("model.embed_tokens.weight", [spec.vocab_size, h], device)?;
        let mut layers = Vec::with_capacity(spec.num_layers);
        for i in 0..spec.num_layers {
            let p = format!("model.layers.{i}");
            let ab = spec.attention_bias;
            let self_attn = Attention {
                q_proj: lora_linear(w, &format!("{p}.self_attn.q_proj"), nh * hd, h, ab, device)?,
                k_proj: lora_linear(w, &format!("{p}.self_attn.k_proj"), nkv * hd, h, ab, device)?,
                v_proj: lora_linear(w, &format!("{p}.self_attn.v_proj"), nkv * hd, h, ab, device)?,
                o_proj: lora_linear(
                    w,
                    &format!("{p}.self_attn.o_proj"),
                    h,
                    nh * hd,
                    false,
                    device,
                )?,
                q_norm: if spec.qk_norm {
                    Some(rms(w, &format!("{p}.self_attn.q_norm"), hd, eps, device)?)
                } else {
                    None
                },
                k_norm: if spec.qk_norm {
                    Some(rms(w, &format!("{p}.self_attn.k_norm"), hd, eps, device)?)
                } else {
                    None
                },
                num_heads: nh,
                num_kv_heads: nkv,
                head_dim: hd,
            };
            let mb = spec.mlp_bias;
            let mlp = Mlp {
                gate_proj: lora_linear(w, &format!("{p}.mlp.gate_proj"), ff, h, mb, device)?,
                up_proj: lora_linear(w, &format!("{p}.mlp.up_proj"), ff, h, mb, device)?,
                down_proj: lora_linear(w, &format!("{p}.mlp.down_proj"), h, ff, mb, device)?,
            };
            layers.push(DecoderLayer {
                self_attn,
                mlp,
                input_layernorm: rms(w, &format!("{p}.input_layernorm"), h, eps, device)?,
                post_attention_layernorm: rms(
                    w,
                    &format!("{p}.post_attention_layernorm"),
                    h,
                    eps,
                    device,
                )?,
            });
        }
        let norm = rms(w, "model.norm", h, eps, device)?;
        let lm_head = if spec.tie_word_embeddings {
            None
        } else {
            Some(w.linear("lm_head", spec.vocab_size, h, false, device)?)
        };
        Ok(Self {
            embed_tokens: Embedding {
                weight: Param::from_tensor(embed),
            },
            layers,
            norm,
            lm_head,
            token_rows: None,
            inv_freq: rope::inverse_frequencies(&spec),
            spec,
        })
    }

    /// The float type of the parameters (and of activations and hidden states).
    pub fn float_dtype(&self) -> DType {
        self.embed_tokens.weight.val().dtype()
    }

    /// Casts every parameter to `dtype` (`F32`, `BF16`, `F16`): activations and hidden states
    /// follow; attention softmax and RMSNorm statistics stay in f32 and logits are returned
    /// in f32 (as HF transformers does). A device without arithmetic in `dtype` is an error.
    pub fn to_float_dtype(self, dtype: FloatDType) -> Result<Self> {
        let device = self.embed_tokens.weight.val().device();
        if !device.supports_dtype(dtype) {
            return Err(EngineError::Device {
                name: format!("{device:?}"),
                reason: format!("no {dtype:?} arithmetic on this device; use f32"),
            });
        }
        struct Cast(FloatDType);
        impl ModuleMapper for Cast {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
                let to = self.0;
                param.map(|t| t.cast(to))
            }
        }
        Ok(self.map(&mut Cast(dtype)))
    }

    /// Embeddings, attention mask (causal and padding, over cached + new keys), RoPE tables and
    /// the padding of every key, for `batch` continuing `cache`.
    fn inputs(&self, batch: &Batch, cache: Option<&KvCache>) -> Inputs {
        let device = batch.ids.device();
        let [b, s] = batch.ids.dims();
        let pad = match cache {
            Some(KvCache { pad: Some(p), .. }) => {
                Tensor::cat(vec![p.clone(), batch.pad.clone()], 1)
            }
            _ => batch.pad.clone(),
        };
        let t = pad.dims()[1];
        let causal = Tensor::<2, Bool>::tril_mask([s, t], (t - s) as i64, &device)
            .reshape([1, 1, s, t])
            .expand([b, 1, s, t]);
        let mask = causal.bool_or(pad.clone().reshape([b, 1, 1, t]).expand([b, 1, s, t]));
        let mut x = self.embed_tokens.forward(batch.ids.clone());
        if let Some(tr) = &self.token_rows {
            x = tr.embed(x, &batch.ids);
        }
        let dtype = x.dtype();
        let (cos, sin) = rope::tables(&self.inv_freq, batch.positions.clone(), &device);
        Inputs {
            x,
            mask,
            cos: cos.cast(dtype),
            sin: sin.cast(dtype),
            pad,
        }
    }

    /// Fills `cache` with the keys and values of `batch` (continuing what it holds) and
    /// computes nothing else: no logits, and no output of the last layer, which nothing would
    /// read (on an autodiff device such unread results would stay in the graph).
    pub fn prefill(&self, batch: &Batch, cache: &mut KvCache) {
        let Inputs {
            mut x,
            mask,
            cos,
            sin,
            pad,
        } = self.inputs(batch, Some(cache));
        let n = self.layers.len();
        cache.layers.resize(n, None);
        for (i, layer) in self.layers.iter().enumerate() {
            let h = layer.input_layernorm.forward(x.clone());
            if i + 1 == n {
                layer
                    .self_attn
                    .append_kv(h, &cos, &sin, &mut cache.layers[i]);
                break;
            }
            let a = layer
                .self_attn
                .forward(h, &cos, &sin, &mask, Some(&mut cache.layers[i]));
            x = x.add(a);
            let m = layer
                .mlp
                .forward(layer.post_attention_layernorm.forward(x.clone()));
            x = x.add(m);
        }
        cache.advance(pad, batch);
    }

    /// Runs the model on `batch`. With a cache, the batch continues the cached tokens (its
    /// positions must continue theirs) and the cache is extended.
    pub fn forward(
        &self,
        batch: &Batch,
        cache: Option<&mut KvCache>,
        hidden: bool,
    ) -> ForwardOutput {
        self.forward_tail(batch, cache, hidden, usize::MAX)
    }

    /// [`Decoder::forward`] with logits only for the last `tail` positions (`[batch,
    /// min(tail, seq), vocab]`): generation needs one, log-probs of a completion its length.
    /// The output projection is the largest matrix of a small model, so skipping it on the
    /// prompt saves a large share of the work.
    pub fn forward_tail(
        &self,
        batch: &Batch,
        mut cache: Option<&mut KvCache>,
        hidden: bool,
        tail: usize,
    ) -> ForwardOutput {
        let [_, s] = batch.ids.dims();
        let Inputs {
            mut x,
            mask,
            cos,
            sin,
            pad,
        } = self.inputs(batch, cache.as_deref());
        let mut hidden_states = Vec::new();
        if hidden {
            hidden_states.push(x.clone());
        }
        let n = self.layers.len();
        if let Some(c) = cache.as_deref_mut() {
            c.layers.resize(n, None);
        }
        for (i, layer) in self.layers.iter().enumerate() {
            let slot = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            let a = layer.self_attn.forward(
                layer.input_layernorm.forward(x.clone()),
                &cos,
                &sin,
                &mask,
                slot,
            );
            x = x.add(a);
            let m = layer
                .mlp
                .forward(layer.post_attention_layernorm.forward(x.clone()));
            x = x.add(m);
            if hidden && i + 1 < n {
                hidden_states.push(x.clone());
            }
        }
        let x = self.norm.forward(x);
        if hidden {
            hidden_states.push(x.clone());
        }
        let x = if tail < s {
            x.narrow(1, s - tail, tail)
        } else {
            x
        };
        let mut logits = match &self.lm_head {
            Some(head) => linear_forward(head, x.clone()),
            None => fold_matmul(x.clone(), self.embed_tokens.weight.val().transpose()),
        };
        if let Some(tr) = &self.token_rows {
            logits = tr.logits(logits, x);
        }
        let logits = logits.cast(DType::F32);
        if let Some(c) = cache {
            c.advance(pad, batch);
        }
        ForwardOutput {
            logits,
            hidden_states,
        }
    }
}
