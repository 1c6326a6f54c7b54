use crate::Result;

/// Slot `device`: a compute device for burn tensors.
///
/// Contract: [`ComputeDevice::open`] returns a device on which a small matmul has actually run
/// (a device that is compiled in but broken on this machine is an error, not a panic);
/// [`ComputeDevice::label`] names it in run artifacts.
pub trait ComputeDevice: Send + Sync {
    /// Opens and checks the device.
    fn open(&self) -> Result<burn::tensor::Device>;
    /// Human-readable label, e.g. `tch-cpu` or `wgpu (DiscreteGpu 0)`.
    fn label(&self) -> String;
}
