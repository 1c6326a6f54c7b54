// Build-script helper shared by every crate that produces binaries or tests (included with
// `include!`). When the LibTorch backend is in play (`LIBTORCH_USE_PYTORCH=1` with a Python
// that has torch, or `LIBTORCH=<dir>`), embed an rpath to torch's libraries so that binaries
// run without LD_LIBRARY_PATH. Harmless for binaries that do not link LibTorch.
fn torch_rpath() {
    for var in ["LIBTORCH", "LIBTORCH_USE_PYTORCH", "VIRTUAL_ENV"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let dir = if let Some(root) = std::env::var_os("LIBTORCH") {
        Some(std::path::PathBuf::from(root).join("lib"))
    } else if std::env::var_os("LIBTORCH_USE_PYTORCH").is_some() {
        let python = std::env::var_os("VIRTUAL_ENV")
            .map(|v| std::path::PathBuf::from(v).join("bin").join("python"))
            .unwrap_or_else(|| std::path::PathBuf::from("python3"));
        std::process::Command::new(python)
            .args([
                "-c",
                "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))",
            ])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| std::path::PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
    } else {
        None
    };
    if let Some(dir) = dir.filter(|d| d.is_dir()) {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    }
}
