//! LoRA-capable linear layers and adapter management in PEFT's layout.
//!
//! Every linear site of the decoder is a [`LoraLinear`]: a frozen base `Linear` plus an
//! optional low-rank adapter computed as `x·W + b + s·(drop(x)·A)·B` with `s = alpha / r` (PEFT's
//! `LoraLayer`, no rsLoRA). The adapter is never folded into `W` during training (cheaper than
//! rebuilding `W + s·A·B` each step); [`Decoder::merge_lora`] folds it for inference.
//!
//! Adapters are saved and loaded as PEFT does (`adapter_model.safetensors` with keys
//! `base_model.model.<site>.lora_A.weight` `[r, in]` / `lora_B.weight` `[out, r]`, plus
//! `adapter_config.json`), so they round-trip with `peft` in Python.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::tensor::{Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::decoder::Decoder;
use super::weights::Weights;
use crate::{CoreError, Result};

/// `x · w` for `x` of any rank ≥ 2 and a 2-D `w`, with the leading dims of `x` folded into the
/// rows: one 2-D product instead of a batched one against a broadcast weight. Same values; on
/// LibTorch the 2-D product is the fast kernel (on CPU 1.6× faster in f32 and ~19× in bf16 for a
/// `[32, 32, 576] · [576, 1536]` product, as `torch.nn.functional.linear` does).
pub(crate) fn fold_matmul<const D: usize>(x: Tensor<D>, w: Tensor<2>) -> Tensor<D> {
    if D <= 2 {
        return x.matmul(w.unsqueeze());
    }
    let mut dims = x.dims();
    let rows = dims[..D - 1].iter().product::<usize>();
    let y = x.reshape([rows, dims[D - 1]]).matmul(w);
    dims[D - 1] = y.dims()[1];
    y.reshape(dims)
}

/// A burn [`Linear`] applied through [`fold_matmul`].
pub(crate) fn linear_forward<const D: usize>(layer: &Linear, x: Tensor<D>) -> Tensor<D> {
    let y = fold_matmul(x, layer.weight.val());
    match &layer.bias {
        Some(b) => y.add(b.val().unsqueeze()),
        None => y,
    }
}

/// A low-rank adapter `s·(drop(x)·A)·B`.
#[derive(Module, Debug)]
pub struct Adapter {
    /// `A`, stored `[in, r]` (PEFT's `lora_A.weight` transposed).
    pub lora_a: Param<Tensor<2>>,
    /// `B`, stored `[r, out]` (PEFT's `lora_B.weight` transposed).
    pub lora_b: Param<Tensor<2>>,
    /// Dropout on the adapter's input (training only).
    pub dropout: Dropout,
    /// `alpha / r`.
    #[module(skip)]
    pub scale: f64,
    /// Whether the adapter contributes to the output.
    #[module(skip)]
    pub enabled: bool,
}

/// A linear layer with a frozen base and an optional LoRA adapter.
#[derive(Module, Debug)]
pub struct LoraLinear {
    /// The base projection (weight `[in, out]`).
    pub base: Linear,
    /// The adapter, when one is attached.
    pub adapter: Option<Adapter>,
}

impl LoraLinear {
    /// Wraps a base layer without adapter.
    pub fn new(base: Linear) -> Self {
        Self {
            base,
            adapter: None,
        }
    }

    /// `[.., in]` → `[.., out]`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match &self.adapter {
            Some(a) if a.enabled => {
                // As PEFT: an adapter kept in another float type than the activations (f32
                // adapters on a bf16 model) computes in its own type, and its update is cast
                // back to the activations' type.
                let (xd, ad) = (x.dtype(), a.lora_a.val().dtype());
                let input = a.dropout.forward(x.clone());
                let input = if xd == ad { input } else { input.cast(ad) };
                let low = fold_matmul(input, a.lora_a.val());
                let delta = fold_matmul(low, a.lora_b.val()).mul_scalar(a.scale);
                let delta = if xd == ad { delta } else { delta.cast(xd) };
                linear_forward(&self.base, x).add(delta)
            }
            _ => linear_forward(&self.base, x),
        }
    }

    /// `(in, out)` widths.
    pub fn dims(&self) -> (usize, usize) {
        let [i, o] = self.base.weight.val().dims();
        (i, o)
    }

    /// Folds the adapter into the base weight and drops it (a disabled adapter is dropped
    /// without folding).
    fn merge(&mut self) {
        if let Some(a) = self.adapter.take()
            && a.enabled
        {
            let delta = a.lora_a.val().matmul(a.lora_b.val()).mul_scalar(a.scale);
            let w = self.base.weight.val().add(delta);
            self.base.weight = Param::from_tensor(w.detach()).set_require_grad(false);
        }
    }
}

/// LoRA hyper-parameters (PEFT's `LoraConfig` subset).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraSpec {
    /// Rank `r`.
    pub r: usize,
    /// `lora_alpha`; the adapter output is scaled by `alpha / r`.
    pub alpha: f64,
    /// Dropout on the adapter input during training.
    pub dropout: f64,
}

impl LoraSpec {
    fn validate(&self) -> Result<()> {
        if self.r == 0 {
            return Err(CoreError::config("lora.r", "must be at least 1"));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(CoreError::config("lora.dropout", "must be in [0, 1)"));
        }
        Ok(())
    }
}

/// PEFT `adapter_config.json` (the fields we read and write; others are ignored).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PeftConfig {
    peft_type: String,
    r: usize,
    lora_alpha: f64,
    #[serde(default)]
    lora_dropout: f64,
    target_modules: serde_json::Value,
    #[serde(default)]
    use_rslora: bool,
    #[serde(default)]
    use_dora: bool,
    #[serde(default)]
    fan_in_fan_out: bool,
    #[serde(default)]
    bias: Option<String>,
    #[serde(default)]
    task_type: Option<String>,
    #[serde(default)]
    base_model_name_or_path: Option<String>,
    /// Token ids whose embedding rows train on their own: a list (the embedding, and a tied
    /// `lm_head` with it) or `{"embed_tokens": [...], "lm_head": [...]}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trainable_token_indices: Option<serde_json::Value>,
}

const PEFT_PREFIX: &str = "base_model.model.";
/// PEFT's keys of trained token rows (embedding, untied `lm_head`).
const TOKEN_EMBED_KEY: &str =
    "base_model.model.model.embed_tokens.token_adapter.trainable_tokens_delta";
const TOKEN_HEAD_KEY: &str = "base_model.model.lm_head.token_adapter.trainable_tokens_delta";

/// The token ids of `trainable_token_indices` (a list, or a map whose lists must agree).
fn token_indices(v: &serde_json::Value) -> std::result::Result<Vec<u32>, String> {
    let list = |v: &serde_json::Value| -> std::result::Result<Vec<u32>, String> {
        v.as_array()
            .ok_or("expected a list of token ids")?
            .iter()
            .map(|x| {
                x.as_u64()
                    .and_then(|i| u32::try_from(i).ok())
                    .ok_or_else(|| format!("`{x}` is not a token id"))
            })
            .collect()
    };
    match v {
        serde_json::Value::Object(m) => {
            let mut ids: Option<Vec<u32>> = None;
            for (layer, l) in m {
                if layer != "embed_tokens" && layer != "lm_head" {
                    return Err(format!(
                        "layer `{layer}`: only embed_tokens and lm_head are supported"
                    ));
                }
                let l = list(l)?;
                if ids.as_ref().is_some_and(|i| *i != l) {
                    return Err("embed_tokens and lm_head must list the same ids".into());
                }
                ids = Some(l);
            }
            Ok(ids.unwrap_or_default())
        }
        other => list(other),
    }
}

impl Decoder {
    /// Every linear site with its HF name (`model.layers.{i}.self_attn.q_proj`, ...), in
    /// layer order.
    pub fn linear_sites(&self) -> Vec<(String, &LoraLinear)> {
        let mut v = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            let a = &l.self_attn;
            let m = &l.mlp;
            for (n, lin) in [
                ("self_attn.q_proj", &a.q_proj),
                ("self_attn.k_proj", &a.k_proj),
                ("self_attn.v_proj", &a.v_proj),
                ("self_attn.o_proj", &a.o_proj),
                ("mlp.gate_proj", &m.gate_proj),
                ("mlp.up_proj", &m.up_proj),
                ("mlp.down_proj", &m.down_proj),
            ] {
                v.push((format!("model.layers.{i}.{n}"), lin));
            }
        }
        v
    }

    fn linear_sites_mut(&mut self) -> Vec<(String, &mut LoraLinear)> {
        let mut v = Vec::new();
        for (i, l) in self.layers.iter_mut().enumerate() {
            let a = &mut l.self_attn;
            let m = &mut l.mlp;
            for (n, lin) in [
                ("self_attn.q_proj", &mut a.q_proj),
                ("self_attn.k_proj", &mut a.k_proj),
                ("self_attn.v_proj", &mut a.v_proj),
                ("self_attn.o_proj", &mut a.o_proj),
                ("mlp.gate_proj", &mut m.gate_proj),
                ("mlp.up_proj", &mut m.up_proj),
                ("mlp.down_proj", &mut m.down_proj),
            ] {
                v.push((format!("model.layers.{i}.{n}"), lin));
            }
        }
        v
    }

    /// Freezes every base parameter and attaches a fresh adapter to each site `select`
    /// accepts, initialised as PEFT does: `A` uniform in ±1/√in (Kaiming-uniform with
    /// a = √5), `B` zero — so the model's outputs are unchanged until it trains. Returns the
    /// number of adapted sites; zero selected sites is an error.
    pub fn add_lora(
        self,
        spec: &LoraSpec,
        select: impl Fn(&str) -> bool,
        seed: u64,
    ) -> Result<(Self, usize)> {
        spec.validate()?;
        let mut model = self.no_grad();
        let device = model.embed_tokens.weight.val().device();
        let mut rng = StdRng::seed_from_u64(seed);
        let mut n = 0;
        for (name, lin) in model.linear_sites_mut() {
            if !select(&name) {
                continue;
            }
            let (i, o) = lin.dims();
            let bound = 1.0 / (i as f32).sqrt();
            let a: Vec<f32> = (0..i * spec.r)
                .map(|_| rng.random_range(-bound..bound))
                .collect();
            lin.adapter = Some(new_adapter(
                spec,
                Tensor::from_data(TensorData::new(a, [i, spec.r]), &device),
                Tensor::zeros([spec.r, o], &device),
            ));
            n += 1;
        }
        if n == 0 {
            return Err(CoreError::config(
                "lora targets",
                "selected no linear site (names look like `model.layers.0.self_attn.k_proj`)",
            ));
        }
        Ok((model, n))
    }

    /// Turns every adapter (and trained token rows) on or off (off = the base model, e.g.
    /// GRPO's reference policy).
    pub fn set_lora_enabled(&mut self, enabled: bool) {
        for (_, lin) in self.linear_sites_mut() {
            if let Some(a) = lin.adapter.as_mut() {
                a.enabled = enabled;
            }
        }
        if let Some(tr) = self.token_rows.as_mut() {
            tr.enabled = enabled;
        }
    }

    /// Number of sites with an adapter.
    pub fn lora_sites(&self) -> usize {
        self.linear_sites()
            .iter()
            .filter(|(_, l)| l.adapter.is_some())
            .count()
    }

    /// Folds every enabled adapter into its base weight (for inference) and removes all
    /// adapters; trained token rows are written into their matrices.
    pub fn merge_lora(mut self) -> Self {
        for (_, lin) in self.linear_sites_mut() {
            lin.merge();
        }
        self.merge_token_rows()
    }

    /// Writes the adapters in PEFT's layout: `dir/adapter_model.safetensors` and
    /// `dir/adapter_config.json` (written atomically).
    pub fn save_peft(&self, dir: &Path, spec: &LoraSpec, base_model: Option<&str>) -> Result<()> {
        let mut tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)> = BTreeMap::new();
        let mut targets = std::collections::BTreeSet::new();
        for (name, lin) in self.linear_sites() {
            let Some(a) = &lin.adapter else { continue };
            targets.insert(name.rsplit('.').next().unwrap_or(&name).to_string());
            for (key, t) in [("lora_A", a.lora_a.val()), ("lora_B", a.lora_b.val())] {
                let t = t.transpose();
                let shape = t.dims().to_vec();
                let data = t
                    .try_into_vec_as::<f32>()
                    .map_err(|e| CoreError::Numeric(format!("reading `{name}.{key}`: {e:?}")))?;
                tensors.insert(format!("{PEFT_PREFIX}{name}.{key}.weight"), (shape, data));
            }
        }
        if tensors.is_empty() {
            return Err(CoreError::Data(
                "the model has no LoRA adapter to save".into(),
            ));
        }
        let mut token_ids = None;
        if let Some(tr) = &self.token_rows {
            let mut put = |key: &str, t: Tensor<2>| -> Result<()> {
                let shape = t.dims().to_vec();
                let data = t
                    .try_into_vec_as::<f32>()
                    .map_err(|e| CoreError::Numeric(format!("reading `{key}`: {e:?}")))?;
                tensors.insert(key.to_string(), (shape, data));
                Ok(())
            };
            put(TOKEN_EMBED_KEY, tr.embed.val())?;
            let ids = serde_json::json!(tr.ids);
            token_ids = Some(match &tr.head {
                Some(h) => {
                    put(TOKEN_HEAD_KEY, h.val())?;
                    serde_json::json!({"embed_tokens": ids, "lm_head": ids})
                }
                None => ids,
            });
        }
        std::fs::create_dir_all(dir).map_err(|e| CoreError::io(dir, e))?;
        let bytes = serialize_f32(&tensors)?;
        crate::files::write_atomic(&dir.join("adapter_model.safetensors"), &bytes)?;
        let cfg = PeftConfig {
            peft_type: "LORA".into(),
            r: spec.r,
            lora_alpha: spec.alpha,
            lora_dropout: spec.dropout,
            target_modules: serde_json::json!(targets.into_iter().collect::<Vec<_>>()),
            use_rslora: false,
            use_dora: false,
            fan_in_fan_out: false,
            bias: Some("none".into()),
            task_type: Some("CAUSAL_LM".into()),
            base_model_name_or_path: base_model.map(str::to_string),
            trainable_token_indices: token_ids,
        };
        let json =
            serde_json::to_vec_pretty(&cfg).map_err(|e| CoreError::Numeric(e.to_string()))?;
        crate::files::write_atomic(&dir.join("adapter_config.json"), &json)?;
        Ok(())
    }

    /// Attaches the adapters of a PEFT folder (`adapter_config.json` +
    /// `adapter_model.safetensors`), freezing the base. Unsupported PEFT options (DoRA,
    /// rsLoRA, bias training, fan-in-fan-out) and tensors that match no site or have the wrong
    /// shape are errors naming the file and tensor.
    pub fn load_peft(self, dir: &Path) -> Result<(Self, LoraSpec)> {
        let cfg_path = dir.join("adapter_config.json");
        let text = std::fs::read_to_string(&cfg_path).map_err(|e| CoreError::io(&cfg_path, e))?;
        let cfg: PeftConfig = serde_json::from_str(&text).map_err(|source| CoreError::Json {
            path: cfg_path.clone(),
            source,
        })?;
        let bad = |field: &str, msg: &str| {
            Err(CoreError::Parse {
                path: cfg_path.clone(),
                line: 0,
                field: Some(field.into()),
                message: msg.into(),
            })
        };
        if cfg.peft_type != "LORA" {
            return bad("peft_type", "only LORA adapters are supported");
        }
        if cfg.use_dora {
            return bad("use_dora", "DoRA adapters are not supported");
        }
        if cfg.use_rslora {
            return bad("use_rslora", "rsLoRA scaling is not supported");
        }
        if cfg.fan_in_fan_out {
            return bad(
                "fan_in_fan_out",
                "Conv1D-style (fan-in-fan-out) weights are not supported",
            );
        }
        if cfg.bias.as_deref().is_some_and(|b| b != "none") {
            return bad("bias", "only `none` is supported");
        }
        let spec = LoraSpec {
            r: cfg.r,
            alpha: cfg.lora_alpha,
            dropout: cfg.lora_dropout,
        };
        spec.validate()?;
        let token_ids = match &cfg.trainable_token_indices {
            Some(v) => token_indices(v).map_err(|m| CoreError::Parse {
                path: cfg_path.clone(),
                line: 0,
                field: Some("trainable_token_indices".into()),
                message: m,
            })?,
            None => Vec::new(),
        };
        let st_path = dir.join("adapter_model.safetensors");
        let mut w = Weights::from_safetensors(&st_path)?;
        let mut model = self.no_grad();
        let device = model.embed_tokens.weight.val().device();
        if !token_ids.is_empty() {
            let (n, h) = (token_ids.len(), model.spec.hidden_size);
            let embed: Tensor<2> = w.take(TOKEN_EMBED_KEY, [n, h], &device)?;
            let head: Option<Tensor<2>> = if model.lm_head.is_some() {
                Some(w.take(TOKEN_HEAD_KEY, [n, h], &device)?)
            } else {
                None
            };
            if let Some(&bad) = token_ids
                .iter()
                .find(|&&i| i as usize >= model.spec.vocab_size)
            {
                return Err(CoreError::Data(format!(
                    "{}: trainable token {bad} is outside the model's vocabulary of {} (was the \
                     adapter trained with training.answer_tokens = true?)",
                    cfg_path.display(),
                    model.spec.vocab_size
                )));
            }
            model = model.with_token_rows(token_ids, embed, head)?;
        }
        let mut n = 0;
        for (name, lin) in model.linear_sites_mut() {
            let ka = format!("{PEFT_PREFIX}{name}.lora_A.weight");
            let kb = format!("{PEFT_PREFIX}{name}.lora_B.weight");
            if !w.contains(&ka) && !w.contains(&kb) {
                continue;
            }
            let (i, o) = lin.dims();
            let a: Tensor<2> = w.take(&ka, [spec.r, i], &device)?;
            let b: Tensor<2> = w.take(&kb, [o, spec.r], &device)?;
            lin.adapter = Some(new_adapter(&spec, a.transpose(), b.transpose()));
            n += 1;
        }
        let left = w.remaining();
        if !left.is_empty() {
            return Err(CoreError::Data(format!(
                "{}: tensor `{}` matches no linear site of the model ({} unmatched)",
                st_path.display(),
                left[0],
                left.len()
            )));
        }
        if n == 0 {
            return Err(CoreError::Data(format!(
                "{}: no LoRA tensors found",
                st_path.display()
            )));
        }
        Ok((model, spec))
    }
}

fn new_adapter(spec: &LoraSpec, a: Tensor<2>, b: Tensor<2>) -> Adapter {
    Adapter {
        lora_a: Param::from_tensor(a),
        lora_b: Param::from_tensor(b),
        dropout: DropoutConfig::new(spec.dropout).init(),
        scale: spec.alpha / spec.r as f64,
        enabled: true,
    }
}

/// Serialises f32 tensors to safetensors bytes.
pub(crate) fn serialize_f32(tensors: &BTreeMap<String, (Vec<usize>, Vec<f32>)>) -> Result<Vec<u8>> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(k, (s, d))| {
            (
                k.clone(),
                s.clone(),
                d.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(k, s, b)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                .map(|v| (k.clone(), v))
                .map_err(|e| CoreError::Numeric(format!("tensor `{k}`: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, None).map_err(|e| CoreError::Numeric(e.to_string()))
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution, Tensor};

    use super::fold_matmul;

    #[test]
    fn folded_products_equal_batched_ones() {
        let device = Device::flex();
        let w = Tensor::<2>::random([6, 5], Distribution::Default, &device);
        let x3 = Tensor::<3>::random([2, 3, 6], Distribution::Default, &device);
        let x4 = Tensor::<4>::random([2, 2, 3, 6], Distribution::Default, &device);
        // A non-contiguous input: a transposed view.
        let xt = Tensor::<3>::random([2, 6, 3], Distribution::Default, &device).swap_dims(1, 2);
        let close = |a: Vec<f32>, b: Vec<f32>| {
            assert_eq!(a.len(), b.len());
            let d = a
                .iter()
                .zip(&b)
                .map(|(p, q)| (p - q).abs())
                .fold(0f32, f32::max);
            assert!(d < 1e-5, "max |Δ| {d}");
        };
        let v = |t: Tensor<3>| t.try_into_vec_as::<f32>().unwrap();
        let got = fold_matmul(x3.clone(), w.clone());
        assert_eq!(got.dims(), [2, 3, 5]);
        close(v(got), v(x3.matmul(w.clone().unsqueeze())));
        close(
            v(fold_matmul(xt.clone(), w.clone())),
            v(xt.matmul(w.clone().unsqueeze())),
        );
        let got = fold_matmul(x4.clone(), w.clone());
        assert_eq!(got.dims(), [2, 2, 3, 5]);
        let want = x4.matmul(w.unsqueeze());
        close(
            got.try_into_vec_as::<f32>().unwrap(),
            want.try_into_vec_as::<f32>().unwrap(),
        );
    }
}
