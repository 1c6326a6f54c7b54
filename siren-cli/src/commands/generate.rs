//! `siren generate`: run a decoder on one prompt (greedy), from a GGUF file or a HF folder.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use siren_core::engine::{self, Message, TextTokenizer};

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
}

/// Generates and returns the completion text (also printed).
pub fn run(o: &Options<'_>) -> anyhow::Result<String> {
    let (device, label) = siren_backends::open(o.device)?;
    let t = Instant::now();
    let (model, tokenizer) = if o.model.is_dir() {
        let m = engine::load_hf_dir(o.model, o.backbone, &device)?;
        (m, TextTokenizer::from_hf_dir(o.model)?)
    } else {
        engine::load_gguf(o.model, &device)?
    };
    tracing::info!(
        "loaded {} ({} layers, hidden {}) on {label} in {:.1}s",
        o.model.display(),
        model.spec.num_layers,
        model.spec.hidden_size,
        t.elapsed().as_secs_f64()
    );
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
    let stop: Vec<u32> = tokenizer.eos.into_iter().collect();
    let pad = tokenizer.pad.or(tokenizer.eos).unwrap_or(0);
    let t = Instant::now();
    let out = engine::greedy(
        &model,
        std::slice::from_ref(&ids),
        o.max_new_tokens,
        pad,
        &stop,
        true,
        &device,
    )
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
