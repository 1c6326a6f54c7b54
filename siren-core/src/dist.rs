//! Data-parallel runs: this process's place among the ranks of one job, and what training and
//! scoring do with it (docs/distributed.md).
//!
//! A job launched by `torchrun` (or anything that sets its environment: Slurm, Kubeflow, Ray)
//! runs one process per rank. The binary joins the job's collective group once, at start, and
//! installs it here ([`install`]); like PyTorch's default process group it is a fact of the
//! process, so every stage reads it from here instead of having it passed down. Without an
//! installed group (a plain `siren` run) every function below is the single-process identity:
//! rank 0 of 1, reductions that change nothing, barriers that return at once.
//!
//! What training does with it ([`crate::train::run_loop`]):
//! - every rank computes the same step batch and takes its contiguous [`shard`] of it (GRPO
//!   shards prompts, so a prompt's group stays on one rank);
//! - losses are normalised by counts over the whole step batch, so the sum of the ranks'
//!   gradients is the gradient of the single-process step: [`reduce_gradients`] sums them in
//!   one flat buffer (with the loss) before the optimizer steps, identically on every rank;
//! - the trainable weights are broadcast from rank 0 before the first step and their hashes
//!   compared after the last ([`broadcast_tensors`], [`agree`]);
//! - metrics are reduced ([`reduce_metrics`]); rank 0 alone writes checkpoints, logs and
//!   exported weights; work that writes shared files runs on rank 0 first ([`leader_first`]).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{DType, Tensor, TensorData};

use crate::engine::{Decoder, TensorMap};
use crate::{CoreError, Result};

/// A collective group over the ranks of one job: the operations data-parallel runs need, on
/// host `f32` buffers (every rank calls each operation in the same order with buffers of the
/// same length).
pub trait Collective: Send + Sync {
    /// This process's rank, `0..size()`.
    fn rank(&self) -> usize;
    /// The number of ranks.
    fn size(&self) -> usize;
    /// This process's rank on its machine (the accelerator it uses).
    fn local_rank(&self) -> usize;
    /// Sums `buf` element-wise over every rank, in place.
    fn all_reduce_sum(&self, buf: &mut [f32]) -> Result<()>;
    /// Overwrites `buf` on every rank with rank `root`'s.
    fn broadcast(&self, buf: &mut [f32], root: usize) -> Result<()>;
    /// Returns once every rank has called it.
    fn barrier(&self) -> Result<()>;
}

static GROUP: OnceLock<Arc<dyn Collective>> = OnceLock::new();

/// Nanoseconds spent in the gradient all-reduce since [`take_reduce_seconds`] last read them.
static REDUCE_NS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Seconds the gradient all-reduces took since the last call ([`reduce_metrics`] reports them
/// with each step as `allreduce_seconds`).
pub fn take_reduce_seconds() -> f64 {
    REDUCE_NS.swap(0, std::sync::atomic::Ordering::Relaxed) as f64 * 1e-9
}

/// Installs this process's group (once; a second call is an error).
pub fn install(group: Arc<dyn Collective>) -> Result<()> {
    GROUP
        .set(group)
        .map_err(|_| CoreError::Data("a distributed group is already installed".into()))
}

/// The installed group, if this process is one rank of several.
pub fn group() -> Option<&'static dyn Collective> {
    GROUP.get().map(|g| g.as_ref()).filter(|g| g.size() > 1)
}

/// This process's rank (0 without a group).
pub fn rank() -> usize {
    group().map_or(0, |g| g.rank())
}

/// The number of ranks (1 without a group).
pub fn size() -> usize {
    group().map_or(1, |g| g.size())
}

/// This process's rank on its machine (0 without a group).
pub fn local_rank() -> usize {
    GROUP.get().map_or(0, |g| g.local_rank())
}

/// Whether this process writes the run's files: rank 0.
pub fn is_leader() -> bool {
    rank() == 0
}

/// Rank `rank`'s contiguous part of `n` items among `size` ranks: `[n·r/W, n·(r+1)/W)`, so
/// the parts differ by at most one item and cover the items once, in order.
pub fn shard_range(n: usize, rank: usize, size: usize) -> std::ops::Range<usize> {
    n * rank / size..n * (rank + 1) / size
}

/// This rank's part of `batch` ([`shard_range`]) and where it starts in `batch`.
pub fn shard<T: Clone>(batch: &[T]) -> (usize, Vec<T>) {
    let r = shard_range(batch.len(), rank(), size());
    (r.start, batch[r].to_vec())
}

/// Whether this rank does unit of work `unit` of a sharded scoring: units go round-robin, so
/// every rank does its part of each stretch of similar units. Every rank must number the
/// units the same way.
pub fn owns(unit: usize) -> bool {
    unit % size() == rank()
}

/// Completes `rows` on every rank: each row was computed by the one rank that holds it
/// (`Some`, of any length; `None` on the others); afterwards every rank holds all of them, bit
/// for bit (one all-reduce of the lengths, one of the values, each row summed with zeros).
/// Alone, every row must already be there. An error names a row no rank computed.
pub fn share_rows(rows: &mut [Option<Vec<f32>>]) -> Result<()> {
    if let Some(g) = group() {
        let mut lens: Vec<f32> = rows
            .iter()
            .map(|r| r.as_ref().map_or(0.0, |v| v.len() as f32 + 1.0))
            .collect();
        g.all_reduce_sum(&mut lens)?;
        let lens: Vec<usize> = lens.iter().map(|&l| l as usize).collect();
        let total: usize = lens.iter().map(|l| l.saturating_sub(1)).sum();
        let mut flat = vec![0.0f32; total];
        let mut at = 0;
        for (r, &l) in rows.iter().zip(&lens) {
            let l = l.saturating_sub(1);
            if let Some(v) = r {
                flat[at..at + l].copy_from_slice(v);
            }
            at += l;
        }
        g.all_reduce_sum(&mut flat)?;
        let mut at = 0;
        for (k, (r, &l)) in rows.iter_mut().zip(&lens).enumerate() {
            if l == 0 {
                return Err(CoreError::Numeric(format!(
                    "sharded scoring: no rank computed row {k}"
                )));
            }
            *r = Some(flat[at..at + l - 1].to_vec());
            at += l - 1;
        }
    }
    match rows.iter().position(Option::is_none) {
        Some(k) => Err(CoreError::Numeric(format!(
            "sharded scoring: row {k} was not computed"
        ))),
        None => Ok(()),
    }
}

/// [`share_rows`] for values of any serialisable type, sent as their JSON text (floats
/// print in the shortest form that reads back to the same bits, so they travel exactly).
pub fn share_json<T: serde::Serialize + serde::de::DeserializeOwned>(
    rows: &mut [Option<T>],
) -> Result<()> {
    if group().is_none() {
        return match rows.iter().position(Option::is_none) {
            Some(k) => Err(CoreError::Numeric(format!(
                "sharded scoring: row {k} was not computed"
            ))),
            None => Ok(()),
        };
    }
    let mut bytes: Vec<Option<Vec<f32>>> = rows
        .iter()
        .map(|r| {
            r.as_ref()
                .map(|v| serde_json::to_vec(v).map(|b| b.into_iter().map(f32::from).collect()))
                .transpose()
        })
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| CoreError::Numeric(format!("sharded scoring: {e}")))?;
    share_rows(&mut bytes)?;
    for (r, b) in rows.iter_mut().zip(bytes) {
        let b: Vec<u8> = b.unwrap_or_default().into_iter().map(|x| x as u8).collect();
        *r = Some(
            serde_json::from_slice(&b)
                .map_err(|e| CoreError::Numeric(format!("sharded scoring: {e}")))?,
        );
    }
    Ok(())
}

/// Sums `buf` over the ranks (nothing to do alone).
pub fn all_reduce_sum(buf: &mut [f32]) -> Result<()> {
    match group() {
        Some(g) => g.all_reduce_sum(buf),
        None => Ok(()),
    }
}

/// Waits for every rank.
pub fn barrier() -> Result<()> {
    match group() {
        Some(g) => g.barrier(),
        None => Ok(()),
    }
}

/// Runs `f` on rank 0, then on the other ranks once rank 0 has finished: for work that
/// writes files the others then read (sketches, caches), so that one rank writes them and the
/// rest find them done. An error on rank 0 ends its process; the launcher then stops the job.
pub fn leader_first<R>(f: impl FnOnce() -> Result<R>) -> Result<R> {
    if group().is_none() {
        return f();
    }
    if is_leader() {
        let out = f()?;
        barrier()?;
        Ok(out)
    } else {
        barrier()?;
        f()
    }
}

/// 16-bit pieces of `v` as floats (exact in `f32`), for broadcasting a hash.
fn pieces(v: u64) -> [f32; 4] {
    std::array::from_fn(|i| ((v >> (16 * i)) & 0xffff) as f32)
}

fn unpieces(p: &[f32]) -> u64 {
    p.iter()
        .enumerate()
        .map(|(i, &x)| (x as u64) << (16 * i))
        .sum()
}

/// Checks that every rank holds the same `value` of `what` (a hash): an error on each rank
/// whose value differs from rank 0's, naming both.
pub fn agree(what: &str, value: u64) -> Result<()> {
    let Some(g) = group() else {
        return Ok(());
    };
    let mut buf = pieces(value);
    g.broadcast(&mut buf, 0)?;
    let leader = unpieces(&buf);
    // Every rank learns how many disagree, so that all of them stop, not only the odd ones.
    let mut odd = [f32::from(leader != value)];
    g.all_reduce_sum(&mut odd)?;
    if odd[0] > 0.0 {
        return Err(CoreError::Numeric(format!(
            "{what} differ across ranks: rank {} holds {value:016x}, rank 0 {leader:016x} ({} \
             of {} ranks differ from rank 0)",
            g.rank(),
            odd[0],
            g.size()
        )));
    }
    Ok(())
}

/// A hash of `map`'s names, shapes and values (bit for bit).
pub fn tensors_hash(map: &TensorMap) -> u64 {
    let mut bytes = Vec::new();
    for (name, (shape, values)) in map {
        bytes.extend_from_slice(name.as_bytes());
        for d in shape {
            bytes.extend_from_slice(&(*d as u64).to_le_bytes());
        }
        for v in values {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
    crate::hash::fnv1a([bytes.as_slice()])
}

/// Overwrites every tensor of `map` with rank 0's (the keys and shapes must match).
pub fn broadcast_tensors(map: &mut TensorMap) -> Result<()> {
    let Some(g) = group() else {
        return Ok(());
    };
    let mut flat: Vec<f32> = map.values().flat_map(|(_, v)| v.iter().copied()).collect();
    g.broadcast(&mut flat, 0)?;
    let mut at = 0;
    for (_, v) in map.values_mut() {
        let n = v.len();
        v.copy_from_slice(&flat[at..at + n]);
        at += n;
    }
    Ok(())
}

/// Reduces one step's metrics over the ranks, each rank having measured `weight` examples:
/// every metric becomes the mean over ranks weighted by `weight`, so a rank reports means
/// over its own examples; `loss` is left as it is (the whole step's on every rank already: it
/// is reduced with the gradients). Every rank must report the same names. Adds
/// `allreduce_seconds`, this rank's time in the gradient all-reduces since the last step.
pub fn reduce_metrics(m: &mut BTreeMap<String, f64>, weight: f64) -> Result<()> {
    let Some(g) = group() else {
        return Ok(());
    };
    // The loss needs nothing: it was reduced with the gradients.
    let names: Vec<String> = m.keys().filter(|k| *k != "loss").cloned().collect();
    agree(
        "the names of the step metrics",
        crate::hash::fnv1a(names.iter().map(String::as_bytes)),
    )?;
    let mut buf: Vec<f32> = names
        .iter()
        // A rank without examples has nothing to report (its means may be 0/0).
        .map(|k| {
            if weight > 0.0 {
                (m[k] * weight) as f32
            } else {
                0.0
            }
        })
        .collect();
    buf.push(weight as f32);
    g.all_reduce_sum(&mut buf)?;
    let total = f64::from(buf[names.len()]).max(f64::MIN_POSITIVE);
    for (k, v) in names.iter().zip(&buf) {
        m.insert(k.clone(), f64::from(*v) / total);
    }
    // This rank's time in the step's gradient all-reduces (waiting for the others included).
    m.insert("allreduce_seconds".into(), take_reduce_seconds());
    Ok(())
}

/// Host copies of the trainable parameters' gradients of `model` in `grads`, in visiting
/// order; a trainable parameter without a gradient contributes zeros and a 0 flag.
struct Gather<'a> {
    grads: &'a GradientsParams,
    seen: Vec<ParamId>,
    values: Vec<f32>,
    flags: Vec<f32>,
    error: Option<CoreError>,
}

impl ModuleVisitor for Gather<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val();
        if !t.is_require_grad() || self.seen.contains(&param.id) || self.error.is_some() {
            return;
        }
        self.seen.push(param.id);
        let n: usize = t.dims().iter().product();
        match self.grads.get::<D>(param.id) {
            Some(g) => match g.reshape([n]).cast(DType::F32).try_into_vec_as::<f32>() {
                Ok(v) => {
                    self.values.extend(v);
                    self.flags.push(1.0);
                }
                Err(e) => {
                    self.error = Some(CoreError::Numeric(format!(
                        "reading a gradient for the all-reduce: {e:?}"
                    )))
                }
            },
            None => {
                self.values.extend(std::iter::repeat_n(0.0, n));
                self.flags.push(0.0);
            }
        }
    }
}

/// Writes the reduced gradients back, in the same order as [`Gather`]: a parameter gets a
/// gradient where some rank had one.
struct Scatter<'a> {
    grads: &'a mut GradientsParams,
    seen: Vec<ParamId>,
    values: &'a [f32],
    flags: &'a [f32],
    at: usize,
}

impl ModuleVisitor for Scatter<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val();
        if !t.is_require_grad() || self.seen.contains(&param.id) {
            return;
        }
        let k = self.seen.len();
        self.seen.push(param.id);
        let shape = t.dims().to_vec();
        let n: usize = shape.iter().product();
        let values = &self.values[self.at..self.at + n];
        self.at += n;
        let old = self.grads.remove::<D>(param.id);
        if self.flags[k] == 0.0 {
            return;
        }
        let (device, dtype) = match &old {
            Some(g) => (g.device(), g.dtype()),
            None => (t.device().without_autodiff(), t.dtype()),
        };
        let t = Tensor::<D>::from_data(TensorData::new(values.to_vec(), shape), &device);
        self.grads.register(
            param.id,
            if dtype == DType::F32 {
                t
            } else {
                t.cast(dtype)
            },
        );
    }
}

/// Sums the gradients of `model` in `grads`, and `loss`, over the ranks in one flat all-reduce
/// (one call per step, not one per tensor), in place: afterwards every rank holds the same
/// gradients, those of the whole step batch when each rank's loss is its share of the step
/// loss.
pub fn reduce_gradients(
    model: &Decoder,
    grads: &mut GradientsParams,
    loss: &mut f64,
) -> Result<()> {
    let Some(g) = group() else {
        return Ok(());
    };
    let mut gather = Gather {
        grads,
        seen: Vec::new(),
        values: Vec::new(),
        flags: Vec::new(),
        error: None,
    };
    model.visit(&mut gather);
    if let Some(e) = gather.error {
        return Err(e);
    }
    let (values, flags, params) = (gather.values, gather.flags, gather.seen.len());
    let n = values.len();
    let mut buf = values;
    buf.extend(&flags);
    // The sizes first: ranks whose models differ must stop, not sum unrelated buffers.
    agree(
        "the trainable parameters (count and size)",
        ((params as u64) << 40) | n as u64,
    )?;
    buf.push(*loss as f32);
    let t = std::time::Instant::now();
    g.all_reduce_sum(&mut buf)?;
    REDUCE_NS.fetch_add(
        t.elapsed().as_nanos() as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
    *loss = f64::from(buf[n + params]);
    let mut scatter = Scatter {
        grads,
        seen: Vec::new(),
        values: &buf[..n],
        flags: &buf[n..n + params],
        at: 0,
    };
    model.visit(&mut scatter);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_batch_once_in_order() {
        for n in 0..9 {
            for w in 1..5 {
                let all: Vec<usize> = (0..w).flat_map(|r| shard_range(n, r, w)).collect();
                assert_eq!(all, (0..n).collect::<Vec<_>>(), "n {n} w {w}");
                let lens: Vec<usize> = (0..w).map(|r| shard_range(n, r, w).len()).collect();
                assert!(lens.iter().max().unwrap() - lens.iter().min().unwrap() <= 1);
            }
        }
        assert_eq!(shard_range(4, 1, 2), 2..4);
    }

    #[test]
    fn hashes_travel_exactly_as_floats() {
        for v in [0u64, 1, 0xffff_ffff_ffff_ffff, 0x0123_4567_89ab_cdef] {
            assert_eq!(unpieces(&pieces(v)), v);
        }
    }

    #[test]
    fn alone_everything_is_the_identity() {
        assert_eq!((rank(), size(), is_leader()), (0, 1, true));
        let mut m = BTreeMap::from([("loss".to_string(), 2.0), ("x".to_string(), 3.0)]);
        reduce_metrics(&mut m, 4.0).unwrap();
        assert_eq!(m["loss"], 2.0);
        assert_eq!(m["x"], 3.0);
        assert_eq!(shard(&[1, 2, 3]), (0, vec![1, 2, 3]));
        agree("x", 5).unwrap();
        assert_eq!(leader_first(|| Ok(7)).unwrap(), 7);
    }
}
