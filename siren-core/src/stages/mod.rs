//! The stages of a SIREN run, each a function of the run config and the dataset that writes
//! its artifacts into the run folder. The CLI commands (`siren sketch`, ...) are thin wrappers,
//! and the pipeline runner chains them.

pub mod sketch;

use std::time::Instant;

use crate::config::RunConfig;
use crate::data::Dataset;
use crate::registry::build;
use crate::traits::DatasetLoader;
use crate::{CoreError, Result};

/// Loads the configured dataset (with a spinner and a summary log line).
pub fn load_dataset(config: &RunConfig) -> Result<Dataset> {
    let loader = build::<dyn DatasetLoader>(&config.dataset.kind, &config.dataset.params)?;
    let spinner = crate::progress::spinner(format!("loading {}", config.dataset.kind));
    let t = Instant::now();
    let ds = loader.load();
    spinner.finish_and_clear();
    let ds = ds?;
    tracing::info!("{} ({:.1}s)", ds.summary(), t.elapsed().as_secs_f64());
    if ds.split(config.eval.split).is_empty() {
        return Err(CoreError::Data(format!(
            "the {} split of `{}` is empty (for test, give the test file in [dataset.params])",
            config.eval.split.as_str(),
            ds.name
        )));
    }
    Ok(ds)
}

/// FNV-1a over byte strings (cache keys; not cryptographic).
pub(crate) fn fnv1a<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in p {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        h = (h ^ 0xff).wrapping_mul(0x0100_0000_01b3);
    }
    h
}
