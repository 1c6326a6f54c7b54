//! LLM evaluation (`siren eval`): on the evaluated split (or a seeded sample of
//! `[eval] sample` rows), predicts each rating with the decoder — the newest trained weights
//! of the run (stage 2, else stage 1, else the base model) — in two ways:
//! - `<method>-cot`: greedy reasoning (`<think>…</think><answer>r</answer>`, at most
//!   `[eval] max_new_tokens` tokens), rating parsed from the answer (the paper's row);
//! - `<method>-cot-argmax`, `-cot-expected`, `-cot-median`: the same reasoning, read as the
//!   distribution over `1`..`5` at its own `<answer>` tag and decoded like the answer-only
//!   rows, with the reasoning's length, truncation and format counts;
//! - `<method>-ao`, `<method>-ao-expected`, `<method>-ao-median`: answer-only, one forward
//!   pass over the prompt followed by an empty reasoning block and `<answer>`
//!   ([`crate::answer::AO_SUFFIX`]); the next-token distribution over `1`..`5` decoded by
//!   argmax (the paper), expectation or median ([`crate::rating`]). `<method>-ao` uses
//!   `[eval] decoder` (default `argmax`); the other two are `<method>-ao-<decoder>`.
//!
//! `<method>` is the internalizer's name for stage-2 weights, the trainer's name for stage-1
//! weights, or `base` for the untrained model. An answer
//! without a rating counts as the mean training rating (counted in `fallbacks`); predictions
//! are clipped to the rating scale. Every configured baseline is fitted and scored on the same
//! rows, so the table compares like with like. Each LLM row carries the format rate, parse
//! rate, mean output tokens and mean latency per sample (batched, `[eval] batch_size`).
//! Predictions with the generated text go to `eval/<method>.jsonl` (`[eval] folder` names
//! another folder than `eval`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::answer;
use crate::config::RunConfig;
use crate::data::Dataset;
use crate::engine::{Decoder, GenerationConfig, TextTokenizer, generate};
use crate::metrics::{MethodResult, Metrics};
use crate::registry::build;
use crate::run::RunDir;
use crate::traits::{Example, RatingBaseline};
use crate::{CoreError, Result};

use super::stage::{Ctx, Stage, Status};

pub use crate::trained::{
    Weights, method_name, model_calibration, resolve_weights, weighted_model,
};

/// The key of an evaluation's LLM rows: everything that decides them (settings, prompts,
/// rows, the weights' bytes).
fn cache_key(config: &RunConfig, which: &Weights, files: &[PathBuf], modes: Modes) -> Result<u64> {
    let settings = serde_json::json!({
        "model": config.model, "eval": config.eval, "prompt": config.prompt,
        "dataset": config.dataset, "seed": config.seed, "topics": config.topics,
        "encoder": config.encoder, "clusterer": config.clusterer, "namer": config.namer,
        "sketch": config.sketch, "answer_tokens": config.training.answer_tokens,
        "weights": format!("{which:?}"), "cot": modes.cot, "ao": modes.ao,
        "method": method_name(config, which),
    })
    .to_string();
    let mut bytes = Vec::new();
    // The weights' files, and the model's calibration file (its rows are in the cache too).
    let cal = config.model.as_ref().and_then(|m| m.calibration.as_ref());
    for f in files.iter().chain(cal) {
        bytes.push(std::fs::read(f).map_err(|e| CoreError::io(f, e))?);
    }
    let mut parts: Vec<&[u8]> = vec![settings.as_bytes()];
    parts.extend(bytes.iter().map(Vec::as_slice));
    Ok(crate::hash::fnv1a(parts))
}

/// Which decodings to run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Modes {
    /// Greedy reasoning.
    pub cot: bool,
    /// Answer-only.
    pub ao: bool,
}

struct Decoded {
    text: String,
    ids: Vec<u32>,
    tokens: usize,
}

fn decode_all(
    model: &Decoder,
    tok: &TextTokenizer,
    prompts: &[Vec<u32>],
    max_new: usize,
    batch: usize,
    device: &burn::tensor::Device,
    label: &str,
) -> Result<(Vec<Decoded>, f64)> {
    let cfg = GenerationConfig {
        max_new_tokens: max_new,
        stop_tokens: tok.eos.into_iter().collect(),
        stop: tok.stop_strings(&["</answer>".to_string()]),
        pad_id: tok.pad_id(),
        ..GenerationConfig::greedy(max_new)
    };
    let bar = crate::progress::bar(prompts.len() as u64, label.to_string());
    let t = Instant::now();
    // Each batch is decoded by one rank of a data-parallel run (all of them alone); then every
    // rank holds every completion.
    let mut generated: Vec<Option<Vec<f32>>> = vec![None; prompts.len()];
    for (k, chunk) in prompts.chunks(batch).enumerate() {
        if !crate::dist::owns(k) {
            continue;
        }
        for (j, ids) in generate(model, chunk, &cfg, device)?
            .into_iter()
            .enumerate()
        {
            generated[k * batch + j] = Some(ids.iter().map(|&i| i as f32).collect());
        }
        bar.inc(chunk.len() as u64);
    }
    crate::dist::share_rows(&mut generated)?;
    bar.finish_and_clear();
    let mut out = Vec::with_capacity(prompts.len());
    for ids in generated.into_iter().flatten() {
        let ids: Vec<u32> = ids.into_iter().map(|i| i as u32).collect();
        out.push(Decoded {
            text: tok.decode_generated(&ids)?,
            tokens: ids.len(),
            ids,
        });
    }
    Ok((out, t.elapsed().as_secs_f64()))
}

fn write_jsonl(
    path: &Path,
    examples: &[Example],
    pred: &[f32],
    out: &[Decoded],
    probs: &[Vec<f32>],
) -> Result<()> {
    let mut s = String::new();
    for (k, ((e, p), d)) in examples.iter().zip(pred).zip(out).enumerate() {
        s.push_str(
            &serde_json::json!({"id": e.id, "rating": e.rating, "pred": p, "tokens": d.tokens,
                "probs": probs.get(k), "text": d.text})
            .to_string(),
        );
        s.push('\n');
    }
    write_leader(path, s.as_bytes())
}

/// Writes `bytes` to `path` on rank 0 of a data-parallel run (every rank holds the same
/// results; one writes them), always alone.
fn write_leader(path: &Path, bytes: &[u8]) -> Result<()> {
    if crate::dist::is_leader() {
        crate::files::write_atomic(path, bytes)?;
    }
    Ok(())
}

/// Every configured baseline, fitted on `fit` and scored on `rows`.
fn baseline_rows(
    config: &RunConfig,
    ds: &Dataset,
    fit: &[crate::data::Interaction],
    rows: &[crate::data::Interaction],
    truth: &[f32],
) -> Result<Vec<MethodResult>> {
    let mut results = Vec::new();
    for b in &config.baselines {
        let model = build::<dyn RatingBaseline>(&b.kind, &b.params)?.fit(ds, fit, config.seed)?;
        let pred: Vec<f32> = rows.iter().map(|x| model.predict(x.user, x.item)).collect();
        results.push(MethodResult::evaluate(&b.kind, &pred, truth)?);
    }
    Ok(results)
}

/// The LLM rows of a cached evaluation.
fn read_cached(p: &Path) -> Result<Vec<MethodResult>> {
    let text = std::fs::read_to_string(p).map_err(|e| CoreError::io(p, e))?;
    serde_json::from_str(&text).map_err(|source| CoreError::Json {
        path: p.to_path_buf(),
        source,
    })
}

/// Runs the evaluation and records the rows in `metrics.json`. With `cache`, LLM rows are
/// stored under `eval/cache-<key>.json` and reused when the weights and every setting that
/// shapes them are the same (the pipeline runner's reuse).
pub fn run(
    config: &RunConfig,
    ds: &Dataset,
    run: &RunDir,
    weights: &Weights,
    modes: Modes,
    cache: bool,
) -> Result<Metrics> {
    if config.model.is_none() {
        return Err(CoreError::config(
            "model",
            "evaluation needs a [model] table",
        ));
    }
    let split = config.eval.split;
    let rows = super::sample_rows(ds.split(split), config.eval.sample, config.seed);
    let truth: Vec<f32> = rows.iter().map(|x| x.rating).collect();
    let fit = ds.fit_set(split);
    let mean = fit.iter().map(|x| x.rating).sum::<f32>() / fit.len().max(1) as f32;
    let mut results = baseline_rows(config, ds, &fit, &rows, &truth)?;

    let eval_dir = run.file(config.eval.folder());
    std::fs::create_dir_all(&eval_dir).map_err(|e| CoreError::io(&eval_dir, e))?;
    let (which, files) = resolve_weights(config, run, weights)?;
    let cache_path = if cache {
        let key = cache_key(config, &which, &files, modes)?;
        Some(eval_dir.join(format!("cache-{key:016x}.json")))
    } else {
        None
    };
    if let Some(p) = cache_path.as_ref().filter(|p| p.is_file()) {
        let rows = read_cached(p)?;
        tracing::info!(
            "reusing the `{}` rows evaluated with the same weights and settings ({})",
            method_name(config, &which),
            p.display()
        );
        results.extend(rows);
        return run.record_metrics(&ds.name, split.as_str(), truth.len(), results);
    }
    let (device, label) = crate::device::open(&config.device)?;
    let (model, tok) = super::load_run_model(config, &device, "evaluation")?;
    let (model, method) = weighted_model(config, run, &which, model)?;
    // Rank 0 builds (or finds) the sketches; the other ranks of a data-parallel run read them.
    let sketches = crate::dist::leader_first(|| super::sketches_for(config, ds, run))?;
    let examples = super::examples(config, ds, &rows, &sketches, &tok)?;
    let batch = config.eval.batch_size;
    let n = examples.len();
    tracing::info!(
        "evaluating `{method}` on {n} {} rows, device {label}",
        split.as_str()
    );

    let mut llm_rows = Vec::new();
    if modes.cot {
        let name = format!("{method}-cot");
        let prompts: Vec<Vec<u32>> = examples
            .iter()
            .map(|e| tok.encode(&e.prompt, false))
            .collect::<crate::engine::Result<_>>()?;
        let max_new = config.eval.max_new_tokens;
        let (out, secs) = decode_all(&model, &tok, &prompts, max_new, batch, &device, &name)?;
        let (mut fmt, mut parsed) = (0usize, 0usize);
        let pred: Vec<f32> = out
            .iter()
            .map(|d| {
                fmt += usize::from(answer::format_ok(&d.text));
                let r = answer::parse_rating(&d.text);
                parsed += usize::from(r.is_some());
                r.unwrap_or(mean).clamp(1.0, 5.0)
            })
            .collect();
        let mut r = MethodResult::evaluate(&name, &pred, &truth)?;
        let tokens = out.iter().map(|d| d.tokens).sum::<usize>() as f64 / n as f64;
        for (k, v) in [
            ("format_rate", serde_json::json!(fmt as f64 / n as f64)),
            ("parse_rate", serde_json::json!(parsed as f64 / n as f64)),
            ("fallbacks", serde_json::json!(n - parsed)),
            ("mean_output_tokens", serde_json::json!(tokens)),
            ("latency_s", serde_json::json!(secs / n as f64)),
            ("batch_size", serde_json::json!(batch)),
            ("device", serde_json::json!(label)),
        ] {
            r.extra.insert(k.into(), v);
        }
        tracing::info!(
            "{name}: MAE {:.4} RMSE {:.4}, parsed {parsed}/{n}, {tokens:.1} output tokens, {:.3}s/sample",
            r.mae,
            r.rmse,
            secs / n as f64
        );
        let (dist_rows, probs) = cot_distribution_rows(
            &model,
            &tok,
            (&prompts, &out),
            &truth,
            (batch, max_new, secs),
            &device,
            &name,
        )?;
        for (k, v) in &dist_rows[0].extra {
            if k.starts_with("think") || k == "truncated" || k == "answer_tags_appended" {
                r.extra.insert(k.clone(), v.clone());
            }
        }
        write_jsonl(
            &eval_dir.join(format!("{name}.jsonl")),
            &examples,
            &pred,
            &out,
            &probs,
        )?;
        llm_rows.push(r);
        llm_rows.extend(dist_rows);
    }
    if modes.ao {
        // The cross-fit fits on the evaluated rows' labels: only on the split a model is tuned
        // on, never on test (where the model's own calibration is the calibrated row).
        let on_test = config.eval.split == crate::data::SplitName::Test;
        if config.eval.calibrate && on_test {
            tracing::warn!(
                "[eval] calibrate: no cross-fitted rows on the test split (they would fit on its \
                 labels); the model's calibration (`[model] calibration`) gives the calibrated rows"
            );
        }
        let model_cal = model_calibration(config, None)?;
        llm_rows.extend(answer_only(
            &model,
            &tok,
            &examples,
            &truth,
            (batch, config.eval.decoder, mean),
            (
                (config.eval.calibrate && !on_test).then_some(config.seed),
                model_cal.as_ref(),
            ),
            &device,
            &label,
            &method,
            &eval_dir,
        )?);
    }
    if let Some(p) = &cache_path {
        let json =
            serde_json::to_vec_pretty(&llm_rows).map_err(|e| CoreError::Numeric(e.to_string()))?;
        write_leader(p, &json)?;
    }
    results.extend(llm_rows);
    run.record_metrics(&ds.name, split.as_str(), n, results)
}

/// The CoT rows read as distributions (`<name>-argmax`, `-expected`, `-median`): after each
/// greedy reasoning, the next-token distribution at its own `<answer>` tag over the rating
/// tokens ([`crate::rating::cot_answer_input`]), decoded like the answer-only rows, so CoT and
/// answer-only rows compare decoder by decoder. Each row also reports the reasoning: mean
/// tokens inside `<think>…</think>`, the share of completions with a non-empty one, how many
/// hit the token budget without closing `</answer>` (`truncated`) and how many had their
/// answer tags appended to be read. Latency is the decoding's plus the reading's.
fn cot_distribution_rows(
    model: &Decoder,
    tok: &TextTokenizer,
    (prompts, out): (&[Vec<u32>], &[Decoded]),
    truth: &[f32],
    (batch, max_new, decode_secs): (usize, usize, f64),
    device: &burn::tensor::Device,
    name: &str,
) -> Result<(Vec<MethodResult>, Vec<Vec<f32>>)> {
    use crate::rating::{RatingDecoder, RatingTokens, cot_answer_input, score_grouped};
    let rt = RatingTokens::new(tok, 5)?;
    let n = out.len();
    let (mut appended, mut truncated, mut think_tokens, mut non_empty) = (0usize, 0, 0usize, 0);
    let mut inputs = Vec::with_capacity(n);
    for (p, d) in prompts.iter().zip(out) {
        let (ids, forced) = cot_answer_input(tok, p, &d.ids)?;
        appended += usize::from(forced);
        truncated += usize::from(d.tokens >= max_new && !d.text.contains("</answer>"));
        let inner = crate::train::teacher::thinking_block(&d.text)
            .map(crate::train::teacher::thinking_inner)
            .unwrap_or("");
        if !inner.is_empty() {
            non_empty += 1;
            think_tokens += tok.encode(inner, false)?.len();
        }
        inputs.push(ids);
    }
    let t = Instant::now();
    let bar = crate::progress::bar(n as u64, format!("{name} answer distribution"));
    let (scores, _) = score_grouped(
        model,
        &inputs,
        &[],
        &rt,
        (tok.pad_id(), batch),
        device,
        &|k| bar.inc(k as u64),
    )?;
    bar.finish_and_clear();
    let secs = decode_secs + t.elapsed().as_secs_f64();
    let tokens = out.iter().map(|d| d.tokens).sum::<usize>() as f64 / n.max(1) as f64;
    let mut rows = Vec::new();
    for dec in RatingDecoder::ALL {
        let row = format!("{name}-{}", dec.as_str());
        let pred: Vec<f32> = scores
            .iter()
            .map(|s| dec.decode(&s.probs, &rt.values))
            .collect();
        let mut r = MethodResult::evaluate(&row, &pred, truth)?;
        for (k, v) in [
            ("decoder", serde_json::json!(dec.as_str())),
            ("mean_output_tokens", serde_json::json!(tokens)),
            ("latency_s", serde_json::json!(secs / n.max(1) as f64)),
            ("batch_size", serde_json::json!(batch)),
            (
                "think_tokens_mean",
                serde_json::json!(think_tokens as f64 / n.max(1) as f64),
            ),
            (
                "think_non_empty_rate",
                serde_json::json!(non_empty as f64 / n.max(1) as f64),
            ),
            ("truncated", serde_json::json!(truncated)),
            ("answer_tags_appended", serde_json::json!(appended)),
        ] {
            r.extra.insert(k.into(), v);
        }
        tracing::info!(
            "{row}: MAE {:.4} RMSE {:.4} (the answer distribution after the model's own reasoning)",
            r.mae,
            r.rmse
        );
        rows.push(r);
    }
    tracing::info!(
        "{name}: {:.1} think tokens on average, {non_empty}/{n} non-empty, {truncated} cut by \
         the {max_new}-token budget, {appended} read with appended answer tags",
        think_tokens as f64 / n.max(1) as f64
    );
    Ok((rows, scores.into_iter().map(|s| s.probs).collect()))
}

/// Writes each answer-only prediction (`id`, `rating`, `probs`, `greedy`, `rating_mass`) as one
/// JSON line.
fn write_ao_jsonl(
    path: &Path,
    examples: &[Example],
    scores: &[crate::rating::AnswerScores],
) -> Result<()> {
    let mut lines = String::new();
    for (e, s) in examples.iter().zip(scores) {
        lines.push_str(
            &serde_json::json!({"id": e.id, "rating": e.rating, "probs": s.probs,
                "greedy": s.greedy, "rating_mass": s.mass})
            .to_string(),
        );
        lines.push('\n');
    }
    write_leader(path, lines.as_bytes())
}

/// Cross-fitted calibration for a label shift: each half of the rows calibrated by the other
/// half's fit; the fits (and the fit on all rows) written to `path`.
fn cross_fit_calibration(
    probs: &[Vec<f32>],
    truth: &[f32],
    values: &[f32],
    seed: u64,
    path: &Path,
) -> Result<Vec<Vec<f32>>> {
    let labels: Vec<usize> = truth
        .iter()
        .map(|&r| {
            values
                .iter()
                .position(|&v| (v - r).abs() < 0.5)
                .unwrap_or(values.len() - 1)
        })
        .collect();
    let (cal, fits) = crate::calibration::cross_fit(probs, &labels, seed);
    write_leader(
        path,
        &serde_json::to_vec_pretty(&serde_json::json!({
            "cross_fit": fits,
            "all_rows": crate::calibration::Calibration::fit(probs, &labels),
        }))
        .map_err(|e| CoreError::Numeric(e.to_string()))?,
    )?;
    Ok(cal)
}

/// The answer-only rows: one forward per prompt, every rating decoder, and the strict row
/// (the paper's protocol: one greedy token over the whole vocabulary). The prompts' common
/// prefix (the system prompt and the start of the user message) is computed once, and
/// batches are formed from prompts of similar length.
#[allow(clippy::too_many_arguments)]
fn answer_only(
    model: &Decoder,
    tok: &TextTokenizer,
    examples: &[Example],
    truth: &[f32],
    (batch, main, fallback): (usize, crate::rating::RatingDecoder, f32),
    (calibrate, model_cal): (
        Option<u64>,
        Option<&(crate::calibration::Calibration, PathBuf)>,
    ),
    device: &burn::tensor::Device,
    label: &str,
    method: &str,
    dir: &Path,
) -> Result<Vec<MethodResult>> {
    use crate::rating::{RatingDecoder, RatingTokens, score_grouped};
    let rt = RatingTokens::new(tok, 5)?;
    let prompts: Vec<Vec<u32>> = examples
        .iter()
        .map(|e| tok.encode(&format!("{}{}", e.prompt, answer::AO_SUFFIX), false))
        .collect::<crate::engine::Result<_>>()?;
    let pad = tok.pad_id();
    let t = Instant::now();
    let bar = crate::progress::bar(prompts.len() as u64, format!("{method}-ao"));
    let (scores, stats) = score_grouped(model, &prompts, &[], &rt, (pad, batch), device, &|n| {
        bar.inc(n as u64)
    })?;
    bar.finish_and_clear();
    let (k, padded) = (stats.common_prefix, stats.pad_fraction);
    tracing::info!(
        "{method}-ao: the {k}-token prefix all prompts share was computed once ({:.1}% of \
         prompt tokens computed); padding {:.1}% of tail tokens ({:.1}% without length buckets)",
        100.0 * stats.computed_tokens as f64 / stats.total_tokens.max(1) as f64,
        100.0 * padded,
        100.0 * stats.pad_fraction_unbucketed
    );
    let secs = t.elapsed().as_secs_f64();
    let n = examples.len();
    let mut rows = Vec::new();
    write_ao_jsonl(&dir.join(format!("{method}-ao.jsonl")), examples, &scores)?;
    let common = |r: &mut MethodResult, dec: &str| {
        for (k, v) in [
            ("decoder", serde_json::json!(dec)),
            ("mean_output_tokens", serde_json::json!(1.0)),
            ("latency_s", serde_json::json!(secs / n as f64)),
            ("batch_size", serde_json::json!(batch)),
            ("device", serde_json::json!(label)),
            ("prefix_tokens", serde_json::json!(k)),
            ("pad_fraction", serde_json::json!(padded)),
        ] {
            r.extra.insert(k.into(), v);
        }
    };
    for dec in RatingDecoder::ALL {
        let name = if dec == main {
            format!("{method}-ao")
        } else {
            format!("{method}-ao-{}", dec.as_str())
        };
        let pred: Vec<f32> = scores
            .iter()
            .map(|s| dec.decode(&s.probs, &rt.values))
            .collect();
        let mut r = MethodResult::evaluate(&name, &pred, truth)?;
        common(&mut r, dec.as_str());
        let mass = scores.iter().map(|s| f64::from(s.mass)).sum::<f64>() / n as f64;
        r.extra
            .insert("rating_mass".into(), serde_json::json!(mass));
        tracing::info!(
            "{name}: MAE {:.4} RMSE {:.4}, one forward pass, {:.3}s/sample",
            r.mae,
            r.rmse,
            secs / n as f64
        );
        rows.push(r);
    }
    // The rows `<method>-ao-<tag>-<decoder>` of calibrated distributions `cal`.
    let calibrated = |cal: &[Vec<f32>], tag: &str, how: &str| -> Result<Vec<MethodResult>> {
        let mut out = Vec::new();
        for dec in RatingDecoder::ALL {
            let name = format!("{method}-ao-{tag}-{}", dec.as_str());
            let pred: Vec<f32> = cal.iter().map(|p| dec.decode(p, &rt.values)).collect();
            let mut r = MethodResult::evaluate(&name, &pred, truth)?;
            common(&mut r, dec.as_str());
            r.extra.insert("calibration".into(), serde_json::json!(how));
            tracing::info!(
                "{name}: MAE {:.4} RMSE {:.4} (calibration: {how})",
                r.mae,
                r.rmse
            );
            out.push(r);
        }
        Ok(out)
    };
    // Cross-fitted calibration for a label shift: each half scored by the other half's fit.
    if let Some(seed) = calibrate {
        let probs: Vec<Vec<f32>> = scores.iter().map(|s| s.probs.clone()).collect();
        let path = dir.join(format!("{method}-calibration.json"));
        let cal = cross_fit_calibration(&probs, truth, &rt.values, seed, &path)?;
        rows.extend(calibrated(
            &cal,
            "cal",
            "cross-fit on the evaluated rows (transductive)",
        )?);
    }
    // The model's own calibration (fitted where the model was tuned, never on these rows'
    // labels unless these rows are that split).
    if let Some((c, path)) = model_cal {
        let cal: Vec<Vec<f32>> = scores.iter().map(|s| c.apply(&s.probs)).collect();
        rows.extend(calibrated(
            &cal,
            "modelcal",
            &format!("the model's ({})", path.display()),
        )?);
    }
    // The strict row: the greedy token itself, the mean training rating when it is no rating.
    let parsed = scores.iter().filter(|s| s.greedy.is_some()).count();
    let pred: Vec<f32> = scores
        .iter()
        .map(|s| s.greedy.unwrap_or(fallback))
        .collect();
    let name = format!("{method}-ao-strict");
    let mut r = MethodResult::evaluate(&name, &pred, truth)?;
    common(&mut r, "strict");
    r.extra.insert(
        "parse_rate".into(),
        serde_json::json!(parsed as f64 / n as f64),
    );
    r.extra
        .insert("fallbacks".into(), serde_json::json!(n - parsed));
    tracing::info!(
        "{name}: MAE {:.4} RMSE {:.4}, greedy token is a rating for {parsed}/{n}",
        r.mae,
        r.rmse
    );
    rows.push(r);
    Ok(rows)
}

/// The evaluation as a stage of `siren run`: stage 1's weights (with reasoning rows when
/// `[pipeline] cot`) and stage 2's, or the base model when the run has neither; each set of
/// rows is reused from `<eval folder>/cache-<key>.json` when nothing that shapes it changed.
pub struct Eval;

impl Stage for Eval {
    /// Sharded under torchrun.
    fn distributed(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "eval"
    }

    /// After stage 1 or stage 2.
    fn by_default(&self, config: &RunConfig) -> bool {
        config.trainer.is_some() || config.internalizer.is_some()
    }

    fn run(&self, ctx: &mut Ctx<'_>) -> Result<(Status, String)> {
        let (config, run) = (ctx.config, ctx.run);
        let mut jobs = Vec::new();
        let cot = Modes {
            cot: config.pipeline.cot,
            ao: true,
        };
        if super::internalize::weights_file(&super::internalize::stage1_weights(config, run))
            .is_ok()
        {
            jobs.push((Weights::Stage1, cot));
        }
        if super::internalize::weights_file(&super::internalize::policy_dir(config, run)?).is_ok() {
            jobs.push((
                Weights::Stage2,
                Modes {
                    cot: false,
                    ao: true,
                },
            ));
        }
        if jobs.is_empty() {
            jobs.push((Weights::Base, cot));
        }
        let (mut ran, mut reused) = (0, 0);
        let mut names = Vec::new();
        for (w, modes) in jobs {
            let before = count_cache(run, config.eval.folder());
            ctx.metrics = Some(self::run(config, ctx.ds, run, &w, modes, true)?);
            if count_cache(run, config.eval.folder()) > before {
                ran += 1;
            } else {
                reused += 1;
            }
            names.push(method_name(config, &w));
        }
        Ok((
            if ran == 0 {
                Status::Reused
            } else {
                Status::Ran
            },
            format!("{} ({ran} evaluated, {reused} reused)", names.join(", ")),
        ))
    }
}

/// The number of cached evaluations in `folder` of the run.
fn count_cache(run: &RunDir, folder: &str) -> usize {
    std::fs::read_dir(run.file(folder)).map_or(0, |d| {
        d.flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("cache-"))
            .count()
    })
}
