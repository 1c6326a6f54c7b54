//! `regression`: Eq. 11 of the paper,
//! `R = s_format + 2 − (4 / E_max)·|clip(r̂, a, b) − r|` with `E_max = b − a`; the rating term
//! is −2 when the answer does not parse, so it always lies in [−2, 2].

use siren_core::traits::{Reward, RewardParts};
use siren_core::{Plugin, Result};

use crate::Scale;

/// The `regression` reward.
#[derive(Debug, Clone)]
pub struct Regression {
    s: Scale,
}

impl Plugin for Regression {
    type Params = Scale;
    const SUMMARY: &'static str =
        "Eq. 11: format ±1 + (2 − 4/E_max·|clip(r̂) − r|), −2 when unparsable";
    fn from_params(s: Scale) -> Result<Self> {
        Ok(Self {
            s: s.validate("regression")?,
        })
    }
}

siren_core::register_reward!("regression", Regression);

impl Reward for Regression {
    fn score(&self, completion: &str, truth: f32) -> RewardParts {
        let predicted = siren_core::answer::parse_rating(completion);
        let (a, b) = (self.s.min_rating, self.s.max_rating);
        let rating = match predicted {
            Some(r) => 2.0 - 4.0 / (b - a) * (r.clamp(a, b) - truth).abs(),
            None => -2.0,
        };
        RewardParts {
            format: crate::format_term(completion),
            rating,
            predicted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r() -> Regression {
        Regression::from_params(Scale::default()).unwrap()
    }

    #[test]
    fn eq_11_on_hand_written_completions() {
        let s = |c: &str, t: f32| r().score(c, t);
        // Well-formed, exact: 1 + 2.
        let p = s(
            "<think>war films, rated high</think>\n<answer>4</answer>",
            4.0,
        );
        assert_eq!(
            (p.format, p.rating, p.predicted, p.total()),
            (1.0, 2.0, Some(4.0), 3.0)
        );
        // One star off: 2 − 4/4·1 = 1.
        assert_eq!(s("<think>x</think><answer>5</answer>", 4.0).rating, 1.0);
        // Maximal error: 2 − 4 = −2.
        assert_eq!(s("<think>x</think><answer>1</answer>", 5.0).rating, -2.0);
        // "4.5" parses: 2 − 0.5 = 1.5.
        assert_eq!(s("<think>x</think><answer>4.5</answer>", 4.0).rating, 1.5);
        // Out of range is clipped to [1, 5]: 7 → 5, −3 → 1.
        assert_eq!(s("<think>x</think><answer>7</answer>", 5.0).rating, 2.0);
        assert_eq!(s("<think>x</think><answer>-3</answer>", 2.0).rating, 1.0);
        // Missing tags: format −1, the answer still scores.
        let p = s("<answer>4</answer>", 4.0);
        assert_eq!((p.format, p.rating), (-1.0, 2.0));
        // Tags twice: format −1.
        assert_eq!(
            s("<think>a</think><think>b</think><answer>4</answer>", 4.0).format,
            -1.0
        );
        // Unparsable ("five", empty, nothing): rating −2.
        for c in [
            "<think>x</think><answer>five</answer>",
            "<think>x</think><answer></answer>",
            "",
        ] {
            let p = s(c, 3.0);
            assert_eq!((p.rating, p.predicted), (-2.0, None), "{c:?}");
        }
        assert_eq!(s("", 3.0).total(), -3.0);
    }

    #[test]
    fn other_scales_use_their_range() {
        let r = Regression::from_params(Scale {
            min_rating: 0.0,
            max_rating: 10.0,
        })
        .unwrap();
        // E_max = 10: one point off costs 0.4.
        assert!((r.score("<think>x</think><answer>6</answer>", 5.0).rating - 1.6).abs() < 1e-6);
        assert!(
            Regression::from_params(Scale {
                min_rating: 5.0,
                max_rating: 1.0
            })
            .is_err()
        );
    }
}
