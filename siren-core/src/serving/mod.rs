//! Scoring queries one at a time, as a server and `siren rank` see them: a user (known by id,
//! or new, given by an inline history of rated items) and one or more candidate items (known
//! by id, or new, given by title and genres).
//!
//! - [`Prompter`] turns a query into the model's prompts (sketch and recent lines as
//!   `siren predict` builds them; new items placed at their nearest topic center by the run's
//!   encoder) and says how long the user's part of the prompts is;
//! - [`Scorer`] owns the model: it scores a batch of queries in one go, computing each user's
//!   part once, keeping it in a memory-bounded per-user [`PrefixCache`] for the next request,
//!   and batching single-candidate queries of users it has not seen before on the prefix all
//!   prompts share.
//!
//! The HTTP server (`siren serve`) and the reranking evaluation (`siren rank`) are built on
//! these two.

mod prefix_cache;
mod prompter;
pub mod request;
mod scorer;

pub use prefix_cache::{CacheStats, PrefixCache};
pub use prompter::{Prompter, QueryPrompts};
pub use request::{FieldError, Limits, RankRequest};
pub use scorer::{BatchReport, Job, Scorer};

use serde::{Deserialize, Serialize};

/// An item outside the dataset, described inline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewItem {
    /// Title.
    pub title: String,
    /// Genres or categories, most general first.
    #[serde(default)]
    pub genres: Vec<String>,
}

/// A rated item of an inline history (oldest first in a history).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRating {
    /// Title.
    pub title: String,
    /// Genres or categories, most general first.
    #[serde(default)]
    pub genres: Vec<String>,
    /// The user's rating, 1 to 5.
    pub rating: f32,
}

/// Whom a query is about.
#[derive(Debug, Clone, PartialEq)]
pub enum Subject {
    /// A user of the dataset (index into `Dataset::users`).
    Known(u32),
    /// A user known only by the rated items given with the query (oldest first).
    New(Vec<NewRating>),
}

/// A candidate item of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Candidate {
    /// An item of the dataset (index into `Dataset::items`).
    Known(u32),
    /// An item given by title and genres.
    New(NewItem),
}

/// One user and the candidates to rate for them.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The user.
    pub subject: Subject,
    /// The candidates (at least one).
    pub candidates: Vec<Candidate>,
}

/// The prompter and scorer of a run's trained weights (`weights`, as `siren eval` resolves
/// them) with each known user's past from `timelines`; returns the method name of the weights
/// too. The scorer batches `max_batch` prompts per forward pass and keeps `cache_bytes` of
/// per-user prefixes.
pub fn load(
    config: &crate::config::RunConfig,
    ds: crate::data::Dataset,
    run: &crate::run::RunDir,
    weights: &crate::trained::Weights,
    timelines: Vec<Vec<crate::data::Interaction>>,
    (max_batch, cache_bytes): (usize, usize),
) -> crate::Result<(Prompter, Scorer, String)> {
    let (device, label) = crate::device::open(&config.device)?;
    let (model, tok) = crate::trained::load_run_model(config, &device, "scoring")?;
    let (model, method) = crate::trained::weighted_model(config, run, weights, model)?;
    tracing::info!("scoring with `{method}` weights on {label}");
    let rt = crate::rating::RatingTokens::new(&tok, 5)?;
    let pad = tok.pad_id();
    let prompter = Prompter::new(config, ds, run, tok, timelines)?;
    let mut scorer = Scorer::new(
        model,
        device,
        (rt, pad),
        prompter.system_tokens(),
        max_batch,
        cache_bytes,
    )?;
    if let Some((c, path)) = crate::trained::model_calibration(config, Some((run, &method)))? {
        tracing::info!("answer-only distributions calibrated by {}", path.display());
        scorer.set_calibration(Some(c));
    }
    Ok((prompter, scorer, method))
}
