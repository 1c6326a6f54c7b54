//! One file per subcommand.

pub mod baselines;
pub mod devices;
pub mod eval;
pub mod generate;
pub mod internalize;
pub mod plugins;
pub mod predict;
pub mod run;
pub mod sketch;
pub mod sweep;
pub mod train;
