//! One file per subcommand.

pub mod baselines;
pub mod devices;
pub mod generate;
pub mod plugins;
pub mod sketch;
