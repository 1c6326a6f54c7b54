//! The process allocator of binaries built with LibTorch: jemalloc, keeping the pages it has
//! touched.
//!
//! Training and scoring on LibTorch's CPU device allocate and free tensors of tens of MB at
//! every operation. glibc's malloc serves those from fresh `mmap`s and returns them on `free`,
//! so the kernel zeroes every page again at each step: measured on SmolLM2-135M (ao-sft,
//! micro-batch 8 × 256 tokens, 2 cores), a fifth of the time went to `clear_page`. jemalloc
//! keeps freed pages for reuse instead, in one arena (LibTorch's threads share the pages), and
//! purges pages unused for 30 s (`narenas:1,dirty_decay_ms:30000,muzzy_decay_ms:0`), so that a
//! training step reuses the previous step's pages while the varying shapes of a long run do
//! not pile up. Measured (`benchmarks/engine-workload.sh`, `siren run configs/siren-movies.toml`):
//! - the fixed-shape ao-sft step above: 11.2 s with glibc, 7.5 s with jemalloc;
//! - 12 training steps of 16 compact prompts: ~20 s per step and 7.3 GB peak, against ~33 s with
//!   glibc. With no purging at all (`dirty_decay_ms:-1`) the steps take ~18 s but resident
//!   memory grows with every new shape (24 GB and out of memory after 20 steps);
//! - the whole recipe (`configs/siren-movies.toml`, 61 min): its 64 warm-start steps of 16
//!   compact prompts took 18-31 s each (23 s on average, no upward drift), with a peak resident
//!   memory of 8.3 GB over the run.
//!
//! The allocator replaces `malloc` for the whole process (`unprefixed_malloc_on_supported_platforms`),
//! so libtorch's C++ allocations use it too. `MALLOC_CONF` in the environment adds to or
//! overrides these settings.

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's compiled-in options (read at its start-up, before any environment variable).
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "malloc_conf")]
pub static malloc_conf: &[u8; 48] = b"narenas:1,dirty_decay_ms:30000,muzzy_decay_ms:0\0";
