//! `paper`: the paper's rule (§3.1): a topic is liked when the user's average rating of its
//! history items is at least θ, disliked when it is below θ (topics without items are neither).

use siren_core::traits::{Sketch, SketchBuilder, TopicRating};
use siren_core::{Plugin, Result};

use crate::RuleParams;

/// The `paper` sketch builder.
#[derive(Debug, Clone)]
pub struct PaperRule {
    p: RuleParams,
}

impl Plugin for PaperRule {
    type Params = RuleParams;
    const SUMMARY: &'static str = "paper rule: topic average ≥ θ → like, 0 < average < θ → dislike";
    fn from_params(p: RuleParams) -> Result<Self> {
        Ok(Self {
            p: p.validate("paper")?,
        })
    }
}

siren_core::register_sketch!("paper", PaperRule);

impl SketchBuilder for PaperRule {
    fn build(&self, history: &[TopicRating], names: &[String]) -> Result<Sketch> {
        let stats = crate::stats(history, names.len())?;
        let (mut likes, mut dislikes) = (Vec::new(), Vec::new());
        for (t, s) in stats.iter().enumerate() {
            if s.count < self.p.min_support {
                continue;
            }
            let topic = crate::topic(t, names, s);
            if topic.mean_rating >= self.p.theta {
                likes.push(topic);
            } else {
                dislikes.push(topic);
            }
        }
        Ok(crate::finish(likes, dislikes, &self.p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|t| format!("T{t}")).collect()
    }

    fn h(pairs: &[(usize, f32)]) -> Vec<TopicRating> {
        pairs
            .iter()
            .map(|&(topic, rating)| TopicRating { topic, rating })
            .collect()
    }

    #[test]
    fn averages_against_theta() {
        let rule = PaperRule::from_params(RuleParams::default()).unwrap();
        // T0: 5,3 → 4.0 = θ → like (tie goes to like). T1: 4,3 → 3.5 → dislike.
        // T2: 2 → dislike. T3: no items → absent. T4: 5,5,4 → like with support 3.
        let s = rule
            .build(
                &h(&[
                    (0, 5.0),
                    (0, 3.0),
                    (1, 4.0),
                    (1, 3.0),
                    (2, 2.0),
                    (4, 5.0),
                    (4, 5.0),
                    (4, 4.0),
                ]),
                &names(5),
            )
            .unwrap();
        let ids =
            |v: &[siren_core::traits::SketchTopic]| v.iter().map(|t| t.topic).collect::<Vec<_>>();
        assert_eq!(ids(&s.likes), vec![4, 0], "by support, then mean");
        assert_eq!(ids(&s.dislikes), vec![1, 2]);
        assert_eq!(s.likes[0].support, 3);
        assert!((s.likes[0].mean_rating - 14.0 / 3.0).abs() < 1e-6);
        assert_eq!(s.likes[1].name, "T0");
        // Empty history → empty sketch.
        let empty = rule.build(&[], &names(5)).unwrap();
        assert!(empty.likes.is_empty() && empty.dislikes.is_empty());
        assert_eq!(
            empty.threshold,
            Some(4.0),
            "the sketch carries the rule's θ"
        );
        // Limits and min support.
        let rule = PaperRule::from_params(RuleParams {
            max_likes: 1,
            min_support: 2,
            ..RuleParams::default()
        })
        .unwrap();
        let s = rule
            .build(
                &h(&[(0, 5.0), (0, 3.0), (2, 2.0), (4, 5.0), (4, 5.0), (4, 4.0)]),
                &names(5),
            )
            .unwrap();
        assert_eq!(ids(&s.likes), vec![4]);
        assert!(s.dislikes.is_empty());
    }

    #[test]
    fn bad_input_is_an_error() {
        let rule = PaperRule::from_params(RuleParams::default()).unwrap();
        assert!(
            rule.build(&h(&[(7, 5.0)]), &names(5))
                .unwrap_err()
                .to_string()
                .contains("topic 7")
        );
        assert!(
            rule.build(&h(&[(0, 0.0)]), &names(5))
                .unwrap_err()
                .to_string()
                .contains("rating 0")
        );
        assert!(
            PaperRule::from_params(RuleParams {
                theta: 9.0,
                ..RuleParams::default()
            })
            .is_err()
        );
    }
}
