//! The engine's training and inference APIs against outside references: LoRA adapters against
//! PEFT (`tests/fixtures/parity/<arch>/lora`, made by `scripts/make-parity-fixtures.py`),
//! completion log-probabilities and hidden states at chosen positions against HF
//! transformers' logits and hidden states, and sampled generation. On flex and tch-cpu.

use my_backbone as _;
use siren_core::engine::{
    Batch, GenerationConfig, LoraSpec, completion_logprobs, generate, states_at,
};
use siren_core::loading::load_hf_dir;
use siren_plugins as _;

mod common;
use common::*;

/// `mistral` is read by the example third-party backbone (`plugins/examples/my-backbone`).
const ARCHS: [&str; 3] = ["llama", "qwen3", "mistral"];

#[test]
fn lora_adapters_match_peft_and_merge_exactly() {
    for arch in ARCHS {
        let exp = expected(arch);
        let lora_dir = fixture(arch).join("lora");
        let (_, want) = read_f32(&lora_dir.join("expected.safetensors"), "logits");
        let vocab = exp.logits.0[2];
        for (dev_name, device) in devices() {
            let base = load_hf_dir(&fixture(arch), None, &device).unwrap();
            let batch = Batch::left_padded(&exp.prompts, 0, &device).unwrap();
            let real = real_tokens(&batch);
            let (mut model, spec) = base.clone().load_peft(&lora_dir).unwrap();
            assert_eq!(
                spec,
                LoraSpec {
                    r: 4,
                    alpha: 8.0,
                    dropout: 0.0
                }
            );
            // q_proj, v_proj, down_proj in each of 2 layers.
            assert_eq!(model.lora_sites(), 6, "{arch}");
            let unmerged = host(model.forward(&batch, None, false).logits);
            let d = max_diff_real(&unmerged, &want, vocab, &real);
            assert!(d <= TOL, "{arch}/{dev_name}: LoRA vs PEFT logits {d}");
            // The adapter really changes the outputs (else the test proves nothing).
            let d_base = max_diff_real(&unmerged, &exp.logits.1, vocab, &real);
            assert!(
                d_base > 1e-2,
                "{arch}: adapter changes logits by only {d_base}"
            );

            // Disabled adapters give the base model back.
            model.set_lora_enabled(false);
            let off = host(model.forward(&batch, None, false).logits);
            let d = max_diff_real(&off, &exp.logits.1, vocab, &real);
            assert!(d <= TOL, "{arch}/{dev_name}: disabled adapters vs base {d}");
            model.set_lora_enabled(true);

            // Merged equals unmerged.
            let merged = model.clone().merge_lora();
            assert_eq!(merged.lora_sites(), 0);
            let m = host(merged.forward(&batch, None, false).logits);
            let d = max_diff_real(&m, &unmerged, vocab, &real);
            assert!(d <= TOL, "{arch}/{dev_name}: merged vs unmerged {d}");

            // Save in PEFT layout and load back: identical predictions.
            let tmp = tempfile::tempdir().unwrap();
            model.save_peft(tmp.path(), &spec, None).unwrap();
            let (again, spec2) = base.clone().load_peft(tmp.path()).unwrap();
            assert_eq!(spec2, spec);
            let a = host(again.forward(&batch, None, false).logits);
            assert_eq!(
                max_diff(&a, &unmerged),
                0.0,
                "{arch}/{dev_name}: PEFT round trip"
            );

            // A fresh adapter (B = 0) leaves the outputs unchanged.
            let (fresh, n) = base
                .clone()
                .add_lora(
                    &spec,
                    |site| site.ends_with("k_proj") || site.ends_with("v_proj"),
                    3,
                )
                .unwrap();
            assert_eq!(n, 4);
            let f = host(fresh.forward(&batch, None, false).logits);
            let d = max_diff_real(&f, &exp.logits.1, vocab, &real);
            assert!(
                d <= TOL,
                "{arch}/{dev_name}: fresh adapter changed logits by {d}"
            );
            eprintln!("{arch}/{dev_name}: LoRA parity with PEFT ok");
        }
    }
}

#[test]
fn bad_adapters_are_clear_errors() {
    let device = siren_core::burn::tensor::Device::flex();
    let base = load_hf_dir(&fixture("llama"), None, &device).unwrap();
    let src = fixture("llama").join("lora");
    let tmp = tempfile::tempdir().unwrap();
    // An adapter for a wider model: shape mismatch names the tensor.
    let cfg = std::fs::read_to_string(src.join("adapter_config.json")).unwrap();
    std::fs::write(
        tmp.path().join("adapter_config.json"),
        cfg.replace("\"r\": 4", "\"r\": 8"),
    )
    .unwrap();
    std::fs::copy(
        src.join("adapter_model.safetensors"),
        tmp.path().join("adapter_model.safetensors"),
    )
    .unwrap();
    let e = base.clone().load_peft(tmp.path()).unwrap_err().to_string();
    assert!(
        e.contains("q_proj.lora_A.weight` has shape [4, 32], expected [8, 32]"),
        "{e}"
    );
    // DoRA is refused naming the field.
    std::fs::write(
        tmp.path().join("adapter_config.json"),
        cfg.replace("\"use_dora\": false", "\"use_dora\": true"),
    )
    .unwrap();
    let e = base.clone().load_peft(tmp.path()).unwrap_err().to_string();
    assert!(e.contains("use_dora"), "{e}");
    // No config at all.
    let e = base
        .clone()
        .load_peft(&tmp.path().join("nowhere"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("adapter_config.json"), "{e}");
    // Targets that select nothing.
    let spec = LoraSpec {
        r: 2,
        alpha: 4.0,
        dropout: 0.0,
    };
    let e = base.add_lora(&spec, |_| false, 0).unwrap_err().to_string();
    assert!(e.contains("selected no linear site"), "{e}");
}

/// `log_softmax` of one row.
fn log_softmax(row: &[f32]) -> Vec<f32> {
    let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let z: f64 = row.iter().map(|&x| f64::from(x - m).exp()).sum();
    let lz = z.ln() as f32 + m;
    row.iter().map(|&x| x - lz).collect()
}

#[test]
fn completion_logprobs_match_transformers() {
    for arch in ARCHS {
        let exp = expected(arch);
        let (shape, logits) = &exp.logits;
        let (s, v) = (shape[1], shape[2]);
        // Split each fixture prompt into a 2-token prompt and the rest as its completion.
        let prompts: Vec<Vec<u32>> = exp.prompts.iter().map(|p| p[..2].to_vec()).collect();
        let comps: Vec<Vec<u32>> = exp.prompts.iter().map(|p| p[2..].to_vec()).collect();
        let cmax = comps.iter().map(Vec::len).max().unwrap();
        // Reference: HF logits of the full (left-padded) sequences.
        let mut want = vec![0f32; prompts.len() * cmax];
        for (i, p) in exp.prompts.iter().enumerate() {
            let lead = s - p.len();
            for j in 0..comps[i].len() {
                let col = lead + 2 + j - 1;
                let row = &logits[(i * s + col) * v..(i * s + col + 1) * v];
                want[i * cmax + j] = log_softmax(row)[comps[i][j] as usize];
            }
        }
        for (dev_name, device) in devices() {
            let model = load_hf_dir(&fixture(arch), None, &device).unwrap();
            let sc = completion_logprobs(&model, &prompts, &comps, 0, &device).unwrap();
            assert_eq!(sc.logprobs.dims(), [2, cmax]);
            let got = host(sc.logprobs);
            let mask = host(sc.mask);
            let d = max_diff(&got, &want);
            assert!(d <= TOL, "{arch}/{dev_name}: completion log-probs {d}");
            let real: f32 = mask.iter().sum();
            assert_eq!(real as usize, comps.iter().map(Vec::len).sum::<usize>());
            assert!(got.iter().all(|x| *x <= 0.0));
        }
    }
}

#[test]
fn states_at_positions_match_transformers() {
    for arch in ARCHS {
        let exp = expected(arch);
        let (hshape, hdata) = &exp.hidden;
        let (layers, s, h) = (hshape[0], hshape[2], hshape[3]);
        let (_, logits) = &exp.logits;
        let v = exp.logits.0[2];
        let b = exp.prompts.len();
        let positions = [Some(2usize), None];
        for (dev_name, device) in devices() {
            let model = load_hf_dir(&fixture(arch), None, &device).unwrap();
            let st = states_at(&model, &exp.prompts, &positions, 0, &device).unwrap();
            assert_eq!(st.hidden.len(), layers);
            let cols: Vec<usize> = exp
                .prompts
                .iter()
                .zip(positions)
                .map(|(p, at)| s - p.len() + at.unwrap_or(p.len() - 1))
                .collect();
            for (l, t) in st.hidden.iter().enumerate() {
                let got = host(t.clone());
                for (i, &col) in cols.iter().enumerate() {
                    let off = ((l * b + i) * s + col) * h;
                    let d = max_diff(&got[i * h..(i + 1) * h], &hdata[off..off + h]);
                    assert!(d <= TOL, "{arch}/{dev_name}: layer {l} seq {i}: {d}");
                }
            }
            let got = host(st.logits);
            for (i, &col) in cols.iter().enumerate() {
                let off = (i * s + col) * v;
                let d = max_diff(&got[i * v..(i + 1) * v], &logits[off..off + v]);
                assert!(d <= TOL, "{arch}/{dev_name}: logits seq {i}: {d}");
            }
            let e = states_at(&model, &exp.prompts, &[Some(99), None], 0, &device).unwrap_err();
            assert!(e.to_string().contains("position 99 is past the end"), "{e}");
        }
    }
}

#[test]
fn sampling_is_seeded_and_top_k_one_is_greedy() {
    let exp = expected("llama");
    for (dev_name, device) in devices() {
        let model = load_hf_dir(&fixture("llama"), None, &device).unwrap();
        let prompts = vec![exp.greedy_prompt.clone(), exp.prompts[1].clone()];
        let n = exp.greedy_tokens.len();
        let sampled = |seed, top_k, use_cache| {
            let cfg = GenerationConfig {
                max_new_tokens: n,
                temperature: 1.3,
                top_k,
                top_p: 0.95,
                seed,
                use_cache,
                ..GenerationConfig::default()
            };
            generate(&model, &prompts, &cfg, &device).unwrap()
        };
        // top-k 1 is greedy: the fixture's 20 transformers tokens.
        assert_eq!(sampled(5, 1, true)[0], exp.greedy_tokens, "{dev_name}");
        // Same seed, same tokens (with or without the cache); another seed, other tokens.
        let a = sampled(11, 0, true);
        assert_eq!(a, sampled(11, 0, true), "{dev_name}");
        assert_eq!(
            a,
            sampled(11, 0, false),
            "{dev_name}: cache changes sampling"
        );
        assert_ne!(a, sampled(12, 0, true), "{dev_name}");
        assert_ne!(
            a[0], exp.greedy_tokens,
            "{dev_name}: T=1.3 sampling looks greedy"
        );

        // A stop predicate ends the sequence on the token that satisfies it.
        let stop_at = exp.greedy_tokens[4];
        let cfg = GenerationConfig {
            max_new_tokens: n,
            stop: Some(std::sync::Arc::new(move |ids: &[u32]| {
                ids.last() == Some(&stop_at)
            })),
            ..GenerationConfig::greedy(n)
        };
        let out = generate(
            &model,
            std::slice::from_ref(&exp.greedy_prompt),
            &cfg,
            &device,
        )
        .unwrap();
        let first = exp
            .greedy_tokens
            .iter()
            .position(|&t| t == stop_at)
            .unwrap();
        assert_eq!(out[0], exp.greedy_tokens[..=first], "{dev_name}");
        // Bad settings are errors, not panics.
        let bad = GenerationConfig {
            top_p: 0.0,
            ..GenerationConfig::greedy(3)
        };
        let e = generate(&model, &prompts, &bad, &device).unwrap_err();
        assert!(e.to_string().contains("top_p"), "{e}");
    }
}

/// Reduced precision where the device computes in it: logits close to transformers' f32 ones
/// (bf16 keeps 8 bits of mantissa, f16 11) and the greedy tokens mostly unchanged.
#[test]
fn reduced_precision_tracks_f32() {
    use siren_core::burn::tensor::{DType, FloatDType};
    let exp = expected("llama");
    let vocab = exp.logits.0[2];
    for (dev_name, device) in devices() {
        for (dtype, tol) in [(FloatDType::BF16, 0.03f32), (FloatDType::F16, 0.01)] {
            if !device.supports_dtype(dtype) {
                eprintln!("{dev_name}: no {dtype:?} arithmetic, skipped");
                continue;
            }
            let model = load_hf_dir(&fixture("llama"), None, &device)
                .unwrap()
                .to_float_dtype(dtype)
                .unwrap();
            assert_eq!(model.float_dtype(), DType::from(dtype));
            let batch = Batch::left_padded(&exp.prompts, 0, &device).unwrap();
            let real = real_tokens(&batch);
            let out = model.forward(&batch, None, true);
            assert_eq!(out.hidden_states[1].dtype(), DType::from(dtype));
            let got = host(out.logits);
            let d = max_diff_real(&got, &exp.logits.1, vocab, &real);
            let scale = exp.logits.1.iter().fold(0f32, |m, x| m.max(x.abs()));
            eprintln!("{dev_name}/{dtype:?}: logits max abs diff {d:.3e} (max |logit| {scale:.2})");
            assert!(
                d <= tol * scale,
                "{dev_name}/{dtype:?}: logits differ by {d}"
            );
            // Greedy decoding agrees for the first tokens (this random model has near-ties
            // later on, where bf16 rounding may pick the other token).
            let cfg = GenerationConfig::greedy(5);
            let toks = generate(
                &model,
                std::slice::from_ref(&exp.greedy_prompt),
                &cfg,
                &device,
            )
            .unwrap();
            assert_eq!(toks[0], exp.greedy_tokens[..5], "{dev_name}/{dtype:?}");
        }
    }
}

/// LoRA training through the engine: on an autodiff device, the token-mean negative
/// log-likelihood of fixed completions falls under AdamW while the frozen base weights stay
/// exactly as loaded, and the trained adapter merges to the same outputs.
#[test]
fn lora_trains_with_adamw_and_leaves_the_base_frozen() {
    use siren_core::burn::optim::{AdamWConfig, GradientsParams};
    let exp = expected("llama");
    for (dev_name, device) in devices() {
        let device = device.autodiff();
        let base = load_hf_dir(&fixture("llama"), None, &device).unwrap();
        let spec = LoraSpec {
            r: 4,
            alpha: 8.0,
            dropout: 0.0,
        };
        let (mut model, _) = base
            .clone()
            .add_lora(&spec, |s| s.ends_with("k_proj") || s.ends_with("v_proj"), 5)
            .unwrap();
        let prompts: Vec<Vec<u32>> = exp.prompts.iter().map(|p| p[..2].to_vec()).collect();
        let comps: Vec<Vec<u32>> = exp.prompts.iter().map(|p| p[2..].to_vec()).collect();
        let nll = |m: &siren_core::engine::Decoder| {
            let sc = completion_logprobs(m, &prompts, &comps, 0, &device).unwrap();
            sc.logprobs.sum().neg().div(sc.mask.sum())
        };
        let w0 = host(model.layers[0].self_attn.k_proj.base.weight.val());
        let mut optim = AdamWConfig::new().with_weight_decay(0.0).init();
        let first = host(nll(&model))[0];
        for _ in 0..40 {
            let loss = nll(&model);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(1e-2, model, grads);
        }
        let last = host(nll(&model))[0];
        eprintln!("{dev_name}: NLL {first:.3} → {last:.3} after 40 AdamW steps on k/v adapters");
        assert!(last < 0.5 * first, "{dev_name}: NLL {first} → {last}");
        let w1 = host(model.layers[0].self_attn.k_proj.base.weight.val());
        assert_eq!(w0, w1, "{dev_name}: the frozen base moved");
        let batch = Batch::left_padded(&exp.prompts, 0, &device).unwrap();
        let real = real_tokens(&batch);
        let a = host(model.forward(&batch, None, false).logits);
        let b = host(
            model
                .clone()
                .merge_lora()
                .forward(&batch, None, false)
                .logits,
        );
        let d = max_diff_real(&a, &b, exp.logits.0[2], &real);
        assert!(
            d <= TOL,
            "{dev_name}: merged vs unmerged after training {d}"
        );
    }
}

/// The `lora-targets` plugins drive `add_lora`, and the PEFT config names their modules.
#[test]
fn lora_target_plugins_select_sites() {
    use siren_core::traits::LoraTargets;
    let device = siren_core::burn::tensor::Device::flex();
    let base = load_hf_dir(&fixture("llama"), None, &device).unwrap();
    let spec = LoraSpec {
        r: 2,
        alpha: 4.0,
        dropout: 0.05,
    };
    for (name, sites, modules) in [
        ("kv", 4, vec!["k_proj", "v_proj"]),
        ("qkv", 6, vec!["k_proj", "q_proj", "v_proj"]),
        ("ffn", 6, vec!["down_proj", "gate_proj", "up_proj"]),
        (
            "all-linear",
            14,
            vec![
                "down_proj",
                "gate_proj",
                "k_proj",
                "o_proj",
                "q_proj",
                "up_proj",
                "v_proj",
            ],
        ),
    ] {
        let t = siren_core::registry::build::<dyn LoraTargets>(name, &Default::default()).unwrap();
        let (m, n) = base.clone().add_lora(&spec, |s| t.select(s), 1).unwrap();
        assert_eq!((n, m.lora_sites()), (sites, sites), "{name}");
        let tmp = tempfile::tempdir().unwrap();
        m.save_peft(tmp.path(), &spec, None).unwrap();
        let cfg: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(tmp.path().join("adapter_config.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(cfg["target_modules"], serde_json::json!(modules), "{name}");
        assert_eq!(cfg["r"], 2);
    }
}

/// Log-probabilities at a temperature are those of the distribution the sampler draws from at
/// that temperature (GRPO scores its samples so, as VERL does).
#[test]
fn logprobs_at_a_temperature_match_the_sampling_distribution() {
    use siren_core::engine::{completion_logprobs_at, sampling_distribution};
    let exp = expected("llama");
    for (dev_name, device) in devices() {
        let model = load_hf_dir(&fixture("llama"), None, &device).unwrap();
        let prompt = exp.prompts[0][..4].to_vec();
        let batch = Batch::left_padded(std::slice::from_ref(&prompt), 0, &device).unwrap();
        let logits = host(model.forward_tail(&batch, None, false, 1).logits);
        for t in [1.0f32, 0.6, 1.7] {
            let dist = sampling_distribution(&logits, t, 0, 1.0);
            for &(tok, p) in dist.iter().take(3) {
                let sc = completion_logprobs_at(
                    &model,
                    std::slice::from_ref(&prompt),
                    &[vec![tok]],
                    0,
                    t,
                    &device,
                )
                .unwrap();
                let lp = host(sc.logprobs)[0];
                assert!(
                    (lp.exp() - p).abs() < 1e-4,
                    "{dev_name} T={t}: token {tok} p={p} but exp(logprob)={}",
                    lp.exp()
                );
            }
        }
    }
}
