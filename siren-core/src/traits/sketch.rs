use crate::Result;

/// One rated history item, reduced to its topic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TopicRating {
    /// Topic index.
    pub topic: usize,
    /// The user's rating, 1..=5.
    pub rating: f32,
}

/// A topic in a user's sketch.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SketchTopic {
    /// Topic index.
    pub topic: usize,
    /// Topic name.
    pub name: String,
    /// How many history items fall in this topic.
    pub support: usize,
    /// Their mean rating.
    pub mean_rating: f32,
}

/// A user's long-term interest sketch.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sketch {
    /// Liked topics, strongest first.
    pub likes: Vec<SketchTopic>,
    /// Disliked topics, strongest first.
    pub dislikes: Vec<SketchTopic>,
    /// The rating threshold of the rule that made the sketch (liked: ratings ≥ it), quoted in
    /// the prompt's sketch headers; `None` when the rule has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f32>,
}

/// Slot `sketch-builder`: liked and disliked topics from a user's history.
///
/// Contract: a topic is never both liked and disliked; topics without history items appear in
/// neither list; the result depends only on the inputs (no randomness).
pub trait SketchBuilder: Send + Sync {
    /// Builds the sketch of one user from the topics of their rated history items.
    fn build(&self, history: &[TopicRating], topic_names: &[String]) -> Result<Sketch>;
}
