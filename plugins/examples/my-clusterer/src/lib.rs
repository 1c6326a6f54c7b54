//! A third-party `topic-clusterer`: farthest-first traversal (greedy k-center), nearest-center topics.
use siren_core::traits::{Embeddings, TopicClusterer, Topics};
use siren_core::{CoreError, Plugin, Result};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {}
pub struct FarthestFirst;

impl Plugin for FarthestFirst {
    type Params = Params;
    const SUMMARY: &'static str = "farthest-first centers (greedy k-center), nearest assignment";
    fn from_params(_: Params) -> Result<Self> {
        Ok(Self)
    }
}

impl TopicClusterer for FarthestFirst {
    fn fit(&self, x: &Embeddings, k: usize, m: usize, seed: u64) -> Result<Topics> {
        let dist = |a: usize, c: &[f32]| x.row(a).iter().zip(c).map(|(p, q)| (p - q) * (p - q)).sum::<f32>();
        let (mut centers, mut near) = (vec![seed as usize % x.n.max(1)], vec![f32::MAX; x.n]);
        while centers.len() < k {
            let c = x.row(centers[centers.len() - 1]).to_vec(); // `near`: distance to the nearest center
            (0..x.n).for_each(|i| near[i] = near[i].min(dist(i, &c)));
            let far = (0..x.n).max_by(|&a, &b| near[a].total_cmp(&near[b])).filter(|&f| near[f] > 1e-12);
            centers.push(far.ok_or_else(|| CoreError::Data(format!("fewer than {k} distinct items")))?);
        }
        let rows: Vec<Vec<f32>> = centers.iter().map(|&c| x.row(c).to_vec()).collect();
        let best = |i: usize| (0..k).min_by(|&a, &b| dist(i, &rows[a]).total_cmp(&dist(i, &rows[b]))).unwrap_or(0);
        let by_center = |c: &Vec<f32>| -> Vec<usize> {
            let mut v: Vec<usize> = (0..x.n).collect();
            v.sort_by(|&a, &b| dist(a, c).total_cmp(&dist(b, c)));
            v.into_iter().take(m).collect()
        };
        let (nearest, assignment) = (rows.iter().map(by_center).collect(), (0..x.n).map(best).collect());
        Ok(Topics { centers: Embeddings { n: k, dim: x.dim, data: rows.concat() }, assignment, nearest })
    }
}

siren_core::register_clusterer!("example.farthest-first", FarthestFirst);
