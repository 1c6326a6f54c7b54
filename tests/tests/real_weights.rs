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
