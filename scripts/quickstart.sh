#!/usr/bin/env bash
# Quickstart (README command 1): fetch the assets, build once, run configs/quickstart.toml:
# the rating baselines, then the interest-sketch stage.
#   bash scripts/quickstart.sh [extra siren arguments, e.g. --set baselines.3.params.factors=64]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
start=$(date +%s)
bash scripts/setup-torch.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh
bash scripts/fetch-assets.sh
echo "== building siren (release; the first build takes ~20 min on 2 cores)"
# --all-targets: the same feature resolution as the test build, so both share one set of artifacts
cargo build --release --workspace --all-features --all-targets
./target/release/siren baselines configs/quickstart.toml "$@"
./target/release/siren sketch configs/quickstart.toml
echo "quickstart finished in $(( $(date +%s) - start )) s; artifacts in runs/quickstart/"
