//! Opening a compute device by its spec (`auto`, `flex`, `wgpu`, `tch-cpu`, `tch-cuda:1`, ...)
//! through the `device` slot of the registry.

use crate::registry::{self, Params};
use crate::traits::ComputeDevice;
use crate::{CoreError, Result};

/// Parses a device spec `name` or `name:INDEX` into the registry name and its params.
pub fn parse_spec(spec: &str) -> Result<(String, Params)> {
    let spec = spec.trim();
    let mut params = Params::new();
    let name = match spec.split_once(':') {
        Some((n, idx)) => {
            let i: i64 = idx.parse().map_err(|_| {
                CoreError::config("device", format!("`{spec}`: expected NAME or NAME:INDEX"))
            })?;
            params.insert("index".into(), i.into());
            n
        }
        None => spec,
    };
    Ok((name.to_string(), params))
}

/// Opens the device named by `spec` (`auto`, `flex`, `wgpu`, `tch-cpu`, `tch-cuda:1`, ...)
/// through the `device` slot; returns it with its label. Plugins that run models use this.
///
/// In a data-parallel run ([`crate::dist`]), an accelerator named without an index
/// (`tch-cuda`, `wgpu`) is the one of this process's local rank, as torchrun lays ranks out.
pub fn open(spec: &str) -> Result<(burn::tensor::Device, String)> {
    let (name, mut params) = parse_spec(spec)?;
    if crate::dist::size() > 1 && matches!(name.as_str(), "tch-cuda" | "wgpu") {
        params
            .entry("index".to_string())
            .or_insert_with(|| (crate::dist::local_rank() as i64).into());
    }
    let plugin = registry::build::<dyn ComputeDevice>(&name, &params)?;
    let device = plugin.open()?;
    Ok((device, plugin.label()))
}

/// A float type named `f32`, `bf16` or `f16`; `what` names where the name came from in the error.
pub fn float_dtype(name: &str, what: &str) -> Result<burn::tensor::FloatDType> {
    use burn::tensor::FloatDType;
    Ok(match name {
        "f32" => FloatDType::F32,
        "bf16" => FloatDType::BF16,
        "f16" => FloatDType::F16,
        other => {
            return Err(CoreError::Data(format!(
                "{what} `{other}`: expected f32, bf16 or f16"
            )));
        }
    })
}
