#!/usr/bin/env bash
# Quickstart (README command 1): fetch the assets, build once, then
#   1. score the shipped model (models/siren-smollm2-movies, trained by configs/siren-movies.toml)
#      on a seeded sample of 300 Amazon Movies valid users, next to every baseline
#      (configs/shipped-movies.toml);
#   2. run the whole method at demo scale on MovieLens-100K (configs/quickstart.toml: baselines,
#      MiniLM sketches, a short stage-1 SFT of SmolLM2, hidden alignment, evaluation);
# and end by printing the shipped model's table.
#   bash scripts/quickstart.sh [extra siren arguments for the demo run]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
start=$(date +%s)
bash scripts/toolchain.sh
bash scripts/setup-torch.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh
bash scripts/fetch-assets.sh
echo "== checking the shipped model"
(cd models/siren-smollm2-movies && sha256sum --check --quiet SHA256SUMS)
echo "== building siren (release; the first build takes ~27 min on 2 cores)"
# --all-targets: the same feature resolution as the test build, so both share one set of artifacts
cargo build --locked --release --workspace --all-features --all-targets
built=$(date +%s)
echo "== 1/2: the shipped model on 300 Amazon Movies valid users"
./target/release/siren run configs/shipped-movies.toml --set eval.sample=300
echo "== 2/2: the whole method at demo scale (MovieLens-100K)"
./target/release/siren run configs/quickstart.toml "$@"
echo
echo "== the shipped model (runs/shipped-movies/report.md): rows siren-smollm2-* are its weights,"
echo "   the others are the baselines fitted on the users' histories; 300 valid users"
python3 - <<'PY'
import json
m = json.load(open("runs/shipped-movies/metrics.json"))
rows = [r for r in m["results"]]
print(f"{'method':<36} {'MAE':>7} {'RMSE':>7}  decoder")
for r in rows:
    dec = r.get("decoder", "")
    if r.get("calibration"):
        dec += ", calibration: " + r["calibration"]
    print(f"{r['method']:<36} {r['mae']:>7.4f} {r['rmse']:>7.4f}  {dec}")
PY
end=$(date +%s)
echo "quickstart finished in $(( end - start )) s ($(( end - built )) s after the build); reports in runs/shipped-movies/ and runs/quickstart/"
