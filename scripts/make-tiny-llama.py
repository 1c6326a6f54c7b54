"""Writes a randomly initialised tiny Llama-shaped checkpoint as a HF folder (config.json,
model.safetensors, tokenizer.json, tokenizer_config.json): a second backbone for
`siren compare` next to SmolLM2 without downloading anything. Its word-level tokenizer knows
the answer tags and the ratings 1..5; every other word is <unk>.

    .venv/bin/python scripts/make-tiny-llama.py OUT_DIR [SEED]
"""
import json
import sys

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM

out = sys.argv[1]
torch.manual_seed(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
words = ["<pad>", "<eos>", "<think>", "</think>", "<answer>", "</answer>", "1", "2", "3", "4", "5", "<unk>"]
tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
tok.pre_tokenizer = pre_tokenizers.Whitespace()
tok.add_special_tokens(words[:2])
tok.add_tokens(words[2:6])
config = LlamaConfig(
    vocab_size=len(words), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
    bos_token_id=None, eos_token_id=1, pad_token_id=0, tie_word_embeddings=False,
)
LlamaForCausalLM(config).save_pretrained(out)
tok.save(f"{out}/tokenizer.json")
with open(f"{out}/tokenizer_config.json", "w") as f:
    json.dump({"eos_token": "<eos>", "pad_token": "<pad>"}, f)
print(f"wrote a tiny random Llama ({len(words)} tokens, 2 layers, width 32) to {out}")
