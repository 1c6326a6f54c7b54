//! Contract checks for slots, usable by built-in and third-party plugins alike:
//!
//! ```ignore
//! let b = siren_core::registry::build::<dyn RatingBaseline>("my-baseline", &Default::default())?;
//! siren_core::testkit::baseline_contract(b.as_ref())?;
//! ```

use crate::data::{Dataset, Interaction};
use crate::traits::{ComputeDevice, DatasetLoader, RatingBaseline};
use crate::{CoreError, Result};

fn fail(what: impl Into<String>) -> CoreError {
    CoreError::Data(format!("contract violated: {}", what.into()))
}

/// A small deterministic dataset: 12 users, 10 items, 8 history ratings per user, a valid item
/// per user, plus one item that nobody rated.
pub fn toy_dataset() -> Dataset {
    let mut ds = Dataset::new("toy");
    for i in 0..11 {
        let id = ds.intern_item(&format!("item{i}"));
        ds.items[id as usize].title = format!("Item {i}");
    }
    for u in 0..12u32 {
        ds.intern_user(&format!("user{u}"));
        for k in 0..9u32 {
            let item = (u + 3 * k) % 10;
            let rating = 1.0 + ((u * 7 + item * 3 + k) % 5) as f32;
            let x = Interaction {
                user: u,
                item,
                rating,
                timestamp: i64::from(k),
            };
            if k < 8 {
                ds.history.push(x);
            } else {
                ds.valid.push(x);
            }
        }
    }
    ds
}

/// Checks the `rating-baseline` contract: predictions finite and in `[1, 5]` for every user
/// and item (including an item and a user absent from the fit set), and determinism for a
/// seed.
pub fn baseline_contract(baseline: &dyn RatingBaseline) -> Result<()> {
    let mut ds = toy_dataset();
    let stranger = ds.intern_user("stranger");
    let fit: Vec<Interaction> = ds.history.clone();
    let a = baseline.fit(&ds, &fit, 7)?;
    let b = baseline.fit(&ds, &fit, 7)?;
    for u in 0..ds.users.len() as u32 {
        for i in 0..ds.items.len() as u32 {
            let p = a.predict(u, i);
            if !(p.is_finite() && (1.0..=5.0).contains(&p)) {
                return Err(fail(format!(
                    "predict({u}, {i}) = {p}, expected a value in [1, 5]"
                )));
            }
            if p != b.predict(u, i) {
                return Err(fail(format!(
                    "predict({u}, {i}) differs between two fits with seed 7"
                )));
            }
        }
    }
    let _ = a.predict(stranger, 10);
    Ok(())
}

/// Checks the `dataset` contract on a loaded dataset.
pub fn dataset_contract(loader: &dyn DatasetLoader) -> Result<Dataset> {
    let ds = loader.load()?;
    if ds.history.is_empty() || ds.valid.is_empty() {
        return Err(fail("history and valid must be non-empty"));
    }
    let (nu, ni) = (ds.users.len() as u32, ds.items.len() as u32);
    for x in ds
        .history
        .iter()
        .chain(&ds.train)
        .chain(&ds.valid)
        .chain(&ds.test)
    {
        if x.user >= nu || x.item >= ni {
            return Err(fail(format!(
                "interaction {x:?} indexes outside the catalog"
            )));
        }
        if !(1.0..=5.0).contains(&x.rating) {
            return Err(fail(format!("rating {} outside [1, 5]", x.rating)));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for x in &ds.valid {
        if !seen.insert(x.user) {
            return Err(fail(format!(
                "user {} has two valid interactions",
                ds.users[x.user as usize]
            )));
        }
    }
    Ok(ds)
}

/// Checks the `device` contract: the device opens and computes a 2×2 matmul correctly.
pub fn device_contract(device: &dyn ComputeDevice) -> Result<()> {
    use burn::tensor::Tensor;
    let d = device.open()?;
    let a = Tensor::<2>::from_floats([[1.0, 2.0], [3.0, 4.0]], &d);
    let b = Tensor::<2>::from_floats([[5.0, 6.0], [7.0, 8.0]], &d);
    let got: Vec<f32> = a
        .matmul(b)
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| fail(format!("reading back from {}: {e:?}", device.label())))?;
    if got != [19.0, 22.0, 43.0, 50.0] {
        return Err(fail(format!(
            "{} computed {got:?} for a known matmul",
            device.label()
        )));
    }
    Ok(())
}
