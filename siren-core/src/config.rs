//! Run configuration: TOML with one table per slot, deserialised in two stages.
//!
//! Stage 1 reads the file into [`RunConfig`] (`deny_unknown_fields` everywhere), where each slot
//! is a [`SlotConfig`] — a `kind` naming the plugin and a free `params` table. Stage 2 happens
//! when the plugin is built: the registry deserialises `params` into the plugin's own params
//! struct (also `deny_unknown_fields`) and validates it, so an unknown key fails naming the
//! key and the slot before any work starts.
//!
//! ```toml
//! name = "paper-movies"
//! [dataset]
//! kind = "siren-jsonl"
//! [dataset.params]
//! dir = "data/amazon-movies"
//! [[baselines]]
//! kind = "mf"
//! params = { factors = 32 }
//! ```
//!
//! `--set a.b.c=value` overrides any key before stage 1 (`value` is TOML: `40`, `true`,
//! `"text"`, `[1, 2]`; a bare word is taken as a string). Array elements are addressed by
//! index: `--set baselines.3.params.factors=64`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::SplitName;
use crate::{CoreError, Result};

pub use crate::registry::{Params, parse_params};

/// One slot: which plugin, with which parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotConfig {
    /// Registered plugin name, e.g. `kmeans`.
    pub kind: String,
    /// Parameters, checked by the plugin.
    #[serde(default)]
    pub params: Params,
}

impl SlotConfig {
    /// A slot with default parameters.
    pub fn named(kind: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            params: Params::new(),
        }
    }
}

/// Evaluation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    /// `valid` (default) or `test` (needs the dataset's test file).
    #[serde(default = "default_split")]
    pub split: SplitName,
    /// LLM evaluation (`siren eval`) on a seeded sample of this many rows (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<usize>,
    /// Prompts per generation batch in LLM evaluation.
    #[serde(default = "default_eval_batch")]
    pub batch_size: usize,
    /// Most tokens a reasoning (CoT) answer may take.
    #[serde(default = "default_eval_tokens")]
    pub max_new_tokens: usize,
    /// The rating decoder of the answer-only row `<method>-ao` (`argmax`, the paper's;
    /// `expected`; `median`); the other two are reported as `<method>-ao-<decoder>`.
    #[serde(default = "default_decoder")]
    pub decoder: crate::rating::RatingDecoder,
    /// Also report answer-only rows calibrated for a label shift (`<method>-ao-cal-*`,
    /// [`crate::calibration`]), fitted on the evaluated rows by cross-fitting: each half is
    /// scored by the calibration fitted on the other half. Default false.
    #[serde(default)]
    pub calibrate: bool,
    /// Whether answer-only distributions get the model's calibration (`[model] calibration`):
    /// `model` (default; a no-op for a model without one) or `none`. `siren predict`, `serve`
    /// and `rank` apply it to what they return; `siren eval` adds `<method>-ao-modelcal-*`
    /// rows. (`--calibration none|model` on those commands sets it.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<CalibrationUse>,
    /// The folder under the run that holds the evaluation's files (`<folder>/<method>*.jsonl`,
    /// its cache), default `eval`: an evaluation of a sample can sit beside the full one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder: Option<String>,
}

/// Whether the model's calibration is applied (`[eval] calibration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CalibrationUse {
    /// The model's calibration, when it has one.
    Model,
    /// The raw distributions.
    None,
}

impl EvalConfig {
    /// The evaluation folder's name under the run (`folder`, default `eval`).
    pub fn folder(&self) -> &str {
        self.folder.as_deref().unwrap_or("eval")
    }
}

fn default_decoder() -> crate::rating::RatingDecoder {
    crate::rating::RatingDecoder::Argmax
}

fn default_eval_batch() -> usize {
    8
}
fn default_eval_tokens() -> usize {
    512
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            split: default_split(),
            sample: None,
            batch_size: default_eval_batch(),
            max_new_tokens: default_eval_tokens(),
            decoder: default_decoder(),
            calibrate: false,
            calibration: None,
            folder: None,
        }
    }
}

fn default_split() -> SplitName {
    SplitName::Valid
}
fn default_seed() -> u64 {
    42
}
fn default_device() -> String {
    "auto".to_string()
}
fn default_runs_dir() -> PathBuf {
    PathBuf::from("runs")
}

/// Topic model settings (`[topics]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopicsConfig {
    /// Number of topics K (paper: 20).
    pub k: usize,
    /// Items nearest each center given to the namer (paper M = 100).
    pub nearest: usize,
    /// Users whose sketch prompts go to `prompts.sample.txt`.
    pub sample_prompts: usize,
    /// A topic model written by the sketch stage (`topic-model.json`: topic names, centers and
    /// the topic of every item) to use instead of fitting one; items it does not know are
    /// encoded and given their nearest center. Default: fit topics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<PathBuf>,
}

impl Default for TopicsConfig {
    fn default() -> Self {
        Self {
            k: 20,
            nearest: 100,
            sample_prompts: 5,
            model: None,
        }
    }
}

/// The decoder the LLM stages use (`[model]`): a GGUF file or a HF folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// A `.gguf` file or a HF model folder.
    pub path: PathBuf,
    /// Backbone kind for HF folders (default: the folder's `model_type`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backbone: Option<String>,
    /// Trained weights merged over the base, in order: PEFT adapter folders or folders with a
    /// full fine-tuning's `model.safetensors` (e.g. a shipped model's stage 1 and stage 2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adapters: Vec<PathBuf>,
    /// The name of the evaluation rows of this model with `adapters` (default `base`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The model's label-shift calibration of its answer-only distributions
    /// ([`crate::calibration`]), fitted on the split the model was tuned on (valid): a JSON
    /// file `{"a", "b"}`, or the `{"all_rows": {"a", "b"}, ...}` that `siren eval` writes.
    /// Applied by `predict`, `serve`, `rank` and `eval` unless `[eval] calibration = "none"`;
    /// never refitted on the data it is applied to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<PathBuf>,
}

/// A whole run. Relative paths are relative to the working directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Run name: artifacts go to `<runs_dir>/<name>/`.
    pub name: String,
    /// Seed for every random choice. Default 42.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Compute device: `auto` (default), `flex`, `wgpu`, `tch-cpu`, `tch-cuda:N`.
    #[serde(default = "default_device")]
    pub device: String,
    /// Where run folders go. Default `runs`.
    #[serde(default = "default_runs_dir")]
    pub runs_dir: PathBuf,
    /// Slot `dataset`.
    pub dataset: SlotConfig,
    /// Evaluation settings.
    #[serde(default)]
    pub eval: EvalConfig,
    /// Slot `rating-baseline`, any number of them.
    #[serde(default)]
    pub baselines: Vec<SlotConfig>,
    /// The decoder (token accounting, topic naming, training).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelConfig>,
    /// Topic model settings.
    #[serde(default)]
    pub topics: TopicsConfig,
    /// Prompt settings.
    #[serde(default)]
    pub prompt: crate::prompt::PromptConfig,
    /// Slot `text-encoder`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder: Option<SlotConfig>,
    /// Slot `topic-clusterer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clusterer: Option<SlotConfig>,
    /// Slot `topic-namer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namer: Option<SlotConfig>,
    /// Slot `sketch-builder`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sketch: Option<SlotConfig>,
    /// Slot `lora-targets`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lora: Option<SlotConfig>,
    /// Slot `reward`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward: Option<SlotConfig>,
    /// Settings shared by every trainer.
    #[serde(default)]
    pub training: crate::train::TrainingConfig,
    /// Slot `policy-trainer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trainer: Option<SlotConfig>,
    /// Stage 1's warm start, trained first; stage 1 starts from its weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<WarmupConfig>,
    /// Slot `internalizer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internalizer: Option<SlotConfig>,
    /// Slot `alignment-loss`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alignment: Option<SlotConfig>,
    /// Stage-2 settings (`[internalization]`).
    #[serde(default)]
    pub internalization: InternalizationConfig,
    /// What `siren run` runs (`[pipeline]`).
    #[serde(default)]
    pub pipeline: PipelineConfig,
    /// The grid `siren sweep` runs when no `--grid` is given (`[sweep] grid = ["KEY=V1,V2"]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepConfig>,
    /// `siren rank` and its candidate-reranking evaluation (`[rank]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<RankConfig>,
    /// Relevance examples for a reranker, added to stage 1's training (`[relevance]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relevance: Option<RelevanceConfig>,
    /// `siren serve` (`[serve]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serve: Option<ServeConfig>,
}

/// `[rank]`: candidate ranking (`siren rank`) and the reranking evaluation (paper §4, EXP3RT's
/// protocol): a retriever proposes candidates per user, the model reranks them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RankConfig {
    /// What proposes the candidates: a retriever (slot `retriever`: `popularity`, `item-knn`,
    /// `bpr-mf`, `lightgcn`, learnt from which items users interacted with) or a rating
    /// baseline by name (slot `rating-baseline`, by predicted rating), fitted on the fit set of
    /// the evaluated split. Default `lightgcn` (the paper's protocol).
    pub retriever: String,
    /// The retriever's params (`[rank.params]`); a rating baseline takes those of the matching
    /// `[[baselines]]` entry instead.
    #[serde(skip_serializing_if = "Params::is_empty")]
    pub params: Params,
    /// Candidates the retriever proposes per user (items the user has seen are excluded).
    pub candidates: usize,
    /// The evaluation on a seeded sample of this many users (default: every user of the split).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample: Option<usize>,
    /// Cut-offs of Recall@K and nDCG@K.
    pub cutoffs: Vec<usize>,
    /// Other retrievers the evaluation also scores on their own top lists (default params).
    pub compare: Vec<String>,
    /// Whether the evaluation reranks with the model (false: the retrievers' tables only,
    /// no model loaded).
    pub rerank: bool,
    /// What `siren rank` and `/v1/rank` order candidates by: `expected` (the expected rating,
    /// default) or `relevance` (the expected answer to the relevance question, for a model
    /// trained with `[relevance]`; one more prompt per candidate). With `relevance` the
    /// evaluation adds the `model-relevance` order next to the rating orders.
    pub by: crate::prompt::Task,
    /// Whether the evaluation scores the lists that miss the held-out item (default true).
    /// Their Recall@K and nDCG@K are 0 under every order, so `false` leaves the retrieved-list
    /// table unchanged and scores only the lists with a hit (a fraction of the time); the
    /// inserted view, which needs every list, is then left out.
    pub score_misses: bool,
    /// Evaluate on a point earlier in time instead of the evaluated split: each user's
    /// `cut`-th last history interaction held out with what follows it (as `[relevance]
    /// cuts` makes training lists), the retriever fitted on what came before. The evaluated
    /// split is not read, so these lists can tune what is then applied to it unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cut: Option<usize>,
    /// A reranker that blends the retriever's score with the model's answers
    /// (`[rank.blend]`, [`crate::blend`]): the evaluation adds its order, with weights fitted
    /// on earlier points in time of the fit set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blend: Option<BlendConfig>,
}

/// `[rank.blend]`: the blended reranker's features and where its weights come from. Each
/// feature is standardized within a user's list; the weights are a conditional logit's
/// ([`crate::blend`]) fitted on the lists of `cuts` (history cuts as `[rank] cut` makes them,
/// the retriever refitted on what came before each, only the lists that hold the held-out
/// item), never on the evaluated split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlendConfig {
    /// Features, of `retriever` (the retriever's score), `relevance` (the expected answer to
    /// the relevance question) and `rating` (the expected rating).
    pub features: Vec<String>,
    /// History cuts the weights are fitted on; none of them may be one `[relevance]` trained
    /// on (its `cuts` first ones). Default: the two cuts after those.
    pub cuts: Vec<usize>,
    /// The fit's L2 penalty on the weights.
    pub l2: f64,
    /// Weights fitted before (a `blend.json`), read instead of fitting: by the evaluation,
    /// `siren rank --input` and `siren serve` (default: the run folder's `blend.json`, which
    /// the evaluation writes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<std::path::PathBuf>,
}

impl Default for BlendConfig {
    fn default() -> Self {
        Self {
            features: vec!["retriever".into(), "relevance".into(), "rating".into()],
            cuts: Vec::new(),
            l2: 0.01,
            file: None,
        }
    }
}

impl BlendConfig {
    /// The cuts the weights are fitted on: `cuts`, or the two after the `trained` ones.
    pub fn fit_cuts(&self, trained: usize) -> Vec<usize> {
        if self.cuts.is_empty() {
            vec![trained + 1, trained + 2]
        } else {
            self.cuts.clone()
        }
    }

    /// Checks the settings; `trained` is how many cuts `[relevance]` trained on.
    pub fn validate(&self, trained: usize) -> Result<()> {
        if self.features.is_empty() {
            return Err(CoreError::config(
                "rank.blend.features",
                "name at least one feature",
            ));
        }
        for f in &self.features {
            if !crate::blend::FEATURES.contains(&f.as_str()) {
                return Err(CoreError::config(
                    "rank.blend.features",
                    format!(
                        "unknown feature `{f}`: one of {}",
                        crate::blend::FEATURES.join(", ")
                    ),
                ));
            }
        }
        if self.cuts.contains(&0) {
            return Err(CoreError::config(
                "rank.blend.cuts",
                "a cut is at least 1 (1: each user's last history interaction)",
            ));
        }
        if let Some(c) = self.fit_cuts(trained).iter().find(|&&c| c <= trained) {
            return Err(CoreError::config(
                "rank.blend.cuts",
                format!(
                    "cut {c} is one the reranker trained on ([relevance] cuts = {trained}): \
                     fit the blend on later cuts (above {trained})"
                ),
            ));
        }
        if !(self.l2 > 0.0 && self.l2.is_finite()) {
            return Err(CoreError::config(
                "rank.blend.l2",
                format!("must be a positive number, got {}", self.l2),
            ));
        }
        Ok(())
    }
}

/// `[relevance]`: training examples for a reranker (stage 1 adds them to the rating
/// examples). Each sampled user's last history interaction is held out, `[rank] retriever`
/// (with `[rank.params]`) is fitted on the rest, and its top `[rank] candidates` unseen items
/// for that user give the negatives; the prompts ask the relevance question
/// ([`crate::prompt::Task::Relevance`]), answered 5 for the held-out item and 1 for a
/// negative. Nothing of the evaluated split is used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelevanceConfig {
    /// Users sampled at each cut (seeded; default every user with an interaction to hold out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users: Option<usize>,
    /// Negatives per held-out item, drawn from the retrieved list without the held-out item.
    pub negatives: usize,
    /// Whether the held-out item is an example even when the retriever missed it (default
    /// true; false keeps only users whose list holds it, as the reranker sees at test time).
    pub missed_positives: bool,
    /// How many points in time: 1 holds out each user's last history interaction; k also the
    /// 2nd, …, k-th last (each with what follows it removed, the retriever fitted again).
    pub cuts: usize,
}

impl Default for RelevanceConfig {
    fn default() -> Self {
        Self {
            users: None,
            negatives: 1,
            missed_positives: true,
            cuts: 1,
        }
    }
}

impl RelevanceConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        if self.negatives == 0 {
            return Err(CoreError::config(
                "relevance.negatives",
                "must be at least 1",
            ));
        }
        if self.users == Some(0) {
            return Err(CoreError::config("relevance.users", "must be at least 1"));
        }
        if self.cuts == 0 {
            return Err(CoreError::config("relevance.cuts", "must be at least 1"));
        }
        Ok(())
    }
}

impl Default for RankConfig {
    fn default() -> Self {
        Self {
            retriever: "lightgcn".into(),
            params: Params::new(),
            candidates: 20,
            sample: None,
            cutoffs: vec![3, 5, 10, 20],
            compare: Vec::new(),
            rerank: true,
            by: crate::prompt::Task::Rating,
            score_misses: true,
            cut: None,
            blend: None,
        }
    }
}

impl RankConfig {
    /// The params a retriever named `name` is fitted with: `[rank.params]` for `retriever`,
    /// the defaults for any other.
    pub fn params_for(&self, name: &str) -> Params {
        if name == self.retriever {
            self.params.clone()
        } else {
            Params::new()
        }
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        if self.candidates == 0 {
            return Err(CoreError::config("rank.candidates", "must be at least 1"));
        }
        if self.cut == Some(0) {
            return Err(CoreError::config(
                "rank.cut",
                "must be at least 1 (1: each user's last history interaction)",
            ));
        }
        if self.cutoffs.is_empty() || self.cutoffs.iter().any(|&k| k == 0 || k > self.candidates) {
            return Err(CoreError::config(
                "rank.cutoffs",
                format!(
                    "each cut-off must be between 1 and rank.candidates ({}), got {:?}",
                    self.candidates, self.cutoffs
                ),
            ));
        }
        // Each name is a retriever or a rating baseline; the retriever's params are checked by
        // building it (cheap by contract).
        use crate::registry::{build, names};
        use crate::traits::{RatingBaseline, Retriever};
        let (implicit, rating) = (names::<dyn Retriever>()?, names::<dyn RatingBaseline>()?);
        for (field, name) in std::iter::once(("rank.retriever", &self.retriever))
            .chain(self.compare.iter().map(|n| ("rank.compare", n)))
        {
            if implicit.contains(name) {
                build::<dyn Retriever>(name, &self.params_for(name))?;
            } else if rating.contains(name) {
                if field == "rank.retriever" && !self.params.is_empty() {
                    return Err(CoreError::config(
                        "rank.params",
                        format!(
                            "`{name}` is a rating baseline: its params come from its \
                             [[baselines]] entry"
                        ),
                    ));
                }
            } else {
                return Err(CoreError::config(
                    field,
                    format!(
                        "unknown retriever `{name}`: retrievers {}; rating baselines (by \
                         predicted rating) {}",
                        implicit.join(", "),
                        rating.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// `[serve]`: the HTTP server's batching, queue and limits (`siren serve`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// Address to listen on.
    pub addr: String,
    /// Most prompts the model scores in one forward pass.
    pub max_batch: usize,
    /// Most prompts of different users in one forward pass (their prompts differ right after
    /// the system message, so a batch of them is padded to the longest). On a CPU such a batch
    /// costs more than running them one after another: at 8 clients `/v1/predict` served 1.76
    /// requests/s with 8 and 2.46 with 1 (docs/serving.md). Default 1; raise it on a GPU. The
    /// candidates of one user (on that user's prefix) batch up to `max_batch`.
    pub max_batch_users: usize,
    /// How long the model waits for more requests to fill a batch, in milliseconds.
    pub max_wait_ms: u64,
    /// Requests waiting for the model at most; beyond it requests get 503 with `Retry-After`.
    pub queue: usize,
    /// Memory for cached per-user prompt prefixes (keys and values), MiB.
    pub prefix_cache_mb: usize,
    /// Largest request body, KiB.
    pub max_body_kb: usize,
    /// Most candidates of one `/v1/rank` request.
    pub max_candidates: usize,
    /// Most rated items of an inline history.
    pub max_history: usize,
    /// A request not answered within this many milliseconds gets 504.
    pub timeout_ms: u64,
    /// A connection whose request headers have not all arrived within this many milliseconds
    /// (from when the server starts reading them; an idle keep-alive connection counts too) is
    /// closed.
    pub header_timeout_ms: u64,
    /// A request whose body has not all arrived within this many milliseconds of its headers
    /// gets 408 naming the body.
    pub body_timeout_ms: u64,
    /// Retrievers fitted when the server starts (names of slot `retriever` or rating
    /// baselines; `[rank.params]` for `[rank] retriever`): a `/v1/rank` request without
    /// `candidates` gets the top `[rank] candidates` unseen items of its `retriever` (default:
    /// the first). Default none.
    pub retrievers: Vec<String>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:8080".into(),
            max_batch: 8,
            max_batch_users: 1,
            max_wait_ms: 5,
            queue: 64,
            prefix_cache_mb: 512,
            max_body_kb: 256,
            max_candidates: 100,
            max_history: 200,
            timeout_ms: 30_000,
            header_timeout_ms: 10_000,
            body_timeout_ms: 10_000,
            retrievers: Vec::new(),
        }
    }
}

impl ServeConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        for (k, v) in [
            ("max_batch", self.max_batch),
            ("max_batch_users", self.max_batch_users),
            ("queue", self.queue),
            ("max_body_kb", self.max_body_kb),
            ("max_candidates", self.max_candidates),
            ("max_history", self.max_history),
        ] {
            if v == 0 {
                return Err(CoreError::config(
                    format!("serve.{k}"),
                    "must be at least 1",
                ));
            }
        }
        for (k, v) in [
            ("timeout_ms", self.timeout_ms),
            ("header_timeout_ms", self.header_timeout_ms),
            ("body_timeout_ms", self.body_timeout_ms),
        ] {
            if v == 0 {
                return Err(CoreError::config(
                    format!("serve.{k}"),
                    "must be at least 1",
                ));
            }
        }
        Ok(())
    }
}

/// `[sweep]`: a config's own ablation grid, or its own list of points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    /// `KEY=V1,V2,...` entries; several make a cartesian product.
    #[serde(default)]
    pub grid: Vec<String>,
    /// Points given one by one (`[[sweep.points]]`), for chains whose points differ in
    /// several keys at once (the paper's Table 5); used when `grid` is empty.
    #[serde(default)]
    pub points: Vec<SweepPoint>,
}

/// One `[[sweep.points]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepPoint {
    /// Shown in the table.
    pub label: String,
    /// The point's run is `<name>-<run>`; points naming the same run share its folder (and so
    /// its finished stages). Default: the label, slugged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// `KEY=VALUE` overrides, as `--set` takes them.
    #[serde(default)]
    pub set: Vec<String>,
}

/// `[pipeline]`: the stages `siren run` runs, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Stages by name, from `baselines`, `sketch`, `train`, `internalize`, `eval`. Default:
    /// `baselines`; `sketch` when the prompt strategy uses sketches and an `[encoder]` is set;
    /// `train` with a `[trainer]`; `internalize` with an `[internalizer]`; `eval` after either.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stages: Option<Vec<String>>,
    /// Also evaluate the stage-1 weights with reasoning (CoT) decoding.
    pub cot: bool,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            stages: None,
            cot: true,
        }
    }
}

/// Stage 2 (`[internalization]`): where the stage-1 weights come from, how the CoT teacher is
/// harvested, which sites get the new adapters and how they train.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InternalizationConfig {
    /// The stage-1 weights (a PEFT adapter folder, or a folder with `model.safetensors` of
    /// a full fine-tuning); default `runs/<name>/stage1/policy`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage1: Option<PathBuf>,
    /// Slot `lora-targets` of the stage-2 adapters (default `kv`, the paper's choice).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lora: Option<SlotConfig>,
    /// The CoT teacher harvest.
    pub harvest: crate::train::HarvestConfig,
    /// Keys of `[training]` for stage 2. Unset keys take the paper's stage-2 values (AdamW lr
    /// 1e-4 constant, 100 warm-up steps, 3 epochs, batch 64, LoRA r 8 / α 16 / dropout 0.05),
    /// and `answer_tokens`, `max_prompt_tokens`, `micro_batch` and the checkpoint cadence
    /// come from `[training]`.
    pub training: Params,
}

/// `base` with the keys of `keys` laid over it (`what` names the table in errors).
pub fn overlay_training(
    base: &crate::train::TrainingConfig,
    keys: &Params,
    what: &str,
) -> Result<crate::train::TrainingConfig> {
    let mut table =
        toml::Table::try_from(base).map_err(|e| CoreError::config(what, e.to_string()))?;
    for (k, v) in keys {
        table.insert(k.clone(), v.clone());
    }
    let cfg: crate::train::TrainingConfig = table.try_into().map_err(|e: toml::de::Error| {
        CoreError::config(what, e.to_string().trim_end().to_string())
    })?;
    cfg.validate()?;
    Ok(cfg)
}

/// A warm start of stage 1 (`[warmup]`): a first training with a trainer of its own, whose
/// weights stage 1 starts from (e.g. `ao-sft` teaching the answer format before `grpo`, which
/// learns nothing while every sample misses the format).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarmupConfig {
    /// The warm start's trainer (slot `policy-trainer`).
    pub trainer: SlotConfig,
    /// Keys of `[training]` that differ for the warm start; the others come from `[training]`.
    #[serde(default)]
    pub training: Params,
}

impl WarmupConfig {
    /// The warm start's training settings.
    pub fn training(
        &self,
        stage1: &crate::train::TrainingConfig,
    ) -> Result<crate::train::TrainingConfig> {
        let base = crate::train::TrainingConfig {
            init_adapter: None,
            ..stage1.clone()
        };
        let cfg = overlay_training(&base, &self.training, "warmup.training")?;
        if cfg.answer_tokens != stage1.answer_tokens || cfg.full_finetune != stage1.full_finetune {
            return Err(CoreError::config(
                "warmup.training",
                "answer_tokens and full_finetune must equal [training]'s (stage 1 continues the \
                 warm start's weights)",
            ));
        }
        Ok(cfg)
    }
}

impl InternalizationConfig {
    /// The stage-2 training settings (see [`InternalizationConfig::training`]).
    pub fn training(
        &self,
        stage1: &crate::train::TrainingConfig,
    ) -> Result<crate::train::TrainingConfig> {
        let base = crate::train::TrainingConfig {
            lr: 1e-4,
            warmup_steps: 100,
            epochs: 3,
            batch_size: 64,
            micro_batch: stage1.micro_batch,
            max_prompt_tokens: stage1.max_prompt_tokens,
            checkpoint_every: stage1.checkpoint_every,
            keep_checkpoints: stage1.keep_checkpoints,
            answer_tokens: stage1.answer_tokens,
            lora_r: 8,
            lora_alpha: 16.0,
            lora_dropout: 0.05,
            seed: stage1.seed,
            ..crate::train::TrainingConfig::default()
        };
        let cfg = overlay_training(&base, &self.training, "internalization.training")?;
        if cfg.answer_tokens != stage1.answer_tokens {
            return Err(CoreError::config(
                "internalization.training.answer_tokens",
                "must equal [training] answer_tokens (the stage-1 model's vocabulary)",
            ));
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

impl RunConfig {
    /// Reads `path`, applies `--set` overrides, and deserialises (stage 1).
    ///
    /// A config may start from another: `extends = "base.toml"` (relative to the file) reads
    /// the base first and lays this file's keys over it, table by table; `--set extends=...`
    /// picks another base. Overrides apply last.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let mut table = read_table(path)?;
        if let Some(o) = overrides
            .iter()
            .find(|o| o.trim_start().starts_with("extends="))
        {
            apply_override(&mut table, o)?;
        }
        let mut seen = vec![path.to_path_buf()];
        while let Some(base) = table.remove("extends") {
            let toml::Value::String(base) = base else {
                return Err(CoreError::config(
                    format!("{}: extends", path.display()),
                    "must be a path to a TOML config",
                ));
            };
            let from = seen.last().cloned().unwrap_or_default();
            let bpath = from.parent().unwrap_or(Path::new(".")).join(&base);
            if seen.contains(&bpath) || seen.len() > 8 {
                return Err(CoreError::config(
                    format!("{}: extends", from.display()),
                    format!("`{base}` makes a cycle or a chain longer than 8"),
                ));
            }
            let mut merged = read_table(&bpath)?;
            merge_tables(&mut merged, table);
            table = merged;
            seen.push(bpath);
        }
        for o in overrides
            .iter()
            .filter(|o| !o.trim_start().starts_with("extends="))
        {
            apply_override(&mut table, o)?;
        }
        Self::from_table(table, &path.display().to_string())
    }

    /// Deserialises an already-read table (stage 1). `origin` names it in errors.
    pub fn from_table(table: toml::Table, origin: &str) -> Result<Self> {
        // Round-trip through text so that errors carry the key and a line excerpt.
        let text = toml::to_string(&table)
            .map_err(|e| CoreError::config(origin.to_string(), e.to_string()))?;
        toml::from_str(&text).map_err(|e| {
            CoreError::config(
                format!("{origin} (with overrides applied)"),
                e.to_string().trim_end().to_string(),
            )
        })
    }

    /// The resolved configuration as TOML text (written into the run folder).
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self)
            .map_err(|e| CoreError::config("resolved config", e.to_string()))
    }

    /// Builds every configured plugin once (stage 2) so that unknown names and bad
    /// parameters fail before any work starts. Plugin construction is cheap by contract.
    pub fn validate(&self) -> Result<()> {
        use crate::registry::build;
        use crate::traits::*;
        build::<dyn DatasetLoader>(&self.dataset.kind, &self.dataset.params)?;
        for b in &self.baselines {
            build::<dyn RatingBaseline>(&b.kind, &b.params)?;
        }
        macro_rules! check {
            ($field:ident, $tr:path) => {
                if let Some(s) = &self.$field {
                    build::<dyn $tr>(&s.kind, &s.params)?;
                }
            };
        }
        check!(encoder, TextEncoder);
        check!(clusterer, TopicClusterer);
        check!(namer, TopicNamer);
        check!(sketch, SketchBuilder);
        check!(lora, LoraTargets);
        check!(reward, Reward);
        check!(trainer, PolicyTrainer);
        check!(internalizer, Internalizer);
        check!(alignment, AlignmentLoss);
        self.prompt.validate()?;
        self.training.validate()?;
        if let Some(l) = &self.internalization.lora {
            build::<dyn LoraTargets>(&l.kind, &l.params)?;
        }
        self.internalization.harvest.validate()?;
        self.internalization.training(&self.training)?;
        if self.eval.batch_size == 0 || self.eval.max_new_tokens == 0 {
            return Err(CoreError::config(
                "eval",
                "batch_size and max_new_tokens must be at least 1",
            ));
        }
        if let Some(f) = &self.eval.folder
            && (f.is_empty()
                || f == "."
                || f == ".."
                || !f
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err(CoreError::config(
                "eval.folder",
                format!("`{f}` must be one folder name (letters, digits, `-`, `_`, `.`)"),
            ));
        }
        if let Some(r) = &self.rank {
            r.validate()?;
            if let Some(b) = &r.blend {
                b.validate(self.relevance.as_ref().map_or(0, |x| x.cuts))?;
            }
        }
        if let Some(r) = &self.relevance {
            r.validate()?;
        }
        if let Some(s) = &self.serve {
            s.validate()?;
        }
        if self.topics.k == 0 || self.topics.nearest == 0 {
            return Err(CoreError::config(
                "topics",
                "k and nearest must be at least 1",
            ));
        }
        Ok(())
    }
}

fn read_table(path: &Path) -> Result<toml::Table> {
    let text = std::fs::read_to_string(path).map_err(|e| CoreError::io(path, e))?;
    toml::from_str(&text).map_err(|e| CoreError::config(path.display().to_string(), e.to_string()))
}

/// Lays `top` over `base`: tables merge key by key, anything else replaces.
fn merge_tables(base: &mut toml::Table, top: toml::Table) {
    for (k, v) in top {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(t)) => merge_tables(b, t),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Parses the value of a `--set` override: TOML when it parses, otherwise a plain string.
fn parse_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match toml::from_str::<toml::Table>(&doc) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

/// Applies one `a.b.c=value` override to `table`, creating missing tables.
pub fn apply_override(table: &mut toml::Table, spec: &str) -> Result<()> {
    let loc = || format!("--set {spec}");
    let (key, raw) = spec.split_once('=').ok_or_else(|| {
        CoreError::config(loc(), "expected KEY=VALUE, e.g. clusterer.params.k=40")
    })?;
    let parts: Vec<&str> = key.trim().split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(CoreError::config(loc(), "empty key segment"));
    }
    let value = parse_value(raw.trim());
    let mut root = toml::Value::Table(std::mem::take(table));
    let result = set_path(&mut root, &parts, value, &loc());
    if let toml::Value::Table(t) = root {
        *table = t;
    }
    result
}

fn set_path(root: &mut toml::Value, parts: &[&str], value: toml::Value, loc: &str) -> Result<()> {
    let mut node: &mut toml::Value = root;
    for (depth, part) in parts.iter().enumerate() {
        let last = depth + 1 == parts.len();
        let here = parts[..depth].join(".");
        node = match node {
            toml::Value::Table(t) => {
                if last {
                    t.insert(part.to_string(), value);
                    return Ok(());
                }
                t.entry(part.to_string())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            }
            toml::Value::Array(a) => {
                let idx: usize = part.parse().map_err(|_| {
                    CoreError::config(loc, format!("`{here}` is a list; `{part}` is not an index"))
                })?;
                let len = a.len();
                let slot = a.get_mut(idx).ok_or_else(|| {
                    CoreError::config(loc, format!("`{here}` has {len} elements; no index {idx}"))
                })?;
                if last {
                    *slot = value;
                    return Ok(());
                }
                slot
            }
            other => {
                return Err(CoreError::config(
                    loc,
                    format!("`{here}` is a {}, not a table", other.type_str()),
                ));
            }
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(s: &str) -> toml::Table {
        toml::from_str(s).unwrap()
    }

    #[test]
    fn overrides_set_nested_keys_and_types() {
        let mut t =
            table("name = 'x'\n[dataset]\nkind = 'movielens'\n[[baselines]]\nkind = 'mf'\n");
        apply_override(&mut t, "clusterer.params.k=40").unwrap();
        apply_override(&mut t, "dataset.params.balance=true").unwrap();
        apply_override(&mut t, "baselines.0.params.factors=8").unwrap();
        apply_override(&mut t, "name=other-run").unwrap();
        assert_eq!(t["clusterer"]["params"]["k"].as_integer(), Some(40));
        assert_eq!(t["dataset"]["params"]["balance"].as_bool(), Some(true));
        assert_eq!(t["baselines"][0]["params"]["factors"].as_integer(), Some(8));
        assert_eq!(t["name"].as_str(), Some("other-run"));
    }

    #[test]
    fn bad_overrides_are_errors() {
        let mut t = table("name = 'x'\n[[baselines]]\nkind = 'mf'\n");
        assert!(apply_override(&mut t, "novalue").is_err());
        let e = apply_override(&mut t, "name.sub=1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`name` is a string"), "{e}");
        let e = apply_override(&mut t, "baselines.5.kind=x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("has 1 elements"), "{e}");
        assert_eq!(t["name"].as_str(), Some("x"), "table intact after errors");
    }

    #[test]
    fn unknown_top_level_and_slot_keys_are_named() {
        let t = table("name = 'x'\ncolour = 1\n[dataset]\nkind = 'movielens'\n");
        let e = RunConfig::from_table(t, "c.toml").unwrap_err().to_string();
        assert!(e.contains("unknown field `colour`"), "{e}");
        let t = table("name = 'x'\n[dataset]\nkind = 'movielens'\nparms = {}\n");
        let e = RunConfig::from_table(t, "c.toml").unwrap_err().to_string();
        assert!(e.contains("unknown field `parms`"), "{e}");
    }

    #[test]
    fn params_errors_name_slot_and_key() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct P {
            k: usize,
        }
        let e = parse_params::<P>("topic-clusterer", "kmeans", &table("k = 3\nkk = 4"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("topic-clusterer `kmeans`") && e.contains("unknown field `kk`"),
            "{e}"
        );
    }
}
