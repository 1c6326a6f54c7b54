//! Rewards for policy-gradient training, registered in the `reward` slot: [`regression`]
//! (the paper's Eq. 11) and [`binary`] (the exact-match ablation of Table 7). Both add the
//! format term: +1 when the completion follows `<think>…</think><answer>…</answer>` strictly
//! ([`siren_core::answer::format_ok`]), −1 otherwise.
#![warn(missing_docs)]

pub mod binary;
pub mod regression;

use serde::Deserialize;
use siren_core::{CoreError, Result};

/// The rating scale `[min_rating, max_rating]` (default 1..5).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scale {
    /// Lowest rating `a`.
    pub min_rating: f32,
    /// Highest rating `b`.
    pub max_rating: f32,
}

impl Default for Scale {
    fn default() -> Self {
        Self {
            min_rating: 1.0,
            max_rating: 5.0,
        }
    }
}

impl Scale {
    pub(crate) fn validate(self, name: &str) -> Result<Self> {
        if !(self.min_rating.is_finite()
            && self.max_rating.is_finite()
            && self.min_rating < self.max_rating)
        {
            return Err(CoreError::config(
                format!("reward {name}"),
                "min_rating must be finite and below max_rating",
            ));
        }
        Ok(self)
    }
}

/// The format term: +1 or −1.
pub(crate) fn format_term(completion: &str) -> f32 {
    if siren_core::answer::format_ok(completion) {
        1.0
    } else {
        -1.0
    }
}
