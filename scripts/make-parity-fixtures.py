#!/usr/bin/env python3
"""Builds the tiny random Llama, Qwen3 and Mistral checkpoints and the reference outputs that the decoder
engine's parity tests compare against (HF transformers, float32, CPU).

    .venv/bin/pip install transformers==4.57.1   # once; torch comes from scripts/setup-torch.sh
    .venv/bin/python scripts/make-parity-fixtures.py [ARCH ...]   # default: every one below

Writes tests/fixtures/parity/<arch>/{config.json, model.safetensors, expected.safetensors,
expected.json} and a PEFT LoRA adapter with its reference logits under <arch>/lora/ (needs
`pip install peft`). Deterministic (fixed seeds); the files are small (< 200 KB each) and
committed.
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, LlamaConfig, MistralConfig, Qwen3Config

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "parity")

COMMON = dict(
    vocab_size=96,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=128,
    rms_norm_eps=1e-6,
    initializer_range=0.2,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
)

CONFIGS = {
    # Llama with Llama-3 RoPE scaling and a separate lm_head.
    "llama": LlamaConfig(
        **COMMON,
        rope_theta=10000.0,
        tie_word_embeddings=False,
        rope_scaling={
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 16,
        },
    ),
    # Qwen3: per-head q/k RMSNorm, explicit head_dim, tied embeddings.
    "qwen3": Qwen3Config(**COMMON, head_dim=8, rope_theta=1000000.0, tie_word_embeddings=True),
    # Mistral, read by the example third-party backbone (plugins/examples/my-backbone): a window
    # as long as the context (full causal attention), its own RoPE base, separate lm_head.
    "mistral": MistralConfig(
        **COMMON, head_dim=8, sliding_window=128, rope_theta=50000.0, tie_word_embeddings=False
    ),
}

# Two prompts, left-padded to the same length with pad id 0.
PROMPTS = [[1, 17, 42, 5, 88, 23, 61], [1, 9, 70, 33, 12]]
GREEDY_PROMPT = [1, 17, 42, 5, 88]
GREEDY_TOKENS = 20


def left_pad(prompts):
    width = max(len(p) for p in prompts)
    ids = [[0] * (width - len(p)) + p for p in prompts]
    mask = [[0] * (width - len(p)) + [1] * len(p) for p in prompts]
    return torch.tensor(ids), torch.tensor(mask)


def main():
    names = sys.argv[1:] or list(CONFIGS)
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        sys.exit(f"unknown architecture(s) {unknown}; known: {list(CONFIGS)}")
    for name in names:
        config = CONFIGS[name]
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.float32).eval()
        out_dir = os.path.join(ROOT, name)
        os.makedirs(out_dir, exist_ok=True)
        model.save_pretrained(out_dir, safe_serialization=True)

        ids, mask = left_pad(PROMPTS)
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.no_grad():
            out = model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=position_ids,
                output_hidden_states=True,
            )
        hidden = torch.stack(out.hidden_states)  # [L+1, B, S, H]; the last is after the final norm

        greedy = list(GREEDY_PROMPT)
        with torch.no_grad():
            for _ in range(GREEDY_TOKENS):
                logits = model(input_ids=torch.tensor([greedy])).logits
                greedy.append(int(logits[0, -1].argmax()))

        save_file(
            {
                "input_ids": ids.to(torch.int64).contiguous(),
                "attention_mask": mask.to(torch.int64).contiguous(),
                "position_ids": position_ids.to(torch.int64).contiguous(),
                "logits": out.logits.float().contiguous(),
                "hidden_states": hidden.float().contiguous(),
            },
            os.path.join(out_dir, "expected.safetensors"),
        )
        with open(os.path.join(out_dir, "expected.json"), "w") as f:
            json.dump(
                {
                    "prompts": PROMPTS,
                    "greedy_prompt": GREEDY_PROMPT,
                    "greedy_tokens": greedy[len(GREEDY_PROMPT):],
                    "transformers": __import__("transformers").__version__,
                    "torch": torch.__version__,
                },
                f,
                indent=1,
            )
        write_lora(model, ids, mask, position_ids, os.path.join(out_dir, "lora"))
        print(f"{name}: wrote {out_dir}", file=sys.stderr)


# A PEFT adapter on a mix of attention and MLP sites, with random (non-zero) A and B so that it
# changes the outputs; the engine must load it and reproduce PEFT's logits.
LORA = dict(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj", "down_proj"])


def write_lora(model, ids, mask, position_ids, out_dir):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(1)
    peft_model = get_peft_model(model, LoraConfig(**LORA, init_lora_weights=False)).eval()
    with torch.no_grad():
        logits = peft_model(input_ids=ids, attention_mask=mask, position_ids=position_ids).logits
    peft_model.save_pretrained(out_dir)
    os.remove(os.path.join(out_dir, "README.md"))  # PEFT's model-card template
    save_file({"logits": logits.float().contiguous()}, os.path.join(out_dir, "expected.safetensors"))
    # Leave the base model as it was for the next architecture.
    peft_model.unload()


if __name__ == "__main__":
    main()
