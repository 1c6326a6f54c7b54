//! Blending a retriever's score with a reranker's answers (`[rank.blend]`): a conditional
//! logit over each retrieved list (McFadden 1974; the softmax "listwise" model of learning to
//! rank).
//!
//! For a list of candidates with features `x_c` (each feature standardized within the list:
//! minus its mean over the list, over its standard deviation, so a user's scale does not
//! matter), the blended score is `s_c = w · x_c` and the chance that the user picks `c` is
//! `exp(s_c) / Σ_c' exp(s_c')`. The weights maximize the log-likelihood of the picked items
//! over a set of lists, minus `l2/2 · |w|²`:
//!
//! `L(w) = Σ_lists [ w · x_pick − ln Σ_c exp(w · x_c) ] − l2/2 · |w|²`,
//! `∇L = Σ_lists [ x_pick − Σ_c π_c x_c ] − l2 · w`,
//! `∇²L = −Σ_lists [ Σ_c π_c x_c x_cᵀ − x̄ x̄ᵀ ] − l2 · I` (`x̄ = Σ_c π_c x_c`),
//!
//! concave, so Newton's method with a halving line search finds its maximum. The lists the
//! weights are fitted on must not be the evaluated ones: `siren rank` fits them on earlier
//! points in time of the fit set (`[rank.blend] cuts`), never on the evaluated split.

use serde::{Deserialize, Serialize};

use crate::{CoreError, Result};

/// The features a blend can use, by name: the retriever's score, the model's expected answer
/// to the relevance question, its expected rating.
pub const FEATURES: [&str; 3] = ["retriever", "relevance", "rating"];

/// One list to fit on: a column of raw values per feature (one per candidate), and which
/// candidate the user picked.
#[derive(Debug, Clone, PartialEq)]
pub struct List {
    /// `columns[f][c]`: feature `f` of candidate `c`, raw (standardized by [`List::new`]).
    pub columns: Vec<Vec<f64>>,
    /// The picked candidate.
    pub picked: usize,
}

impl List {
    /// A list from raw feature columns, each standardized within the list. Errors when the
    /// columns differ in length, a value is not finite, or `picked` is outside the list.
    pub fn new(raw: &[Vec<f64>], picked: usize) -> Result<Self> {
        let n = raw.first().map_or(0, Vec::len);
        if raw.iter().any(|c| c.len() != n) || picked >= n {
            return Err(CoreError::Data(format!(
                "a blend list needs one value per candidate in every feature and the picked \
                 candidate among them (lengths {:?}, picked {picked})",
                raw.iter().map(Vec::len).collect::<Vec<_>>()
            )));
        }
        if raw.iter().flatten().any(|v| !v.is_finite()) {
            return Err(CoreError::Data(
                "a blend list has a feature value that is not a finite number".into(),
            ));
        }
        Ok(Self {
            columns: raw.iter().map(|c| standardize(c)).collect(),
            picked,
        })
    }

    fn len(&self) -> usize {
        self.columns.first().map_or(0, Vec::len)
    }

    fn row(&self, c: usize) -> Vec<f64> {
        self.columns.iter().map(|col| col[c]).collect()
    }
}

/// `v` minus its mean over its standard deviation (population); all zeros when `v` is
/// constant.
pub fn standardize(v: &[f64]) -> Vec<f64> {
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    let sd = var.sqrt();
    if sd <= 1e-12 * (1.0 + mean.abs()) {
        return vec![0.0; v.len()];
    }
    v.iter().map(|x| (x - mean) / sd).collect()
}

/// Fitted blend weights, with what they were fitted on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Blend {
    /// Feature names (of [`FEATURES`]), in the order of `weights`.
    pub features: Vec<String>,
    /// One weight per feature (on the within-list standardized values).
    pub weights: Vec<f64>,
    /// The L2 penalty of the fit.
    pub l2: f64,
    /// Lists fitted on.
    pub lists: usize,
    /// Mean log-likelihood per list at the weights (without the penalty).
    pub log_likelihood: f64,
}

impl Blend {
    /// Blended scores of a list's candidates from raw feature columns (standardized here as in
    /// the fit). Errors as [`List::new`], and when the columns are not one per feature.
    pub fn scores(&self, raw: &[Vec<f64>]) -> Result<Vec<f64>> {
        if raw.len() != self.weights.len() {
            return Err(CoreError::Data(format!(
                "the blend takes {} features ({}), got {}",
                self.weights.len(),
                self.features.join(", "),
                raw.len()
            )));
        }
        let list = List::new(raw, 0)?;
        Ok((0..list.len())
            .map(|c| dot(&self.weights, &list.row(c)))
            .collect())
    }

    /// The blend as JSON (its fields).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "features": self.features,
            "weights": self.weights,
            "l2": self.l2,
            "lists": self.lists,
            "log_likelihood": self.log_likelihood,
        })
    }

    /// Whether the blend reads the retriever's scores.
    pub fn needs_retriever(&self) -> bool {
        self.features.iter().any(|f| f == "retriever")
    }

    /// Whether the blend reads the model's relevance answers.
    pub fn needs_relevance(&self) -> bool {
        self.features.iter().any(|f| f == "relevance")
    }

    /// Candidate indices by blended score, best first (ties keep their given order).
    pub fn order(&self, raw: &[Vec<f64>]) -> Result<Vec<usize>> {
        Ok(order_by(&self.scores(raw)?))
    }
}

/// Indices by `scores`, best first (ties keep their given order).
pub fn order_by(scores: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    idx
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The penalized log-likelihood, its gradient and Hessian at `w` (see the module docs).
pub fn objective(lists: &[List], w: &[f64], l2: f64) -> (f64, Vec<f64>, Vec<Vec<f64>>) {
    let d = w.len();
    let mut value = -0.5 * l2 * dot(w, w);
    let mut grad: Vec<f64> = w.iter().map(|x| -l2 * x).collect();
    let mut hess = vec![vec![0.0; d]; d];
    for (i, row) in hess.iter_mut().enumerate() {
        row[i] = -l2;
    }
    for list in lists {
        let rows: Vec<Vec<f64>> = (0..list.len()).map(|c| list.row(c)).collect();
        let s: Vec<f64> = rows.iter().map(|x| dot(w, x)).collect();
        let top = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = s.iter().map(|v| (v - top).exp()).collect();
        let z: f64 = e.iter().sum();
        value += s[list.picked] - top - z.ln();
        let mut mean = vec![0.0; d];
        for (x, ec) in rows.iter().zip(&e) {
            let p = ec / z;
            for i in 0..d {
                mean[i] += p * x[i];
                for j in 0..d {
                    hess[i][j] -= p * x[i] * x[j];
                }
            }
        }
        for i in 0..d {
            grad[i] += rows[list.picked][i] - mean[i];
            for j in 0..d {
                hess[i][j] += mean[i] * mean[j];
            }
        }
    }
    (value, grad, hess)
}

/// Solves `a x = b` by Gaussian elimination with partial pivoting; `None` when singular.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for k in 0..n {
        let p = (k..n).max_by(|&i, &j| a[i][k].abs().total_cmp(&a[j][k].abs()))?;
        if a[p][k].abs() < 1e-300 {
            return None;
        }
        a.swap(k, p);
        b.swap(k, p);
        for i in k + 1..n {
            let f = a[i][k] / a[k][k];
            let (upper, lower) = a.split_at_mut(i);
            for (x, y) in lower[0][k..].iter_mut().zip(&upper[k][k..]) {
                *x -= f * y;
            }
            b[i] -= f * b[k];
        }
    }
    let mut x = vec![0.0; n];
    for k in (0..n).rev() {
        let s: f64 = (k + 1..n).map(|j| a[k][j] * x[j]).sum();
        x[k] = (b[k] - s) / a[k][k];
    }
    Some(x)
}

/// Fits blend weights for `features` on `lists` (see the module docs): Newton's method from
/// zero weights with a halving line search, until the step is below 1e-10. `l2` must be
/// positive (it keeps the maximum finite when a feature separates the lists perfectly).
pub fn fit(features: &[String], lists: &[List], l2: f64) -> Result<Blend> {
    if lists.is_empty() {
        return Err(CoreError::Data(
            "no list to fit the blend on (no development list held its picked item)".into(),
        ));
    }
    if !(l2 > 0.0 && l2.is_finite()) {
        return Err(CoreError::config(
            "rank.blend.l2",
            format!("must be a positive number, got {l2}"),
        ));
    }
    let d = features.len();
    if lists.iter().any(|l| l.columns.len() != d) {
        return Err(CoreError::Data(format!(
            "every blend list needs the {d} features {}",
            features.join(", ")
        )));
    }
    let mut w = vec![0.0; d];
    let (mut value, mut grad, mut hess) = objective(lists, &w, l2);
    for _ in 0..100 {
        let neg: Vec<Vec<f64>> = hess
            .iter()
            .map(|r| r.iter().map(|v| -v).collect())
            .collect();
        let Some(step) = solve(neg, grad.clone()) else {
            break;
        };
        let mut t = 1.0;
        let mut moved = false;
        while t > 1e-8 {
            let cand: Vec<f64> = w.iter().zip(&step).map(|(a, s)| a + t * s).collect();
            let (v, g, h) = objective(lists, &cand, l2);
            if v >= value {
                (w, value, grad, hess) = (cand, v, g, h);
                moved = true;
                break;
            }
            t *= 0.5;
        }
        if !moved || step.iter().all(|s| (t * s).abs() < 1e-10) {
            break;
        }
    }
    let penalty = 0.5 * l2 * dot(&w, &w);
    Ok(Blend {
        features: features.to_vec(),
        weights: w,
        l2,
        lists: lists.len(),
        log_likelihood: (value + penalty) / lists.len() as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn two_candidates_fit_the_closed_form() {
        // Two candidates standardized to +1 and -1: P(first) = σ(2w). With the first picked in
        // 30 of 40 lists, the maximum (l2 → 0) is w = logit(0.75) / 2 = ln(3) / 2.
        let mut lists = Vec::new();
        for k in 0..40 {
            lists.push(List::new(&[vec![5.0, 2.0]], usize::from(k >= 30)).unwrap());
        }
        let b = fit(&names(&["retriever"]), &lists, 1e-9).unwrap();
        assert!(
            (b.weights[0] - 3f64.ln() / 2.0).abs() < 1e-6,
            "{:?}",
            b.weights
        );
        let want = 0.75 * 0.75f64.ln() + 0.25 * 0.25f64.ln();
        assert!((b.log_likelihood - want).abs() < 1e-9);
    }

    #[test]
    fn the_gradient_and_hessian_equal_finite_differences() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let lists: Vec<List> = (0..25)
            .map(|_| {
                let cols: Vec<Vec<f64>> = (0..3)
                    .map(|_| (0..6).map(|_| rng.random_range(-2.0..2.0)).collect())
                    .collect();
                List::new(&cols, rng.random_range(0..6)).unwrap()
            })
            .collect();
        let w = [0.3, -0.7, 1.1];
        let (_, g, h) = objective(&lists, &w, 0.1);
        let eps = 1e-5;
        for i in 0..3 {
            let (mut up, mut down) = (w.to_vec(), w.to_vec());
            up[i] += eps;
            down[i] -= eps;
            let (vu, gu, _) = objective(&lists, &up, 0.1);
            let (vd, gd, _) = objective(&lists, &down, 0.1);
            assert!(((vu - vd) / (2.0 * eps) - g[i]).abs() < 1e-6);
            for j in 0..3 {
                assert!(((gu[j] - gd[j]) / (2.0 * eps) - h[j][i]).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn the_fit_recovers_the_weights_it_was_drawn_from() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let truth = [1.2, -0.4];
        let lists: Vec<List> = (0..3000)
            .map(|_| {
                let cols: Vec<Vec<f64>> = (0..2)
                    .map(|_| (0..10).map(|_| rng.random_range(-1.0..1.0)).collect())
                    .collect();
                let list = List::new(&cols, 0).unwrap();
                let s: Vec<f64> = (0..10).map(|c| dot(&truth, &list.row(c))).collect();
                let z: f64 = s.iter().map(|v| v.exp()).sum();
                let (mut u, mut picked) = (rng.random_range(0.0..z), 9);
                for (c, v) in s.iter().enumerate() {
                    u -= v.exp();
                    if u <= 0.0 {
                        picked = c;
                        break;
                    }
                }
                List { picked, ..list }
            })
            .collect();
        let b = fit(&names(&["retriever", "relevance"]), &lists, 1e-3).unwrap();
        for (w, t) in b.weights.iter().zip(truth) {
            assert!((w - t).abs() < 0.1, "{:?} vs {truth:?}", b.weights);
        }
        // The blended order follows the weights.
        let order = b
            .order(&[vec![0.0, 1.0, 2.0], vec![0.0, 0.0, 0.0]])
            .unwrap();
        assert_eq!(order, vec![2, 1, 0]);
    }

    #[test]
    fn bad_lists_are_refused_with_a_reason() {
        assert!(List::new(&[vec![1.0, 2.0], vec![1.0]], 0).is_err());
        assert!(List::new(&[vec![1.0, 2.0]], 2).is_err());
        assert!(List::new(&[vec![1.0, f64::NAN]], 0).is_err());
        assert!(fit(&names(&["retriever"]), &[], 0.1).is_err());
        let l = List::new(&[vec![1.0, 2.0]], 0).unwrap();
        assert!(fit(&names(&["retriever"]), &[l], 0.0).is_err());
    }
}
