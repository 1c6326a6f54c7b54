//! One prompt, many continuations: the shared-prefix paths of the engine against the plain
//! per-sequence paths they replace, on the tiny parity checkpoints (Llama and Qwen3), on flex
//! and tch-cpu:
//! - sampling G continuations from one prefill equals sampling from G prefills (same seed);
//! - the preallocated KV cache (finished rows dropped) draws the tokens of the cache grown by
//!   concatenation and of decoding without a cache;
//! - log-probabilities of completions over a shared prompt (and a prefix shared by every
//!   prompt) equal per-sequence log-probabilities, and so do the LoRA gradients;
//! - scoring with a cached prefix equals scoring each prompt alone.

use siren_core::burn::optim::GradientsParams;
use siren_core::engine::{
    Decoder, GenerationConfig, LoraSpec, SharedPrefix, TensorMap, completion_logprobs_at, generate,
    generate_shared, shared_prefix_logprobs,
};
use siren_core::loading::load_hf_dir;
use siren_core::rating::{RatingTokens, answer_scores, score_grouped};
use siren_plugins as _;

mod common;
use common::*;

const ARCHS: [&str; 2] = ["llama", "qwen3"];

/// Three prompts that share a 10-token prefix (long enough for the engine to compute it once
/// for all prompts), and completions of varied lengths: two or three per prompt, one of them a
/// single token.
fn workload() -> (Vec<Vec<u32>>, Vec<usize>, Vec<Vec<u32>>) {
    let head = [1u32, 17, 42, 5, 88, 23, 64, 31, 9, 50];
    let prompts: Vec<Vec<u32>> = [vec![61, 9, 70], vec![33], vec![12, 12, 40, 7, 3]]
        .into_iter()
        .map(|t| head.iter().copied().chain(t).collect())
        .collect();
    let owner = vec![0, 0, 0, 1, 1, 2, 2];
    let completions = vec![
        vec![5, 6, 7, 8],
        vec![9],
        vec![10, 11],
        vec![40, 41, 42, 43, 44, 45],
        vec![3, 3],
        vec![77, 2, 18],
        vec![18],
    ];
    (prompts, owner, completions)
}

fn lora(model: Decoder) -> Decoder {
    let spec = LoraSpec {
        r: 4,
        alpha: 8.0,
        dropout: 0.0,
    };
    // Adapters on every linear site; B non-zero so that they change the outputs.
    let (m, _) = model.add_lora(&spec, |_| true, 3).unwrap();
    let mut t: TensorMap = m.tensors_by_path(true).unwrap();
    for (name, (_, v)) in t.iter_mut() {
        if name.ends_with("lora_b") {
            for (k, x) in v.iter_mut().enumerate() {
                *x = 0.05 * ((k % 7) as f32 - 3.0);
            }
        }
    }
    m.with_tensors_by_path(t).unwrap()
}

#[test]
fn sampling_from_one_prefill_equals_sampling_from_g_prefills() {
    for arch in ARCHS {
        for (dev_name, device) in devices() {
            let model = load_hf_dir(&fixture(arch), None, &device).unwrap();
            let (prompts, owner, _) = workload();
            let cfg = GenerationConfig {
                max_new_tokens: 12,
                temperature: 1.0,
                top_p: 0.95,
                seed: 11,
                stop_tokens: vec![0],
                ..GenerationConfig::default()
            };
            let repeated: Vec<Vec<u32>> = owner.iter().map(|&o| prompts[o].clone()).collect();
            let plain = generate(&model, &repeated, &cfg, &device).unwrap();
            let shared = generate_shared(&model, &prompts, &owner, &cfg, &device).unwrap();
            assert_eq!(plain, shared, "{arch} {dev_name}");
            // Different continuations of one prompt really differ (the test can fail).
            assert!(
                plain[0] != plain[1] || plain[1] != plain[2],
                "{arch} {dev_name}"
            );
        }
    }
}

#[test]
fn the_preallocated_cache_draws_the_tokens_of_the_grown_cache_and_of_no_cache() {
    // Sequences end at different steps (a token divisible by 5 after the second), so the
    // preallocated path drops finished rows from its batch while the others go on.
    let stop: siren_core::engine::StopFn =
        std::sync::Arc::new(|t: &[u32]| t.len() >= 2 && t[t.len() - 1].is_multiple_of(5));
    for arch in ARCHS {
        for (dev_name, device) in devices() {
            let model = load_hf_dir(&fixture(arch), None, &device).unwrap();
            let (prompts, owner, _) = workload();
            let repeated: Vec<Vec<u32>> = owner.iter().map(|&o| prompts[o].clone()).collect();
            for temperature in [0.0, 1.0] {
                let cfg = GenerationConfig {
                    max_new_tokens: 16,
                    temperature,
                    seed: 5,
                    stop: Some(stop.clone()),
                    ..GenerationConfig::default()
                };
                let grown = GenerationConfig {
                    preallocate: false,
                    ..cfg.clone()
                };
                let none = GenerationConfig {
                    use_cache: false,
                    ..cfg.clone()
                };
                let fast = generate_shared(&model, &prompts, &owner, &cfg, &device).unwrap();
                let before = generate_shared(&model, &prompts, &owner, &grown, &device).unwrap();
                let plain = generate(&model, &repeated, &none, &device).unwrap();
                let at = format!("{arch} {dev_name} T={temperature}");
                assert_eq!(fast, before, "{at}: preallocated against grown");
                assert_eq!(fast, plain, "{at}: preallocated against no cache");
                if temperature > 0.0 {
                    // The rows really end apart: at least two of the seven end while another
                    // goes on (the batch drops rows once a quarter has finished).
                    let longest = fast.iter().map(Vec::len).max().unwrap();
                    let early = fast.iter().filter(|o| o.len() < longest).count();
                    assert!(early >= 2, "{at}: lengths {fast:?}");
                }
            }
        }
    }
}

/// Per-completion log-probs (host) and the LoRA gradients (by path) of `sum(logprobs)`.
fn logprobs_and_grads(
    model: &Decoder,
    shared: bool,
    temperature: f32,
    device: &siren_core::burn::tensor::Device,
) -> (Vec<f32>, Vec<f32>, TensorMap) {
    let (prompts, owner, completions) = workload();
    let sc = if shared {
        shared_prefix_logprobs(
            model,
            SharedPrefix {
                prompts: &prompts,
                owner: &owner,
                completions: &completions,
            },
            0,
            temperature,
            device,
        )
        .unwrap()
    } else {
        let repeated: Vec<Vec<u32>> = owner.iter().map(|&o| prompts[o].clone()).collect();
        completion_logprobs_at(model, &repeated, &completions, 0, temperature, device).unwrap()
    };
    let lp = host(sc.logprobs.clone());
    let mask = host(sc.mask.clone());
    let grads = GradientsParams::from_grads(sc.logprobs.sum().backward(), model);
    let g = siren_core::train::optimizer::grads_by_path(model, &grads).unwrap();
    (lp, mask, g)
}

#[test]
fn shared_prefix_logprobs_and_lora_gradients_equal_the_per_sequence_path() {
    for arch in ARCHS {
        for (dev_name, device) in devices() {
            let device = device.autodiff();
            let model = lora(load_hf_dir(&fixture(arch), None, &device).unwrap());
            for temperature in [1.0, 0.7] {
                let (a, ma, ga) = logprobs_and_grads(&model, false, temperature, &device);
                let (b, mb, gb) = logprobs_and_grads(&model, true, temperature, &device);
                assert_eq!(ma, mb, "{arch} {dev_name}: masks");
                let d = max_diff(&a, &b);
                assert!(
                    d <= TOL,
                    "{arch} {dev_name} T={temperature}: log-probs differ by {d}"
                );
                assert!(a.iter().any(|x| *x < -0.1), "non-trivial log-probs");
                assert_eq!(ga.keys().collect::<Vec<_>>(), gb.keys().collect::<Vec<_>>());
                assert!(ga.len() >= 2 * 7 * 2, "{arch}: adapters on every site");
                for (name, (_, x)) in &ga {
                    let y = &gb[name].1;
                    let scale = x.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
                    let rel = max_diff(x, y) / scale;
                    assert!(
                        rel <= TOL,
                        "{arch} {dev_name} T={temperature}: gradient of {name} differs by {rel} \
                         (relative)"
                    );
                }
            }
        }
    }
}

#[test]
fn a_cached_prefix_scores_like_each_prompt_alone() {
    let tok = siren_core::testkit::tiny_tokenizer().unwrap();
    let rt = RatingTokens::new(&tok, 5).unwrap();
    for (dev_name, device) in devices() {
        let model = siren_core::testkit::tiny_decoder(9, &device).unwrap();
        // Two users with three candidates each and two users with one: prompts share a head,
        // and each user's prompts share more.
        let head = vec![3u32, 3, 6, 12, 4];
        let mut prompts = Vec::new();
        let mut groups = Vec::new();
        for (u, n) in [(0u32, 3usize), (1, 3), (2, 1), (3, 1)] {
            let mut g = Vec::new();
            for c in 0..n {
                let mut p = head.clone();
                p.extend([7 + u, 8, 9 + u % 2]);
                p.extend((0..=c as u32).map(|k| 2 + (k + u) % 9));
                g.push(prompts.len());
                prompts.push(p);
            }
            groups.push(g);
        }
        let alone: Vec<Vec<f32>> = prompts
            .iter()
            .map(|p| {
                answer_scores(&model, None, std::slice::from_ref(p), &rt, 0, &device).unwrap()[0]
                    .probs
                    .clone()
            })
            .collect();
        let (scored, stats) =
            score_grouped(&model, &prompts, &groups, &rt, (0, 2), &device, &|_| {}).unwrap();
        assert_eq!(stats.shared_groups, 2);
        assert!(stats.computed_tokens < stats.total_tokens);
        for (k, (a, s)) in alone.iter().zip(&scored).enumerate() {
            let d = max_diff(a, &s.probs);
            assert!(d <= TOL, "{dev_name}: prompt {k} differs by {d}");
        }
    }
}
