//! `binary`: the exact-match ablation of Table 7: format ±1 plus +2 when the parsed rating
//! equals the truth, −2 otherwise (including unparsable answers).

use siren_core::traits::{Reward, RewardParts};
use siren_core::{Plugin, Result};

use crate::Scale;

/// The `binary` reward.
#[derive(Debug, Clone)]
pub struct Binary;

impl Plugin for Binary {
    type Params = Scale;
    const SUMMARY: &'static str = "exact match: format ±1 + (+2 if r̂ = r else −2)";
    fn from_params(s: Scale) -> Result<Self> {
        s.validate("binary")?;
        Ok(Self)
    }
}

siren_core::register_reward!("binary", Binary);

impl Reward for Binary {
    fn score(&self, completion: &str, truth: f32) -> RewardParts {
        let predicted = siren_core::answer::parse_rating(completion);
        let hit = predicted.is_some_and(|r| (r - truth).abs() < 1e-6);
        RewardParts {
            format: crate::format_term(completion),
            rating: if hit { 2.0 } else { -2.0 },
            predicted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_match_only() {
        let b = Binary;
        assert_eq!(
            b.score("<think>x</think><answer>4</answer>", 4.0).total(),
            3.0
        );
        assert_eq!(
            b.score("<think>x</think><answer>4.0</answer>", 4.0).rating,
            2.0
        );
        assert_eq!(
            b.score("<think>x</think><answer>4.5</answer>", 4.0).rating,
            -2.0
        );
        assert_eq!(
            b.score("<think>x</think><answer>5</answer>", 4.0).total(),
            -1.0
        );
        assert_eq!(b.score("<answer>4</answer>", 4.0).total(), 1.0);
        assert_eq!(
            b.score("<think>x</think><answer>four</answer>", 4.0).rating,
            -2.0
        );
        assert_eq!(b.score("", 4.0).total(), -3.0);
    }
}
