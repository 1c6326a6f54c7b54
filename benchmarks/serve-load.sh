#!/usr/bin/env bash
# Load test of `siren serve` on loopback (bounded in requests and time, stops by itself):
# p50/p95/p99 latency and requests/s at 1, 8 and 32 clients for /v1/predict and /v1/rank
# (20 candidates), `siren predict` throughput on the same pairs, then a fault run at 3x
# capacity, clients killed mid-request and one panic of the model thread. Results go to runs/serve-load/.
#   bash benchmarks/serve-load.sh [CONFIG] [serve-load arguments...]
# CONFIG defaults to configs/shipped-movies.toml (the shipped model).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/env.sh
config="${1:-configs/shipped-movies.toml}"
shift || true
out=runs/serve-load
mkdir -p "$out"
echo "== building (release, shared build)" >&2
cargo build --locked --release --workspace --all-features --all-targets -q
# SIREN_SERVE_TEST_FAULTS opens the test-only fault route (POST /v1/test/panic-next).
SIREN_SERVE_TEST_FAULTS=1 target/release/siren serve "$config" --addr 127.0.0.1:0 \
  >"$out/server.out" 2>"$out/server.log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  grep -q "listening on" "$out/server.out" 2>/dev/null && break
  kill -0 $pid 2>/dev/null || { cat "$out/server.log" >&2; exit 1; }
  sleep 0.5
done
addr=$(sed -n 's|listening on http://||p' "$out/server.out" | head -1)
[ -n "$addr" ] || { echo "the server did not start" >&2; exit 1; }
echo "== server pid $pid on $addr" >&2
target/release/serve-load "$config" --addr "$addr" --server-pid "$pid" --out "$out" "$@"
echo "== SIGTERM: in-flight requests finish, then the server exits" >&2
kill -TERM $pid
wait $pid
trap - EXIT
echo "== siren predict on the same pairs" >&2
target/release/siren predict "$config" --input "$out/pairs.jsonl" --output "$out/predict.jsonl" 2>&1 \
  | tee "$out/predict.log" | grep -E "scored|wrote" || true
