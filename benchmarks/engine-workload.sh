#!/usr/bin/env bash
# The SIREN workload on the engine, per-sequence against shared-prefix paths, in one run:
# matmul peak, a GRPO step, an ao-sft step (time by phase, GFLOP/s, peak RSS), 100 candidates
# for one user, answer-only evaluation per batch size. Extra arguments go to the binary, e.g.
#   bash benchmarks/engine-workload.sh configs/paper-movies.toml --set device=tch-cpu
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/env.sh
echo "== building (release, shared build)" >&2
cargo build --locked --release --workspace --all-features --all-targets -q
target/release/engine-workload "$@"
