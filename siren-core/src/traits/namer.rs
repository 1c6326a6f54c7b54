use crate::Result;

/// Slot `topic-namer`: gives each topic a short name.
///
/// Contract: `central_texts[t]` are the texts of topic `t`'s most central items; returns one
/// non-empty name per topic, all distinct (duplicates get a suffix), deterministic for a seed.
pub trait TopicNamer: Send + Sync {
    /// Names every topic.
    fn name(&self, central_texts: &[Vec<String>], seed: u64) -> Result<Vec<String>>;
}
