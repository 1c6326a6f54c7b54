//! The run folder `runs/<name>/`: resolved config, run metadata (git revision, device, seed),
//! `metrics.json`, predictions and logs.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::RunConfig;
use crate::metrics::{MethodResult, Metrics};
use crate::{CoreError, Result};

/// Metadata written to `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    /// Run name.
    pub name: String,
    /// `git rev-parse HEAD` of the working directory (with `-dirty` when it has changes), or
    /// `unknown`.
    pub git_revision: String,
    /// The device the run used.
    pub device: String,
    /// The seed.
    pub seed: u64,
    /// siren version.
    pub siren_version: String,
    /// Seconds since the Unix epoch at start.
    pub started_unix: u64,
    /// The command line.
    pub command: Vec<String>,
}

/// An open run folder.
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
}

pub use crate::files::write_atomic;

/// The git revision of the current directory, `-dirty` when the tree has changes.
pub fn git_revision() -> String {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output();
    let Ok(out) = out else {
        return "unknown".into();
    };
    if !out.status.success() {
        return "unknown".into();
    }
    let rev = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let dirty = std::process::Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    if dirty { format!("{rev}-dirty") } else { rev }
}

impl RunDir {
    /// Creates (or reopens) `<config.runs_dir>/<config.name>/` and writes `config.toml` and
    /// `run.json`.
    pub fn create(config: &RunConfig, device: &str) -> Result<Self> {
        if config.name.is_empty()
            || config.name.contains(['/', '\\'])
            || config.name == "."
            || config.name == ".."
        {
            return Err(CoreError::config(
                "name",
                format!(
                    "`{}` is not a valid run name (a folder name without slashes)",
                    config.name
                ),
            ));
        }
        let path = config.runs_dir.join(&config.name);
        std::fs::create_dir_all(&path).map_err(|e| CoreError::io(&path, e))?;
        let dir = Self { path };
        if crate::dist::is_leader() {
            write_atomic(&dir.file("config.toml"), config.to_toml()?.as_bytes())?;
        }
        let meta = RunMeta {
            name: config.name.clone(),
            git_revision: git_revision(),
            device: device.to_string(),
            seed: config.seed,
            siren_version: env!("CARGO_PKG_VERSION").to_string(),
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            command: std::env::args().collect(),
        };
        dir.write_json("run.json", &meta)?;
        Ok(dir)
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A file inside the folder.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// The layout of a run folder, in one place: stage 1 (`stage1/`: checkpoints, metrics,
    /// `key.txt`, the trained weights in `policy/`).
    pub fn stage1(&self) -> PathBuf {
        self.file("stage1")
    }

    /// Stage 1's warm start (`stage1-warmup/`, laid out as `stage1/`).
    pub fn stage1_warmup(&self) -> PathBuf {
        self.file("stage1-warmup")
    }

    /// Stage 2 (`stage2/`: the shared CoT harvest and one folder per internalization).
    pub fn stage2(&self) -> PathBuf {
        self.file("stage2")
    }

    /// The trained weights inside a training folder (`<dir>/policy/`).
    pub fn policy_of(dir: &Path) -> PathBuf {
        dir.join("policy")
    }

    /// The sketch stage's key file (`sketch.key`).
    pub fn sketch_key(&self) -> PathBuf {
        self.file("sketch.key")
    }

    /// Writes `value` as pretty JSON to `name` (on rank 0 alone in a data-parallel run: every
    /// rank holds the same results, one writes them).
    pub fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        if !crate::dist::is_leader() {
            return Ok(());
        }
        let path = self.file(name);
        let text = serde_json::to_string_pretty(value).map_err(|source| CoreError::Json {
            path: path.clone(),
            source,
        })?;
        Ok(write_atomic(&path, text.as_bytes())?)
    }

    /// The metrics of `(dataset, split, n)`: `metrics.json` when it holds them. Metrics of
    /// another dataset, split or row count are never overwritten: `metrics.json` is moved to
    /// `metrics.<dataset>.<split>.n<N>.json` and the file of the requested key, if one was put
    /// aside earlier, comes back (e.g. an evaluation on a 200-row sample next to a stage that
    /// reports on the whole split).
    ///
    /// In a data-parallel run only rank 0 keeps `metrics.json`; the other ranks get fresh
    /// metrics that they never write.
    fn metrics_for(&self, dataset: &str, split: &str, n: usize) -> Result<Metrics> {
        if !crate::dist::is_leader() {
            return Ok(Metrics::new(dataset, split, n));
        }
        let path = self.file("metrics.json");
        let aside = |d: &str, s: &str, n: usize| self.file(&format!("metrics.{d}.{s}.n{n}.json"));
        match Metrics::read(&path) {
            Ok(m) if m.dataset == dataset && m.split == split && m.n == n => return Ok(m),
            Ok(m) => {
                let to = aside(&m.dataset, &m.split, m.n);
                std::fs::rename(&path, &to).map_err(|e| CoreError::io(&to, e))?;
                tracing::info!(
                    "metrics of {} / {} (n = {}) moved to {}",
                    m.dataset,
                    m.split,
                    m.n,
                    to.display()
                );
            }
            Err(_) => {}
        }
        let back = aside(dataset, split, n);
        match Metrics::read(&back) {
            Ok(m) => {
                std::fs::rename(&back, &path).map_err(|e| CoreError::io(&path, e))?;
                Ok(m)
            }
            Err(_) => Ok(Metrics::new(dataset, split, n)),
        }
    }

    /// Sets section `name` of `metrics.json` (kept with the method rows of the same dataset,
    /// split and row count; see `metrics_for` for other keys).
    pub fn record_section(
        &self,
        dataset: &str,
        split: &str,
        n: usize,
        name: &str,
        value: serde_json::Value,
    ) -> Result<Metrics> {
        let mut m = self.metrics_for(dataset, split, n)?;
        m.sections.insert(name.to_string(), value);
        self.write_json("metrics.json", &m)?;
        Ok(m)
    }

    /// Adds `results` to `metrics.json` (rows of the same method are replaced). Metrics of
    /// another dataset, split or row count are put aside, not lost.
    pub fn record_metrics(
        &self,
        dataset: &str,
        split: &str,
        n: usize,
        results: Vec<MethodResult>,
    ) -> Result<Metrics> {
        let mut m = self.metrics_for(dataset, split, n)?;
        for r in results {
            m.upsert(r);
        }
        self.write_json("metrics.json", &m)?;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, name: &str) -> RunConfig {
        let text = format!(
            "name = '{name}'\nruns_dir = '{}'\n[dataset]\nkind = 'movielens'\n",
            dir.display()
        );
        RunConfig::from_table(toml::from_str(&text).unwrap(), "t").unwrap()
    }

    #[test]
    fn run_folder_has_config_meta_and_metrics() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::create(&config(tmp.path(), "r1"), "flex").unwrap();
        assert!(run.file("config.toml").is_file());
        let meta: RunMeta =
            serde_json::from_str(&std::fs::read_to_string(run.file("run.json")).unwrap()).unwrap();
        assert_eq!((meta.device.as_str(), meta.seed), ("flex", 42));
        let r = MethodResult::evaluate("a", &[1.0], &[2.0]).unwrap();
        run.record_metrics("d", "valid", 1, vec![r.clone()])
            .unwrap();
        let r2 = MethodResult::evaluate("b", &[1.0], &[1.0]).unwrap();
        let m = run.record_metrics("d", "valid", 1, vec![r2]).unwrap();
        assert_eq!(m.results.len(), 2, "later stages append");
        let m = run.record_metrics("other", "valid", 1, vec![r]).unwrap();
        assert_eq!(m.results.len(), 1, "another dataset starts afresh");
        assert!(
            run.file("metrics.d.valid.n1.json").is_file(),
            "the first is put aside"
        );
        let m = run
            .record_section("d", "valid", 1, "s", serde_json::json!(1))
            .unwrap();
        assert_eq!(m.results.len(), 2, "and comes back with its rows");
        assert!(run.file("metrics.other.valid.n1.json").is_file());
    }

    #[test]
    fn bad_run_names_are_rejected() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(RunDir::create(&config(tmp.path(), "a/b"), "flex").is_err());
        assert!(RunDir::create(&config(tmp.path(), ".."), "flex").is_err());
    }
}
