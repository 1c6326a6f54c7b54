//! `baseline-only`: Surprise's `BaselineOnly`, `r̂ = μ + b_u + b_i`, with the biases fitted by
//! alternating least squares as Surprise does (Koren 2010, §2.1): each epoch sets every item
//! bias to `Σ_{u∈R(i)} (r − μ − b_u) / (reg_i + |R(i)|)`, then every user bias to
//! `Σ_{i∈R(u)} (r − μ − b_i) / (reg_u + |R(u)|)`. Surprise's defaults: 10 epochs,
//! `reg_i` 10, `reg_u` 15. Unknown users and items have bias 0.

use serde::Deserialize;
use siren_core::data::{Dataset, Interaction};
use siren_core::traits::{RatingBaseline, RatingModel};
use siren_core::{CoreError, Plugin, Result};

/// Parameters of `baseline-only` (Surprise's `bsl_options` for ALS).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BaselineOnlyParams {
    /// ALS epochs (default 10).
    pub epochs: usize,
    /// Regularisation of the item biases (default 10).
    pub reg_i: f64,
    /// Regularisation of the user biases (default 15).
    pub reg_u: f64,
}

impl Default for BaselineOnlyParams {
    fn default() -> Self {
        Self {
            epochs: 10,
            reg_i: 10.0,
            reg_u: 15.0,
        }
    }
}

/// The `baseline-only` baseline.
#[derive(Debug, Clone)]
pub struct BaselineOnly {
    p: BaselineOnlyParams,
}

impl Plugin for BaselineOnly {
    type Params = BaselineOnlyParams;
    const SUMMARY: &'static str =
        "Surprise's BaselineOnly: global mean + user and item biases fitted by ALS";
    fn from_params(p: Self::Params) -> Result<Self> {
        if !(p.reg_i.is_finite() && p.reg_i >= 0.0 && p.reg_u.is_finite() && p.reg_u >= 0.0) {
            return Err(CoreError::config(
                "params of rating-baseline `baseline-only`",
                "reg_i and reg_u must be finite numbers ≥ 0",
            ));
        }
        Ok(Self { p })
    }
}

siren_core::register_baseline!("baseline-only", BaselineOnly);

/// The fitted biases.
#[derive(Debug, Clone)]
pub struct Biases {
    /// Global mean μ.
    pub mu: f64,
    /// User biases.
    pub user: Vec<f64>,
    /// Item biases.
    pub item: Vec<f64>,
}

impl RatingModel for Biases {
    fn predict(&self, user: u32, item: u32) -> f32 {
        crate::clip(self.score(user, item))
    }

    fn score(&self, user: u32, item: u32) -> f32 {
        let bu = self.user.get(user as usize).copied().unwrap_or(0.0);
        let bi = self.item.get(item as usize).copied().unwrap_or(0.0);
        let r = (self.mu + bu + bi) as f32;
        if r.is_finite() { r } else { 3.0 }
    }
}

/// ALS fit of the biases (see the module docs).
pub fn fit_biases(
    n_users: usize,
    n_items: usize,
    fit: &[Interaction],
    p: &BaselineOnlyParams,
) -> Biases {
    let mu = f64::from(crate::global_mean_of(fit));
    let (mut bu, mut bi) = (vec![0f64; n_users], vec![0f64; n_items]);
    let (mut nu, mut ni) = (vec![0f64; n_users], vec![0f64; n_items]);
    for x in fit {
        nu[x.user as usize] += 1.0;
        ni[x.item as usize] += 1.0;
    }
    for _ in 0..p.epochs {
        let mut s = vec![0f64; n_items];
        for x in fit {
            s[x.item as usize] += f64::from(x.rating) - mu - bu[x.user as usize];
        }
        for i in 0..n_items {
            bi[i] = if ni[i] > 0.0 {
                s[i] / (p.reg_i + ni[i])
            } else {
                0.0
            };
        }
        let mut s = vec![0f64; n_users];
        for x in fit {
            s[x.user as usize] += f64::from(x.rating) - mu - bi[x.item as usize];
        }
        for u in 0..n_users {
            bu[u] = if nu[u] > 0.0 {
                s[u] / (p.reg_u + nu[u])
            } else {
                0.0
            };
        }
    }
    Biases {
        mu,
        user: bu,
        item: bi,
    }
}

impl RatingBaseline for BaselineOnly {
    fn fit(&self, ds: &Dataset, fit: &[Interaction], _: u64) -> Result<Box<dyn RatingModel>> {
        Ok(Box::new(fit_biases(
            ds.users.len(),
            ds.items.len(),
            fit,
            &self.p,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x(user: u32, item: u32, rating: f32) -> Interaction {
        Interaction {
            user,
            item,
            rating,
            timestamp: 0,
        }
    }

    #[test]
    fn one_als_epoch_by_hand() {
        // μ = (5 + 3 + 1) / 3 = 3. Epoch 1, items first (b_u = 0):
        //   b_x = ((5−3) + (1−3)) / (1 + 2) = 0;  b_y = (3−3) / (1 + 1) = 0.
        // Then users: b_a = ((5−3−0) + (3−3−0)) / (2 + 2) = 0.5;  b_b = (1−3−0) / (2 + 1) = −2/3.
        let fit = [x(0, 0, 5.0), x(0, 1, 3.0), x(1, 0, 1.0)];
        let p = BaselineOnlyParams {
            epochs: 1,
            reg_i: 1.0,
            reg_u: 2.0,
        };
        let b = fit_biases(2, 2, &fit, &p);
        assert!((b.mu - 3.0).abs() < 1e-12);
        assert!(b.item.iter().all(|v| v.abs() < 1e-12), "{:?}", b.item);
        assert!((b.user[0] - 0.5).abs() < 1e-12 && (b.user[1] + 2.0 / 3.0).abs() < 1e-12);
        // Epoch 2, items: b_x = ((5−3−0.5) + (1−3+2/3)) / 3 = (1.5 − 4/3) / 3 = 1/18.
        let b = fit_biases(2, 2, &fit, &BaselineOnlyParams { epochs: 2, ..p });
        assert!((b.item[0] - 1.0 / 18.0).abs() < 1e-12, "{:?}", b.item);
        assert!((b.predict(0, 0) as f64 - (3.0 + b.user[0] + 1.0 / 18.0)).abs() < 1e-6);
        // Unknown ids: μ.
        assert!((b.predict(9, 9) - 3.0).abs() < 1e-6);
    }
}
