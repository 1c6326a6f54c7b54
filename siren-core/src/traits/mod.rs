//! The slots of the pipeline. Each trait is object-safe, `Send + Sync`, takes `&self` and gets
//! its state passed explicitly, so one plugin instance can serve many calls. The slot table
//! (each slot's trait, name and summary, in pipeline order) is written once, in
//! [`crate::registry`]; `siren plugins` prints it with every plugin.

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
