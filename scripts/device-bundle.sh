#!/usr/bin/env bash
# Builds a device bundle: a folder that runs `siren` and the device check on another x86-64 Linux
# machine without Rust or network, using the LibTorch of that machine's python (pip's torch with
# CUDA, as on GPU machines). Contents: the release `siren` and `device-check` binaries (stripped,
# xz-compressed, unpacked and checked against their sha256 on first use), a launcher for each that
# finds libtorch, device-check.sh and its transformers harness, a README and a MANIFEST of
# checksums. At most 60 MiB.
#   bash scripts/device-bundle.sh [--out DIR]      (default: dist/siren-device-bundle)
# Then, on the other machine, from any folder:
#   bash siren-device-bundle/device-check.sh --device tch-cuda:0 --out result
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="dist/siren-device-bundle"
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out="$2"; shift 2 ;;
        -h|--help) sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "device-bundle: unknown argument \`$1\`" >&2; exit 2 ;;
    esac
done
limit_mib=60
cd "$root"
source scripts/env.sh
echo "== building (release, shared build)" >&2
cargo build --locked --release --workspace --all-features --all-targets -q
bin=target/release/siren
readelf -d "$bin" | grep -q 'libtorch_cpu.so' || {
    echo "device-bundle: $bin does not link LibTorch; run bash scripts/setup-torch.sh and rebuild" >&2; exit 1; }
torch_version="$("$VIRTUAL_ENV/bin/python" -c 'import torch; print(torch.__version__)')"
glibc_needed="$(objdump -T "$bin" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)"
version="$("$bin" --version)"

rm -rf "$out"
mkdir -p "$out/harness"
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
for name in siren device-check siren-dist-selftest; do
    strip --strip-all -o "$tmp" "target/release/$name"
    sha256sum "$tmp" | cut -d' ' -f1 > "$out/$name.sha256"
    echo "== compressing $name ($(( $(stat -c %s "$tmp") / 1048576 )) MiB stripped)" >&2
    xz -T2 -9 -c "$tmp" > "$out/$name.xz"
done
cp scripts/device-check.sh "$out/device-check.sh"
cp benchmarks/harness/device_check.py "$out/harness/device_check.py"

cat > "$out/siren" <<'LAUNCHER'
#!/usr/bin/env bash
# Runs the bundled binary of this launcher's name (`siren`, `device-check` or
# `siren-dist-selftest`) with the LibTorch
# of this machine's python.
#   SIREN_LIBTORCH=DIR   use the libtorch in DIR instead (a folder with libtorch_cpu.so)
#   SIREN_PYTHON=PY      the python whose torch to use (default python3)
#   SIREN_BUNDLE_CACHE   where the binary is unpacked (default ~/.cache/siren-bundle)
set -euo pipefail
here="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
name="$(basename "$(readlink -f "${BASH_SOURCE[0]}")")"
fail() { echo "siren bundle: $*" >&2; exit 1; }
if [ -z "${SIREN_LIBTORCH:-}" ]; then
    py="${SIREN_PYTHON:-python3}"
    SIREN_LIBTORCH="$("$py" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null)" \
        || fail "no libtorch: $py cannot import torch; set SIREN_PYTHON to a python with torch, or SIREN_LIBTORCH to its torch/lib folder"
fi
[ -f "$SIREN_LIBTORCH/libtorch_cpu.so" ] || fail "$SIREN_LIBTORCH has no libtorch_cpu.so (SIREN_LIBTORCH must name torch's lib folder)"
[ -f "$SIREN_LIBTORCH/libtorch_cuda.so" ] || fail "$SIREN_LIBTORCH has no libtorch_cuda.so: this binary links pip's CUDA build of torch (the default on PyPI), not a CPU-only one"
want="$(cat "$here/$name.sha256")"
cache="${SIREN_BUNDLE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/siren-bundle}/${want:0:16}"
if [ ! -x "$cache/$name" ]; then
    mkdir -p "$cache" || fail "cannot create $cache (set SIREN_BUNDLE_CACHE)"
    part="$(mktemp "$cache/.$name.XXXXXX")"
    if command -v xz >/dev/null; then xz -dc "$here/$name.xz" > "$part"
    else "${SIREN_PYTHON:-python3}" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$here/$name.xz" "$part"; fi
    got="$(sha256sum "$part" | cut -d' ' -f1)"
    [ "$got" = "$want" ] || { rm -f "$part"; fail "unpacked $name has sha256 $got, expected $want (damaged $name.xz?)"; }
    chmod +x "$part" && mv "$part" "$cache/$name"
fi
export LD_LIBRARY_PATH="$SIREN_LIBTORCH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# The Vulkan loader (the wgpu probe) wants a runtime dir.
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
    export XDG_RUNTIME_DIR="${TMPDIR:-/tmp}/siren-runtime-$(id -u)"
    mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
fi
exec "$cache/$name" "$@"
LAUNCHER
cp "$out/siren" "$out/device-check"
cp "$out/siren" "$out/siren-dist-selftest"
chmod +x "$out/siren" "$out/device-check" "$out/siren-dist-selftest" "$out/device-check.sh"

cat > "$out/README.md" <<EOF
# SIREN-rs device bundle

$version, built $(date -u +%Y-%m-%d) from commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!dist' 2>/dev/null || echo ' (with local changes)').

Runs on x86-64 Linux with glibc ≥ ${glibc_needed#GLIBC_} and a python whose torch is pip's CUDA build
(libtorch_cuda.so beside libtorch_cpu.so); no Rust, no network. The binary was built against
torch $torch_version's headers and loads the LibTorch of that python at run time (it imports ~140
libtorch symbols, all \`at::_ops::*::call\` dispatcher entries and c10 helpers).

    ./siren devices                                   # which devices work here
    bash device-check.sh --device tch-cuda:0 --out R  # the device check (R/device-check.md)
    ./siren run CONFIG --set device=tch-cuda:0        # anything siren does
    python3 -m torch.distributed.run --standalone --nproc_per_node=2 --no-python ./siren train CONFIG
                                                      # data-parallel (docs/distributed.md)

Set SIREN_PYTHON to choose the python (default python3) or SIREN_LIBTORCH to name torch's lib
folder directly. The binary is unpacked once to ~/.cache/siren-bundle (SIREN_BUNDLE_CACHE).
EOF
(cd "$out" && find . -type f ! -name MANIFEST.sha256 | sort | xargs sha256sum > MANIFEST.sha256)

bytes=$(du -sb "$out" | cut -f1)
mib=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
echo "device bundle: $out, $mib MiB ($bytes bytes); siren.xz $(( $(stat -c %s "$out/siren.xz") / 1048576 )) MiB, device-check.xz $(( $(stat -c %s "$out/device-check.xz") / 1048576 )) MiB; built against torch $torch_version; needs $glibc_needed"
if [ "$bytes" -gt $(( limit_mib * 1048576 )) ]; then
    echo "device-bundle: the bundle is over $limit_mib MiB" >&2; exit 1
fi
