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
//! `[rank] sample`), the retriever (`[rank] retriever`, a rating baseline fitted on the split's
//! fit set; MF by default) proposes its top `[rank] candidates` items the user has not rated;
//! the model reorders them by expected rating. Recall@K and nDCG@K of the held-out item are
//! reported for the model's order, the retriever's own order and a random order, with the
//! retriever's hit rate (the ceiling of any reranker). A second view puts the held-out item in
//! every list (in place of the retriever's last candidate when it missed), so the reranker's
//! own quality shows where the retriever misses. Writes `rank.json`, `rank.md` and
//! `rank.jsonl` (every user's list and scores) to the run folder.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::config::{RankConfig, RunConfig};
use crate::data::{Dataset, Interaction, SplitName};
use crate::rating::{AnswerScores, RatingDecoder};
use crate::registry::build;
use crate::run::RunDir;
use crate::serving::{Candidate, Job, Limits, Query, Subject};
use crate::traits::{RatingBaseline, RatingModel};
use crate::{CoreError, Result};

use super::eval::Weights;

/// A fitted retriever: a rating model and the items each user has rated.
pub struct Retriever {
    model: Box<dyn RatingModel>,
    rated: Vec<HashSet<u32>>,
    n_items: u32,
    /// The retriever's name.
    pub name: String,
}

impl Retriever {
    /// Fits `[rank] retriever` on the fit set of `split` (with the params of the matching
    /// `[[baselines]]` entry, if any).
    pub fn fit(
        config: &RunConfig,
        rank: &RankConfig,
        ds: &Dataset,
        split: SplitName,
    ) -> Result<Self> {
        let params = config
            .baselines
            .iter()
            .find(|b| b.kind == rank.retriever)
            .map(|b| b.params.clone())
            .unwrap_or_default();
        let baseline = build::<dyn RatingBaseline>(&rank.retriever, &params)?;
        let fit = ds.fit_set(split);
        let t = Instant::now();
        let model = baseline.fit(ds, &fit, config.seed)?;
        let mut rated = vec![HashSet::new(); ds.users.len()];
        for x in fit.iter().chain(&ds.train) {
            rated[x.user as usize].insert(x.item);
        }
        tracing::info!(
            "retriever `{}` fitted on {} ratings in {:.1}s",
            rank.retriever,
            fit.len(),
            t.elapsed().as_secs_f64()
        );
        Ok(Self {
            model,
            rated,
            n_items: ds.items.len() as u32,
            name: rank.retriever.clone(),
        })
    }

    /// The `n` items the user has not rated with the highest scores, best first (ties by
    /// item index), with their scores.
    pub fn top(&self, user: u32, n: usize) -> Vec<(u32, f32)> {
        let rated = &self.rated[user as usize];
        let mut all: Vec<(u32, f32)> = (0..self.n_items)
            .filter(|i| !rated.contains(i))
            .map(|i| (i, self.model.score(user, i)))
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
    let mut retriever = None;
    let mut requests = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = |m: String| CoreError::Data(format!("{}:{}: {m}", input.display(), i + 1));
        let mut v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| at(format!("not JSON: {e}")))?;
        if v.get("candidates").is_none() {
            // The retriever proposes the candidates of a known user.
            let u = match v.get("user") {
                Some(u) => {
                    crate::serving::request::known_user(ds, u).map_err(|e| at(e.to_string()))?
                }
                None => {
                    return Err(at(
                        "field `candidates`: missing (the retriever proposes candidates for \
                         known users only)"
                            .into(),
                    ));
                }
            };
            if retriever.is_none() {
                retriever = Some(Retriever::fit(config, &rank, ds, config.eval.split)?);
            }
            let top = retriever
                .as_ref()
                .map(|r| r.top(u, rank.candidates))
                .unwrap_or_default();
            v["candidates"] = top
                .iter()
                .map(|&(it, _)| serde_json::Value::String(ds.items[it as usize].id.clone()))
                .collect();
        }
        let r =
            crate::serving::request::rank_request(ds, &v, limits).map_err(|e| at(e.to_string()))?;
        requests.push((v, r));
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
    let mut out = String::new();
    for (v, r) in &requests {
        let t = Instant::now();
        let q = prompter.prompts(&r.query)?;
        let (scores, _) = scorer.score(&[Job::from(&q)])?;
        let order = by_expected(&scores[0], scorer.values());
        let ranked: Vec<serde_json::Value> = order[..r.k]
            .iter()
            .map(|&c| scored_json(v["candidates"][c].clone(), &scores[0][c], scorer.values()))
            .collect();
        let mut row = serde_json::json!({
            "ranked": ranked,
            "latency_ms": t.elapsed().as_secs_f64() * 1e3,
            "calibration": scorer.calibration_label(),
        });
        if let Some(u) = v.get("user") {
            row["user"] = u.clone();
        }
        out.push_str(&row.to_string());
        out.push('\n');
        bar.inc(1);
    }
    bar.finish_and_clear();
    crate::files::write_atomic(output, out.as_bytes())?;
    Ok(requests.len())
}

/// Recall@K and nDCG@K sums of one order over users.
#[derive(Debug, Clone, Default)]
struct Tally {
    recall: Vec<f64>,
    ndcg: Vec<f64>,
}

impl Tally {
    fn new(k: usize) -> Self {
        Self {
            recall: vec![0.0; k],
            ndcg: vec![0.0; k],
        }
    }

    /// Adds one user whose held-out item sits at 0-based `rank` (None: not in the list).
    fn add(&mut self, rank: Option<usize>, cutoffs: &[usize]) {
        if let Some(r) = rank {
            for (j, &k) in cutoffs.iter().enumerate() {
                if r < k {
                    self.recall[j] += 1.0;
                    self.ndcg[j] += 1.0 / ((r + 2) as f64).log2();
                }
            }
        }
    }

    fn json(&self, cutoffs: &[usize], n: usize) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for (j, k) in cutoffs.iter().enumerate() {
            m.insert(format!("recall@{k}"), (self.recall[j] / n as f64).into());
            m.insert(format!("ndcg@{k}"), (self.ndcg[j] / n as f64).into());
        }
        m.into()
    }
}

/// The reranking evaluation (see the module docs); returns the report as JSON.
pub fn evaluate(
    config: &RunConfig,
    ds: &Dataset,
    run: &RunDir,
    weights: &Weights,
) -> Result<serde_json::Value> {
    let rank = config.rank.clone().unwrap_or_default();
    rank.validate()?;
    let split = config.eval.split;
    let targets: Vec<Interaction> = super::sample_rows(ds.split(split), rank.sample, config.seed);
    let retriever = Retriever::fit(config, &rank, ds, split)?;
    let timelines = crate::prompt::timelines(ds, split == SplitName::Test);
    let (prompter, mut scorer, method) = crate::serving::load(
        config,
        ds.clone(),
        run,
        weights,
        timelines,
        (config.eval.batch_size, 0),
    )?;
    let values = scorer.values().to_vec();
    let n_cut = rank.cutoffs.len();
    let names = ["model", "retriever", "random"];
    let mut retrieved: Vec<Tally> = vec![Tally::new(n_cut); 3];
    let mut inserted: Vec<Tally> = vec![Tally::new(n_cut); 3];
    let (mut hits, mut latency, mut prompts_scored) = (0usize, 0f64, 0usize);
    let mut rng = rand::rngs::StdRng::seed_from_u64(config.seed);
    let mut rows = String::new();
    tracing::info!(
        "reranking: {} users of {}, {} candidates from `{}`, reordered by `{method}`",
        targets.len(),
        split.as_str(),
        rank.candidates,
        retriever.name
    );
    let bar = crate::progress::bar(targets.len() as u64, "rerank");
    for x in &targets {
        let top = retriever.top(x.user, rank.candidates);
        let list: Vec<u32> = top.iter().map(|t| t.0).collect();
        let hit = list.iter().position(|&i| i == x.item);
        hits += usize::from(hit.is_some());
        // The scored items: the retrieved list, plus the held-out item when it was missed.
        let mut items = list.clone();
        if hit.is_none() {
            items.push(x.item);
        }
        let t = Instant::now();
        let q = prompter.prompts(&Query {
            subject: Subject::Known(x.user),
            candidates: items.iter().map(|&i| Candidate::Known(i)).collect(),
        })?;
        let (scores, _) = scorer.score(&[Job::from(&q)])?;
        latency += t.elapsed().as_secs_f64();
        prompts_scored += items.len();
        let scores = &scores[0];
        let expected: Vec<f32> = scores
            .iter()
            .map(|s| RatingDecoder::Expected.decode(&s.probs, &values))
            .collect();
        // View 1, the retrieved list: positions 0..n of `items`.
        let n = list.len();
        let mut shuffled: Vec<usize> = (0..n).collect();
        shuffled.shuffle(&mut rng);
        let model_order = by_expected(&scores[..n], &values);
        let rank_of = |order: &[usize], want: Option<usize>| {
            want.and_then(|w| order.iter().position(|&i| i == w))
        };
        retrieved[0].add(rank_of(&model_order, hit), &rank.cutoffs);
        retrieved[1].add(hit, &rank.cutoffs);
        retrieved[2].add(rank_of(&shuffled, hit), &rank.cutoffs);
        // View 2, the held-out item in every list (in place of the last retrieved item).
        let view: Vec<usize> = match hit {
            Some(_) => (0..n).collect(),
            None => (0..n.saturating_sub(1)).chain([n]).collect(),
        };
        let pos = view
            .iter()
            .position(|&i| items[i] == x.item)
            .ok_or_else(|| CoreError::Data("the held-out item left its list".into()))?;
        let sub: Vec<AnswerScores> = view.iter().map(|&i| scores[i].clone()).collect();
        let model2 = by_expected(&sub, &values);
        let mut by_retriever: Vec<usize> = (0..view.len()).collect();
        let score_of = |i: usize| {
            top.get(view[i])
                .map_or_else(|| retriever.model.score(x.user, x.item), |t| t.1)
        };
        by_retriever.sort_by(|&a, &b| score_of(b).total_cmp(&score_of(a)).then(a.cmp(&b)));
        let mut shuffled2: Vec<usize> = (0..view.len()).collect();
        shuffled2.shuffle(&mut rng);
        inserted[0].add(rank_of(&model2, Some(pos)), &rank.cutoffs);
        inserted[1].add(rank_of(&by_retriever, Some(pos)), &rank.cutoffs);
        inserted[2].add(rank_of(&shuffled2, Some(pos)), &rank.cutoffs);
        let _ = writeln!(
            rows,
            "{}",
            serde_json::json!({
                "user": ds.users[x.user as usize],
                "held_out": ds.items[x.item as usize].id,
                "retrieved_rank": hit.map(|h| h + 1),
                "candidates": items.iter().map(|&i| &ds.items[i as usize].id).collect::<Vec<_>>(),
                "expected": expected,
            })
        );
        bar.inc(1);
    }
    bar.finish_and_clear();
    let users = targets.len().max(1);
    let view_json = |t: &[Tally]| -> serde_json::Value {
        names
            .iter()
            .zip(t)
            .map(|(n, t)| ((*n).to_string(), t.json(&rank.cutoffs, users)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let report = serde_json::json!({
        "dataset": ds.name,
        "split": split.as_str(),
        "users": targets.len(),
        "sample": rank.sample,
        "seed": config.seed,
        "retriever": retriever.name,
        "candidates": rank.candidates,
        "method": method,
        "hit_rate": hits as f64 / users as f64,
        "retrieved": view_json(&retrieved),
        "held_out_inserted": view_json(&inserted),
        "latency_ms_per_query": 1e3 * latency / users as f64,
        "prompts_per_query": prompts_scored as f64 / users as f64,
    });
    run.write_json("rank.json", &report)?;
    crate::files::write_atomic(&run.file("rank.jsonl"), rows.as_bytes())?;
    let md = markdown(&report, &rank.cutoffs);
    crate::files::write_atomic(&run.file("rank.md"), md.as_bytes())?;
    println!("{md}");
    Ok(report)
}

/// The report as markdown tables.
fn markdown(r: &serde_json::Value, cutoffs: &[usize]) -> String {
    let mut s = format!(
        "# Candidate reranking: {} {} ({} users{})\n\n\
         The retriever `{}` proposes {} candidates per user (items the user rated excluded); \
         `{}` reorders them by expected rating. Hit rate@{}: {:.4} (the ceiling of any \
         reranker in the first view). Model latency {:.0} ms per query ({:.1} prompts, the \
         user's part computed once).\n",
        r["dataset"].as_str().unwrap_or(""),
        r["split"].as_str().unwrap_or(""),
        r["users"],
        match r["sample"].as_u64() {
            Some(n) => format!(", seeded sample of {n}, seed {}", r["seed"]),
            None => String::new(),
        },
        r["retriever"].as_str().unwrap_or(""),
        r["candidates"],
        r["method"].as_str().unwrap_or(""),
        r["candidates"],
        r["hit_rate"].as_f64().unwrap_or(0.0),
        r["latency_ms_per_query"].as_f64().unwrap_or(0.0),
        r["prompts_per_query"].as_f64().unwrap_or(0.0),
    );
    for (key, title) in [
        (
            "retrieved",
            "Retrieved lists (the held-out item where the retriever found it)",
        ),
        (
            "held_out_inserted",
            "Held-out item inserted into every list",
        ),
    ] {
        let _ = write!(s, "\n## {title}\n\n| order |");
        for k in cutoffs {
            let _ = write!(s, " Recall@{k} |");
        }
        for k in cutoffs {
            let _ = write!(s, " nDCG@{k} |");
        }
        s.push_str("\n|---|");
        s.push_str(&"---:|".repeat(2 * cutoffs.len()));
        s.push('\n');
        for name in ["model", "retriever", "random"] {
            let label = match name {
                "model" => format!(
                    "{} (by expected rating)",
                    r["method"].as_str().unwrap_or("")
                ),
                "retriever" => format!(
                    "{} (retriever order)",
                    r["retriever"].as_str().unwrap_or("")
                ),
                _ => "random order".into(),
            };
            let m = &r[key][name];
            let _ = write!(s, "| {label} |");
            for k in cutoffs {
                let _ = write!(
                    s,
                    " {:.4} |",
                    m[format!("recall@{k}")].as_f64().unwrap_or(0.0)
                );
            }
            for k in cutoffs {
                let _ = write!(
                    s,
                    " {:.4} |",
                    m[format!("ndcg@{k}")].as_f64().unwrap_or(0.0)
                );
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
    fn recall_and_ndcg_by_hand() {
        let cut = [3, 5];
        let mut t = Tally::new(2);
        t.add(Some(0), &cut); // rank 1: recall 1, 1; nDCG 1, 1
        t.add(Some(3), &cut); // rank 4: recall 0, 1; nDCG 0, 1/log2(5)
        t.add(None, &cut);
        let j = t.json(&cut, 3);
        assert!((j["recall@3"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert!((j["recall@5"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!((j["ndcg@3"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-12);
        let want = (1.0 + 1.0 / 5f64.log2()) / 3.0;
        assert!((j["ndcg@5"].as_f64().unwrap() - want).abs() < 1e-12);
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
