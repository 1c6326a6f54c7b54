//! Compute devices for SIREN-rs, registered in the `device` slot like plugins:
//!
//! | name | file | needs |
//! |---|---|---|
//! | `flex` | [`flex`] | nothing (pure-Rust CPU) |
//! | `wgpu` | [`wgpu`] | cargo feature `wgpu`; a GPU, or `mesa-vulkan-drivers` for software Vulkan |
//! | `tch-cpu`, `tch-cuda:N` | [`tch`] | cargo feature `tch`; pip's torch (`scripts/setup-torch.sh`) |
//! | `auto` | [`auto`] | the best compiled-in device that works here, with the reason logged |
//!
//! A config names a device as `name` or `name:INDEX` (e.g. `tch-cuda:1`); see [`open`].
#![warn(missing_docs)]

#[cfg(feature = "tch")]
pub mod allocator;
pub mod auto;
pub mod flex;
#[cfg(feature = "tch")]
pub mod tch;
#[cfg(feature = "wgpu")]
pub mod wgpu;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;

use siren_core::burn::tensor::{Device, Tensor};
use siren_core::registry;
use siren_core::traits::ComputeDevice;
use siren_core::{CoreError, Result};

/// Which device features this build has.
pub fn compiled_in() -> Vec<&'static str> {
    let mut v = vec!["flex"];
    if cfg!(feature = "wgpu") {
        v.push("wgpu");
    }
    if cfg!(feature = "tch") {
        v.push("tch-cpu");
        v.push("tch-cuda");
    }
    v
}

/// The GPU and CPU paths this build lacks, each with why: `siren devices` lists them after the
/// compiled-in ones.
pub fn not_compiled_in() -> Vec<(&'static str, &'static str)> {
    let mut v = Vec::new();
    if !cfg!(feature = "wgpu") {
        v.push(("wgpu", "cargo feature `wgpu` not enabled"));
    }
    if !cfg!(feature = "tch") {
        v.push((
            "tch-cpu",
            "cargo feature `tch` not enabled (needs pip's torch: scripts/setup-torch.sh)",
        ));
        v.push(("tch-cuda", "cargo feature `tch` not enabled"));
    }
    v.push((
        "cuda",
        "burn's CubeCL CUDA backend is not built; NVIDIA GPUs run through tch-cuda (docs/devices.md)",
    ));
    v
}

static PANIC_HOOK: Mutex<()> = Mutex::new(());

/// Runs `f`, turning a panic inside a backend (a missing driver, an absent GPU) into an error
/// for device `name`, without printing the panic.
pub(crate) fn guarded<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let _lock = PANIC_HOOK.lock().unwrap_or_else(|p| p.into_inner());
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let out = catch_unwind(AssertUnwindSafe(f));
    std::panic::set_hook(previous);
    match out {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "the backend panicked".to_string());
            Err(CoreError::Device {
                name: name.to_string(),
                reason: first_line(&msg),
            })
        }
    }
}

/// The first line of a backend's panic message (LibTorch appends a C++ backtrace, sometimes
/// escaped into one line), at most 300 characters, without the wrapping of an unwrapped
/// LibTorch error: "called `Result::unwrap()` on an `Err` value: Torch(\"Found no NVIDIA
/// driver…" reads "Found no NVIDIA driver…".
fn first_line(msg: &str) -> String {
    let line = msg.split(['\n']).next().unwrap_or("");
    let line = line.split("\\n").next().unwrap_or(line);
    let line = line
        .strip_prefix("called `Result::unwrap()` on an `Err` value: ")
        .unwrap_or(line);
    let line = line.strip_prefix("Torch(\"").unwrap_or(line);
    let mut out: String = line.chars().take(300).collect();
    if out.len() < line.len() {
        out.push('…');
    }
    out
}

/// Checks that `device` computes a known 2×2 matmul; returns it on success.
pub(crate) fn verified(name: &str, make: impl FnOnce() -> Device) -> Result<Device> {
    guarded(name, || {
        let d = make();
        let a = Tensor::<2>::from_floats([[1.0, 2.0], [3.0, 4.0]], &d);
        let b = Tensor::<2>::from_floats([[5.0, 6.0], [7.0, 8.0]], &d);
        let got = a
            .matmul(b)
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| CoreError::Device {
                name: name.to_string(),
                reason: format!("cannot read results back: {e:?}"),
            })?;
        if got != [19.0, 22.0, 43.0, 50.0] {
            return Err(CoreError::Device {
                name: name.to_string(),
                reason: format!("wrong matmul result {got:?}"),
            });
        }
        Ok(d)
    })
}

pub use siren_core::device::{open, parse_spec};

/// Every device compiled into this build (for contract tests), by registry name.
pub fn all_names() -> Result<Vec<String>> {
    registry::names::<dyn ComputeDevice>()
}

#[cfg(test)]
mod tests {
    #[test]
    fn panic_messages_are_cut_to_their_first_line() {
        let m = "called `Result::unwrap()` on an `Err` value: Torch(\"Found no NVIDIA driver\\nException raised\")\nframe #0";
        assert_eq!(super::first_line(m), "Found no NVIDIA driver");
    }
}
