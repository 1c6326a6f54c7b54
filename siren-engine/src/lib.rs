//! The decoder engine: one burn module shared by every decoder-only architecture (Llama,
//! Qwen3, ...). It knows nothing of runs, plugins, stages or config files: an architecture
//! reaches it as a [`DecoderSpec`] and HF-named checkpoint tensors, which siren-core's
//! `Backbone` slot makes from a HF `config.json` (siren-core's `loading` module picks the
//! backbone by name and calls [`Decoder::from_weights`]).
//!
//! Layers inside the crate: [`hash`] and [`files`] are leaf helpers (stable hashing, atomic
//! writes) that every layer above may use; the engine modules use them and nothing above.
//!
//! Semantics follow HF transformers exactly (the parity tests in `tests/tests/engine_parity.rs`
//! compare logits, hidden states and greedy tokens with fixtures made by
//! `scripts/make-parity-fixtures.py`):
//! - RMSNorm `x / sqrt(mean(x²) + eps) · w`; RoPE with `rotate_half` and optional Llama-3
//!   frequency scaling; grouped-query attention with causal and padding masks; Qwen3 per-head
//!   q/k RMSNorm before RoPE; SwiGLU MLP; tied or separate `lm_head`;
//! - hidden states as HF's `output_hidden_states`: the embedding output, the output of layers
//!   `1..L-1`, and the final-normed output of layer `L`.

#![warn(missing_docs)]

mod attention;
mod cache;
mod config;
mod decoder;
mod error;
pub mod files;
mod generate;
pub mod gguf;
pub mod hash;
mod infer;
mod lora;
mod params;
mod peft;
mod prefix;
mod rope;
pub mod testkit;
mod token_rows;
mod tokenizer;
mod vocab;
mod weights;

pub use cache::{KvCache, LayerKv};
pub use config::{DecoderSpec, RopeScaling};
pub use decoder::{Batch, Decoder, ForwardOutput};
pub use error::{EngineError, Result};
pub use generate::{
    GenerationConfig, StopFn, generate, generate_shared, greedy, sampling_distribution,
};
pub use infer::{
    CompletionScores, PositionStates, SharedPrefix, completion_logprobs, completion_logprobs_at,
    shared_prefix_logprobs, states_at,
};
pub use lora::{Adapter, LoraLinear, LoraSpec};
pub use prefix::{Prefix, common_prefix_len, last_logits};
pub use token_rows::TokenRows;
pub use tokenizer::{Message, TextTokenizer};
pub use vocab::{ANSWER_TOKENS, add_answer_tokens, add_tokens};
pub use weights::{TensorMap, Weights, serialize_f32};
