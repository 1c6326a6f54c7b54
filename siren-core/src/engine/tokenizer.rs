//! Tokenizers for the decoder: HF `tokenizer.json` folders, or byte-level BPE rebuilt from GGUF
//! metadata (`tokenizer.ggml.*`), plus chat templates rendered with a real Jinja engine
//! (minijinja), as HF `apply_chat_template` does.

use std::path::Path;
use std::sync::{Arc, Mutex};

use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, PreTokenizerWrapper, Tokenizer};

use super::gguf::{Gguf, Value};
use crate::{CoreError, Result};

/// One chat message.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl Message {
    /// A message with `role` and `content`.
    pub fn new(role: &str, content: &str) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// A tokenizer with its special tokens and chat template.
pub struct TextTokenizer {
    inner: Tokenizer,
    /// Beginning-of-sequence token.
    pub bos: Option<u32>,
    /// End-of-sequence token (generation stops there).
    pub eos: Option<u32>,
    /// Padding token.
    pub pad: Option<u32>,
    /// Jinja chat template.
    pub chat_template: Option<String>,
    /// The compiled template, with the source it was compiled from (recompiled when
    /// `chat_template` changes).
    compiled: Mutex<Option<(String, Arc<minijinja::Environment<'static>>)>>,
}

/// Name of the chat template inside its environment.
const CHAT: &str = "chat";

fn tok_err(origin: &str, e: impl std::fmt::Display) -> CoreError {
    CoreError::Data(format!("tokenizer {origin}: {e}"))
}

impl TextTokenizer {
    /// Rebuilds the byte-level BPE tokenizer stored in a GGUF file.
    pub fn from_gguf(g: &Gguf, origin: &str) -> Result<Self> {
        let model = g
            .metadata
            .get("tokenizer.ggml.model")
            .and_then(Value::as_str)
            .unwrap_or("");
        if model != "gpt2" {
            return Err(tok_err(
                origin,
                format!("`tokenizer.ggml.model = {model}` is not supported (gpt2 byte-level BPE)"),
            ));
        }
        let strings = |key: &str| -> Result<Vec<String>> {
            match g.metadata.get(key) {
                Some(Value::Array(v)) => v
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| tok_err(origin, format!("`{key}` holds a non-string")))
                    })
                    .collect(),
                _ => Err(tok_err(origin, format!("metadata `{key}` is missing"))),
            }
        };
        let tokens = strings("tokenizer.ggml.tokens")?;
        let merges: Vec<(String, String)> = strings("tokenizer.ggml.merges")?
            .into_iter()
            .map(|m| match m.split_once(' ') {
                Some((a, b)) => Ok((a.to_string(), b.to_string())),
                None => Err(tok_err(origin, format!("merge `{m}` is not `a b`"))),
            })
            .collect::<Result<_>>()?;
        let types: Vec<i64> = match g.metadata.get("tokenizer.ggml.token_type") {
            Some(Value::Array(v)) => v
                .iter()
                .map(|x| if let Value::Int(i) = x { *i } else { 1 })
                .collect(),
            _ => vec![1; tokens.len()],
        };
        let vocab: Vocab = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| tok_err(origin, e))?;
        let mut inner = Tokenizer::new(bpe);
        let pre = g
            .metadata
            .get("tokenizer.ggml.pre")
            .and_then(Value::as_str)
            .unwrap_or("default");
        let byte_level = ByteLevel::new(false, true, true);
        let pre_tokenizer: PreTokenizerWrapper = match pre {
            "smollm" => Sequence::new(vec![Digits::new(true).into(), byte_level.into()]).into(),
            "default" | "gpt2" => byte_level.into(),
            other => {
                return Err(tok_err(
                    origin,
                    format!("pre-tokenizer `{other}` is not supported (smollm, gpt2)"),
                ));
            }
        };
        inner.with_pre_tokenizer(Some(pre_tokenizer));
        inner.with_decoder(Some(ByteLevel::default()));
        // Control (3) and user-defined (4) tokens are matched whole, never split by BPE.
        let special: Vec<AddedToken> = tokens
            .iter()
            .zip(&types)
            .filter(|(_, t)| **t == 3 || **t == 4)
            .map(|(tok, t)| AddedToken::from(tok.clone(), *t == 3))
            .collect();
        inner
            .add_special_tokens(special)
            .map_err(|e| tok_err(origin, e))?;
        let id = |key: &str| {
            g.metadata.get(key).and_then(|v| {
                if let Value::Int(i) = v {
                    Some(*i as u32)
                } else {
                    None
                }
            })
        };
        Ok(Self {
            inner,
            bos: id("tokenizer.ggml.bos_token_id"),
            eos: id("tokenizer.ggml.eos_token_id"),
            pad: id("tokenizer.ggml.padding_token_id"),
            chat_template: g
                .metadata
                .get("tokenizer.chat_template")
                .and_then(Value::as_str)
                .map(str::to_string),
            compiled: Mutex::new(None),
        })
    }

    /// Loads `tokenizer.json` (and `tokenizer_config.json` for the chat template and special
    /// tokens) from a HF folder.
    pub fn from_hf_dir(dir: &Path) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        let inner =
            Tokenizer::from_file(&path).map_err(|e| tok_err(&path.display().to_string(), e))?;
        let cfg: serde_json::Value = std::fs::read_to_string(dir.join("tokenizer_config.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        Ok(Self::with_config(inner, &cfg))
    }

    /// A tokenizer from the text of a `tokenizer.json` and a `tokenizer_config.json` value
    /// (special tokens and chat template).
    pub fn from_json(tokenizer_json: &str, config: &serde_json::Value) -> Result<Self> {
        let inner: Tokenizer = tokenizer_json
            .parse()
            .map_err(|e| tok_err("tokenizer.json", e))?;
        Ok(Self::with_config(inner, config))
    }

    fn with_config(inner: Tokenizer, cfg: &serde_json::Value) -> Self {
        let token = |key: &str| -> Option<u32> {
            let v = &cfg[key];
            let s = v.as_str().or_else(|| v["content"].as_str())?;
            inner.token_to_id(s)
        };
        Self {
            bos: token("bos_token"),
            eos: token("eos_token"),
            pad: token("pad_token"),
            chat_template: cfg["chat_template"].as_str().map(str::to_string),
            inner,
            compiled: Mutex::new(None),
        }
    }

    /// Token ids of `text` (`special`: add the tokenizer's BOS/EOS post-processing, if any).
    pub fn encode(&self, text: &str, special: bool) -> Result<Vec<u32>> {
        Ok(self
            .inner
            .encode(text, special)
            .map_err(|e| tok_err("encode", e))?
            .get_ids()
            .to_vec())
    }

    /// Text of `ids`, optionally without special tokens.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special)
            .map_err(|e| tok_err("decode", e))
    }

    /// A stop predicate for [`super::GenerationConfig::stop`]: true once the decoded tail of
    /// the generated tokens contains one of `strings` (HF `stop_strings`; only the last few
    /// tokens are decoded, so the check stays cheap on long outputs).
    pub fn stop_strings(&self, strings: &[String]) -> Option<super::StopFn> {
        let strings: Vec<String> = strings.iter().filter(|s| !s.is_empty()).cloned().collect();
        if strings.is_empty() {
            return None;
        }
        let inner = self.inner.clone();
        // A token is at least one byte, so the longest string fits in that many tokens (+1
        // for a token that straddles its start).
        let window = strings.iter().map(String::len).max().unwrap_or(1) + 1;
        Some(std::sync::Arc::new(move |ids: &[u32]| {
            let tail = &ids[ids.len().saturating_sub(window)..];
            inner
                .decode(tail, false)
                .is_ok_and(|text| strings.iter().any(|s| text.contains(s.as_str())))
        }))
    }

    /// Adds `tokens` as whole, non-special tokens (never split, kept when decoding) and
    /// returns their ids; a token already in the vocabulary keeps its id.
    pub fn add_tokens(&mut self, tokens: &[&str]) -> Result<Vec<u32>> {
        let new: Vec<AddedToken> = tokens
            .iter()
            .map(|t| AddedToken::from(t.to_string(), false))
            .collect();
        self.inner
            .add_tokens(new)
            .map_err(|e| tok_err("add_tokens", e))?;
        tokens
            .iter()
            .map(|t| {
                self.inner
                    .token_to_id(t)
                    .ok_or_else(|| tok_err("add_tokens", format!("`{t}` was not added")))
            })
            .collect()
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The id that pads batches: the pad token, else EOS, else 0.
    pub fn pad_id(&self) -> u32 {
        self.pad.or(self.eos).unwrap_or(0)
    }

    /// Text of generated ids: end and padding tokens dropped, other special tokens kept
    /// (answer tags may be special tokens).
    pub fn decode_generated(&self, ids: &[u32]) -> Result<String> {
        let kept: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|t| Some(*t) != self.eos && Some(*t) != self.pad)
            .collect();
        self.decode(&kept, false)
    }

    /// The id of a token string.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The environment holding `template` compiled, built once per template source.
    fn compiled_template(&self, template: &str) -> Result<Arc<minijinja::Environment<'static>>> {
        let mut slot = self.compiled.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((src, env)) = slot.as_ref()
            && src == template
        {
            return Ok(env.clone());
        }
        let mut env = minijinja::Environment::new();
        env.add_function(
            "raise_exception",
            |msg: String| -> std::result::Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    msg,
                ))
            },
        );
        env.add_template_owned(CHAT, template.to_string())
            .map_err(|e| tok_err("chat template", e))?;
        let env = Arc::new(env);
        *slot = Some((template.to_string(), env.clone()));
        Ok(env)
    }

    /// Renders the chat template (HF `apply_chat_template` with `tokenize=False`).
    pub fn apply_chat_template(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String> {
        let template = self
            .chat_template
            .as_deref()
            .ok_or_else(|| tok_err("chat", "the model has no chat template"))?;
        let env = self.compiled_template(template)?;
        let tpl = env
            .get_template(CHAT)
            .map_err(|e| tok_err("chat template", e))?;
        let name = |id: Option<u32>| {
            id.and_then(|i| self.inner.id_to_token(i))
                .unwrap_or_default()
        };
        tpl.render(minijinja::context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => name(self.bos),
            eos_token => name(self.eos),
        })
        .map_err(|e| tok_err("chat template", e))
    }
}
