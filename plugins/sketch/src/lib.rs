//! Long-term interest sketches (paper §3.1): the sketch builders [`paper`] and [`majority`]
//! (slot `sketch-builder`) and the topic namers [`keywords`] and [`llm`] (slot `topic-namer`).
#![warn(missing_docs)]

pub mod keywords;
pub mod llm;
pub mod majority;
pub mod paper;

use serde::Deserialize;
use siren_core::traits::{Sketch, SketchTopic, TopicRating};
use siren_core::{CoreError, Result};

/// Parameters shared by both sketch rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuleParams {
    /// Like threshold θ on ratings (default 4).
    pub theta: f32,
    /// At most this many liked topics, by support (0 = all; default 0).
    pub max_likes: usize,
    /// At most this many disliked topics, by support (0 = all; default 0).
    pub max_dislikes: usize,
    /// Topics with fewer history items are left out (default 1).
    pub min_support: usize,
}

impl Default for RuleParams {
    fn default() -> Self {
        Self {
            theta: 4.0,
            max_likes: 0,
            max_dislikes: 0,
            min_support: 1,
        }
    }
}

impl RuleParams {
    pub(crate) fn validate(self, slot: &str) -> Result<Self> {
        if !(1.0..=5.0).contains(&self.theta) {
            return Err(CoreError::config(
                format!("sketch-builder {slot}.theta"),
                "must be in [1, 5]",
            ));
        }
        if self.min_support == 0 {
            return Err(CoreError::config(
                format!("sketch-builder {slot}.min_support"),
                "must be at least 1",
            ));
        }
        Ok(self)
    }
}

/// Per-topic statistics of one user's history.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TopicStats {
    pub count: usize,
    pub sum: f32,
    pub pos: usize,
}

/// Groups a history by topic (validating topic indices and ratings).
pub(crate) fn stats(history: &[TopicRating], n_topics: usize) -> Result<Vec<TopicStats>> {
    stats_with(history, n_topics, f32::INFINITY)
}

pub(crate) fn stats_with(
    history: &[TopicRating],
    n_topics: usize,
    theta: f32,
) -> Result<Vec<TopicStats>> {
    let mut s = vec![TopicStats::default(); n_topics];
    for h in history {
        if h.topic >= n_topics {
            return Err(CoreError::Data(format!(
                "sketch: topic {} out of range ({n_topics} topics)",
                h.topic
            )));
        }
        if !(1.0..=5.0).contains(&h.rating) {
            return Err(CoreError::Data(format!(
                "sketch: rating {} outside [1, 5]",
                h.rating
            )));
        }
        let t = &mut s[h.topic];
        t.count += 1;
        t.sum += h.rating;
        if h.rating >= theta {
            t.pos += 1;
        }
    }
    Ok(s)
}

/// Orders and truncates the two sides: by support (descending), then mean rating (higher
/// first for likes, lower first for dislikes), then topic index.
pub(crate) fn finish(
    mut likes: Vec<SketchTopic>,
    mut dislikes: Vec<SketchTopic>,
    p: &RuleParams,
) -> Sketch {
    likes.sort_by(|a, b| {
        b.support
            .cmp(&a.support)
            .then(b.mean_rating.total_cmp(&a.mean_rating))
            .then(a.topic.cmp(&b.topic))
    });
    dislikes.sort_by(|a, b| {
        b.support
            .cmp(&a.support)
            .then(a.mean_rating.total_cmp(&b.mean_rating))
            .then(a.topic.cmp(&b.topic))
    });
    if p.max_likes > 0 {
        likes.truncate(p.max_likes);
    }
    if p.max_dislikes > 0 {
        dislikes.truncate(p.max_dislikes);
    }
    Sketch {
        likes,
        dislikes,
        threshold: Some(p.theta),
    }
}

pub(crate) fn topic(t: usize, names: &[String], s: &TopicStats) -> SketchTopic {
    SketchTopic {
        topic: t,
        name: names
            .get(t)
            .cloned()
            .unwrap_or_else(|| format!("topic {t}")),
        support: s.count,
        mean_rating: s.sum / s.count as f32,
    }
}
