//! Decoder architectures, registered in the `backbone` slot: [`llama`] and [`qwen3`]. Each reads
//! its HF `config.json` into the engine's [`siren_core::engine::DecoderSpec`] and rejects options
//! the engine does not implement, naming the key.
#![warn(missing_docs)]

pub mod llama;
pub mod qwen3;

use serde_json::{Value, json};
use siren_core::engine::DecoderSpec;
use siren_core::{CoreError, Result};

/// Typed access to HF `config.json` keys with errors naming the key, and the keys the Llama
/// family shares ([`HfConfig::common_spec`]): the toolkit for backbone plugins, built-in or
/// third-party (`plugins/examples/my-backbone` reads Mistral with it).
pub struct HfConfig<'a> {
    /// The parsed `config.json`.
    pub v: &'a Value,
    /// The architecture's name, for errors (`llama config.json \`rope_theta\`: ...`).
    pub arch: &'static str,
}

impl HfConfig<'_> {
    /// A config error naming the architecture's `config.json` and `key`.
    pub fn err(&self, key: &str, msg: impl std::fmt::Display) -> CoreError {
        CoreError::config(
            format!("{} config.json `{key}`", self.arch),
            msg.to_string(),
        )
    }

    /// A non-negative integer.
    pub fn usize(&self, key: &str) -> Result<usize> {
        self.v
            .get(key)
            .and_then(Value::as_u64)
            .map(|x| x as usize)
            .ok_or_else(|| self.err(key, "missing or not a non-negative integer"))
    }

    /// A non-negative integer, `default` when absent or null.
    pub fn usize_or(&self, key: &str, default: usize) -> Result<usize> {
        match self.v.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(_) => self.usize(key),
        }
    }

    /// A number, `default` when absent or null.
    pub fn f64_or(&self, key: &str, default: f64) -> Result<f64> {
        match self.v.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(x) => x
                .as_f64()
                .ok_or_else(|| self.err(key, format!("expected a number, found {x}"))),
        }
    }

    /// A boolean, `default` when absent or null.
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        match self.v.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(x) => x
                .as_bool()
                .ok_or_else(|| self.err(key, format!("expected true/false, found {x}"))),
        }
    }

    /// Fails unless `key` is absent, null or equal to `allowed`.
    pub fn require(&self, key: &str, allowed: &Value, why: &str) -> Result<()> {
        match self.v.get(key) {
            None | Some(Value::Null) => Ok(()),
            Some(x) if x == allowed => Ok(()),
            Some(x) => Err(self.err(key, format!("{x} is not supported ({why})"))),
        }
    }

    /// The keys every Llama-family config shares: sizes, heads, norm epsilon, RoPE base,
    /// tying and attention bias. `head_dim` defaults to `head_dim_default`, or to
    /// `hidden_size / num_attention_heads` when `None`. Architecture-specific fields
    /// (RoPE scaling, MLP bias, q/k norm) start off and are set by the caller. Also checks that
    /// the activation is SiLU.
    pub fn common_spec(
        &self,
        head_dim_default: Option<usize>,
        max_positions_default: usize,
    ) -> Result<DecoderSpec> {
        self.require(
            "hidden_act",
            &json!("silu"),
            "the engine implements SwiGLU with SiLU",
        )?;
        let heads = self.usize("num_attention_heads")?;
        let hidden = self.usize("hidden_size")?;
        let head_dim_default =
            head_dim_default.unwrap_or_else(|| hidden.checked_div(heads).unwrap_or(0));
        Ok(DecoderSpec {
            vocab_size: self.usize("vocab_size")?,
            hidden_size: hidden,
            intermediate_size: self.usize("intermediate_size")?,
            num_layers: self.usize("num_hidden_layers")?,
            num_heads: heads,
            num_kv_heads: self.usize_or("num_key_value_heads", heads)?,
            head_dim: self.usize_or("head_dim", head_dim_default)?,
            rms_norm_eps: self.f64_or("rms_norm_eps", 1e-6)?,
            rope_theta: self.rope_theta()?,
            rope_scaling: None,
            max_position_embeddings: self
                .usize_or("max_position_embeddings", max_positions_default)?,
            tie_word_embeddings: self.bool_or("tie_word_embeddings", false)?,
            attention_bias: self.bool_or("attention_bias", false)?,
            mlp_bias: false,
            qk_norm: false,
        })
    }

    /// The RoPE base: `rope_theta`, or `rope_parameters.rope_theta` (the layout transformers 5
    /// writes), or 10000.
    pub fn rope_theta(&self) -> Result<f64> {
        match self.v.get("rope_theta") {
            None | Some(Value::Null) => match self.rope_parameters() {
                Some(rp) => HfConfig {
                    v: rp,
                    arch: self.arch,
                }
                .f64_or("rope_theta", 10000.0)
                .map_err(|_| self.err("rope_parameters.rope_theta", "expected a number")),
                None => Ok(10000.0),
            },
            Some(_) => self.f64_or("rope_theta", 10000.0),
        }
    }

    /// transformers 5's `rope_parameters` object (RoPE base and scaling in one), if present.
    fn rope_parameters(&self) -> Option<&Value> {
        self.v.get("rope_parameters").filter(|v| v.is_object())
    }

    /// The RoPE scaling settings and the key they were read from: `rope_scaling` (transformers
    /// 4), else `rope_parameters` (transformers 5). `None` when absent or of type `default`.
    pub fn rope_scaling_section(&self) -> Option<(&'static str, &Value)> {
        let (key, v) = match self.v.get("rope_scaling").filter(|v| !v.is_null()) {
            Some(v) => ("rope_scaling", v),
            None => ("rope_parameters", self.rope_parameters()?),
        };
        let kind = v
            .get("rope_type")
            .or_else(|| v.get("type"))
            .and_then(Value::as_str)
            .unwrap_or(if key == "rope_parameters" {
                "default"
            } else {
                ""
            });
        (kind != "default").then_some((key, v))
    }

    /// Checks `model_type`.
    pub fn model_type(&self, expected: &[&str]) -> Result<()> {
        match self.v.get("model_type").and_then(Value::as_str) {
            Some(t) if expected.contains(&t) => Ok(()),
            Some(t) => Err(self.err(
                "model_type",
                format!("`{t}`; this backbone reads {}", expected.join(", ")),
            )),
            None => Err(self.err("model_type", "missing")),
        }
    }
}
