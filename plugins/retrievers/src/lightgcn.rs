//! `lightgcn`: LightGCN (He et al., "LightGCN: Simplifying and Powering Graph Convolution
//! Network for Recommendation", SIGIR 2020), the retriever of the paper's reranking protocol.
//!
//! Users and items are the nodes of one graph with an edge per interaction of the fit set;
//! `Â = D^{-1/2} A D^{-1/2}`. From free embeddings `E⁰`, each layer is `E^{k+1} = Â E^k` (no
//! weights, no non-linearity), and the final embeddings are the layer mean
//! `E = Σ_{k=0..K} E^k / (K + 1)`; the score of item `i` for user `u` is `e_u · e_i`. Training
//! minimises the BPR loss `−ln σ(e_u·e_i − e_u·e_j)` over mini-batches of (user, item, an item
//! the user has not interacted with) plus `reg/2 · (|e⁰_u|² + |e⁰_i|² + |e⁰_j|²)`, averaged over
//! the batch, with Adam on `E⁰`. As `Â` is symmetric, the gradient of `E⁰` is the same
//! propagation applied to the gradient of `E`.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Deserialize;
use siren_core::data::{Dataset, Interaction};
use siren_core::traits::{RetrievalModel, Retriever};
use siren_core::{Plugin, Result};

/// Parameters of `lightgcn`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LightGcnParams {
    /// Embedding size. Default 64 (the paper's).
    #[serde(default = "d_dim")]
    pub dim: usize,
    /// Propagation layers K. Default 3 (the paper's).
    #[serde(default = "d_layers")]
    pub layers: usize,
    /// Passes over the interactions. Default 100 (on Movies valid, 50, 100 and 200 epochs at
    /// lr 0.001 gave hit rate@20 0.0396, 0.0415, 0.0369; docs/ranking.md).
    #[serde(default = "d_epochs")]
    pub epochs: usize,
    /// Interactions per mini-batch. Default 2048 (the paper's).
    #[serde(default = "d_batch")]
    pub batch: usize,
    /// Adam learning rate. Default 0.001 (the paper's).
    #[serde(default = "d_lr")]
    pub lr: f64,
    /// L2 weight on the batch's layer-0 embeddings. Default 1e-4 (the paper's).
    #[serde(default = "d_reg")]
    pub reg: f64,
    /// Standard deviation of the initial embeddings. Default 0.1.
    #[serde(default = "d_init")]
    pub init_std: f64,
    /// Seed for initialisation, order and negatives; default: the run's seed.
    #[serde(default)]
    pub seed: Option<u64>,
}

fn d_dim() -> usize {
    64
}
fn d_layers() -> usize {
    3
}
fn d_epochs() -> usize {
    100
}
fn d_batch() -> usize {
    2048
}
fn d_lr() -> f64 {
    0.001
}
fn d_reg() -> f64 {
    1e-4
}
fn d_init() -> f64 {
    0.1
}

impl Default for LightGcnParams {
    fn default() -> Self {
        Self {
            dim: d_dim(),
            layers: d_layers(),
            epochs: d_epochs(),
            batch: d_batch(),
            lr: d_lr(),
            reg: d_reg(),
            init_std: d_init(),
            seed: None,
        }
    }
}

/// The `lightgcn` retriever.
#[derive(Debug, Clone)]
pub struct LightGcn {
    p: LightGcnParams,
}

impl Plugin for LightGcn {
    type Params = LightGcnParams;
    const SUMMARY: &'static str = "LightGCN: layer-mean propagation over the user-item graph, \
         BPR loss (dim, layers, epochs, batch, lr, reg, seed)";
    fn from_params(p: Self::Params) -> Result<Self> {
        crate::check_counts(
            "lightgcn",
            &[("dim", p.dim), ("epochs", p.epochs), ("batch", p.batch)],
        )?;
        crate::check_reals(
            "lightgcn",
            &[("lr", p.lr), ("reg", p.reg), ("init_std", p.init_std)],
            &["lr"],
        )?;
        Ok(Self { p })
    }
}

siren_core::register_retriever!("lightgcn", LightGcn);

/// The normalized user–item graph `Â = D^{-1/2} A D^{-1/2}` in CSR form; nodes `0..n_users`
/// are the users, `n_users..n_users + n_items` the items.
#[derive(Debug, Clone)]
pub struct Graph {
    /// Users.
    pub n_users: usize,
    /// Items.
    pub n_items: usize,
    row_ptr: Vec<usize>,
    col: Vec<u32>,
    val: Vec<f32>,
}

impl Graph {
    /// The graph of each user's distinct items (`user_items[u]`, item indices).
    pub fn new(n_users: usize, n_items: usize, user_items: &[Vec<u32>]) -> Self {
        let n = n_users + n_items;
        let mut adj: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (u, items) in user_items.iter().enumerate() {
            for &i in items {
                let v = n_users + i as usize;
                adj[u].push(v as u32);
                adj[v].push(u as u32);
            }
        }
        let deg: Vec<f32> = adj.iter().map(|a| a.len() as f32).collect();
        let (mut row_ptr, mut col, mut val) = (vec![0], Vec::new(), Vec::new());
        for (r, a) in adj.iter_mut().enumerate() {
            a.sort_unstable();
            for &c in a.iter() {
                col.push(c);
                val.push(1.0 / (deg[r] * deg[c as usize]).sqrt());
            }
            row_ptr.push(col.len());
        }
        Self {
            n_users,
            n_items,
            row_ptr,
            col,
            val,
        }
    }

    /// Nodes (users and items).
    pub fn nodes(&self) -> usize {
        self.n_users + self.n_items
    }

    /// `Â x` for `x` of `nodes() × d`, row-major.
    fn spmm(&self, x: &[f32], d: usize, out: &mut [f32]) {
        for r in 0..self.nodes() {
            let o = &mut out[r * d..(r + 1) * d];
            o.fill(0.0);
            for e in self.row_ptr[r]..self.row_ptr[r + 1] {
                let (c, w) = (self.col[e] as usize, self.val[e]);
                for (o, x) in o.iter_mut().zip(&x[c * d..(c + 1) * d]) {
                    *o += w * x;
                }
            }
        }
    }

    /// The layer mean `Σ_{k=0..layers} Â^k x / (layers + 1)`.
    pub fn propagate(&self, x: &[f32], d: usize, layers: usize) -> Vec<f32> {
        let mut sum = x.to_vec();
        let mut cur = x.to_vec();
        let mut next = vec![0f32; x.len()];
        for _ in 0..layers {
            self.spmm(&cur, d, &mut next);
            for (s, v) in sum.iter_mut().zip(&next) {
                *s += v;
            }
            std::mem::swap(&mut cur, &mut next);
        }
        let scale = 1.0 / (layers + 1) as f32;
        for s in &mut sum {
            *s *= scale;
        }
        sum
    }
}

/// The batch loss (mean BPR loss plus `reg/2 ·` the mean squared norm of the batch's layer-0
/// embeddings) of `triples` (user, item, negative item) at layer-0 embeddings `e0`, and its
/// gradient with respect to `e0`.
pub fn batch_loss(
    g: &Graph,
    e0: &[f32],
    d: usize,
    layers: usize,
    triples: &[(u32, u32, u32)],
    reg: f32,
) -> (f32, Vec<f32>) {
    let e = g.propagate(e0, d, layers);
    let nu = g.n_users;
    let row = |x: &[f32], r: usize| x[r * d..(r + 1) * d].to_vec();
    let b = triples.len().max(1) as f32;
    let mut de = vec![0f32; e.len()];
    let mut loss = 0f32;
    for &(u, i, j) in triples {
        let (u, i, j) = (u as usize, nu + i as usize, nu + j as usize);
        let (eu, ei, ej) = (row(&e, u), row(&e, i), row(&e, j));
        let x = crate::dot(&eu, &ei) - crate::dot(&eu, &ej);
        // −ln σ(x) = ln(1 + e^{−x}), written to stay finite for large |x|.
        loss += if x > 0.0 {
            (-x).exp().ln_1p()
        } else {
            -x + x.exp().ln_1p()
        };
        let s = -1.0 / (1.0 + x.exp()) / b; // d loss / d x, per triple
        for f in 0..d {
            de[u * d + f] += s * (ei[f] - ej[f]);
            de[i * d + f] += s * eu[f];
            de[j * d + f] -= s * eu[f];
        }
    }
    let mut grad = g.propagate(&de, d, layers);
    let mut reg_sum = 0f32;
    for &(u, i, j) in triples {
        for r in [u as usize, nu + i as usize, nu + j as usize] {
            for f in 0..d {
                let w = e0[r * d + f];
                reg_sum += w * w;
                grad[r * d + f] += reg * w / b;
            }
        }
    }
    (loss / b + 0.5 * reg * reg_sum / b, grad)
}

/// Adam's state for one parameter vector.
struct Adam {
    m: Vec<f32>,
    v: Vec<f32>,
    t: i32,
}

impl Adam {
    fn step(&mut self, w: &mut [f32], g: &[f32], lr: f32) {
        let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
        self.t += 1;
        let (c1, c2) = (1.0 - b1.powi(self.t), 1.0 - b2.powi(self.t));
        for k in 0..w.len() {
            self.m[k] = b1 * self.m[k] + (1.0 - b1) * g[k];
            self.v[k] = b2 * self.v[k] + (1.0 - b2) * g[k] * g[k];
            w[k] -= lr * (self.m[k] / c1) / ((self.v[k] / c2).sqrt() + eps);
        }
    }
}

/// A fitted LightGCN: the final (layer-mean) embeddings.
pub struct LightGcnModel {
    d: usize,
    n_users: usize,
    e: Vec<f32>,
    /// The mean BPR batch loss of each epoch.
    pub losses: Vec<f32>,
}

impl RetrievalModel for LightGcnModel {
    fn scores(&self, user: u32, scores: &mut [f32]) {
        let d = self.d;
        let u = user as usize;
        let Some(eu) = self.e.get(u * d..(u + 1) * d) else {
            scores.fill(0.0);
            return;
        };
        for (i, s) in scores.iter_mut().enumerate() {
            let r = self.n_users + i;
            *s = self
                .e
                .get(r * d..(r + 1) * d)
                .map_or(0.0, |ei| crate::dot(eu, ei));
        }
    }
}

impl LightGcn {
    /// Fits and returns the concrete model.
    pub fn fit_model(&self, ds: &Dataset, fit: &[Interaction], seed: u64) -> Result<LightGcnModel> {
        let p = &self.p;
        let d = p.dim;
        let user_items = crate::user_items("lightgcn", ds, fit)?;
        let (nu, ni) = (ds.users.len(), ds.items.len());
        let g = Graph::new(nu, ni, &user_items);
        let mut rng = StdRng::seed_from_u64(p.seed.unwrap_or(seed));
        let std = p.init_std as f32;
        let mut e0: Vec<f32> = (0..g.nodes() * d)
            .map(|_| std * crate::normal(&mut rng))
            .collect();
        let mut adam = Adam {
            m: vec![0.0; e0.len()],
            v: vec![0.0; e0.len()],
            t: 0,
        };
        let mut pairs: Vec<(u32, u32)> = user_items
            .iter()
            .enumerate()
            .flat_map(|(u, items)| items.iter().map(move |&i| (u as u32, i)))
            .collect();
        let mut losses = Vec::with_capacity(p.epochs);
        let bar = siren_core::progress::bar(p.epochs as u64, "lightgcn epochs");
        for _ in 0..p.epochs {
            pairs.shuffle(&mut rng);
            let (mut sum, mut batches) = (0f32, 0);
            for chunk in pairs.chunks(p.batch) {
                let triples: Vec<(u32, u32, u32)> = chunk
                    .iter()
                    .filter_map(|&(u, i)| {
                        crate::negative(&mut rng, &user_items[u as usize], ni as u32)
                            .map(|j| (u, i, j))
                    })
                    .collect();
                let (loss, grad) = batch_loss(&g, &e0, d, p.layers, &triples, p.reg as f32);
                adam.step(&mut e0, &grad, p.lr as f32);
                sum += loss;
                batches += 1;
            }
            losses.push(sum / batches.max(1) as f32);
            bar.inc(1);
        }
        bar.finish_and_clear();
        if let (Some(first), Some(last)) = (losses.first(), losses.last()) {
            tracing::info!(
                "lightgcn: BPR loss {first:.4} -> {last:.4} over {} epochs",
                p.epochs
            );
        }
        Ok(LightGcnModel {
            d,
            n_users: nu,
            e: g.propagate(&e0, d, p.layers),
            losses,
        })
    }
}

impl Retriever for LightGcn {
    fn fit(&self, ds: &Dataset, fit: &[Interaction], seed: u64) -> Result<Box<dyn RetrievalModel>> {
        Ok(Box::new(self.fit_model(ds, fit, seed)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three users, two items: u0–i0, u1–i0, u1–i1, u2–i1. Degrees: u0 1, u1 2, u2 1, i0 2,
    /// i1 2. With one-dimensional embeddings x, one layer of `Â x` by hand:
    /// (Â x)_{u0} = x_{i0}/√(1·2); (Â x)_{u1} = x_{i0}/√(2·2) + x_{i1}/√(2·2);
    /// (Â x)_{u2} = x_{i1}/√2; (Â x)_{i0} = x_{u0}/√2 + x_{u1}/2; (Â x)_{i1} = x_{u1}/2 + x_{u2}/√2.
    #[test]
    fn propagation_on_a_three_user_graph_equals_the_hand_computation() {
        let g = Graph::new(3, 2, &[vec![0], vec![0, 1], vec![1]]);
        let x = [1.0f32, 2.0, 3.0, 4.0, 5.0]; // u0 u1 u2 i0 i1
        let s2 = 2f32.sqrt();
        let one = [
            4.0 / s2,
            4.0 / 2.0 + 5.0 / 2.0,
            5.0 / s2,
            1.0 / s2 + 2.0 / 2.0,
            2.0 / 2.0 + 3.0 / s2,
        ];
        let two = [
            one[3] / s2,
            one[3] / 2.0 + one[4] / 2.0,
            one[4] / s2,
            one[0] / s2 + one[1] / 2.0,
            one[1] / 2.0 + one[2] / s2,
        ];
        let mean: Vec<f32> = (0..5).map(|k| (x[k] + one[k] + two[k]) / 3.0).collect();
        let got = g.propagate(&x, 1, 2);
        for (a, b) in got.iter().zip(&mean) {
            approx::assert_abs_diff_eq!(a, b, epsilon = 1e-5);
        }
        // Layer 0 alone is the identity.
        assert_eq!(g.propagate(&x, 1, 0), x.to_vec());
    }

    #[test]
    fn the_gradient_matches_finite_differences() {
        let g = Graph::new(3, 3, &[vec![0, 2], vec![0, 1], vec![1]]);
        let d = 2;
        let mut rng = StdRng::seed_from_u64(7);
        let e0: Vec<f32> = (0..g.nodes() * d)
            .map(|_| 0.5 * crate::normal(&mut rng))
            .collect();
        let triples = [(0u32, 0u32, 1u32), (1, 1, 2), (2, 1, 0)];
        let (_, grad) = batch_loss(&g, &e0, d, 2, &triples, 0.1);
        let h = 1e-3f32;
        for k in 0..e0.len() {
            let (mut up, mut down) = (e0.clone(), e0.clone());
            up[k] += h;
            down[k] -= h;
            let num = (batch_loss(&g, &up, d, 2, &triples, 0.1).0
                - batch_loss(&g, &down, d, 2, &triples, 0.1).0)
                / (2.0 * h);
            approx::assert_abs_diff_eq!(grad[k], num, epsilon = 2e-3);
        }
    }
}
