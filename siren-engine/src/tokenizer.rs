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
use crate::{EngineError, Result};

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

fn tok_err(origin: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::Data(format!("tokenizer {origin}: {e}"))
}

/// The chat template of a `tokenizer_config.json` value: a string, or a list of named
/// templates (`[{"name": "default", "template": ...}, ...]`) of which the default is taken.
fn chat_template(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(named) => named
            .iter()
            .find(|t| t["name"] == "default")
            .or_else(|| named.first())
            .and_then(|t| t["template"].as_str())
            .map(str::to_string),
        _ => None,
    }
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
    /// tokens) from a HF folder. A `chat_template.jinja` beside them (where newer HF folders
    /// keep the template) is the chat template, as in HF.
    pub fn from_hf_dir(dir: &Path) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        let inner =
            Tokenizer::from_file(&path).map_err(|e| tok_err(&path.display().to_string(), e))?;
        let cfg_path = dir.join("tokenizer_config.json");
        let mut cfg: serde_json::Value = match std::fs::read_to_string(&cfg_path) {
            Ok(t) => {
                serde_json::from_str(&t).map_err(|e| tok_err(&cfg_path.display().to_string(), e))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::Value::Null,
            Err(e) => return Err(crate::EngineError::io(&cfg_path, e)),
        };
        let jinja = dir.join("chat_template.jinja");
        match std::fs::read_to_string(&jinja) {
            Ok(t) => {
                if !cfg.is_object() {
                    cfg = serde_json::json!({});
                }
                cfg["chat_template"] = t.into();
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(crate::EngineError::io(&jinja, e)),
        }
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
            chat_template: chat_template(&cfg["chat_template"]),
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
        // Python's string and dict methods (`startswith`, `split`, `rstrip`, `items`, ...),
        // which HF templates call as Jinja2 allows (Qwen3's does).
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        // HF renders with `trim_blocks` and `lstrip_blocks` on.
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Llama-3's published chat template.
    const LLAMA3: &str = r#"{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>

'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>

' }}{% endif %}"#;

    /// A template written as Qwen3's is: Python string methods (`strip`, `startswith`,
    /// `rstrip`, `split`, `lstrip`, `endswith`, `upper`), a reversed slice, a namespace.
    const PY_STYLE: &str = r#"{%- if messages[0].role == 'system' %}
    {{- '<|im_start|>system\n' + messages[0].content.strip() + '<|im_end|>\n' }}
{%- endif %}
{%- set ns = namespace(last_user=-1) %}
{%- for message in messages[::-1] %}
    {%- if ns.last_user < 0 and message.role == 'user' and not message.content.startswith('<tool_response>') %}
        {%- set ns.last_user = (messages|length - 1) - loop.index0 %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if message.role == 'user' %}
        {{- '<|im_start|>user\n' + message.content.rstrip() + '<|im_end|>\n' }}
    {%- elif message.role == 'assistant' %}
        {%- set content = message.content %}
        {%- if '</think>' in content %}
            {%- set content = content.split('</think>')[-1].lstrip('\n') %}
        {%- endif %}
        {%- if loop.index0 > ns.last_user and content.endswith('.') %}
            {{- '<|im_start|>assistant\n' + content + '<|im_end|>\n' }}
        {%- else %}
            {{- '<|im_start|>assistant\n' + content.upper() + '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}"#;

    /// Block tags on lines of their own (what `trim_blocks` / `lstrip_blocks` are for).
    const BLOCKS: &str = "{% for m in messages %}\n    {% if m.role != 'system' %}\n{{ m.role }}\n    {% endif %}\n{% endfor %}";

    fn messages() -> Vec<Message> {
        [
            ("system", "  You rate movies. "),
            ("user", "Rate Heat.  \n"),
            ("assistant", "<think>\nliked crime\n</think>\n\nA four."),
        ]
        .iter()
        .map(|(r, c)| Message {
            role: (*r).into(),
            content: (*c).into(),
        })
        .collect()
    }

    /// A HF folder with the tiny tokenizer, `extra` in its `tokenizer_config.json` and, when
    /// given, a `chat_template.jinja`.
    fn folder(extra: serde_json::Value, jinja: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("tokenizer.json"),
            crate::testkit::tiny_tokenizer_json(),
        )
        .unwrap();
        let mut cfg = serde_json::json!({"eos_token": "<eos>", "bos_token": "<eos>"});
        for (k, v) in extra.as_object().unwrap() {
            cfg[k] = v.clone();
        }
        std::fs::write(dir.path().join("tokenizer_config.json"), cfg.to_string()).unwrap();
        if let Some(t) = jinja {
            std::fs::write(dir.path().join("chat_template.jinja"), t).unwrap();
        }
        dir
    }

    /// The expected texts are Python jinja2 3.1.6's rendering of the same templates and
    /// messages with HF's settings (`ImmutableSandboxedEnvironment(trim_blocks=True,
    /// lstrip_blocks=True)`, bos_token `<eos>` here).
    #[test]
    fn published_and_python_style_templates_render_as_hf_renders_them() {
        let cases = [
            (
                LLAMA3,
                false,
                "<eos><|start_header_id|>system<|end_header_id|>\n\nYou rate movies.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nRate Heat.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n<think>\nliked crime\n</think>\n\nA four.<|eot_id|>",
            ),
            (
                LLAMA3,
                true,
                "<eos><|start_header_id|>system<|end_header_id|>\n\nYou rate movies.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nRate Heat.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n<think>\nliked crime\n</think>\n\nA four.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            ),
            (
                PY_STYLE,
                false,
                "<|im_start|>system\nYou rate movies.<|im_end|>\n<|im_start|>user\nRate Heat.<|im_end|>\n<|im_start|>assistant\nA four.<|im_end|>\n",
            ),
            (
                PY_STYLE,
                true,
                "<|im_start|>system\nYou rate movies.<|im_end|>\n<|im_start|>user\nRate Heat.<|im_end|>\n<|im_start|>assistant\nA four.<|im_end|>\n<|im_start|>assistant\n",
            ),
            (BLOCKS, false, "user\nassistant\n"),
        ];
        for (k, (template, gen_prompt, want)) in cases.iter().enumerate() {
            // From tokenizer_config.json ...
            let dir = folder(serde_json::json!({"chat_template": template}), None);
            let tok = TextTokenizer::from_hf_dir(dir.path()).unwrap();
            let got = tok.apply_chat_template(&messages(), *gen_prompt).unwrap();
            assert_eq!(&got, want, "case {k} from tokenizer_config.json");
            // ... and from chat_template.jinja, which wins over tokenizer_config.json's.
            let dir = folder(
                serde_json::json!({"chat_template": "ignored"}),
                Some(template),
            );
            let tok = TextTokenizer::from_hf_dir(dir.path()).unwrap();
            let got = tok.apply_chat_template(&messages(), *gen_prompt).unwrap();
            assert_eq!(&got, want, "case {k} from chat_template.jinja");
        }
        // A list of named templates: the default one.
        let named = serde_json::json!({"chat_template": [
            {"name": "tool_use", "template": "tools"},
            {"name": "default", "template": BLOCKS},
        ]});
        let dir = folder(named, None);
        let tok = TextTokenizer::from_hf_dir(dir.path()).unwrap();
        assert_eq!(
            tok.apply_chat_template(&messages(), false).unwrap(),
            "user\nassistant\n"
        );
    }

    #[test]
    fn a_broken_tokenizer_config_is_an_error_naming_the_file() {
        let dir = folder(serde_json::json!({}), None);
        std::fs::write(dir.path().join("tokenizer_config.json"), "{not json").unwrap();
        let e = TextTokenizer::from_hf_dir(dir.path())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("tokenizer_config.json"), "{e}");
    }
}
