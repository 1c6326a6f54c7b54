//! `user-avg`: each user's mean rating (optionally shrunk towards the global mean); users
//! without ratings get the global mean.

use serde::Deserialize;
use siren_core::data::{Dataset, Interaction};
use siren_core::traits::{RatingBaseline, RatingModel};
use siren_core::{Plugin, Result};

/// Parameters of `user-avg`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserAvgParams {
    /// Pseudo-count of global-mean ratings added to each user (0 = plain mean). Default 0.
    #[serde(default)]
    pub shrinkage: f64,
}

/// The `user-avg` baseline.
#[derive(Debug, Clone)]
pub struct UserAvg {
    shrinkage: f64,
}

impl Plugin for UserAvg {
    type Params = UserAvgParams;
    const SUMMARY: &'static str = "each user's mean rating (global mean for unknown users)";
    fn from_params(p: Self::Params) -> Result<Self> {
        Ok(Self {
            shrinkage: crate::check_shrinkage("user-avg", p.shrinkage)?,
        })
    }
}

siren_core::register_baseline!("user-avg", UserAvg);

struct Fitted {
    means: Vec<f32>,
    global: f32,
}

impl RatingModel for Fitted {
    fn predict(&self, user: u32, _: u32) -> f32 {
        crate::clip(
            self.means
                .get(user as usize)
                .copied()
                .unwrap_or(self.global),
        )
    }
}

impl RatingBaseline for UserAvg {
    fn fit(&self, ds: &Dataset, fit: &[Interaction], _: u64) -> Result<Box<dyn RatingModel>> {
        let global = crate::global_mean_of(fit);
        let means = crate::shrunk_means(
            ds.users.len(),
            fit,
            |x| x.user as usize,
            global,
            self.shrinkage,
        );
        Ok(Box::new(Fitted { means, global }))
    }
}
