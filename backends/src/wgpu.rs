//! `wgpu`: burn's WGPU backend (WGSL shaders) on any GPU; on CPU-only machines it runs on
//! software Vulkan (`apt-get install mesa-vulkan-drivers libvulkan1`), slowly. burn's `vulkan`
//! (SPIR-V) feature is deliberately not enabled: it crashes on the software driver.

use serde::Deserialize;
use siren_core::burn::tensor::{Device, DeviceKind};
use siren_core::traits::ComputeDevice;
use siren_core::{CoreError, Plugin, Result};

/// Which adapter to use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdapterKind {
    /// wgpu's own choice (high-power GPU first). Default.
    #[default]
    Default,
    /// The `index`-th discrete GPU.
    Discrete,
    /// The `index`-th integrated GPU.
    Integrated,
    /// The `index`-th virtual GPU.
    Virtual,
    /// A CPU (software) adapter.
    Cpu,
}

/// Parameters of `wgpu`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WgpuParams {
    /// Adapter kind. Default `default`.
    #[serde(default)]
    pub adapter: AdapterKind,
    /// Adapter index within its kind (also `wgpu:N`). Default 0.
    #[serde(default)]
    pub index: usize,
}

/// The `wgpu` device.
#[derive(Debug, Clone)]
pub struct Wgpu {
    p: WgpuParams,
}

impl Wgpu {
    /// A wgpu device on the given adapter.
    pub fn new(adapter: AdapterKind, index: usize) -> Self {
        Self {
            p: WgpuParams { adapter, index },
        }
    }

    fn kind(&self) -> DeviceKind {
        match self.p.adapter {
            AdapterKind::Default => DeviceKind::DefaultDevice,
            AdapterKind::Discrete => DeviceKind::DiscreteGpu(self.p.index),
            AdapterKind::Integrated => DeviceKind::IntegratedGpu(self.p.index),
            AdapterKind::Virtual => DeviceKind::VirtualGpu(self.p.index),
            AdapterKind::Cpu => DeviceKind::Cpu,
        }
    }
}

impl Plugin for Wgpu {
    type Params = WgpuParams;
    const SUMMARY: &'static str =
        "burn wgpu (WGSL) on any GPU; software Vulkan on CPU-only machines";
    fn from_params(p: Self::Params) -> Result<Self> {
        if p.index > 0 && p.adapter == AdapterKind::Default {
            return Err(CoreError::config(
                "params of device `wgpu`",
                "index needs an adapter kind (discrete, integrated, virtual)",
            ));
        }
        Ok(Self { p })
    }
}

siren_core::register_device!("wgpu", Wgpu);

impl ComputeDevice for Wgpu {
    fn open(&self) -> Result<Device> {
        let kind = self.kind();
        crate::verified(&self.label(), move || Device::wgpu(kind))
    }
    fn label(&self) -> String {
        match self.p.adapter {
            AdapterKind::Default => "wgpu".into(),
            a => format!("wgpu ({a:?} {})", self.p.index).to_lowercase(),
        }
    }
}
