//! The stages of a SIREN run, each a function of the run config and the dataset that writes
//! its artifacts into the run folder. The CLI commands (`siren sketch`, ...) are thin wrappers,
//! and the pipeline runner chains them.

pub mod baselines;
pub mod eval;
pub mod internalize;
pub mod pipeline;
pub mod predict;
pub mod rank;
pub mod relevance;
pub mod sketch;
pub mod sweep;
pub mod train;

use std::time::Instant;

use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::config::RunConfig;
use crate::data::{Dataset, Interaction, SplitName};
use crate::engine::{Message, TextTokenizer};
use crate::prompt::{PromptBuilder, SketchScope, Strategy};
use crate::registry::build;
use crate::run::RunDir;
use crate::traits::DatasetLoader;
use crate::traits::Example;
use crate::{CoreError, Result};

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

/// The run's `[model]` on `device` with its tokenizer, with `<answer>`/`</answer>` made single
/// tokens when `[training] answer_tokens` is set and `[model] adapters` merged in order (every
/// stage that runs the decoder loads it so).
/// `what` names the stage in the error when the config has no `[model]`.
pub fn load_run_model(
    config: &RunConfig,
    device: &burn::tensor::Device,
    what: &str,
) -> Result<(crate::engine::Decoder, TextTokenizer)> {
    let m = config.model.as_ref().ok_or_else(|| {
        CoreError::config(
            "model",
            format!("{what} needs a [model] table (path = ...)"),
        )
    })?;
    let (mut model, mut tok) = crate::engine::load_model(&m.path, m.backbone.as_deref(), device)?;
    if config.training.answer_tokens {
        model = crate::engine::add_answer_tokens(model, &mut tok)?;
    }
    for dir in &m.adapters {
        tracing::info!(
            "merging the trained weights of {} into the model",
            dir.display()
        );
        model = internalize::with_weights(model, dir)?;
    }
    Ok((model, tok))
}

/// Token ids whose rows train with the LoRA adapters: `<answer>` and `</answer>` when
/// `[training] answer_tokens` made them single tokens, else none.
pub fn trained_token_ids(config: &RunConfig, tok: &TextTokenizer) -> Vec<u32> {
    if !config.training.answer_tokens {
        return Vec::new();
    }
    crate::engine::ANSWER_TOKENS
        .iter()
        .filter_map(|t| tok.token_id(t))
        .collect()
}

/// The text a decoder reads for a prompt: the chat template (system + user, generation
/// prompt added) when the tokenizer has one, else the two messages on separate lines.
pub fn render_prompt(tok: &TextTokenizer, p: &crate::prompt::Prompt) -> Result<String> {
    if tok.chat_template.is_some() {
        tok.apply_chat_template(
            &[
                Message::new("system", &p.system),
                Message::new("user", &p.user),
            ],
            true,
        )
    } else {
        Ok(format!("{}\n{}\n", p.system, p.user))
    }
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
