//! Checks the collectives of a job this process was launched into, one line per rank:
//!
//! ```text
//! torchrun --standalone --nproc_per_node=2 --no-python target/release/siren-dist-selftest
//! ```
//!
//! Every rank sums a buffer whose values depend on its rank and checks the sum, receives a
//! broadcast from the first and from the last rank and checks it, then meets the others at a
//! barrier. Exits 1 (naming the first wrong value, or the runtime's error) when a result is
//! wrong or a peer does not come within `SIREN_DIST_TIMEOUT_S` seconds (default 120), 2 when
//! not launched.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use siren_dist::{Launch, World};

const N: usize = 100_000;

fn run() -> Result<String, String> {
    let launch = Launch::from_env()
        .map_err(|e| e.to_string())?
        .ok_or("not launched by torchrun (WORLD_SIZE is unset)")?;
    // How long to wait for the other ranks (`SIREN_DIST_TIMEOUT_S`, default 120 s).
    let timeout = match std::env::var("SIREN_DIST_TIMEOUT_S") {
        Ok(v) => v
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("SIREN_DIST_TIMEOUT_S: `{v}` is not a number of seconds"))?,
        Err(_) => 120,
    };
    let world = World::gloo(&launch, Duration::from_secs(timeout)).map_err(|e| e.to_string())?;
    let (r, w) = (world.rank() as f32, world.size() as f32);
    // Twice: the first call also opens the connections; the second is timed.
    let tri = w * (w + 1.0) / 2.0;
    let mut ms = 0.0;
    for _ in 0..2 {
        let mut buf: Vec<f32> = (0..N).map(|i| (r + 1.0) * (i % 97) as f32).collect();
        let t = Instant::now();
        world.all_reduce_sum(&mut buf).map_err(|e| e.to_string())?;
        ms = t.elapsed().as_secs_f64() * 1e3;
        if let Some(i) = (0..N).find(|&i| buf[i] != tri * (i % 97) as f32) {
            return Err(format!(
                "all-reduce: value {i} is {}, expected {}",
                buf[i],
                tri * (i % 97) as f32
            ));
        }
    }
    for root in [0, world.size() - 1] {
        let mut b: Vec<f32> = (0..N).map(|i| r * 1000.0 + i as f32).collect();
        world.broadcast(&mut b, root).map_err(|e| e.to_string())?;
        let want = |i: usize| root as f32 * 1000.0 + i as f32;
        if let Some(i) = (0..N).find(|&i| b[i] != want(i)) {
            return Err(format!(
                "broadcast from {root}: value {i} is {}, expected {}",
                b[i],
                want(i)
            ));
        }
    }
    world.barrier().map_err(|e| e.to_string())?;
    Ok(format!(
        "rank {} of {}: ok (all-reduce of {N} f32 in {ms:.1} ms, broadcasts, barrier; local rank {}, store {}:{}{})",
        world.rank(),
        world.size(),
        launch.local_rank,
        launch.master_addr,
        launch.master_port,
        if launch.agent_store {
            ", torchrun's agent store"
        } else {
            ""
        }
    ))
}

fn main() -> ExitCode {
    match run() {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("siren-dist-selftest: {e}");
            ExitCode::from(if e.starts_with("not launched") { 2 } else { 1 })
        }
    }
}
