//! `siren predict`: ratings for (user, candidate item) pairs with a run's trained weights, in
//! one forward pass each (answer-only, [`crate::rating`]).
//!
//! Input: JSONL, one `{"user": "<user id>", "item": "<item id>"}` per line (ids as in the
//! dataset; numbers are accepted). A pair is scored from what precedes it: when the user has
//! rated the item (a history, valid or test interaction), the prompt's sketch and recent lines
//! come from the interactions before that one; otherwise from everything known about the
//! user (history, valid and, when loaded, test interactions). Output: JSONL with `user`,
//! `item`, `rating` (the `[eval] decoder`), `argmax`, `expected`, `median`, `greedy` (the
//! greedy token over the whole vocabulary when it is a rating, else null) and `probs` (the
//! distribution over 1..5). Several pairs of one user compute the user's part of the prompt
//! once ([`crate::rating::score_grouped`]).

use std::path::Path;

use crate::answer::AO_SUFFIX;
use crate::config::RunConfig;
use crate::data::{Dataset, Interaction};
use crate::rating::{RatingDecoder, RatingTokens, score_grouped};
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

/// Each user's interactions in time order: history, valid and (when loaded) test.
pub fn full_timelines(ds: &Dataset) -> Vec<Vec<Interaction>> {
    let mut timelines = crate::prompt::timelines(ds, true);
    for x in &ds.test {
        timelines[x.user as usize].push(*x);
    }
    timelines
}

/// The prompt that scores `user` on `item`, from what precedes the pair in the user's
/// timeline ([`full_timelines`]): sketch and recent lines both come from the interactions
/// before the user's rating of the item, or from all of them for an item the user has not
/// rated.
pub fn pair_prompt(
    ds: &Dataset,
    timelines: &[Vec<Interaction>],
    sketches: &super::sketch::PromptSketches,
    pb: &crate::prompt::PromptBuilder,
    (user, item): (u32, u32),
    count_tokens: &dyn Fn(&str) -> usize,
) -> Result<crate::prompt::Prompt> {
    let target = Interaction {
        user,
        item,
        rating: 0.0,
        timestamp: i64::MAX,
    };
    let past = crate::prompt::past_of_item(&timelines[user as usize], item);
    let sketch = sketches.for_prompt(user, past)?;
    Ok(pb.build(ds, past, &sketch, &target, pb.cfg.strategy, count_tokens))
}

/// Pairs that share the user's part of the prompt (the same user and the same history before
/// the candidate), as index groups: each group's common prefix is computed once.
pub fn user_groups(timelines: &[Vec<Interaction>], pairs: &[(u32, u32)]) -> Vec<Vec<usize>> {
    let mut by: std::collections::BTreeMap<(u32, usize), Vec<usize>> = Default::default();
    for (i, &(user, item)) in pairs.iter().enumerate() {
        let cut = crate::prompt::past_of_item(&timelines[user as usize], item).len();
        by.entry((user, cut)).or_default().push(i);
    }
    by.into_values().collect()
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
    let (device, label) = crate::device::open(&config.device)?;
    let (model, tok) = super::load_run_model(config, &device, "prediction")?;
    let (model, method) = super::eval::weighted_model(config, run, weights, model)?;
    tracing::info!(
        "predicting {} pairs with `{method}` weights, device {label}",
        pairs.len()
    );
    // Rank 0 builds (or finds) the sketches; the other ranks of a data-parallel run read them.
    let sketches = crate::dist::leader_first(|| super::sketches_for(config, ds, run))?;
    let timelines = full_timelines(ds);
    let pb = crate::prompt::PromptBuilder::new(config.prompt.clone())?;
    let count = |s: &str| tok.encode(s, false).map(|v| v.len()).unwrap_or(0);
    let mut prompts = Vec::with_capacity(pairs.len());
    for &(user, item) in &pairs {
        let p = pair_prompt(ds, &timelines, &sketches, &pb, (user, item), &count)?;
        let text = super::render_prompt(&tok, &p)?;
        prompts.push(tok.encode(&format!("{text}{AO_SUFFIX}"), false)?);
    }
    let rt = RatingTokens::new(&tok, 5)?;
    let groups = user_groups(&timelines, &pairs);
    let bar = crate::progress::bar(prompts.len() as u64, "predict");
    let t = std::time::Instant::now();
    let (scores, stats) = score_grouped(
        &model,
        &prompts,
        &groups,
        &rt,
        (tok.pad_id(), config.eval.batch_size),
        &device,
        &|n| bar.inc(n as u64),
    )?;
    bar.finish_and_clear();
    tracing::info!(
        "scored {} pairs in {:.1}s: {} users with several candidates computed their prefix \
         once; {:.1}% of the prompt tokens computed",
        pairs.len(),
        t.elapsed().as_secs_f64(),
        stats.shared_groups,
        100.0 * stats.computed_tokens as f64 / stats.total_tokens.max(1) as f64
    );
    let calibration = super::eval::model_calibration(config, Some((run, &method)))?;
    if let Some((_, path)) = &calibration {
        tracing::info!("distributions calibrated by {}", path.display());
    }
    let calibration = calibration.map(|c| c.0);
    let cal_label = crate::calibration::label(calibration.as_ref());
    let mut out = String::new();
    for (&(user, item), sc) in pairs.iter().zip(&scores) {
        let calibrated = calibration.as_ref().map(|c| c.apply(&sc.probs));
        let d = calibrated.as_ref().unwrap_or(&sc.probs);
        let dec = |r: RatingDecoder| r.decode(d, &rt.values);
        out.push_str(
            &serde_json::json!({
                "user": ds.users[user as usize],
                "item": ds.items[item as usize].id,
                "rating": dec(config.eval.decoder),
                "argmax": dec(RatingDecoder::Argmax),
                "expected": dec(RatingDecoder::Expected),
                "median": dec(RatingDecoder::Median),
                "greedy": sc.greedy,
                "probs": d,
                "calibration": cal_label,
            })
            .to_string(),
        );
        out.push('\n');
    }
    // Every rank holds every score; rank 0 writes them.
    if crate::dist::is_leader() {
        crate::files::write_atomic(output, out.as_bytes())?;
    }
    Ok(pairs.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn generated_pair_files_never_panic_and_errors_name_file_and_line() {
        let mut ds = Dataset::new("t");
        ds.intern_user("u1");
        ds.intern_item("i1");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pairs.jsonl");
        let pool = [
            r#"{"user": "u1", "item": "i1"}"#,
            r#"{"user": 1, "item": "i1"}"#,
            r#"{"user": "u1"}"#,
            r#"{"user": "nobody", "item": "i1"}"#,
            r#"{"user": "u1", "item": ["i1"]}"#,
            r#"{"user": null, "item": "i1"}"#,
            r#"["u1", "i1"]"#,
            r#"{"user": "u1", "item": "i1""#,
            "",
            "   ",
            "\u{0}",
            "😀",
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let (mut ok, mut refused) = (0, 0);
        for _ in 0..2_000 {
            let n = rng.random_range(0..6);
            let lines: Vec<&str> = (0..n)
                .map(|_| pool[rng.random_range(0..pool.len())])
                .collect();
            std::fs::write(&path, lines.join("\n")).unwrap();
            match read_pairs(&ds, &path) {
                Ok(p) => {
                    ok += 1;
                    assert!(!p.is_empty());
                }
                Err(e) => {
                    refused += 1;
                    let msg = e.to_string();
                    // A line's error names a line that exists; a file without pairs says so.
                    let named = (1..=n).any(|k| msg.contains(&format!("pairs.jsonl:{k}:")));
                    assert!(named || msg.contains("pairs.jsonl: no pairs"), "{msg}");
                }
            }
        }
        assert!(ok > 20 && refused > 500, "ok {ok}, refused {refused}");
    }
}
