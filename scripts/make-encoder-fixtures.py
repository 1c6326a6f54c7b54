#!/usr/bin/env python3
"""Builds tiny random BERT and XLM-RoBERTa checkpoints and their reference outputs (HF
transformers, float32, CPU) for the `bert` text encoder's parity tests.

    .venv/bin/python scripts/make-encoder-fixtures.py

Writes tests/fixtures/encoders/<arch>/{config.json, model.safetensors, expected.safetensors}:
input_ids and attention_mask of a right-padded batch, last_hidden_state, and the L2-normalised
mean-pooled and CLS embeddings. Deterministic; about 60 KB each.
"""
import os

import torch
from safetensors.torch import save_file
from transformers import BertConfig, BertModel, XLMRobertaConfig, XLMRobertaModel

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "encoders")

COMMON = dict(
    vocab_size=64,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=48,
    hidden_act="gelu",
    initializer_range=0.2,
)

MODELS = {
    # BERT (MiniLM's architecture): absolute positions from 0, two token types.
    "bert": (BertModel, BertConfig(**COMMON, max_position_embeddings=32, type_vocab_size=2,
                                   layer_norm_eps=1e-12, pad_token_id=0)),
    # XLM-RoBERTa (BGE-M3's architecture): positions start after padding_idx = 1.
    "xlm-roberta": (XLMRobertaModel, XLMRobertaConfig(**COMMON, max_position_embeddings=40,
                                                      type_vocab_size=1, layer_norm_eps=1e-5,
                                                      pad_token_id=1, bos_token_id=0, eos_token_id=2)),
}

# Right-padded batch (the pad id is each config's pad_token_id).
SEQS = [[5, 17, 42, 9, 33, 8, 21, 7], [5, 12, 60, 7], [5, 7]]


def main():
    for name, (cls, config) in MODELS.items():
        torch.manual_seed(0)
        model = cls(config, add_pooling_layer=False).eval()
        out_dir = os.path.join(ROOT, name)
        os.makedirs(out_dir, exist_ok=True)
        model.save_pretrained(out_dir, safe_serialization=True)
        pad = config.pad_token_id
        width = max(len(s) for s in SEQS)
        ids = torch.tensor([s + [pad] * (width - len(s)) for s in SEQS])
        mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in SEQS])
        with torch.no_grad():
            h = model(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).float()
        mean = (h * m).sum(1) / m.sum(1)
        save_file(
            {
                "input_ids": ids.to(torch.int64).contiguous(),
                "attention_mask": mask.to(torch.int64).contiguous(),
                "last_hidden_state": h.contiguous(),
                "mean": torch.nn.functional.normalize(mean, dim=-1).contiguous(),
                "cls": torch.nn.functional.normalize(h[:, 0], dim=-1).contiguous(),
            },
            os.path.join(out_dir, "expected.safetensors"),
        )
        print(f"{name}: wrote {out_dir}")


if __name__ == "__main__":
    main()
