//! Queries to prompts: the prompts of a run's config for known and new users and items.

use crate::answer::AO_SUFFIX;
use crate::config::RunConfig;
use crate::data::{Dataset, Interaction, Item};
use crate::engine::TextTokenizer;
use crate::prompt::{Prompt, PromptBuilder, SketchScope, Strategy, Task};
use crate::registry::build_on;
use crate::run::RunDir;
use crate::sketching::{Sketcher, TopicModelFile, nearest_center, topics_and_sketches};
use crate::traits::{Embeddings, Sketch, TextEncoder, TopicRating};
use crate::{CoreError, Result};

use super::{Candidate, Query, Subject};

/// Places items from outside the dataset in the run's topics: the encoder and the centers.
struct Placer {
    encoder: Box<dyn TextEncoder>,
    centers: Embeddings,
}

/// The prompts of one query, tokenized.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryPrompts {
    /// One prompt per candidate, each ending with the answer-only suffix.
    pub prompts: Vec<Vec<u32>>,
    /// For each prompt, the length of its user's part (system message, sketch, recent ratings),
    /// at least one token short of the prompt. Candidates the user has not rated share one
    /// user part; a rated candidate has its own (the past before that rating), so prompts of
    /// one query may differ inside it.
    pub heads: Vec<usize>,
}

/// Builds the prompts of queries for a run: the dataset, the users' timelines, the topic model
/// and the tokenizer. Read-only once built, so many threads can use one.
pub struct Prompter {
    /// The dataset.
    pub ds: Dataset,
    /// The model's tokenizer.
    pub tok: TextTokenizer,
    timelines: Vec<Vec<Interaction>>,
    pb: PromptBuilder,
    /// `pb` asking the relevance question (made once, with the same frequent components).
    relevance: PromptBuilder,
    sketcher: Option<Sketcher>,
    per_user: Option<Vec<Sketch>>,
    placer: Option<Placer>,
    system: Vec<u32>,
}

impl Prompter {
    /// A prompter for `config`'s prompts over `ds`, with each known user's past taken from
    /// `timelines` (e.g. [`crate::stages::predict::full_timelines`]). Builds the topic model as
    /// the sketch stage does (or reads `[topics] model`) when the prompt strategy shows a
    /// sketch, and loads the `[encoder]` to place new items.
    pub fn new(
        config: &RunConfig,
        ds: Dataset,
        run: &RunDir,
        tok: TextTokenizer,
        timelines: Vec<Vec<Interaction>>,
    ) -> Result<Self> {
        let pb = PromptBuilder::new(config.prompt.clone())?;
        if !ds.items.is_empty() {
            // Fixes the compact style's frequent category components on the dataset's items.
            let _ = pb.item(&ds, 0);
        }
        let (mut sketcher, mut per_user, mut placer) = (None, None, None);
        if matches!(
            config.prompt.strategy,
            Strategy::Sketch | Strategy::MoreHistory
        ) {
            let built = topics_and_sketches(config, &ds, run)?;
            let path = config
                .topics
                .model
                .clone()
                .unwrap_or_else(|| run.file("topic-model.json"));
            let m = TopicModelFile::read(&path)?;
            let enc = config.encoder.as_ref().ok_or_else(|| {
                CoreError::config("encoder", "placing new items in topics needs an [encoder]")
            })?;
            placer = Some(Placer {
                encoder: build_on::<dyn TextEncoder>(&enc.kind, &enc.params, &config.device)?,
                centers: Embeddings {
                    n: m.centers.len(),
                    dim: m.centers[0].len(),
                    data: m.centers.concat(),
                },
            });
            if config.prompt.sketch_scope == SketchScope::PerUser {
                per_user = Some(built.sketches);
            }
            sketcher = Some(built.sketcher);
        }
        let render = |user: &str| -> Result<Vec<u32>> {
            let p = Prompt {
                system: pb.system(),
                user: user.into(),
            };
            Ok(tok.encode(&crate::prompt::render_prompt(&tok, &p)?, false)?)
        };
        let (a, b) = (render("a")?, render("b")?);
        let system = a[..crate::engine::common_prefix_len(&[a.clone(), b])].to_vec();
        Ok(Self {
            ds,
            tok,
            timelines,
            relevance: pb.with_task(Task::Relevance),
            pb,
            sketcher,
            per_user,
            placer,
            system,
        })
    }

    /// The tokens every prompt starts with (chat template and system message).
    pub fn system_tokens(&self) -> &[u32] {
        &self.system
    }

    /// The rating prompts of `query`.
    pub fn prompts(&self, query: &Query) -> Result<QueryPrompts> {
        self.prompts_for(query, Task::Rating)
    }

    /// The prompts of `query` asking `task` (the rating, or the relevance question a reranker
    /// trained with `[relevance]` answers).
    pub fn prompts_for(&self, query: &Query, task: Task) -> Result<QueryPrompts> {
        let pb = match task {
            Task::Rating => &self.pb,
            Task::Relevance => &self.relevance,
        };
        if query.candidates.is_empty() {
            return Err(CoreError::Data(
                "a query needs at least one candidate".into(),
            ));
        }
        // New items (history and candidates) live in a small dataset of their own.
        let mut extra = Dataset::new("request");
        let new_item = |extra: &mut Dataset, title: &str, genres: &[String]| -> u32 {
            let i = extra.items.len() as u32;
            let id = format!("new-{i}");
            let idx = extra.intern_item(&id);
            extra.items[idx as usize] = Item {
                id,
                title: title.to_string(),
                categories: genres.to_vec(),
                ..Item::default()
            };
            idx
        };
        // A new user's history, oldest first.
        let mut new_past = Vec::new();
        if let Subject::New(history) = &query.subject {
            for (t, r) in history.iter().enumerate() {
                if !(1.0..=5.0).contains(&r.rating) {
                    return Err(CoreError::Data(format!(
                        "history[{t}].rating: {} is outside 1 to 5",
                        r.rating
                    )));
                }
                new_past.push(Interaction {
                    user: 0,
                    item: new_item(&mut extra, &r.title, &r.genres),
                    rating: r.rating,
                    timestamp: t as i64,
                });
            }
        }
        let cands: Vec<(bool, u32)> = query
            .candidates
            .iter()
            .map(|c| match c {
                Candidate::Known(i) => (true, *i),
                Candidate::New(it) => (false, new_item(&mut extra, &it.title, &it.genres)),
            })
            .collect();
        let extra = extra;
        let text_of = |(known, i): (bool, u32)| -> String {
            if known {
                pb.item(&self.ds, i)
            } else {
                pb.item(&extra, i)
            }
        };
        let count = |s: &str| self.tok.encode(s, false).map(|v| v.len()).unwrap_or(0);
        let strategy = pb.cfg.strategy;
        let mut prompts = Vec::with_capacity(cands.len());
        let mut heads = Vec::with_capacity(cands.len());
        // The tokens of the text before the candidate, reused while it stays the same.
        let mut head: Option<(String, Vec<u32>)> = None;
        let mut add = |p: Prompt, candidate: &str| -> Result<()> {
            let (tokens, k) = self.tokenize(&p, candidate, &mut head)?;
            heads.push(k);
            prompts.push(tokens);
            Ok(())
        };
        match &query.subject {
            Subject::Known(user) => {
                let timeline = &self.timelines[*user as usize];
                // The sketch and lines of a past, made once per distinct past (all unrated
                // candidates share the whole timeline).
                let mut made: Option<(usize, Sketch, Vec<String>)> = None;
                for &c in &cands {
                    // A rated candidate is scored from what preceded its rating.
                    let past = if c.0 {
                        crate::prompt::past_of_item(timeline, c.1)
                    } else {
                        timeline.as_slice()
                    };
                    if made.as_ref().is_none_or(|m| m.0 != past.len()) {
                        made = Some((
                            past.len(),
                            self.known_sketch(*user, past)?,
                            past.iter().map(|x| pb.line(&self.ds, x)).collect(),
                        ));
                    }
                    let Some((_, sketch, lines)) = made.as_ref() else {
                        continue;
                    };
                    let cand = text_of(c);
                    add(pb.build_from(lines, sketch, &cand, strategy, &count), &cand)?;
                }
            }
            Subject::New(_) => {
                let sketch = self.new_sketch(&extra, &new_past)?;
                let lines: Vec<String> = new_past.iter().map(|x| pb.line(&extra, x)).collect();
                for &c in &cands {
                    let cand = text_of(c);
                    add(
                        pb.build_from(&lines, &sketch, &cand, strategy, &count),
                        &cand,
                    )?;
                }
            }
        }
        Ok(QueryPrompts { prompts, heads })
    }

    /// The sketch of a known user's `past`.
    fn known_sketch(&self, user: u32, past: &[Interaction]) -> Result<Sketch> {
        match (&self.per_user, &self.sketcher) {
            (Some(v), _) => Ok(v[user as usize].clone()),
            (None, Some(s)) => s.sketch(past),
            (None, None) => Ok(Sketch::default()),
        }
    }

    /// The sketch of an inline history: its items placed at their nearest topic center.
    fn new_sketch(&self, extra: &Dataset, past: &[Interaction]) -> Result<Sketch> {
        let (Some(s), Some(p)) = (&self.sketcher, &self.placer) else {
            return Ok(Sketch::default());
        };
        if past.is_empty() {
            return s.sketch_topics(&[]);
        }
        let texts: Vec<String> = past
            .iter()
            .map(|x| crate::prompt::encoder_text(extra, x.item))
            .collect();
        let e = p.encoder.encode(&texts)?;
        if e.dim != p.centers.dim || e.n != texts.len() {
            return Err(CoreError::Data(format!(
                "the encoder gave {} vectors of width {} for {} items; the topic centers are {}-d",
                e.n,
                e.dim,
                texts.len(),
                p.centers.dim
            )));
        }
        let hist: Vec<TopicRating> = past
            .iter()
            .enumerate()
            .map(|(j, x)| TopicRating {
                topic: nearest_center(&p.centers, &e.data[j * e.dim..(j + 1) * e.dim]),
                rating: x.rating,
            })
            .collect();
        s.sketch_topics(&hist)
    }

    /// The tokens of a prompt (chat template, answer-only suffix) and the length of the part
    /// before the candidate's text.
    /// `head` keeps the last head text and its tokens: the candidates of one user share it.
    fn tokenize(
        &self,
        p: &Prompt,
        candidate: &str,
        head: &mut Option<(String, Vec<u32>)>,
    ) -> Result<(Vec<u32>, usize)> {
        let text = format!("{}{AO_SUFFIX}", crate::prompt::render_prompt(&self.tok, p)?);
        let tokens = self.tok.encode(&text, false)?;
        let cut = text.rfind(candidate).unwrap_or(0);
        if head.as_ref().is_none_or(|h| h.0 != text[..cut]) {
            *head = Some((
                text[..cut].to_string(),
                self.tok.encode(&text[..cut], false)?,
            ));
        }
        let head: &[u32] = head.as_ref().map_or(&[], |h| h.1.as_slice());
        let same = tokens.iter().zip(head).take_while(|(a, b)| a == b).count();
        let k = same.min(tokens.len().saturating_sub(1));
        Ok((tokens, k))
    }
}
