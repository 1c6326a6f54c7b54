//! `global-mean`: predicts the mean rating of the fit set for everyone.

use serde::Deserialize;
use siren_core::data::{Dataset, Interaction};
use siren_core::traits::{RatingBaseline, RatingModel};
use siren_core::{Plugin, Result};

/// No parameters.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalMeanParams {}

/// The `global-mean` baseline.
#[derive(Debug, Clone)]
pub struct GlobalMean;

impl Plugin for GlobalMean {
    type Params = GlobalMeanParams;
    const SUMMARY: &'static str = "the mean rating of the fit set, for every pair";
    fn from_params(_: Self::Params) -> Result<Self> {
        Ok(Self)
    }
}

siren_core::register_baseline!("global-mean", GlobalMean);

struct Fitted(f32);

impl RatingModel for Fitted {
    fn predict(&self, _: u32, _: u32) -> f32 {
        self.0
    }
}

impl RatingBaseline for GlobalMean {
    fn fit(&self, _: &Dataset, fit: &[Interaction], _: u64) -> Result<Box<dyn RatingModel>> {
        Ok(Box::new(Fitted(crate::clip(crate::global_mean_of(fit)))))
    }
}
