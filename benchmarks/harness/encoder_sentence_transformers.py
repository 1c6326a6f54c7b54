#!/usr/bin/env python3
"""The peer side of benchmarks/encoder-vs-sentence-transformers.sh: sentence-transformers on the
same MiniLM folder and texts (batch 64, CPU, f32), timed after a warm-up; also the max abs
difference of its first 100 embeddings from each SIREN-rs device's.

    encoder_sentence_transformers.py <model_dir> <out_dir> <device>...
"""
import json
import os
import sys
import time

import numpy as np
import torch
from sentence_transformers import SentenceTransformer


def main():
    model_dir, out_dir, devices = sys.argv[1], sys.argv[2], sys.argv[3:]
    texts = json.load(open(os.path.join(out_dir, "texts.json")))
    model = SentenceTransformer(model_dir, device="cpu")
    model.encode(texts[:8], batch_size=64)
    t = time.perf_counter()
    emb = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    secs = time.perf_counter() - t
    diffs = {}
    for d in devices:
        ours = np.array(json.load(open(os.path.join(out_dir, f"{d}.embeddings.json"))), dtype=np.float32)
        diffs[d] = float(np.abs(ours - emb[: len(ours)]).max())
    print(json.dumps({
        "impl": "sentence-transformers",
        "device": "torch-cpu",
        "texts": len(texts),
        "seconds": secs,
        "items_per_s": len(texts) / secs,
        "max_seq_length": model.max_seq_length,
        "threads": torch.get_num_threads(),
        "max_abs_diff": diffs,
    }))


if __name__ == "__main__":
    main()
