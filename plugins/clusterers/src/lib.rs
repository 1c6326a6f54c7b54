//! Topic clusterers, registered in the `topic-clusterer` slot: [`kmeans`] (exact Lloyd k-means
//! with k-means++ seeding, linfa-clustering) and [`hnsw`] (average-linkage agglomeration on an
//! approximate k-nearest-neighbour graph built with hnsw_rs, for corpora where exact methods
//! are too slow).
#![warn(missing_docs)]

pub mod hnsw;
pub mod kmeans;

use siren_core::traits::Embeddings;
use siren_core::{CoreError, Result};

/// Checks the common preconditions of every clusterer.
pub(crate) fn check_input(items: &Embeddings, k: usize, what: &str) -> Result<()> {
    if k == 0 {
        return Err(CoreError::config(
            format!("topic-clusterer {what}"),
            "k must be at least 1",
        ));
    }
    if items.n < k {
        return Err(CoreError::Data(format!(
            "{what}: {} items cannot form {k} topics",
            items.n
        )));
    }
    if items.data.len() != items.n * items.dim || items.dim == 0 {
        return Err(CoreError::Data(format!(
            "{what}: embeddings hold {} values, expected {} × {}",
            items.data.len(),
            items.n,
            items.dim
        )));
    }
    if items.data.iter().any(|x| !x.is_finite()) {
        return Err(CoreError::Numeric(format!(
            "{what}: embeddings contain NaN or inf"
        )));
    }
    Ok(())
}

/// Squared Euclidean distance.
pub(crate) fn dist2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Mean of each topic's members (`k × dim`); an empty topic keeps a zero row.
pub(crate) fn centers_of(items: &Embeddings, assignment: &[usize], k: usize) -> Embeddings {
    let d = items.dim;
    let mut sum = vec![0f32; k * d];
    let mut count = vec![0usize; k];
    for (i, &t) in assignment.iter().enumerate() {
        count[t] += 1;
        for (s, x) in sum[t * d..(t + 1) * d].iter_mut().zip(items.row(i)) {
            *s += x;
        }
    }
    for t in 0..k {
        if count[t] > 0 {
            sum[t * d..(t + 1) * d]
                .iter_mut()
                .for_each(|s| *s /= count[t] as f32);
        }
    }
    Embeddings {
        n: k,
        dim: d,
        data: sum,
    }
}

/// The `m` items nearest each center by exact search (ties by index).
pub(crate) fn nearest_exact(items: &Embeddings, centers: &Embeddings, m: usize) -> Vec<Vec<usize>> {
    (0..centers.n)
        .map(|t| {
            let c = centers.row(t);
            let mut v: Vec<(f32, usize)> =
                (0..items.n).map(|i| (dist2(items.row(i), c), i)).collect();
            let m = m.min(v.len());
            if m == 0 {
                return Vec::new();
            }
            v.select_nth_unstable_by(m - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            v.truncate(m);
            v.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            v.into_iter().map(|x| x.1).collect()
        })
        .collect()
}
