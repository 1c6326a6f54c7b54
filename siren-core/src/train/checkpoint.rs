//! Training checkpoints: `<run>/checkpoints/step-NNNNNN/` holds
//! - `weights.safetensors`: the trainable tensors by module path (f32, exact);
//! - `optimizer.bpk`: the optimizer state (AdamW moments and step counts, burnpack);
//! - `state.json`: the step, the data cursor (epoch and position) and the seed every random
//!   choice of the next step is derived from.
//!
//! A checkpoint is written into `step-NNNNNN.partial/` and renamed when complete, and `latest`
//! names the newest complete one, so a crash at any moment leaves the previous checkpoint
//! usable. Only the newest `keep` checkpoints are kept.

use std::path::{Path, PathBuf};

use super::Optimizer;
use serde::{Deserialize, Serialize};

use super::policy::Policy;
use crate::engine::Weights;
use crate::{CoreError, Result};

/// Where training stands after a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Steps completed.
    pub step: usize,
    /// Steps the run will take in all.
    pub total_steps: usize,
    /// The run seed.
    pub seed: u64,
    /// Trainer name (a checkpoint of another trainer is not resumed).
    pub trainer: String,
    /// Hash of the settings that shape the run (data, batch sizes, trainer params); a
    /// checkpoint made under other settings is not resumed.
    pub settings_hash: String,
}

/// The checkpoint folder of a run.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    dir: PathBuf,
    keep: usize,
}

fn name_of(step: usize) -> String {
    format!("step-{step:06}")
}

impl Checkpoints {
    /// Checkpoints under `dir`, keeping the newest `keep` (at least 1).
    pub fn new(dir: impl Into<PathBuf>, keep: usize) -> Self {
        Self {
            dir: dir.into(),
            keep: keep.max(1),
        }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The newest complete checkpoint, if any.
    pub fn latest(&self) -> Result<Option<PathBuf>> {
        let latest = self.dir.join("latest");
        match std::fs::read_to_string(&latest) {
            Ok(name) => {
                let p = self.dir.join(name.trim());
                if p.join("state.json").is_file() {
                    Ok(Some(p))
                } else {
                    Err(CoreError::Data(format!(
                        "{}: names `{}`, which is not a complete checkpoint",
                        latest.display(),
                        name.trim()
                    )))
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CoreError::io(&latest, e)),
        }
    }

    /// Saves the policy's trainable weights, the optimizer and `state`.
    pub fn save(&self, policy: &Policy, optim: &Optimizer, state: &TrainState) -> Result<PathBuf> {
        std::fs::create_dir_all(&self.dir).map_err(|e| CoreError::io(&self.dir, e))?;
        let name = name_of(state.step);
        let fin = self.dir.join(&name);
        let tmp = self.dir.join(format!("{name}.partial"));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| CoreError::io(&tmp, e))?;
        }
        std::fs::create_dir_all(&tmp).map_err(|e| CoreError::io(&tmp, e))?;
        let tensors = policy.trainable()?;
        if let Some((name, _)) = tensors
            .iter()
            .find(|(_, (_, v))| v.iter().any(|x| !x.is_finite()))
        {
            return Err(CoreError::Numeric(format!(
                "step {}: weight `{name}` is not finite; not saved (the last good checkpoint is \
                 kept; lower training.lr)",
                state.step
            )));
        }
        let bytes = crate::engine::serialize_f32(&tensors)?;
        let wpath = tmp.join("weights.safetensors");
        std::fs::write(&wpath, bytes).map_err(|e| CoreError::io(&wpath, e))?;
        let opath = tmp.join("optimizer.bpk");
        optim
            .inner()
            .save(&opath)
            .map_err(|e| CoreError::Data(format!("{}: {e:?}", opath.display())))?;
        let spath = tmp.join("state.json");
        let json = serde_json::to_vec_pretty(state).map_err(|source| CoreError::Json {
            path: spath.clone(),
            source,
        })?;
        std::fs::write(&spath, json).map_err(|e| CoreError::io(&spath, e))?;
        if fin.exists() {
            std::fs::remove_dir_all(&fin).map_err(|e| CoreError::io(&fin, e))?;
        }
        std::fs::rename(&tmp, &fin).map_err(|e| CoreError::io(&fin, e))?;
        crate::files::write_atomic(&self.dir.join("latest"), name.as_bytes())?;
        self.prune(state.step)?;
        Ok(fin)
    }

    fn prune(&self, newest: usize) -> Result<()> {
        let mut steps: Vec<usize> = std::fs::read_dir(&self.dir)
            .map_err(|e| CoreError::io(&self.dir, e))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().to_string();
                n.strip_prefix("step-")?.parse::<usize>().ok()
            })
            .filter(|&s| s <= newest)
            .collect();
        steps.sort_unstable();
        let drop = steps.len().saturating_sub(self.keep);
        for s in &steps[..drop] {
            let p = self.dir.join(name_of(*s));
            std::fs::remove_dir_all(&p).map_err(|e| CoreError::io(&p, e))?;
        }
        Ok(())
    }

    /// Reads a checkpoint's state without loading weights.
    pub fn read_state(path: &Path) -> Result<TrainState> {
        let spath = path.join("state.json");
        let text = std::fs::read_to_string(&spath).map_err(|e| CoreError::io(&spath, e))?;
        serde_json::from_str(&text).map_err(|source| CoreError::Json {
            path: spath,
            source,
        })
    }

    /// Loads the checkpoint at `path` into `policy` and `optim`; returns its state.
    pub fn load(
        path: &Path,
        policy: &mut Policy,
        optim: Optimizer,
    ) -> Result<(TrainState, Optimizer)> {
        let state = Self::read_state(path)?;
        let wpath = path.join("weights.safetensors");
        let tensors = Weights::from_safetensors(&wpath)?.take_all()?;
        policy
            .restore(tensors)
            .map_err(|e| CoreError::Data(format!("{}: {e}", wpath.display())))?;
        let opath = path.join("optimizer.bpk");
        let optim = optim.map_inner(|o| {
            o.load(&opath)
                .map_err(|e| CoreError::Data(format!("{}: {e:?}", opath.display())))
        })?;
        Ok((state, optim))
    }
}
