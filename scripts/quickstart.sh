#!/usr/bin/env bash
# Quickstart (README command 1): fetch the assets, build once, run configs/quickstart.toml with
# `siren run`: rating baselines, MiniLM sketches, a short stage-1 SFT of SmolLM2, hidden
# alignment (stage 2) and evaluation on 50 valid users; ends with the report path and table.
#   bash scripts/quickstart.sh [extra siren arguments, e.g. --set baselines.3.params.factors=64]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
start=$(date +%s)
bash scripts/setup-torch.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh
bash scripts/fetch-assets.sh
echo "== building siren (release; the first build takes ~27 min on 2 cores)"
# --all-targets: the same feature resolution as the test build, so both share one set of artifacts
cargo build --release --workspace --all-features --all-targets
./target/release/siren run configs/quickstart.toml "$@"
echo "quickstart finished in $(( $(date +%s) - start )) s; artifacts in runs/quickstart/"
