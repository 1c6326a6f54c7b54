//! Rating baselines, registered in the `rating-baseline` slot: [`constant`], [`global_mean`],
//! [`user_avg`], [`item_avg`], [`baseline_only`] (Surprise's global mean + user and item
//! biases) and [`mf`] (biased matrix factorisation by SGD).
#![warn(missing_docs)]

pub mod baseline_only;
pub mod constant;
pub mod global_mean;
pub mod item_avg;
pub mod mf;
pub mod user_avg;

use siren_core::data::Interaction;

/// Clamps a prediction into the rating scale.
pub(crate) fn clip(r: f32) -> f32 {
    if r.is_finite() {
        r.clamp(1.0, 5.0)
    } else {
        3.0
    }
}

/// Mean rating of `fit`, or 3 (the middle of the scale) when empty.
pub(crate) fn global_mean_of(fit: &[Interaction]) -> f32 {
    if fit.is_empty() {
        return 3.0;
    }
    (fit.iter().map(|x| f64::from(x.rating)).sum::<f64>() / fit.len() as f64) as f32
}

/// Per-key means shrunk towards `prior`: `(sum + shrinkage·prior) / (count + shrinkage)`;
/// keys without ratings get `prior`.
pub(crate) fn shrunk_means(
    n_keys: usize,
    fit: &[Interaction],
    key: impl Fn(&Interaction) -> usize,
    prior: f32,
    shrinkage: f64,
) -> Vec<f32> {
    let mut sum = vec![0f64; n_keys];
    let mut count = vec![0f64; n_keys];
    for x in fit {
        let k = key(x);
        if k < n_keys {
            sum[k] += f64::from(x.rating);
            count[k] += 1.0;
        }
    }
    sum.iter()
        .zip(&count)
        .map(|(s, c)| {
            if *c + shrinkage > 0.0 {
                ((s + shrinkage * f64::from(prior)) / (c + shrinkage)) as f32
            } else {
                prior
            }
        })
        .collect()
}

/// Parses a non-negative shrinkage.
pub(crate) fn check_shrinkage(slot: &str, s: f64) -> siren_core::Result<f64> {
    if s.is_finite() && s >= 0.0 {
        Ok(s)
    } else {
        Err(siren_core::CoreError::config(
            format!("params of rating-baseline `{slot}`"),
            format!("shrinkage must be a finite number ≥ 0, got {s}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use approx::assert_abs_diff_eq;
    use siren_core::data::{Dataset, Interaction};
    use siren_core::registry::build;
    use siren_core::traits::RatingBaseline;

    fn x(user: u32, item: u32, rating: f32) -> Interaction {
        Interaction {
            user,
            item,
            rating,
            timestamp: 0,
        }
    }

    fn ds() -> Dataset {
        let mut ds = Dataset::new("hand");
        for u in ["a", "b", "c"] {
            ds.intern_user(u);
        }
        for i in ["x", "y", "z"] {
            ds.intern_item(i);
        }
        ds
    }

    #[test]
    fn hand_computed_means() {
        let ds = ds();
        // a: 5, 3 → 4; b: 2 → 2; c: none. x: 5, 2 → 3.5; y: 3 → 3; z: none. global 10/3.
        let fit = [x(0, 0, 5.0), x(0, 1, 3.0), x(1, 0, 2.0)];
        let p = Default::default();
        let g = build::<dyn RatingBaseline>("global-mean", &p)
            .unwrap()
            .fit(&ds, &fit, 0)
            .unwrap();
        assert_abs_diff_eq!(g.predict(2, 2), 10.0 / 3.0, epsilon = 1e-6);
        let u = build::<dyn RatingBaseline>("user-avg", &p)
            .unwrap()
            .fit(&ds, &fit, 0)
            .unwrap();
        assert_abs_diff_eq!(u.predict(0, 2), 4.0, epsilon = 1e-6);
        assert_abs_diff_eq!(u.predict(1, 2), 2.0, epsilon = 1e-6);
        assert_abs_diff_eq!(u.predict(2, 0), 10.0 / 3.0, epsilon = 1e-6);
        let i = build::<dyn RatingBaseline>("item-avg", &p)
            .unwrap()
            .fit(&ds, &fit, 0)
            .unwrap();
        assert_abs_diff_eq!(i.predict(0, 0), 3.5, epsilon = 1e-6);
        assert_abs_diff_eq!(i.predict(0, 1), 3.0, epsilon = 1e-6);
        assert_abs_diff_eq!(i.predict(0, 2), 10.0 / 3.0, epsilon = 1e-6);
        // shrinkage 1 on user a: (8 + 10/3) / 3
        let params: toml::Table = toml::from_str("shrinkage = 1.0").unwrap();
        let s = build::<dyn RatingBaseline>("user-avg", &params)
            .unwrap()
            .fit(&ds, &fit, 0)
            .unwrap();
        assert_abs_diff_eq!(s.predict(0, 0), (8.0 + 10.0 / 3.0) / 3.0, epsilon = 1e-5);
    }

    #[test]
    fn every_baseline_passes_the_contract() {
        for name in siren_core::registry::names::<dyn RatingBaseline>().unwrap() {
            let b = build::<dyn RatingBaseline>(&name, &Default::default()).unwrap();
            siren_core::testkit::baseline_contract(b.as_ref())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
