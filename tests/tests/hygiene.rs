//! The build cannot drift: the toolchain is pinned, LibTorch never comes from a download, and
//! every cargo command the scripts run keeps `Cargo.lock` as committed.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_toolchain_is_pinned_to_one_release_with_fmt_and_clippy() {
    let pin: toml::Value = toml::from_str(&read("rust-toolchain.toml")).unwrap();
    let tc = pin
        .get("toolchain")
        .expect("rust-toolchain.toml: no [toolchain] table");
    let channel = tc
        .get("channel")
        .and_then(|v| v.as_str())
        .expect("no toolchain.channel");
    let parts: Vec<&str> = channel.split('.').collect();
    assert!(
        parts.len() == 3 && parts.iter().all(|p| p.parse::<u32>().is_ok()),
        "toolchain.channel {channel:?} is not one release (major.minor.patch)"
    );
    let components: Vec<&str> = tc
        .get("components")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|c| c.as_str()).collect())
        .unwrap_or_default();
    for needed in ["rustfmt", "clippy"] {
        assert!(
            components.contains(&needed),
            "toolchain.components lacks {needed}"
        );
    }
    // The workspace's declared minimum is the pinned release's major.minor.
    let ws: toml::Value = toml::from_str(&read("Cargo.toml")).unwrap();
    let rust_version = ws["workspace"]["package"]["rust-version"].as_str().unwrap();
    assert_eq!(rust_version, format!("{}.{}", parts[0], parts[1]));
    // The scripts that run cargo first make sure rustup has the pin.
    for script in ["scripts/test.sh", "scripts/quickstart.sh"] {
        let text = read(script);
        let lines: Vec<&str> = text.lines().map(str::trim_start).collect();
        let check = lines.iter().position(|l| *l == "bash scripts/toolchain.sh");
        let check = check.unwrap_or_else(|| panic!("{script} does not run scripts/toolchain.sh"));
        if let Some(cargo) = lines.iter().position(|l| l.starts_with("cargo ")) {
            assert!(
                check < cargo,
                "{script}: cargo runs (line {}) before toolchain.sh",
                cargo + 1
            );
        }
    }
}

#[test]
fn libtorch_comes_from_pip_torch_never_a_download() {
    let cfg: toml::Value = toml::from_str(&read(".cargo/config.toml")).unwrap();
    let v = cfg.get("env").and_then(|e| e.get("LIBTORCH_USE_PYTORCH"));
    let set = match v {
        Some(toml::Value::String(s)) => s == "1",
        Some(t) => t.get("value").and_then(|x| x.as_str()) == Some("1"),
        None => false,
    };
    assert!(
        set,
        ".cargo/config.toml: [env] LIBTORCH_USE_PYTORCH = \"1\" is missing"
    );
    // No crate asks tch for its download feature.
    let lock = read("Cargo.lock");
    assert!(
        lock.contains("name = \"torch-sys\""),
        "Cargo.lock has no torch-sys"
    );
    for manifest in cargo_manifests(&root()) {
        let text = std::fs::read_to_string(&manifest).unwrap();
        assert!(
            !text.contains("download-libtorch"),
            "{} enables tch's download-libtorch",
            manifest.display()
        );
    }
}

#[test]
fn every_scripted_cargo_build_keeps_the_lock_file() {
    let mut files = vec![root().join(".ci/run")];
    for dir in ["scripts", "benchmarks"] {
        for e in std::fs::read_dir(root().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "sh") {
                files.push(p);
            }
        }
    }
    let mut checked = 0;
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split(" #").next().unwrap().trim_start();
            if code.starts_with('#') || code.starts_with("echo") {
                continue;
            }
            for verb in ["build", "test", "clippy", "run", "bench"] {
                if code.contains(&format!("cargo {verb} ")) {
                    checked += 1;
                    assert!(
                        code.contains("--locked"),
                        "{}:{}: `cargo {verb}` without --locked: {line}",
                        f.display(),
                        i + 1
                    );
                }
            }
        }
    }
    assert!(
        checked >= 3,
        "found only {checked} cargo commands in the scripts"
    );
}

fn cargo_manifests(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if p.is_dir() {
            if !name.starts_with('.')
                && !["target", "runs", "assets", "models", "data"].contains(&name.as_str())
            {
                out.extend(cargo_manifests(&p));
            }
        } else if name == "Cargo.toml" {
            out.push(p);
        }
    }
    out
}
