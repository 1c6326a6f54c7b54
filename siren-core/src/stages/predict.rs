//! `siren predict`: ratings for (user, candidate item) pairs with a run's trained weights, in
//! one forward pass each (answer-only, [`crate::rating`]).
//!
//! Input: JSONL, one `{"user": "<user id>", "item": "<item id>"}` per line (ids as in the
//! dataset; numbers are accepted). The prompt uses everything known about the user (history,
//! valid and, when loaded, test interactions) and their sketch. Output: JSONL with `user`,
//! `item`, `rating` (the `[eval] decoder`), `argmax`, `expected`, `median` and `probs` (the
//! distribution over 1..5).

use std::path::Path;

use crate::answer::AO_SUFFIX;
use crate::config::RunConfig;
use crate::data::{Dataset, Interaction};
use crate::rating::{RatingDecoder, RatingTokens, rating_distributions};
use crate::run::RunDir;
use crate::{CoreError, Result};

use super::eval::Weights;

fn id_field(v: &serde_json::Value, key: &str, path: &Path, line: usize) -> Result<String> {
    match &v[key] {
        serde_json::Value::String(s) => Ok(s.clone()),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        _ => Err(CoreError::Data(format!(
            "{}:{line}: field `{key}` is missing or not a string id",
            path.display()
        ))),
    }
}

/// Reads the pairs of `input` as (user index, item index), with errors naming the line.
fn read_pairs(ds: &Dataset, input: &Path) -> Result<Vec<(u32, u32)>> {
    let text = std::fs::read_to_string(input).map_err(|e| CoreError::io(input, e))?;
    let mut pairs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| CoreError::Data(format!("{}:{n}: not JSON: {e}", input.display())))?;
        let (u, it) = (
            id_field(&v, "user", input, n)?,
            id_field(&v, "item", input, n)?,
        );
        let user = ds.user_index(&u).ok_or_else(|| {
            CoreError::Data(format!(
                "{}:{n}: field `user`: `{u}` is not a user of `{}`",
                input.display(),
                ds.name
            ))
        })?;
        let item = ds.item_index(&it).ok_or_else(|| {
            CoreError::Data(format!(
                "{}:{n}: field `item`: `{it}` is not an item of `{}`",
                input.display(),
                ds.name
            ))
        })?;
        pairs.push((user, item));
    }
    if pairs.is_empty() {
        return Err(CoreError::Data(format!("{}: no pairs", input.display())));
    }
    Ok(pairs)
}

/// Predicts every pair of `input` into `output`; returns the number of pairs.
pub fn run(
    config: &RunConfig,
    ds: &Dataset,
    run: &RunDir,
    weights: &Weights,
    input: &Path,
    output: &Path,
) -> Result<usize> {
    let pairs = read_pairs(ds, input)?;
    let (device, label) = crate::traits::device::open(&config.device)?;
    let (model, tok) = super::load_run_model(config, &device, "prediction")?;
    let (model, method) = super::eval::weighted_model(config, run, weights, model)?;
    tracing::info!(
        "predicting {} pairs with `{method}` weights, device {label}",
        pairs.len()
    );
    let sketches = super::sketches_for(config, ds, run)?;
    let mut timelines = crate::prompt::timelines(ds, true);
    for x in &ds.test {
        timelines[x.user as usize].push(*x);
    }
    let pb = crate::prompt::PromptBuilder::new(config.prompt.clone())?;
    let count = |s: &str| tok.encode(s, false).map(|v| v.len()).unwrap_or(0);
    let mut prompts = Vec::with_capacity(pairs.len());
    for &(user, item) in &pairs {
        let target = Interaction {
            user,
            item,
            rating: 0.0,
            timestamp: i64::MAX,
        };
        let u = user as usize;
        let p = pb.build(
            ds,
            &timelines[u],
            &sketches[u],
            &target,
            pb.cfg.strategy,
            &count,
        );
        let text = super::render_prompt(&tok, &p)?;
        prompts.push(tok.encode(&format!("{text}{AO_SUFFIX}"), false)?);
    }
    let rt = RatingTokens::new(&tok, 5)?;
    let bar = crate::progress::bar(prompts.len() as u64, "predict");
    let mut out = String::new();
    let mut k = 0;
    for chunk in prompts.chunks(config.eval.batch_size) {
        for d in rating_distributions(&model, chunk, &rt, tok.pad_id(), &device)? {
            let (user, item) = pairs[k];
            let dec = |r: RatingDecoder| r.decode(&d, &rt.values);
            out.push_str(
                &serde_json::json!({
                    "user": ds.users[user as usize],
                    "item": ds.items[item as usize].id,
                    "rating": dec(config.eval.decoder),
                    "argmax": dec(RatingDecoder::Argmax),
                    "expected": dec(RatingDecoder::Expected),
                    "median": dec(RatingDecoder::Median),
                    "probs": d,
                })
                .to_string(),
            );
            out.push('\n');
            k += 1;
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    crate::run::write_atomic(output, out.as_bytes())?;
    Ok(pairs.len())
}
