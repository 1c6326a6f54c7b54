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
//! Item embeddings are cached under `<runs_dir>/.cache/embeddings/`, keyed by the encoder's
//! cache key and the hash of every item text.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::config::RunConfig;
use crate::data::{Dataset, SplitName};
use crate::engine::TextTokenizer;
use crate::prompt::{self, PromptBuilder, Strategy};
use crate::registry::{build, build_on};
use crate::run::RunDir;
use crate::traits::{
    Embeddings, Sketch, SketchBuilder, TextEncoder, TopicClusterer, TopicNamer, TopicRating,
};
use crate::{CoreError, Result};

/// One topic as written to `topics.json`.
#[derive(Debug, Clone, Serialize)]
pub struct TopicInfo {
    /// Index.
    pub id: usize,
    /// Name.
    pub name: String,
    /// Items assigned.
    pub size: usize,
    /// Titles of the items nearest the center (at most 10).
    pub nearest: Vec<String>,
}

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

fn slot<'a>(
    s: &'a Option<crate::config::SlotConfig>,
    name: &str,
) -> Result<&'a crate::config::SlotConfig> {
    s.as_ref().ok_or_else(|| {
        CoreError::config(
            name,
            format!("the sketch stage needs a [{name}] table (kind = ...)"),
        )
    })
}

/// Reads cached embeddings, if a valid file exists.
fn read_cache(path: &Path, n: usize) -> Option<Embeddings> {
    let (shape, data) = crate::engine::Weights::from_safetensors(path)
        .ok()?
        .take_raw("embeddings")?;
    (shape.len() == 2 && shape[0] == n).then(|| Embeddings {
        n,
        dim: shape[1],
        data,
    })
}

fn write_cache(path: &Path, e: &Embeddings) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|err| CoreError::io(dir, err))?;
    }
    let mut m = std::collections::BTreeMap::new();
    m.insert("embeddings".to_string(), (vec![e.n, e.dim], e.data.clone()));
    crate::run::write_atomic(path, &crate::engine::serialize_f32(&m)?)
}

/// Encodes `texts` in chunks with a progress bar, or reads them from the cache.
pub fn encode_cached(
    encoder: &dyn TextEncoder,
    texts: &[String],
    cache_dir: &Path,
) -> Result<(Embeddings, bool)> {
    let key = encoder.cache_key();
    let h = super::fnv1a(std::iter::once(key.as_bytes()).chain(texts.iter().map(|t| t.as_bytes())));
    let path: PathBuf = cache_dir.join(format!("{h:016x}.safetensors"));
    if let Some(e) = read_cache(&path, texts.len()) {
        tracing::info!("item embeddings from cache {}", path.display());
        return Ok((e, true));
    }
    let bar = crate::progress::bar(texts.len() as u64, "encoding items");
    let mut data = Vec::new();
    let mut dim = 0;
    for chunk in texts.chunks(512) {
        let e = encoder.encode(chunk)?;
        if e.n != chunk.len() {
            return Err(CoreError::Data(format!(
                "text encoder returned {} rows for {} texts",
                e.n,
                chunk.len()
            )));
        }
        dim = e.dim;
        data.extend(e.data);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let e = Embeddings {
        n: texts.len(),
        dim,
        data,
    };
    write_cache(&path, &e)?;
    Ok((e, false))
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
    Ok(tok.encode(&super::render_prompt(tok, p)?, false)?.len())
}

/// Topics and sketches, before the prompt samples and the token report.
pub struct Built {
    /// The topics.
    pub topics: Vec<TopicInfo>,
    /// Topic of each item.
    pub assignment: Vec<usize>,
    /// Topic names.
    pub names: Vec<String>,
    /// Sketch of each user (indexed like `Dataset::users`).
    pub sketches: Vec<Sketch>,
    /// Wall time of each step.
    pub seconds: serde_json::Map<String, serde_json::Value>,
    /// Embedding width.
    pub embedding_dim: usize,
    /// Whether the embeddings came from the cache.
    pub embeddings_cached: bool,
}

/// Steps 1–4 of the stage: encode, cluster, name, sketch (writes `topics.json` and
/// `sketches.jsonl`). Later stages that only need the sketches call this, not [`run`].
pub fn topics_and_sketches(config: &RunConfig, ds: &Dataset, run: &RunDir) -> Result<Built> {
    let enc_cfg = slot(&config.encoder, "encoder")?;
    let clu_cfg = slot(&config.clusterer, "clusterer")?;
    let nam_cfg = slot(&config.namer, "namer")?;
    let sk_cfg = slot(&config.sketch, "sketch")?;
    let encoder = build_on::<dyn TextEncoder>(&enc_cfg.kind, &enc_cfg.params, &config.device)?;
    let clusterer = build::<dyn TopicClusterer>(&clu_cfg.kind, &clu_cfg.params)?;
    let namer = build_on::<dyn TopicNamer>(&nam_cfg.kind, &nam_cfg.params, &config.device)?;
    let builder = build::<dyn SketchBuilder>(&sk_cfg.kind, &sk_cfg.params)?;
    let pb = PromptBuilder::new(config.prompt.clone())?;
    let (k, m) = (config.topics.k, config.topics.nearest);
    let mut seconds = serde_json::Map::new();

    // 1. Encode.
    let t = Instant::now();
    let texts: Vec<String> = (0..ds.items.len() as u32)
        .map(|i| prompt::encoder_text(ds, i))
        .collect();
    let cache_dir = config.runs_dir.join(".cache").join("embeddings");
    let (emb, cached) = encode_cached(encoder.as_ref(), &texts, &cache_dir)?;
    let encode_s = t.elapsed().as_secs_f64();
    seconds.insert("encode".into(), serde_json::json!(encode_s));
    tracing::info!(
        "encoded {} items with `{}` into {}-d vectors in {encode_s:.1}s{}",
        emb.n,
        enc_cfg.kind,
        emb.dim,
        if cached { " (cached)" } else { "" }
    );

    // 2. Cluster.
    let t = Instant::now();
    let topics = clusterer.fit(&emb, k, m, config.seed)?;
    let cluster_s = t.elapsed().as_secs_f64();
    seconds.insert("cluster".into(), serde_json::json!(cluster_s));
    if topics.assignment.len() != ds.items.len() || topics.nearest.len() != k {
        return Err(CoreError::Data(format!(
            "clusterer `{}` returned {} assignments and {} topics for {} items and k = {k}",
            clu_cfg.kind,
            topics.assignment.len(),
            topics.nearest.len(),
            ds.items.len()
        )));
    }
    let mut sizes = vec![0usize; k];
    for &a in &topics.assignment {
        if a >= k {
            return Err(CoreError::Data(format!(
                "clusterer `{}` assigned topic {a} ≥ k = {k}",
                clu_cfg.kind
            )));
        }
        sizes[a] += 1;
    }
    tracing::info!(
        "clustered into {k} topics with `{}` in {cluster_s:.1}s",
        clu_cfg.kind
    );

    // 3. Name.
    let t = Instant::now();
    let central: Vec<Vec<String>> = topics
        .nearest
        .iter()
        .map(|v| v.iter().map(|&i| prompt::item_text(ds, i as u32)).collect())
        .collect();
    let names = namer.name(&central, config.seed)?;
    if names.len() != k {
        return Err(CoreError::Data(format!(
            "namer `{}` returned {} names for {k} topics",
            nam_cfg.kind,
            names.len()
        )));
    }
    let name_s = t.elapsed().as_secs_f64();
    seconds.insert("name".into(), serde_json::json!(name_s));
    tracing::info!("named {k} topics with `{}` in {name_s:.1}s", nam_cfg.kind);
    let infos: Vec<TopicInfo> = (0..k)
        .map(|t| TopicInfo {
            id: t,
            name: names[t].clone(),
            size: sizes[t],
            nearest: topics.nearest[t]
                .iter()
                .take(10)
                .map(|&i| ds.items[i].title.clone())
                .collect(),
        })
        .collect();
    run.write_json("topics.json", &infos)?;

    // 4. Sketches from each user's history before the evaluated split.
    let t = Instant::now();
    let split = config.eval.split;
    let timelines = prompt::timelines(ds, split == SplitName::Test);
    let mut sketches = Vec::with_capacity(ds.users.len());
    let mut lines = String::new();
    for (u, tl) in timelines.iter().enumerate() {
        let hist: Vec<TopicRating> = tl
            .iter()
            .map(|x| TopicRating {
                topic: topics.assignment[x.item as usize],
                rating: x.rating,
            })
            .collect();
        let s = builder.build(&hist, &names)?;
        let row = serde_json::json!({
            "user_id": ds.users[u],
            "likes": s.likes,
            "dislikes": s.dislikes,
            "text": prompt::sketch_text(&s, &pb.cfg),
        });
        lines.push_str(&row.to_string());
        lines.push('\n');
        sketches.push(s);
    }
    crate::run::write_atomic(&run.file("sketches.jsonl"), lines.as_bytes())?;
    let sketch_s = t.elapsed().as_secs_f64();
    seconds.insert("sketch".into(), serde_json::json!(sketch_s));
    let with_likes = sketches.iter().filter(|s| !s.likes.is_empty()).count();
    let with_dislikes = sketches.iter().filter(|s| !s.dislikes.is_empty()).count();
    tracing::info!(
        "built {} sketches with `{}` in {sketch_s:.2}s ({with_likes} with likes, {with_dislikes} with dislikes)",
        sketches.len(),
        sk_cfg.kind
    );
    Ok(Built {
        topics: infos,
        assignment: topics.assignment,
        names,
        sketches,
        seconds,
        embedding_dim: emb.dim,
        embeddings_cached: cached,
    })
}

/// Runs the stage; see the module docs for what it writes.
pub fn run(config: &RunConfig, ds: &Dataset, run: &RunDir) -> Result<SketchOutput> {
    let enc_cfg = slot(&config.encoder, "encoder")?;
    let clu_cfg = slot(&config.clusterer, "clusterer")?;
    let nam_cfg = slot(&config.namer, "namer")?;
    let sk_cfg = slot(&config.sketch, "sketch")?;
    let Built {
        topics: infos,
        assignment,
        names,
        sketches,
        mut seconds,
        embedding_dim,
        embeddings_cached,
    } = topics_and_sketches(config, ds, run)?;
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
    crate::run::write_atomic(&run.file("prompts.sample.txt"), sample.as_bytes())?;

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
        assignment,
        sketches,
        report: out,
    })
}
