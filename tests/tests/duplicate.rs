//! Two plugins registering the same name in one slot fail at start-up, naming both files.

use serde::Deserialize;
use siren_core::data::{Dataset, Interaction};
use siren_core::traits::{RatingBaseline, RatingModel};
use siren_core::{CoreError, Plugin, Result};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

struct Three;
struct Four;

impl Plugin for Three {
    type Params = NoParams;
    const SUMMARY: &'static str = "always 3";
    fn from_params(_: NoParams) -> Result<Self> {
        Ok(Self)
    }
}
impl Plugin for Four {
    type Params = NoParams;
    const SUMMARY: &'static str = "always 4";
    fn from_params(_: NoParams) -> Result<Self> {
        Ok(Self)
    }
}

struct Const(f32);
impl RatingModel for Const {
    fn predict(&self, _: u32, _: u32) -> f32 {
        self.0
    }
}
impl RatingBaseline for Three {
    fn fit(&self, _: &Dataset, _: &[Interaction], _: u64) -> Result<Box<dyn RatingModel>> {
        Ok(Box::new(Const(3.0)))
    }
}
impl RatingBaseline for Four {
    fn fit(&self, _: &Dataset, _: &[Interaction], _: u64) -> Result<Box<dyn RatingModel>> {
        Ok(Box::new(Const(4.0)))
    }
}

siren_core::register_baseline!("constant", Three);
siren_core::register_baseline!("constant", Four);

#[test]
fn duplicate_names_fail_at_start_up() {
    let err = siren_core::registry::check_all().expect_err("duplicate must be rejected");
    assert!(
        matches!(&err, CoreError::DuplicatePlugin { slot: "rating-baseline", name, .. } if name == "constant"),
        "{err}"
    );
    assert!(err.to_string().contains("registered twice"), "{err}");
    // The CLI refuses to start too.
    let e = siren_cli::run_args(["siren", "plugins"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("`constant` is registered twice"), "{e}");
}
