//! The decoder engine against HF transformers: tiny random Llama (Llama-3 RoPE scaling,
//! separate lm_head) and Qwen3 (q/k norm, tied embeddings) checkpoints, and a Mistral one read
//! by the example third-party backbone (`plugins/examples/my-backbone`), with reference outputs
//! made by `scripts/make-parity-fixtures.py`. Every check runs on flex and, when compiled in,
//! on tch-cpu.

use siren_core::burn::tensor::Device;
use siren_core::engine::{Batch, Decoder, KvCache, Weights, greedy};
use siren_core::loading::load_hf_dir;
// The example third-party backbone (`mistral`), linked as a user's own binary links it.
use my_backbone as _;
use siren_plugins as _;

mod common;
use common::*;

/// The decoder spec of a fixture, through its backbone plugin.
fn spec_of(arch: &str) -> siren_core::engine::DecoderSpec {
    use siren_core::traits::Backbone;
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(arch).join("config.json")).unwrap())
            .unwrap();
    siren_core::registry::build::<dyn Backbone>(arch, &Default::default())
        .unwrap()
        .spec(&cfg)
        .unwrap()
}

fn check_arch(arch: &str) {
    let exp = expected(arch);
    for (dev_name, device) in devices() {
        let model = load_hf_dir(&fixture(arch), None, &device).unwrap();
        let batch = Batch::left_padded(&exp.prompts, 0, &device).unwrap();
        let pos: Vec<i64> = batch.positions.clone().try_into_vec_as::<i64>().unwrap();
        assert_eq!(pos, exp.position_ids, "{arch}/{dev_name}: positions");
        let real = real_tokens(&batch);
        let out = model.forward(&batch, None, true);

        // Logits.
        let vocab = exp.logits.0[2];
        assert_eq!(out.logits.dims().to_vec(), exp.logits.0);
        let d = max_diff_real(&host(out.logits.clone()), &exp.logits.1, vocab, &real);
        assert!(d <= TOL, "{arch}/{dev_name}: logits max abs diff {d}");
        let logits_diff = d;
        let mut hidden_diff = 0f32;

        // Hidden states of every layer.
        let (hshape, hdata) = &exp.hidden;
        assert_eq!(
            out.hidden_states.len(),
            hshape[0],
            "{arch}: number of hidden states"
        );
        let per = hshape[1] * hshape[2] * hshape[3];
        for (l, h) in out.hidden_states.iter().enumerate() {
            let d = max_diff_real(
                &host(h.clone()),
                &hdata[l * per..(l + 1) * per],
                hshape[3],
                &real,
            );
            assert!(
                d <= TOL,
                "{arch}/{dev_name}: hidden state {l} max abs diff {d}"
            );
            hidden_diff = hidden_diff.max(d);
        }

        // Batched left-padded equals one-by-one.
        let s = batch.ids.dims()[1];
        let all = host(out.logits.clone());
        for (i, p) in exp.prompts.iter().enumerate() {
            let single = model.forward(
                &Batch::left_padded(std::slice::from_ref(p), 0, &device).unwrap(),
                None,
                false,
            );
            let one = host(single.logits);
            let off = (s - p.len()) * vocab;
            let rows = &all[i * s * vocab + off..(i + 1) * s * vocab];
            let d = rows
                .iter()
                .zip(&one)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(
                d <= TOL,
                "{arch}/{dev_name}: batched vs single prompt {i}: {d}"
            );
        }

        // KV cache: prefill 3 tokens, then one at a time == full recompute.
        let p = &exp.prompts[0];
        let full = host(
            model
                .forward(
                    &Batch::left_padded(std::slice::from_ref(p), 0, &device).unwrap(),
                    None,
                    false,
                )
                .logits,
        );
        let mut cache = KvCache::new(model.layers.len());
        let pre = Batch::left_padded(&[p[..3].to_vec()], 0, &device).unwrap();
        let mut got = host(model.forward(&pre, Some(&mut cache), false).logits);
        for (k, &t) in p.iter().enumerate().skip(3) {
            let step = Batch::left_padded_from(&[vec![t]], 0, &[k as i64], &device).unwrap();
            got.extend(host(model.forward(&step, Some(&mut cache), false).logits));
        }
        assert_eq!(cache.len(), p.len());
        let d = full
            .iter()
            .zip(&got)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            d <= TOL,
            "{arch}/{dev_name}: cached vs recomputed logits {d}"
        );

        // Greedy tokens, with and without the cache.
        for use_cache in [false, true] {
            let toks = greedy(
                &model,
                std::slice::from_ref(&exp.greedy_prompt),
                exp.greedy_tokens.len(),
                0,
                &[],
                use_cache,
                &device,
            )
            .unwrap();
            assert_eq!(
                toks[0], exp.greedy_tokens,
                "{arch}/{dev_name}: greedy (cache = {use_cache})"
            );
        }
        eprintln!(
            "{arch}/{dev_name}: parity ok (max abs diff: logits {logits_diff:.2e}, hidden {hidden_diff:.2e})"
        );
    }
}

#[test]
fn llama_matches_transformers() {
    check_arch("llama");
}

#[test]
fn qwen3_matches_transformers() {
    check_arch("qwen3");
}

/// A backbone from outside the workspace's plugins, with no engine edit: the folder's
/// `model_type = "mistral"` finds it through the registry.
#[test]
fn mistral_example_backbone_matches_transformers() {
    check_arch("mistral");
}

#[test]
fn bad_checkpoints_are_clear_errors() {
    let device = Device::flex();
    let dir = fixture("llama");
    let spec = spec_of("llama");
    let mut w = Weights::from_hf_dir(&dir).unwrap();
    let (shape, data) = (vec![3usize, 3], vec![0f32; 9]);
    w.insert("model.layers.1.mlp.up_proj.weight", shape, data);
    let e = Decoder::from_weights(spec.clone(), &mut w, &device)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`model.layers.1.mlp.up_proj.weight` has shape [3, 3], expected [64, 32]"),
        "{e}"
    );
    let mut w = Weights::default();
    let e = Decoder::from_weights(spec, &mut w, &device)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`model.embed_tokens.weight` is missing"), "{e}");
    // Truncated file.
    let tmp = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    std::fs::write(
        tmp.path().join("model.safetensors"),
        &bytes[..bytes.len() / 2],
    )
    .unwrap();
    let e = Weights::from_hf_dir(tmp.path()).unwrap_err().to_string();
    assert!(e.contains("not a valid safetensors file"), "{e}");
    // A checkpoint with one tensor renamed: the model names the tensor it misses.
    let st_bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&st_bytes).unwrap();
    let renamed: Vec<(String, safetensors::tensor::TensorView<'_>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| {
            let n = n.replace("layers.1.mlp.up_proj", "layers.1.mlp.upproj");
            (n, v)
        })
        .collect();
    let tmp2 = tempfile::tempdir().unwrap();
    std::fs::copy(dir.join("config.json"), tmp2.path().join("config.json")).unwrap();
    safetensors::serialize_to_file(renamed, None, &tmp2.path().join("model.safetensors")).unwrap();
    let e = siren_core::loading::load_hf_dir(tmp2.path(), None, &device)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("model.safetensors") || e.contains(&tmp2.path().display().to_string()),
        "{e}"
    );
    assert!(
        e.contains("`model.layers.1.mlp.up_proj.weight` is missing"),
        "{e}"
    );
    // Unsupported options are rejected naming the key.
    let mut cfg: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("qwen3").join("config.json")).unwrap(),
    )
    .unwrap();
    cfg["use_sliding_window"] = serde_json::json!(true);
    use siren_core::traits::Backbone;
    let q = siren_core::registry::build::<dyn Backbone>("qwen3", &Default::default()).unwrap();
    let e = q.spec(&cfg).unwrap_err().to_string();
    assert!(e.contains("use_sliding_window"), "{e}");
}

#[test]
fn the_fixture_exercises_llama3_rope_scaling() {
    // Dropping the scaling must break parity, or the fixture would not test it.
    let device = Device::flex();
    let exp = expected("llama");
    let dir = fixture("llama");
    let mut spec = spec_of("llama");
    assert!(spec.rope_scaling.is_some());
    spec.rope_scaling = None;
    let model =
        Decoder::from_weights(spec, &mut Weights::from_hf_dir(&dir).unwrap(), &device).unwrap();
    let batch = Batch::left_padded(&exp.prompts, 0, &device).unwrap();
    let real = real_tokens(&batch);
    let got = host(model.forward(&batch, None, false).logits);
    let d = max_diff_real(&got, &exp.logits.1, exp.logits.0[2], &real);
    assert!(d > 1e-2, "logits without scaling differ by only {d}");
}

#[test]
fn transformers5_rope_parameters_read_like_rope_theta_and_rope_scaling() {
    // transformers 5 writes the RoPE base and scaling as one `rope_parameters` object; the
    // same checkpoint in either layout must give the same spec (else RoPE silently uses 10000).
    use siren_core::traits::Backbone;
    for arch in ["llama", "qwen3"] {
        let v4: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(fixture(arch).join("config.json")).unwrap(),
        )
        .unwrap();
        let mut v5 = v4.clone();
        let obj = v5.as_object_mut().unwrap();
        let mut rp = match obj.remove("rope_scaling") {
            Some(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::from_iter([("rope_type".to_string(), "default".into())]),
        };
        rp.insert("rope_theta".into(), obj.remove("rope_theta").unwrap());
        obj.insert("rope_parameters".into(), rp.into());
        let b = siren_core::registry::build::<dyn Backbone>(arch, &Default::default()).unwrap();
        let (s4, s5) = (b.spec(&v4).unwrap(), b.spec(&v5).unwrap());
        assert_eq!(format!("{s4:?}"), format!("{s5:?}"), "{arch}");
        // Each fixture departs from the defaults where it matters.
        match arch {
            "qwen3" => assert_eq!(s5.rope_theta, 1e6),
            _ => assert!(s5.rope_scaling.is_some()),
        }
    }
    // Scaling the engine does not implement is rejected naming the transformers-5 key.
    let mut q: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("qwen3").join("config.json")).unwrap(),
    )
    .unwrap();
    q.as_object_mut().unwrap().remove("rope_theta");
    q["rope_parameters"] =
        serde_json::json!({"rope_type": "yarn", "rope_theta": 1e6, "factor": 4.0});
    let b = siren_core::registry::build::<dyn Backbone>("qwen3", &Default::default()).unwrap();
    let e = b.spec(&q).unwrap_err().to_string();
    assert!(e.contains("rope_parameters"), "{e}");
}
