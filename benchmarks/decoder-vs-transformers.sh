#!/usr/bin/env bash
# Decoder throughput, SIREN-rs vs HF transformers, side by side in one run: prefill tokens/s
# and decode tokens/s at batch 1 for SmolLM2-135M-Instruct (the fetched GGUF, dequantised to
# f32 by both), the same chat prompt tokens, on tch-cpu and flex vs PyTorch CPU.
#   bash benchmarks/decoder-vs-transformers.sh [new_tokens=32] [repeats=3] [devices="tch-cpu flex"]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/env.sh
new_tokens="${1:-32}"
repeats="${2:-3}"
devices="${3:-tch-cpu flex}"
model="${SIREN_ASSETS:-assets}/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
[ -f "$model" ] || { echo "missing $model: run bash scripts/fetch-assets.sh" >&2; exit 1; }
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

echo "== building the decoder-throughput binary (release, shared build)" >&2
cargo build --locked --release --workspace --all-features --all-targets -q
echo "== transformers (writes the prompt tokens)" >&2
.venv/bin/python benchmarks/harness/decoder_transformers.py "$model" "$out/ids.json" "$new_tokens" "$repeats" \
    2> "$out/py.log" > "$out/results.jsonl" || { cat "$out/py.log" >&2; exit 1; }
echo "== siren-rs on: $devices" >&2
# shellcheck disable=SC2086
target/release/decoder-throughput "$model" "$out/ids.json" "$new_tokens" "$repeats" $devices >> "$out/results.jsonl"

.venv/bin/python - "$out/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
peer = next(r for r in rows if r["impl"] == "transformers")
print(f"SmolLM2-135M-Instruct (GGUF Q4_1 dequantised to f32), batch 1, "
      f"{peer['prompt_tokens']} prompt tokens, {peer['new_tokens']} greedy new tokens, median of runs")
print()
print("| implementation | device | prefill tok/s | decode tok/s | prefill ratio | decode ratio |")
print("|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['impl']} | {r['device']} | {r['prefill_tok_s']:.1f} | {r['decode_tok_s']:.1f} | "
          f"{r['prefill_tok_s'] / peer['prefill_tok_s']:.2f} | {r['decode_tok_s'] / peer['decode_tok_s']:.2f} |")
print()
print(f"ratio = siren-rs / transformers ({peer['label']}); > 1 means SIREN-rs is faster.")
PY
