//! The process allocator of binaries built with LibTorch: jemalloc, keeping the pages it has
//! touched.
//!
//! Training and scoring on LibTorch's CPU device allocate and free tensors of tens of MB at
//! every operation. glibc's malloc serves those from fresh `mmap`s and returns them on `free`,
//! so the kernel zeroes every page again at each step: measured on SmolLM2-135M (ao-sft,
//! micro-batch 8 × 256 tokens, 2 cores), a fifth of the time went to `clear_page`. jemalloc
//! with its decay off (`dirty_decay_ms:-1`, `muzzy_decay_ms:-1`, `retain:true`) reuses freed
//! pages instead: the same step took 8.0 s instead of 11.2 s and its peak resident memory
//! fell from 7.4 to 6.2 GB (`benchmarks/engine-workload.sh`). Resident memory stays at the
//! peak the process reached, which the peak already bounds.
//!
//! The allocator replaces `malloc` for the whole process (`unprefixed_malloc_on_supported_platforms`),
//! so libtorch's C++ allocations use it too. `MALLOC_CONF` in the environment adds to or
//! overrides these settings.

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's compiled-in options (read at its start-up, before any environment variable).
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "malloc_conf")]
pub static malloc_conf: &[u8; 48] = b"retain:true,dirty_decay_ms:-1,muzzy_decay_ms:-1\0";
