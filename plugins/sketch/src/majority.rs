//! `majority`: the rule of the authors' code (METHOD.md): per topic, count ratings ≥ θ
//! (positive) against the rest (negative); liked when positives outnumber negatives, disliked
//! when negatives outnumber positives, left out on a tie.

use siren_core::traits::{Sketch, SketchBuilder, TopicRating};
use siren_core::{Plugin, Result};

use crate::RuleParams;

/// The `majority` sketch builder.
#[derive(Debug, Clone)]
pub struct MajorityRule {
    p: RuleParams,
}

impl Plugin for MajorityRule {
    type Params = RuleParams;
    const SUMMARY: &'static str =
        "authors' code rule: more ratings ≥ θ than below → like, fewer → dislike, tie → neither";
    fn from_params(p: RuleParams) -> Result<Self> {
        Ok(Self {
            p: p.validate("majority")?,
        })
    }
}

siren_core::register_sketch!("majority", MajorityRule);

impl SketchBuilder for MajorityRule {
    fn build(&self, history: &[TopicRating], names: &[String]) -> Result<Sketch> {
        let stats = crate::stats_with(history, names.len(), self.p.theta)?;
        let (mut likes, mut dislikes) = (Vec::new(), Vec::new());
        for (t, s) in stats.iter().enumerate() {
            if s.count < self.p.min_support {
                continue;
            }
            let neg = s.count - s.pos;
            match s.pos.cmp(&neg) {
                std::cmp::Ordering::Greater => likes.push(crate::topic(t, names, s)),
                std::cmp::Ordering::Less => dislikes.push(crate::topic(t, names, s)),
                std::cmp::Ordering::Equal => {}
            }
        }
        Ok(crate::finish(likes, dislikes, &self.p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_against_theta_and_drops_ties() {
        let names: Vec<String> = (0..4).map(|t| format!("T{t}")).collect();
        let h = |pairs: &[(usize, f32)]| -> Vec<TopicRating> {
            pairs
                .iter()
                .map(|&(topic, rating)| TopicRating { topic, rating })
                .collect()
        };
        let rule = MajorityRule::from_params(crate::RuleParams::default()).unwrap();
        // T0: 5,4,1 → 2 pos vs 1 neg → like (its mean 3.33 would be a dislike by the paper).
        // T1: 5,1 → tie → dropped. T2: 3,3,5 → dislike. T3: none.
        let s = rule
            .build(
                &h(&[
                    (0, 5.0),
                    (0, 4.0),
                    (0, 1.0),
                    (1, 5.0),
                    (1, 1.0),
                    (2, 3.0),
                    (2, 3.0),
                    (2, 5.0),
                ]),
                &names,
            )
            .unwrap();
        assert_eq!(s.likes.iter().map(|t| t.topic).collect::<Vec<_>>(), vec![0]);
        assert_eq!(
            s.dislikes.iter().map(|t| t.topic).collect::<Vec<_>>(),
            vec![2]
        );
        let paper = crate::paper::PaperRule::from_params(crate::RuleParams::default()).unwrap();
        let p = paper
            .build(&h(&[(0, 5.0), (0, 4.0), (0, 1.0)]), &names)
            .unwrap();
        assert!(
            p.likes.is_empty() && p.dislikes[0].topic == 0,
            "the rules differ here"
        );
        // A single 4 is positive (≥ θ).
        let s = rule.build(&h(&[(3, 4.0)]), &names).unwrap();
        assert_eq!(s.likes[0].topic, 3);
    }
}
