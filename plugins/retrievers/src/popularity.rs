//! `popularity`: every user gets the items most users interacted with in the fit set.

use serde::Deserialize;
use siren_core::data::{Dataset, Interaction};
use siren_core::traits::{RetrievalModel, Retriever};
use siren_core::{Plugin, Result};

/// Parameters of `popularity` (none).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PopularityParams {}

/// The `popularity` retriever.
#[derive(Debug, Clone)]
pub struct Popularity;

impl Plugin for Popularity {
    type Params = PopularityParams;
    const SUMMARY: &'static str = "the items most users interacted with";
    fn from_params(_: Self::Params) -> Result<Self> {
        Ok(Self)
    }
}

siren_core::register_retriever!("popularity", Popularity);

struct Fitted {
    users_of: Vec<f32>,
}

impl RetrievalModel for Fitted {
    fn scores(&self, _: u32, scores: &mut [f32]) {
        for (s, c) in scores.iter_mut().zip(&self.users_of) {
            *s = *c;
        }
    }
}

impl Retriever for Popularity {
    fn fit(&self, ds: &Dataset, fit: &[Interaction], _: u64) -> Result<Box<dyn RetrievalModel>> {
        let mut users_of = vec![0f32; ds.items.len()];
        for items in crate::user_items("popularity", ds, fit)? {
            for i in items {
                users_of[i as usize] += 1.0;
            }
        }
        Ok(Box::new(Fitted { users_of }))
    }
}
