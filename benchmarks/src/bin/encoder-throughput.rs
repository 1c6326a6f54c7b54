//! Item-encoding throughput of the `bert` text encoder (the sketch stage's first step) on the
//! paper's Movies items. `benchmarks/encoder-vs-sentence-transformers.sh` runs it beside
//! sentence-transformers on the same MiniLM weights and texts and prints the ratio.
//!
//! ```text
//! encoder-throughput <model_dir> <n_items> <out_dir> <device>...
//! ```
//! Writes `<out_dir>/texts.json` (the item texts, in the sketch stage's format) and
//! `<out_dir>/<device>.embeddings.json` (the first 100 embeddings, for the agreement check),
//! and prints one JSON line per device.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use siren_backends as _;
use siren_core::registry::build;
use siren_core::traits::{DatasetLoader, TextEncoder};
use siren_encoders::bert::Bert;
use siren_plugins as _;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        anyhow::bail!(
            "usage: {} <model_dir> <n_items> <out_dir> <device>...",
            args[0]
        );
    }
    let model = Path::new(&args[1]);
    let n: usize = args[2].parse().context("n_items")?;
    let out = Path::new(&args[3]);
    let data = siren_benchmarks::paper_movies_dir().context("data/amazon-movies is missing")?;
    let mut params = siren_core::config::Params::new();
    params.insert("dir".into(), data.display().to_string().into());
    let ds = build::<dyn DatasetLoader>("siren-jsonl", &params)?.load()?;
    let texts: Vec<String> = (0..ds.items.len().min(n) as u32)
        .map(|i| siren_core::prompt::encoder_text(&ds, i))
        .collect();
    std::fs::write(out.join("texts.json"), serde_json::to_string(&texts)?)?;
    for device in &args[4..] {
        let enc = Bert::new(model, device)?;
        enc.encode(&texts[..8.min(texts.len())])?; // load + warm-up
        let t = Instant::now();
        let e = enc.encode(&texts)?;
        let secs = t.elapsed().as_secs_f64();
        let head: Vec<&[f32]> = (0..e.n.min(100)).map(|i| e.row(i)).collect();
        std::fs::write(
            out.join(format!("{device}.embeddings.json")),
            serde_json::to_string(&head)?,
        )?;
        println!(
            "{}",
            serde_json::json!({
                "impl": "siren-rs",
                "device": device,
                "texts": texts.len(),
                "seconds": secs,
                "items_per_s": texts.len() as f64 / secs,
            })
        );
    }
    Ok(())
}
