#!/usr/bin/env bash
# One command that proves and measures SIREN-rs on a device against HF transformers on the same
# device, in one run: randomly initialised models of real shapes (SmolLM2-135M, Qwen3-0.6B) made
# by the transformers there (no download), then for each: parity of logits and hidden states,
# answer-only latency and CoT tokens/s at batch 1 and 32, the CoT/AO time ratio at a reasoning
# length, one GRPO step and one hidden-align step (seconds, peak memory); then siren-dist's
# collectives self-test under torchrun, one rank per GPU. Writes OUT/device-check.json and
# OUT/device-check.md and prints the table.
#
#   bash scripts/device-check.sh --device tch-cpu            # here, against transformers on CPU
#   bash device-check.sh --device tch-cuda:0                 # from a bundle (scripts/device-bundle.sh)
#
# Options: --device D (tch-cpu, tch-cuda:N, flex, wgpu)  --models smollm2,qwen3
#          --profile cpu|gpu (sizes; default: gpu on tch-cuda, else cpu)  --dtype f32|bf16
#          (speed and training; default bf16 on tch-cuda, else f32; parity is always f32)
#          --out DIR  --python PY (a python with torch, transformers, peft, safetensors)
#          --keep (keep the generated checkpoints)
# Runs from a checkout (builds the shared release build if needed; python: .venv when it has
# transformers, else python3) or from a device bundle (the `siren` and `device-check` launchers
# beside this file). SIREN-rs's side is the `device-check` binary (benchmarks/src/device_check.rs).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
device="" models="smollm2,qwen3" profile="" dtype="" out="" python="${SIREN_PYTHON:-}" keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --device) device="$2"; shift 2 ;;
        --models) models="$2"; shift 2 ;;
        --profile) profile="$2"; shift 2 ;;
        --dtype) dtype="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --python) python="$2"; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "device-check: unknown argument \`$1\` (see --help)" >&2; exit 2 ;;
    esac
done
[ -n "$device" ] || { echo "device-check: --device is required (tch-cpu, tch-cuda:N, ...)" >&2; exit 2; }
case "$device" in
    tch-cuda*) torch_device="cuda:${device#tch-cuda}"; torch_device="${torch_device/cuda::/cuda:}"
               [ "$torch_device" = "cuda:" ] && torch_device="cuda:0"
               profile="${profile:-gpu}"; dtype="${dtype:-bf16}" ;;
    *) torch_device="cpu"; profile="${profile:-cpu}"; dtype="${dtype:-f32}" ;;
esac

if [ -x "$here/siren" ] && [ -x "$here/device-check" ] && [ -f "$here/harness/device_check.py" ]; then
    # A device bundle: the launchers find libtorch through the python below.
    siren="$here/siren"
    check="$here/device-check"
    selftest="$here/siren-dist-selftest"
    harness="$here/harness/device_check.py"
    python="${python:-python3}"
    out="${out:-$PWD/device-check-out}"
else
    root="$(cd "$here/.." && pwd)"
    cd "$root"
    source scripts/env.sh
    echo "== building (release, shared build)" >&2
    cargo build --locked --release --workspace --all-features --all-targets -q
    siren="$root/target/release/siren"
    check="$root/target/release/device-check"
    selftest="$root/target/release/siren-dist-selftest"
    harness="$root/benchmarks/harness/device_check.py"
    if [ -z "$python" ]; then
        if .venv/bin/python -c "import transformers, peft" 2>/dev/null; then python="$root/.venv/bin/python"
        else python=python3; fi
    fi
    out="${out:-$root/runs/device-check-$device}"
fi
export SIREN_PYTHON="$python"
"$python" -c "import torch, transformers, peft, safetensors" 2>/dev/null || {
    echo "device-check: $python lacks torch, transformers, peft or safetensors" >&2
    echo "  (pip install transformers peft safetensors, or pass --python)" >&2; exit 1; }
mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$out/work"
rm -rf "$work"; mkdir -p "$work"
start=$(date +%s)

gpu_index=""
if [ "$torch_device" != cpu ] && command -v nvidia-smi >/dev/null; then gpu_index="${torch_device#cuda:}"; fi
# Runs one measuring process; on a GPU, samples the device's used memory every 100 ms and
# writes the peak above the idle level next to the result.
measured() {
    local result="$1"; shift
    local sampler="" base=0
    if [ -n "$gpu_index" ]; then
        base=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i "$gpu_index" | head -1)
        nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i "$gpu_index" -lms 100 > "$result.smi" &
        sampler=$!
    fi
    # A failed phase is reported and the others still run: one run must give what it can.
    "$@" || { echo "device-check: FAILED: $*" >&2; failed="$failed ${result##*/}"; }
    if [ -n "$sampler" ]; then
        kill "$sampler" 2>/dev/null || true
        wait "$sampler" 2>/dev/null || true
        sort -n "$result.smi" | tail -1 | awk -v b="$base" '{print $1 - b}' > "${result%.json}.gpu-mb"
    fi
}
failed=""

echo "== $("$siren" --version), device $device; python $("$python" -c 'import torch, transformers; print(f"torch {torch.__version__}, transformers {transformers.__version__}")')" >&2
"$siren" devices >&2 || true
"$python" - "$work/env.json" "$device" "$profile" "$dtype" "$models" <<'PY'
import json, platform, subprocess, sys, datetime
path, device, profile, dtype, models = sys.argv[1:]
gpu = ""
try:
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                         capture_output=True, text=True, timeout=20).stdout.strip()
except Exception:
    pass
json.dump({"device": device, "profile": profile, "dtype": dtype, "models": models, "gpu": gpu,
           "host": platform.node(), "cpu": platform.processor() or platform.machine(),
           "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}, open(path, "w"))
PY
echo "== preparing random-init checkpoints and transformers' parity reference ($models, profile $profile)" >&2
"$python" "$harness" prepare --work "$work" --models "$models" --profile "$profile" --device "$torch_device" --dtype "$dtype"
for m in ${models//,/ }; do
    d="$work/$m"
    echo "== $m: SIREN-rs parity and speed" >&2
    measured "$d/result-speed-siren.json" "$check" --model "$d" --device "$device" --only parity,speed --out "$d/result-speed-siren.json"
    echo "== $m: transformers speed" >&2
    measured "$d/result-speed-transformers.json" "$python" "$harness" measure --work "$work" --model "$m" --device "$torch_device" --only speed --out "$d/result-speed-transformers.json"
    for phase in grpo align; do
        echo "== $m: $phase step, SIREN-rs then transformers" >&2
        measured "$d/result-$phase-siren.json" "$check" --model "$d" --device "$device" --only "$phase" --out "$d/result-$phase-siren.json"
        measured "$d/result-$phase-transformers.json" "$python" "$harness" measure --work "$work" --model "$m" --device "$torch_device" --only "$phase" --out "$d/result-$phase-transformers.json"
    done
done
"$python" "$harness" report --work "$work" --out "$out"
# The collectives (docs/distributed.md): siren-dist's self-test under torchrun, one rank per GPU
# of this machine (one rank without GPUs), over gloo.
ngpu=0
if command -v nvidia-smi >/dev/null; then ngpu=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true); fi
ranks=$(( ngpu > 0 ? ngpu : 1 ))
echo "== collectives: siren-dist-selftest on $ranks rank(s) under torchrun ($ngpu GPUs here)" >&2
if dist_log=$(SIREN_DIST_TIMEOUT_S=120 "$python" -m torch.distributed.run --standalone \
        --nproc_per_node="$ranks" --no-python "$selftest" 2>&1); then dist_status=ok
else dist_status=FAILED; failed="$failed collectives"; echo "$dist_log" >&2; fi
{
    echo
    echo "## Collectives"
    echo
    echo "$ngpu GPU(s) on this machine. \`siren-dist-selftest\` under torchrun on $ranks rank(s), over gloo: $dist_status."
    echo
    echo '```text'
    echo "$dist_log" | grep '^rank' || true
    echo '```'
} >> "$out/device-check.md"
if [ "$keep" = 0 ]; then rm -rf "$work"/*/model.safetensors; fi
echo "device-check: $(( $(date +%s) - start )) s; wrote $out/device-check.md and $out/device-check.json" >&2
if [ -n "$failed" ]; then
    echo "device-check: these phases failed (their rows show –):$failed" >&2
    exit 1
fi
