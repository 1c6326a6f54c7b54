//! `llm`: topic names written by a decoder (paper Table 13): the texts of each topic's items
//! nearest its center go into the taxonomy-editor prompt, the model answers
//! `Theme: <≤ 10 words>` (by default the answer is started with `Theme:` for the model to
//! complete, which keeps small models in the format). Unparsable answers fall back to the
//! `keywords` name, with a warning; duplicate names get a suffix.

use std::path::PathBuf;

use serde::Deserialize;
use siren_core::engine::{self, GenerationConfig, Message};
use siren_core::traits::TopicNamer;
use siren_core::{CoreError, Plugin, Result};

/// Parameters of `llm`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmNamerParams {
    /// A GGUF file or a HF model folder (default: the fetched SmolLM2-135M-Instruct).
    pub model: PathBuf,
    /// Backbone kind for HF folders (default: the config's `model_type`).
    pub backbone: Option<String>,
    /// Compute device spec (default: the run's `device` in a stage, else `auto`).
    pub device: String,
    /// The category word, plural form is "{category} entries" (default "movie").
    pub category: String,
    /// Items per prompt, nearest the center first (paper M = 100; default 100).
    pub max_items: usize,
    /// Characters kept of each item text (default 200).
    pub max_item_chars: usize,
    /// Tokens generated per name (default 32).
    pub max_new_tokens: usize,
    /// Sampling temperature (0 = greedy, the default).
    pub temperature: f32,
    /// Start the assistant's answer with `Theme:` so that small models answer in the format
    /// (default true).
    pub prefill: bool,
}

impl Default for LlmNamerParams {
    fn default() -> Self {
        Self {
            model: PathBuf::from("assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
            backbone: None,
            device: "auto".into(),
            category: "movie".into(),
            max_items: 100,
            max_item_chars: 200,
            max_new_tokens: 32,
            temperature: 0.0,
            prefill: true,
        }
    }
}

/// The `llm` namer.
#[derive(Debug, Clone)]
pub struct LlmNamer {
    p: LlmNamerParams,
}

impl Plugin for LlmNamer {
    type Params = LlmNamerParams;
    const DEVICE_PARAM: bool = true;
    const SUMMARY: &'static str =
        "a decoder names each topic from its central items (Table 13 prompt)";
    fn from_params(p: LlmNamerParams) -> Result<Self> {
        if p.max_items == 0 || p.max_new_tokens == 0 {
            return Err(CoreError::config(
                "topic-namer llm",
                "max_items and max_new_tokens must be at least 1",
            ));
        }
        Ok(Self { p })
    }
}

siren_core::register_namer!("llm", LlmNamer);

/// The Table 13 system prompt.
pub fn system_prompt(m: usize, category: &str) -> String {
    format!(
        "You are an expert taxonomy editor. Given a set of {m} {category} entries representing items \
         nearest to the cluster center, produce a single concise topic name that best summarizes \
         their shared theme.\n\n[INSTRUCTIONS]\nAnalyze the implicit commonalities across the \
         provided {category} entries (title, tags, brief description). Focus on high-level \
         semantics, not surface details.\n\n[CONSTRAINTS]\n1. Output a single short phrase (≤ 10 \
         words).\n2. Use concise, abstract language (no full sentences).\n3. Do not list specific \
         titles or examples.\n4. Output format: Theme: <concise phrase>"
    )
}

/// The phrase after `Theme:` (case-insensitive), cleaned of markup and quotes and cut to ten
/// words; `None` when absent or empty.
pub fn parse_theme(output: &str) -> Option<String> {
    let lower = output.to_lowercase();
    let at = lower.find("theme:")?;
    let rest = &output[at + "theme:".len()..];
    let line = rest.trim_start().lines().next().unwrap_or("");
    let cleaned: String = line
        .trim()
        .trim_matches(|c: char| matches!(c, '*' | '"' | '\'' | '`' | '<' | '>' | '.' | ' ' | '_'))
        .to_string();
    let words: Vec<&str> = cleaned.split_whitespace().take(10).collect();
    // An echo of the instruction's placeholder is not a name.
    if words.is_empty() || cleaned.eq_ignore_ascii_case("concise phrase") {
        None
    } else {
        Some(words.join(" "))
    }
}

impl TopicNamer for LlmNamer {
    fn name(&self, central_texts: &[Vec<String>], seed: u64) -> Result<Vec<String>> {
        let p = &self.p;
        if !p.model.exists() {
            return Err(CoreError::config(
                "topic-namer llm.model",
                format!(
                    "{} does not exist (bash scripts/fetch-assets.sh fetches the default)",
                    p.model.display()
                ),
            ));
        }
        let (device, label) = siren_core::device::open(&p.device)?;
        let (model, tok) =
            siren_core::loading::load_model(&p.model, p.backbone.as_deref(), &device)?;
        tracing::info!(
            "naming {} topics with {} on {label}",
            central_texts.len(),
            p.model.display()
        );
        let fallback = crate::keywords::Keywords::from_params(Default::default())?
            .name(central_texts, seed)?;
        let bar = siren_core::progress::bar(central_texts.len() as u64, "naming topics");
        let mut names = Vec::with_capacity(central_texts.len());
        for (t, texts) in central_texts.iter().enumerate() {
            let items: Vec<String> = texts
                .iter()
                .take(p.max_items)
                .enumerate()
                .map(|(i, s)| {
                    let s: String = s
                        .replace('\n', " ")
                        .chars()
                        .take(p.max_item_chars)
                        .collect();
                    format!("{}. {s}", i + 1)
                })
                .collect();
            let messages = [
                Message::new("system", &system_prompt(items.len(), &p.category)),
                Message::new(
                    "user",
                    &format!("Nearest-to-center items:\n{}", items.join("\n")),
                ),
            ];
            let mut text = tok.apply_chat_template(&messages, true)?;
            if p.prefill {
                text.push_str("Theme:");
            }
            let ids = tok.encode(&text, false)?;
            let cfg = GenerationConfig {
                max_new_tokens: p.max_new_tokens,
                temperature: p.temperature,
                seed: seed.wrapping_add(t as u64),
                stop_tokens: tok.eos.into_iter().collect(),
                stop: tok.stop_strings(&[if p.prefill { "\n" } else { "\n\n" }.to_string()]),
                pad_id: tok.pad.or(tok.eos).unwrap_or(0),
                ..GenerationConfig::default()
            };
            let out = engine::generate(&model, &[ids], &cfg, &device)?;
            let mut answer = tok.decode(&out[0], true)?;
            if p.prefill {
                answer.insert_str(0, "Theme:");
            }
            let name = match parse_theme(&answer) {
                Some(n) => n,
                None => {
                    tracing::warn!(
                        "topic {t}: no `Theme:` in {answer:?}; using keywords `{}`",
                        fallback[t]
                    );
                    fallback[t].clone()
                }
            };
            tracing::debug!("topic {t}: {name}");
            names.push(name);
            bar.inc(1);
        }
        bar.finish_and_clear();
        Ok(crate::keywords::dedupe(names))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn themes_are_parsed_and_cleaned() {
        assert_eq!(
            parse_theme("Theme: Space horror survival").as_deref(),
            Some("Space horror survival")
        );
        assert_eq!(
            parse_theme("**Theme:** \"Romantic comedies in Europe\".").as_deref(),
            Some("Romantic comedies in Europe")
        );
        assert_eq!(
            parse_theme("Sure!\ntheme:   Family animation\nMore text").as_deref(),
            Some("Family animation")
        );
        assert_eq!(
            parse_theme("Theme: one two three four five six seven eight nine ten eleven")
                .as_deref(),
            Some("one two three four five six seven eight nine ten")
        );
        assert_eq!(parse_theme("Theme: <concise phrase>"), None);
        assert_eq!(parse_theme("Theme:   "), None);
        assert_eq!(parse_theme("Horror movies"), None);
        assert_eq!(parse_theme(""), None);
    }
}
