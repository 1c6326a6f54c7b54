//! Candidate retrievers, registered in the `retriever` slot: [`popularity`], [`item_knn`]
//! (cosine over co-occurrence), [`bpr_mf`] (matrix factorisation by BPR) and [`lightgcn`]
//! (He et al. 2020). Each learns from which items users interacted with in the fit set, not
//! from the ratings they gave; the caller excludes the items a user has seen.
#![warn(missing_docs)]

pub mod bpr_mf;
pub mod item_knn;
pub mod lightgcn;
pub mod popularity;

use rand::Rng;
use siren_core::data::{Dataset, Interaction};
use siren_core::{CoreError, Result};

/// Each user's distinct items in `fit`, sorted; an interaction that indexes outside the
/// dataset is an error naming it.
pub(crate) fn user_items(
    retriever: &str,
    ds: &Dataset,
    fit: &[Interaction],
) -> Result<Vec<Vec<u32>>> {
    let (nu, ni) = (ds.users.len(), ds.items.len());
    let mut by_user = vec![Vec::new(); nu];
    for x in fit {
        if x.user as usize >= nu || x.item as usize >= ni {
            return Err(CoreError::Data(format!(
                "retriever `{retriever}`: interaction {x:?} indexes outside the dataset \
                 ({nu} users, {ni} items)"
            )));
        }
        by_user[x.user as usize].push(x.item);
    }
    for items in &mut by_user {
        items.sort_unstable();
        items.dedup();
    }
    Ok(by_user)
}

/// The error of a bad parameter: names the retriever and the field.
pub(crate) fn bad_param(retriever: &str, field: &str, msg: impl std::fmt::Display) -> CoreError {
    CoreError::config(
        format!("params of retriever `{retriever}`"),
        format!("{field}: {msg}"),
    )
}

/// Checks that each `(name, value)` is finite and ≥ 0, and that each of `positive` is > 0.
pub(crate) fn check_reals(
    retriever: &str,
    values: &[(&str, f64)],
    positive: &[&str],
) -> Result<()> {
    for &(name, v) in values {
        if !(v.is_finite() && v >= 0.0) {
            return Err(bad_param(
                retriever,
                name,
                format!("must be a finite number ≥ 0, got {v}"),
            ));
        }
        if positive.contains(&name) && v == 0.0 {
            return Err(bad_param(retriever, name, "must be > 0"));
        }
    }
    Ok(())
}

/// Checks that each `(name, value)` is at least 1.
pub(crate) fn check_counts(retriever: &str, values: &[(&str, usize)]) -> Result<()> {
    for &(name, v) in values {
        if v == 0 {
            return Err(bad_param(retriever, name, "must be at least 1"));
        }
    }
    Ok(())
}

/// A standard normal draw (Box–Muller).
pub(crate) fn normal(rng: &mut impl Rng) -> f32 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// An item the user has not interacted with, drawn uniformly (`seen` sorted); `None` when the
/// user has seen every item.
pub(crate) fn negative(rng: &mut impl Rng, seen: &[u32], n_items: u32) -> Option<u32> {
    if seen.len() >= n_items as usize {
        return None;
    }
    loop {
        let j = rng.random_range(0..n_items);
        if seen.binary_search(&j).is_err() {
            return Some(j);
        }
    }
}

/// Dot product.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use siren_core::data::{Dataset, Interaction};
    use siren_core::registry::{build, names};
    use siren_core::traits::Retriever;

    #[test]
    fn every_retriever_passes_the_contract() {
        let all = names::<dyn Retriever>().unwrap();
        for name in ["bpr-mf", "item-knn", "lightgcn", "popularity"] {
            assert!(all.iter().any(|n| n == name), "{name} is not registered");
        }
        for name in all {
            let r = build::<dyn Retriever>(&name, &Default::default()).unwrap();
            siren_core::testkit::retriever_contract(r.as_ref())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    /// Two communities: users 0..20 interact with items 0..10, users 20..40 with items
    /// 10..20, each with 6 of their group's 10. A personalised retriever puts the user's own
    /// group first among the items the user has not seen; popularity cannot tell them apart.
    #[test]
    fn personalised_retrievers_find_the_users_community() {
        let mut ds = Dataset::new("communities");
        for i in 0..20 {
            ds.intern_item(&format!("i{i}"));
        }
        let mut fit = Vec::new();
        for u in 0..40u32 {
            ds.intern_user(&format!("u{u}"));
            let base = if u < 20 { 0 } else { 10 };
            for k in 0..6u32 {
                let item = base + (u * 3 + k * 7) % 10;
                fit.push(Interaction {
                    user: u,
                    item,
                    rating: 4.0,
                    timestamp: i64::from(k),
                });
            }
        }
        let seen = crate::user_items("test", &ds, &fit).unwrap();
        for name in ["item-knn", "bpr-mf", "lightgcn"] {
            let params: siren_core::config::Params = match name {
                "lightgcn" => toml_table("epochs = 100\nbatch = 64\nlr = 0.01"),
                _ => Default::default(),
            };
            let model = build::<dyn Retriever>(name, &params)
                .unwrap()
                .fit(&ds, &fit, 3)
                .unwrap();
            let mut right = 0;
            let mut scores = vec![0f32; 20];
            for u in 0..40u32 {
                model.scores(u, &mut scores);
                let best = (0..20u32)
                    .filter(|i| seen[u as usize].binary_search(i).is_err())
                    .max_by(|&a, &b| scores[a as usize].total_cmp(&scores[b as usize]))
                    .unwrap();
                right += usize::from((best < 10) == (u < 20));
            }
            assert!(
                right >= 36,
                "{name}: {right} of 40 users got their community first"
            );
        }
    }

    fn toml_table(s: &str) -> siren_core::config::Params {
        s.parse::<siren_core::config::Params>().unwrap()
    }
}
