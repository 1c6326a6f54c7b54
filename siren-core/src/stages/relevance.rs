//! Relevance examples for a reranker (`[relevance]`): what stage 1 adds to its rating examples
//! so that the model learns which retrieved item a user picks, the thing the reranking
//! protocol rewards (a model trained only to rate items users rated ranks retrieved lists no
//! better than chance).
//!
//! The examples copy the evaluation earlier in time, from the fit set alone: each sampled
//! user's last history interaction is held out (and, with `[relevance] cuts` above 1, the
//! second-to-last with what follows it, and so on), `[rank] retriever` is fitted on the
//! interactions before it, and the user's top `[rank] candidates` unseen items are the
//! retrieved list. The held-out item is a positive (answer 5 to the relevance question,
//! [`Task::Relevance`]) and `[relevance] negatives` items of the list that are not it are
//! negatives (answer 1), each prompt built from the interactions before the held-out one. The
//! evaluated split is never read, and the test split's fit set (history + valid) would give
//! its own examples the same way.

use std::collections::HashSet;

use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::config::{RelevanceConfig, RunConfig};
use crate::data::{Dataset, Interaction, SplitName};
use crate::engine::TextTokenizer;
use crate::prompt::{PromptBuilder, Task};
use crate::traits::Example;
use crate::{CoreError, Result};

use super::rank::Candidates;
use super::sketch::PromptSketches;

/// The answer of a positive and of a negative.
pub const POSITIVE: f32 = 5.0;
/// See [`POSITIVE`].
pub const NEGATIVE: f32 = 1.0;

/// `ds` one step earlier: each user's last history interaction (of users with at least two)
/// moves to the valid split, and the training targets of those pairs are dropped, so a
/// retriever fitted on the result's fit set has not seen the held-out items.
pub fn held_out_last(ds: &Dataset) -> Dataset {
    held_out(ds, 1)
}

/// `ds` `back` steps earlier: for each user with more than `back` history interactions, the
/// `back`-th last one moves to the valid split and the later ones are dropped (the future at
/// that point), with the training targets of every removed pair.
pub fn held_out(ds: &Dataset, back: usize) -> Dataset {
    let mut per_user: Vec<Vec<usize>> = vec![Vec::new(); ds.users.len()];
    for (k, x) in ds.history.iter().enumerate() {
        per_user[x.user as usize].push(k);
    }
    let (mut held, mut removed) = (Vec::new(), HashSet::new());
    for idx in &mut per_user {
        // History is in time order per user; a stable sort keeps equal timestamps in order.
        idx.sort_by_key(|&k| ds.history[k].timestamp);
        if back >= 1 && idx.len() > back {
            let at = idx.len() - back;
            held.push(idx[at]);
            removed.extend(idx[at..].iter().copied());
        }
    }
    let pairs: HashSet<(u32, u32)> = removed
        .iter()
        .map(|&k| (ds.history[k].user, ds.history[k].item))
        .collect();
    let mut out = ds.clone();
    out.history = ds
        .history
        .iter()
        .enumerate()
        .filter(|(k, _)| !removed.contains(k))
        .map(|(_, x)| *x)
        .collect();
    let mut valid: Vec<Interaction> = held.iter().map(|&k| ds.history[k]).collect();
    valid.sort_by_key(|x| x.user);
    out.valid = valid;
    out.train = ds
        .train
        .iter()
        .filter(|x| !pairs.contains(&(x.user, x.item)))
        .copied()
        .collect();
    out.test = Vec::new();
    out
}

/// One user's examples: the held-out interaction and the negatives drawn from its list.
#[derive(Debug, Clone, PartialEq)]
pub struct Draw {
    /// The held-out interaction (the positive).
    pub held_out: Interaction,
    /// Whether the retrieved list holds it.
    pub retrieved: bool,
    /// The negatives, items of the list.
    pub negatives: Vec<u32>,
}

/// The draws of `[relevance]` on `ds` (see the module docs), seeded by `seed`.
pub fn draws(config: &RunConfig, rel: &RelevanceConfig, ds: &Dataset) -> Result<Vec<Draw>> {
    let rank = config.rank.clone().unwrap_or_default();
    rank.validate()?;
    let mut out = Vec::new();
    for back in 1..=rel.cuts {
        let earlier = held_out(ds, back);
        if earlier.valid.is_empty() {
            return Err(CoreError::Data(format!(
                "[relevance]: no user of `{}` has {} history interactions to hold one out \
                 {back} steps back (relevance.cuts = {})",
                ds.name,
                back + 1,
                rel.cuts
            )));
        }
        let retriever = Candidates::fit(config, &rank, &earlier, SplitName::Valid)?;
        let seed = config.seed.wrapping_add(back as u64 - 1);
        let users = super::sample_rows(&earlier.valid, rel.users, seed);
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5e1e_7a7c);
        for x in users {
            let list: Vec<u32> = retriever
                .top(x.user, rank.candidates)
                .into_iter()
                .map(|t| t.0)
                .collect();
            let retrieved = list.contains(&x.item);
            if !retrieved && !rel.missed_positives {
                continue;
            }
            let mut others: Vec<u32> = list.into_iter().filter(|&i| i != x.item).collect();
            others.shuffle(&mut rng);
            others.truncate(rel.negatives);
            out.push(Draw {
                held_out: x,
                retrieved,
                negatives: others,
            });
        }
    }
    Ok(out)
}

/// The relevance examples of `[relevance]` (none when the config has no such table): prompts
/// rendered as stage 1 renders its rating prompts, with the relevance question.
pub fn examples(
    config: &RunConfig,
    ds: &Dataset,
    sketches: &PromptSketches,
    tok: &TextTokenizer,
) -> Result<Vec<Example>> {
    let Some(rel) = &config.relevance else {
        return Ok(Vec::new());
    };
    let draws = draws(config, rel, ds)?;
    let pb = PromptBuilder::new(config.prompt.clone())?.with_task(Task::Relevance);
    let timelines = crate::prompt::timelines(ds, false);
    let count = |s: &str| tok.encode(s, false).map(|v| v.len()).unwrap_or(0);
    let (mut out, mut hits) = (Vec::new(), 0usize);
    for d in &draws {
        let x = d.held_out;
        hits += usize::from(d.retrieved);
        let u = x.user as usize;
        let past = crate::prompt::past_of(&timelines[u], &x);
        let sk = sketches.for_prompt(x.user, past)?;
        let items =
            std::iter::once((x.item, POSITIVE)).chain(d.negatives.iter().map(|&i| (i, NEGATIVE)));
        for (item, answer) in items {
            let target = Interaction {
                item,
                rating: answer,
                ..x
            };
            let p = pb.build(ds, past, &sk, &target, pb.cfg.strategy, &count);
            out.push(Example {
                id: format!("relevance:{}:{}", ds.users[u], ds.items[item as usize].id),
                prompt: super::render_prompt(tok, &p)?,
                rating: answer,
                rationale: None,
            });
        }
    }
    tracing::info!(
        "relevance examples: {} users ({} with the held-out item retrieved), {} prompts",
        draws.len(),
        hits,
        out.len()
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> Dataset {
        let mut ds = Dataset::new("toy");
        for k in 0..6 {
            ds.intern_item(&format!("i{k}"));
        }
        for u in 0..3 {
            ds.intern_user(&format!("u{u}"));
        }
        let x = |user, item, t| Interaction {
            user,
            item,
            rating: 4.0,
            timestamp: t,
        };
        ds.history = vec![
            x(0, 0, 1),
            x(0, 1, 2),
            x(0, 2, 3),
            x(1, 3, 1),
            x(2, 4, 5),
            x(2, 5, 6),
        ];
        ds.train = vec![x(0, 2, 3), x(0, 1, 2), x(2, 5, 6)];
        ds.valid = vec![x(0, 3, 9), x(1, 0, 9), x(2, 0, 9)];
        ds
    }

    #[test]
    fn the_last_history_interaction_moves_to_valid() {
        let ds = toy();
        let e = held_out_last(&ds);
        // User 1 has one interaction: kept in history, nothing held out.
        assert_eq!(
            e.valid.iter().map(|x| (x.user, x.item)).collect::<Vec<_>>(),
            vec![(0, 2), (2, 5)]
        );
        assert_eq!(
            e.history
                .iter()
                .map(|x| (x.user, x.item))
                .collect::<Vec<_>>(),
            vec![(0, 0), (0, 1), (1, 3), (2, 4)]
        );
        // The training targets of the held-out pairs are gone; the real valid split is not read.
        assert_eq!(
            e.train.iter().map(|x| (x.user, x.item)).collect::<Vec<_>>(),
            vec![(0, 1)]
        );
        assert!(e.test.is_empty());
    }

    #[test]
    fn an_earlier_cut_drops_the_held_out_interaction_and_what_follows() {
        let ds = toy();
        let e = held_out(&ds, 2);
        // Only user 0 has more than two interactions.
        assert_eq!(
            e.valid.iter().map(|x| (x.user, x.item)).collect::<Vec<_>>(),
            vec![(0, 1)]
        );
        assert_eq!(
            e.history
                .iter()
                .map(|x| (x.user, x.item))
                .collect::<Vec<_>>(),
            vec![(0, 0), (1, 3), (2, 4), (2, 5)]
        );
        assert_eq!(
            e.train.iter().map(|x| (x.user, x.item)).collect::<Vec<_>>(),
            vec![(2, 5)]
        );
    }
}
