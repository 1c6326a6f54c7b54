//! `kmeans`: Lloyd's k-means with k-means++ seeding and several restarts (linfa-clustering),
//! the paper's topic model (the authors use faiss with 30 iterations and 5 restarts).

use linfa::prelude::*;
use linfa_clustering::{KMeans as LinfaKMeans, KMeansInit};
use ndarray::Array2;
use rand_xoshiro::Xoshiro256Plus;
use rand_xoshiro::rand_core::SeedableRng;
use serde::Deserialize;
use siren_core::traits::{Embeddings, TopicClusterer, Topics};
use siren_core::{CoreError, Plugin, Result};

/// Parameters of `kmeans` (the number of topics comes from the sketch stage's `k`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KMeansParams {
    /// Restarts; the run with the lowest inertia wins (default 5).
    pub n_init: usize,
    /// Maximum Lloyd iterations per restart (default 30).
    pub max_iter: u64,
    /// Stop when centers move less than this (default 1e-4).
    pub tolerance: f32,
}

impl Default for KMeansParams {
    fn default() -> Self {
        Self {
            n_init: 5,
            max_iter: 30,
            tolerance: 1e-4,
        }
    }
}

/// The `kmeans` clusterer.
#[derive(Debug, Clone)]
pub struct KMeans {
    p: KMeansParams,
}

impl Plugin for KMeans {
    type Params = KMeansParams;
    const SUMMARY: &'static str =
        "exact k-means, k-means++ seeding, best of n_init restarts (linfa-clustering)";
    fn from_params(p: KMeansParams) -> Result<Self> {
        if p.n_init == 0 || p.max_iter == 0 {
            return Err(CoreError::config(
                "topic-clusterer kmeans",
                "n_init and max_iter must be at least 1",
            ));
        }
        if p.tolerance.is_nan() || p.tolerance <= 0.0 {
            return Err(CoreError::config(
                "topic-clusterer kmeans.tolerance",
                "must be > 0",
            ));
        }
        Ok(Self { p })
    }
}

siren_core::register_clusterer!("kmeans", KMeans);

impl TopicClusterer for KMeans {
    fn fit(&self, items: &Embeddings, k: usize, m: usize, seed: u64) -> Result<Topics> {
        crate::check_input(items, k, "kmeans")?;
        let x = Array2::from_shape_vec((items.n, items.dim), items.data.clone())
            .map_err(|e| CoreError::Data(format!("kmeans: {e}")))?;
        let data = DatasetBase::from(x);
        let model = LinfaKMeans::params_with_rng(k, Xoshiro256Plus::seed_from_u64(seed))
            .init_method(KMeansInit::KMeansPlusPlus)
            .n_runs(self.p.n_init)
            .max_n_iterations(self.p.max_iter)
            .tolerance(self.p.tolerance)
            .fit(&data)
            .map_err(|e| CoreError::Numeric(format!("kmeans: {e}")))?;
        let assignment: Vec<usize> = model.predict(&data).to_vec();
        let centers = Embeddings {
            n: k,
            dim: items.dim,
            data: model.centroids().iter().copied().collect(),
        };
        let nearest = crate::nearest_exact(items, &centers, m);
        Ok(Topics {
            centers,
            assignment,
            nearest,
        })
    }
}
