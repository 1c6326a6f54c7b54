//! `siren generate`: run a decoder on one prompt (greedy or sampled), from a GGUF file or a HF
//! folder, optionally with a PEFT LoRA adapter.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use siren_core::burn::tensor::FloatDType;
use siren_core::engine::{self, Message};

/// The arguments of `siren generate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A `.gguf` file or a HF model folder (config.json, tokenizer.json, *.safetensors).
    #[arg(long)]
    pub model: std::path::PathBuf,
    /// Backbone kind for HF folders (default: the config's `model_type`).
    #[arg(long)]
    pub backbone: Option<String>,
    /// Compute device: auto, flex, wgpu, tch-cpu, tch-cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// The prompt.
    #[arg(long)]
    pub prompt: String,
    /// Wrap the prompt in the model's chat template as a user message.
    #[arg(long)]
    pub chat: bool,
    /// System message (with --chat).
    #[arg(long)]
    pub system: Option<String>,
    /// Maximum new tokens.
    #[arg(long, default_value_t = 64)]
    pub max_new_tokens: usize,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Sample from the k most likely tokens only (0 = all).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Nucleus sampling mass (1 = off).
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Sampler seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stop when the output contains this string (repeatable).
    #[arg(long = "stop")]
    pub stop: Vec<String>,
    /// A PEFT LoRA adapter folder to apply (adapter_config.json + adapter_model.safetensors).
    #[arg(long)]
    pub adapter: Option<std::path::PathBuf>,
    /// Float type of the weights and activations: f32, bf16 or f16 (where the device
    /// computes in it).
    #[arg(long, default_value = "f32")]
    pub dtype: String,
}

/// Options of `siren generate`.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    /// A `.gguf` file or a HF model folder.
    pub model: &'a Path,
    /// Backbone kind for HF folders (default: `model_type`).
    pub backbone: Option<&'a str>,
    /// Device spec.
    pub device: &'a str,
    /// The prompt.
    pub prompt: &'a str,
    /// System message (chat only).
    pub system: Option<&'a str>,
    /// Apply the chat template.
    pub chat: bool,
    /// Maximum new tokens.
    pub max_new_tokens: usize,
    /// Sampling temperature (0 = greedy).
    pub temperature: f32,
    /// Top-k filter (0 = off).
    pub top_k: usize,
    /// Top-p filter (1 = off).
    pub top_p: f32,
    /// Sampler seed.
    pub seed: u64,
    /// Stop strings.
    pub stop: &'a [String],
    /// PEFT adapter folder.
    pub adapter: Option<&'a Path>,
    /// Float type: `f32`, `bf16` or `f16`.
    pub dtype: &'a str,
}

impl<'a> Options<'a> {
    /// Greedy generation of up to `max_new_tokens` from `model` on `device`.
    pub fn greedy(
        model: &'a Path,
        device: &'a str,
        prompt: &'a str,
        max_new_tokens: usize,
    ) -> Self {
        Self {
            model,
            backbone: None,
            device,
            prompt,
            system: None,
            chat: false,
            max_new_tokens,
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            seed: 0,
            stop: &[],
            adapter: None,
            dtype: "f32",
        }
    }
}

/// Generates and returns the completion text (also printed).
pub fn run(o: &Options<'_>) -> anyhow::Result<String> {
    let (device, label) = siren_backends::open(o.device)?;
    let t = Instant::now();
    let (mut model, tokenizer) = siren_core::loading::load_model(o.model, o.backbone, &device)?;
    tracing::info!(
        "loaded {} ({} layers, hidden {}) on {label} in {:.1}s",
        o.model.display(),
        model.spec.num_layers,
        model.spec.hidden_size,
        t.elapsed().as_secs_f64()
    );
    if let Some(dir) = o.adapter {
        let (m, spec) = model
            .load_peft(dir)
            .with_context(|| format!("loading adapter {}", dir.display()))?;
        tracing::info!(
            "adapter {} (r {}, alpha {}) merged",
            dir.display(),
            spec.r,
            spec.alpha
        );
        model = m.merge_lora();
    }
    let dtype = siren_core::device::float_dtype(o.dtype, "--dtype")?;
    if dtype != FloatDType::F32 {
        model = model.to_float_dtype(dtype)?;
    }
    let ids = if o.chat {
        let mut messages = Vec::new();
        if let Some(s) = o.system {
            messages.push(Message::new("system", s));
        }
        messages.push(Message::new("user", o.prompt));
        let text = tokenizer.apply_chat_template(&messages, true)?;
        tokenizer.encode(&text, false)?
    } else {
        tokenizer.encode(o.prompt, true)?
    };
    let cfg = engine::GenerationConfig {
        max_new_tokens: o.max_new_tokens,
        temperature: o.temperature,
        top_k: o.top_k,
        top_p: o.top_p,
        seed: o.seed,
        stop_tokens: tokenizer.eos.into_iter().collect(),
        stop: tokenizer.stop_strings(o.stop),
        pad_id: tokenizer.pad.or(tokenizer.eos).unwrap_or(0),
        use_cache: true,
        ..engine::GenerationConfig::default()
    };
    let t = Instant::now();
    let out = engine::generate(&model, std::slice::from_ref(&ids), &cfg, &device)
        .context("generating")?;
    let secs = t.elapsed().as_secs_f64();
    let tokens = &out[0];
    let text = tokenizer.decode(tokens, true)?;
    tracing::info!(
        "{} prompt tokens, {} new tokens in {secs:.2}s ({:.1} tokens/s)",
        ids.len(),
        tokens.len(),
        tokens.len() as f64 / secs.max(1e-9)
    );
    println!("{text}");
    Ok(text)
}
