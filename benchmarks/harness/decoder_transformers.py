#!/usr/bin/env python3
"""The peer side of benchmarks/decoder-vs-transformers.sh: HF transformers (PyTorch CPU, f32) on
the same GGUF weights, same prompt tokens, same protocol as `decoder-throughput` (batch 1, one
prefill forward with the cache, then greedy one-token steps; median of repeats after a warm-up).

    decoder_transformers.py <model.gguf> <prompt_ids.json out> <new_tokens> <repeats>

Writes the prompt's token ids (the model's chat template around a fixed request) to
<prompt_ids.json> and prints one JSON line.
"""
import json
import os
import statistics
import sys
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

PROMPT = (
    "Here is a user's movie history with their ratings from 1 to 5: The Matrix (Action, Sci-Fi), "
    "rated 5; Titanic (Drama, Romance), rated 2; Toy Story (Animation, Comedy), rated 4; Alien "
    "(Horror, Sci-Fi), rated 5; Notting Hill (Comedy, Romance), rated 2; Blade Runner (Sci-Fi), "
    "rated 5; The Notebook (Romance), rated 1. How would this user rate Interstellar (Sci-Fi, "
    "Drama)? Think step by step, then answer with a single number."
)


def run_once(model, ids, new_tokens):
    with torch.inference_mode():
        t = time.perf_counter()
        out = model(input_ids=ids, use_cache=True)
        nxt = out.logits[:, -1].argmax(-1, keepdim=True)
        prefill = time.perf_counter() - t
        past = out.past_key_values
        t = time.perf_counter()
        for _ in range(new_tokens):
            out = model(input_ids=nxt, past_key_values=past, use_cache=True)
            past = out.past_key_values
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)
        decode = time.perf_counter() - t
    return prefill, decode


def main():
    path, ids_out, new_tokens, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    folder, name = os.path.split(os.path.abspath(path))
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    text = tok.apply_chat_template([{"role": "user", "content": PROMPT}], tokenize=False, add_generation_prompt=True)
    prompt = tok(text, add_special_tokens=False)["input_ids"]
    with open(ids_out, "w") as f:
        json.dump(prompt, f)
    t = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
    load = time.perf_counter() - t
    ids = torch.tensor([prompt])
    run_once(model, ids, 2)  # warm-up
    runs = [run_once(model, ids, new_tokens) for _ in range(max(1, repeats))]
    p = statistics.median(r[0] for r in runs)
    d = statistics.median(r[1] for r in runs)
    print(json.dumps({
        "impl": "transformers",
        "device": "torch-cpu",
        "label": f"transformers {__import__('transformers').__version__}, torch {torch.__version__}, {torch.get_num_threads()} threads",
        "load_s": load,
        "prompt_tokens": len(prompt),
        "new_tokens": new_tokens,
        "prefill_s": p,
        "decode_s": d,
        "prefill_tok_s": len(prompt) / p,
        "decode_tok_s": new_tokens / d,
    }))


if __name__ == "__main__":
    main()
