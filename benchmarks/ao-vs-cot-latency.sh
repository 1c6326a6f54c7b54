#!/usr/bin/env bash
# Answer-only vs CoT latency of the same model on the same prompts, in one run (paper RQ2):
# s/sample at batch 1 and mean output tokens for greedy CoT and one-forward answer-only, and
# answer-only throughput at batch 32. Extra arguments go to the binary, e.g.
#   bash benchmarks/ao-vs-cot-latency.sh configs/paper-movies.toml --set name=grpo-movies-small \
#       --set device=tch-cpu --n 20
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/env.sh
echo "== building (release, shared build)" >&2
cargo build --locked --release --workspace --all-features --all-targets -q
target/release/ao-vs-cot-latency "$@"
