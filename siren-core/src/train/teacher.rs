//! The CoT teacher of stage 2 (paper §3.2, METHOD.md "Stage 2"): [`harvest`] decodes the
//! stage-1 model greedily over the training prompts, keeps the examples whose CoT answer
//! equals the label (the authors' mask), and stores the teacher's hidden states of layers
//! `1..=L` and its answer distribution at the `<answer>` token of
//! prompt + "\n" + thinking + "\n" + `<answer>`; [`Teacher`] reads them back.
//!
//! On disk (one folder per harvest):
//! - `cot.jsonl`: every decoded example (`index`, `id`, `rating`, `pred`, `kept`, `completion`),
//!   appended batch by batch: a killed harvest resumes after the last complete line;
//! - `states-NNNNN.safetensors`: shards of `shard_size` kept examples, tensors `hidden`
//!   `[n, L, H]` and `answer_logprobs` `[n, 6]` (f32; classes `1`..`5` and "any other
//!   token"), each written whole or not at all;
//! - `kept.jsonl`: the kept examples ([`CotExample`]), row `i` ↔ teacher row `i`;
//! - `index.json`: layers, width, rating token ids, shards: written last, so its presence
//!   means the harvest is complete.
//!
//! Reading is memory-bounded: [`Teacher::rows`] reads only the requested rows from the shard
//! files, never whole shards.

use std::io::{BufRead as _, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{CotExample, Example};
use crate::answer::{self, AO_SUFFIX};
use crate::engine::{Decoder, GenerationConfig, TensorMap, TextTokenizer, generate, states_at};
use crate::rating::RatingTokens;
use crate::{CoreError, Result};

/// Answer classes stored per example: the rating tokens `1`..`5` and every other token.
pub const ANSWER_CLASSES: usize = 6;

/// How the CoT teacher is harvested (`[internalization.harvest]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HarvestConfig {
    /// Greedy CoT tokens per prompt at most (the authors' 1024).
    pub max_new_tokens: usize,
    /// Prompts decoded together.
    pub batch_size: usize,
    /// Harvest a seeded sample of this many training rows (default: `[training] max_examples`,
    /// i.e. the rows stage 1 trained on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_examples: Option<usize>,
    /// Kept examples per states shard.
    pub shard_size: usize,
}

impl Default for HarvestConfig {
    fn default() -> Self {
        Self {
            max_new_tokens: 1024,
            batch_size: 8,
            max_examples: None,
            shard_size: 256,
        }
    }
}

impl HarvestConfig {
    /// Checks ranges; errors name the key.
    pub fn validate(&self) -> Result<()> {
        if self.max_new_tokens == 0 || self.batch_size == 0 || self.shard_size == 0 {
            return Err(CoreError::config(
                "internalization.harvest",
                "max_new_tokens, batch_size and shard_size must be at least 1",
            ));
        }
        Ok(())
    }
}

/// The student (answer-only) input: prompt + "\n<think>\n</think>\n<answer>".
pub fn student_text(prompt: &str) -> String {
    format!("{prompt}{AO_SUFFIX}")
}

/// The teacher input: prompt + "\n" + thinking + "\n" + `<answer>`, where `thinking` is the
/// whole `<think>…</think>` block. With an empty block this is exactly [`student_text`].
pub fn teacher_text(prompt: &str, thinking: &str) -> String {
    format!("{prompt}\n{thinking}\n<answer>")
}

/// The `<think>…</think>` block of a completion in the tag format.
pub fn thinking_block(completion: &str) -> Option<&str> {
    let start = completion.find("<think>")?;
    let end = completion.find("</think>")? + "</think>".len();
    (start < end).then(|| &completion[start..end])
}

/// Token ids of `text` after cutting as many leading tokens as `prompt` has beyond `max`
/// (so the student and teacher of one example lose the same prompt tokens).
pub fn encode_cut(tok: &TextTokenizer, prompt: &str, text: &str, max: usize) -> Result<Vec<u32>> {
    let n = tok.encode(prompt, false)?.len();
    let mut ids = tok.encode(text, false)?;
    let cut = n.saturating_sub(max).min(ids.len().saturating_sub(1));
    ids.drain(..cut);
    Ok(ids)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Decoded {
    index: usize,
    id: String,
    rating: f32,
    pred: Option<f32>,
    kept: bool,
    completion: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Shard {
    file: String,
    first: usize,
    count: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Index {
    layers: usize,
    hidden: usize,
    rating_tokens: Vec<u32>,
    decoded: usize,
    kept: usize,
    shards: Vec<Shard>,
}

fn read_decoded(path: &Path) -> Result<Vec<Decoded>> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(CoreError::io(path, e)),
    };
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|e| CoreError::io(path, e))?;
        match serde_json::from_str::<Decoded>(&line) {
            Ok(d) => out.push(d),
            // A line cut short by a crash ends the file; it is decoded again.
            Err(_) => {
                tracing::warn!(
                    "{}:{}: incomplete line, decoding again",
                    path.display(),
                    i + 1
                );
                break;
            }
        }
    }
    Ok(out)
}

/// Each item as one JSON line.
fn jsonl<T: Serialize>(items: &[T]) -> Result<String> {
    let mut text = String::new();
    for d in items {
        text.push_str(&serde_json::to_string(d).map_err(|e| CoreError::Numeric(e.to_string()))?);
        text.push('\n');
    }
    Ok(text)
}

/// What an unfinished harvest already decoded (the lines of `log_path` that still match
/// `examples`, written back without the others) and the example indices left to decode.
fn resume_decoded(log_path: &Path, examples: &[Example]) -> Result<(Vec<Decoded>, Vec<usize>)> {
    let mut done = read_decoded(log_path)?;
    done.retain(|d| d.index < examples.len() && examples[d.index].id == d.id);
    crate::files::write_atomic(log_path, jsonl(&done)?.as_bytes())?;
    let seen: std::collections::BTreeSet<usize> = done.iter().map(|d| d.index).collect();
    let todo: Vec<usize> = (0..examples.len()).filter(|i| !seen.contains(i)).collect();
    Ok((done, todo))
}

/// The decoded CoT whose answer equals the label, with its reasoning block; an error when none
/// does (stage 1 has nothing to teach).
fn kept_examples(
    done: &[Decoded],
    examples: &[Example],
    log_path: &Path,
) -> Result<Vec<CotExample>> {
    let kept: Vec<CotExample> = done
        .iter()
        .filter(|d| d.kept)
        .filter_map(|d| {
            Some(CotExample {
                example: examples[d.index].clone(),
                thinking: thinking_block(&d.completion)?.trim().to_string(),
            })
        })
        .collect();
    let parsed = done.iter().filter(|d| d.pred.is_some()).count();
    tracing::info!(
        "CoT teacher: {} of {} answers equal the label ({parsed} parsed)",
        kept.len(),
        done.len()
    );
    if kept.is_empty() {
        return Err(CoreError::Data(format!(
            "no CoT answer of the stage-1 model equals its label ({} prompts, {parsed} parsed; \
             see {}): stage 1 has nothing to teach",
            done.len(),
            log_path.display()
        )));
    }
    Ok(kept)
}

/// Greedy CoT of `model` (the merged stage-1 weights, inference device) over `examples`,
/// and the teacher states of the examples it gets right, into `dir` (see the module docs).
/// Resumes a harvest left unfinished in `dir`; a complete one is read back as is.
/// `max_prompt_tokens` cuts long prompts from the left, as training does.
pub fn harvest(
    model: &Decoder,
    tok: &TextTokenizer,
    examples: &[Example],
    cfg: &HarvestConfig,
    max_prompt_tokens: usize,
    dir: &Path,
    device: &burn::tensor::Device,
) -> Result<Teacher> {
    cfg.validate()?;
    if dir.join("index.json").is_file() {
        tracing::info!("CoT teacher: reusing the harvest in {}", dir.display());
        return Teacher::open(dir);
    }
    std::fs::create_dir_all(dir).map_err(|e| CoreError::io(dir, e))?;
    let log_path = dir.join("cot.jsonl");
    let (mut done, todo) = resume_decoded(&log_path, examples)?;
    let seen = examples.len() - todo.len();
    if seen > 0 {
        tracing::info!(
            "CoT teacher: resuming, {} of {} prompts already decoded",
            seen,
            examples.len()
        );
    }

    // 1. Greedy CoT, appended batch by batch.
    let gen_cfg = GenerationConfig {
        stop_tokens: tok.eos.into_iter().collect(),
        stop: tok.stop_strings(&["</answer>".to_string()]),
        pad_id: tok.pad_id(),
        ..GenerationConfig::greedy(cfg.max_new_tokens)
    };
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(&log_path)
        .map_err(|e| CoreError::io(&log_path, e))?;
    let bar = crate::progress::bar(examples.len() as u64, "CoT teacher");
    bar.set_position(seen as u64);
    for chunk in todo.chunks(cfg.batch_size) {
        let prompts: Vec<Vec<u32>> = chunk
            .iter()
            .map(|&i| {
                let p = &examples[i].prompt;
                encode_cut(tok, p, p, max_prompt_tokens)
            })
            .collect::<Result<_>>()?;
        let mut lines = String::new();
        for (ids, &i) in generate(model, &prompts, &gen_cfg, device)?
            .iter()
            .zip(chunk)
        {
            let completion = tok.decode_generated(ids)?;
            let pred = answer::parse_rating(&completion);
            let kept = answer::format_ok(&completion)
                && pred.is_some_and(|p| (p - examples[i].rating).abs() < 1e-6);
            let d = Decoded {
                index: i,
                id: examples[i].id.clone(),
                rating: examples[i].rating,
                pred,
                kept,
                completion,
            };
            lines.push_str(
                &serde_json::to_string(&d).map_err(|e| CoreError::Numeric(e.to_string()))?,
            );
            lines.push('\n');
            done.push(d);
        }
        log.write_all(lines.as_bytes())
            .and_then(|()| log.flush())
            .map_err(|e| CoreError::io(&log_path, e))?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    done.sort_by_key(|d| d.index);
    let kept = kept_examples(&done, examples, &log_path)?;

    // 2. Teacher states, shard by shard (a shard already on disk is kept).
    let rt = RatingTokens::new(tok, 5)?;
    let layers = model.layers.len();
    let hidden = model.spec.hidden_size;
    let mut shards = Vec::new();
    let bar = crate::progress::bar(kept.len() as u64, "teacher states");
    for (k, part) in kept.chunks(cfg.shard_size).enumerate() {
        let file = format!("states-{k:05}.safetensors");
        let path = dir.join(&file);
        shards.push(Shard {
            file,
            first: k * cfg.shard_size,
            count: part.len(),
        });
        if path.is_file() {
            bar.inc(part.len() as u64);
            continue;
        }
        let (mut hs, mut lps) = (Vec::new(), Vec::new());
        for batch in part.chunks(cfg.batch_size) {
            let seqs: Vec<Vec<u32>> = batch
                .iter()
                .map(|c| {
                    let p = &c.example.prompt;
                    encode_cut(tok, p, &teacher_text(p, &c.thinking), max_prompt_tokens)
                })
                .collect::<Result<_>>()?;
            let (h, lp) = answer_states(model, &seqs, &rt, tok.pad_id(), device)?;
            hs.extend(h);
            lps.extend(lp);
            bar.inc(batch.len() as u64);
        }
        let mut t = TensorMap::new();
        t.insert("hidden".into(), (vec![part.len(), layers, hidden], hs));
        t.insert(
            "answer_logprobs".into(),
            (vec![part.len(), ANSWER_CLASSES], lps),
        );
        crate::files::write_atomic(&path, &crate::engine::serialize_f32(&t)?)?;
    }
    bar.finish_and_clear();
    crate::files::write_atomic(&dir.join("kept.jsonl"), jsonl(&kept)?.as_bytes())?;
    let index = Index {
        layers,
        hidden,
        rating_tokens: rt.ids.clone(),
        decoded: done.len(),
        kept: kept.len(),
        shards,
    };
    let json = serde_json::to_vec_pretty(&index).map_err(|e| CoreError::Numeric(e.to_string()))?;
    crate::files::write_atomic(&dir.join("index.json"), &json)?;
    Teacher::open(dir)
}

/// Hidden states of layers `1..=L` (`[b, L, H]` flattened, HF `hidden_states[1:]`) and the
/// answer-class log-probabilities (`[b, 6]`) at the last token of each sequence.
pub fn answer_states(
    model: &Decoder,
    seqs: &[Vec<u32>],
    rt: &RatingTokens,
    pad_id: u32,
    device: &burn::tensor::Device,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let st = states_at(model, seqs, &vec![None; seqs.len()], pad_id, device)?;
    let stacked = burn::tensor::Tensor::stack::<3>(st.hidden[1..].to_vec(), 1); // [b, L, H]
    let h = stacked
        .try_into_vec_as::<f32>()
        .map_err(|e| CoreError::Numeric(format!("reading hidden states: {e:?}")))?;
    let v = st.logits.dims()[1];
    let logits = st
        .logits
        .try_into_vec_as::<f32>()
        .map_err(|e| CoreError::Numeric(format!("reading logits: {e:?}")))?;
    let mut lps = Vec::with_capacity(seqs.len() * ANSWER_CLASSES);
    for row in logits.chunks_exact(v) {
        lps.extend(answer_class_logprobs(row, &rt.ids));
    }
    Ok((h, lps))
}

/// Log-probabilities of the classes `ids[0]`, …, `ids[4]` and "any other token" under the
/// softmax of `logits` (computed in f64).
pub fn answer_class_logprobs(logits: &[f32], ids: &[u32]) -> Vec<f32> {
    let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let z: f64 = logits.iter().map(|&x| (x as f64 - m).exp()).sum();
    let mut out: Vec<f64> = ids
        .iter()
        .map(|&i| logits[i as usize] as f64 - m - z.ln())
        .collect();
    let rest = (1.0 - out.iter().map(|l| l.exp()).sum::<f64>()).max(1e-12);
    out.push(rest.ln());
    out.into_iter().map(|x| x as f32).collect()
}

/// The text inside a `<think>…</think>` block (tags and surrounding whitespace removed).
pub fn thinking_inner(thinking: &str) -> &str {
    thinking
        .trim()
        .trim_start_matches("<think>")
        .trim_end_matches("</think>")
        .trim()
}

/// Mean cosine similarity, per layer `1..=L`, between `model`'s answer-only states at the
/// `<answer>` token of the kept examples `rows` (the student input) and the teacher's stored
/// states: how far apart the two inputs leave the model, the quantity stage 2 closes
/// (1 − this is Eq. 12's cosine loss per layer).
pub fn layer_cosines(
    model: &Decoder,
    tok: &TextTokenizer,
    teacher: &Teacher,
    rows: &[usize],
    (max_prompt_tokens, batch): (usize, usize),
    device: &burn::tensor::Device,
) -> Result<Vec<f64>> {
    let (l, h) = (teacher.layers, teacher.hidden);
    let mut sums = vec![0f64; l];
    for part in rows.chunks(batch.max(1)) {
        let seqs: Vec<Vec<u32>> = part
            .iter()
            .map(|&i| {
                let p = &teacher.examples[i].example.prompt;
                encode_cut(tok, p, &student_text(p), max_prompt_tokens)
            })
            .collect::<Result<_>>()?;
        let st = states_at(model, &seqs, &vec![None; seqs.len()], tok.pad_id(), device)?;
        let student = burn::tensor::Tensor::stack::<3>(st.hidden[1..].to_vec(), 1)
            .try_into_vec_as::<f32>()
            .map_err(|e| CoreError::Numeric(format!("reading hidden states: {e:?}")))?;
        let (t, _) = teacher.rows(part)?;
        for (k, (a, b)) in student.chunks_exact(h).zip(t.chunks_exact(h)).enumerate() {
            let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(x * y)).sum();
            let na: f64 = a.iter().map(|x| f64::from(x * x)).sum::<f64>().sqrt();
            let nb: f64 = b.iter().map(|x| f64::from(x * x)).sum::<f64>().sqrt();
            sums[k % l] += dot / (na * nb).max(1e-12);
        }
    }
    Ok(sums
        .into_iter()
        .map(|x| x / rows.len().max(1) as f64)
        .collect())
}

/// A harvested CoT teacher: its kept examples and, for each, the stored hidden states and
/// answer distribution (read on demand).
#[derive(Debug, Clone)]
pub struct Teacher {
    /// The kept examples; teacher row `i` belongs to `examples[i]`.
    pub examples: Vec<CotExample>,
    /// Decoder layers `L` (rows hold layers `1..=L`).
    pub layers: usize,
    /// Hidden width `H`.
    pub hidden: usize,
    /// Token ids of the ratings `1`..`5` the answer distributions were taken over.
    pub rating_tokens: Vec<u32>,
    /// Prompts decoded by the harvest (kept or not).
    pub decoded: usize,
    dir: PathBuf,
    shards: Vec<OpenShard>,
}

/// A shard with the byte offsets of its two tensors (read once, at open).
#[derive(Debug, Clone)]
struct OpenShard {
    path: PathBuf,
    first: usize,
    count: usize,
    hidden_at: u64,
    logprobs_at: u64,
}

fn tensor_offsets(path: &Path, name: &str) -> Result<(u64, Vec<usize>)> {
    let mut f = std::fs::File::open(path).map_err(|e| CoreError::io(path, e))?;
    let mut n = [0u8; 8];
    f.read_exact(&mut n).map_err(|e| CoreError::io(path, e))?;
    let n = u64::from_le_bytes(n);
    if n > 100 << 20 {
        return Err(CoreError::Data(format!(
            "{}: not a safetensors file (header of {n} bytes)",
            path.display()
        )));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header)
        .map_err(|e| CoreError::io(path, e))?;
    let v: serde_json::Value = serde_json::from_slice(&header).map_err(|e| {
        CoreError::Data(format!(
            "{}: unreadable safetensors header: {e}",
            path.display()
        ))
    })?;
    let t = &v[name];
    let bad = || {
        CoreError::Data(format!(
            "{}: tensor `{name}` is missing or not F32",
            path.display()
        ))
    };
    if t["dtype"].as_str() != Some("F32") {
        return Err(bad());
    }
    let shape: Vec<usize> = t["shape"]
        .as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|x| x.as_u64().map(|x| x as usize).ok_or_else(bad))
        .collect::<Result<_>>()?;
    let start = t["data_offsets"][0].as_u64().ok_or_else(bad)?;
    Ok((8 + n + start, shape))
}

impl Teacher {
    /// Mean tokens inside the kept examples' `<think>…</think>` blocks (0 when none is kept).
    pub fn think_tokens_mean(&self, tok: &TextTokenizer) -> Result<f64> {
        let mut total = 0usize;
        for c in &self.examples {
            total += tok.encode(thinking_inner(&c.thinking), false)?.len();
        }
        Ok(total as f64 / self.examples.len().max(1) as f64)
    }

    /// Opens a complete harvest folder.
    pub fn open(dir: &Path) -> Result<Self> {
        let ip = dir.join("index.json");
        let text = std::fs::read_to_string(&ip).map_err(|e| CoreError::io(&ip, e))?;
        let index: Index = serde_json::from_str(&text)
            .map_err(|e| CoreError::Data(format!("{}: {e}", ip.display())))?;
        let kp = dir.join("kept.jsonl");
        let text = std::fs::read_to_string(&kp).map_err(|e| CoreError::io(&kp, e))?;
        let examples: Vec<CotExample> = text
            .lines()
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str(l)
                    .map_err(|e| CoreError::Data(format!("{}:{}: {e}", kp.display(), i + 1)))
            })
            .collect::<Result<_>>()?;
        if examples.len() != index.kept {
            return Err(CoreError::Data(format!(
                "{}: {} examples, but index.json says {}",
                kp.display(),
                examples.len(),
                index.kept
            )));
        }
        let per = index.layers * index.hidden;
        let mut shards = Vec::with_capacity(index.shards.len());
        for s in &index.shards {
            let path = dir.join(&s.file);
            let mut at = [0u64; 2];
            for (k, (name, width)) in [("hidden", per), ("answer_logprobs", ANSWER_CLASSES)]
                .into_iter()
                .enumerate()
            {
                let (start, shape) = tensor_offsets(&path, name)?;
                if shape.iter().product::<usize>() != s.count * width {
                    return Err(CoreError::Data(format!(
                        "{}: tensor `{name}` has shape {shape:?}, expected {} rows of {width}",
                        path.display(),
                        s.count
                    )));
                }
                at[k] = start;
            }
            shards.push(OpenShard {
                path,
                first: s.first,
                count: s.count,
                hidden_at: at[0],
                logprobs_at: at[1],
            });
        }
        Ok(Self {
            examples,
            layers: index.layers,
            hidden: index.hidden,
            rating_tokens: index.rating_tokens,
            decoded: index.decoded,
            dir: dir.to_path_buf(),
            shards,
        })
    }

    /// The folder it was read from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// For rows `rows`: hidden states `[n, L, H]` and answer log-probs `[n, 6]`, flattened,
    /// read from the shard files (each shard file opened once per call).
    pub fn rows(&self, rows: &[usize]) -> Result<(Vec<f32>, Vec<f32>)> {
        let per = self.layers * self.hidden;
        let mut h = Vec::with_capacity(rows.len() * per);
        let mut lp = Vec::with_capacity(rows.len() * ANSWER_CLASSES);
        let mut open: Option<(usize, std::fs::File)> = None;
        for &r in rows {
            let k = self
                .shards
                .iter()
                .position(|s| (s.first..s.first + s.count).contains(&r))
                .ok_or_else(|| {
                    CoreError::Data(format!(
                        "teacher row {r} is past the end ({} rows)",
                        self.examples.len()
                    ))
                })?;
            let s = &self.shards[k];
            if open.as_ref().is_none_or(|(j, _)| *j != k) {
                let f = std::fs::File::open(&s.path).map_err(|e| CoreError::io(&s.path, e))?;
                open = Some((k, f));
            }
            let Some((_, f)) = open.as_mut() else {
                unreachable!("opened above")
            };
            let row = (r - s.first) as u64;
            for (at, width, out) in [
                (s.hidden_at, per, &mut h),
                (s.logprobs_at, ANSWER_CLASSES, &mut lp),
            ] {
                f.seek(SeekFrom::Start(at + row * width as u64 * 4))
                    .map_err(|e| CoreError::io(&s.path, e))?;
                let mut buf = vec![0u8; width * 4];
                f.read_exact(&mut buf)
                    .map_err(|e| CoreError::io(&s.path, e))?;
                out.extend(
                    buf.chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                );
            }
        }
        Ok((h, lp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_follow_the_authors_formats() {
        assert_eq!(
            student_text("P"),
            "P\n<think>\n</think>\n<answer>",
            "student"
        );
        assert_eq!(
            teacher_text("P", "<think>x</think>"),
            "P\n<think>x</think>\n<answer>"
        );
        assert_eq!(
            teacher_text("P", "<think>\n</think>"),
            student_text("P"),
            "an empty block makes both inputs equal"
        );
        assert_eq!(
            thinking_block("<think> a b </think>\n<answer>3</answer>"),
            Some("<think> a b </think>")
        );
        assert_eq!(thinking_block("<answer>3</answer>"), None);
    }

    #[test]
    fn answer_classes_sum_to_one() {
        let logits = [0.5f32, 2.0, -1.0, 0.0, 3.0, 1.0, 0.2];
        let lp = answer_class_logprobs(&logits, &[1, 2, 3, 4, 5]);
        assert_eq!(lp.len(), ANSWER_CLASSES);
        let s: f32 = lp.iter().map(|l| l.exp()).sum();
        assert!((s - 1.0).abs() < 1e-5, "{s}");
        // "other" = tokens 0 and 6.
        let z: f32 = logits.iter().map(|x| x.exp()).sum();
        assert!((lp[5].exp() - (0.5f32.exp() + 0.2f32.exp()) / z).abs() < 1e-5);
    }
}
