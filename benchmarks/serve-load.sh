#!/usr/bin/env bash
# Load test of `siren serve` on loopback (bounded in requests and time, stops by itself):
# p50/p95/p99 latency and requests/s at 1, 8 and 32 clients for /v1/predict and /v1/rank
# (20 candidates), `siren predict` throughput on the same pairs, then a fault run at 3x
# capacity, clients killed mid-request and one panic of the model thread; last, `siren predict` at
# batch 1 on the same pairs (one forward pass per pair, against the one-client p50). Results go
# to runs/serve-load/.
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
echo "== one forward pass per pair: siren predict at batch 1 on the same pairs" >&2
target/release/siren predict "$config" --input "$out/pairs.jsonl" --output "$out/predict-b1.jsonl" \
  --set eval.batch_size=1 2>&1 | tee "$out/predict-b1.log" | grep -E "scored|wrote" || true
# The server against `siren predict` on the same pairs: throughput at the most clients, and
# the one-client p50 against one forward pass (batch 1, time per pair).
python3 - "$out" <<'PY' | tee -a "$out/serve-load.md"
import json, re, sys
out = sys.argv[1]
load = json.load(open(f"{out}/serve-load.json"))
def scored(log):
    m = re.search(r"scored (\d+) pairs in ([0-9.]+)s", open(f"{out}/{log}").read())
    return int(m.group(1)), float(m.group(2))
n, s = scored("predict.log")
n1, s1 = scored("predict-b1.log")
pred = [r for r in load["closed_loop"] if r["route"] == "/v1/predict"]
one = min(pred, key=lambda r: r["clients"])
most = max(pred, key=lambda r: r["clients"])
pps, fwd_ms = n / s, 1000 * s1 / n1
print()
print(f"`siren predict` on the same {n} pairs: {s:.1f} s, {pps:.2f} pairs/s; the server at "
      f"{most['clients']} clients {most['rps']:.2f} req/s = **{most['rps'] / pps:.2f}x**.")
print(f"One forward pass (`siren predict` at batch 1, {n1} pairs in {s1:.1f} s): {fwd_ms:.0f} ms "
      f"per pair; the server's p50 at {one['clients']} client {one['p50_ms']:.0f} ms = "
      f"**{one['p50_ms'] / fwd_ms:.2f}x**.")
PY
