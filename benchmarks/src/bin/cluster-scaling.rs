//! Time of the `kmeans` and `hnsw` topic clusterers on a synthetic corpus shaped like text
//! embeddings (default 200,000 points in 64 dimensions, L2-normalised): 20 topics, each a
//! Gaussian blob spread over its own random 8-dimensional subspace (embeddings have low
//! intrinsic dimension) plus small isotropic noise; with the agreement of each clusterer with
//! the generating topics (purity).
//!
//! ```text
//! cluster-scaling [n=200000] [dim=64] [k=20] [clusterers=kmeans,hnsw]
//! ```

use std::time::Instant;

use siren_backends as _;
use siren_core::registry::build;
use siren_core::traits::{Embeddings, TopicClusterer};
use siren_plugins as _;

/// Topics with spread comparable to their separation, so that the problem is not trivial.
fn corpus(n: usize, dim: usize, k: usize) -> (Embeddings, Vec<usize>) {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut gauss = move || {
        let (u, v) = (next().max(1e-12), next());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    };
    const SUB: usize = 8;
    let centers: Vec<Vec<f32>> = (0..k)
        .map(|_| (0..dim).map(|_| gauss()).collect())
        .collect();
    // Each topic's own subspace: SUB random directions.
    let bases: Vec<Vec<Vec<f32>>> = (0..k)
        .map(|_| {
            (0..SUB)
                .map(|_| (0..dim).map(|_| gauss() / (dim as f32).sqrt()).collect())
                .collect()
        })
        .collect();
    let mut data = Vec::with_capacity(n * dim);
    let mut label = Vec::with_capacity(n);
    for i in 0..n {
        let c = i % k;
        let coef: Vec<f32> = (0..SUB).map(|_| 2.5 * gauss()).collect();
        let row: Vec<f32> = (0..dim)
            .map(|d| {
                let along: f32 = (0..SUB).map(|b| coef[b] * bases[c][b][d]).sum();
                centers[c][d] + along + 0.05 * gauss()
            })
            .collect();
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        data.extend(row.iter().map(|x| x / norm));
        label.push(c);
    }
    (Embeddings { n, dim, data }, label)
}

fn purity(assign: &[usize], label: &[usize], k: usize) -> f64 {
    let mut counts = vec![vec![0usize; k]; k];
    for (&a, &l) in assign.iter().zip(label) {
        counts[a][l] += 1;
    }
    counts
        .iter()
        .map(|row| *row.iter().max().unwrap_or(&0))
        .sum::<usize>() as f64
        / assign.len() as f64
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map_or(Ok(200_000), |s| s.parse())?;
    let dim: usize = args.get(2).map_or(Ok(64), |s| s.parse())?;
    let k: usize = args.get(3).map_or(Ok(20), |s| s.parse())?;
    let which = args.get(4).cloned().unwrap_or_else(|| "kmeans,hnsw".into());
    let (items, label) = corpus(n, dim, k);
    println!("| clusterer | n | dim | k | seconds | purity |");
    println!("|---|---|---|---|---|---|");
    for name in which.split(',') {
        let c = build::<dyn TopicClusterer>(name, &Default::default())?;
        let t = Instant::now();
        let topics = c.fit(&items, k, 100, 42)?;
        let secs = t.elapsed().as_secs_f64();
        println!(
            "| {name} | {n} | {dim} | {k} | {secs:.1} | {:.3} |",
            purity(&topics.assignment, &label, k)
        );
    }
    Ok(())
}
