//! The slots of the pipeline. Each trait is object-safe, `Send + Sync`, takes `&self` and gets
//! its state passed explicitly, so one plugin instance can serve many calls.
//!
//! | slot | trait | stage |
//! |---|---|---|
//! | `device` | [`ComputeDevice`] | where tensors live |
//! | `dataset` | [`DatasetLoader`] | data |
//! | `rating-baseline` | [`RatingBaseline`] | classic baselines |
//! | `retriever` | [`Retriever`] | candidates for reranking (implicit feedback) |
//! | `text-encoder` | [`TextEncoder`] | stage 0: item embeddings |
//! | `topic-clusterer` | [`TopicClusterer`] | stage 0: topics |
//! | `topic-namer` | [`TopicNamer`] | stage 0: topic names |
//! | `sketch-builder` | [`SketchBuilder`] | stage 0: liked / disliked topics |
//! | `backbone` | [`Backbone`] | the decoder LLM architecture |
//! | `lora-targets` | [`LoraTargets`] | which linear sites get adapters |
//! | `reward` | [`Reward`] | stage 1: GRPO reward |
//! | `policy-trainer` | [`PolicyTrainer`] | stage 1: SFT / GRPO |
//! | `internalizer` | [`Internalizer`] | stage 2: internalize reasoning |
//! | `alignment-loss` | [`AlignmentLoss`] | stage 2: hidden-state distance |

mod alignment;
mod backbone;
mod baseline;
mod clusterer;
mod dataset;
/// The `device` slot (opening one by spec: [`crate::device::open`]).
pub mod device;
mod encoder;
mod internalizer;
mod lora;
mod namer;
mod retriever;
mod reward;
mod sketch;
mod trainer;

pub use alignment::AlignmentLoss;
pub use backbone::{Backbone, DecoderSpec};
pub use baseline::{RatingBaseline, RatingModel};
pub use clusterer::{TopicClusterer, Topics};
pub use dataset::DatasetLoader;
pub use device::ComputeDevice;
pub use encoder::{Embeddings, TextEncoder};
pub use internalizer::{CotExample, Internalizer};
pub use lora::LoraTargets;
pub use namer::TopicNamer;
pub use retriever::{RetrievalModel, Retriever};
pub use reward::{Reward, RewardParts};
pub use sketch::{Sketch, SketchBuilder, SketchTopic, TopicRating};
pub use trainer::{Example, PolicyTrainer, RunCtx, TrainReport};

crate::__declare_slot!(
    crate::traits::ComputeDevice,
    "device",
    "compute device for tensors (tch-cpu, tch-cuda:N, wgpu, flex, auto)"
);
crate::__declare_slot!(
    crate::traits::DatasetLoader,
    "dataset",
    "loads ratings and item texts into the in-memory data model with its splits"
);
crate::__declare_slot!(
    crate::traits::RatingBaseline,
    "rating-baseline",
    "classic rating predictors fitted on the history split"
);
crate::__declare_slot!(
    crate::traits::Retriever,
    "retriever",
    "proposes candidate items from implicit feedback, for reranking"
);
crate::__declare_slot!(
    crate::traits::TextEncoder,
    "text-encoder",
    "embeds item texts into L2-normalised vectors"
);
crate::__declare_slot!(
    crate::traits::TopicClusterer,
    "topic-clusterer",
    "groups item embeddings into K topics"
);
crate::__declare_slot!(
    crate::traits::TopicNamer,
    "topic-namer",
    "names each topic from its most central items"
);
crate::__declare_slot!(
    crate::traits::SketchBuilder,
    "sketch-builder",
    "turns a user's rated topics into liked / disliked topic lists"
);
crate::__declare_slot!(
    crate::traits::Backbone,
    "backbone",
    "decoder LLM architecture adapter (HF config, tensor names, chat template)"
);
crate::__declare_slot!(
    crate::traits::LoraTargets,
    "lora-targets",
    "chooses which linear sites receive LoRA adapters"
);
crate::__declare_slot!(
    crate::traits::Reward,
    "reward",
    "scores a completion against the true rating (GRPO)"
);
crate::__declare_slot!(
    crate::traits::PolicyTrainer,
    "policy-trainer",
    "stage 1: trains the policy to reason and rate (SFT, GRPO)"
);
crate::__declare_slot!(
    crate::traits::Internalizer,
    "internalizer",
    "stage 2: internalizes explicit reasoning into answer-only prediction"
);
crate::__declare_slot!(
    crate::traits::AlignmentLoss,
    "alignment-loss",
    "distance between student and teacher hidden states"
);
