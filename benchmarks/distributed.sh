#!/usr/bin/env bash
# Data-parallel training and sharded evaluation at world size 1 and 2 on this machine, side by
# side (docs/distributed.md, docs/benchmarks.md): one process with 2 intra-op threads against
# two torchrun ranks over gloo with 1 thread each, so both use the same cores.
#   1. `siren train benchmarks/distributed.toml`: 4 LoRA ao-sft steps of 16 prompts (micro-batch
#      4) on tch-cpu; the mean step time of steps 2-4 and, at world size 2, the mean time of the
#      gradient all-reduce per step (`allreduce_seconds`).
#   2. `siren eval` of the shipped model (answer-only) on 300 valid users: wall time.
# Prints one table; runs go to a temporary folder (SIREN_BENCH_DIR to keep them), deleted at
# the end unless kept.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/env.sh
echo "== building (release, shared build)" >&2
cargo build --locked --release --workspace --all-features --all-targets -q
siren="$root/target/release/siren"
keep="${SIREN_BENCH_DIR:-}"
out="${keep:-$(mktemp -d)}"
mkdir -p "$out"
[ -n "$keep" ] || trap 'rm -rf "$out"' EXIT

# launch W RSS ARGS...: `siren ARGS` alone (2 threads) or on W torchrun ranks (1 thread each);
# writes to RSS the peak resident memory of the largest process (KiB; a rank under torchrun).
launch() {
    local w="$1" rss="$2"; shift 2
    if [ "$w" = 1 ]; then
        OMP_NUM_THREADS=2 /usr/bin/time -f %M -o "$rss" "$siren" "$@"
    else
        OMP_NUM_THREADS=1 /usr/bin/time -f %M -o "$rss" \
            torchrun --standalone --nproc_per_node="$w" --no-python "$siren" "$@"
    fi
}

declare -A step reduce evals
for w in 1 2; do
    echo "== world size $w: training" >&2
    launch "$w" "$out/train-w$w.rss" train benchmarks/distributed.toml --set "runs_dir=\"$out\"" \
        --set "name=\"train-w$w\"" >"$out/train-w$w.log" 2>&1 || { cat "$out/train-w$w.log"; exit 1; }
    read -r step[$w] reduce[$w] < <(python3 - "$out/train-w$w/stage1/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()][1:]
mean = lambda k: sum(r.get(k, 0.0) for r in rows) / len(rows)
print(f"{mean('step_seconds'):.3f} {mean('allreduce_seconds'):.4f}")
PY
)
    echo "== world size $w: evaluation of 300 users" >&2
    t0=$(date +%s.%N)
    launch "$w" "$out/eval-w$w.rss" eval configs/shipped-movies.toml --no-cot --set "runs_dir=\"$out\"" \
        --set "name=\"eval-w$w\"" --set eval.sample=300 >"$out/eval-w$w.log" 2>&1 \
        || { cat "$out/eval-w$w.log"; exit 1; }
    evals[$w]=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$t0" "$(date +%s.%N)")
done
# The sharded evaluation writes the single-process files.
for f in "$out"/eval-w1/eval/*.jsonl; do
    cmp -s "$f" "$out/eval-w2/eval/$(basename "$f")" || echo "warning: $(basename "$f") differs between world sizes" >&2
done
echo
echo "| | world size 1 (1 × 2 threads) | world size 2 (2 × 1 thread) | ratio 1/2 |"
echo "|---|---|---|---|"
python3 - "${step[1]}" "${step[2]}" "${reduce[2]}" "${evals[1]}" "${evals[2]}" \
    "$(cat "$out/train-w1.rss")" "$(cat "$out/train-w2.rss")" <<'PY'
import sys
s1, s2, r2, e1, e2, m1, m2 = map(float, sys.argv[1:])
print(f"| ao-sft step, 16 prompts (s) | {s1:.2f} | {s2:.2f} | {s1 / s2:.2f} |")
print(f"| gradient all-reduce per step (s) | – | {r2:.4f} | |")
print(f"| training, peak memory of a process (GiB) | {m1 / 2**20:.2f} | {m2 / 2**20:.2f} | |")
print(f"| eval, 300 users answer-only (s, wall) | {e1:.1f} | {e2:.1f} | {e1 / e2:.2f} |")
PY
