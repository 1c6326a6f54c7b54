//! End-to-end tests across SIREN-rs crates live in `tests/tests/`. This library holds their
//! shared helpers.

use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The paper's Movies split shipped with the project (`data/amazon-movies`).
pub fn paper_movies_dir() -> Option<PathBuf> {
    let d = repo_root().join("data/amazon-movies");
    d.join("history.jsonl.gz").is_file().then_some(d)
}

/// The fetched assets folder (`assets/`, or `$SIREN_ASSETS`).
pub fn assets_dir() -> PathBuf {
    std::env::var_os("SIREN_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("assets"))
}

/// Whether the fetched asset `path` is there. When it is not, a test that needs it stops: it
/// fails when `SIREN_REQUIRE_ASSETS` is set (as `scripts/test.sh` and CI set it, after
/// fetching), and otherwise says it was skipped.
pub fn asset_present(path: &Path) -> bool {
    if path.exists() {
        return true;
    }
    let msg = format!(
        "{} not fetched (bash scripts/fetch-assets.sh)",
        path.display()
    );
    assert!(
        std::env::var_os("SIREN_REQUIRE_ASSETS").is_none(),
        "SIREN_REQUIRE_ASSETS is set: {msg}"
    );
    eprintln!("skipped: {msg}");
    false
}

/// The `method` of every row of a `metrics.json` value, in order.
pub fn method_names(metrics: &serde_json::Value) -> Vec<&str> {
    metrics["results"]
        .as_array()
        .map(|rows| rows.iter().filter_map(|r| r["method"].as_str()).collect())
        .unwrap_or_default()
}

/// A small MovieLens-format dataset: 30 users × 12 items.
pub fn small_movielens(dir: &Path) -> (PathBuf, PathBuf) {
    let inter = dir.join("s.inter");
    let item = dir.join("s.item");
    let mut rows = String::from("user_id:token\titem_id:token\trating:float\ttimestamp:float\n");
    for u in 0..30 {
        for i in 0..12 {
            if (u + 2 * i) % 4 != 0 {
                rows.push_str(&format!(
                    "{u}\t{i}\t{}\t{}\n",
                    1 + (u % 3 + i % 4 + u * i) % 5,
                    10 * i + u
                ));
            }
        }
    }
    std::fs::write(&inter, rows).unwrap();
    let mut items =
        String::from("item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n");
    for i in 0..12 {
        items.push_str(&format!("{i}\tFilm {i}\t2000\tDrama\n"));
    }
    std::fs::write(&item, items).unwrap();
    (inter, item)
}

/// The stage sections of the tiny pipeline for [`tiny_config`]: stage 1 full fine-tuning into
/// the tag format (40 epochs of 8 prompts, so that stage 2's teacher answers in format), then
/// `internalizer` on up to 24 harvested prompts. `training` adds `[training]` keys, `stage2`
/// the `[internalization.training]` keys.
pub fn tiny_pipeline(training: &str, internalizer: &str, stage2: &str) -> String {
    format!(
        r#"[training]
lr = 1e-2
batch_size = 8
max_examples = 8
epochs = 40
checkpoint_every = 40
full_finetune = true
{training}[trainer]
kind = "ao-sft"
[trainer.params]
target = "format"
[internalizer]
kind = "{internalizer}"
[internalization.harvest]
max_new_tokens = 8
max_examples = 24
[internalization.training]
{stage2}"#
    )
}

/// `dir/t.toml` for a tiny HF-folder model (written to `dir/tiny`) on a small MovieLens-format
/// dataset: run `tiny` under `dir/runs`, flex, 5 eval rows, the global-mean baseline, recent-3
/// prompts; `rest` adds the stage sections.
pub fn tiny_config(dir: &Path, rest: &str) -> PathBuf {
    let (inter, item) = small_movielens(dir);
    let model = dir.join("tiny");
    siren_core::testkit::write_tiny_model(&model, 5).unwrap();
    let cfg = dir.join("t.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"name = "tiny"
runs_dir = "{runs}"
device = "flex"
[dataset]
kind = "movielens"
[dataset.params]
inter = "{inter}"
item = "{item}"
k_core = 0
min_history = 2
[eval]
sample = 5
batch_size = 4
max_new_tokens = 6
[[baselines]]
kind = "global-mean"
[model]
path = "{model}"
[prompt]
strategy = "recent"
recent = 3
"#,
            runs = dir.join("runs").display(),
            inter = inter.display(),
            item = item.display(),
            model = model.display()
        ) + rest,
    )
    .unwrap();
    cfg
}
