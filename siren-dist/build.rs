//! Compiles `src/shim.cpp` against the LibTorch the workspace builds with (pip's torch through
//! `LIBTORCH_USE_PYTORCH=1` and `VIRTUAL_ENV`, or `LIBTORCH=<dir>`), with gloo's headers from
//! the system (`apt install libgloo-dev`), and links torch's libraries with an rpath (the torch
//! found here, asked once: the same rpath `backends/torch_rpath.rs` gives the other crates).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Ends the build with `msg`.
fn fail(msg: &str) -> ! {
    eprintln!("siren-dist: {msg}");
    std::process::exit(1);
}

/// Torch's folder (with include/ and lib/) and whether it was built with the C++11 ABI.
fn torch() -> (PathBuf, bool) {
    for var in ["LIBTORCH", "LIBTORCH_USE_PYTORCH", "VIRTUAL_ENV"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    if let Some(root) = std::env::var_os("LIBTORCH") {
        return (PathBuf::from(root), true);
    }
    if std::env::var_os("LIBTORCH_USE_PYTORCH").is_none() {
        fail(
            "needs LibTorch: set LIBTORCH_USE_PYTORCH=1 with VIRTUAL_ENV naming a python that has \
             torch (`source scripts/env.sh`), or LIBTORCH=<dir>",
        );
    }
    let python = std::env::var_os("VIRTUAL_ENV")
        .map(|v| PathBuf::from(v).join("bin").join("python"))
        .unwrap_or_else(|| PathBuf::from("python3"));
    let out = Command::new(&python)
        .args([
            "-c",
            "import os, torch; print(os.path.dirname(torch.__file__)); \
             print(int(torch._C._GLIBCXX_USE_CXX11_ABI))",
        ])
        .output()
        .unwrap_or_else(|e| fail(&format!("running {}: {e}", python.display())));
    if !out.status.success() {
        fail(&format!(
            "{} cannot import torch: {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let dir = PathBuf::from(lines.next().unwrap_or_default().trim());
    let abi = lines.next().map(str::trim) == Some("1");
    (dir, abi)
}

fn main() {
    println!("cargo:rerun-if-changed=src/shim.cpp");
    // Without the `tch` feature the crate is only `Launch`: nothing to compile or link.
    if std::env::var_os("CARGO_FEATURE_TCH").is_none() {
        return;
    }
    let (dir, abi) = torch();
    let header = dir.join("include/torch/csrc/distributed/c10d/ProcessGroupGloo.hpp");
    if !header.is_file() {
        fail(&format!(
            "{} is missing: this torch has no c10d headers",
            header.display()
        ));
    }
    let gloo = Path::new("/usr/include/gloo/config.h");
    if !gloo.is_file() {
        fail("gloo's headers are missing (/usr/include/gloo): apt install libgloo-dev");
    }
    cc::Build::new()
        .cpp(true)
        .file("src/shim.cpp")
        .include(dir.join("include"))
        .include(dir.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={}", u8::from(abi)))
        .define("USE_C10D_GLOO", "1")
        .define("GLOG_USE_GLOG_EXPORT", None)
        .warnings(false)
        .compile("siren_dist_shim");
    let lib = dir.join("lib");
    println!("cargo:rustc-link-search=native={}", lib.display());
    // The binaries and tests find torch's libraries without LD_LIBRARY_PATH.
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    println!("cargo:rustc-link-lib=dylib=torch_cpu");
    println!("cargo:rustc-link-lib=dylib=c10");
    println!("cargo:rustc-link-lib=dylib=torch");
}
