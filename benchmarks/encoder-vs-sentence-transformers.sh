#!/usr/bin/env bash
# Sketch-stage encoding throughput, SIREN-rs vs sentence-transformers, side by side in one run:
# items/s encoding the paper's Movies item texts with all-MiniLM-L6-v2 (the fetched weights),
# batch 64, on tch-cpu and flex vs PyTorch CPU; plus the max abs difference of the embeddings.
#   bash benchmarks/encoder-vs-sentence-transformers.sh [n_items=2000] [devices="tch-cpu flex"]
# Needs `pip install sentence-transformers` in .venv.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/env.sh
n="${1:-2000}"
devices="${2:-tch-cpu flex}"
model="${SIREN_ASSETS:-assets}/all-MiniLM-L6-v2"
[ -f "$model/model.safetensors" ] || { echo "missing $model: run bash scripts/fetch-assets.sh" >&2; exit 1; }
.venv/bin/python -c "import sentence_transformers" 2>/dev/null || {
    echo "sentence-transformers is not installed: .venv/bin/pip install sentence-transformers" >&2; exit 1; }
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

cargo build --locked --release --workspace --all-features --all-targets -q
echo "== siren-rs on: $devices" >&2
# shellcheck disable=SC2086
target/release/encoder-throughput "$model" "$n" "$out" $devices > "$out/results.jsonl"
echo "== sentence-transformers" >&2
# shellcheck disable=SC2086
.venv/bin/python benchmarks/harness/encoder_sentence_transformers.py "$model" "$out" $devices \
    >> "$out/results.jsonl" 2> "$out/py.log" || { cat "$out/py.log" >&2; exit 1; }

.venv/bin/python - "$out/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
peer = next(r for r in rows if r["impl"] == "sentence-transformers")
print(f"all-MiniLM-L6-v2, {peer['texts']} Amazon Movies item texts, batch 64, "
      f"max {peer['max_seq_length']} tokens, {peer['threads']} torch threads")
print()
print("| implementation | device | items/s | ratio | max abs diff vs sentence-transformers |")
print("|---|---|---|---|---|")
for r in rows:
    diff = peer["max_abs_diff"].get(r["device"], 0.0) if r["impl"] == "siren-rs" else 0.0
    print(f"| {r['impl']} | {r['device']} | {r['items_per_s']:.1f} | "
          f"{r['items_per_s'] / peer['items_per_s']:.2f} | {diff:.1e} |")
print()
print("ratio = items/s / sentence-transformers items/s; > 1 means SIREN-rs is faster.")
PY
