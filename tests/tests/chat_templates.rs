//! Qwen3's published chat template (from its `tokenizer_config.json`, fetched with the other
//! assets) renders as HF transformers renders it. The expected texts are Python jinja2 3.1.6's
//! rendering with HF's settings (`ImmutableSandboxedEnvironment(trim_blocks=True,
//! lstrip_blocks=True)`, `tools=None`). The template calls Python string methods (`split`,
//! `lstrip`, `rstrip`, `strip`, `startswith`, `endswith`), a reversed slice and a namespace; in the
//! two-turn exchange it drops the first answer's reasoning.

use siren_core::engine::{Message, TextTokenizer};
use siren_tests::{asset_present, assets_dir};

fn messages(turns: &[(&str, &str)]) -> Vec<Message> {
    turns
        .iter()
        .map(|(r, c)| Message {
            role: (*r).into(),
            content: (*c).into(),
        })
        .collect()
}

#[test]
fn qwen3s_published_template_renders_as_hf_renders_it() {
    let dir = assets_dir().join("qwen3-tokenizer");
    if !asset_present(&dir.join("tokenizer_config.json")) {
        return;
    }
    let tok = TextTokenizer::from_hf_dir(&dir).unwrap();
    let one = [
        ("system", "  You rate movies. "),
        ("user", "Rate Heat.  \n"),
        ("assistant", "<think>\nliked crime\n</think>\n\nA four."),
    ];
    let first = "<|im_start|>system\n  You rate movies. <|im_end|>\n<|im_start|>user\nRate Heat.  \n<|im_end|>\n<|im_start|>assistant\n<think>\nliked crime\n</think>\n\nA four.<|im_end|>\n";
    assert_eq!(
        tok.apply_chat_template(&messages(&one), false).unwrap(),
        first
    );
    assert_eq!(
        tok.apply_chat_template(&messages(&one), true).unwrap(),
        format!("{first}<|im_start|>assistant\n")
    );
    let mut two = one.to_vec();
    two.extend([
        ("user", "And Ronin?"),
        ("assistant", "<think>\nalso crime\n</think>\n\nA five."),
    ]);
    assert_eq!(
        tok.apply_chat_template(&messages(&two), false).unwrap(),
        "<|im_start|>system\n  You rate movies. <|im_end|>\n<|im_start|>user\nRate Heat.  \n<|im_end|>\n<|im_start|>assistant\nA four.<|im_end|>\n<|im_start|>user\nAnd Ronin?<|im_end|>\n<|im_start|>assistant\n<think>\nalso crime\n</think>\n\nA five.<|im_end|>\n"
    );
}
