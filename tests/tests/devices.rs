//! Every compiled-in device computes a known matmul. Set `SIREN_REQUIRE_DEVICES=flex,wgpu,tch-cpu`
//! (as CI does) to make an unusable device a failure instead of a skip.

use siren_core::registry::build;
use siren_core::testkit::device_contract;
use siren_core::traits::ComputeDevice;

fn required() -> Vec<String> {
    std::env::var("SIREN_REQUIRE_DEVICES")
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

#[test]
fn compiled_in_devices_compute_correctly() {
    let req = required();
    for name in siren_backends::all_names().unwrap() {
        if name == "tch-cuda" && !req.contains(&name) {
            continue; // a GPU is not expected on every machine
        }
        let dev = build::<dyn ComputeDevice>(&name, &Default::default()).unwrap();
        match device_contract(dev.as_ref()) {
            Ok(()) => eprintln!("{name}: ok ({})", dev.label()),
            Err(e) if req.contains(&name) => panic!("required device {name} failed: {e}"),
            Err(e) => eprintln!("{name}: skipped, not usable here: {e}"),
        }
    }
    for r in &req {
        assert!(
            siren_backends::all_names().unwrap().contains(r),
            "required device {r} is not compiled in"
        );
    }
}

#[test]
fn auto_always_finds_a_device() {
    let (_, label) = siren_backends::open("auto").unwrap();
    assert!(!label.is_empty() && label != "auto", "{label}");
}
