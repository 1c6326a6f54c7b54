//! `bert`: BERT-family sentence encoders on burn, loaded from a HF folder (`config.json`,
//! `tokenizer.json`, `model.safetensors`): all-MiniLM-L6-v2 and other BERT checkpoints
//! (`model_type = "bert"`), and the XLM-RoBERTa family of BGE-M3 (`"xlm-roberta"` /
//! `"roberta"`: positions start after `pad_token_id`, one token type).
//!
//! Semantics follow HF transformers' `BertModel` / `XLMRobertaModel` (post-norm layers, exact
//! erf GELU, additive padding mask); the sentence embedding is the masked mean or the CLS
//! vector of the last layer, L2-normalised (sentence-transformers' Pooling + Normalize).
//! Parity with transformers is tested in `tests/tests/encoders.rs`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde::Deserialize;
use siren_core::burn;
use siren_core::burn::module::{Module, Param};
use siren_core::burn::nn::{Embedding, LayerNorm, LayerNormConfig, Linear};
use siren_core::burn::tensor::activation::{gelu, softmax};
use siren_core::burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use siren_core::engine::Weights;
use siren_core::traits::{Embeddings, TextEncoder};
use siren_core::{CoreError, Plugin, Result};
use tokenizers::Tokenizer;

/// Architecture numbers read from `config.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct BertSpec {
    /// `bert`, `roberta` or `xlm-roberta`.
    pub model_type: String,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Hidden width.
    pub hidden_size: usize,
    /// Layers.
    pub num_layers: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// Feed-forward width.
    pub intermediate_size: usize,
    /// Position table size.
    pub max_position_embeddings: usize,
    /// Token-type table size.
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Padding id (RoBERTa positions start at `pad_token_id + 1`).
    pub pad_token_id: u32,
}

impl BertSpec {
    /// Reads a HF `config.json`; unsupported options are errors naming the key.
    pub fn from_config(v: &serde_json::Value, origin: &str) -> Result<Self> {
        let err = |key: &str, msg: String| CoreError::config(format!("{origin} `{key}`"), msg);
        let num = |key: &str| -> Result<usize> {
            v.get(key)
                .and_then(serde_json::Value::as_u64)
                .map(|x| x as usize)
                .ok_or_else(|| err(key, "missing or not a non-negative integer".into()))
        };
        let model_type = v
            .get("model_type")
            .and_then(|x| x.as_str())
            .unwrap_or("bert")
            .to_string();
        if !["bert", "roberta", "xlm-roberta"].contains(&model_type.as_str()) {
            return Err(err(
                "model_type",
                format!("`{model_type}` is not supported (bert, roberta, xlm-roberta)"),
            ));
        }
        let act = v
            .get("hidden_act")
            .and_then(|x| x.as_str())
            .unwrap_or("gelu");
        if act != "gelu" {
            return Err(err(
                "hidden_act",
                format!("`{act}` is not supported (gelu)"),
            ));
        }
        let pos = v
            .get("position_embedding_type")
            .and_then(|x| x.as_str())
            .unwrap_or("absolute");
        if pos != "absolute" {
            return Err(err(
                "position_embedding_type",
                format!("`{pos}` is not supported (absolute)"),
            ));
        }
        let spec = Self {
            vocab_size: num("vocab_size")?,
            hidden_size: num("hidden_size")?,
            num_layers: num("num_hidden_layers")?,
            num_heads: num("num_attention_heads")?,
            intermediate_size: num("intermediate_size")?,
            max_position_embeddings: num("max_position_embeddings")?,
            type_vocab_size: v
                .get("type_vocab_size")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(2) as usize,
            layer_norm_eps: v
                .get("layer_norm_eps")
                .and_then(serde_json::Value::as_f64)
                .unwrap_or(1e-12),
            pad_token_id: v
                .get("pad_token_id")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0) as u32,
            model_type,
        };
        if spec.num_heads == 0 || !spec.hidden_size.is_multiple_of(spec.num_heads) {
            return Err(err(
                "num_attention_heads",
                format!(
                    "hidden_size {} is not divisible by {} heads",
                    spec.hidden_size, spec.num_heads
                ),
            ));
        }
        Ok(spec)
    }

    fn is_roberta(&self) -> bool {
        self.model_type != "bert"
    }

    /// The longest input the position table allows.
    pub fn max_tokens(&self) -> usize {
        if self.is_roberta() {
            self.max_position_embeddings
                .saturating_sub(self.pad_token_id as usize + 1)
        } else {
            self.max_position_embeddings
        }
    }
}

/// One post-norm encoder layer (HF `encoder.layer.{i}`).
#[derive(Module, Debug)]
pub struct BertLayer {
    /// `attention.self.query`.
    pub query: Linear,
    /// `attention.self.key`.
    pub key: Linear,
    /// `attention.self.value`.
    pub value: Linear,
    /// `attention.output.dense`.
    pub attn_out: Linear,
    /// `attention.output.LayerNorm`.
    pub attn_norm: LayerNorm,
    /// `intermediate.dense`.
    pub intermediate: Linear,
    /// `output.dense`.
    pub output: Linear,
    /// `output.LayerNorm`.
    pub out_norm: LayerNorm,
    /// Attention heads.
    pub num_heads: usize,
}

impl BertLayer {
    fn forward(&self, x: Tensor<3>, mask: &Tensor<4, Bool>) -> Tensor<3> {
        let [b, s, h] = x.dims();
        let nh = self.num_heads;
        let hd = h / nh;
        let split = |t: Tensor<3>| t.reshape([b, s, nh, hd]).swap_dims(1, 2);
        let q = split(self.query.forward(x.clone()));
        let k = split(self.key.forward(x.clone()));
        let v = split(self.value.forward(x.clone()));
        let scores = q
            .matmul(k.swap_dims(2, 3))
            .mul_scalar(1.0 / (hd as f64).sqrt())
            .mask_fill(mask.clone().expand([b, nh, s, s]), f32::MIN);
        let ctx = softmax(scores, 3)
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([b, s, h]);
        let a = self.attn_norm.forward(self.attn_out.forward(ctx).add(x));
        let f = self
            .output
            .forward(gelu(self.intermediate.forward(a.clone())));
        self.out_norm.forward(f.add(a))
    }
}

/// A BERT-family encoder (no pooler).
#[derive(Module, Debug)]
pub struct BertModel {
    /// `embeddings.word_embeddings`.
    pub word_embeddings: Embedding,
    /// `embeddings.position_embeddings`.
    pub position_embeddings: Embedding,
    /// `embeddings.token_type_embeddings`.
    pub token_type_embeddings: Embedding,
    /// `embeddings.LayerNorm`.
    pub embeddings_norm: LayerNorm,
    /// `encoder.layer`.
    pub layers: Vec<BertLayer>,
    /// The configuration.
    #[module(skip)]
    pub spec: BertSpec,
}

fn layer_norm(
    w: &mut Weights,
    name: &str,
    dim: usize,
    eps: f64,
    device: &Device,
) -> Result<LayerNorm> {
    let mut ln = LayerNormConfig::new(dim).with_epsilon(eps).init(device);
    ln.gamma = Param::from_tensor(w.take(&format!("{name}.weight"), [dim], device)?);
    ln.beta = Some(Param::from_tensor(w.take(
        &format!("{name}.bias"),
        [dim],
        device,
    )?));
    Ok(ln)
}

fn embedding(
    w: &mut Weights,
    name: &str,
    n: usize,
    dim: usize,
    device: &Device,
) -> Result<Embedding> {
    Ok(Embedding {
        weight: Param::from_tensor(w.take(&format!("{name}.weight"), [n, dim], device)?),
    })
}

impl BertModel {
    /// Builds the model from checkpoint tensors with HF names, with or without the
    /// `bert.` / `roberta.` prefix of task checkpoints.
    pub fn from_weights(spec: BertSpec, w: &mut Weights, device: &Device) -> Result<Self> {
        let prefix = ["", "bert.", "roberta."]
            .into_iter()
            .find(|p| w.contains(&format!("{p}embeddings.word_embeddings.weight")))
            .unwrap_or("");
        let (h, ff, eps) = (
            spec.hidden_size,
            spec.intermediate_size,
            spec.layer_norm_eps,
        );
        let e = format!("{prefix}embeddings");
        let word_embeddings = embedding(
            w,
            &format!("{e}.word_embeddings"),
            spec.vocab_size,
            h,
            device,
        )?;
        let position_embeddings = embedding(
            w,
            &format!("{e}.position_embeddings"),
            spec.max_position_embeddings,
            h,
            device,
        )?;
        let token_type_embeddings = embedding(
            w,
            &format!("{e}.token_type_embeddings"),
            spec.type_vocab_size,
            h,
            device,
        )?;
        let embeddings_norm = layer_norm(w, &format!("{e}.LayerNorm"), h, eps, device)?;
        let mut layers = Vec::with_capacity(spec.num_layers);
        for i in 0..spec.num_layers {
            let p = format!("{prefix}encoder.layer.{i}");
            layers.push(BertLayer {
                query: w.linear(&format!("{p}.attention.self.query"), h, h, true, device)?,
                key: w.linear(&format!("{p}.attention.self.key"), h, h, true, device)?,
                value: w.linear(&format!("{p}.attention.self.value"), h, h, true, device)?,
                attn_out: w.linear(&format!("{p}.attention.output.dense"), h, h, true, device)?,
                attn_norm: layer_norm(
                    w,
                    &format!("{p}.attention.output.LayerNorm"),
                    h,
                    eps,
                    device,
                )?,
                intermediate: w.linear(&format!("{p}.intermediate.dense"), ff, h, true, device)?,
                output: w.linear(&format!("{p}.output.dense"), h, ff, true, device)?,
                out_norm: layer_norm(w, &format!("{p}.output.LayerNorm"), h, eps, device)?,
                num_heads: spec.num_heads,
            });
        }
        Ok(Self {
            word_embeddings,
            position_embeddings,
            token_type_embeddings,
            embeddings_norm,
            layers,
            spec,
        })
    }

    /// Loads `dir/config.json` and `dir/model.safetensors` (or a sharded index).
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let cfg_path = dir.join("config.json");
        let text = std::fs::read_to_string(&cfg_path).map_err(|e| CoreError::io(&cfg_path, e))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|source| CoreError::Json {
                path: cfg_path.clone(),
                source,
            })?;
        let spec = BertSpec::from_config(&v, &cfg_path.display().to_string())?;
        let mut w = Weights::from_hf_dir(dir)?;
        Self::from_weights(spec, &mut w, device)
    }

    /// Last hidden state `[batch, seq, hidden]` of right- or left-padded `ids` `[batch, seq]`;
    /// `pad` is true at padding.
    pub fn forward(&self, ids: &[Vec<u32>], device: &Device) -> Result<(Tensor<3>, Tensor<2>)> {
        let b = ids.len();
        let s = ids.iter().map(Vec::len).max().unwrap_or(0);
        if b == 0 || s == 0 {
            return Err(CoreError::Data("bert: empty batch".into()));
        }
        if s > self.spec.max_tokens() {
            return Err(CoreError::Data(format!(
                "bert: {s} tokens exceed the position table ({})",
                self.spec.max_tokens()
            )));
        }
        let pad_id = self.spec.pad_token_id;
        let offset = if self.spec.is_roberta() {
            i64::from(pad_id) + 1
        } else {
            0
        };
        let (mut flat, mut pos, mut keep) = (Vec::new(), Vec::new(), Vec::new());
        for seq in ids {
            for k in 0..s {
                let real = k < seq.len();
                flat.push(i64::from(if real { seq[k] } else { pad_id }));
                // BERT: 0..s; RoBERTa: padding_idx + 1 + index for real tokens, padding_idx
                // at padding (HF create_position_ids_from_input_ids on right padding).
                pos.push(match (self.spec.is_roberta(), real) {
                    (false, _) => k as i64,
                    (true, true) => offset + k as i64,
                    (true, false) => i64::from(pad_id),
                });
                keep.push(if real { 1f32 } else { 0f32 });
            }
        }
        let ids_t: Tensor<2, Int> = Tensor::from_data(TensorData::new(flat, [b, s]), device);
        let pos_t: Tensor<2, Int> = Tensor::from_data(TensorData::new(pos, [b, s]), device);
        let keep_t: Tensor<2> = Tensor::from_data(TensorData::new(keep, [b, s]), device);
        let types: Tensor<2, Int> = Tensor::zeros([b, s], device);
        let x = self
            .word_embeddings
            .forward(ids_t)
            .add(self.position_embeddings.forward(pos_t))
            .add(self.token_type_embeddings.forward(types));
        let mut x = self.embeddings_norm.forward(x);
        let mask = keep_t.clone().equal_elem(0.0).reshape([b, 1, 1, s]);
        for layer in &self.layers {
            x = layer.forward(x, &mask);
        }
        Ok((x, keep_t))
    }
}

/// Sentence pooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// Masked mean over tokens (sentence-transformers' default; MiniLM).
    Mean,
    /// The first token (`[CLS]` / `<s>`; BGE-M3 dense).
    Cls,
}

/// Pools `[b, s, h]` hidden states with the `[b, s]` 1/0 mask and L2-normalises the rows.
pub fn pool(h: Tensor<3>, keep: Tensor<2>, pooling: Pooling) -> Result<Embeddings> {
    let [b, s, d] = h.dims();
    let pooled = match pooling {
        Pooling::Cls => h.narrow(1, 0, 1).reshape([b, d]),
        Pooling::Mean => {
            let m = keep.reshape([b, s, 1]);
            let sum = h.mul(m.clone()).sum_dim(1).reshape([b, d]);
            let count = m.sum_dim(1).reshape([b, 1]).clamp_min(1e-9);
            sum.div(count)
        }
    };
    let mut data = pooled
        .try_into_vec_as::<f32>()
        .map_err(|e| CoreError::Numeric(format!("reading embeddings: {e:?}")))?;
    crate::l2_normalize(&mut data, d);
    Ok(Embeddings { n: b, dim: d, data })
}

/// Parameters of `bert`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BertParams {
    /// HF model folder (default: the fetched all-MiniLM-L6-v2).
    pub model: PathBuf,
    /// `mean` or `cls`; default: the folder's `1_Pooling/config.json`, else mean.
    pub pooling: Option<Pooling>,
    /// Maximum tokens per text (longer texts are truncated); default: the folder's
    /// `sentence_bert_config.json` `max_seq_length`, else the position table size.
    pub max_length: Option<usize>,
    /// Texts per forward pass (default 64).
    pub batch_size: usize,
    /// Compute device spec (default: the run's `device` in a stage, else `auto`).
    pub device: String,
}

impl Default for BertParams {
    fn default() -> Self {
        Self {
            model: PathBuf::from("assets/all-MiniLM-L6-v2"),
            pooling: None,
            max_length: None,
            batch_size: 64,
            device: "auto".into(),
        }
    }
}

struct Loaded {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    pooling: Pooling,
    max_length: usize,
}

/// The `bert` encoder; weights load on first use.
pub struct Bert {
    params: BertParams,
    loaded: OnceLock<std::result::Result<Arc<Loaded>, String>>,
}

impl std::fmt::Debug for Bert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bert")
            .field("params", &self.params)
            .finish()
    }
}

impl Plugin for Bert {
    type Params = BertParams;
    const DEVICE_PARAM: bool = true;
    const SUMMARY: &'static str = "BERT-family sentence encoder from a HF folder (MiniLM; XLM-RoBERTa/BGE-M3), mean or CLS pooling";
    fn from_params(params: BertParams) -> Result<Self> {
        if params.batch_size == 0 {
            return Err(CoreError::config(
                "text-encoder bert.batch_size",
                "must be at least 1",
            ));
        }
        if params.max_length == Some(0) {
            return Err(CoreError::config(
                "text-encoder bert.max_length",
                "must be at least 1",
            ));
        }
        Ok(Self {
            params,
            loaded: OnceLock::new(),
        })
    }
}

siren_core::register_encoder!("bert", Bert);

fn read_json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

impl Bert {
    /// An encoder for the HF folder `model` on `device`, with the folder's defaults.
    pub fn new(model: &Path, device: &str) -> Result<Self> {
        Self::from_params(BertParams {
            model: model.to_path_buf(),
            device: device.to_string(),
            ..BertParams::default()
        })
    }

    fn load(&self) -> Result<Arc<Loaded>> {
        let p = &self.params;
        let r = self.loaded.get_or_init(|| {
            let go = || -> Result<Loaded> {
                let dir = &p.model;
                if !dir.join("config.json").is_file() {
                    return Err(CoreError::config(
                        "text-encoder bert.model",
                        format!(
                            "{} has no config.json (run bash scripts/fetch-assets.sh for the default MiniLM)",
                            dir.display()
                        ),
                    ));
                }
                let (device, label) = siren_core::device::open(&p.device)?;
                let t = std::time::Instant::now();
                let model = BertModel::load(dir, &device)?;
                let tok_path = dir.join("tokenizer.json");
                let mut tokenizer = Tokenizer::from_file(&tok_path).map_err(|e| CoreError::Parse {
                    path: tok_path.clone(),
                    line: 0,
                    field: None,
                    message: e.to_string(),
                })?;
                let pooling = p.pooling.unwrap_or_else(|| {
                    match read_json(&dir.join("1_Pooling/config.json")) {
                        Some(v) if v["pooling_mode_cls_token"].as_bool() == Some(true) => Pooling::Cls,
                        _ => Pooling::Mean,
                    }
                });
                let max_length = p
                    .max_length
                    .or_else(|| {
                        read_json(&dir.join("sentence_bert_config.json"))
                            .and_then(|v| v["max_seq_length"].as_u64())
                            .map(|x| x as usize)
                    })
                    .unwrap_or(usize::MAX)
                    .min(model.spec.max_tokens());
                tokenizer.with_padding(None);
                tokenizer
                    .with_truncation(Some(tokenizers::TruncationParams {
                        max_length,
                        ..Default::default()
                    }))
                    .map_err(|e| CoreError::Data(format!("{}: {e}", tok_path.display())))?;
                tracing::info!(
                    "text encoder {} on {label}: {} layers, width {}, {pooling:?} pooling, max {max_length} tokens (loaded in {:.1}s)",
                    dir.display(),
                    model.spec.num_layers,
                    model.spec.hidden_size,
                    t.elapsed().as_secs_f64()
                );
                Ok(Loaded {
                    model,
                    tokenizer,
                    device,
                    pooling,
                    max_length,
                })
            };
            go().map(Arc::new).map_err(|e| e.to_string())
        });
        r.clone().map_err(CoreError::Data)
    }
}

impl TextEncoder for Bert {
    fn encode(&self, texts: &[String]) -> Result<Embeddings> {
        let l = self.load()?;
        let enc = l
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| CoreError::Data(format!("tokenizing: {e}")))?;
        let ids: Vec<Vec<u32>> = enc.iter().map(|e| e.get_ids().to_vec()).collect();
        // Batch texts of similar length together; restore the order afterwards.
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
        let dim = l.model.spec.hidden_size;
        let mut data = vec![0f32; ids.len() * dim];
        for chunk in order.chunks(self.params.batch_size) {
            let batch: Vec<Vec<u32>> = chunk
                .iter()
                .map(|&i| {
                    let mut v = ids[i].clone();
                    v.truncate(l.max_length);
                    if v.is_empty() {
                        v.push(l.model.spec.pad_token_id);
                    }
                    v
                })
                .collect();
            let (h, keep) = l.model.forward(&batch, &l.device)?;
            let e = pool(h, keep, l.pooling)?;
            for (k, &i) in chunk.iter().enumerate() {
                data[i * dim..(i + 1) * dim].copy_from_slice(e.row(k));
            }
        }
        Ok(Embeddings {
            n: texts.len(),
            dim,
            data,
        })
    }

    fn cache_key(&self) -> String {
        let p = &self.params;
        let weights = p.model.join("model.safetensors");
        let stamp = std::fs::metadata(&weights)
            .map(|m| m.len().to_string())
            .unwrap_or_else(|_| "sharded".into());
        let canon = p.model.canonicalize().unwrap_or_else(|_| p.model.clone());
        format!(
            "bert|{}|{stamp}|{:?}|{:?}",
            canon.display(),
            p.pooling,
            p.max_length
        )
    }
}
