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
            model: &model,
            backbone: None,
            device,
            prompt: "What is the capital of France?",
            system: None,
            chat: true,
            max_new_tokens: 24,
        })
        .unwrap();
        eprintln!("{device}: {text}");
        assert!(text.contains("Paris"), "{device}: {text}");
    }
}
