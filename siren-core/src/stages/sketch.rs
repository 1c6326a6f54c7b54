//! The sketch stage (paper §3.1): encode every item, cluster the embeddings into K topics,
//! name the topics, build every user's liked/disliked sketch, and measure prompt lengths.
//!
//! Writes into the run folder:
//! - `topics.json`: per topic its id, name, size and the titles of its items nearest the center;
//! - `sketches.jsonl`: per user its liked and disliked topics (with support and mean rating)
//!   and the sketch text;
//! - `prompts.sample.txt`: a few full prompts of the configured strategy;
//! - section `sketch` of `metrics.json`: wall time of each step, and (with `[model]`) the token
//!   report — mean and median input tokens per prompt for `recent`, `sketch`, `full-history`
//!   and `more-history`, counted with the model's tokenizer and chat template.
//!
//! The topics, embeddings and sketches themselves are built by [`crate::sketching`].

use std::time::Instant;

use crate::Result;

use super::stage::{Ctx, Stage, Status};
use crate::config::RunConfig;
use crate::data::{Dataset, SplitName};
use crate::engine::TextTokenizer;
use crate::prompt::{self, PromptBuilder, Strategy};
use crate::run::RunDir;
use crate::traits::Sketch;

use crate::sketching::slot;
pub use crate::sketching::{
    Built, PromptSketches, Sketcher, TopicInfo, TopicModelFile, encode_cached, fit_items,
    nearest_center, topics_and_sketches,
};

/// What the stage produced.
#[derive(Debug, Clone)]
pub struct SketchOutput {
    /// The topics.
    pub topics: Vec<TopicInfo>,
    /// Topic of each item.
    pub assignment: Vec<usize>,
    /// Sketch of each user (indexed like `Dataset::users`).
    pub sketches: Vec<Sketch>,
    /// Section `sketch` of `metrics.json`.
    pub report: serde_json::Value,
}

/// Mean and median of counts.
fn summary(v: &[usize]) -> serde_json::Value {
    if v.is_empty() {
        return serde_json::json!({"mean": null, "median": null});
    }
    let mut s = v.to_vec();
    s.sort_unstable();
    let mean = s.iter().sum::<usize>() as f64 / s.len() as f64;
    let median = if s.len() % 2 == 1 {
        s[s.len() / 2] as f64
    } else {
        (s[s.len() / 2 - 1] + s[s.len() / 2]) as f64 / 2.0
    };
    serde_json::json!({"mean": mean, "median": median})
}

/// The tokenizer of the configured model (GGUF metadata or `tokenizer.json`).
pub fn model_tokenizer(config: &RunConfig) -> Result<Option<TextTokenizer>> {
    let Some(m) = &config.model else {
        return Ok(None);
    };
    let tok = if m.path.is_dir() {
        TextTokenizer::from_hf_dir(&m.path)?
    } else {
        let g = crate::engine::gguf::Gguf::open(&m.path)?;
        TextTokenizer::from_gguf(&g, &m.path.display().to_string())?
    };
    Ok(Some(tok))
}

/// Counts the tokens of a prompt as the model sees it (chat template when it has one).
fn prompt_tokens(tok: &TextTokenizer, p: &prompt::Prompt) -> Result<usize> {
    Ok(tok
        .encode(&crate::prompt::render_prompt(tok, p)?, false)?
        .len())
}

/// Sketch lines and prompt tokens of training prompts (a seeded sample of at most 1,000) under
/// each sketch scope: one sketch per user from the whole pre-valid history (`per-user`, which
/// counts the target and later items) against the interactions before each target
/// (`before-target`).
fn train_prompt_report(
    config: &RunConfig,
    ds: &Dataset,
    sketcher: &Sketcher,
    per_user: &[Sketch],
    pb: &PromptBuilder,
    tok: &TextTokenizer,
) -> Result<serde_json::Value> {
    let rows = super::sample_rows(&ds.train, Some(1000), config.seed);
    if rows.is_empty() {
        return Ok(serde_json::Value::Null);
    }
    let timelines = prompt::timelines(ds, false);
    let count = |s: &str| tok.encode(s, false).map(|v| v.len()).unwrap_or(0);
    let (mut lines, mut tokens) = ([0usize; 2], [0usize; 2]);
    for x in &rows {
        let u = x.user as usize;
        let past = prompt::past_of(&timelines[u], x);
        let before = sketcher.sketch(past)?;
        for (k, sk) in [&per_user[u], &before].into_iter().enumerate() {
            lines[k] += sk.likes.len() + sk.dislikes.len();
            let p = pb.build(ds, past, sk, x, pb.cfg.strategy, &count);
            tokens[k] += prompt_tokens(tok, &p)?;
        }
    }
    let n = rows.len() as f64;
    let side = |k: usize| serde_json::json!({"sketch_lines": lines[k] as f64 / n, "tokens": tokens[k] as f64 / n});
    tracing::info!(
        "training prompts ({} sampled): per-user sketches {:.2} topic lines, {:.1} tokens; \
         before-target {:.2} lines, {:.1} tokens",
        rows.len(),
        lines[0] as f64 / n,
        tokens[0] as f64 / n,
        lines[1] as f64 / n,
        tokens[1] as f64 / n
    );
    Ok(serde_json::json!({"rows": rows.len(), "per-user": side(0), "before-target": side(1)}))
}

/// Runs the stage; see the module docs for what it writes.
pub fn run(config: &RunConfig, ds: &Dataset, run: &RunDir) -> Result<SketchOutput> {
    let enc_cfg = slot(&config.encoder, "encoder")?;
    let clu_cfg = slot(&config.clusterer, "clusterer")?;
    let nam_cfg = slot(&config.namer, "namer")?;
    let sk_cfg = slot(&config.sketch, "sketch")?;
    let Built {
        topics: infos,
        sketcher,
        sketches,
        mut seconds,
        embedding_dim,
        embeddings_cached,
        fitted_items,
    } = topics_and_sketches(config, ds, run)?;
    let names = sketcher.names.clone();
    let pb = PromptBuilder::new(config.prompt.clone())?;
    let k = config.topics.k;
    let split = config.eval.split;
    let timelines = prompt::timelines(ds, split == SplitName::Test);
    let with_likes = sketches.iter().filter(|s| !s.likes.is_empty()).count();
    let with_dislikes = sketches.iter().filter(|s| !s.dislikes.is_empty()).count();

    // 5. Sample prompts and the token report on the evaluated split.
    let targets = ds.split(split);
    let tok = model_tokenizer(config)?;
    let words = |s: &str| s.split_whitespace().count();
    let count: Box<dyn Fn(&str) -> usize + '_> = match &tok {
        Some(t) => Box::new(move |s: &str| t.encode(s, false).map(|v| v.len()).unwrap_or(0)),
        None => Box::new(words),
    };
    let mut sample = String::new();
    for x in targets.iter().take(config.topics.sample_prompts) {
        let p = pb.build(
            ds,
            &timelines[x.user as usize],
            &sketches[x.user as usize],
            x,
            pb.cfg.strategy,
            &*count,
        );
        sample.push_str(&format!(
            "=== user {} · candidate {} · rating {:.1} · strategy {} ===\n[system]\n{}\n\n[user]\n{}\n\n",
            ds.users[x.user as usize],
            ds.items[x.item as usize].id,
            x.rating,
            pb.cfg.strategy.as_str(),
            p.system,
            p.user
        ));
    }
    crate::files::write_atomic(&run.file("prompts.sample.txt"), sample.as_bytes())?;

    let mut report = serde_json::Map::new();
    if let Some(tok) = &tok {
        let t = Instant::now();
        let strategies = [
            Strategy::Recent,
            Strategy::Sketch,
            Strategy::FullHistory,
            Strategy::MoreHistory,
        ];
        let mut counts: Vec<Vec<usize>> = vec![Vec::with_capacity(targets.len()); strategies.len()];
        let bar = crate::progress::bar(targets.len() as u64, "counting prompt tokens");
        for x in targets {
            let u = x.user as usize;
            for (k, &s) in strategies.iter().enumerate() {
                let p = pb.build(ds, &timelines[u], &sketches[u], x, s, &*count);
                counts[k].push(prompt_tokens(tok, &p)?);
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        let mean =
            |k: usize| counts[k].iter().sum::<usize>() as f64 / counts[k].len().max(1) as f64;
        for (k, s) in strategies.iter().enumerate() {
            report.insert(s.as_str().into(), summary(&counts[k]));
        }
        report.insert(
            "sketch_vs_full_history".into(),
            serde_json::json!(mean(1) / mean(2) - 1.0),
        );
        report.insert(
            "sketch_vs_recent".into(),
            serde_json::json!(mean(1) / mean(0) - 1.0),
        );
        report.insert("prompts".into(), serde_json::json!(targets.len()));
        report.insert(
            "train_prompts".into(),
            train_prompt_report(config, ds, &sketcher, &sketches, &pb, tok)?,
        );
        report.insert(
            "tokenizer".into(),
            serde_json::json!(config.model.as_ref().map(|m| m.path.display().to_string())),
        );
        seconds.insert(
            "tokens".into(),
            serde_json::json!(t.elapsed().as_secs_f64()),
        );
    } else {
        tracing::warn!(
            "no [model] configured: skipping the token report (it needs the model's tokenizer)"
        );
    }

    let out = serde_json::json!({
        "items": ds.items.len(),
        "users": ds.users.len(),
        "k": k,
        "encoder": enc_cfg.kind,
        "clusterer": clu_cfg.kind,
        "namer": nam_cfg.kind,
        "sketch_builder": sk_cfg.kind,
        "embedding_dim": embedding_dim,
        "embeddings_cached": embeddings_cached,
        "fitted_items": fitted_items,
        "topics": names,
        "users_with_likes": with_likes,
        "users_with_dislikes": with_dislikes,
        "tokens": serde_json::Value::Object(report),
        "seconds": serde_json::Value::Object(seconds),
    });
    run.record_section(
        &ds.name,
        split.as_str(),
        targets.len(),
        "sketch",
        out.clone(),
    )?;
    Ok(SketchOutput {
        topics: infos,
        assignment: sketcher.assignment,
        sketches,
        report: out,
    })
}

/// The key of the sketch stage: every section its topics, sketches and token report depend on.
pub fn key(config: &RunConfig) -> u64 {
    let json = serde_json::json!({
        "dataset": config.dataset, "eval": config.eval.split, "topics": config.topics,
        "encoder": config.encoder, "clusterer": config.clusterer, "namer": config.namer,
        "sketch": config.sketch, "prompt": config.prompt, "model": config.model,
        "seed": config.seed,
    })
    .to_string();
    crate::hash::fnv1a([json.as_bytes()])
}

/// The sketch stage of `siren run`: reused when `sketch.key` holds this config's [`key`] and
/// its outputs are there.
pub struct SketchStage;

impl Stage for SketchStage {
    fn name(&self) -> &'static str {
        "sketch"
    }

    /// When the prompt strategy shows sketches and an `[encoder]` is set.
    fn by_default(&self, config: &RunConfig) -> bool {
        matches!(
            config.prompt.strategy,
            Strategy::Sketch | Strategy::MoreHistory
        ) && config.encoder.is_some()
    }

    fn done(&self, config: &RunConfig, run: &RunDir) -> Result<Option<String>> {
        let key = format!("{:016x}", key(config));
        let same = std::fs::read_to_string(run.sketch_key()).is_ok_and(|k| k.trim() == key);
        Ok(
            (same && run.file("topics.json").is_file() && run.file("sketches.jsonl").is_file())
                .then(|| format!("topics.json and sketches.jsonl of key {key}")),
        )
    }

    fn run(&self, ctx: &mut Ctx<'_>) -> Result<(Status, String)> {
        let key = format!("{:016x}", key(ctx.config));
        let out = run(ctx.config, ctx.ds, ctx.run)?;
        crate::files::write_atomic(&ctx.run.sketch_key(), format!("{key}\n").as_bytes())?;
        Ok((Status::Ran, format!("{} topics", out.topics.len())))
    }
}
