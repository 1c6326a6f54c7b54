//! `flex`: burn's pure-Rust CPU backend. Always compiled in; needs nothing installed.

use serde::Deserialize;
use siren_core::burn::tensor::Device;
use siren_core::traits::ComputeDevice;
use siren_core::{Plugin, Result};

/// No parameters.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlexParams {}

/// The `flex` device.
#[derive(Debug, Clone)]
pub struct Flex;

impl Plugin for Flex {
    type Params = FlexParams;
    const SUMMARY: &'static str = "burn flex: pure-Rust CPU backend (always available)";
    fn from_params(_: Self::Params) -> Result<Self> {
        Ok(Self)
    }
}

siren_core::register_device!("flex", Flex);

impl ComputeDevice for Flex {
    fn open(&self) -> Result<Device> {
        crate::verified("flex", Device::flex)
    }
    fn label(&self) -> String {
        "flex".into()
    }
}
