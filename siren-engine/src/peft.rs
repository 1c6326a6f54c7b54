//! Adapters on a whole decoder in PEFT's layout: adding fresh LoRA adapters to chosen sites,
//! merging them into the base weights, and saving and loading them as PEFT does
//! (`adapter_model.safetensors` with keys `base_model.model.<site>.lora_A.weight` `[r, in]` /
//! `lora_B.weight` `[out, r]`, plus `adapter_config.json`), so they round-trip with `peft` in
//! Python.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::DropoutConfig;
use burn::tensor::{Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::decoder::Decoder;
use super::lora::{Adapter, LoraLinear, LoraSpec};
use super::weights::{Weights, serialize_f32};
use crate::{EngineError, Result};

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
            return Err(EngineError::config(
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
                    .map_err(|e| EngineError::Numeric(format!("reading `{name}.{key}`: {e:?}")))?;
                tensors.insert(format!("{PEFT_PREFIX}{name}.{key}.weight"), (shape, data));
            }
        }
        if tensors.is_empty() {
            return Err(EngineError::Data(
                "the model has no LoRA adapter to save".into(),
            ));
        }
        let mut token_ids = None;
        if let Some(tr) = &self.token_rows {
            let mut put = |key: &str, t: Tensor<2>| -> Result<()> {
                let shape = t.dims().to_vec();
                let data = t
                    .try_into_vec_as::<f32>()
                    .map_err(|e| EngineError::Numeric(format!("reading `{key}`: {e:?}")))?;
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
        std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))?;
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
            serde_json::to_vec_pretty(&cfg).map_err(|e| EngineError::Numeric(e.to_string()))?;
        crate::files::write_atomic(&dir.join("adapter_config.json"), &json)?;
        Ok(())
    }

    /// Attaches the adapters of a PEFT folder (`adapter_config.json` +
    /// `adapter_model.safetensors`), freezing the base. Unsupported PEFT options (DoRA,
    /// rsLoRA, bias training, fan-in-fan-out) and tensors that match no site or have the wrong
    /// shape are errors naming the file and tensor.
    pub fn load_peft(self, dir: &Path) -> Result<(Self, LoraSpec)> {
        let cfg_path = dir.join("adapter_config.json");
        let text = std::fs::read_to_string(&cfg_path).map_err(|e| EngineError::io(&cfg_path, e))?;
        let cfg: PeftConfig = serde_json::from_str(&text).map_err(|source| EngineError::Json {
            path: cfg_path.clone(),
            source,
        })?;
        let bad = |field: &str, msg: &str| {
            Err(EngineError::Parse {
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
            Some(v) => token_indices(v).map_err(|m| EngineError::Parse {
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
                return Err(EngineError::Data(format!(
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
            return Err(EngineError::Data(format!(
                "{}: tensor `{}` matches no linear site of the model ({} unmatched)",
                st_path.display(),
                left[0],
                left.len()
            )));
        }
        if n == 0 {
            return Err(EngineError::Data(format!(
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
