//! Paired comparison of two evaluated rows (`siren paired`): the difference B − A of MAE and
//! RMSE on the users both scored, with a 95% bootstrap interval that resamples users (each
//! resample draws the same users for both rows, so the interval is of the paired difference).
//!
//! A row is read from an evaluation file by id: `FILE.jsonl:DECODER`, where `FILE` is what
//! `siren eval` writes (`<method>-ao.jsonl` with each user's rating distribution, or
//! `<method>-cot.jsonl` with the sampled answer and the distribution at its `<answer>` tag)
//! and `DECODER` is `argmax`, `expected`, `median` (from the distribution) or `sampled` (the
//! generated answer of a CoT file; `greedy`, the strict one-token answer, of an answer-only
//! file).

use std::collections::BTreeMap;
use std::path::PathBuf;

use rand::{Rng, SeedableRng};

use crate::rating::RatingDecoder;
use crate::{CoreError, Result};

/// One row's predictions by example id, and the true ratings.
#[derive(Debug, Clone)]
pub struct RowPredictions {
    /// `FILE:DECODER` as given.
    pub name: String,
    /// Id → (prediction, truth).
    pub by_id: BTreeMap<String, (f32, f32)>,
}

/// Reads `FILE.jsonl:DECODER` (see the module docs). `fallback` stands in for a CoT answer
/// that did not parse or a greedy token that is no rating (the files record the fallback
/// already for `sampled`).
pub fn read_row(spec: &str, fallback: f32) -> Result<RowPredictions> {
    let (file, dec) = spec.rsplit_once(':').ok_or_else(|| {
        CoreError::config(
            "paired",
            format!("`{spec}`: expected FILE.jsonl:DECODER (argmax, expected, median, sampled)"),
        )
    })?;
    let path = PathBuf::from(file);
    let decoder = match dec {
        "argmax" => Some(RatingDecoder::Argmax),
        "expected" => Some(RatingDecoder::Expected),
        "median" => Some(RatingDecoder::Median),
        "sampled" | "greedy" => None,
        other => {
            return Err(CoreError::config(
                "paired",
                format!(
                    "`{spec}`: unknown decoder `{other}`; valid: argmax, expected, median, sampled"
                ),
            ));
        }
    };
    let text = std::fs::read_to_string(&path).map_err(|e| CoreError::io(&path, e))?;
    let values = [1.0f32, 2.0, 3.0, 4.0, 5.0];
    let mut by_id = BTreeMap::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let bad = |field: &str, message: String| CoreError::Parse {
            path: path.clone(),
            line: i + 1,
            field: Some(field.into()),
            message,
        };
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| bad("(line)", format!("not a JSON object: {e}")))?;
        let id = v["id"]
            .as_str()
            .ok_or_else(|| bad("id", "missing or not a string".into()))?
            .to_string();
        let truth = v["rating"]
            .as_f64()
            .ok_or_else(|| bad("rating", "missing or not a number".into()))?
            as f32;
        let pred = match decoder {
            Some(d) => {
                let probs: Vec<f32> = v["probs"]
                    .as_array()
                    .filter(|a| a.len() == values.len())
                    .ok_or_else(|| {
                        bad(
                            "probs",
                            "missing or not 5 probabilities (a file without distributions?)".into(),
                        )
                    })?
                    .iter()
                    .map(|x| x.as_f64().unwrap_or(f64::NAN) as f32)
                    .collect();
                if probs.iter().any(|p| !p.is_finite()) {
                    return Err(bad("probs", "holds a value that is not a number".into()));
                }
                d.decode(&probs, &values)
            }
            None => match (v.get("pred"), v.get("greedy")) {
                (Some(p), _) if p.is_number() => p.as_f64().unwrap_or(0.0) as f32,
                (_, Some(g)) => g.as_f64().map_or(fallback, |x| x as f32),
                _ => return Err(bad("pred", "missing (neither pred nor greedy)".into())),
            },
        };
        by_id.insert(id, (pred, truth));
    }
    if by_id.is_empty() {
        return Err(CoreError::Data(format!("{}: no rows", path.display())));
    }
    Ok(RowPredictions {
        name: spec.to_string(),
        by_id,
    })
}

/// A metric of both rows and their difference B − A with its 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Diff {
    /// Row A's value.
    pub a: f64,
    /// Row B's value.
    pub b: f64,
    /// B − A.
    pub diff: f64,
    /// 2.5% quantile of the bootstrap differences.
    pub lo: f64,
    /// 97.5% quantile.
    pub hi: f64,
}

/// The paired comparison of two rows.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Paired {
    /// Users both rows scored.
    pub n: usize,
    /// Bootstrap resamples.
    pub resamples: usize,
    /// MAE of A, of B, B − A.
    pub mae: Diff,
    /// RMSE of A, of B, B − A.
    pub rmse: Diff,
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (i, f) = (pos.floor() as usize, pos.fract());
    let next = sorted[(i + 1).min(sorted.len() - 1)];
    sorted[i] * (1.0 - f) + next * f
}

/// Paired bootstrap of B − A over the users of `a` and `b` that both hold, with the same truth
/// (an id whose truths differ is an error: the files are of different splits).
pub fn compare(
    a: &RowPredictions,
    b: &RowPredictions,
    resamples: usize,
    seed: u64,
) -> Result<Paired> {
    let mut rows = Vec::new();
    for (id, &(pa, ta)) in &a.by_id {
        if let Some(&(pb, tb)) = b.by_id.get(id) {
            if (ta - tb).abs() > 1e-6 {
                return Err(CoreError::Data(format!(
                    "`{id}` has rating {ta} in {} but {tb} in {}",
                    a.name, b.name
                )));
            }
            rows.push((f64::from(pa), f64::from(pb), f64::from(ta)));
        }
    }
    if rows.is_empty() {
        return Err(CoreError::Data(format!(
            "{} and {} share no user",
            a.name, b.name
        )));
    }
    let n = rows.len();
    // Per-user absolute and squared errors; a resample's metric is a mean over drawn users.
    let ea: Vec<(f64, f64)> = rows
        .iter()
        .map(|r| ((r.0 - r.2).abs(), (r.0 - r.2).powi(2)))
        .collect();
    let eb: Vec<(f64, f64)> = rows
        .iter()
        .map(|r| ((r.1 - r.2).abs(), (r.1 - r.2).powi(2)))
        .collect();
    let metrics = |idx: &mut dyn Iterator<Item = usize>| {
        let (mut s, mut k) = ([0f64; 4], 0usize);
        for i in idx {
            s[0] += ea[i].0;
            s[1] += eb[i].0;
            s[2] += ea[i].1;
            s[3] += eb[i].1;
            k += 1;
        }
        let k = k as f64;
        (s[0] / k, s[1] / k, (s[2] / k).sqrt(), (s[3] / k).sqrt())
    };
    let full = metrics(&mut (0..n));
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (mut dm, mut dr) = (Vec::with_capacity(resamples), Vec::with_capacity(resamples));
    for _ in 0..resamples {
        let draws: Vec<usize> = (0..n).map(|_| rng.random_range(0..n)).collect();
        let m = metrics(&mut draws.into_iter());
        dm.push(m.1 - m.0);
        dr.push(m.3 - m.2);
    }
    dm.sort_by(f64::total_cmp);
    dr.sort_by(f64::total_cmp);
    let diff = |a: f64, b: f64, d: &[f64]| Diff {
        a,
        b,
        diff: b - a,
        lo: if d.is_empty() {
            b - a
        } else {
            quantile(d, 0.025)
        },
        hi: if d.is_empty() {
            b - a
        } else {
            quantile(d, 0.975)
        },
    };
    Ok(Paired {
        n,
        resamples,
        mae: diff(full.0, full.1, &dm),
        rmse: diff(full.2, full.3, &dr),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, v: &[(f32, f32)]) -> RowPredictions {
        RowPredictions {
            name: name.into(),
            by_id: v
                .iter()
                .enumerate()
                .map(|(i, &p)| (format!("u{i}"), p))
                .collect(),
        }
    }

    #[test]
    fn the_paired_difference_and_its_interval() {
        // A is off by 1 everywhere, B exact: B − A is −1 in MAE and RMSE in every resample.
        let a = row("a", &[(2.0, 3.0), (4.0, 5.0), (0.0, 1.0), (3.0, 4.0)]);
        let b = row("b", &[(3.0, 3.0), (5.0, 5.0), (1.0, 1.0), (4.0, 4.0)]);
        let p = compare(&a, &b, 200, 1).unwrap();
        assert_eq!(p.n, 4);
        assert_eq!((p.mae.a, p.mae.b, p.mae.diff), (1.0, 0.0, -1.0));
        assert_eq!((p.mae.lo, p.mae.hi), (-1.0, -1.0));
        assert_eq!((p.rmse.a, p.rmse.diff), (1.0, -1.0));
        // Identical rows: every difference is 0.
        let p = compare(&a, &a, 100, 1).unwrap();
        assert_eq!((p.mae.diff, p.mae.lo, p.mae.hi), (0.0, 0.0, 0.0));
        // Mixed: the interval holds the point difference and has width.
        let c = row("c", &[(3.0, 3.0), (4.0, 5.0), (1.0, 1.0), (2.0, 4.0)]);
        let p = compare(&a, &c, 2000, 7).unwrap();
        assert!((p.mae.diff - (0.75 - 1.0)).abs() < 1e-12);
        assert!(p.mae.lo <= p.mae.diff && p.mae.diff <= p.mae.hi && p.mae.lo < p.mae.hi);
        // Only shared ids count; a differing truth is an error naming the id.
        let d = row("d", &[(3.0, 3.0)]);
        assert_eq!(compare(&a, &d, 10, 1).unwrap().n, 1);
        let e = row("e", &[(3.0, 2.0)]);
        assert!(
            compare(&a, &e, 10, 1)
                .unwrap_err()
                .to_string()
                .contains("u0")
        );
    }

    #[test]
    fn rows_are_read_by_decoder_and_bad_lines_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("m-ao.jsonl");
        std::fs::write(
            &f,
            "{\"id\":\"u1\",\"rating\":4,\"probs\":[0,0,0.2,0.5,0.3],\"greedy\":4}\n\
             {\"id\":\"u2\",\"rating\":5,\"probs\":[0.6,0,0,0,0.4],\"greedy\":null}\n",
        )
        .unwrap();
        let spec = |d: &str| format!("{}:{d}", f.display());
        let r = read_row(&spec("median"), 3.5).unwrap();
        assert_eq!(r.by_id["u1"], (4.0, 4.0));
        assert_eq!(r.by_id["u2"], (1.0, 5.0));
        let r = read_row(&spec("expected"), 3.5).unwrap();
        assert!((r.by_id["u1"].0 - 4.1).abs() < 1e-6);
        let r = read_row(&spec("greedy"), 3.5).unwrap();
        assert_eq!(
            r.by_id["u2"].0, 3.5,
            "a greedy token that is no rating: the fallback"
        );
        assert!(
            read_row(&spec("mode"), 3.5)
                .unwrap_err()
                .to_string()
                .contains("mode")
        );
        std::fs::write(&f, "{\"id\":\"u1\",\"rating\":4}\n").unwrap();
        let e = read_row(&spec("median"), 3.5).unwrap_err().to_string();
        assert!(e.contains(":1") || e.contains("line 1"), "{e}");
        assert!(e.contains("probs"), "{e}");
    }
}
