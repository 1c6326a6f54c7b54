//! Joining a data-parallel job: when `torchrun` (or Slurm, Kubeflow, Ray through its
//! variables) launched this process as one rank of several, `siren` connects to the job's
//! gloo group over LibTorch's c10d ([`siren_dist::World`]) once, before the command runs, and
//! installs it as the process's group ([`siren_core::dist`]); training, evaluation and
//! ranking then split their work across the ranks. docs/distributed.md.

/// How long a rank waits for the others at a collective: `SIREN_DIST_TIMEOUT_S` seconds,
/// default 3 hours (other ranks wait while rank 0 builds sketches or harvests a teacher).
pub const DEFAULT_TIMEOUT_S: u64 = 3 * 3600;

/// The timeout of `SIREN_DIST_TIMEOUT_S` (or the default).
pub fn timeout() -> anyhow::Result<std::time::Duration> {
    let s = match std::env::var("SIREN_DIST_TIMEOUT_S") {
        Ok(v) => v.trim().parse::<u64>().map_err(|_| {
            anyhow::anyhow!("SIREN_DIST_TIMEOUT_S: `{v}` is not a whole number of seconds")
        })?,
        Err(_) => DEFAULT_TIMEOUT_S,
    };
    Ok(std::time::Duration::from_secs(s))
}

/// Joins the job this process was launched into, if any (`WORLD_SIZE` set, above 1); a
/// second call does nothing.
pub fn join() -> anyhow::Result<()> {
    static JOINED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    if JOINED.get().is_some() {
        return Ok(());
    }
    let Some(launch) = siren_dist::Launch::from_env()? else {
        return Ok(());
    };
    if launch.world_size > 1 {
        connect(&launch)?;
    }
    let _ = JOINED.set(());
    Ok(())
}

/// An error when this process is one rank of several, for the commands that do not split
/// their work across ranks.
pub fn refuse_ranks() -> anyhow::Result<()> {
    match siren_dist::Launch::from_env()? {
        Some(l) if l.world_size > 1 => anyhow::bail!(
            "launched as rank {} of {} (WORLD_SIZE is set), but only train, internalize, run, \
             eval, predict and rank split their work across ranks; run this command as one \
             process (docs/distributed.md)",
            l.rank,
            l.world_size
        ),
        _ => Ok(()),
    }
}

#[cfg(feature = "tch")]
fn connect(launch: &siren_dist::Launch) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let world = siren_dist::World::gloo(launch, timeout()?).with_context(|| {
        format!(
            "rank {} of {}: joining the job's gloo group at {}:{}",
            launch.rank, launch.world_size, launch.master_addr, launch.master_port
        )
    })?;
    tracing::info!(
        "rank {} of {} (local rank {}): joined the gloo group",
        world.rank(),
        world.size(),
        launch.local_rank
    );
    siren_core::dist::install(std::sync::Arc::new(Gloo {
        rank: world.rank(),
        size: world.size(),
        local_rank: launch.local_rank,
        world: std::sync::Mutex::new(world),
    }))?;
    Ok(())
}

#[cfg(not(feature = "tch"))]
fn connect(launch: &siren_dist::Launch) -> anyhow::Result<()> {
    anyhow::bail!(
        "launched as rank {} of {} (WORLD_SIZE is set), but this `siren` was built without \
         LibTorch (cargo feature `tch`), which its collectives need: build with --features \
         tch (docs/distributed.md), or run it as one process",
        launch.rank,
        launch.world_size
    )
}

/// The gloo group as the core's [`siren_core::dist::Collective`]: one collective at a time.
#[cfg(feature = "tch")]
struct Gloo {
    world: std::sync::Mutex<siren_dist::World>,
    rank: usize,
    size: usize,
    local_rank: usize,
}

#[cfg(feature = "tch")]
impl Gloo {
    fn with<R>(
        &self,
        f: impl FnOnce(&siren_dist::World) -> siren_dist::Result<R>,
    ) -> siren_core::Result<R> {
        let world = self
            .world
            .lock()
            .map_err(|_| siren_core::CoreError::Numeric("the gloo group was poisoned".into()))?;
        f(&world).map_err(|e| siren_core::CoreError::Numeric(format!("data-parallel: {e}")))
    }
}

#[cfg(feature = "tch")]
impl siren_core::dist::Collective for Gloo {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }
    fn local_rank(&self) -> usize {
        self.local_rank
    }
    fn all_reduce_sum(&self, buf: &mut [f32]) -> siren_core::Result<()> {
        self.with(|w| w.all_reduce_sum(buf))
    }
    fn broadcast(&self, buf: &mut [f32], root: usize) -> siren_core::Result<()> {
        self.with(|w| w.broadcast(buf, root))
    }
    fn barrier(&self) -> siren_core::Result<()> {
        self.with(|w| w.barrier())
    }
}
