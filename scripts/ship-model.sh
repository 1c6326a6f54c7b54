#!/usr/bin/env bash
# Copies a finished `siren run` of configs/siren-movies.toml into models/siren-smollm2-movies/:
# the stage-1 and stage-2 adapters (PEFT layout), the topic model the prompts were built with,
# the calibration fitted on all valid rows, the resolved config and the run's metrics, then
# writes SHA256SUMS. The model card (README.md) is written by hand from these files.
#   bash scripts/ship-model.sh [RUN_DIR] [OUT_DIR]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
run="${1:-$root/runs/siren-movies}"
out="${2:-$root/models/siren-smollm2-movies}"
[ -f "$run/stage1/policy/adapter_model.safetensors" ] || { echo "error: $run has no stage-1 adapter (run siren run configs/siren-movies.toml first)" >&2; exit 1; }
stage2="$(ls -d "$run"/stage2/*/policy 2>/dev/null | head -n 1 || true)"
[ -n "$stage2" ] && [ -f "$stage2/adapter_model.safetensors" ] || { echo "error: $run has no stage-2 adapter" >&2; exit 1; }
mkdir -p "$out/stage1" "$out/stage2"
cp "$run/stage1/policy/adapter_config.json" "$run/stage1/policy/adapter_model.safetensors" "$out/stage1/"
cp "$stage2/adapter_config.json" "$stage2/adapter_model.safetensors" "$out/stage2/"
cp "$run/topic-model.json" "$out/topic-model.json"
cp "$run/config.toml" "$out/config.toml"
cp "$run/metrics.json" "$out/metrics.json"
cal="$(ls "$run"/eval/*-calibration.json 2>/dev/null | head -n 1 || true)"
[ -n "$cal" ] && cp "$cal" "$out/calibration.json"
(cd "$out" && find . -type f ! -name SHA256SUMS ! -name README.md | sort | sed 's|^\./||' | xargs sha256sum > SHA256SUMS)
echo "shipped $run into $out:"
cat "$out/SHA256SUMS"
