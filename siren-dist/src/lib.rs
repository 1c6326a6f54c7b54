//! Collectives for SIREN-rs over LibTorch's own distributed runtime (c10d, the one
//! `torch.distributed` uses), so that a SIREN-rs process joins a PyTorch job the way its
//! Python workers do: launched by `torchrun` (or Slurm, Kubeflow, Ray, which set the same
//! environment), it reads `RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR` and `MASTER_PORT`,
//! joins torchrun's own store (`TORCHELASTIC_USE_AGENT_STORE`) or, launched without an agent,
//! rank 0 hosts it, and makes a gloo process group on it.
//!
//! The collectives work on one flat `f32` buffer per call (a step's gradients go in one
//! all-reduce, not one call per tensor): [`World::all_reduce_sum`], [`World::broadcast`],
//! [`World::barrier`].
//!
//! ```text
//! torchrun --standalone --nproc_per_node=2 --no-python target/release/siren-dist-selftest
//! ```
//!
//! [`World`] needs the `tch` feature (LibTorch, as the `tch-*` devices); without it the crate
//! builds with no C++ and offers [`Launch`] only.
#![warn(missing_docs)]

#[cfg(feature = "tch")]
pub use world::World;

/// Errors of the distributed layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DistError {
    /// A launch variable that is missing or malformed.
    #[error("environment variable {var}: {reason}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A failure of the runtime (connecting to the store, a collective, a timeout).
    #[error("c10d {op}: {message}")]
    Runtime {
        /// What was being done.
        op: &'static str,
        /// The runtime's message.
        message: String,
    },
    /// A buffer the collective cannot take.
    #[error("{0}")]
    Buffer(String),
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, DistError>;

/// Where this process stands in a launch: the variables torchrun sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// This process's rank, `0..world_size`.
    pub rank: usize,
    /// Processes in the job.
    pub world_size: usize,
    /// This process's rank on its machine (its GPU index under NCCL).
    pub local_rank: usize,
    /// The store's host.
    pub master_addr: String,
    /// The store's port.
    pub master_port: u16,
    /// Whether torchrun's agent hosts the store (every rank joins it as a client); otherwise
    /// rank 0 hosts it.
    pub agent_store: bool,
}

impl Launch {
    /// The launch described by the environment, `None` when `WORLD_SIZE` is unset (a plain
    /// single process). A set but malformed variable is an error naming it.
    pub fn from_env() -> Result<Option<Self>> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// [`Launch::from_env`] over any source of variables.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let Some(world) = get("WORLD_SIZE") else {
            return Ok(None);
        };
        let bad = |var: &str, reason: String| DistError::Env {
            var: var.to_string(),
            reason,
        };
        let number = |var: &str, text: &str| -> Result<usize> {
            text.trim()
                .parse::<usize>()
                .map_err(|_| bad(var, format!("`{text}` is not a non-negative integer")))
        };
        let need = |var: &str| {
            get(var).ok_or_else(|| {
                bad(
                    var,
                    "is not set (WORLD_SIZE is: a launcher sets both)".into(),
                )
            })
        };
        let world_size = number("WORLD_SIZE", &world)?;
        if world_size == 0 {
            return Err(bad("WORLD_SIZE", "must be at least 1".into()));
        }
        let rank = number("RANK", &need("RANK")?)?;
        if rank >= world_size {
            return Err(bad(
                "RANK",
                format!("{rank} is not below WORLD_SIZE = {world_size}"),
            ));
        }
        let local_rank = match get("LOCAL_RANK") {
            Some(v) => number("LOCAL_RANK", &v)?,
            None => rank,
        };
        let master_addr = need("MASTER_ADDR")?;
        if master_addr.trim().is_empty() {
            return Err(bad("MASTER_ADDR", "is empty".into()));
        }
        let port = need("MASTER_PORT")?;
        let master_port = port
            .trim()
            .parse::<u16>()
            .map_err(|_| bad("MASTER_PORT", format!("`{port}` is not a port number")))?;
        let agent_store = get("TORCHELASTIC_USE_AGENT_STORE")
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
        Ok(Some(Self {
            rank,
            world_size,
            local_rank,
            master_addr: master_addr.trim().to_string(),
            master_port,
            agent_store,
        }))
    }
}

#[cfg(feature = "tch")]
mod world {
    use std::ffi::{CString, c_char, c_int};
    use std::ptr::NonNull;
    use std::time::Duration;

    use super::{DistError, Launch, Result};

    #[repr(C)]
    struct RawGroup {
        _private: [u8; 0],
    }

    unsafe extern "C" {
        fn siren_dist_gloo_new(
            host: *const c_char,
            port: u16,
            is_server: c_int,
            rank: c_int,
            world: c_int,
            timeout_ms: i64,
            err: *mut c_char,
            err_len: usize,
        ) -> *mut RawGroup;
        fn siren_dist_all_reduce_sum_f32(
            d: *mut RawGroup,
            data: *mut f32,
            n: i64,
            err: *mut c_char,
            err_len: usize,
        ) -> c_int;
        fn siren_dist_broadcast_f32(
            d: *mut RawGroup,
            data: *mut f32,
            n: i64,
            root: c_int,
            err: *mut c_char,
            err_len: usize,
        ) -> c_int;
        fn siren_dist_barrier(d: *mut RawGroup, err: *mut c_char, err_len: usize) -> c_int;
        fn siren_dist_free(d: *mut RawGroup);
    }

    /// A gloo process group this process belongs to.
    pub struct World {
        raw: NonNull<RawGroup>,
        launch: Launch,
    }

    // SAFETY: the group is used through `&self` methods that c10d makes safe to call from any
    // thread (each call waits for its work); it is freed once, in `Drop`.
    unsafe impl Send for World {}

    const ERR_LEN: usize = 4096;

    /// Calls `f` with an error buffer; a nonzero return becomes a [`DistError::Runtime`].
    fn checked(op: &'static str, f: impl FnOnce(*mut c_char, usize) -> c_int) -> Result<()> {
        let mut buf = vec![0u8; ERR_LEN];
        if f(buf.as_mut_ptr().cast(), ERR_LEN) == 0 {
            return Ok(());
        }
        Err(DistError::Runtime {
            op,
            message: message(&buf),
        })
    }

    fn message(buf: &[u8]) -> String {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).trim().to_string()
    }

    impl World {
        /// Joins the job `launch` describes over gloo (CPU tensors), waiting up to `timeout` for the
        /// other ranks at every step.
        pub fn gloo(launch: &Launch, timeout: Duration) -> Result<Self> {
            let host = CString::new(launch.master_addr.clone()).map_err(|_| DistError::Env {
                var: "MASTER_ADDR".into(),
                reason: "holds a NUL byte".into(),
            })?;
            let int = |v: usize, var: &str| {
                c_int::try_from(v).map_err(|_| DistError::Env {
                    var: var.into(),
                    reason: format!("{v} is too large"),
                })
            };
            let (rank, world) = (
                int(launch.rank, "RANK")?,
                int(launch.world_size, "WORLD_SIZE")?,
            );
            let is_server = c_int::from(!launch.agent_store && launch.rank == 0);
            let ms = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
            let mut buf = vec![0u8; ERR_LEN];
            // SAFETY: every pointer is valid for the call; the shim catches every C++ exception.
            let raw = unsafe {
                siren_dist_gloo_new(
                    host.as_ptr(),
                    launch.master_port,
                    is_server,
                    rank,
                    world,
                    ms,
                    buf.as_mut_ptr().cast(),
                    ERR_LEN,
                )
            };
            let raw = NonNull::new(raw).ok_or_else(|| DistError::Runtime {
                op: "joining the process group",
                message: format!(
                    "{} (store {}:{}, rank {} of {})",
                    message(&buf),
                    launch.master_addr,
                    launch.master_port,
                    launch.rank,
                    launch.world_size
                ),
            })?;
            Ok(Self {
                raw,
                launch: launch.clone(),
            })
        }

        /// This process's rank.
        pub fn rank(&self) -> usize {
            self.launch.rank
        }

        /// Processes in the job.
        pub fn size(&self) -> usize {
            self.launch.world_size
        }

        /// The launch this group was made from.
        pub fn launch(&self) -> &Launch {
            &self.launch
        }

        /// Sums `buf` element-wise over every rank, in place (every rank ends with the sum).
        pub fn all_reduce_sum(&self, buf: &mut [f32]) -> Result<()> {
            let n = len(buf)?;
            // SAFETY: `buf` is valid for `n` floats for the call, which waits for its work.
            checked("all-reduce", |e, l| unsafe {
                siren_dist_all_reduce_sum_f32(self.raw.as_ptr(), buf.as_mut_ptr(), n, e, l)
            })
        }

        /// Replaces `buf` on every rank with rank `root`'s values.
        pub fn broadcast(&self, buf: &mut [f32], root: usize) -> Result<()> {
            if root >= self.size() {
                return Err(DistError::Buffer(format!(
                    "broadcast from rank {root}: the job has {} ranks",
                    self.size()
                )));
            }
            let n = len(buf)?;
            let root = root as c_int;
            // SAFETY: as in `all_reduce_sum`.
            checked("broadcast", |e, l| unsafe {
                siren_dist_broadcast_f32(self.raw.as_ptr(), buf.as_mut_ptr(), n, root, e, l)
            })
        }

        /// Returns once every rank has called it.
        pub fn barrier(&self) -> Result<()> {
            // SAFETY: the group is alive until `Drop`.
            checked("barrier", |e, l| unsafe {
                siren_dist_barrier(self.raw.as_ptr(), e, l)
            })
        }
    }

    /// The length of a buffer as the runtime takes it; an empty buffer is refused (every rank
    /// must pass the same length, and zero says a caller lost its data).
    fn len(buf: &[f32]) -> Result<i64> {
        if buf.is_empty() {
            return Err(DistError::Buffer("a collective on an empty buffer".into()));
        }
        i64::try_from(buf.len()).map_err(|_| DistError::Buffer(format!("{} values", buf.len())))
    }

    impl Drop for World {
        fn drop(&mut self) {
            // SAFETY: made by `siren_dist_gloo_new`, freed only here.
            unsafe { siren_dist_free(self.raw.as_ptr()) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn launch(vars: &[(&str, &str)]) -> Result<Option<Launch>> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Launch::from_vars(|k| m.get(k).cloned())
    }

    const TORCHRUN: [(&str, &str); 6] = [
        ("WORLD_SIZE", "2"),
        ("RANK", "1"),
        ("LOCAL_RANK", "1"),
        ("MASTER_ADDR", "127.0.0.1"),
        ("MASTER_PORT", "29500"),
        ("TORCHELASTIC_USE_AGENT_STORE", "True"),
    ];

    #[test]
    fn no_world_size_is_a_single_process() {
        assert_eq!(launch(&[("RANK", "0")]).unwrap(), None);
    }

    #[test]
    fn torchruns_variables_are_read() {
        let l = launch(&TORCHRUN).unwrap().unwrap();
        assert_eq!(
            l,
            Launch {
                rank: 1,
                world_size: 2,
                local_rank: 1,
                master_addr: "127.0.0.1".into(),
                master_port: 29500,
                agent_store: true,
            }
        );
        let plain = launch(&TORCHRUN[..5]).unwrap().unwrap();
        assert!(
            !plain.agent_store,
            "without the agent, rank 0 hosts the store"
        );
    }

    #[test]
    fn bad_variables_are_named() {
        let with = |k: &str, v: &str| {
            let mut vars: Vec<(&str, &str)> =
                TORCHRUN.iter().copied().filter(|(x, _)| *x != k).collect();
            if !v.is_empty() {
                vars.push((k, v));
            }
            launch(&vars).unwrap_err().to_string()
        };
        let e = with("RANK", "2");
        assert!(
            e.contains("RANK") && e.contains("not below WORLD_SIZE = 2"),
            "{e}"
        );
        let e = with("RANK", "");
        assert!(e.contains("RANK") && e.contains("not set"), "{e}");
        let e = with("MASTER_PORT", "70000");
        assert!(e.contains("MASTER_PORT") && e.contains("`70000`"), "{e}");
        let e = with("WORLD_SIZE", "two");
        assert!(e.contains("WORLD_SIZE") && e.contains("`two`"), "{e}");
        let e = with("WORLD_SIZE", "0");
        assert!(e.contains("at least 1"), "{e}");
    }
}
