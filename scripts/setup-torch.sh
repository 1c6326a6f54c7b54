#!/usr/bin/env bash
# Creates the project-local Python venv (.venv/) with pip's torch, which the LibTorch backend
# (`tch-cpu`, `tch-cuda:N`) builds and links against. Idempotent.
#   bash scripts/setup-torch.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${SIREN_VENV:-$root/.venv}"
torch_version="2.9.0"   # the version tch 0.22 (burn-tch 0.22.1) is built for

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import torch, sys; sys.exit(0 if torch.__version__.split('+')[0] == '$torch_version' else 1)" 2>/dev/null; then
    echo "torch $torch_version already in $venv"
    exit 0
fi
command -v python3 >/dev/null || { echo "error: python3 is needed for the LibTorch backend" >&2; exit 1; }
python3 -m venv "$venv"
echo "installing torch==$torch_version into $venv (about 1.5 min, several GB) ..."
if ! "$venv/bin/pip" install --quiet --no-cache-dir --disable-pip-version-check "torch==$torch_version"; then
    echo "error: pip could not install torch==$torch_version (is PyPI reachable?)." >&2
    echo "       Build without LibTorch instead: cargo build --release (flex and wgpu only)." >&2
    exit 1
fi
"$venv/bin/python" -c "import torch; print('torch', torch.__version__, 'ready in $venv')"
