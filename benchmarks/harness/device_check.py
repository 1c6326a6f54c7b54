#!/usr/bin/env python3
"""The transformers side of scripts/device-check.sh (the peer of `siren device-check`).

    device_check.py prepare --work DIR --models smollm2,qwen3 --profile cpu|gpu --device cpu|cuda:0 [--dtype f32|bf16]
    device_check.py measure --work DIR --model NAME --device cpu|cuda:0 --only speed|grpo|align --out FILE
    device_check.py report  --work DIR --out DIR

`prepare` makes, for each model, a randomly initialised checkpoint of the real shape (no
download: the config is written here), saves it as DIR/NAME/{config.json,model.safetensors},
draws the token ids every phase uses (seeded), runs the parity reference (f32 logits and
hidden states of two left-padded sequences, on the device) and writes DIR/NAME/inputs.safetensors
and DIR/NAME/plan.json. `measure` times transformers on the same inputs with the same protocol
as `siren device-check` and prints one JSON object. `report` joins every JSON of DIR into
device-check.json and device-check.md.
"""
import argparse
import glob
import json
import os
import statistics
import sys
import time

import torch

# Real shapes (config.json of HuggingFaceTB/SmolLM2-135M-Instruct and Qwen/Qwen3-0.6B).
MODELS = {
    "smollm2": ("llama", dict(vocab_size=49152, hidden_size=576, intermediate_size=1536,
                              num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                              max_position_embeddings=8192, rms_norm_eps=1e-5, rope_theta=100000.0,
                              tie_word_embeddings=True, bos_token_id=1, eos_token_id=2)),
    "qwen3": ("qwen3", dict(vocab_size=151936, hidden_size=1024, intermediate_size=3072,
                            num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8,
                            head_dim=128, max_position_embeddings=40960, rms_norm_eps=1e-6,
                            rope_theta=1000000.0, tie_word_embeddings=True, bos_token_id=151643,
                            eos_token_id=151645)),
}
LABEL = {"smollm2": "SmolLM2-135M shape", "qwen3": "Qwen3-0.6B shape"}

# Sizes per profile: `cpu` keeps the whole check inside a few minutes on 2 cores, `gpu` is the
# paper's scale (batch 32, 512 reasoning tokens, GRPO groups of 8).
PROFILES = {
    "cpu": dict(parity_tokens=48, prompt_tokens=32, batches=[1, 32], cot_tokens=8, reason_tokens=128,
                ratio_batches=[1], repeats=3,
                grpo=dict(prompts=2, group=4, prompt_tokens=32, response_tokens=16, lora_r=8),
                align=dict(batch=4, prompt_tokens=32, thinking_tokens=64, lora_r=8)),
    "gpu": dict(parity_tokens=128, prompt_tokens=512, batches=[1, 32], cot_tokens=128,
                reason_tokens=512, ratio_batches=[1, 32], repeats=3,
                grpo=dict(prompts=4, group=8, prompt_tokens=512, response_tokens=256, lora_r=16),
                align=dict(batch=16, prompt_tokens=512, thinking_tokens=512, lora_r=16)),
}
AO_SUFFIX_TOKENS = 3
DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def build_model(name, device, dtype=torch.float32):
    from transformers import AutoModelForCausalLM
    path = os.path.join(ARGS.work, name)
    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device).eval()


def prepare(args):
    from safetensors.torch import save_file
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen3Config, Qwen3ForCausalLM
    prof = PROFILES[args.profile]
    device = torch.device(args.device)
    for name in args.models.split(","):
        if name not in MODELS:
            sys.exit(f"device_check.py: unknown model `{name}` (known: {', '.join(MODELS)})")
        kind, cfg = MODELS[name]
        out = os.path.join(args.work, name)
        os.makedirs(out, exist_ok=True)
        t = time.perf_counter()
        torch.manual_seed(0)
        config = (LlamaConfig if kind == "llama" else Qwen3Config)(**cfg)
        model = (LlamaForCausalLM if kind == "llama" else Qwen3ForCausalLM)(config).float().eval()
        model.save_pretrained(out)
        model = model.to(device)
        made = time.perf_counter() - t
        g = torch.Generator().manual_seed(1)
        vocab = cfg["vocab_size"]

        def ids(*shape):
            return torch.randint(3, vocab, shape, generator=g)

        # Parity: two left-padded sequences (pad id 0), HF positions cumsum(mask) - 1.
        s = prof["parity_tokens"]
        lens = torch.tensor([s, s - 13])
        par = ids(2, s)
        mask = torch.ones(2, s, dtype=torch.long)
        par[1, : s - lens[1]] = 0
        mask[1, : s - lens[1]] = 0
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            o = model(input_ids=par.to(device), attention_mask=mask.to(device),
                      position_ids=pos.to(device), output_hidden_states=True)
        tensors = {
            "parity_ids": par, "parity_len": lens,
            "parity_logits": o.logits.float().cpu().contiguous(),
            "parity_hidden": torch.stack([h.float().cpu() for h in o.hidden_states]).contiguous(),
            "prompts": ids(max(prof["batches"] + prof["ratio_batches"]), prof["prompt_tokens"]),
        }
        gp = prof["grpo"]
        tensors["grpo_prompts"] = ids(gp["prompts"], gp["prompt_tokens"])
        adv = torch.randn(gp["prompts"], gp["group"], generator=g)
        adv = (adv - adv.mean(1, keepdim=True)) / (adv.std(1, keepdim=True) + 1e-4)
        tensors["grpo_adv"] = adv.reshape(-1).contiguous()
        ap = prof["align"]
        prompt = ids(ap["batch"], ap["prompt_tokens"])
        suffix = ids(1, AO_SUFFIX_TOKENS).expand(ap["batch"], -1)
        thinking = ids(ap["batch"], ap["thinking_tokens"])
        tensors["align_teacher"] = torch.cat([prompt, thinking, suffix], 1).contiguous()
        tensors["align_student"] = torch.cat([prompt, suffix], 1).contiguous()
        tensors["answer_ids"] = torch.randperm(vocab - 3, generator=g)[:5] + 3
        tensors["align_labels"] = torch.randint(0, 5, (ap["batch"],), generator=g)
        save_file(tensors, os.path.join(out, "inputs.safetensors"))
        plan = {
            "dtype": args.dtype, "batches": prof["batches"], "cot_tokens": prof["cot_tokens"],
            "reason_tokens": prof["reason_tokens"], "ratio_batches": prof["ratio_batches"],
            "repeats": prof["repeats"], "pad_id": 0, "prompt_tokens": prof["prompt_tokens"],
            "grpo": {"group": gp["group"], "response_tokens": gp["response_tokens"],
                     "lora_r": gp["lora_r"], "lr": 1e-5, "clip": 0.2, "beta": 0.04},
            "align": {"lora_r": ap["lora_r"], "lr": 1e-4},
        }
        with open(os.path.join(out, "plan.json"), "w") as f:
            json.dump(plan, f, indent=1)
        n = sum(p.numel() for p in model.parameters())
        print(f"prepared {name} ({LABEL[name]}, {n / 1e6:.0f}M parameters) in {made:.1f}s", file=sys.stderr)
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()


def median_s(repeats, f, device):
    f()
    sync(device)
    v = []
    for _ in range(max(1, repeats)):
        t = time.perf_counter()
        f()
        sync(device)
        v.append(time.perf_counter() - t)
    return sorted(v)[len(v) // 2]


def load_inputs(name):
    from safetensors.torch import load_file
    d = os.path.join(ARGS.work, name)
    with open(os.path.join(d, "plan.json")) as f:
        plan = json.load(f)
    return plan, load_file(os.path.join(d, "inputs.safetensors"))


def speed(name, device, plan, inp):
    dtype = DTYPES[plan["dtype"]]
    t = time.perf_counter()
    model = build_model(name, device, dtype)
    sync(device)
    load_s = time.perf_counter() - t
    prompts = inp["prompts"].to(device)

    def ao_once(b):
        with torch.inference_mode():
            logits = model(input_ids=prompts[:b], logits_to_keep=1).logits[:, -1]
            logits.float().cpu()

    def cot_once(b, n):
        with torch.inference_mode():
            out = model.generate(input_ids=prompts[:b], attention_mask=torch.ones_like(prompts[:b]),
                                 max_new_tokens=n, min_new_tokens=n, do_sample=False,
                                 pad_token_id=0, top_k=None, top_p=None, temperature=None)
        assert out.shape[1] == prompts.shape[1] + n

    ao, cot, ratio, ao_s = [], [], [], {}
    for b in plan["batches"]:
        s = median_s(plan["repeats"], lambda: ao_once(b), device)
        ao_s[b] = s
        ao.append({"batch": b, "ms": s * 1e3, "sequences_per_s": b / s})
        print(f"  AO batch {b}: {s * 1e3:.1f} ms", file=sys.stderr)
        n = plan["cot_tokens"]
        c = median_s(plan["repeats"], lambda: cot_once(b, n), device)
        cot.append({"batch": b, "new_tokens": n, "s": c, "tokens_per_s": b * n / c})
        print(f"  CoT batch {b}: {b * n / c:.1f} tokens/s", file=sys.stderr)
    for b in plan["ratio_batches"]:
        a = ao_s.get(b) or median_s(plan["repeats"], lambda: ao_once(b), device)
        t = time.perf_counter()
        cot_once(b, plan["reason_tokens"])
        sync(device)
        c = time.perf_counter() - t
        ratio.append({"batch": b, "reason_tokens": plan["reason_tokens"], "cot_s": c, "ao_s": a, "ratio": c / a})
        print(f"  CoT/AO at {plan['reason_tokens']} tokens, batch {b}: {c / a:.0f}x", file=sys.stderr)
    return {"load_s": load_s, "speed": {"prompt_tokens": prompts.shape[1], "ao": ao, "cot": cot, "ratio": ratio}}


def lora_model(name, device, plan, r):
    from peft import LoraConfig, get_peft_model
    model = build_model(name, device, DTYPES[plan["dtype"]])
    cfg = LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.0,
                     target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    model = get_peft_model(model, cfg)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1.0)
    return model, opt


def grpo(name, device, plan, inp):
    p = plan["grpo"]
    model, opt = lora_model(name, device, plan, p["lora_r"])
    for group in opt.param_groups:
        group["lr"] = p["lr"]
    g, n_resp = p["group"], p["response_tokens"]
    prompts = inp["grpo_prompts"].to(device).repeat_interleave(g, 0)
    adv = inp["grpo_adv"].to(device).unsqueeze(1)
    plen = prompts.shape[1]

    def logprobs(full):
        logits = model(input_ids=full, logits_to_keep=n_resp + 1).logits[:, :-1].float()
        return torch.log_softmax(logits, -1).gather(-1, full[:, plen:].unsqueeze(-1)).squeeze(-1)

    def step():
        t0 = time.perf_counter()
        with torch.inference_mode():
            model.eval()
            full = model.generate(input_ids=prompts, attention_mask=torch.ones_like(prompts),
                                  max_new_tokens=n_resp, min_new_tokens=n_resp, do_sample=True,
                                  temperature=1.0, top_k=0, top_p=1.0, pad_token_id=0)
        full = full.clone()
        sync(device)
        t1 = time.perf_counter()
        with torch.no_grad(), model.disable_adapter():
            ref = logprobs(full)
        sync(device)
        t2 = time.perf_counter()
        model.train()
        lp = logprobs(full)
        ratio = (lp - lp.detach()).exp()
        pg = -torch.min(ratio * adv, ratio.clamp(1 - p["clip"], 1 + p["clip"]) * adv)
        d = ref - lp
        k3 = (d.exp() - d - 1).clamp(-10, 10)
        loss = (pg + p["beta"] * k3).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync(device)
        t3 = time.perf_counter()
        return [t1 - t0, t2 - t1, t3 - t2, t3 - t0], loss.item()

    step()
    (sampling, reference, update, total), loss = step()
    print(f"  GRPO step: {total:.2f} s", file=sys.stderr)
    return {"grpo": {"prompts": inp["grpo_prompts"].shape[0], "group": g, "prompt_tokens": plen,
                     "response_tokens": n_resp, "lora_r": p["lora_r"], "sampling_s": sampling,
                     "reference_s": reference, "update_s": update, "step_s": total, "loss": loss}}


def align(name, device, plan, inp):
    a = plan["align"]
    model, opt = lora_model(name, device, plan, a["lora_r"])
    for group in opt.param_groups:
        group["lr"] = a["lr"]
    teacher_ids = inp["align_teacher"].to(device)
    student_ids = inp["align_student"].to(device)
    answer = inp["answer_ids"].to(device)
    labels = inp["align_labels"].to(device)

    def step():
        t0 = time.perf_counter()
        with torch.no_grad():
            model.eval()
            h = model(input_ids=teacher_ids, output_hidden_states=True, logits_to_keep=1).hidden_states
            teacher = torch.stack([x[:, -1] for x in h[1:]]).float()
        sync(device)
        t1 = time.perf_counter()
        model.train()
        o = model(input_ids=student_ids, output_hidden_states=True, logits_to_keep=1)
        student = torch.stack([x[:, -1] for x in o.hidden_states[1:]]).float()
        align_loss = (1 - torch.nn.functional.cosine_similarity(student, teacher, dim=-1, eps=1e-8)).mean()
        lp5 = torch.log_softmax(torch.log_softmax(o.logits[:, -1].float(), -1)[:, answer], -1)
        ce = -lp5.gather(1, labels.unsqueeze(1)).mean()
        loss = align_loss + ce
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync(device)
        t2 = time.perf_counter()
        return [t1 - t0, t2 - t1, t2 - t0], loss.item()

    step()
    (teacher_s, student_s, total), loss = step()
    print(f"  hidden-align step: {total:.2f} s", file=sys.stderr)
    return {"align": {"batch": student_ids.shape[0], "teacher_tokens": teacher_ids.shape[1],
                      "student_tokens": student_ids.shape[1], "lora_r": a["lora_r"], "teacher_s": teacher_s,
                      "student_update_s": student_s, "step_s": total, "loss": loss}}


def measure(args):
    device = torch.device(args.device)
    plan, inp = load_inputs(args.model)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    fn = {"speed": speed, "grpo": grpo, "align": align}[args.only]
    r = fn(args.model, device, plan, inp)
    import transformers
    r.update({"impl": "transformers", "version": f"transformers {transformers.__version__}, torch {torch.__version__}",
              "device": (torch.cuda.get_device_name(device) if device.type == "cuda"
                         else f"torch CPU, {torch.get_num_threads()} threads"),
              "dtype": plan["dtype"], "peak_rss_mb": peak_rss_mb()})
    if device.type == "cuda":
        r["torch_peak_allocated_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    with open(args.out, "w") as f:
        json.dump(r, f)
        f.write("\n")


def report(args):
    rows = []
    for path in sorted(glob.glob(os.path.join(args.work, "*", "result-*.json"))):
        with open(path) as f:
            r = json.load(f)
        model, phase, impl = os.path.basename(os.path.dirname(path)), *os.path.basename(path)[7:-5].split("-", 1)
        r.update({"model": model, "phase": phase, "impl_key": impl})
        gpu = path[:-5] + ".gpu-mb"
        if os.path.exists(gpu):
            with open(gpu) as f:
                r["gpu_peak_mb"] = float(f.read().strip() or "nan")
        rows.append(r)
    env = {}
    env_path = os.path.join(args.work, "env.json")
    if os.path.exists(env_path):
        with open(env_path) as f:
            env = json.load(f)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "device-check.json"), "w") as f:
        json.dump({"env": env, "rows": rows}, f, indent=1)

    def get(model, phase, impl):
        return next((r for r in rows if r["model"] == model and r["phase"] == phase and r["impl_key"] == impl), None)

    def mem(r):
        if r is None:
            return "–"
        if "gpu_peak_mb" in r:
            return f"{r['gpu_peak_mb']:.0f} MiB GPU"
        return f"{r['peak_rss_mb']:.0f} MiB RSS" if r.get("peak_rss_mb") else "–"

    def ratio(a, b, fmt="{:.2f}×"):
        return fmt.format(a / b) if a and b else "–"

    out = []
    models = sorted({r["model"] for r in rows}, key=list(MODELS).index)
    sr = next((r for r in rows if r["impl_key"] == "siren"), {})
    tr = next((r for r in rows if r["impl_key"] == "transformers"), {})
    out.append(f"Device check on `{env.get('device', '?')}`: SIREN-rs {sr.get('device', '?')} "
               f"against {tr.get('version', '?')} on {tr.get('device', '?')}; "
               f"speed and training in {sr.get('dtype', '?')}, parity in f32. "
               f"Profile `{env.get('profile', '?')}`, {env.get('date', '')}.")
    out.append("")
    out.append("**Parity** (f32, two left-padded sequences, real positions; relative = max |Δ| / max |transformers|)")
    out.append("")
    out.append("| model | tokens | logits max abs Δ | logits rel | hidden max abs Δ | hidden rel | argmax agree |")
    out.append("|---|---|---|---|---|---|---|")
    for m in models:
        r = get(m, "speed", "siren")
        if r and "parity" in r:
            p = r["parity"]
            out.append(f"| {LABEL[m]} | {p['tokens']} | {p['logits_max_abs']:.2e} | {p['logits_max_rel']:.2e} | "
                       f"{p['hidden_max_abs']:.2e} | {p['hidden_max_rel']:.2e} | {p['argmax_agree'] * 100:.1f}% |")
    out.append("")
    out.append("**Speed** (median of runs after a warm-up; ratio = transformers time / SIREN-rs time, > 1: SIREN-rs faster)")
    out.append("")
    out.append("| model | measure | batch | SIREN-rs | transformers | ratio |")
    out.append("|---|---|---|---|---|---|")

    def pairs(s, t, phase, key):
        # Rows of either side; a side whose phase failed shows "–".
        a = (s or {}).get(phase, {}).get(key, []) if s else []
        b = (t or {}).get(phase, {}).get(key, []) if t else []
        return [(a[i] if i < len(a) else None, b[i] if i < len(b) else None) for i in range(max(len(a), len(b)))]

    def num(r, k, fmt):
        return fmt.format(r[k]) if r else "–"

    for m in models:
        s, t = get(m, "speed", "siren"), get(m, "speed", "transformers")
        if not s and not t:
            continue
        ps = (s or t)["speed"]["prompt_tokens"]
        for a, b in pairs(s, t, "speed", "ao"):
            out.append(f"| {LABEL[m]} | answer-only latency, {ps}-token prompt | {(a or b)['batch']} | "
                       f"{num(a, 'ms', '{:.1f} ms')} | {num(b, 'ms', '{:.1f} ms')} | "
                       f"{ratio(b and b['ms'], a and a['ms'])} |")
        for a, b in pairs(s, t, "speed", "cot"):
            out.append(f"| {LABEL[m]} | CoT greedy tokens/s ({(a or b)['new_tokens']} new) | {(a or b)['batch']} | "
                       f"{num(a, 'tokens_per_s', '{:.1f}')} | {num(b, 'tokens_per_s', '{:.1f}')} | "
                       f"{ratio(a and a['tokens_per_s'], b and b['tokens_per_s'])} |")
        for a, b in pairs(s, t, "speed", "ratio"):
            out.append(f"| {LABEL[m]} | CoT time / AO time at {(a or b)['reason_tokens']} reasoning tokens | "
                       f"{(a or b)['batch']} | {num(a, 'ratio', '{:.0f}×')} | {num(b, 'ratio', '{:.0f}×')} | |")
        out.append(f"| {LABEL[m]} | model load | | {num(s, 'load_s', '{:.1f} s')} | {num(t, 'load_s', '{:.1f} s')} | |")
    out.append("")
    out.append("**Training steps** (one step after a warm-up step; LoRA on every linear layer; memory = process peak)")
    out.append("")
    out.append("| model | step | shape | SIREN-rs s | transformers s | ratio | SIREN-rs memory | transformers memory |")
    out.append("|---|---|---|---|---|---|---|---|")

    def phases(r, phase, keys):
        if not r:
            return "–"
        p = r[phase]
        return f"{p['step_s']:.2f} (" + " / ".join(f"{p[k]:.2f}" for k in keys) + ")"

    for m in models:
        s, t = get(m, "grpo", "siren"), get(m, "grpo", "transformers")
        if s or t:
            a = (s or t)["grpo"]
            shape = f"{a['prompts']}×G{a['group']}, {a['prompt_tokens']}+{a['response_tokens']} tokens, r {a['lora_r']}"
            keys = ["sampling_s", "reference_s", "update_s"]
            out.append(f"| {LABEL[m]} | GRPO (sample, reference, update) | {shape} | {phases(s, 'grpo', keys)} | "
                       f"{phases(t, 'grpo', keys)} | "
                       f"{ratio(t and t['grpo']['step_s'], s and s['grpo']['step_s'])} | {mem(s)} | {mem(t)} |")
        s, t = get(m, "align", "siren"), get(m, "align", "transformers")
        if s or t:
            a = (s or t)["align"]
            shape = f"{a['batch']} × ({a['teacher_tokens']} teacher, {a['student_tokens']} student) tokens, r {a['lora_r']}"
            keys = ["teacher_s", "student_update_s"]
            out.append(f"| {LABEL[m]} | hidden-align (teacher / student + update) | {shape} | "
                       f"{phases(s, 'align', keys)} | {phases(t, 'align', keys)} | "
                       f"{ratio(t and t['align']['step_s'], s and s['align']['step_s'])} | {mem(s)} | {mem(t)} |")
    text = "\n".join(out) + "\n"
    with open(os.path.join(args.out, "device-check.md"), "w") as f:
        f.write(text)
    print(text)


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--work", required=True)
    p.add_argument("--models", default="smollm2,qwen3")
    p.add_argument("--profile", choices=list(PROFILES), required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=list(DTYPES), default="f32")
    m = sub.add_parser("measure")
    m.add_argument("--work", required=True)
    m.add_argument("--model", required=True)
    m.add_argument("--device", default="cpu")
    m.add_argument("--only", choices=["speed", "grpo", "align"], required=True)
    m.add_argument("--out", required=True)
    r = sub.add_parser("report")
    r.add_argument("--work", required=True)
    r.add_argument("--out", required=True)
    ARGS = ap.parse_args()
    {"prepare": prepare, "measure": measure, "report": report}[ARGS.cmd](ARGS)


if __name__ == "__main__":
    main()
