//! A stage of `siren run` as a type. The pipeline runner ([`super::pipeline`]) walks
//! [`super::PIPELINE`] in order: it asks each stage whether the run folder already holds its
//! outputs for this config ([`Stage::done`]) and runs it otherwise. Each stage's reuse key (the
//! hash of the config sections its outputs depend on) is written in its own file, next to the
//! code that reads those sections.

use crate::Result;
use crate::config::RunConfig;
use crate::data::Dataset;
use crate::metrics::Metrics;
use crate::run::RunDir;

/// What a stage did in one `siren run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// It ran (some or all of its work).
    Ran,
    /// Its outputs were already in the run folder.
    Reused,
}

impl Status {
    /// `ran` or `reused`, as `report.md` writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ran => "ran",
            Self::Reused => "reused",
        }
    }
}

/// What the stages of one `siren run` share: the config, the dataset, the run folder, and the
/// run's metrics as the last stage that wrote them left them.
pub struct Ctx<'a> {
    /// The run config.
    pub config: &'a RunConfig,
    /// The loaded dataset.
    pub ds: &'a Dataset,
    /// The run folder.
    pub run: &'a RunDir,
    /// `metrics.json` as the last stage wrote it.
    pub metrics: Option<Metrics>,
}

/// One stage of the pipeline.
pub trait Stage: Sync {
    /// Its name in `[pipeline] stages`, the logs and `report.md`.
    fn name(&self) -> &'static str;

    /// Whether `siren run` runs it when `[pipeline] stages` does not list the stages.
    fn by_default(&self, config: &RunConfig) -> bool;

    /// What the run folder already holds of its outputs for this config: one line naming them
    /// (the stage is then reused), or `None` (it runs). An error when the folder holds outputs
    /// of other settings that running would overwrite. By default a stage always runs.
    fn done(&self, config: &RunConfig, run: &RunDir) -> Result<Option<String>> {
        let _ = (config, run);
        Ok(None)
    }

    /// Runs it; one line on what it produced. A stage that reuses part of its work (the
    /// evaluation's cached rows) says so with [`Status::Reused`].
    fn run(&self, ctx: &mut Ctx<'_>) -> Result<(Status, String)>;

    /// Whether the stage splits its work across the ranks of a data-parallel run
    /// ([`crate::dist`]) and so runs on every rank. Otherwise (the default) rank 0 runs it
    /// while the other ranks wait, then they go on with what it wrote.
    fn distributed(&self) -> bool {
        false
    }
}
