//! `item-knn`: item-based collaborative filtering on implicit feedback (Sarwar et al. 2001;
//! Deshpande & Karypis 2004). Two items are as similar as the cosine of their user sets,
//! `|U_i ∩ U_j| / (sqrt(|U_i|·|U_j|) + shrink)`; each item keeps its `neighbours` most similar
//! items; a user's score of item `j` is the sum of `j`'s similarity to the user's items.
//! Items no item of the user is similar to score by popularity, scaled below every similarity,
//! so that users with few items still get a full list.

use std::collections::HashMap;

use serde::Deserialize;
use siren_core::data::{Dataset, Interaction};
use siren_core::traits::{RetrievalModel, Retriever};
use siren_core::{Plugin, Result};

/// Parameters of `item-knn`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemKnnParams {
    /// Most similar items kept per item. Default 100.
    #[serde(default = "d_neighbours")]
    pub neighbours: usize,
    /// Added to the cosine's denominator: pairs seen together by few users count less.
    /// Default 0.
    #[serde(default)]
    pub shrink: f64,
}

fn d_neighbours() -> usize {
    100
}

impl Default for ItemKnnParams {
    fn default() -> Self {
        Self {
            neighbours: d_neighbours(),
            shrink: 0.0,
        }
    }
}

/// The `item-knn` retriever.
#[derive(Debug, Clone)]
pub struct ItemKnn {
    p: ItemKnnParams,
}

impl Plugin for ItemKnn {
    type Params = ItemKnnParams;
    const SUMMARY: &'static str = "item-based kNN: cosine over co-occurrence (neighbours, shrink)";
    fn from_params(p: Self::Params) -> Result<Self> {
        crate::check_counts("item-knn", &[("neighbours", p.neighbours)])?;
        crate::check_reals("item-knn", &[("shrink", p.shrink)], &[])?;
        Ok(Self { p })
    }
}

siren_core::register_retriever!("item-knn", ItemKnn);

/// A fitted item-kNN model.
pub struct ItemKnnModel {
    /// Each user's items in the fit set, sorted.
    user_items: Vec<Vec<u32>>,
    /// Each item's neighbours with their similarity, most similar first.
    neighbours: Vec<Vec<(u32, f32)>>,
    /// Popularity scaled into [0, 1e-6): the order of items no similarity reaches.
    prior: Vec<f32>,
}

impl ItemKnnModel {
    /// Item `i`'s neighbours with their similarities, most similar first.
    pub fn neighbours(&self, i: u32) -> &[(u32, f32)] {
        &self.neighbours[i as usize]
    }
}

impl RetrievalModel for ItemKnnModel {
    fn scores(&self, user: u32, scores: &mut [f32]) {
        scores.copy_from_slice(&self.prior);
        let Some(items) = self.user_items.get(user as usize) else {
            return;
        };
        for &i in items {
            for &(j, s) in &self.neighbours[i as usize] {
                scores[j as usize] += s;
            }
        }
    }
}

impl ItemKnn {
    /// Fits and returns the concrete model.
    pub fn fit_model(&self, ds: &Dataset, fit: &[Interaction]) -> Result<ItemKnnModel> {
        let user_items = crate::user_items("item-knn", ds, fit)?;
        let ni = ds.items.len();
        let mut users_of = vec![0f32; ni];
        let mut co: Vec<HashMap<u32, u32>> = vec![HashMap::new(); ni];
        for items in &user_items {
            for (a, &i) in items.iter().enumerate() {
                users_of[i as usize] += 1.0;
                for &j in &items[a + 1..] {
                    *co[i as usize].entry(j).or_insert(0) += 1;
                    *co[j as usize].entry(i).or_insert(0) += 1;
                }
            }
        }
        let shrink = self.p.shrink as f32;
        let neighbours: Vec<Vec<(u32, f32)>> = co
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let mut v: Vec<(u32, f32)> = row
                    .iter()
                    .map(|(&j, &c)| {
                        let norm = (users_of[i] * users_of[j as usize]).sqrt() + shrink;
                        (j, c as f32 / norm)
                    })
                    .collect();
                v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                v.truncate(self.p.neighbours);
                v
            })
            .collect();
        let most = users_of.iter().copied().fold(1f32, f32::max);
        let prior = users_of.iter().map(|c| 1e-6 * c / (most + 1.0)).collect();
        Ok(ItemKnnModel {
            user_items,
            neighbours,
            prior,
        })
    }
}

impl Retriever for ItemKnn {
    fn fit(&self, ds: &Dataset, fit: &[Interaction], _: u64) -> Result<Box<dyn RetrievalModel>> {
        Ok(Box::new(self.fit_model(ds, fit)?))
    }
}
