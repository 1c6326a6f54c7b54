//! `auto`: the best compiled-in device that works on this machine, in the order
//! `tch-cuda:0`, a discrete then an integrated GPU through `wgpu`, `tch-cpu`, `flex`. The choice
//! and the reason each better device was passed over are logged. A software wgpu adapter is
//! never chosen automatically: on CPUs it is an order of magnitude slower than `flex`.

use std::sync::Mutex;

use serde::Deserialize;
use siren_core::burn::tensor::Device;
use siren_core::traits::ComputeDevice;
use siren_core::{Plugin, Result};

/// No parameters.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoParams {}

/// The `auto` device.
#[derive(Debug, Default)]
pub struct Auto {
    chosen: Mutex<Option<String>>,
}

impl Plugin for Auto {
    type Params = AutoParams;
    const SUMMARY: &'static str =
        "best working device: tch-cuda:0 > wgpu GPU > tch-cpu > flex (reason logged)";
    fn from_params(_: Self::Params) -> Result<Self> {
        Ok(Self::default())
    }
}

siren_core::register_device!("auto", Auto);

fn candidates() -> Vec<Box<dyn ComputeDevice>> {
    let mut v: Vec<Box<dyn ComputeDevice>> = Vec::new();
    #[cfg(feature = "tch")]
    v.push(Box::new(crate::tch::TchCuda::new(0)));
    #[cfg(feature = "wgpu")]
    {
        use crate::wgpu::{AdapterKind, Wgpu};
        v.push(Box::new(Wgpu::new(AdapterKind::Discrete, 0)));
        v.push(Box::new(Wgpu::new(AdapterKind::Integrated, 0)));
    }
    #[cfg(feature = "tch")]
    v.push(Box::new(crate::tch::TchCpu));
    v.push(Box::new(crate::flex::Flex));
    v
}

impl ComputeDevice for Auto {
    fn open(&self) -> Result<Device> {
        let mut passed = Vec::new();
        let mut last_err = None;
        for c in candidates() {
            match c.open() {
                Ok(d) => {
                    let why = if passed.is_empty() {
                        String::new()
                    } else {
                        format!(" (passed over: {})", passed.join("; "))
                    };
                    tracing::info!("device auto → {}{why}", c.label());
                    if let Ok(mut g) = self.chosen.lock() {
                        *g = Some(c.label());
                    }
                    return Ok(d);
                }
                Err(e) => {
                    passed.push(format!("{}: {e}", c.label()));
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| siren_core::CoreError::Device {
            name: "auto".into(),
            reason: "no device is compiled in".into(),
        }))
    }

    fn label(&self) -> String {
        match self.chosen.lock().ok().and_then(|g| g.clone()) {
            Some(l) => l,
            None => "auto".into(),
        }
    }
}
