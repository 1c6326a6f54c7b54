//! The stages of a SIREN run, each a function of the run config and the dataset that writes
//! its artifacts into the run folder. The CLI commands (`siren sketch`, ...) are thin wrappers,
//! and the pipeline runner chains them.

pub mod baselines;
pub mod eval;
pub mod internalize;
pub mod pipeline;
pub mod predict;
pub mod sketch;
pub mod sweep;
pub mod train;

use std::time::Instant;

use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::config::RunConfig;
use crate::data::{Dataset, Interaction, SplitName};
use crate::engine::{Message, TextTokenizer};
use crate::prompt::{PromptBuilder, Strategy};
use crate::registry::build;
use crate::run::RunDir;
use crate::traits::DatasetLoader;
use crate::traits::{Example, Sketch};
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
/// tokens when `[training] answer_tokens` is set (every stage that runs the decoder loads it so).
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
    Ok((model, tok))
}

/// FNV-1a over byte strings (cache keys, stable ids; not cryptographic).
pub fn fnv1a<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in p {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        h = (h ^ 0xff).wrapping_mul(0x0100_0000_01b3);
    }
    h
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

/// Every user's sketch when the configured prompt strategy uses one (the sketch stage's
/// steps 1–4, with cached item embeddings; no token report), else empty sketches.
pub fn sketches_for(config: &RunConfig, ds: &Dataset, run: &RunDir) -> Result<Vec<Sketch>> {
    match config.prompt.strategy {
        Strategy::Sketch | Strategy::MoreHistory => {
            Ok(sketch::topics_and_sketches(config, ds, run)?.sketches)
        }
        _ => Ok(vec![Sketch::default(); ds.users.len()]),
    }
}

/// Rendered prompts for `rows` (each row's past is the user's history before it; for the
/// test split the valid item counts as history).
pub fn examples(
    config: &RunConfig,
    ds: &Dataset,
    rows: &[Interaction],
    sketches: &[Sketch],
    tok: &TextTokenizer,
) -> Result<Vec<Example>> {
    let pb = PromptBuilder::new(config.prompt.clone())?;
    let timelines = crate::prompt::timelines(ds, config.eval.split == SplitName::Test);
    let count = |s: &str| tok.encode(s, false).map(|v| v.len()).unwrap_or(0);
    rows.iter()
        .map(|x| {
            let u = x.user as usize;
            let past = crate::prompt::past_of(&timelines[u], x);
            let p = pb.build(ds, past, &sketches[u], x, pb.cfg.strategy, &count);
            Ok(Example {
                id: format!("{}:{}", ds.users[u], ds.items[x.item as usize].id),
                prompt: render_prompt(tok, &p)?,
                rating: x.rating,
            })
        })
        .collect()
}
