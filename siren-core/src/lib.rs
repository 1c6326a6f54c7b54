//! SIREN-rs core: the data model, the plugin traits and their registry, configuration,
//! metrics and run artifacts.
//!
//! Every stage of the SIREN method is a *slot* (a trait in [`traits`]) filled by a plugin chosen
//! by name in a TOML config. Plugins register themselves with one of the `register_*!` macros;
//! [`registry`] resolves names, rejects duplicates at start-up and lists valid names when a name
//! is unknown.
#![warn(missing_docs)]

pub mod answer;
pub mod batching;
pub mod blend;
pub mod calibration;
pub mod config;
pub mod data;
pub mod device;
pub mod dist;
mod error;
pub mod loaders;
pub mod loading;
pub mod metrics;
pub mod paired;
pub mod plot;
pub mod progress;
pub mod prompt;
pub mod rating;
pub mod registry;
pub mod run;
pub mod serving;
pub mod sketching;
pub mod stages;
pub mod testkit;
pub mod train;
pub mod trained;
pub mod traits;

pub use error::{CoreError, Result};
pub use registry::Plugin;
/// The decoder engine (the `siren-engine` crate, which depends on nothing of siren-core).
pub use siren_engine as engine;
/// Leaf helpers every layer uses (from the engine crate, the bottom layer).
pub use siren_engine::{files, hash};

/// Re-exported so that plugins and the CLI use the exact pinned burn.
pub use burn;
/// Re-exported so that the `register_*!` macros work without a direct dependency.
#[doc(hidden)]
pub use inventory;
