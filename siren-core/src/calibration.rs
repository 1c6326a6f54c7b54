//! Calibration of answer-only rating distributions for a label shift.
//!
//! A model trained on one rating distribution (the paper's Movies `train` targets are balanced:
//! 40% fives, mean 3.64) and evaluated on another (valid and test are natural: 62% fives, mean
//! 4.22) is miscalibrated. [`Calibration`] re-weights each distribution as
//! `p'(r) ∝ p(r)^a · exp(b_r)`: `b` corrects the prior (Saerens et al.'s prior shift is `a = 1`,
//! `b_r = log π_new(r) / π_old(r)`), `a` the confidence. Its six numbers are fitted by maximum
//! likelihood (Newton's method, a tiny ridge on `b`) on rated examples.
//!
//! A calibration fitted on the evaluated rows must not score those rows: [`cross_fit`] splits
//! them in two seeded halves, fits on each and applies it to the other, so every row is scored
//! by a calibration that never saw its label.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

/// `p'(r) ∝ p(r)^a · exp(b_r)` over the rating classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Exponent on the probabilities (confidence).
    pub a: f64,
    /// Log-weight per class (`b[0]` is 0: only differences matter).
    pub b: Vec<f64>,
}

/// What a prediction's `calibration` field says of `c`: `model` (applied) or `none`.
pub fn label(c: Option<&Calibration>) -> &'static str {
    if c.is_some() { "model" } else { "none" }
}

impl Calibration {
    /// Reads a calibration file: `{"a": .., "b": [..]}`, or the `{"all_rows": {"a", "b"}, ..}`
    /// that `siren eval` writes (its fit on all evaluated rows). `classes` is the number of
    /// rating classes `b` must have; errors name the file and the field.
    pub fn read(path: &std::path::Path, classes: usize) -> crate::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| crate::CoreError::io(path, e))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| crate::CoreError::Data(format!("{}: not JSON: {e}", path.display())))?;
        let (field, c) = if v.get("all_rows").is_some() {
            ("all_rows", &v["all_rows"])
        } else {
            ("(top level)", &v)
        };
        let c: Self = serde_json::from_value(c.clone()).map_err(|e| {
            crate::CoreError::Data(format!(
                "{}: {field}: expected {{\"a\": number, \"b\": [number; {classes}]}}: {e}",
                path.display()
            ))
        })?;
        if c.b.len() != classes || !c.a.is_finite() || c.b.iter().any(|b| !b.is_finite()) {
            return Err(crate::CoreError::Data(format!(
                "{}: {field}: `a` must be finite and `b` {classes} finite numbers (one per \
                 rating), got a = {}, {} values in b",
                path.display(),
                c.a,
                c.b.len()
            )));
        }
        Ok(c)
    }

    /// The identity (no change).
    pub fn identity(classes: usize) -> Self {
        Self {
            a: 1.0,
            b: vec![0.0; classes],
        }
    }

    /// The calibrated distribution of `p`.
    pub fn apply(&self, p: &[f32]) -> Vec<f32> {
        let z: Vec<f64> = p
            .iter()
            .zip(&self.b)
            .map(|(&q, b)| self.a * f64::from(q.max(1e-12)).ln() + b)
            .collect();
        let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = z.iter().map(|x| (x - m).exp()).collect();
        let s: f64 = e.iter().sum();
        e.iter().map(|x| (x / s) as f32).collect()
    }

    /// Fits the calibration to distributions `probs` with true classes `labels` (indices) by
    /// maximum likelihood.
    #[allow(clippy::needless_range_loop)] // index notation follows the Newton equations
    pub fn fit(probs: &[Vec<f32>], labels: &[usize]) -> Self {
        let k = probs.first().map_or(0, Vec::len);
        let mut c = Self::identity(k);
        if probs.is_empty() || k < 2 {
            return c;
        }
        // Parameters θ = (a, b_1..b_{k-1}); b_0 = 0.
        let d = k;
        let ridge = 1e-3;
        let logs: Vec<Vec<f64>> = probs
            .iter()
            .map(|p| p.iter().map(|&q| f64::from(q.max(1e-12)).ln()).collect())
            .collect();
        let nll = |c: &Calibration| -> f64 {
            let mut s = 0.0;
            for (l, &y) in logs.iter().zip(labels) {
                let z: Vec<f64> = l.iter().zip(&c.b).map(|(x, b)| c.a * x + b).collect();
                let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let lse = m + z.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
                s += lse - z[y];
            }
            s + 0.5 * ridge * c.b.iter().map(|b| b * b).sum::<f64>()
        };
        for _ in 0..50 {
            // Gradient and Hessian of the mean negative log-likelihood.
            let mut g = vec![0f64; d];
            let mut h = vec![vec![0f64; d]; d];
            for (l, &y) in logs.iter().zip(labels) {
                let z: Vec<f64> = l.iter().zip(&c.b).map(|(x, b)| c.a * x + b).collect();
                let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = z.iter().map(|x| (x - m).exp()).collect();
                let s: f64 = e.iter().sum();
                let p: Vec<f64> = e.iter().map(|x| x / s).collect();
                // Features of θ for class j: (l_j, one-hot_j without class 0).
                let feat = |j: usize| -> Vec<f64> {
                    let mut f = vec![0f64; d];
                    f[0] = l[j];
                    if j > 0 {
                        f[j] = 1.0;
                    }
                    f
                };
                let mean: Vec<f64> = (0..d)
                    .map(|t| (0..k).map(|j| p[j] * feat(j)[t]).sum())
                    .collect();
                let fy = feat(y);
                for t in 0..d {
                    g[t] += mean[t] - fy[t];
                }
                for j in 0..k {
                    let fj = feat(j);
                    for t in 0..d {
                        for u in 0..d {
                            h[t][u] += p[j] * (fj[t] - mean[t]) * (fj[u] - mean[u]);
                        }
                    }
                }
            }
            for t in 1..d {
                g[t] += ridge * c.b[t];
                h[t][t] += ridge;
            }
            let step = solve(&h, &g);
            let Some(step) = step else { break };
            // Damped Newton step: halve until the objective does not rise.
            let before = nll(&c);
            let mut scale = 1.0;
            let mut next = c.clone();
            loop {
                next.a = c.a - scale * step[0];
                for t in 1..d {
                    next.b[t] = c.b[t] - scale * step[t];
                }
                if nll(&next) <= before || scale < 1e-4 {
                    break;
                }
                scale *= 0.5;
            }
            let moved = step.iter().map(|s| (s * scale).abs()).fold(0.0, f64::max);
            c = next;
            if moved < 1e-8 {
                break;
            }
        }
        c
    }
}

/// Solves `h x = g` (Gaussian elimination with partial pivoting); `None` when singular.
#[allow(clippy::needless_range_loop)]
fn solve(h: &[Vec<f64>], g: &[f64]) -> Option<Vec<f64>> {
    let n = g.len();
    let mut m: Vec<Vec<f64>> = h
        .iter()
        .zip(g)
        .map(|(row, &v)| {
            let mut r = row.clone();
            r.push(v);
            r
        })
        .collect();
    for col in 0..n {
        let piv = (col..n).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))?;
        if m[piv][col].abs() < 1e-12 {
            return None;
        }
        m.swap(col, piv);
        for r in 0..n {
            if r != col {
                let f = m[r][col] / m[col][col];
                for c in col..=n {
                    m[r][c] -= f * m[col][c];
                }
            }
        }
    }
    Some((0..n).map(|i| m[i][n] / m[i][i]).collect())
}

/// Cross-fitted calibration of `probs` (true classes `labels`): rows are split in two halves
/// by a permutation seeded with `seed`; each half is calibrated by the fit on the other.
/// Returns the calibrated distributions (in the input order) and the two fits.
pub fn cross_fit(
    probs: &[Vec<f32>],
    labels: &[usize],
    seed: u64,
) -> (Vec<Vec<f32>>, [Calibration; 2]) {
    let n = probs.len();
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    let (h0, h1) = idx.split_at(n / 2);
    let fit = |rows: &[usize]| {
        let p: Vec<Vec<f32>> = rows.iter().map(|&i| probs[i].clone()).collect();
        let l: Vec<usize> = rows.iter().map(|&i| labels[i]).collect();
        Calibration::fit(&p, &l)
    };
    let (c0, c1) = (fit(h0), fit(h1));
    let mut out = vec![Vec::new(); n];
    for &i in h0 {
        out[i] = c1.apply(&probs[i]);
    }
    for &i in h1 {
        out[i] = c0.apply(&probs[i]);
    }
    (out, [c0, c1])
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_calibration_file_reads_in_both_forms_and_bad_ones_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("c.json");
        std::fs::write(&plain, r#"{"a": 0.5, "b": [0, 1, 2, 3, 4]}"#).unwrap();
        let c = super::Calibration::read(&plain, 5).unwrap();
        assert_eq!((c.a, c.b[4]), (0.5, 4.0));
        let eval = dir.path().join("e.json");
        std::fs::write(
            &eval,
            r#"{"all_rows": {"a": 0.25, "b": [0, 0, 0, 0, 1]}, "cross_fit": []}"#,
        )
        .unwrap();
        assert_eq!(super::Calibration::read(&eval, 5).unwrap().a, 0.25);
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, r#"{"a": 1, "b": [0, 1]}"#).unwrap();
        let e = super::Calibration::read(&bad, 5).unwrap_err().to_string();
        assert!(e.contains("bad.json") && e.contains("b"), "{e}");
        let e = super::Calibration::read(&dir.path().join("none.json"), 5)
            .unwrap_err()
            .to_string();
        assert!(e.contains("none.json"), "{e}");
    }

    use super::*;
    use rand::Rng;

    #[test]
    fn recovers_a_prior_shift() {
        // Labels drawn from q(r) ∝ p(r)·w_r for known weights w; the fit must find b ≈ log w
        // (up to the constant) and a ≈ 1.
        let w = [0.5f64, 0.5, 1.0, 2.0, 4.0];
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let (mut probs, mut labels) = (Vec::new(), Vec::new());
        for _ in 0..4000 {
            let raw: Vec<f64> = (0..5).map(|_| rng.random_range(0.05..1.0)).collect();
            let s: f64 = raw.iter().sum();
            let p: Vec<f32> = raw.iter().map(|x| (x / s) as f32).collect();
            let q: Vec<f64> = p.iter().zip(&w).map(|(&a, b)| f64::from(a) * b).collect();
            let qs: f64 = q.iter().sum();
            let u: f64 = rng.random::<f64>() * qs;
            let (mut acc, mut y) = (0.0, 4);
            for (j, v) in q.iter().enumerate() {
                acc += v;
                if u < acc {
                    y = j;
                    break;
                }
            }
            probs.push(p);
            labels.push(y);
        }
        let c = Calibration::fit(&probs, &labels);
        assert!((c.a - 1.0).abs() < 0.15, "a = {}", c.a);
        for j in 1..5 {
            let want = (w[j] / w[0]).ln();
            assert!((c.b[j] - want).abs() < 0.2, "b[{j}] = {} vs {want}", c.b[j]);
        }
        // The fit raises the likelihood of the labels.
        let ll = |ps: &[Vec<f32>]| -> f64 {
            ps.iter()
                .zip(&labels)
                .map(|(p, &y)| f64::from(p[y]).ln())
                .sum()
        };
        let cal: Vec<Vec<f32>> = probs.iter().map(|p| c.apply(p)).collect();
        assert!(ll(&cal) > ll(&probs));
        // Cross-fitting scores every row with the fit of the other half.
        let (out, fits) = cross_fit(&probs, &labels, 1);
        assert_eq!(out.len(), probs.len());
        assert!(fits[0] != fits[1]);
        assert!(ll(&out) > ll(&probs));
    }

    #[test]
    fn identity_changes_nothing() {
        let p = vec![0.1f32, 0.2, 0.3, 0.4];
        let q = Calibration::identity(4).apply(&p);
        for (a, b) in p.iter().zip(&q) {
            assert!((a - b).abs() < 1e-6);
        }
    }
}
