//! `siren rank`: candidate ranking with a run's trained weights, and the paper's
//! candidate-reranking evaluation (§4, Table 9, EXP3RT's protocol).
//!
//! Ranking (`--input users.jsonl`): each line is a ranking request (`{"user" | "history",
//! "candidates", "k"}`, see [`crate::serving::request`]); without `candidates` the retriever
//! proposes `[rank] candidates` items. The candidates are ordered by expected rating (one
//! forward pass each on the user's part of the prompt, computed once) and the top `k` written
//! as JSONL.
//!
//! Evaluation (`--evaluate`): for every user of the evaluated split (or a seeded sample of
//! `[rank] sample`), the retriever (`[rank] retriever`: slot `retriever`, LightGCN by default,
//! or a rating baseline; fitted on the split's fit set) proposes its top `[rank] candidates`
//! items the user has not seen, the same list for every order: the model's by expected rating
//! and by the probability of the top rating, the retriever's own and a random one. Recall@K and
//! nDCG@K of the held-out item over all users (a miss counts 0) with 95% bootstrap intervals,
//! the hit rate (the ceiling of any reranker), the model's latency per query, and each
//! retriever of `[rank] compare` on its own top list. A secondary view puts the held-out item
//! in every list (in place of the retriever's last candidate when it missed). Writes
//! `rank.json`, `rank.md` and `rank.jsonl` (every user's list and scores) to the run folder.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::blend::Blend;
use crate::config::{BlendConfig, RankConfig, RunConfig};
use crate::data::{Dataset, Interaction, SplitName};
use crate::prompt::Task;
use crate::rating::{AnswerScores, RatingDecoder};
use crate::registry::build;
use crate::run::RunDir;
use crate::serving::{Candidate, FieldError, Job, Limits, Query, Subject};
use crate::traits::{RatingBaseline, RatingModel, RetrievalModel, Retriever};
use crate::{CoreError, Result};

use super::eval::Weights;

/// What proposes the candidates: a retriever (slot `retriever`, implicit feedback) or a rating
/// baseline (slot `rating-baseline`, by predicted rating).
enum Source {
    Implicit(Box<dyn RetrievalModel>),
    Rating(Box<dyn RatingModel>),
}

/// A fitted candidate source and the items each user has seen; [`Candidates::top`] never
/// proposes a seen item.
pub struct Candidates {
    source: Source,
    seen: Vec<HashSet<u32>>,
    n_items: u32,
    /// The retriever's name.
    pub name: String,
    /// Seconds the fit took.
    pub fit_seconds: f64,
}

impl Candidates {
    /// Fits `[rank] retriever` on the fit set of `split`: a retriever with `[rank.params]`, or
    /// a rating baseline with the params of the matching `[[baselines]]` entry, if any.
    pub fn fit(
        config: &RunConfig,
        rank: &RankConfig,
        ds: &Dataset,
        split: SplitName,
    ) -> Result<Self> {
        Self::fit_named(config, &rank.retriever, &rank.params, ds, split)
    }

    /// Fits the retriever or rating baseline `name` (see [`Candidates::fit`]); `params` are a
    /// retriever's.
    pub fn fit_named(
        config: &RunConfig,
        name: &str,
        params: &crate::config::Params,
        ds: &Dataset,
        split: SplitName,
    ) -> Result<Self> {
        let fit = ds.fit_set(split);
        let t = Instant::now();
        let implicit = crate::registry::names::<dyn Retriever>()?;
        let source = if implicit.iter().any(|n| n == name) {
            let r = build::<dyn Retriever>(name, params)?;
            Source::Implicit(r.fit(ds, &fit, config.seed)?)
        } else if crate::registry::names::<dyn RatingBaseline>()?
            .iter()
            .any(|n| n == name)
        {
            let params = config
                .baselines
                .iter()
                .find(|b| b.kind == name)
                .map(|b| b.params.clone())
                .unwrap_or_default();
            let b = build::<dyn RatingBaseline>(name, &params)?;
            Source::Rating(b.fit(ds, &fit, config.seed)?)
        } else {
            return Err(CoreError::config(
                "rank.retriever",
                format!("unknown retriever `{name}` (see `siren plugins`)"),
            ));
        };
        let mut seen = vec![HashSet::new(); ds.users.len()];
        for x in fit.iter().chain(&ds.train) {
            seen[x.user as usize].insert(x.item);
        }
        let fit_seconds = t.elapsed().as_secs_f64();
        tracing::info!(
            "retriever `{name}` fitted on {} interactions in {fit_seconds:.1}s",
            fit.len(),
        );
        Ok(Self {
            source,
            seen,
            n_items: ds.items.len() as u32,
            name: name.to_string(),
            fit_seconds,
        })
    }

    /// The retriever's score of every item for `user` (seen items included).
    pub fn scores(&self, user: u32) -> Vec<f32> {
        match &self.source {
            Source::Implicit(m) => {
                let mut s = vec![0f32; self.n_items as usize];
                m.scores(user, &mut s);
                s
            }
            Source::Rating(m) => (0..self.n_items).map(|i| m.score(user, i)).collect(),
        }
    }

    /// The `n` items the user has not seen with the highest scores, best first (ties by item
    /// index), with their scores.
    pub fn top(&self, user: u32, n: usize) -> Vec<(u32, f32)> {
        let seen = &self.seen[user as usize];
        let scores = self.scores(user);
        let mut all: Vec<(u32, f32)> = (0..self.n_items)
            .filter(|i| !seen.contains(i))
            .map(|i| {
                let s = scores[i as usize];
                (i, if s.is_nan() { f32::NEG_INFINITY } else { s })
            })
            .collect();
        let by = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if all.len() > n {
            all.select_nth_unstable_by(n, by);
            all.truncate(n);
        }
        all.sort_by(by);
        all
    }
}

/// The retriever a rank request without `candidates` asks for: its `retriever` field, else
/// `default`; `None` when the request brings its candidates.
pub fn wanted_retriever(v: &serde_json::Value, default: &str) -> Option<String> {
    if v.get("candidates").is_some() {
        return None;
    }
    Some(
        v.get("retriever")
            .and_then(|r| r.as_str())
            .unwrap_or(default)
            .to_string(),
    )
}

/// Gives a rank request without `candidates` the top `n` unseen items of a retriever (its
/// `retriever` field, a name among `loaded`, else `default`) for its known `user`, and removes
/// the `retriever` field. Errors name the field.
pub fn fill_candidates(
    ds: &Dataset,
    v: &mut serde_json::Value,
    n: usize,
    default: &str,
    loaded: &[Candidates],
) -> std::result::Result<(), FieldError> {
    let Some(m) = v.as_object_mut() else {
        return Ok(()); // rank_request names the body's type
    };
    let named = match m.remove("retriever") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(_) => return Err(FieldError::new("retriever", "expected a retriever's name")),
    };
    if m.contains_key("candidates") {
        return match named {
            Some(_) => Err(FieldError::new(
                "retriever",
                "given with `candidates`: send one or the other",
            )),
            None => Ok(()),
        };
    }
    let u = match m.get("user") {
        Some(u) => crate::serving::request::known_user(ds, u)?,
        None => {
            return Err(FieldError::new(
                "candidates",
                "missing (a retriever proposes candidates for known users only: give `user`, \
                 or give `candidates`)",
            ));
        }
    };
    let name = named.as_deref().unwrap_or(default);
    let Some(c) = loaded.iter().find(|c| c.name == name) else {
        let names: Vec<&str> = loaded.iter().map(|c| c.name.as_str()).collect();
        return Err(FieldError::new(
            "retriever",
            if names.is_empty() {
                format!("`{name}`: no retriever is loaded here; give `candidates`")
            } else {
                format!("`{name}` is not loaded here; loaded: {}", names.join(", "))
            },
        ));
    };
    m.insert(
        "candidates".into(),
        c.top(u, n)
            .iter()
            .map(|&(it, _)| serde_json::Value::String(ds.items[it as usize].id.clone()))
            .collect(),
    );
    Ok(())
}

/// Whether ranking needs the relevance answers: to order by them (`[rank] by`), or for a
/// blend that reads them.
pub fn asks_relevance(by: Task, blend: Option<&Blend>) -> bool {
    by == Task::Relevance || blend.is_some_and(Blend::needs_relevance)
}

/// The order of one request's candidates, best first, with their blended scores when there
/// is a blend: by the blend (`retriever`: the retriever's scores of the candidates, when the
/// blend reads them), else by the expected relevance answer when there are relevance answers,
/// else by the expected rating.
pub fn order_candidates(
    blend: Option<&Blend>,
    retriever: &[f64],
    (ratings, relevance): (&[AnswerScores], Option<&[AnswerScores]>),
    values: &[f32],
) -> Result<(Vec<usize>, Option<Vec<f64>>)> {
    match blend {
        Some(b) => {
            let columns = blend_columns(&b.features, retriever, (ratings, relevance), values)?;
            let scores = b.scores(&columns)?;
            Ok((crate::blend::order_by(&scores), Some(scores)))
        }
        None => Ok((by_expected(relevance.unwrap_or(ratings), values), None)),
    }
}

/// Orders `n` candidates by expected rating, best first (ties keep their given order).
pub fn by_expected(scores: &[AnswerScores], values: &[f32]) -> Vec<usize> {
    let e: Vec<f32> = scores
        .iter()
        .map(|s| RatingDecoder::Expected.decode(&s.probs, values))
        .collect();
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| e[b].total_cmp(&e[a]).then(a.cmp(&b)));
    idx
}

/// One scored candidate as JSON: `item`, `expected`, `median`, `argmax` and `probs`.
pub fn scored_json(item: serde_json::Value, s: &AnswerScores, values: &[f32]) -> serde_json::Value {
    let dec = |d: RatingDecoder| d.decode(&s.probs, values);
    serde_json::json!({
        "item": item,
        "expected": dec(RatingDecoder::Expected),
        "median": dec(RatingDecoder::Median),
        "argmax": dec(RatingDecoder::Argmax),
        "probs": s.probs,
    })
}

/// Ranks the requests of `input` into `output`; returns the number of requests.
pub fn rank_file(
    config: &RunConfig,
    ds: &Dataset,
    run: &RunDir,
    weights: &Weights,
    input: &Path,
    output: &Path,
) -> Result<usize> {
    let rank = config.rank.clone().unwrap_or_default();
    rank.validate()?;
    let text = std::fs::read_to_string(input).map_err(|e| CoreError::io(input, e))?;
    let limits = Limits {
        max_candidates: usize::MAX,
        max_history: usize::MAX,
    };
    // The lines, then the retrievers the lines without candidates name, each fitted once.
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = |m: String| CoreError::Data(format!("{}:{}: {m}", input.display(), i + 1));
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| at(format!("not JSON: {e}")))?;
        lines.push((i, v));
    }
    let blend = fitted_blend(config, run)?;
    let mut fitted: Vec<Candidates> = Vec::new();
    if blend.as_ref().is_some_and(Blend::needs_retriever) {
        // The blend reads the configured retriever's scores of every request's candidates.
        fitted.push(Candidates::fit(config, &rank, ds, config.eval.split)?);
    }
    for (_, v) in &lines {
        if let Some(name) = wanted_retriever(v, &rank.retriever)
            && !fitted.iter().any(|c| c.name == name)
        {
            fitted.push(Candidates::fit_named(
                config,
                &name,
                &rank.params_for(&name),
                ds,
                config.eval.split,
            )?);
        }
    }
    let mut requests = Vec::new();
    for (i, mut v) in lines {
        let at = |m: String| CoreError::Data(format!("{}:{}: {m}", input.display(), i + 1));
        fill_candidates(ds, &mut v, rank.candidates, &rank.retriever, &fitted)
            .map_err(|e| at(e.to_string()))?;
        let r =
            crate::serving::request::rank_request(ds, &v, limits).map_err(|e| at(e.to_string()))?;
        requests.push((i, v, r));
    }
    if requests.is_empty() {
        return Err(CoreError::Data(format!("{}: no requests", input.display())));
    }
    let (prompter, mut scorer, method) = crate::serving::load(
        config,
        ds.clone(),
        run,
        weights,
        super::predict::full_timelines(ds),
        (config.eval.batch_size, 0),
    )?;
    tracing::info!("ranking {} requests with `{method}`", requests.len());
    let bar = crate::progress::bar(requests.len() as u64, "rank");
    // Each request's line is computed by one rank of a data-parallel run (all of them alone);
    // every rank then holds every line.
    let mut lines: Vec<Option<String>> = vec![None; requests.len()];
    for (k, (line, v, r)) in requests.iter().enumerate() {
        if !crate::dist::owns(k) {
            continue;
        }
        let t = Instant::now();
        let q = prompter.prompts(&r.query)?;
        let (scores, _) = scorer.score(&[Job::from(&q)])?;
        // With `by = "relevance"` the order (and each item's `relevance`) comes from the
        // relevance question's answers, uncalibrated; the rating fields stay the ratings.
        let relevance = if asks_relevance(rank.by, blend.as_ref()) {
            let q = prompter.prompts_for(&r.query, Task::Relevance)?;
            scorer.score(&[Job::uncalibrated(&q)])?.0.into_iter().next()
        } else {
            None
        };
        let at = |m: String| CoreError::Data(format!("{}:{}: {m}", input.display(), line + 1));
        let own = match fitted.iter().find(|c| c.name == rank.retriever) {
            Some(c) if blend.as_ref().is_some_and(Blend::needs_retriever) => {
                retriever_scores(c, &r.query).map_err(|e| at(e.to_string()))?
            }
            _ => Vec::new(),
        };
        let (order, blended) = order_candidates(
            blend.as_ref(),
            &own,
            (&scores[0], relevance.as_deref()),
            scorer.values(),
        )?;
        let ranked: Vec<serde_json::Value> = order[..r.k]
            .iter()
            .map(|&c| {
                let mut j = scored_json(v["candidates"][c].clone(), &scores[0][c], scorer.values());
                if let Some(rel) = &relevance {
                    j["relevance"] = RatingDecoder::Expected
                        .decode(&rel[c].probs, scorer.values())
                        .into();
                }
                if let Some(s) = &blended {
                    j["blend"] = s[c].into();
                }
                if let Some(o) = own.get(c) {
                    j["retriever"] = (*o).into();
                }
                j
            })
            .collect();
        let mut row = serde_json::json!({
            "ranked": ranked,
            "by": if blend.is_some() { "blend" } else { rank.by.as_str() },
            "latency_ms": t.elapsed().as_secs_f64() * 1e3,
            "calibration": scorer.calibration_label(),
        });
        if let Some(u) = v.get("user") {
            row["user"] = u.clone();
        }
        lines[k] = Some(row.to_string());
        bar.inc(1);
    }
    bar.finish_and_clear();
    crate::dist::share_json(&mut lines)?;
    if crate::dist::is_leader() {
        let out: String = lines.into_iter().flatten().map(|l| l + "\n").collect();
        crate::files::write_atomic(output, out.as_bytes())?;
    }
    Ok(requests.len())
}

/// Bootstrap resamples of the users for the intervals.
const BOOTSTRAP: usize = 1000;

/// Where the held-out item sits in one order, per user: 0-based, `None` when it is not in the
/// list (a miss counts 0 in every metric).
type Ranks = Vec<Option<usize>>;

/// A user's Recall@k and nDCG@k (one relevant item) at 0-based `rank`.
fn gains(rank: Option<usize>, k: usize) -> (f64, f64) {
    match rank {
        Some(r) if r < k => (1.0, 1.0 / ((r + 2) as f64).log2()),
        _ => (0.0, 0.0),
    }
}

/// Mean Recall@K and nDCG@K over users, each with a 95% bootstrap interval over `resamples`
/// (the same resamples for every order): `{"recall@K": mean, "ndcg@K": mean, "ci": {"recall@K":
/// [lo, hi], ...}}`.
fn metrics(
    ranks: &[Option<usize>],
    cutoffs: &[usize],
    resamples: &[Vec<u32>],
) -> serde_json::Value {
    per_user(cutoffs, resamples, |k| {
        ranks.iter().map(|&r| gains(r, k)).collect()
    })
}

/// Means of per-user (Recall@K, nDCG@K) pairs (`of(K)`, one pair per user) at every cut-off,
/// each with a 95% bootstrap interval over `resamples`: `{"recall@K": mean, "ndcg@K": mean,
/// "ci": {"recall@K": [lo, hi], ...}}`.
fn per_user(
    cutoffs: &[usize],
    resamples: &[Vec<u32>],
    of: impl Fn(usize) -> Vec<(f64, f64)>,
) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    let mut ci = serde_json::Map::new();
    for &k in cutoffs {
        let g = of(k);
        let n = g.len().max(1) as f64;
        let (rec, ndcg) = g.iter().fold((0.0, 0.0), |a, x| (a.0 + x.0, a.1 + x.1));
        m.insert(format!("recall@{k}"), (rec / n).into());
        m.insert(format!("ndcg@{k}"), (ndcg / n).into());
        let (mut rs, mut ns): (Vec<f64>, Vec<f64>) = resamples
            .iter()
            .map(|idx| {
                let (r, d) = idx.iter().fold((0.0, 0.0), |a, &i| {
                    let x = g[i as usize];
                    (a.0 + x.0, a.1 + x.1)
                });
                (r / n, d / n)
            })
            .unzip();
        ci.insert(format!("recall@{k}"), interval(&mut rs).into());
        ci.insert(format!("ndcg@{k}"), interval(&mut ns).into());
    }
    m.insert("ci".into(), ci.into());
    m.into()
}

/// The 2.5% and 97.5% quantiles (`[0, 0]` without resamples).
fn interval(v: &mut [f64]) -> Vec<f64> {
    if v.is_empty() {
        return vec![0.0, 0.0];
    }
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((p * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)];
    vec![q(0.025), q(0.975)]
}

/// `BOOTSTRAP` seeded resamples of `n` users.
fn resamples(n: usize, seed: u64) -> Vec<Vec<u32>> {
    use rand::Rng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0xb007_57a9);
    if n == 0 {
        return Vec::new();
    }
    (0..BOOTSTRAP)
        .map(|_| (0..n).map(|_| rng.random_range(0..n as u32)).collect())
        .collect()
}

/// Candidates ordered by the model's probability of the top rating, best first (ties keep
/// their given order).
pub fn by_top_rating(scores: &[AnswerScores]) -> Vec<usize> {
    let p: Vec<f32> = scores
        .iter()
        .map(|s| s.probs.last().copied().unwrap_or(0.0))
        .collect();
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
    idx
}

/// Where `want` sits in `order` (0-based), if anywhere.
fn place(order: &[usize], want: Option<usize>) -> Option<usize> {
    want.and_then(|w| order.iter().position(|&i| i == w))
}

/// The secondary view of one user: the held-out item in the list (in place of the last
/// retrieved item when the retriever missed it, `items` then ending with it); where it sits in
/// each order of [`ORDERS`]. `scores` are the model's for `items`, `all` the retriever's for
/// every item.
fn inserted_view(
    (scores, relevance): (&[AnswerScores], Option<&[AnswerScores]>),
    values: &[f32],
    (items, held_out, hit): (&[u32], u32, Option<usize>),
    all: &[f32],
    rng: &mut rand::rngs::StdRng,
) -> Result<Vec<Option<usize>>> {
    let m = items.len() - usize::from(hit.is_none());
    let view: Vec<usize> = match hit {
        Some(_) => (0..m).collect(),
        None => (0..m.saturating_sub(1)).chain([m]).collect(),
    };
    let pos = view
        .iter()
        .position(|&i| items[i] == held_out)
        .ok_or_else(|| CoreError::Data("the held-out item left its list".into()))?;
    let sub: Vec<AnswerScores> = view.iter().map(|&i| scores[i].clone()).collect();
    let rel: Option<Vec<AnswerScores>> =
        relevance.map(|r| view.iter().map(|&i| r[i].clone()).collect());
    let mut by_retriever: Vec<usize> = (0..view.len()).collect();
    let score_of = |i: usize| all[items[view[i]] as usize];
    by_retriever.sort_by(|&a, &b| score_of(b).total_cmp(&score_of(a)).then(a.cmp(&b)));
    let mut shuffled: Vec<usize> = (0..view.len()).collect();
    shuffled.shuffle(rng);
    let mut out = vec![
        place(&by_expected(&sub, values), Some(pos)),
        place(&by_top_rating(&sub), Some(pos)),
        place(&by_retriever, Some(pos)),
        place(&shuffled, Some(pos)),
    ];
    if let Some(rel) = rel {
        out.push(place(&by_expected(&rel, values), Some(pos)));
    }
    Ok(out)
}

/// The retriever (with the held-out item's place in each user's list, `own`) and each other
/// one of `[rank] compare`, each on its own top list: the metrics with hit rate and fit time,
/// by name.
fn compare_retrievers(
    (config, rank, split): (&RunConfig, &RankConfig, SplitName),
    ds: &Dataset,
    targets: &[Interaction],
    (retriever, own): (&Candidates, &[Option<usize>]),
    boot: &[Vec<u32>],
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let compared: Vec<Candidates> = rank
        .compare
        .iter()
        .filter(|name| **name != rank.retriever)
        .map(|name| Candidates::fit_named(config, name, &rank.params_for(name), ds, split))
        .collect::<Result<_>>()?;
    let mut out = serde_json::Map::new();
    let lists = compared.iter().map(|c| {
        let ranks: Ranks = targets
            .iter()
            .map(|x| {
                c.top(x.user, rank.candidates)
                    .iter()
                    .position(|t| t.0 == x.item)
            })
            .collect();
        (c, ranks)
    });
    for (c, ranks) in std::iter::once((retriever, own.to_vec())).chain(lists) {
        let mut m = metrics(&ranks, &rank.cutoffs, boot);
        m["hit_rate"] = hit_rate(&ranks).into();
        m["fit_seconds"] = c.fit_seconds.into();
        out.insert(c.name.clone(), m);
    }
    Ok(out)
}

/// The orders of the reranking tables, by key: (key, what it is). `model-relevance` is there
/// when `[rank] by = "relevance"`.
const ORDERS: [(&str, &str); 6] = [
    ("model", "by expected rating"),
    ("model-p5", "by P(top rating)"),
    ("retriever", "retriever order"),
    ("random", "random order"),
    ("model-relevance", "by expected relevance answer"),
    ("model-blend", "blended with the retriever's score"),
];

/// The model orders compared, pair by pair, with the retriever's and the random order.
const PAIRED: [(&str, usize); 4] = [
    ("model", 0),
    ("model-p5", 1),
    ("model-relevance", 4),
    ("model-blend", 5),
];

/// The reranking evaluation (see the module docs); returns the report as JSON.
pub fn evaluate(
    config: &RunConfig,
    ds: &Dataset,
    run: &RunDir,
    weights: &Weights,
) -> Result<serde_json::Value> {
    let rank = config.rank.clone().unwrap_or_default();
    rank.validate()?;
    let blend = match (&rank.blend, rank.rerank) {
        (Some(b), true) if b.file.is_some() => fitted_blend(config, run)?,
        (Some(b), true) => Some(fit_blend(config, &rank, b, ds, (run, weights))?),
        _ => None,
    };
    let (ds, split) = evaluated(config, &rank, ds)?;
    let ds = ds.as_ref();
    let targets: Vec<Interaction> = super::sample_rows(ds.split(split), rank.sample, config.seed);
    let retriever = Candidates::fit(config, &rank, ds, split)?;
    let n = rank.candidates;
    let boot = resamples(targets.len(), config.seed);
    // Each user's list, once: the retriever's table and every order below use it.
    let (tops, hits) = retrieve(&retriever, &targets, n);
    let retrievers = compare_retrievers(
        (config, &rank, split),
        ds,
        &targets,
        (&retriever, &hits),
        &boot,
    )?;
    let mut model = if rank.rerank {
        Some(crate::serving::load(
            config,
            ds.clone(),
            run,
            weights,
            crate::prompt::timelines(ds, split == SplitName::Test),
            (config.eval.batch_size, 0),
        )?)
    } else {
        None
    };
    let method = model.as_ref().map(|m| m.2.clone());
    let by_relevance = asks_relevance(rank.by, blend.as_ref());
    let mut tally = Tally::new();
    // The random order and the inserted view draw from their own streams, so scoring only the
    // lists with a hit (`score_misses = false`) leaves the random order as it is.
    let mut rng = rand::rngs::StdRng::seed_from_u64(config.seed);
    let mut view_rng = rand::rngs::StdRng::seed_from_u64(config.seed ^ 0x1a5e_47ed);
    let mut rows = String::new();
    log_start(
        &rank,
        (targets.len(), split),
        &retriever.name,
        method.as_deref(),
        &hits,
    );
    let answers = model_answers(
        model.as_mut().map(|(p, s, _)| (p, s)),
        (&targets, &tops, &hits),
        (rank.score_misses, by_relevance),
        ds,
    )?;
    for ((x, top), (&hit, answer)) in targets.iter().zip(&tops).zip(hits.iter().zip(answers)) {
        let list: Vec<u32> = top.iter().map(|t| t.0).collect();
        let mut shuffled: Vec<usize> = (0..list.len()).collect();
        shuffled.shuffle(&mut rng);
        tally.retrieved[2].push(hit);
        tally.retrieved[3].push(place(&shuffled, hit));
        let mut row = serde_json::json!({
            "user": ds.users[x.user as usize],
            "held_out": ds.items[x.item as usize].id,
            "retrieved_rank": hit.map(|h| h + 1),
            "retriever_scores": top.iter().map(|t| t.1).collect::<Vec<f32>>(),
        });
        let skip = model.is_some() && !rank.score_misses && hit.is_none();
        if skip {
            tally.missed(by_relevance, blend.is_some());
        }
        if let (Some((_, scorer, _)), Some((scored, fields))) = (model.as_ref(), answer) {
            for (k, v) in fields.as_object().into_iter().flatten() {
                row[k] = v.clone();
            }
            tally.scored(&scored, (top, hit), blend.as_ref(), scorer.values())?;
            if rank.score_misses {
                let view = inserted_view(
                    (&scored.scores, scored.relevance_scores.as_deref()),
                    scorer.values(),
                    (&scored.items, x.item, hit),
                    &retriever.scores(x.user),
                    &mut view_rng,
                )?;
                for (ranks, place) in tally.inserted.iter_mut().zip(view) {
                    ranks.push(place);
                }
            }
        } else {
            row["candidates"] = list
                .iter()
                .map(|&i| ds.items[i as usize].id.clone())
                .collect();
        }
        let _ = writeln!(rows, "{row}");
    }
    let view_json = |t: &[Ranks]| -> serde_json::Value {
        ORDERS
            .iter()
            .zip(t)
            .filter(|(_, r)| !r.is_empty())
            .map(|((k, _), r)| ((*k).to_string(), metrics(r, &rank.cutoffs, &boot)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let mut report = serde_json::json!({
        "dataset": ds.name,
        "split": match rank.cut {
            Some(k) => format!("history cut {k}"),
            None => split.as_str().to_string(),
        },
        "users": targets.len(),
        "sample": rank.sample,
        "seed": config.seed,
        "retriever": retriever.name,
        "candidates": n,
        "cutoffs": rank.cutoffs,
        "method": method,
        "hit_rate": hit_rate(&tally.retrieved[2]),
        "retrieved": view_json(&tally.retrieved),
        "retrievers": retrievers,
    });
    if let Some((_, scorer, _)) = &model {
        tally.model_fields(&mut report, (&rank, &boot), by_relevance);
        report["calibration"] = scorer.calibration_label().into();
        if rank.score_misses {
            report["held_out_inserted"] = view_json(&tally.inserted);
        }
        if let Some(b) = &blend {
            report["blend"] = b.to_json();
        }
    }
    write_evaluation(run, &report, &rows, &rank.cutoffs)?;
    Ok(report)
}

/// Each target user's top `n` unseen items from `retriever` (with its scores), and where the
/// held-out item sits in each list.
fn retrieve(
    retriever: &Candidates,
    targets: &[Interaction],
    n: usize,
) -> (Vec<Vec<(u32, f32)>>, Ranks) {
    let tops: Vec<Vec<(u32, f32)>> = targets.iter().map(|x| retriever.top(x.user, n)).collect();
    let hits: Ranks = targets
        .iter()
        .zip(&tops)
        .map(|(x, top)| top.iter().position(|t| t.0 == x.item))
        .collect();
    (tops, hits)
}

/// Fits `[rank.blend]`'s weights ([`crate::blend`]) on the lists of its history cuts that
/// hold the held-out item (the retriever refitted on what came before each cut, the model
/// scoring each list as the evaluation does), and writes them to `blend.json`.
fn fit_blend(
    config: &RunConfig,
    rank: &RankConfig,
    b: &BlendConfig,
    ds: &Dataset,
    (run, weights): (&RunDir, &Weights),
) -> Result<Blend> {
    let trained = config.relevance.as_ref().map_or(0, |r| r.cuts);
    b.validate(trained)?;
    if let Some(cut) = rank.cut.filter(|c| b.fit_cuts(trained).contains(c)) {
        return Err(CoreError::config(
            "rank.cut",
            format!(
                "cut {cut} is one the blend is fitted on (rank.blend.cuts): evaluate at another"
            ),
        ));
    }
    let needs_relevance = b.features.iter().any(|f| f == "relevance");
    let (mut lists, mut per_cut) = (Vec::new(), Vec::new());
    for cut in b.fit_cuts(trained) {
        let earlier = history_cut(ds, cut)?;
        let retriever = Candidates::fit(config, rank, &earlier, SplitName::Valid)?;
        let targets = earlier.valid.clone();
        let (tops, hits) = retrieve(&retriever, &targets, rank.candidates);
        let (mut prompter, mut scorer, _) = crate::serving::load(
            config,
            earlier.clone(),
            run,
            weights,
            crate::prompt::timelines(&earlier, false),
            (config.eval.batch_size, 0),
        )?;
        let answers = model_answers(
            Some((&mut prompter, &mut scorer)),
            (&targets, &tops, &hits),
            (false, needs_relevance),
            &earlier,
        )?;
        let before = lists.len();
        for ((top, hit), answer) in tops.iter().zip(&hits).zip(answers) {
            if let (Some(h), Some((scored, _))) = (hit, answer) {
                let columns = list_columns(&b.features, top, &scored, scorer.values())?;
                lists.push(crate::blend::List::new(&columns, *h)?);
            }
        }
        per_cut.push((cut, targets.len(), lists.len() - before));
    }
    let blend = crate::blend::fit(&b.features, &lists, b.l2)?;
    tracing::info!(
        "blend weights {} on {} lists (history cuts, users, lists: {per_cut:?}); mean \
         log-likelihood {:.4} (uniform {:.4})",
        b.features
            .iter()
            .zip(&blend.weights)
            .map(|(f, w)| format!("{f} {w:.4}"))
            .collect::<Vec<_>>()
            .join(", "),
        blend.lists,
        blend.log_likelihood,
        -(rank.candidates as f64).ln()
    );
    let mut j = blend.to_json();
    j["cuts"] = per_cut
        .iter()
        .map(|&(cut, users, lists)| serde_json::json!({"cut": cut, "users": users, "lists": lists}))
        .collect();
    run.write_json("blend.json", &j)?;
    Ok(blend)
}

/// The raw feature columns of `features` for one list: the retriever's scores, and the
/// model's rating and relevance answers (relevance only when a feature needs it), one per
/// candidate.
fn blend_columns(
    features: &[String],
    retriever: &[f64],
    (ratings, relevance): (&[AnswerScores], Option<&[AnswerScores]>),
    values: &[f32],
) -> Result<Vec<Vec<f64>>> {
    let expected = |a: &[AnswerScores]| -> Vec<f64> {
        a.iter()
            .map(|x| f64::from(RatingDecoder::Expected.decode(&x.probs, values)))
            .collect()
    };
    features
        .iter()
        .map(|f| match f.as_str() {
            "retriever" => Ok(retriever.to_vec()),
            "rating" => Ok(expected(ratings)),
            "relevance" => relevance.map(expected).ok_or_else(|| {
                CoreError::Data("the blend's `relevance` feature needs relevance answers".into())
            }),
            other => Err(CoreError::config(
                "rank.blend.features",
                format!("unknown feature `{other}`"),
            )),
        })
        .collect()
}

/// [`blend_columns`] of a user's scored retrieved list (`top`: the list with the retriever's
/// scores; the model's answers may run past it, for the held-out item).
fn list_columns(
    features: &[String],
    top: &[(u32, f32)],
    s: &Scored,
    values: &[f32],
) -> Result<Vec<Vec<f64>>> {
    let m = top.len();
    let retriever: Vec<f64> = top.iter().map(|t| f64::from(t.1)).collect();
    let relevance = s.relevance_scores.as_deref().map(|r| &r[..m]);
    blend_columns(features, &retriever, (&s.scores[..m], relevance), values)
}

/// The blend weights `siren rank --evaluate` fitted for this run (`blend.json` in its folder),
/// for a config with `[rank.blend]`; `None` without it.
pub fn fitted_blend(config: &RunConfig, run: &RunDir) -> Result<Option<Blend>> {
    let Some(b) = config.rank.as_ref().and_then(|r| r.blend.as_ref()) else {
        return Ok(None);
    };
    let path = b.file.clone().unwrap_or_else(|| run.file("blend.json"));
    if !path.exists() {
        return Err(CoreError::config(
            "rank.blend",
            format!(
                "{} does not exist: `siren rank CONFIG --evaluate` fits the blend's weights \
                 and writes the run's blend.json (or give a fitted one as [rank.blend] file)",
                path.display()
            ),
        ));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| CoreError::io(&path, e))?;
    let blend: Blend = serde_json::from_str(&text)
        .map_err(|e| CoreError::Data(format!("{}: not a blend: {e}", path.display())))?;
    if blend.features != b.features || blend.weights.len() != b.features.len() {
        return Err(CoreError::Data(format!(
            "{}: fitted for the features {:?}, but [rank.blend] features = {:?}: run `siren \
             rank --evaluate` again",
            path.display(),
            blend.features,
            b.features
        )));
    }
    Ok(Some(blend))
}

/// The retriever's scores of a known user's known candidates, for the blend; errors name the
/// field without one.
pub fn retriever_scores(
    retriever: &Candidates,
    query: &Query,
) -> std::result::Result<Vec<f64>, FieldError> {
    let Subject::Known(user) = &query.subject else {
        return Err(FieldError::new(
            "user",
            "the blended order needs the retriever's score: give a known `user`, not a history",
        ));
    };
    let all = retriever.scores(*user);
    query
        .candidates
        .iter()
        .enumerate()
        .map(|(c, cand)| match cand {
            Candidate::Known(i) => Ok(f64::from(all[*i as usize])),
            Candidate::New(_) => Err(FieldError::new(
                format!("candidates[{c}]"),
                "a new item has no retriever score, which the blended order needs",
            )),
        })
        .collect()
}

/// The dataset and split the evaluation reads: `ds` and `[eval] split`, or with `[rank] cut`
/// the earlier point in time it names (its held-out interactions as the valid split; the
/// evaluated split unread).
fn evaluated<'a>(
    config: &RunConfig,
    rank: &RankConfig,
    ds: &'a Dataset,
) -> Result<(std::borrow::Cow<'a, Dataset>, SplitName)> {
    match rank.cut {
        Some(cut) => Ok((
            std::borrow::Cow::Owned(history_cut(ds, cut)?),
            SplitName::Valid,
        )),
        None => Ok((std::borrow::Cow::Borrowed(ds), config.eval.split)),
    }
}

/// `ds` at history cut `cut` ([`super::relevance::held_out`]): each user's `cut`-th last history
/// interaction as the valid split. Errors when no user has one.
fn history_cut(ds: &Dataset, cut: usize) -> Result<Dataset> {
    let earlier = super::relevance::held_out(ds, cut);
    if earlier.valid.is_empty() {
        return Err(CoreError::config(
            "rank.cut",
            format!(
                "no user of `{}` has more than {cut} history interactions to hold one out",
                ds.name
            ),
        ));
    }
    let which = match cut {
        1 => "last".to_string(),
        2 => "2nd-last".to_string(),
        3 => "3rd-last".to_string(),
        k => format!("{k}th-last"),
    };
    tracing::info!(
        "evaluating at history cut {cut}: {} users' {which} history interaction held out, the \
         retriever fitted on what came before ([eval] split not read)",
        earlier.valid.len()
    );
    Ok(earlier)
}

/// What the evaluation gathers over the users: where the held-out item sits in each order of
/// [`ORDERS`] (on the retrieved lists, and in the inserted view) and the model's time.
struct Tally {
    retrieved: Vec<Ranks>,
    inserted: Vec<Ranks>,
    latency: f64,
    relevance_latency: f64,
    queries: usize,
    prompts: usize,
}

impl Tally {
    fn new() -> Self {
        Self {
            retrieved: vec![Vec::new(); ORDERS.len()],
            inserted: vec![Vec::new(); ORDERS.len()],
            latency: 0.0,
            relevance_latency: 0.0,
            queries: 0,
            prompts: 0,
        }
    }

    /// Adds a list the model scored (`top`: the retriever's list; `hit`: where the held-out
    /// item is in it): the model's orders and time.
    fn scored(
        &mut self,
        scored: &Scored,
        (top, hit): (&[(u32, f32)], Option<usize>),
        blend: Option<&Blend>,
        values: &[f32],
    ) -> Result<()> {
        self.latency += scored.seconds;
        self.relevance_latency += scored.relevance_seconds;
        self.queries += 1;
        self.prompts += scored.prompts;
        self.retrieved[0].push(scored.expected);
        self.retrieved[1].push(scored.top);
        if let Some([p]) = scored.relevance {
            self.retrieved[4].push(p);
        }
        if let Some(b) = blend {
            let columns = list_columns(&b.features, top, scored, values)?;
            self.retrieved[5].push(place(&b.order(&columns)?, hit));
        }
        Ok(())
    }

    /// Adds a list the model skipped for missing the held-out item: 0 under every order of
    /// the model (by expected rating, by P(5), by relevance, blended).
    fn missed(&mut self, by_relevance: bool, blend: bool) {
        let orders = [0, 1]
            .into_iter()
            .chain(by_relevance.then_some(4))
            .chain(blend.then_some(5));
        for i in orders {
            self.retrieved[i].push(None);
        }
    }

    /// The report's fields of the model: paired differences, queries, latency.
    fn model_fields(
        &self,
        report: &mut serde_json::Value,
        (rank, boot): (&RankConfig, &[Vec<u32>]),
        by_relevance: bool,
    ) {
        let per = |s: f64| 1e3 * s / self.queries.max(1) as f64;
        report["paired"] = paired(&self.retrieved, &rank.cutoffs, boot);
        report["scored_queries"] = self.queries.into();
        report["latency_ms_per_query"] = per(self.latency).into();
        if by_relevance {
            report["relevance_ms_per_query"] = per(self.relevance_latency).into();
        }
        report["prompts_per_query"] = (self.prompts as f64 / self.queries.max(1) as f64).into();
    }
}

/// The model's scores of each user's list (none for a list it skips: without a model, or a
/// miss when `score_misses` is off), with the fields they add to the user's row. In a
/// data-parallel run each rank scores its share of the lists (a user's whole list on one rank)
/// and every rank then holds them all.
#[allow(clippy::type_complexity)]
fn model_answers(
    mut model: Option<(&mut crate::serving::Prompter, &mut crate::serving::Scorer)>,
    (targets, tops, hits): (&[Interaction], &[Vec<(u32, f32)>], &[Option<usize>]),
    (score_misses, by_relevance): (bool, bool),
    ds: &Dataset,
) -> Result<Vec<Option<(Scored, serde_json::Value)>>> {
    let bar = crate::progress::bar(targets.len() as u64, "rerank");
    let mut answers: Vec<Option<Option<(Scored, serde_json::Value)>>> = Vec::new();
    for (q, ((x, top), &hit)) in targets.iter().zip(tops).zip(hits).enumerate() {
        if !crate::dist::owns(q) {
            answers.push(None);
            continue;
        }
        let skip = !score_misses && hit.is_none();
        let Some((prompter, scorer)) = model.as_mut().filter(|_| !skip) else {
            answers.push(Some(None));
            continue;
        };
        let list: Vec<u32> = top.iter().map(|t| t.0).collect();
        let mut fields = serde_json::json!({});
        let scored = score_list(
            prompter,
            scorer,
            (x, &list, hit),
            by_relevance,
            ds,
            &mut fields,
        )?;
        answers.push(Some(Some((scored, fields))));
        bar.inc(1);
    }
    bar.finish_and_clear();
    crate::dist::share_json(&mut answers)?;
    Ok(answers.into_iter().flatten().collect())
}

/// Writes `rank.json`, `rank.jsonl` (`rows`) and `rank.md` and prints the table: on rank 0
/// of a data-parallel run (every rank holds the same report), always alone.
fn write_evaluation(
    run: &RunDir,
    report: &serde_json::Value,
    rows: &str,
    cutoffs: &[usize],
) -> Result<()> {
    if !crate::dist::is_leader() {
        return Ok(());
    }
    let md = markdown(report, cutoffs);
    run.write_json("rank.json", report)?;
    crate::files::write_atomic(&run.file("rank.jsonl"), rows.as_bytes())?;
    crate::files::write_atomic(&run.file("rank.md"), md.as_bytes())?;
    println!("{md}");
    Ok(())
}

/// The log line that starts a reranking evaluation.
fn log_start(
    rank: &RankConfig,
    (users, split): (usize, SplitName),
    retriever: &str,
    method: Option<&str>,
    hits: &Ranks,
) {
    tracing::info!(
        "reranking: {users} users of {}, {} candidates from `{retriever}`, reordered by {}{}",
        split.as_str(),
        rank.candidates,
        method.map_or("no model ([rank] rerank = false)".into(), |m| format!(
            "`{m}`"
        )),
        if rank.score_misses {
            String::new()
        } else {
            format!(
                " (only the {} lists with a hit are scored)",
                hits.iter().filter(|h| h.is_some()).count()
            )
        }
    );
}

/// One user's list scored by the model.
#[derive(serde::Serialize, serde::Deserialize)]
struct Scored {
    /// The scored items: the retrieved list, then the held-out item when it was missed.
    items: Vec<u32>,
    /// The model's rating distributions for `items`.
    scores: Vec<AnswerScores>,
    /// Its relevance answers for `items`, when ranking by relevance.
    relevance_scores: Option<Vec<AnswerScores>>,
    /// Where the held-out item sits by expected rating, by P(top rating), by relevance.
    expected: Option<usize>,
    top: Option<usize>,
    /// (In a one-element array: JSON, which carries it between ranks, would read a
    /// `Some(None)` back as `None`.)
    relevance: Option<[Option<usize>; 1]>,
    /// Seconds for the ratings and for the relevance answers; prompts scored.
    seconds: f64,
    relevance_seconds: f64,
    prompts: usize,
}

/// Scores user `x`'s retrieved `list` (plus the held-out item when `hit` is `None`, for the
/// secondary view) with the model, and fills the model's fields of the user's `row`.
fn score_list(
    prompter: &mut crate::serving::Prompter,
    scorer: &mut crate::serving::Scorer,
    (x, list, hit): (&Interaction, &[u32], Option<usize>),
    by_relevance: bool,
    ds: &Dataset,
    row: &mut serde_json::Value,
) -> Result<Scored> {
    let mut items = list.to_vec();
    if hit.is_none() {
        items.push(x.item);
    }
    let query = Query {
        subject: Subject::Known(x.user),
        candidates: items.iter().map(|&i| Candidate::Known(i)).collect(),
    };
    let t = Instant::now();
    let q = prompter.prompts(&query)?;
    let (scores, _) = scorer.score(&[Job::from(&q)])?;
    let seconds = t.elapsed().as_secs_f64();
    let (mut relevance_seconds, mut prompts) = (0.0, items.len());
    let relevance_scores = if by_relevance {
        let t = Instant::now();
        let q = prompter.prompts_for(&query, Task::Relevance)?;
        let (r, _) = scorer.score(&[Job::uncalibrated(&q)])?;
        relevance_seconds = t.elapsed().as_secs_f64();
        prompts += items.len();
        r.into_iter().next()
    } else {
        None
    };
    let scores = scores.into_iter().next().ok_or_else(|| {
        CoreError::Data("the scorer returned no scores for a ranking query".into())
    })?;
    let values = scorer.values();
    let m = list.len();
    let mut relevance = None;
    if let Some(r) = &relevance_scores {
        relevance = Some([place(&by_expected(&r[..m], values), hit)]);
        row["relevance"] = r
            .iter()
            .map(|s| RatingDecoder::Expected.decode(&s.probs, values))
            .collect();
    }
    row["candidates"] = items
        .iter()
        .map(|&i| ds.items[i as usize].id.clone())
        .collect();
    row["expected"] = scores
        .iter()
        .map(|s| RatingDecoder::Expected.decode(&s.probs, values))
        .collect();
    Ok(Scored {
        expected: place(&by_expected(&scores[..m], values), hit),
        top: place(&by_top_rating(&scores[..m]), hit),
        relevance,
        items,
        scores,
        relevance_scores,
        seconds,
        relevance_seconds,
        prompts,
    })
}

/// Each model order minus the retriever's and the random order, per user, for every cut-off:
/// `{"model-relevance": {"retriever": {"recall@5": mean, "ci": {...}}, "random": ...}}`, with
/// 95% bootstrap intervals of the paired difference over the same resamples.
fn paired(orders: &[Ranks], cutoffs: &[usize], resamples: &[Vec<u32>]) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for (key, i) in PAIRED {
        if orders[i].is_empty() {
            continue;
        }
        let mut against = serde_json::Map::new();
        for (reference, j) in [("retriever", 2), ("random", 3)] {
            let m = per_user(cutoffs, resamples, |k| {
                orders[i]
                    .iter()
                    .zip(&orders[j])
                    .map(|(&a, &b)| {
                        let (ga, gb) = (gains(a, k), gains(b, k));
                        (ga.0 - gb.0, ga.1 - gb.1)
                    })
                    .collect()
            });
            against.insert(reference.into(), m);
        }
        out.insert(key.into(), against.into());
    }
    out.into()
}

/// The share of users whose held-out item is in the list.
fn hit_rate(ranks: &[Option<usize>]) -> f64 {
    ranks.iter().filter(|r| r.is_some()).count() as f64 / ranks.len().max(1) as f64
}

/// A metric cell: the mean and its interval.
fn cell(m: &serde_json::Value, key: &str) -> String {
    let ci = &m["ci"][key];
    format!(
        "{:.4} [{:.4}, {:.4}]",
        m[key].as_f64().unwrap_or(0.0),
        ci[0].as_f64().unwrap_or(0.0),
        ci[1].as_f64().unwrap_or(0.0)
    )
}

/// A table header: the `first` columns (the first left-aligned), then Recall@K and nDCG@K.
fn header(s: &mut String, first: &[&str], cutoffs: &[usize]) {
    let _ = write!(s, "| {} |", first.join(" | "));
    for k in cutoffs {
        let _ = write!(s, " Recall@{k} |");
    }
    for k in cutoffs {
        let _ = write!(s, " nDCG@{k} |");
    }
    s.push_str("\n|---|");
    s.push_str(&"---:|".repeat(first.len() - 1 + 2 * cutoffs.len()));
    s.push('\n');
}

/// One table row of `m`'s metrics.
fn metric_row(s: &mut String, label: &str, m: &serde_json::Value, cutoffs: &[usize]) {
    let _ = write!(s, "| {label} |");
    for key in ["recall", "ndcg"] {
        for k in cutoffs {
            let _ = write!(s, " {} |", cell(m, &format!("{key}@{k}")));
        }
    }
    s.push('\n');
}

/// The report as markdown tables.
fn markdown(r: &serde_json::Value, cutoffs: &[usize]) -> String {
    let method = r["method"].as_str();
    let n = &r["candidates"];
    let mut s = format!(
        "# Candidate reranking: {} {} ({} users{})\n\n\
         The retriever `{}` proposes its top {n} items per user (items the user has seen \
         excluded); the same lists for every order. Hit rate@{n}: {:.4}, the ceiling of any \
         reranker. A user whose held-out item is not in the list counts 0. 95% intervals: \
         bootstrap over users ({BOOTSTRAP} resamples).",
        r["dataset"].as_str().unwrap_or(""),
        r["split"].as_str().unwrap_or(""),
        r["users"],
        match r["sample"].as_u64() {
            Some(k) => format!(", seeded sample of {k}, seed {}", r["seed"]),
            None => String::new(),
        },
        r["retriever"].as_str().unwrap_or(""),
        r["hit_rate"].as_f64().unwrap_or(0.0),
    );
    match method {
        Some(m) => {
            let _ = write!(
                s,
                " `{m}` reorders them ({}); {:.0} ms per query for the ratings",
                match r["calibration"].as_str() {
                    Some("model") => "ratings calibrated as the model's calibration says",
                    _ => "uncalibrated ratings",
                },
                r["latency_ms_per_query"].as_f64().unwrap_or(0.0),
            );
            if let Some(ms) = r["relevance_ms_per_query"].as_f64() {
                let _ = write!(s, ", {ms:.0} ms for the relevance answers");
            }
            let _ = writeln!(
                s,
                " ({:.1} prompts per query, the user's part computed once; {} queries scored{}).",
                r["prompts_per_query"].as_f64().unwrap_or(0.0),
                r["scored_queries"],
                if r["held_out_inserted"].is_object() {
                    ""
                } else {
                    ": only the lists with a hit, `[rank] score_misses = false`; a list without \
                     the held-out item counts 0 under every order"
                },
            );
        }
        None => s.push_str(" No model reranks (`[rank] rerank = false`).\n"),
    }
    if let Some(b) = r["blend"].as_object() {
        let terms: Vec<String> = b["features"]
            .as_array()
            .into_iter()
            .flatten()
            .zip(b["weights"].as_array().into_iter().flatten())
            .map(|(f, w)| {
                format!(
                    "{:.3}·{}",
                    w.as_f64().unwrap_or(0.0),
                    f.as_str().unwrap_or("")
                )
            })
            .collect();
        let _ = writeln!(
            s,
            "\nThe blended order (`[rank.blend]`) scores a candidate {} (each feature \
             standardized within the user's list), the weights a conditional logit's fitted on \
             {} lists of earlier points in time of the fit set, never on this split (mean \
             log-likelihood {:.4} per list; a uniform order {:.4}).",
            terms.join(" + "),
            b["lists"],
            b["log_likelihood"].as_f64().unwrap_or(0.0),
            -(n.as_f64().unwrap_or(1.0)).ln(),
        );
    }
    let label = |key: &str, what: &str| match key {
        "model" | "model-p5" | "model-relevance" | "model-blend" => {
            format!("{} ({what})", method.unwrap_or(""))
        }
        "retriever" => format!("{} ({what})", r["retriever"].as_str().unwrap_or("")),
        _ => what.to_string(),
    };
    let mut views = vec![("retrieved", format!("Reranking the retriever's top {n}"))];
    if r["held_out_inserted"].is_object() {
        views.push((
            "held_out_inserted",
            "Secondary view: the held-out item inserted into every list (in place of the \
             retriever's last candidate when it missed)"
                .to_string(),
        ));
    }
    for (key, title) in views {
        let _ = write!(s, "\n## {title}\n\n");
        header(&mut s, &["order"], cutoffs);
        for (order, what) in ORDERS {
            let m = &r[key][order];
            if m.is_object() {
                metric_row(&mut s, &label(order, what), m, cutoffs);
            }
        }
    }
    if let Some(p) = r["paired"].as_object().filter(|p| !p.is_empty()) {
        let _ = write!(
            s,
            "\n## Paired differences on the retriever's top {n} (model order − reference, \
             per user; 95% bootstrap intervals)\n\n"
        );
        header(&mut s, &["order", "reference"], cutoffs);
        for (order, what) in ORDERS {
            for (reference, m) in p
                .get(order)
                .and_then(|v| v.as_object())
                .into_iter()
                .flatten()
            {
                let row = format!("{} | {reference}", label(order, what));
                metric_row(&mut s, &row, m, cutoffs);
            }
        }
    }
    if let Some(all) = r["retrievers"].as_object() {
        let _ = write!(s, "\n## Retrievers, each on its own top {n}\n\n");
        let hit = format!("hit rate@{n}");
        header(&mut s, &["retriever", "fit s", &hit], cutoffs);
        for (name, m) in all {
            let _ = write!(
                s,
                "| {name} | {:.1} | {:.4} |",
                m["fit_seconds"].as_f64().unwrap_or(0.0),
                m["hit_rate"].as_f64().unwrap_or(0.0)
            );
            for key in ["recall", "ndcg"] {
                for k in cutoffs {
                    let _ = write!(s, " {} |", cell(m, &format!("{key}@{k}")));
                }
            }
            s.push('\n');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recall_and_ndcg_by_hand_with_misses() {
        let cut = [3, 5];
        // Rank 1: recall 1, 1, nDCG 1, 1; rank 4: recall 0, 1, nDCG 0, 1/log2(5); a miss: 0.
        let ranks = [Some(0), Some(3), None];
        let j = metrics(&ranks, &cut, &resamples(3, 1));
        assert!((j["recall@3"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert!((j["recall@5"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!((j["ndcg@3"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-12);
        let want = (1.0 + 1.0 / 5f64.log2()) / 3.0;
        assert!((j["ndcg@5"].as_f64().unwrap() - want).abs() < 1e-12);
        // The interval holds the mean and stays in [0, 1].
        let ci = j["ci"]["ndcg@5"].as_array().unwrap();
        let (lo, hi) = (ci[0].as_f64().unwrap(), ci[1].as_f64().unwrap());
        assert!(
            0.0 <= lo && lo <= want && want <= hi && hi <= 1.0,
            "{lo} {hi}"
        );
        assert!((hit_rate(&ranks) - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn the_top_rating_orders_candidates() {
        let s = |p: [f32; 5]| AnswerScores {
            probs: p.to_vec(),
            greedy: None,
            mass: 1.0,
        };
        let scores = [
            s([0.0, 0.0, 0.5, 0.0, 0.5]),
            s([0.0, 0.0, 0.0, 0.2, 0.8]),
            s([0.0, 0.0, 0.0, 1.0, 0.0]),
        ];
        assert_eq!(by_top_rating(&scores), vec![1, 0, 2]);
    }

    #[test]
    fn expected_rating_orders_candidates() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        let s = |p: [f32; 5]| AnswerScores {
            probs: p.to_vec(),
            greedy: None,
            mass: 1.0,
        };
        let scores = [
            s([0.0, 0.0, 1.0, 0.0, 0.0]),
            s([0.0, 0.0, 0.0, 0.0, 1.0]),
            s([0.0, 0.0, 0.0, 1.0, 0.0]),
            s([0.0, 0.0, 1.0, 0.0, 0.0]),
        ];
        assert_eq!(by_expected(&scores, &v), vec![1, 2, 0, 3]);
    }
}
