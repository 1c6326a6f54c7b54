//! Real weights from the fetched assets (`bash scripts/fetch-assets.sh`). Ignored by default
//! (slow, needs assets); `scripts/test.sh` runs them with `--ignored`.

use siren_tests::assets_dir;

#[test]
#[ignore = "needs assets/smollm2 (scripts/fetch-assets.sh); run with --ignored"]
fn smollm2_gguf_knows_the_capital_of_france() {
    let model = assets_dir().join("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        model.is_file(),
        "{} missing: run bash scripts/fetch-assets.sh",
        model.display()
    );
    for device in ["flex", "tch-cpu"] {
        if !siren_backends::compiled_in().contains(&device) {
            continue;
        }
        let text = siren_cli::generate(&siren_cli::GenerateOptions {
            chat: true,
            ..siren_cli::GenerateOptions::greedy(
                &model,
                device,
                "What is the capital of France?",
                24,
            )
        })
        .unwrap();
        eprintln!("{device}: {text}");
        assert!(text.contains("Paris"), "{device}: {text}");
    }
}

#[test]
#[ignore = "needs assets/smollm2 (scripts/fetch-assets.sh); run with --ignored"]
fn smollm2_stop_strings_and_sampling() {
    let model = assets_dir().join("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    let stop = vec!["Paris".to_string()];
    let text = siren_cli::generate(&siren_cli::GenerateOptions {
        chat: true,
        stop: &stop,
        ..siren_cli::GenerateOptions::greedy(
            &model,
            "tch-cpu",
            "What is the capital of France?",
            24,
        )
    })
    .unwrap();
    assert!(
        text.ends_with("Paris"),
        "stops right after the stop string: {text}"
    );
    let sample = |seed| {
        siren_cli::generate(&siren_cli::GenerateOptions {
            chat: true,
            temperature: 0.9,
            top_p: 0.95,
            seed,
            ..siren_cli::GenerateOptions::greedy(&model, "tch-cpu", "Name a fruit.", 12)
        })
        .unwrap()
    };
    assert_eq!(sample(1), sample(1));
}

#[test]
#[ignore = "needs assets/all-MiniLM-L6-v2 (scripts/fetch-assets.sh); run with --ignored"]
fn minilm_similarity_matches_sentence_transformers() {
    use siren_core::traits::TextEncoder;
    let dir = assets_dir().join("all-MiniLM-L6-v2");
    for device in ["flex", "tch-cpu"] {
        let enc = siren_encoders::bert::Bert::new(&dir, device).unwrap();
        let e = enc
            .encode(&[
                "A man is eating food.".into(),
                "A man is eating a piece of bread.".into(),
                "A man is riding a horse.".into(),
            ])
            .unwrap();
        let cos =
            |a: usize, b: usize| -> f32 { e.row(a).iter().zip(e.row(b)).map(|(x, y)| x * y).sum() };
        eprintln!(
            "{device}: cos(food, bread) = {:.4}, cos(food, horse) = {:.4}",
            cos(0, 1),
            cos(0, 2)
        );
        assert!(
            (cos(0, 1) - 0.755).abs() <= 0.005,
            "{device}: {}",
            cos(0, 1)
        );
        assert!(cos(0, 2) < cos(0, 1));
        // Long text is truncated, not an error; the same text gives the same row in any batch.
        let long = "movie ".repeat(2000);
        let one = enc.encode(std::slice::from_ref(&long)).unwrap();
        let two = enc.encode(&["short".into(), long]).unwrap();
        let d = one
            .row(0)
            .iter()
            .zip(two.row(1))
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(d < 1e-5, "{device}: batch changes the embedding by {d}");
    }
}

#[test]
#[ignore = "needs assets/smollm2 (scripts/fetch-assets.sh); run with --ignored"]
fn truncated_gguf_is_a_clear_error() {
    let model = assets_dir().join("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    let bytes = std::fs::read(&model).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cut = tmp.path().join("cut.gguf");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let device = siren_core::burn::tensor::Device::flex();
    let e = siren_core::loading::load_gguf(&cut, &device)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("cut.gguf") && e.contains("truncated file: tensor `"),
        "{e}"
    );
}
