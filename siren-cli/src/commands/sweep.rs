//! `siren sweep <config> --grid KEY=V1,V2 [--grid ...]` and `siren compare <config>
//! --backbones SPEC,SPEC`: the pipeline per point, one table and chart; see
//! `siren_core::stages::sweep`.

use std::path::{Path, PathBuf};

use siren_core::config::RunConfig;
use siren_core::stages::sweep::{self, Point};

/// The arguments of `siren sweep`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run config (TOML).
    pub config: PathBuf,
    /// A swept key and its values: `--grid alignment.kind=cosine,mae,mse` (repeatable;
    /// several make a cartesian product). Default: the config's [sweep] grid.
    #[arg(long = "grid", value_name = "KEY=V1,V2")]
    pub grid: Vec<String>,
    /// Override a config key for every point (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// The arguments of `siren compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The run config (TOML).
    pub config: PathBuf,
    /// Backbones, comma-separated: PATH (HF folder or GGUF file) or PATH@KIND.
    #[arg(long, value_delimiter = ',', required = true)]
    pub backbones: Vec<String>,
    /// Override a config key for every backbone (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

pub fn sweep(
    config_path: &Path,
    overrides: &[String],
    grids: &[String],
) -> anyhow::Result<PathBuf> {
    let cfg = RunConfig::load(config_path, overrides)?;
    let name = cfg.name.clone();
    if grids.is_empty()
        && let Some(s) = cfg.sweep.as_ref().filter(|s| s.grid.is_empty())
    {
        if s.points.is_empty() {
            anyhow::bail!(
                "{}: [sweep] has neither a grid nor points",
                config_path.display()
            );
        }
        let (report, _) = sweep::run(
            config_path,
            overrides,
            &sweep::listed(&s.points),
            &format!("{name}-sweep"),
            &format!("{name}: {} points", s.points.len()),
        )?;
        print!("{}", std::fs::read_to_string(&report)?);
        println!("\nreport: {}", report.display());
        return Ok(report);
    }
    let grids: Vec<String> = match (grids.is_empty(), &cfg.sweep) {
        (false, _) => grids.to_vec(),
        (true, Some(s)) => s.grid.clone(),
        (true, None) => anyhow::bail!(
            "{}: no --grid given and no [sweep] grid in the config",
            config_path.display()
        ),
    };
    let points = sweep::grid(&grids)?;
    let keys: Vec<&str> = grids
        .iter()
        .map(|g| g.split('=').next().unwrap_or(g))
        .collect();
    let out = format!("{name}-sweep-{}", keys.join("+").replace('.', "-"));
    let (report, _) = sweep::run(
        config_path,
        overrides,
        &points,
        &out,
        &format!("{name}: sweep over {}", keys.join(", ")),
    )?;
    print!("{}", std::fs::read_to_string(&report)?);
    println!("\nreport: {}", report.display());
    Ok(report)
}

/// A backbone spec: `PATH` (HF folder or GGUF file) or `PATH@KIND` (`llama`, `qwen3`).
fn backbone_point(spec: &str) -> anyhow::Result<Point> {
    let (path, kind) = match spec.rsplit_once('@') {
        Some((p, k)) => (p, Some(k)),
        None => (spec, None),
    };
    if !Path::new(path).exists() {
        anyhow::bail!("backbone `{path}`: no such file or folder");
    }
    let stem = Path::new(path)
        .file_stem()
        .map_or_else(|| path.to_string(), |s| s.to_string_lossy().into_owned());
    let mut sets = vec![format!("model.path=\"{path}\"")];
    if let Some(k) = kind {
        sets.push(format!("model.backbone=\"{k}\""));
    }
    Ok(Point {
        label: stem,
        sets,
        run: None,
    })
}

pub fn compare(
    config_path: &Path,
    overrides: &[String],
    backbones: &[String],
) -> anyhow::Result<PathBuf> {
    if backbones.len() < 2 {
        anyhow::bail!("--backbones needs at least two specs (PATH or PATH@KIND), comma-separated");
    }
    let points = backbones
        .iter()
        .map(|b| backbone_point(b))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let name = RunConfig::load(config_path, overrides)?.name;
    let (report, _) = siren_core::stages::sweep::run(
        config_path,
        overrides,
        &points,
        &format!("{name}-compare"),
        &format!("{name}: backbones side by side"),
    )?;
    print!("{}", std::fs::read_to_string(&report)?);
    println!("\nreport: {}", report.display());
    Ok(report)
}
