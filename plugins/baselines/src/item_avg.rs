//! `item-avg`: each item's mean rating (optionally shrunk towards the global mean); items
//! without ratings get the global mean.

use serde::Deserialize;
use siren_core::data::{Dataset, Interaction};
use siren_core::traits::{RatingBaseline, RatingModel};
use siren_core::{Plugin, Result};

/// Parameters of `item-avg`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemAvgParams {
    /// Pseudo-count of global-mean ratings added to each item (0 = plain mean). Default 0.
    #[serde(default)]
    pub shrinkage: f64,
}

/// The `item-avg` baseline.
#[derive(Debug, Clone)]
pub struct ItemAvg {
    shrinkage: f64,
}

impl Plugin for ItemAvg {
    type Params = ItemAvgParams;
    const SUMMARY: &'static str = "each item's mean rating (global mean for unrated items)";
    fn from_params(p: Self::Params) -> Result<Self> {
        Ok(Self {
            shrinkage: crate::check_shrinkage("item-avg", p.shrinkage)?,
        })
    }
}

siren_core::register_baseline!("item-avg", ItemAvg);

struct Fitted {
    means: Vec<f32>,
    global: f32,
}

impl RatingModel for Fitted {
    fn predict(&self, _: u32, item: u32) -> f32 {
        crate::clip(
            self.means
                .get(item as usize)
                .copied()
                .unwrap_or(self.global),
        )
    }
}

impl RatingBaseline for ItemAvg {
    fn fit(&self, ds: &Dataset, fit: &[Interaction], _: u64) -> Result<Box<dyn RatingModel>> {
        let global = crate::global_mean_of(fit);
        let means = crate::shrunk_means(
            ds.items.len(),
            fit,
            |x| x.item as usize,
            global,
            self.shrinkage,
        );
        Ok(Box::new(Fitted { means, global }))
    }
}
