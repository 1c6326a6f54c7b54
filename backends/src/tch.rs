//! `tch-cpu` and `tch-cuda:N`: LibTorch through pip's torch (cargo feature `tch`; see
//! `scripts/setup-torch.sh`). The fastest CPU backend on x86 machines.
#![allow(deprecated)] // burn 0.22 marks LibTorch deprecated; 0.22 is pinned for it.

use serde::Deserialize;
use siren_core::burn::tensor::Device;
use siren_core::traits::ComputeDevice;
use siren_core::{Plugin, Result};

/// No parameters.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TchCpuParams {}

/// The `tch-cpu` device.
#[derive(Debug, Clone)]
pub struct TchCpu;

impl Plugin for TchCpu {
    type Params = TchCpuParams;
    const SUMMARY: &'static str = "LibTorch on the CPU (pip torch)";
    fn from_params(_: Self::Params) -> Result<Self> {
        Ok(Self)
    }
}

siren_core::register_device!("tch-cpu", TchCpu);

impl ComputeDevice for TchCpu {
    fn open(&self) -> Result<Device> {
        crate::verified("tch-cpu", Device::libtorch)
    }
    fn label(&self) -> String {
        "tch-cpu".into()
    }
}

/// Parameters of `tch-cuda`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TchCudaParams {
    /// CUDA device index (also `tch-cuda:N`). Default 0.
    #[serde(default)]
    pub index: usize,
}

/// The `tch-cuda:N` device.
#[derive(Debug, Clone)]
pub struct TchCuda {
    index: usize,
}

impl TchCuda {
    /// CUDA device `index`.
    pub fn new(index: usize) -> Self {
        Self { index }
    }
}

impl Plugin for TchCuda {
    type Params = TchCudaParams;
    const SUMMARY: &'static str = "LibTorch on CUDA GPU N (tch-cuda:N)";
    fn from_params(p: Self::Params) -> Result<Self> {
        Ok(Self { index: p.index })
    }
}

siren_core::register_device!("tch-cuda", TchCuda);

impl ComputeDevice for TchCuda {
    fn open(&self) -> Result<Device> {
        let i = self.index;
        crate::verified(&self.label(), move || Device::libtorch_cuda(i))
    }
    fn label(&self) -> String {
        format!("tch-cuda:{}", self.index)
    }
}
