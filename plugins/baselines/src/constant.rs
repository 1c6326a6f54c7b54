//! `constant`: one rating for every pair: a given `value`, or a statistic of the fit set's
//! ratings (`mode`, the default; `median`; `mean`). On the paper's Movies split the mode is 5,
//! and always-5 has the lowest MAE of the classic baselines (0.7813 on valid): MAE rewards the
//! median of the skewed label distribution.

use serde::Deserialize;
use siren_core::data::{Dataset, Interaction};
use siren_core::traits::{RatingBaseline, RatingModel};
use siren_core::{CoreError, Plugin, Result};

/// Which constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Statistic {
    /// The most frequent rating of the fit set (ties: the higher rating).
    #[default]
    Mode,
    /// The median rating of the fit set (lower middle for an even count).
    Median,
    /// The mean rating of the fit set.
    Mean,
}

/// Parameters of `constant`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConstantParams {
    /// A fixed rating in [1, 5]; when set, `statistic` is not used.
    pub value: Option<f32>,
    /// The statistic of the fit ratings to predict (default `mode`).
    pub statistic: Statistic,
}

/// The `constant` baseline.
#[derive(Debug, Clone)]
pub struct Constant {
    p: ConstantParams,
}

impl Plugin for Constant {
    type Params = ConstantParams;
    const SUMMARY: &'static str =
        "one rating for every pair: a fixed value or the mode/median/mean of the fit set";
    fn from_params(p: Self::Params) -> Result<Self> {
        if let Some(v) = p.value
            && !(1.0..=5.0).contains(&v)
        {
            return Err(CoreError::config(
                "params of rating-baseline `constant`",
                format!("value must be in [1, 5], got {v}"),
            ));
        }
        Ok(Self { p })
    }
}

siren_core::register_baseline!("constant", Constant);

struct Fitted(f32);

impl RatingModel for Fitted {
    fn predict(&self, _: u32, _: u32) -> f32 {
        self.0
    }
}

/// The statistic of `ratings` (3, the middle of the scale, when empty).
pub fn statistic(ratings: &[f32], s: Statistic) -> f32 {
    if ratings.is_empty() {
        return 3.0;
    }
    match s {
        Statistic::Mean => {
            (ratings.iter().map(|&r| f64::from(r)).sum::<f64>() / ratings.len() as f64) as f32
        }
        Statistic::Median => {
            let mut v = ratings.to_vec();
            v.sort_by(f32::total_cmp);
            v[(v.len() - 1) / 2]
        }
        Statistic::Mode => {
            let mut v = ratings.to_vec();
            v.sort_by(f32::total_cmp);
            let (mut best, mut best_n) = (v[0], 0usize);
            let mut i = 0;
            while i < v.len() {
                let j = v[i..].iter().take_while(|&&x| x == v[i]).count();
                if j >= best_n {
                    (best, best_n) = (v[i], j);
                }
                i += j;
            }
            best
        }
    }
}

impl RatingBaseline for Constant {
    fn fit(&self, _: &Dataset, fit: &[Interaction], _: u64) -> Result<Box<dyn RatingModel>> {
        let r = match self.p.value {
            Some(v) => v,
            None => {
                let ratings: Vec<f32> = fit.iter().map(|x| x.rating).collect();
                statistic(&ratings, self.p.statistic)
            }
        };
        Ok(Box::new(Fitted(crate::clip(r))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_by_hand() {
        let r = [5.0, 3.0, 5.0, 1.0, 4.0, 3.0];
        assert_eq!(
            statistic(&r, Statistic::Mode),
            5.0,
            "ties go to the higher rating"
        );
        assert_eq!(
            statistic(&r, Statistic::Median),
            3.0,
            "sorted 1 3 3 4 5 5: lower middle"
        );
        assert!((statistic(&r, Statistic::Mean) - 21.0 / 6.0).abs() < 1e-6);
        assert_eq!(statistic(&[2.0, 4.0, 4.0], Statistic::Mode), 4.0);
        assert_eq!(statistic(&[], Statistic::Mode), 3.0);
        assert!(
            Constant::from_params(ConstantParams {
                value: Some(6.0),
                ..ConstantParams::default()
            })
            .is_err()
        );
    }
}
