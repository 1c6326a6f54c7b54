//! Rating prompts (paper Table 12) and the user-modelling strategies of Table 3.
//!
//! A prompt is a system message (the task and the `<think>`/`<answer>` format) and a user
//! message built from, depending on the [`Strategy`]:
//! - `recent`: the N most recent interactions (`Title, Genres, Rating` lines);
//! - `sketch`: the long-term interest sketch, then the N most recent interactions (SIREN);
//! - `more-history`: the recent interactions extended with older ones, as many as fit the
//!   token budget of the sketch prompt (same input length, raw history instead of a sketch);
//! - `full-history` (for token accounting): every past interaction.
//!
//! The category word ("movie", "book") comes from the config. `[prompt] style` picks the
//! paper's wording and item rendering (`paper`, default) or the [`compact`] one (the same
//! information in fewer tokens).

pub mod compact;
pub mod rationale;

use std::collections::HashSet;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::data::{Dataset, Interaction};
use crate::traits::Sketch;
use crate::{CoreError, Result};

/// How the user is described to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// N most recent interactions only.
    Recent,
    /// Sketch + N most recent interactions (SIREN).
    Sketch,
    /// Recent interactions extended with older ones up to the sketch prompt's length.
    MoreHistory,
    /// Every past interaction.
    FullHistory,
}

impl Strategy {
    /// Kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recent => "recent",
            Self::Sketch => "sketch",
            Self::MoreHistory => "more-history",
            Self::FullHistory => "full-history",
        }
    }
}

/// Which interactions a prompt's sketch is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SketchScope {
    /// The user's interactions strictly before the prompt's target (default): a training
    /// prompt never sees its own rating or later ones, as at valid/test time.
    BeforeTarget,
    /// One sketch per user from the whole history before the evaluated split, shared by every
    /// prompt of the user (training prompts then see their own and later ratings; kept for
    /// the ablation).
    PerUser,
}

impl SketchScope {
    /// Kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BeforeTarget => "before-target",
            Self::PerUser => "per-user",
        }
    }
}

/// What a prompt asks about the candidate. The system message, the user's part and the
/// candidate are the same for both, so the two prompts of one candidate share everything up to
/// the question (a scorer's per-user prefix serves both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// The rating the user will give (the paper's question; default).
    #[default]
    Rating,
    /// How likely the user is to choose the candidate next, answered on the same 1–5 scale
    /// (5 very likely): the question a reranker trained on retrieved lists answers
    /// (`[relevance]`, [`crate::stages::relevance`]).
    Relevance,
}

impl Task {
    /// Kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rating => "rating",
            Self::Relevance => "relevance",
        }
    }
}

/// How prompts are worded and items rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PromptStyle {
    /// Table 12 of the paper: its instructions, `Title, Cat|Cat|Cat, 4.0` lines.
    Paper,
    /// Short instructions and `Title | genre, genre | 4` lines ([`compact`]).
    Compact,
}

/// Prompt settings (`[prompt]` in a run config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PromptConfig {
    /// The item category word, singular ("movie", "book").
    pub category: String,
    /// Number of recent interactions listed (paper: 10 for Movies, 30 for Books).
    pub recent: usize,
    /// The user-modelling strategy.
    pub strategy: Strategy,
    /// Which interactions each prompt's sketch summarises (default `before-target`).
    pub sketch_scope: SketchScope,
    /// Wording and item rendering (default `paper`).
    pub style: PromptStyle,
    /// Removed: the sketch headers quote the sketch rule's own θ (`[sketch.params] theta`).
    /// Kept only to name the new key when an old config sets it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub like_threshold: Option<f32>,
}

impl Default for PromptConfig {
    fn default() -> Self {
        Self {
            category: "movie".into(),
            recent: 10,
            strategy: Strategy::Sketch,
            sketch_scope: SketchScope::BeforeTarget,
            style: PromptStyle::Paper,
            like_threshold: None,
        }
    }
}

impl PromptConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        if self.category.trim().is_empty() {
            return Err(CoreError::config("prompt.category", "must not be empty"));
        }
        if self.recent == 0 {
            return Err(CoreError::config("prompt.recent", "must be at least 1"));
        }
        if self.like_threshold.is_some() {
            return Err(CoreError::config(
                "prompt.like_threshold",
                "was removed: the sketch headers quote the sketch rule's threshold; set \
                 `theta` in [sketch.params] instead",
            ));
        }
        Ok(())
    }
}

/// A chat prompt: system and user messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prompt {
    /// System message.
    pub system: String,
    /// User message.
    pub user: String,
}

/// The Table 12 system prompt.
pub fn system_prompt(category: &str) -> String {
    format!(
        "You are an intelligent recommender system assistant. Your task is to predict the rating \
         (from 1.0 to 5.0) that a user will give to a candidate {category}, based on the user's \
         past behavior and preferences. You should first reason about how well the candidate item \
         aligns with the user's historical preferences, and then output a predicted rating. Your \
         reasoning and the final rating must be wrapped with <think> </think> and <answer> \
         </answer> tags, respectively. The final rating must be a numeric value between 1.0 and \
         5.0. Do not include any extra explanation after the <answer> tag."
    )
}

/// The sketch as text (the authors' format): liked topics, then disliked topics, one per line.
/// The headers quote the threshold of the rule that built the sketch. An empty sketch says so.
pub fn sketch_text(sketch: &Sketch, cfg: &PromptConfig) -> String {
    let mut parts = Vec::new();
    let cat = &cfg.category;
    let (like, dislike) = match sketch.threshold {
        Some(th) => (format!(" (ratings ≥ {th})"), format!(" (ratings < {th})")),
        None => (String::new(), String::new()),
    };
    if !sketch.likes.is_empty() {
        let lines: Vec<String> = sketch
            .likes
            .iter()
            .map(|t| format!("- {}", t.name))
            .collect();
        parts.push(format!(
            "The user shows preference for the following {cat} topics{like}:\n{}",
            lines.join("\n")
        ));
    }
    if !sketch.dislikes.is_empty() {
        let lines: Vec<String> = sketch
            .dislikes
            .iter()
            .map(|t| format!("- {}", t.name))
            .collect();
        parts.push(format!(
            "The user shows dislike for the following {cat} topics{dislike}:\n{}",
            lines.join("\n")
        ));
    }
    if parts.is_empty() {
        return format!("No clear {cat} topic preference is known for this user.");
    }
    parts.join("\n\n")
}

/// `Title, Genres` of an item (genres joined by `|`).
pub fn item_text(ds: &Dataset, item: u32) -> String {
    let it = &ds.items[item as usize];
    if it.categories.is_empty() {
        it.title.clone()
    } else {
        format!("{}, {}", it.title, it.categories.join("|"))
    }
}

/// The text the encoder embeds for an item (the authors' format, without empty fields):
/// `Title: ….\nCategory: a|b.\nFeature: f1###f2.`
pub fn encoder_text(ds: &Dataset, item: u32) -> String {
    let it = &ds.items[item as usize];
    let mut s = format!("Title: {}.", it.title);
    if !it.categories.is_empty() {
        s.push_str(&format!("\nCategory: {}.", it.categories.join("|")));
    }
    if !it.features.is_empty() {
        s.push_str(&format!("\nFeature: {}.", it.features.join("###")));
    }
    if !it.description.is_empty() {
        s.push_str(&format!("\nDescription: {}.", it.description));
    }
    s
}

/// One `Title, Genres, Rating` line (rating with one decimal, the same in every split).
pub fn interaction_line(ds: &Dataset, x: &Interaction) -> String {
    format!("{}, {:.1}", item_text(ds, x.item), x.rating)
}

/// Builds prompts for one dataset.
#[derive(Debug, Clone)]
pub struct PromptBuilder {
    /// Settings.
    pub cfg: PromptConfig,
    /// Category components most items share (compact style), from the first dataset seen.
    frequent: OnceLock<HashSet<String>>,
    /// What the prompts ask (default [`Task::Rating`]).
    task: Task,
}

impl PromptBuilder {
    /// A builder with checked settings.
    pub fn new(cfg: PromptConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(Self {
            cfg,
            frequent: OnceLock::new(),
            task: Task::Rating,
        })
    }

    /// The same builder asking `task` (a copy; the settings and the frequent components are
    /// kept).
    pub fn with_task(&self, task: Task) -> Self {
        Self {
            task,
            ..self.clone()
        }
    }

    /// What the prompts ask.
    pub fn task(&self) -> Task {
        self.task
    }

    /// The question that ends the user message.
    fn question(&self) -> String {
        let cat = &self.cfg.category;
        match (self.cfg.style, self.task) {
            (PromptStyle::Compact, Task::Rating) => "Rating?".into(),
            (PromptStyle::Compact, Task::Relevance) => {
                "Picked next? (1 unlikely - 5 very likely)".into()
            }
            (PromptStyle::Paper, Task::Rating) => {
                "Based on the above information, what rating will the user give?".into()
            }
            (PromptStyle::Paper, Task::Relevance) => format!(
                "Based on the above information, how likely is the user to choose this {cat} \
                 next, from 1.0 (unlikely) to 5.0 (very likely)?"
            ),
        }
    }

    /// An item as prompts show it (`Title, Genres` or, compact, `Title | genre, genre`).
    pub fn item(&self, ds: &Dataset, item: u32) -> String {
        match self.cfg.style {
            PromptStyle::Paper => item_text(ds, item),
            PromptStyle::Compact => {
                let f = self
                    .frequent
                    .get_or_init(|| compact::frequent_components(ds));
                compact::item_text(ds, item, f)
            }
        }
    }

    /// The informative genres of an item (store boilerplate and components most items share
    /// dropped, [`compact::genres`]), whatever the prompt style.
    pub fn genres(&self, ds: &Dataset, item: u32) -> Vec<String> {
        let f = self
            .frequent
            .get_or_init(|| compact::frequent_components(ds));
        compact::genres(&ds.items[item as usize].categories, f)
    }

    /// One rated line of the user's history.
    pub fn line(&self, ds: &Dataset, x: &Interaction) -> String {
        match self.cfg.style {
            PromptStyle::Paper => interaction_line(ds, x),
            PromptStyle::Compact => {
                format!("{} | {}", self.item(ds, x.item), compact::rating(x.rating))
            }
        }
    }

    /// The sketch as the prompt shows it.
    pub fn sketch(&self, sketch: &Sketch) -> String {
        match self.cfg.style {
            PromptStyle::Paper => sketch_text(sketch, &self.cfg),
            PromptStyle::Compact => {
                let names = |v: &[crate::traits::SketchTopic]| -> String {
                    v.iter()
                        .map(|t| t.name.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                };
                let mut s = Vec::new();
                if !sketch.likes.is_empty() {
                    s.push(format!("Liked topics: {}", names(&sketch.likes)));
                }
                if !sketch.dislikes.is_empty() {
                    s.push(format!("Disliked topics: {}", names(&sketch.dislikes)));
                }
                if s.is_empty() {
                    s.push("Liked topics: unknown".into());
                }
                s.join("\n")
            }
        }
    }

    /// The system message.
    pub fn system(&self) -> String {
        match self.cfg.style {
            PromptStyle::Paper => system_prompt(&self.cfg.category),
            PromptStyle::Compact => compact::system_prompt(&self.cfg.category),
        }
    }

    fn user_message(&self, sketch: Option<&str>, lines: &[String], candidate: &str) -> String {
        if self.cfg.style == PromptStyle::Compact {
            let mut s = String::new();
            if let Some(sk) = sketch {
                s.push_str(sk);
                s.push('\n');
            }
            s.push_str("Recent ratings (title | genres | rating):\n");
            s.push_str(&lines.join("\n"));
            s.push_str(&format!("\nCandidate: {candidate}\n{}", self.question()));
            return s;
        }
        let cat = &self.cfg.category;
        let mut s = String::new();
        if let Some(sk) = sketch {
            s.push_str("The user's long-term interest sketch is:\n");
            s.push_str(sk);
            s.push_str("\n\n");
        }
        s.push_str(&format!(
            "Below are the user's recent {cat} ratings in the format: Title, Genres, Rating. \
             Ratings range from 1.0 to 5.0.\n"
        ));
        s.push_str(&lines.join("\n"));
        s.push_str(&format!(
            "\n\nThe candidate {cat} is described as: {candidate}\n{}",
            self.question()
        ));
        s
    }

    /// The prompt for predicting `target` given the user's `past` interactions (oldest first)
    /// and sketch. `count_tokens` measures text for the `more-history` budget.
    pub fn build(
        &self,
        ds: &Dataset,
        past: &[Interaction],
        sketch: &Sketch,
        target: &Interaction,
        strategy: Strategy,
        count_tokens: &dyn Fn(&str) -> usize,
    ) -> Prompt {
        let lines: Vec<String> = past.iter().map(|x| self.line(ds, x)).collect();
        self.build_from(
            &lines,
            sketch,
            &self.item(ds, target.item),
            strategy,
            count_tokens,
        )
    }

    /// The prompt for a candidate shown as `candidate` (an [`PromptBuilder::item`] text) given
    /// the user's rated `lines` (oldest first, [`PromptBuilder::line`] texts) and sketch: what
    /// [`PromptBuilder::build`] does once the texts are made, for items outside a dataset too.
    pub fn build_from(
        &self,
        lines: &[String],
        sketch: &Sketch,
        candidate: &str,
        strategy: Strategy,
        count_tokens: &dyn Fn(&str) -> usize,
    ) -> Prompt {
        let n = self.cfg.recent;
        let recent = &lines[lines.len().saturating_sub(n)..];
        let candidate = candidate.to_string();
        let system = self.system();
        let user = match strategy {
            Strategy::Recent => self.user_message(None, recent, &candidate),
            Strategy::Sketch => self.user_message(Some(&self.sketch(sketch)), recent, &candidate),
            Strategy::FullHistory => self.user_message(None, lines, &candidate),
            Strategy::MoreHistory => {
                let budget = count_tokens(&self.user_message(
                    Some(&self.sketch(sketch)),
                    recent,
                    &candidate,
                ));
                // Add older lines (newest first) while the prompt stays within the budget.
                let mut start = lines.len().saturating_sub(n);
                let mut used = count_tokens(&self.user_message(None, recent, &candidate));
                while start > 0 {
                    let extra = count_tokens(&lines[start - 1]) + 1;
                    if used + extra > budget {
                        break;
                    }
                    used += extra;
                    start -= 1;
                }
                self.user_message(None, &lines[start..], &candidate)
            }
        };
        Prompt { system, user }
    }
}

/// Each user's interactions in time order: `history`, then (for test) the valid target.
pub fn timelines(ds: &Dataset, include_valid: bool) -> Vec<Vec<Interaction>> {
    let mut t: Vec<Vec<Interaction>> = vec![Vec::new(); ds.users.len()];
    for x in &ds.history {
        t[x.user as usize].push(*x);
    }
    if include_valid {
        for x in &ds.valid {
            t[x.user as usize].push(*x);
        }
    }
    t
}

/// The interactions of `target.user` before `target` in `timeline`: everything before the
/// target's own entry when it is part of the timeline (train targets), else the whole
/// timeline (valid and test targets come after it).
pub fn past_of<'a>(timeline: &'a [Interaction], target: &Interaction) -> &'a [Interaction] {
    match timeline
        .iter()
        .position(|x| x.item == target.item && x.timestamp == target.timestamp)
    {
        Some(i) => &timeline[..i],
        None => timeline,
    }
}

/// The interactions of a user before their rating of `item` in `timeline` (oldest first):
/// everything before the item's first entry, or the whole timeline when the user has not
/// rated it (a new candidate).
pub fn past_of_item(timeline: &[Interaction], item: u32) -> &[Interaction] {
    match timeline.iter().position(|x| x.item == item) {
        Some(i) => &timeline[..i],
        None => timeline,
    }
}

/// The text a decoder reads for a prompt: the chat template (system + user, generation
/// prompt added) when the tokenizer has one, else the two messages on separate lines.
pub fn render_prompt(tok: &crate::engine::TextTokenizer, p: &Prompt) -> crate::Result<String> {
    if tok.chat_template.is_some() {
        Ok(tok.apply_chat_template(
            &[
                crate::engine::Message::new("system", &p.system),
                crate::engine::Message::new("user", &p.user),
            ],
            true,
        )?)
    } else {
        Ok(format!("{}\n{}\n", p.system, p.user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Item;
    use crate::traits::SketchTopic;

    fn toy() -> (Dataset, Vec<Interaction>) {
        let mut ds = Dataset::new("toy");
        for k in 0..30 {
            let i = ds.intern_item(&format!("i{k}"));
            ds.items[i as usize] = Item {
                id: format!("i{k}"),
                title: format!("Film {k}"),
                categories: vec!["Drama".into(), "War".into()],
                ..Item::default()
            };
        }
        ds.intern_user("u");
        let past: Vec<Interaction> = (0..25)
            .map(|k| Interaction {
                user: 0,
                item: k,
                rating: (k % 5 + 1) as f32,
                timestamp: k as i64,
            })
            .collect();
        (ds, past)
    }

    fn sketch() -> Sketch {
        let t = |name: &str| SketchTopic {
            topic: 0,
            name: name.into(),
            support: 3,
            mean_rating: 4.5,
        };
        Sketch {
            likes: vec![t("War epics"), t("Quiet dramas")],
            dislikes: vec![t("Slapstick")],
            threshold: Some(4.0),
        }
    }

    #[test]
    fn sketch_headers_quote_the_rules_threshold() {
        let cfg = PromptConfig::default();
        let mut s = sketch();
        s.threshold = Some(3.5);
        let text = sketch_text(&s, &cfg);
        assert!(text.contains("topics (ratings ≥ 3.5):"), "{text}");
        assert!(text.contains("topics (ratings < 3.5):"), "{text}");
        assert!(!text.contains("≥ 4"), "{text}");
        s.threshold = None;
        assert!(sketch_text(&s, &cfg).contains("following movie topics:\n- War epics"));
        // The old key names its replacement.
        let old = PromptConfig {
            like_threshold: Some(4.0),
            ..PromptConfig::default()
        };
        let e = old.validate().unwrap_err().to_string();
        assert!(
            e.contains("prompt.like_threshold") && e.contains("theta"),
            "{e}"
        );
    }

    #[test]
    fn strategies_follow_table_12() {
        let (ds, past) = toy();
        let b = PromptBuilder::new(PromptConfig::default()).unwrap();
        let target = Interaction {
            user: 0,
            item: 29,
            rating: 4.0,
            timestamp: 99,
        };
        let words = |s: &str| s.split_whitespace().count();
        let p = b.build(&ds, &past, &sketch(), &target, Strategy::Sketch, &words);
        assert!(p.system.contains("candidate movie") && p.system.contains("<answer>"));
        assert!(p.user.starts_with("The user's long-term interest sketch is:\nThe user shows preference for the following movie topics (ratings ≥ 4):\n- War epics\n- Quiet dramas"));
        assert!(
            p.user
                .contains("dislike for the following movie topics (ratings < 4):\n- Slapstick")
        );
        assert!(p.user.contains("Film 24, Drama|War, 5.0"));
        assert!(p.user.contains("Film 15, Drama|War, 1.0") && !p.user.contains("Film 14,"));
        assert!(
            p.user
                .contains("The candidate movie is described as: Film 29, Drama|War\n")
        );
        let r = b.build(&ds, &past, &sketch(), &target, Strategy::Recent, &words);
        assert!(!r.user.contains("sketch") && r.user.contains("Film 15,"));
        let full = b.build(
            &ds,
            &past,
            &sketch(),
            &target,
            Strategy::FullHistory,
            &words,
        );
        assert!(full.user.contains("Film 0, Drama|War, 1.0"));
        // more-history: as long as the sketch prompt at most, longer than recent.
        let m = b.build(
            &ds,
            &past,
            &sketch(),
            &target,
            Strategy::MoreHistory,
            &words,
        );
        assert!(
            words(&m.user) <= words(&p.user),
            "{} > {}",
            words(&m.user),
            words(&p.user)
        );
        assert!(m.user.contains("Film 14,") && !m.user.contains("sketch"));
        // The category word comes from the config.
        let books = PromptBuilder::new(PromptConfig {
            category: "book".into(),
            ..PromptConfig::default()
        })
        .unwrap();
        let q = books.build(
            &ds,
            &past,
            &Sketch::default(),
            &target,
            Strategy::Sketch,
            &words,
        );
        assert!(
            q.user.contains("No clear book topic preference")
                && q.system.contains("candidate book")
        );
        assert!(!q.user.contains("movie"));
    }

    #[test]
    fn the_relevance_question_changes_only_the_question() {
        let (ds, past) = toy();
        let target = Interaction {
            user: 0,
            item: 29,
            rating: 4.0,
            timestamp: 99,
        };
        let words = |s: &str| s.split_whitespace().count();
        for style in [PromptStyle::Paper, PromptStyle::Compact] {
            let rating = PromptBuilder::new(PromptConfig {
                style,
                ..PromptConfig::default()
            })
            .unwrap();
            let relevance = rating.with_task(Task::Relevance);
            assert_eq!(relevance.task(), Task::Relevance);
            let a = rating.build(&ds, &past, &sketch(), &target, Strategy::Sketch, &words);
            let b = relevance.build(&ds, &past, &sketch(), &target, Strategy::Sketch, &words);
            assert_eq!(a.system, b.system);
            // Everything up to and including the candidate is shared.
            let cand = rating.item(&ds, 29);
            let cut = a.user.rfind(&cand).unwrap() + cand.len();
            assert_eq!(a.user[..cut], b.user[..cut], "{style:?}");
            assert_ne!(a.user, b.user);
            assert!(b.user.ends_with("5 very likely)") || b.user.ends_with("(very likely)?"));
        }
    }

    #[test]
    fn compact_prompts_carry_the_same_parts_in_fewer_words() {
        let (ds, past) = toy();
        let target = Interaction {
            user: 0,
            item: 29,
            rating: 4.0,
            timestamp: 99,
        };
        let words = |s: &str| s.split_whitespace().count();
        let paper = PromptBuilder::new(PromptConfig::default()).unwrap();
        let compact = PromptBuilder::new(PromptConfig {
            style: PromptStyle::Compact,
            ..PromptConfig::default()
        })
        .unwrap();
        let p = paper.build(&ds, &past, &sketch(), &target, Strategy::Sketch, &words);
        let c = compact.build(&ds, &past, &sketch(), &target, Strategy::Sketch, &words);
        assert!(
            c.user
                .contains("Liked topics: War epics; Quiet dramas\nDisliked topics: Slapstick")
        );
        // Every toy item is `Drama|War`: categories all items share say nothing and go.
        assert!(c.user.contains("Film 24 | 5\n"), "{}", c.user);
        assert!(
            c.user.ends_with("Candidate: Film 29\nRating?"),
            "{}",
            c.user
        );
        assert!(c.system.contains("<think>") && c.system.contains("<answer>"));
        let len = |p: &Prompt| words(&p.system) + words(&p.user);
        assert!(2 * len(&c) < len(&p), "{} vs {}", len(&c), len(&p));
    }

    #[test]
    fn past_stops_before_a_train_target() {
        let (_, past) = toy();
        assert_eq!(past_of(&past, &past[5]).len(), 5);
        let later = Interaction {
            user: 0,
            item: 29,
            rating: 3.0,
            timestamp: 100,
        };
        assert_eq!(past_of(&past, &later).len(), 25);
        // By item: a rated item's past stops before it; a new item sees everything.
        assert_eq!(past_of_item(&past, 7).len(), 7);
        assert_eq!(past_of_item(&past, 29).len(), 25);
    }
}
