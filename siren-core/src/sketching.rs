//! Interest sketching (paper §3.1), the domain code the sketch stage, stage 1's prompts,
//! evaluation, prediction, serving and ranking share: item embeddings with their on-disk cache,
//! the topic model (fitted, or read back from `topic-model.json`), and the [`Sketcher`] that
//! turns a user's rated interactions into liked and disliked topics.
//!
//! Item embeddings are cached under `<runs_dir>/.cache/embeddings/`, keyed by the encoder's
//! cache key and the hash of every item text.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::config::RunConfig;
use crate::data::{Dataset, Interaction, SplitName};
use crate::prompt::{self, PromptBuilder};
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

pub(crate) fn slot<'a>(
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
        .take_raw("embeddings")
        .ok()??;
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
    Ok(crate::files::write_atomic(
        path,
        &crate::engine::serialize_f32(&m)?,
    )?)
}

/// Encodes `texts` in chunks with a progress bar, or reads them from the cache.
pub fn encode_cached(
    encoder: &dyn TextEncoder,
    texts: &[String],
    cache_dir: &Path,
) -> Result<(Embeddings, bool)> {
    let key = encoder.cache_key();
    let h = crate::hash::fnv1a(
        std::iter::once(key.as_bytes()).chain(texts.iter().map(|t| t.as_bytes())),
    );
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

/// The topic model prompts draw their sketches from: the topic of every item, the topic names
/// and the sketch rule. A sketch is cheap to build, so each prompt can have its own.
pub struct Sketcher {
    /// Topic of each item (indexed like `Dataset::items`).
    pub assignment: Vec<usize>,
    /// Topic names.
    pub names: Vec<String>,
    rule: Box<dyn SketchBuilder>,
}

impl Sketcher {
    /// A sketcher from an item-to-topic assignment, topic names and a sketch rule.
    pub fn new(assignment: Vec<usize>, names: Vec<String>, rule: Box<dyn SketchBuilder>) -> Self {
        Self {
            assignment,
            names,
            rule,
        }
    }

    /// The sketch of `past` (a user's rated interactions).
    pub fn sketch(&self, past: &[Interaction]) -> Result<Sketch> {
        let hist: Vec<TopicRating> = past
            .iter()
            .map(|x| TopicRating {
                topic: self.assignment[x.item as usize],
                rating: x.rating,
            })
            .collect();
        self.sketch_topics(&hist)
    }

    /// The sketch of ratings whose items are already placed in topics (items from outside
    /// the dataset, placed at their nearest topic center).
    pub fn sketch_topics(&self, hist: &[TopicRating]) -> Result<Sketch> {
        self.rule.build(hist, &self.names)
    }
}

/// Where each prompt's sketch comes from (`[prompt] strategy` and `sketch_scope`).
pub enum PromptSketches {
    /// The strategy shows no sketch.
    None,
    /// Each prompt's sketch is built from the interactions before its target.
    BeforeTarget(Sketcher),
    /// One sketch per user (indexed like `Dataset::users`), from the history before the
    /// evaluated split, and the topic of each item.
    PerUser(Vec<Sketch>, Vec<usize>),
}

impl PromptSketches {
    /// The sketch of a prompt for `user` whose target comes after `past`.
    pub fn for_prompt(&self, user: u32, past: &[Interaction]) -> Result<Sketch> {
        match self {
            Self::None => Ok(Sketch::default()),
            Self::BeforeTarget(s) => s.sketch(past),
            Self::PerUser(v, _) => Ok(v[user as usize].clone()),
        }
    }

    /// The topic of `item`, when prompts have a topic model.
    pub fn topic_of(&self, item: u32) -> Option<usize> {
        match self {
            Self::None => None,
            Self::BeforeTarget(s) => s.assignment.get(item as usize).copied(),
            Self::PerUser(_, a) => a.get(item as usize).copied(),
        }
    }
}

/// Topics and sketches, before the prompt samples and the token report.
pub struct Built {
    /// The topics.
    pub topics: Vec<TopicInfo>,
    /// Topic of each item, names and rule.
    pub sketcher: Sketcher,
    /// Sketch of each user (indexed like `Dataset::users`) from the history before the
    /// evaluated split.
    pub sketches: Vec<Sketch>,
    /// Wall time of each step.
    pub seconds: serde_json::Map<String, serde_json::Value>,
    /// Embedding width.
    pub embedding_dim: usize,
    /// Whether the embeddings came from the cache.
    pub embeddings_cached: bool,
    /// Items the topics were fitted on (those of history and train).
    pub fitted_items: usize,
}

/// The items topics are fitted on: every item of `history` and `train`, whatever split is
/// evaluated (so a test file, which brings items of its own, leaves the topics unchanged).
pub fn fit_items(ds: &Dataset) -> Vec<usize> {
    let mut in_fit = vec![false; ds.items.len()];
    for x in ds.history.iter().chain(&ds.train) {
        in_fit[x.item as usize] = true;
    }
    (0..ds.items.len()).filter(|&i| in_fit[i]).collect()
}

/// A fitted topic model as the sketch stage writes it (`topic-model.json`) and
/// `[topics] model` reads it back: the encoder that placed the items, topic names, centers and
/// the topic of every item by id. Shipped with a trained model, it gives that model's sketches
/// without encoding and clustering the catalog again.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct TopicModelFile {
    /// Cache key of the encoder ([`TextEncoder::cache_key`]): items it does not list are encoded
    /// with the same encoder.
    pub encoder: String,
    /// Topic names.
    pub names: Vec<String>,
    /// Topic centers, `k` rows of the embedding width.
    pub centers: Vec<Vec<f32>>,
    /// The topic of each item, by item id.
    pub items: std::collections::BTreeMap<String, usize>,
}

impl TopicModelFile {
    /// Reads and checks a topic model file.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| CoreError::io(path, e))?;
        let m: Self = serde_json::from_str(&text).map_err(|source| CoreError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        let k = m.names.len();
        let dim = m.centers.first().map_or(0, Vec::len);
        if k == 0 || m.centers.len() != k || m.centers.iter().any(|c| c.len() != dim) {
            return Err(CoreError::Parse {
                path: path.to_path_buf(),
                line: 0,
                field: Some("centers".into()),
                message: format!(
                    "expected {k} centers of one width (one per topic name), found {}",
                    m.centers.len()
                ),
            });
        }
        if let Some((id, &t)) = m.items.iter().find(|(_, t)| **t >= k) {
            return Err(CoreError::Parse {
                path: path.to_path_buf(),
                line: 0,
                field: Some("items".into()),
                message: format!("item `{id}` has topic {t}, but there are {k} topics"),
            });
        }
        Ok(m)
    }
}

/// Index of the center nearest `row` (squared Euclidean distance).
pub fn nearest_center(centers: &Embeddings, row: &[f32]) -> usize {
    let mut best = (0, f32::INFINITY);
    for t in 0..centers.n {
        let c = &centers.data[t * centers.dim..(t + 1) * centers.dim];
        let d: f32 = c.iter().zip(row).map(|(a, b)| (a - b) * (a - b)).sum();
        if d < best.1 {
            best = (t, d);
        }
    }
    best.0
}

/// The topic of every fitted item (the others stay 0), after checking that the clusterer
/// returned what it was asked for: one assignment per fitted item, `k` topics of `dim`-d
/// centers, topics below `k`.
fn fitted_assignment(
    kind: &str,
    topics: &crate::traits::Topics,
    fit: &[usize],
    k: usize,
    dim: usize,
    n_items: usize,
) -> Result<Vec<usize>> {
    if topics.assignment.len() != fit.len() || topics.nearest.len() != k {
        return Err(CoreError::Data(format!(
            "clusterer `{kind}` returned {} assignments and {} topics for {} items and k = {k}",
            topics.assignment.len(),
            topics.nearest.len(),
            fit.len()
        )));
    }
    if topics.centers.n != k || topics.centers.dim != dim {
        return Err(CoreError::Data(format!(
            "clusterer `{kind}` returned {}×{} centers for k = {k} and {dim}-d embeddings",
            topics.centers.n, topics.centers.dim
        )));
    }
    let mut assignment = vec![0usize; n_items];
    for (j, &a) in topics.assignment.iter().enumerate() {
        if a >= k {
            return Err(CoreError::Data(format!(
                "clusterer `{kind}` assigned topic {a} ≥ k = {k}"
            )));
        }
        assignment[fit[j]] = a;
    }
    Ok(assignment)
}

/// Steps 1–4 of the stage: encode, cluster, name, sketch (writes `topics.json` and
/// `sketches.jsonl`). Later stages that only need the sketches call this, not [`run`].
///
/// Topics are fitted on the items of history and train only ([`fit_items`]); any other item
/// (a valid or test target seen nowhere else) is assigned to its nearest topic center.
pub fn topics_and_sketches(config: &RunConfig, ds: &Dataset, run: &RunDir) -> Result<Built> {
    let enc_cfg = slot(&config.encoder, "encoder")?;
    let clu_cfg = slot(&config.clusterer, "clusterer")?;
    let nam_cfg = slot(&config.namer, "namer")?;
    let sk_cfg = slot(&config.sketch, "sketch")?;
    let encoder = build_on::<dyn TextEncoder>(&enc_cfg.kind, &enc_cfg.params, &config.device)?;
    let builder = build::<dyn SketchBuilder>(&sk_cfg.kind, &sk_cfg.params)?;
    let pb = PromptBuilder::new(config.prompt.clone())?;
    if let Some(path) = &config.topics.model {
        return from_topic_model(config, ds, run, path, encoder.as_ref(), builder, &pb);
    }
    let clusterer = build::<dyn TopicClusterer>(&clu_cfg.kind, &clu_cfg.params)?;
    let namer = build_on::<dyn TopicNamer>(&nam_cfg.kind, &nam_cfg.params, &config.device)?;
    let (k, m) = (config.topics.k, config.topics.nearest);
    let mut seconds = serde_json::Map::new();

    // 1. Encode: the items topics are fitted on, then any other item, each set cached.
    let t = Instant::now();
    let fit = fit_items(ds);
    if fit.is_empty() {
        return Err(CoreError::Data(format!(
            "`{}` has no history or train items to fit topics on",
            ds.name
        )));
    }
    let mut is_fit = vec![false; ds.items.len()];
    for &i in &fit {
        is_fit[i] = true;
    }
    let others: Vec<usize> = (0..ds.items.len()).filter(|&i| !is_fit[i]).collect();
    let texts = |idx: &[usize]| -> Vec<String> {
        idx.iter()
            .map(|&i| prompt::encoder_text(ds, i as u32))
            .collect()
    };
    let cache_dir = config.runs_dir.join(".cache").join("embeddings");
    let (emb, cached) = encode_cached(encoder.as_ref(), &texts(&fit), &cache_dir)?;
    let other_emb = if others.is_empty() {
        None
    } else {
        Some(encode_cached(encoder.as_ref(), &texts(&others), &cache_dir)?.0)
    };
    let encode_s = t.elapsed().as_secs_f64();
    seconds.insert("encode".into(), serde_json::json!(encode_s));
    tracing::info!(
        "encoded {} items with `{}` into {}-d vectors in {encode_s:.1}s{}",
        ds.items.len(),
        enc_cfg.kind,
        emb.dim,
        if cached { " (cached)" } else { "" }
    );

    // 2. Cluster the fit set; assign the other items to their nearest center.
    let t = Instant::now();
    let topics = clusterer.fit(&emb, k, m, config.seed)?;
    let cluster_s = t.elapsed().as_secs_f64();
    seconds.insert("cluster".into(), serde_json::json!(cluster_s));
    let mut assignment =
        fitted_assignment(&clu_cfg.kind, &topics, &fit, k, emb.dim, ds.items.len())?;
    if let Some(o) = &other_emb {
        for (j, &i) in others.iter().enumerate() {
            assignment[i] = nearest_center(&topics.centers, &o.data[j * o.dim..(j + 1) * o.dim]);
        }
    }
    let nearest: Vec<Vec<usize>> = topics
        .nearest
        .iter()
        .map(|v| v.iter().map(|&j| fit[j]).collect())
        .collect();
    let mut sizes = vec![0usize; k];
    for &a in &assignment {
        sizes[a] += 1;
    }
    tracing::info!(
        "clustered into {k} topics with `{}` in {cluster_s:.1}s: fitted on the {} items of \
         history and train; {} other items (valid/test targets) assigned to their nearest topic",
        clu_cfg.kind,
        fit.len(),
        others.len()
    );

    // 3. Name.
    let t = Instant::now();
    let central: Vec<Vec<String>> = nearest
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
            nearest: nearest[t]
                .iter()
                .take(10)
                .map(|&i| ds.items[i].title.clone())
                .collect(),
        })
        .collect();
    run.write_json("topics.json", &infos)?;
    let model_file = TopicModelFile {
        encoder: encoder.cache_key(),
        names: names.clone(),
        centers: (0..k)
            .map(|t| topics.centers.data[t * emb.dim..(t + 1) * emb.dim].to_vec())
            .collect(),
        items: (0..ds.items.len())
            .map(|i| (ds.items[i].id.clone(), assignment[i]))
            .collect(),
    };
    run.write_json("topic-model.json", &model_file)?;
    let sketcher = Sketcher::new(assignment, names, builder);
    let (sketches, sketch_s) = user_sketches(config, ds, run, &sketcher, &pb)?;
    seconds.insert("sketch".into(), serde_json::json!(sketch_s));
    tracing::info!(
        "built {} sketches with `{}` in {sketch_s:.2}s",
        sketches.len(),
        sk_cfg.kind
    );
    Ok(Built {
        topics: infos,
        sketcher,
        sketches,
        seconds,
        embedding_dim: emb.dim,
        embeddings_cached: cached,
        fitted_items: fit.len(),
    })
}

/// Topics from a topic model file (`[topics] model`): names and item topics as written, items
/// it does not know encoded and given their nearest center.
fn from_topic_model(
    config: &RunConfig,
    ds: &Dataset,
    run: &RunDir,
    path: &Path,
    encoder: &dyn TextEncoder,
    builder: Box<dyn SketchBuilder>,
    pb: &PromptBuilder,
) -> Result<Built> {
    let t = Instant::now();
    let m = TopicModelFile::read(path)?;
    let dim = m.centers[0].len();
    let centers = Embeddings {
        n: m.names.len(),
        dim,
        data: m.centers.concat(),
    };
    let mut assignment = vec![0usize; ds.items.len()];
    let mut unknown = Vec::new();
    for (i, it) in ds.items.iter().enumerate() {
        match m.items.get(&it.id) {
            Some(&topic) => assignment[i] = topic,
            None => unknown.push(i),
        }
    }
    let mut cached = true;
    if !unknown.is_empty() {
        if encoder.cache_key() != m.encoder {
            tracing::warn!(
                "{}: written with encoder `{}`, [encoder] is `{}`: {} new items are placed by \
                 another encoder",
                path.display(),
                m.encoder,
                encoder.cache_key(),
                unknown.len()
            );
        }
        let texts: Vec<String> = unknown
            .iter()
            .map(|&i| prompt::encoder_text(ds, i as u32))
            .collect();
        let cache_dir = config.runs_dir.join(".cache").join("embeddings");
        let (e, c) = encode_cached(encoder, &texts, &cache_dir)?;
        cached = c;
        if e.dim != dim {
            return Err(CoreError::Data(format!(
                "{}: centers are {dim}-d but the encoder gives {}-d vectors",
                path.display(),
                e.dim
            )));
        }
        for (j, &i) in unknown.iter().enumerate() {
            assignment[i] = nearest_center(&centers, &e.data[j * dim..(j + 1) * dim]);
        }
    }
    let k = m.names.len();
    let mut sizes = vec![0usize; k];
    for &a in &assignment {
        sizes[a] += 1;
    }
    tracing::info!(
        "topics from {}: {k} topics, {} items known, {} new items placed at their nearest center",
        path.display(),
        ds.items.len() - unknown.len(),
        unknown.len()
    );
    let infos: Vec<TopicInfo> = (0..k)
        .map(|t| TopicInfo {
            id: t,
            name: m.names[t].clone(),
            size: sizes[t],
            nearest: Vec::new(),
        })
        .collect();
    run.write_json("topics.json", &infos)?;
    let mut seconds = serde_json::Map::new();
    seconds.insert("load".into(), serde_json::json!(t.elapsed().as_secs_f64()));
    let fitted = m.items.len();
    let sketcher = Sketcher::new(assignment, m.names, builder);
    let (sketches, sketch_s) = user_sketches(config, ds, run, &sketcher, pb)?;
    seconds.insert("sketch".into(), serde_json::json!(sketch_s));
    Ok(Built {
        topics: infos,
        sketcher,
        sketches,
        seconds,
        embedding_dim: dim,
        embeddings_cached: cached,
        fitted_items: fitted,
    })
}

/// Every user's sketch from the history before the evaluated split (writes `sketches.jsonl`);
/// returns them and the seconds taken.
fn user_sketches(
    config: &RunConfig,
    ds: &Dataset,
    run: &RunDir,
    sketcher: &Sketcher,
    pb: &PromptBuilder,
) -> Result<(Vec<Sketch>, f64)> {
    let t = Instant::now();
    let split = config.eval.split;
    let timelines = prompt::timelines(ds, split == SplitName::Test);
    let mut sketches = Vec::with_capacity(ds.users.len());
    let mut lines = String::new();
    for (u, tl) in timelines.iter().enumerate() {
        let s = sketcher.sketch(tl)?;
        let row = serde_json::json!({
            "user_id": ds.users[u],
            "likes": s.likes,
            "dislikes": s.dislikes,
            "text": pb.sketch(&s),
        });
        lines.push_str(&row.to_string());
        lines.push('\n');
        sketches.push(s);
    }
    crate::files::write_atomic(&run.file("sketches.jsonl"), lines.as_bytes())?;
    Ok((sketches, t.elapsed().as_secs_f64()))
}
