//! One file per subcommand.

pub mod baselines;
pub mod devices;
pub mod plugins;
