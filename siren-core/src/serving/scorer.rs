//! The model side of serving: scores a batch of queries, each user's part once.

use std::collections::{HashMap, HashSet, VecDeque};

use burn::tensor::Device;

use crate::Result;
use crate::engine::{Decoder, Prefix};
use crate::rating::{AnswerScores, RatingTokens, answer_scores};

use super::{CacheStats, PrefixCache};

/// The prompts of one query and the length of each one's user part (see
/// [`super::QueryPrompts`]).
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    /// One prompt per candidate.
    pub prompts: &'a [Vec<u32>],
    /// For each prompt, the tokens of its user's part: the prompt runs on a prefix made of
    /// exactly its own first `heads[c]` tokens.
    pub heads: &'a [usize],
    /// Whether the scorer's calibration applies to its answers (true for ratings; false for
    /// answers that are not ratings, such as the relevance question's).
    pub calibrate: bool,
}

impl<'a> From<&'a super::QueryPrompts> for Job<'a> {
    fn from(q: &'a super::QueryPrompts) -> Self {
        Self {
            prompts: &q.prompts,
            heads: &q.heads,
            calibrate: true,
        }
    }
}

impl<'a> Job<'a> {
    /// The job of `q`'s prompts, its answers never calibrated.
    pub fn uncalibrated(q: &'a super::QueryPrompts) -> Self {
        Self {
            calibrate: false,
            ..Self::from(q)
        }
    }
}

/// What scoring one batch did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchReport {
    /// Queries scored.
    pub queries: usize,
    /// Prompts scored.
    pub prompts: usize,
    /// Forward passes over candidate tails.
    pub forwards: usize,
    /// Prompt tokens computed (prefixes computed here plus every tail).
    pub computed_tokens: usize,
    /// Prompt tokens in all.
    pub total_tokens: usize,
}

/// Users seen once: a user seen again gets their prefix cached.
struct Seen {
    order: VecDeque<u64>,
    set: HashSet<u64>,
    cap: usize,
}

impl Seen {
    /// Records `key`; true when it was already there.
    fn visit(&mut self, key: u64) -> bool {
        if self.set.contains(&key) {
            return true;
        }
        if self.order.len() == self.cap
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        self.order.push_back(key);
        self.set.insert(key);
        false
    }
}

/// The model, its rating tokens and the prefix cache. Batches are scored so:
/// - queries of users whose part of the prompt is cached, or seen before, or that bring
///   several candidates (or several queries of one user in the batch) run their candidates on
///   the user's prefix, computed once and kept in the cache;
/// - the other single-candidate queries run together in length-bucketed batches on the
///   prefix every prompt shares (chat template and system message).
///
/// Every path gives the distributions of scoring each prompt whole, up to float rounding.
pub struct Scorer {
    model: Decoder,
    device: Device,
    tokens: RatingTokens,
    pad_id: u32,
    max_batch: usize,
    max_batch_users: usize,
    system: Prefix,
    cache: PrefixCache,
    seen: Seen,
    calibration: Option<crate::calibration::Calibration>,
}

impl Scorer {
    /// A scorer of `model` with its prompts' shared `system` tokens computed once, batches of
    /// at most `max_batch` prompts per forward pass and `cache_bytes` for per-user prefixes.
    pub fn new(
        model: Decoder,
        device: Device,
        (tokens, pad_id): (RatingTokens, u32),
        system: &[u32],
        max_batch: usize,
        cache_bytes: usize,
    ) -> Result<Self> {
        let system = Prefix::new(&model, system, &device)?;
        Ok(Self {
            model,
            device,
            tokens,
            pad_id,
            max_batch: max_batch.max(1),
            max_batch_users: max_batch.max(1),
            system,
            cache: PrefixCache::new(cache_bytes),
            seen: Seen {
                order: VecDeque::new(),
                set: HashSet::new(),
                cap: 4096,
            },
            calibration: None,
        })
    }

    /// The rating values, ascending (one per entry of each distribution).
    pub fn values(&self) -> &[f32] {
        &self.tokens.values
    }

    /// The prefix cache's counters.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// At most `n` prompts of different users (run on the shared system prefix) per forward
    /// pass; one user's candidates still batch up to `max_batch`. Default `max_batch`.
    pub fn set_max_batch_users(&mut self, n: usize) {
        self.max_batch_users = n.max(1);
    }

    /// Applies `calibration` to every distribution scored from now on (`None`: the raw ones),
    /// except those of jobs made [`Job::uncalibrated`].
    pub fn set_calibration(&mut self, calibration: Option<crate::calibration::Calibration>) {
        self.calibration = calibration;
    }

    /// `model` when a calibration is applied, else `none`.
    pub fn calibration_label(&self) -> &'static str {
        crate::calibration::label(self.calibration.as_ref())
    }

    /// Forgets every cached prefix and every user seen (after a failure that may have left
    /// them half-updated).
    pub fn clear_cache(&mut self) {
        self.cache.clear();
        self.seen.order.clear();
        self.seen.set.clear();
    }

    /// The most tokens a prompt may have: the model's context.
    pub fn max_tokens(&self) -> usize {
        self.model.spec.max_position_embeddings
    }

    /// Scores every prompt of `jobs` (answer-only: the distribution over the ratings), in order.
    pub fn score(&mut self, jobs: &[Job<'_>]) -> Result<(Vec<Vec<AnswerScores>>, BatchReport)> {
        let mut report = BatchReport {
            queries: jobs.len(),
            prompts: jobs.iter().map(|j| j.prompts.len()).sum(),
            total_tokens: jobs.iter().flat_map(|j| j.prompts).map(Vec::len).sum(),
            ..BatchReport::default()
        };
        let mut out: Vec<Vec<Option<AnswerScores>>> =
            jobs.iter().map(|j| vec![None; j.prompts.len()]).collect();
        // Prompts by their user's part: each prompt runs on a prefix of its own tokens, so
        // candidates with different pasts never share one.
        let mut groups: HashMap<&[u32], Vec<(usize, usize)>> = HashMap::new();
        let mut order = Vec::new();
        for (j, job) in jobs.iter().enumerate() {
            if job.heads.len() != job.prompts.len() {
                return Err(crate::CoreError::Data(format!(
                    "query {j}: {} user-part lengths for {} prompts",
                    job.heads.len(),
                    job.prompts.len()
                )));
            }
            for (c, (p, &k)) in job.prompts.iter().zip(job.heads).enumerate() {
                if k >= p.len() {
                    return Err(crate::CoreError::Data(format!(
                        "query {j}, prompt {c}: a user part of {k} tokens leaves nothing of a \
                         {}-token prompt to score",
                        p.len()
                    )));
                }
                let g = groups.entry(&p[..k]).or_default();
                if g.is_empty() {
                    order.push(&p[..k]);
                }
                g.push((j, c));
            }
        }
        let sys_len = self.system.tokens().len();
        let mut singles: Vec<(usize, usize)> = Vec::new();
        for head in order {
            let members = &groups[head];
            let key = PrefixCache::key(head);
            let cached = self.cache.contains(head);
            let seen = self.seen.visit(key);
            if head.len() <= sys_len || !(cached || seen || members.len() > 1) {
                singles.extend_from_slice(members);
                continue;
            }
            let (model, device) = (&self.model, &self.device);
            let mut computed = 0;
            let prefix = self.cache.get_or_insert_with(
                head,
                |p| p.cache_bytes(model),
                || {
                    computed = head.len();
                    Prefix::new(model, head, device)
                },
            )?;
            report.computed_tokens += computed;
            self.run(
                (&prefix, self.max_batch),
                jobs,
                members,
                &mut out,
                &mut report,
            )?;
        }
        // Single prompts of new users: together, on the prefix all prompts share.
        let items: Vec<(usize, usize)> = singles;
        if !items.is_empty() {
            let (alone, shared): (Vec<_>, Vec<_>) = items.iter().partition(|&&(j, c)| {
                let p = &jobs[j].prompts[c];
                p.len() <= sys_len || p[..sys_len] != *self.system.tokens()
            });
            let system = self.system.clone();
            let limit = self.max_batch_users;
            self.run((&system, limit), jobs, &shared, &mut out, &mut report)?;
            let empty = Prefix::new(&self.model, &[], &self.device)?;
            self.run((&empty, limit), jobs, &alone, &mut out, &mut report)?;
        }
        let mut scores = out
            .into_iter()
            .map(|v| v.into_iter().collect::<Option<Vec<_>>>())
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| crate::CoreError::Data("a prompt was left unscored".into()))?;
        if let Some(c) = &self.calibration {
            for (job, v) in jobs.iter().zip(scores.iter_mut()) {
                for s in v.iter_mut().filter(|_| job.calibrate) {
                    s.probs = c.apply(&s.probs);
                }
            }
        }
        Ok((scores, report))
    }

    /// Scores prompts `items` (job, candidate) on `prefix`, batched by tail length, at most
    /// `limit` per forward pass.
    fn run(
        &self,
        (prefix, limit): (&Prefix, usize),
        jobs: &[Job<'_>],
        items: &[(usize, usize)],
        out: &mut [Vec<Option<AnswerScores>>],
        report: &mut BatchReport,
    ) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let k = prefix.tokens().len();
        let tails: Vec<&[u32]> = items
            .iter()
            .map(|&(j, c)| &jobs[j].prompts[c][k..])
            .collect();
        let lens: Vec<usize> = tails.iter().map(|t| t.len()).collect();
        report.computed_tokens += lens.iter().sum::<usize>();
        let (batches, _, _) = crate::batching::length_buckets(&lens, limit, true);
        let p = (k > 0).then_some(prefix);
        for b in batches {
            let chunk: Vec<Vec<u32>> = b.iter().map(|&i| tails[i].to_vec()).collect();
            let scores = answer_scores(
                &self.model,
                p,
                &chunk,
                &self.tokens,
                self.pad_id,
                &self.device,
            )?;
            report.forwards += 1;
            for (&i, s) in b.iter().zip(scores) {
                let (j, c) = items[i];
                out[j][c] = Some(s);
            }
        }
        Ok(())
    }
}
