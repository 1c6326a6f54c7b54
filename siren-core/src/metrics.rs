//! Rating metrics and the `metrics.json` schema shared by every command that evaluates.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{CoreError, Result};

fn check(pred: &[f32], truth: &[f32]) -> Result<()> {
    if pred.len() != truth.len() {
        return Err(CoreError::Numeric(format!(
            "{} predictions for {} ratings",
            pred.len(),
            truth.len()
        )));
    }
    if pred.is_empty() {
        return Err(CoreError::Numeric("no predictions to evaluate".into()));
    }
    if let Some(i) = pred.iter().position(|p| !p.is_finite()) {
        return Err(CoreError::Numeric(format!("prediction {i} is {}", pred[i])));
    }
    Ok(())
}

/// Mean absolute error.
pub fn mae(pred: &[f32], truth: &[f32]) -> Result<f64> {
    check(pred, truth)?;
    let s: f64 = pred
        .iter()
        .zip(truth)
        .map(|(p, t)| (f64::from(*p) - f64::from(*t)).abs())
        .sum();
    Ok(s / pred.len() as f64)
}

/// Root mean squared error.
pub fn rmse(pred: &[f32], truth: &[f32]) -> Result<f64> {
    check(pred, truth)?;
    let s: f64 = pred
        .iter()
        .zip(truth)
        .map(|(p, t)| (f64::from(*p) - f64::from(*t)).powi(2))
        .sum();
    Ok((s / pred.len() as f64).sqrt())
}

/// One method's row in `metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodResult {
    /// Method name, e.g. `user-avg`, `siren-ao`.
    pub method: String,
    /// Mean absolute error.
    pub mae: f64,
    /// Root mean squared error.
    pub rmse: f64,
    /// Further measurements (latency, tokens, format rate...).
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl MethodResult {
    /// Computes MAE and RMSE of `pred` against `truth`.
    pub fn evaluate(method: impl Into<String>, pred: &[f32], truth: &[f32]) -> Result<Self> {
        Ok(Self {
            method: method.into(),
            mae: mae(pred, truth)?,
            rmse: rmse(pred, truth)?,
            extra: BTreeMap::new(),
        })
    }
}

/// `runs/<name>/metrics.json`:
/// `{"dataset": "...", "split": "valid", "n": 2629, "results": [{"method": ..., "mae": ..., "rmse": ...}]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Dataset name.
    pub dataset: String,
    /// Evaluated split.
    pub split: String,
    /// Number of evaluated interactions.
    pub n: usize,
    /// One row per method, in the order they were added.
    pub results: Vec<MethodResult>,
    /// Other sections later stages add (e.g. token reports), by name.
    #[serde(flatten)]
    pub sections: BTreeMap<String, serde_json::Value>,
}

impl Metrics {
    /// Empty metrics for a dataset and split.
    pub fn new(dataset: impl Into<String>, split: impl Into<String>, n: usize) -> Self {
        Self {
            dataset: dataset.into(),
            split: split.into(),
            n,
            results: Vec::new(),
            sections: BTreeMap::new(),
        }
    }

    /// Adds a row, replacing an earlier row of the same method.
    pub fn upsert(&mut self, r: MethodResult) {
        match self.results.iter_mut().find(|x| x.method == r.method) {
            Some(slot) => *slot = r,
            None => self.results.push(r),
        }
    }

    /// Reads a metrics file.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| CoreError::io(path, e))?;
        serde_json::from_str(&text).map_err(|source| CoreError::Json {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The rows as an aligned text table.
    pub fn table(&self) -> String {
        let w = self
            .results
            .iter()
            .map(|r| r.method.len())
            .max()
            .unwrap_or(6)
            .max(6);
        let mut s = format!(
            "{} / {} (n = {})\n{:<w$}  {:>7}  {:>7}\n",
            self.dataset, self.split, self.n, "method", "MAE", "RMSE"
        );
        for r in &self.results {
            s.push_str(&format!(
                "{:<w$}  {:>7.4}  {:>7.4}\n",
                r.method, r.mae, r.rmse
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;

    #[test]
    fn hand_computed() {
        // errors: 1, 0, 2, 1 → MAE 1.0, RMSE sqrt(6/4)
        let pred = [4.0, 5.0, 1.0, 3.0];
        let truth = [5.0, 5.0, 3.0, 4.0];
        assert_abs_diff_eq!(mae(&pred, &truth).unwrap(), 1.0, epsilon = 1e-12);
        assert_abs_diff_eq!(rmse(&pred, &truth).unwrap(), 1.5f64.sqrt(), epsilon = 1e-12);
        // fractional: |3.5-4| = .5, |2.25-1| = 1.25 → MAE .875, RMSE sqrt((.25+1.5625)/2)
        assert_abs_diff_eq!(
            mae(&[3.5, 2.25], &[4.0, 1.0]).unwrap(),
            0.875,
            epsilon = 1e-12
        );
        assert_abs_diff_eq!(
            rmse(&[3.5, 2.25], &[4.0, 1.0]).unwrap(),
            0.90625f64.sqrt(),
            epsilon = 1e-12
        );
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(mae(&[], &[]).is_err());
        assert!(rmse(&[1.0], &[1.0, 2.0]).is_err());
        assert!(mae(&[f32::NAN], &[1.0]).is_err());
    }

    #[test]
    fn schema_round_trip() {
        let mut m = Metrics::new("movies", "valid", 2);
        m.upsert(MethodResult::evaluate("user-avg", &[4.0, 5.0], &[5.0, 5.0]).unwrap());
        m.upsert(MethodResult::evaluate("user-avg", &[5.0, 5.0], &[5.0, 5.0]).unwrap());
        let v: serde_json::Value = serde_json::to_value(&m).unwrap();
        assert_eq!(v["dataset"], "movies");
        assert_eq!(v["split"], "valid");
        assert_eq!(v["n"], 2);
        assert_eq!(v["results"].as_array().unwrap().len(), 1);
        assert_eq!(v["results"][0]["method"], "user-avg");
        assert_eq!(v["results"][0]["mae"], 0.0);
        let back: Metrics = serde_json::from_value(v).unwrap();
        assert_eq!(back, m);
    }
}
