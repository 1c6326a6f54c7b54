//! `bpr-mf`: matrix factorisation trained by Bayesian Personalized Ranking (Rendle et al.,
//! "BPR: Bayesian Personalized Ranking from Implicit Feedback", 2009). Score
//! `x(u, i) = p_u · q_i + b_i`; for each interaction `(u, i)` and an item `j` drawn uniformly
//! among those `u` has not interacted with, one SGD step on `ln σ(x(u, i) − x(u, j))` minus
//! `reg · (|p_u|² + |q_i|² + |q_j|² + b_i² + b_j²)`, in a seeded random order each epoch.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Deserialize;
use siren_core::data::{Dataset, Interaction};
use siren_core::traits::{RetrievalModel, Retriever};
use siren_core::{Plugin, Result};

/// Parameters of `bpr-mf`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BprMfParams {
    /// Latent factors per user and item. Default 64.
    #[serde(default = "d_factors")]
    pub factors: usize,
    /// Passes over the interactions. Default 60.
    #[serde(default = "d_epochs")]
    pub epochs: usize,
    /// SGD learning rate. Default 0.05.
    #[serde(default = "d_lr")]
    pub lr: f64,
    /// L2 weight. Default 0.01.
    #[serde(default = "d_reg")]
    pub reg: f64,
    /// Standard deviation of the initial factors. Default 0.1.
    #[serde(default = "d_init")]
    pub init_std: f64,
    /// Seed for initialisation, order and negatives; default: the run's seed.
    #[serde(default)]
    pub seed: Option<u64>,
}

fn d_factors() -> usize {
    64
}
fn d_epochs() -> usize {
    60
}
fn d_lr() -> f64 {
    0.05
}
fn d_reg() -> f64 {
    0.01
}
fn d_init() -> f64 {
    0.1
}

impl Default for BprMfParams {
    fn default() -> Self {
        Self {
            factors: d_factors(),
            epochs: d_epochs(),
            lr: d_lr(),
            reg: d_reg(),
            init_std: d_init(),
            seed: None,
        }
    }
}

/// The `bpr-mf` retriever.
#[derive(Debug, Clone)]
pub struct BprMf {
    p: BprMfParams,
}

impl Plugin for BprMf {
    type Params = BprMfParams;
    const SUMMARY: &'static str =
        "matrix factorisation by BPR on implicit feedback (factors, epochs, lr, reg, seed)";
    fn from_params(p: Self::Params) -> Result<Self> {
        crate::check_counts("bpr-mf", &[("factors", p.factors), ("epochs", p.epochs)])?;
        crate::check_reals(
            "bpr-mf",
            &[("lr", p.lr), ("reg", p.reg), ("init_std", p.init_std)],
            &["lr"],
        )?;
        Ok(Self { p })
    }
}

siren_core::register_retriever!("bpr-mf", BprMf);

/// A fitted BPR factorisation.
pub struct BprMfModel {
    k: usize,
    pu: Vec<f32>,
    qi: Vec<f32>,
    bi: Vec<f32>,
}

impl RetrievalModel for BprMfModel {
    fn scores(&self, user: u32, scores: &mut [f32]) {
        let k = self.k;
        let u = user as usize;
        let p = self.pu.get(u * k..(u + 1) * k);
        for (i, s) in scores.iter_mut().enumerate() {
            let b = self.bi.get(i).copied().unwrap_or(0.0);
            *s = match (p, self.qi.get(i * k..(i + 1) * k)) {
                (Some(p), Some(q)) => crate::dot(p, q) + b,
                _ => b,
            };
        }
    }
}

impl BprMf {
    /// Fits and returns the concrete model.
    pub fn fit_model(&self, ds: &Dataset, fit: &[Interaction], seed: u64) -> Result<BprMfModel> {
        let p = &self.p;
        let k = p.factors;
        let user_items = crate::user_items("bpr-mf", ds, fit)?;
        let (nu, ni) = (ds.users.len(), ds.items.len() as u32);
        let mut rng = StdRng::seed_from_u64(p.seed.unwrap_or(seed));
        let std = p.init_std as f32;
        let mut m = BprMfModel {
            k,
            pu: (0..nu * k).map(|_| std * crate::normal(&mut rng)).collect(),
            qi: (0..ni as usize * k)
                .map(|_| std * crate::normal(&mut rng))
                .collect(),
            bi: vec![0.0; ni as usize],
        };
        // A user without interactions has no factors to learn: its scores are the biases.
        for (u, items) in user_items.iter().enumerate() {
            if items.is_empty() {
                m.pu[u * k..(u + 1) * k].fill(0.0);
            }
        }
        let mut pairs: Vec<(u32, u32)> = user_items
            .iter()
            .enumerate()
            .flat_map(|(u, items)| items.iter().map(move |&i| (u as u32, i)))
            .collect();
        let (lr, reg) = (p.lr as f32, p.reg as f32);
        let bar = siren_core::progress::bar(p.epochs as u64, "bpr-mf epochs");
        let mut diff = vec![0f32; k];
        for _ in 0..p.epochs {
            pairs.shuffle(&mut rng);
            for &(u, i) in &pairs {
                let Some(j) = crate::negative(&mut rng, &user_items[u as usize], ni) else {
                    continue;
                };
                let (u, i, j) = (u as usize, i as usize, j as usize);
                let (pu, qi, qj) = (u * k..(u + 1) * k, i * k..(i + 1) * k, j * k..(j + 1) * k);
                for (f, d) in diff.iter_mut().enumerate() {
                    *d = m.qi[qi.start + f] - m.qi[qj.start + f];
                }
                let x = crate::dot(&m.pu[pu.clone()], &diff) + m.bi[i] - m.bi[j];
                // d/dx ln σ(x) = σ(−x).
                let g = 1.0 / (1.0 + x.exp());
                for (f, d) in diff.iter().enumerate() {
                    let pf = m.pu[pu.start + f];
                    m.pu[pu.start + f] += lr * (g * d - reg * pf);
                    m.qi[qi.start + f] += lr * (g * pf - reg * m.qi[qi.start + f]);
                    m.qi[qj.start + f] += lr * (-g * pf - reg * m.qi[qj.start + f]);
                }
                m.bi[i] += lr * (g - reg * m.bi[i]);
                m.bi[j] += lr * (-g - reg * m.bi[j]);
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        Ok(m)
    }
}

impl Retriever for BprMf {
    fn fit(&self, ds: &Dataset, fit: &[Interaction], seed: u64) -> Result<Box<dyn RetrievalModel>> {
        Ok(Box::new(self.fit_model(ds, fit, seed)?))
    }
}
