//! The stages of a SIREN run, each a function of the run config and the dataset that writes
//! its artifacts into the run folder. The CLI commands (`siren sketch`, ...) are thin wrappers,
//! and the pipeline runner walks [`PIPELINE`], where each stage is a type ([`stage::Stage`]).

pub mod baselines;
pub mod eval;
pub mod internalize;
pub mod pipeline;
pub mod predict;
pub mod rank;
pub mod relevance;
pub mod sketch;
pub mod stage;
pub mod sweep;
pub mod train;

use std::time::Instant;

use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::config::RunConfig;
use crate::data::{Dataset, Interaction, SplitName};
use crate::engine::TextTokenizer;
use crate::prompt::{PromptBuilder, SketchScope, Strategy};
use crate::registry::build;
use crate::run::RunDir;
use crate::traits::DatasetLoader;
use crate::traits::Example;
use crate::{CoreError, Result};

pub use crate::prompt::render_prompt;

/// The stages of `siren run`, in order. A new stage is its own file (a [`stage::Stage`]) and
/// one line here.
pub static PIPELINE: [&dyn stage::Stage; 5] = [
    &baselines::Baselines,
    &sketch::SketchStage,
    &train::Train,
    &internalize::Internalize,
    &eval::Eval,
];
pub use crate::trained::{load_run_model, trained_token_ids};

/// Loads the configured dataset (with a spinner and a summary log line).
pub fn load_dataset(config: &RunConfig) -> Result<Dataset> {
    let loader = build::<dyn DatasetLoader>(&config.dataset.kind, &config.dataset.params)?;
    let spinner = crate::progress::spinner(format!("loading {}", config.dataset.kind));
    let t = Instant::now();
    let ds = loader.load();
    spinner.finish_and_clear();
    let ds = ds?;
    tracing::info!("{} ({:.1}s)", ds.summary(), t.elapsed().as_secs_f64());
    if ds.split(config.eval.split).is_empty() {
        return Err(CoreError::Data(format!(
            "the {} split of `{}` is empty (for test, give the test file in [dataset.params])",
            config.eval.split.as_str(),
            ds.name
        )));
    }
    Ok(ds)
}

/// How many rows `siren eval` scores: `[eval] sample` rows of the evaluated split, or all of
/// them. Training sections of `metrics.json` are recorded under this count, next to the rows
/// of the model they trained.
pub fn eval_rows(config: &RunConfig, ds: &Dataset) -> usize {
    let n = ds.split(config.eval.split).len();
    config.eval.sample.map_or(n, |s| s.min(n))
}

/// A seeded sample of `n` rows (all rows, in order, when `n` is `None` or not smaller).
pub fn sample_rows(rows: &[Interaction], n: Option<usize>, seed: u64) -> Vec<Interaction> {
    match n {
        Some(n) if n < rows.len() => {
            let mut idx: Vec<usize> = (0..rows.len()).collect();
            idx.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
            let mut keep: Vec<usize> = idx[..n].to_vec();
            keep.sort_unstable();
            keep.into_iter().map(|i| rows[i]).collect()
        }
        _ => rows.to_vec(),
    }
}

/// The prompts' sketches when the configured prompt strategy uses one (the sketch stage's
/// steps 1–4, with cached item embeddings; no token report): built per prompt from the
/// interactions before its target, or one per user (`[prompt] sketch_scope`).
pub fn sketches_for(
    config: &RunConfig,
    ds: &Dataset,
    run: &RunDir,
) -> Result<sketch::PromptSketches> {
    match config.prompt.strategy {
        Strategy::Sketch | Strategy::MoreHistory => {
            let built = sketch::topics_and_sketches(config, ds, run)?;
            let scope = config.prompt.sketch_scope;
            tracing::info!(
                "prompt sketches: {} ({})",
                scope.as_str(),
                match scope {
                    SketchScope::BeforeTarget =>
                        "each from the user's interactions before the prompt's target",
                    SketchScope::PerUser =>
                        "one per user from the history before the evaluated split; training \
                         prompts see their own and later ratings",
                }
            );
            Ok(match scope {
                SketchScope::BeforeTarget => sketch::PromptSketches::BeforeTarget(built.sketcher),
                SketchScope::PerUser => {
                    sketch::PromptSketches::PerUser(built.sketches, built.sketcher.assignment)
                }
            })
        }
        _ => Ok(sketch::PromptSketches::None),
    }
}

/// Rendered prompts for `rows` (each row's past is the user's history before it; for the
/// test split the valid item counts as history).
pub fn examples(
    config: &RunConfig,
    ds: &Dataset,
    rows: &[Interaction],
    sketches: &sketch::PromptSketches,
    tok: &TextTokenizer,
) -> Result<Vec<Example>> {
    let pb = PromptBuilder::new(config.prompt.clone())?;
    let timelines = crate::prompt::timelines(ds, config.eval.split == SplitName::Test);
    let count = |s: &str| tok.encode(s, false).map(|v| v.len()).unwrap_or(0);
    rows.iter()
        .map(|x| {
            let u = x.user as usize;
            let past = crate::prompt::past_of(&timelines[u], x);
            let sk = sketches.for_prompt(x.user, past)?;
            let p = pb.build(ds, past, &sk, x, pb.cfg.strategy, &count);
            let rationale = crate::prompt::rationale::build(
                &pb,
                ds,
                past,
                &sk,
                pb.cfg.strategy,
                x.item,
                &|i| sketches.topic_of(i),
            );
            Ok(Example {
                id: format!("{}:{}", ds.users[u], ds.items[x.item as usize].id),
                prompt: render_prompt(tok, &p)?,
                rating: x.rating,
                rationale: Some(rationale),
            })
        })
        .collect()
}
