#!/usr/bin/env bash
# Creates the project-local Python venv (.venv/) with pip's torch, which the LibTorch backend
# (`tch-cpu`, `tch-cuda:N`) builds and links against. Idempotent.
#   bash scripts/setup-torch.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${SIREN_VENV:-$root/.venv}"
torch_version="2.9.0"   # the version tch 0.22 (burn-tch 0.22.1) is built for

# gloo's headers: siren-dist (collectives over LibTorch's c10d) compiles against them.
if [ ! -f /usr/include/gloo/config.h ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "== installing gloo's headers (libgloo-dev) for siren-dist"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libgloo-dev >/dev/null
    else
        echo "error: siren-dist needs gloo's headers (/usr/include/gloo): apt install libgloo-dev" >&2
        exit 1
    fi
fi

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import torch, sys; sys.exit(0 if torch.__version__.split('+')[0] == '$torch_version' else 1)" 2>/dev/null; then
    echo "torch $torch_version already in $venv"
    exit 0
fi
command -v python3 >/dev/null || { echo "error: python3 is needed for the LibTorch backend" >&2; exit 1; }
# torch with its CUDA libraries stays at 6.7 GB; while pip installs, its ~3.5 GB of wheels sit
# beside it. Say so now rather than fail half-way with "No space left on device".
mkdir -p "$(dirname "$venv")"
free_gb=$(( $(df -Pk "$(dirname "$venv")" | awk 'NR==2 {print $4}') / 1048576 ))
if [ "$free_gb" -lt 10 ]; then
    echo "error: installing torch==$torch_version needs about 10 GB of free disk (6.7 GB stays in" >&2
    echo "       $venv); $(dirname "$venv") has $free_gb GB free. Free some space, or put the venv" >&2
    echo "       on another disk with SIREN_VENV=/path/to/venv." >&2
    exit 1
fi
python3 -m venv "$venv"
echo "installing torch==$torch_version into $venv (about 1.5 min, several GB) ..."
if ! "$venv/bin/pip" install --quiet --no-cache-dir --disable-pip-version-check "torch==$torch_version"; then
    free_gb=$(( $(df -Pk "$venv" | awk 'NR==2 {print $4}') / 1048576 ))
    echo "error: pip could not install torch==$torch_version (is PyPI reachable? $free_gb GB of disk left)." >&2
    echo "       Build without LibTorch instead: cargo build --release (flex and wgpu only)." >&2
    exit 1
fi
"$venv/bin/python" -c "import torch; print('torch', torch.__version__, 'ready in $venv')"
