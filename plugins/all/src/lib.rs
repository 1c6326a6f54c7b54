//! Links every built-in SIREN-rs plugin into a binary. Add `use siren_plugins as _;` to a binary
//! (the `siren` CLI does) and every built-in name resolves from a config.
#![warn(missing_docs)]

pub use siren_backbones;
pub use siren_baselines;
pub use siren_clusterers;
pub use siren_encoders;
pub use siren_internalizers;
pub use siren_lora;
pub use siren_retrievers;
pub use siren_rewards;
pub use siren_sketch;
pub use siren_trainers;

/// Names that every build must resolve, by slot: the guard against a plugin crate that is
/// silently not linked.
pub const BUILT_IN: &[(&str, &[&str])] = &[
    ("backbone", &["llama", "qwen3"]),
    ("dataset", &["amazon2023", "movielens", "siren-jsonl"]),
    ("text-encoder", &["bert", "hashing"]),
    ("topic-clusterer", &["hnsw", "kmeans"]),
    ("topic-namer", &["keywords", "llm"]),
    ("sketch-builder", &["majority", "paper"]),
    ("reward", &["binary", "regression"]),
    ("lora-targets", &["all-linear", "ffn", "kv", "qkv", "qv"]),
    ("policy-trainer", &["ao-sft", "cot-sft", "grpo"]),
    (
        "internalizer",
        &["ce", "ha-ce", "hidden-align", "kd", "kd-ce"],
    ),
    ("alignment-loss", &["cosine", "mae", "mse"]),
    (
        "rating-baseline",
        &["global-mean", "item-avg", "mf", "user-avg"],
    ),
    (
        "retriever",
        &["bpr-mf", "item-knn", "lightgcn", "popularity"],
    ),
];
