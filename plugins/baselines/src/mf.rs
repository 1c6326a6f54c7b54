//! `mf`: biased matrix factorisation trained by stochastic gradient descent (Koren et al.,
//! "Matrix Factorization Techniques for Recommender Systems", 2009):
//!
//! r̂(u, i) = μ + b_u + b_i + p_u · q_i, minimising the squared error plus
//! `reg · (|p_u|² + |q_i|²) + reg_bias · (b_u² + b_i²)` one rating at a time, in a seeded
//! random order each epoch.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand_distr_lite::normal;
use serde::Deserialize;
use siren_core::data::{Dataset, Interaction};
use siren_core::traits::{RatingBaseline, RatingModel};
use siren_core::{CoreError, Plugin, Result};

/// Parameters of `mf`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MfParams {
    /// Latent factors per user and item. Default 32.
    #[serde(default = "d_factors")]
    pub factors: usize,
    /// Passes over the fit set. Default 30.
    #[serde(default = "d_epochs")]
    pub epochs: usize,
    /// SGD learning rate. Default 0.01.
    #[serde(default = "d_lr")]
    pub lr: f64,
    /// L2 weight on the factors. Default 0.05.
    #[serde(default = "d_reg")]
    pub reg: f64,
    /// L2 weight on the biases. Default 0.05.
    #[serde(default = "d_reg")]
    pub reg_bias: f64,
    /// Standard deviation of the initial factors. Default 0.1.
    #[serde(default = "d_init")]
    pub init_std: f64,
    /// Seed for initialisation and shuffling; default: the run's seed.
    #[serde(default)]
    pub seed: Option<u64>,
}

fn d_factors() -> usize {
    32
}
fn d_epochs() -> usize {
    30
}
fn d_lr() -> f64 {
    0.01
}
fn d_reg() -> f64 {
    0.05
}
fn d_init() -> f64 {
    0.1
}

impl Default for MfParams {
    fn default() -> Self {
        Self {
            factors: d_factors(),
            epochs: d_epochs(),
            lr: d_lr(),
            reg: d_reg(),
            reg_bias: d_reg(),
            init_std: d_init(),
            seed: None,
        }
    }
}

/// The `mf` baseline.
#[derive(Debug, Clone)]
pub struct MatrixFactorization {
    p: MfParams,
}

impl Plugin for MatrixFactorization {
    type Params = MfParams;
    const SUMMARY: &'static str =
        "biased matrix factorisation by SGD (factors, epochs, lr, reg, seed)";
    fn from_params(p: Self::Params) -> Result<Self> {
        let bad = |field: &str, msg: String| {
            Err(CoreError::config(
                "params of rating-baseline `mf`",
                format!("{field}: {msg}"),
            ))
        };
        if p.factors == 0 {
            return bad("factors", "must be ≥ 1".into());
        }
        if p.epochs == 0 {
            return bad("epochs", "must be ≥ 1".into());
        }
        for (name, v) in [
            ("lr", p.lr),
            ("reg", p.reg),
            ("reg_bias", p.reg_bias),
            ("init_std", p.init_std),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(name, format!("must be a finite number ≥ 0, got {v}"));
            }
        }
        if p.lr == 0.0 {
            return bad("lr", "must be > 0".into());
        }
        Ok(Self { p })
    }
}

siren_core::register_baseline!("mf", MatrixFactorization);

/// A fitted factorisation.
pub struct MfModel {
    mu: f32,
    k: usize,
    bu: Vec<f32>,
    bi: Vec<f32>,
    pu: Vec<f32>,
    qi: Vec<f32>,
}

impl MfModel {
    fn raw(&self, u: usize, i: usize) -> f32 {
        let mut r = self.mu;
        let known_u = u < self.bu.len();
        let known_i = i < self.bi.len();
        if known_u {
            r += self.bu[u];
        }
        if known_i {
            r += self.bi[i];
        }
        if known_u && known_i {
            let (p, q) = (
                &self.pu[u * self.k..(u + 1) * self.k],
                &self.qi[i * self.k..(i + 1) * self.k],
            );
            r += p.iter().zip(q).map(|(a, b)| a * b).sum::<f32>();
        }
        r
    }
}

impl RatingModel for MfModel {
    fn predict(&self, user: u32, item: u32) -> f32 {
        crate::clip(self.raw(user as usize, item as usize))
    }

    fn score(&self, user: u32, item: u32) -> f32 {
        let r = self.raw(user as usize, item as usize);
        if r.is_finite() { r } else { 3.0 }
    }
}

impl MatrixFactorization {
    /// Fits and returns the concrete model.
    pub fn fit_model(&self, ds: &Dataset, fit: &[Interaction], seed: u64) -> Result<MfModel> {
        let p = &self.p;
        let k = p.factors;
        let (nu, ni) = (ds.users.len(), ds.items.len());
        let mut rng = StdRng::seed_from_u64(p.seed.unwrap_or(seed));
        let mut init = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| (normal(&mut rng) * p.init_std) as f32)
                .collect()
        };
        let mut m = MfModel {
            mu: crate::global_mean_of(fit),
            k,
            bu: vec![0.0; nu],
            bi: vec![0.0; ni],
            pu: init(nu * k),
            qi: init(ni * k),
        };
        let (lr, reg, reg_b) = (p.lr as f32, p.reg as f32, p.reg_bias as f32);
        let mut order: Vec<usize> = (0..fit.len()).collect();
        let pb = siren_core::progress::bar(p.epochs as u64, "mf epochs");
        for epoch in 0..p.epochs {
            order.shuffle(&mut rng);
            let mut sq = 0f64;
            for &j in &order {
                let x = fit[j];
                let (u, i) = (x.user as usize, x.item as usize);
                if u >= nu || i >= ni {
                    return Err(CoreError::Data(format!(
                        "mf: interaction {x:?} indexes outside the dataset ({nu} users, {ni} items)"
                    )));
                }
                let e = x.rating - m.raw(u, i);
                sq += f64::from(e * e);
                m.bu[u] += lr * (e - reg_b * m.bu[u]);
                m.bi[i] += lr * (e - reg_b * m.bi[i]);
                for f in 0..k {
                    let pf = m.pu[u * k + f];
                    let qf = m.qi[i * k + f];
                    m.pu[u * k + f] += lr * (e * qf - reg * pf);
                    m.qi[i * k + f] += lr * (e * pf - reg * qf);
                }
            }
            let train_rmse = (sq / fit.len().max(1) as f64).sqrt();
            if !train_rmse.is_finite() {
                pb.abandon();
                return Err(CoreError::Numeric(format!(
                    "mf diverged at epoch {epoch} (training RMSE {train_rmse}); lower lr (now {})",
                    p.lr
                )));
            }
            tracing::debug!("mf epoch {epoch}: train RMSE {train_rmse:.4}");
            pb.inc(1);
        }
        pb.finish_and_clear();
        Ok(m)
    }
}

impl RatingBaseline for MatrixFactorization {
    fn fit(&self, ds: &Dataset, fit: &[Interaction], seed: u64) -> Result<Box<dyn RatingModel>> {
        Ok(Box::new(self.fit_model(ds, fit, seed)?))
    }
}

/// Standard normal samples by Box–Muller (keeps the dependency set small).
mod rand_distr_lite {
    use rand::Rng;

    pub fn normal(rng: &mut impl Rng) -> f64 {
        let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
        let u2: f64 = rng.random::<f64>();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_low_rank_matrix() {
        // A rank-1 rating matrix: r(u, i) = 1 + 4·a_u·b_i with a, b ∈ [0, 1].
        let mut ds = Dataset::new("lowrank");
        let (nu, ni) = (30u32, 20u32);
        let a: Vec<f32> = (0..nu).map(|u| u as f32 / (nu - 1) as f32).collect();
        let b: Vec<f32> = (0..ni)
            .map(|i| (i as f32 / (ni - 1) as f32).sqrt())
            .collect();
        let (mut fit, mut held) = (vec![], vec![]);
        for u in 0..nu {
            ds.intern_user(&format!("u{u}"));
        }
        for i in 0..ni {
            ds.intern_item(&format!("i{i}"));
        }
        for u in 0..nu {
            for i in 0..ni {
                let x = Interaction {
                    user: u,
                    item: i,
                    rating: 1.0 + 4.0 * a[u as usize] * b[i as usize],
                    timestamp: 0,
                };
                if (u + i) % 5 == 0 {
                    held.push(x)
                } else {
                    fit.push(x)
                }
            }
        }
        let mf = MatrixFactorization::from_params(MfParams {
            factors: 4,
            epochs: 200,
            lr: 0.02,
            reg: 0.001,
            reg_bias: 0.001,
            ..MfParams::default()
        })
        .unwrap();
        let model = mf.fit_model(&ds, &fit, 1).unwrap();
        let pred: Vec<f32> = held.iter().map(|x| model.predict(x.user, x.item)).collect();
        let truth: Vec<f32> = held.iter().map(|x| x.rating).collect();
        let rmse = siren_core::metrics::rmse(&pred, &truth).unwrap();
        let mean = crate::global_mean_of(&fit);
        let base = siren_core::metrics::rmse(&vec![mean; truth.len()], &truth).unwrap();
        assert!(
            rmse < 0.25 * base,
            "mf held-out RMSE {rmse} vs global mean {base}"
        );
    }

    #[test]
    fn invalid_params_fail_before_work() {
        let e = MatrixFactorization::from_params(MfParams {
            factors: 0,
            ..MfParams::default()
        });
        assert!(e.unwrap_err().to_string().contains("factors"));
        let e = MatrixFactorization::from_params(MfParams {
            lr: f64::NAN,
            ..MfParams::default()
        });
        assert!(e.unwrap_err().to_string().contains("lr"));
    }

    #[test]
    fn divergence_is_an_error() {
        let ds = siren_core::testkit::toy_dataset();
        let mf = MatrixFactorization::from_params(MfParams {
            lr: 1e6,
            ..MfParams::default()
        })
        .unwrap();
        let err = mf.fit_model(&ds, &ds.history, 1).err().expect("diverges");
        assert!(err.to_string().contains("diverged"), "{err}");
    }
}
