#!/usr/bin/env bash
# Makes sure rustup has the toolchain rust-toolchain.toml pins, before any cargo call in the
# project (a pinned channel rustup lacks stops every cargo command with "not installed").
#   bash scripts/toolchain.sh
# 1. rustup already has it: nothing to do.
# 2. The machine's "stable" toolchain is that exact release (rustc reports the pinned version):
#    register it under the version's name (a link in rustup's toolchains folder), no download.
# 3. Otherwise `rustup toolchain install`, which needs rustup's download server.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pin="$(sed -n 's/^channel *= *"\(.*\)"/\1/p' "$root/rust-toolchain.toml")"
if [ -z "$pin" ]; then
    echo "error: $root/rust-toolchain.toml: no 'channel = \"...\"' line" >&2
    exit 1
fi
if ! command -v rustup >/dev/null; then
    if command -v rustc >/dev/null && rustc --version | grep -q "^rustc $pin "; then exit 0; fi
    echo "error: the project is pinned to Rust $pin (rust-toolchain.toml); install rustup" >&2
    echo "       (https://rustup.rs) or put rustc $pin on PATH." >&2
    exit 1
fi
# Run outside the project so the pin itself does not decide which toolchain answers.
cd /
host="$(rustup show 2>/dev/null | sed -n 's/^Default host: //p')"
if rustup run "$pin" rustc --version >/dev/null 2>&1; then exit 0; fi
if rustup run stable rustc --version 2>/dev/null | grep -q "^rustc $pin "; then
    home="$(rustup show home)"
    stable_dir="$home/toolchains/stable-$host"
    if [ -d "$stable_dir" ] && [ ! -e "$home/toolchains/$pin-$host" ]; then
        ln -s "$stable_dir" "$home/toolchains/$pin-$host"
        echo "== Rust $pin: the installed stable toolchain is this release; registered it as $pin-$host"
        rustup run "$pin" rustc --version >/dev/null && exit 0
    fi
fi
echo "== installing Rust $pin (rust-toolchain.toml) with rustup"
if ! rustup toolchain install "$pin" --profile minimal --component rustfmt --component clippy; then
    echo "error: the project is pinned to Rust $pin (rust-toolchain.toml) and rustup could not" >&2
    echo "       install it; install it by hand (rustup toolchain install $pin)." >&2
    exit 1
fi
