#!/usr/bin/env python3
"""Reference dequantisation of GGML block types by gguf-py (llama.cpp's Python package), for the
engine's GGUF loader tests.

    .venv/bin/python scripts/make-gguf-quant-fixtures.py

Writes tests/fixtures/gguf/quants.safetensors: for each type, `<TYPE>.raw` (random blocks, as
u8; the f16 scale fields are set to finite values) and `<TYPE>.f32` (gguf-py's dequantisation).
Deterministic; about 20 KB.
"""
import os

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize
from safetensors.numpy import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "gguf")

# Byte offsets of the f16 scale fields inside one block of each type.
F16_FIELDS = {
    T.Q4_0: [0],
    T.Q4_1: [0, 2],
    T.Q5_0: [0],
    T.Q5_1: [0, 2],
    T.Q8_0: [0],
    T.Q4_K: [0, 2],
    T.Q5_K: [0, 2],
    T.Q6_K: [208],
}
BLOCKS = 3


def main():
    rng = np.random.default_rng(0)
    tensors = {}
    for qtype, fields in F16_FIELDS.items():
        per_block, block_bytes = GGML_QUANT_SIZES[qtype]
        raw = rng.integers(0, 256, size=(BLOCKS, block_bytes), dtype=np.uint8)
        for off in fields:
            scales = rng.uniform(-1.0, 1.0, size=BLOCKS).astype(np.float16)
            raw[:, off:off + 2] = scales.view(np.uint8).reshape(BLOCKS, 2)
        ref = dequantize(raw.reshape(-1), qtype).astype(np.float32).reshape(-1)
        assert ref.size == BLOCKS * per_block and np.isfinite(ref).all()
        tensors[f"{qtype.name}.raw"] = raw.reshape(-1)
        tensors[f"{qtype.name}.f32"] = ref
    os.makedirs(OUT, exist_ok=True)
    save_file(tensors, os.path.join(OUT, "quants.safetensors"))


if __name__ == "__main__":
    main()
