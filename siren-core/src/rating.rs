//! Answer-only rating prediction in one forward pass: the next-token distribution after
//! prompt + [`crate::answer::AO_SUFFIX`], restricted to the rating tokens `1`..`5` and
//! renormalised, turned into a rating by a [`RatingDecoder`]: `argmax` (the paper's greedy
//! token), `expected` (the probability-weighted mean, RMSE-optimal) or `median`
//! (MAE-optimal).

use burn::tensor::Device;

use crate::engine::{Decoder, Prefix, TextTokenizer};
use crate::{CoreError, Result};

/// How a distribution over ratings becomes one rating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RatingDecoder {
    /// The most likely rating.
    Argmax,
    /// The mean under the distribution (minimises expected squared error).
    Expected,
    /// The median of the distribution (minimises expected absolute error).
    Median,
}

impl RatingDecoder {
    /// Every decoder, in report order.
    pub const ALL: [RatingDecoder; 3] = [Self::Argmax, Self::Expected, Self::Median];

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Argmax => "argmax",
            Self::Expected => "expected",
            Self::Median => "median",
        }
    }

    /// The rating of `probs` over `values` (ascending, probabilities summing to 1).
    pub fn decode(self, probs: &[f32], values: &[f32]) -> f32 {
        match self {
            Self::Argmax => {
                let mut best = 0;
                for (i, p) in probs.iter().enumerate() {
                    if *p > probs[best] {
                        best = i;
                    }
                }
                values[best]
            }
            Self::Expected => probs.iter().zip(values).map(|(p, v)| p * v).sum(),
            Self::Median => {
                let mut acc = 0.0;
                for (p, v) in probs.iter().zip(values) {
                    acc += p;
                    if acc >= 0.5 {
                        return *v;
                    }
                }
                values[values.len() - 1]
            }
        }
    }
}

/// The token of each whole rating of a scale, for one tokenizer.
#[derive(Debug, Clone)]
pub struct RatingTokens {
    /// Token ids, one per value.
    pub ids: Vec<u32>,
    /// The ratings, ascending.
    pub values: Vec<f32>,
}

impl RatingTokens {
    /// The tokens of `1`..=`max` (each must be one token of `tok`).
    pub fn new(tok: &TextTokenizer, max: u32) -> Result<Self> {
        let mut ids = Vec::new();
        for r in 1..=max {
            let t = tok.encode(&r.to_string(), false)?;
            if t.len() != 1 {
                return Err(CoreError::Data(format!(
                    "rating `{r}` is {} tokens for this tokenizer; one-token answers need it to be one",
                    t.len()
                )));
            }
            ids.push(t[0]);
        }
        Ok(Self {
            ids,
            values: (1..=max).map(|r| r as f32).collect(),
        })
    }
}

/// The answer-only outcome of one prompt.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AnswerScores {
    /// The distribution over the rating tokens, renormalised over them.
    pub probs: Vec<f32>,
    /// The paper's strict protocol: the one greedy token over the whole vocabulary, as a
    /// rating when it is a rating token (`None` otherwise: an unparsable answer).
    pub greedy: Option<f32>,
    /// The probability the model puts on the rating tokens together.
    pub mass: f32,
}

/// Per prompt (already ending with the answer-only suffix), the answer-only scores at the next
/// position. With `prefix`, every prompt is `prefix` + its entry of `prompts` and the prefix
/// is computed once ([`crate::engine::Prefix`]).
pub fn answer_scores(
    model: &Decoder,
    prefix: Option<&Prefix>,
    prompts: &[Vec<u32>],
    tokens: &RatingTokens,
    pad_id: u32,
    device: &Device,
) -> Result<Vec<AnswerScores>> {
    let logits = crate::engine::last_logits(model, prefix, prompts, pad_id, device)?;
    let v = logits.dims()[1];
    let host = logits
        .try_into_vec_as::<f32>()
        .map_err(|e| CoreError::Numeric(format!("reading logits: {e:?}")))?;
    Ok(host
        .chunks_exact(v)
        .map(|row| {
            let top = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let total: f64 = row.iter().map(|&x| f64::from(x - top).exp()).sum();
            let z: Vec<f32> = tokens.ids.iter().map(|&i| row[i as usize]).collect();
            let e: Vec<f32> = z.iter().map(|x| (x - top).exp()).collect();
            let sum: f32 = e.iter().sum();
            let argmax = row
                .iter()
                .enumerate()
                .fold((0usize, f32::NEG_INFINITY), |b, (i, &x)| {
                    if x > b.1 { (i, x) } else { b }
                })
                .0 as u32;
            AnswerScores {
                probs: e.iter().map(|x| x / sum).collect(),
                greedy: tokens
                    .ids
                    .iter()
                    .position(|&i| i == argmax)
                    .map(|k| tokens.values[k]),
                mass: (f64::from(sum) / total) as f32,
            }
        })
        .collect())
}

/// How [`score_grouped`] ran: the tokens it computed once and the padding of its batches.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScoringStats {
    /// Length of the prefix every prompt shares (computed once for all).
    pub common_prefix: usize,
    /// Groups of two or more prompts that shared a longer prefix of their own.
    pub shared_groups: usize,
    /// Prompt tokens computed (prefixes once each, plus every tail).
    pub computed_tokens: usize,
    /// Prompt tokens in all (what scoring each prompt alone computes).
    pub total_tokens: usize,
    /// Padded fraction of the tail tokens, batches bucketed by length.
    pub pad_fraction: f64,
    /// The same without length buckets.
    pub pad_fraction_unbucketed: f64,
}

/// Answer-only scores of many prompts (each ending with the answer-only suffix), in order,
/// computing shared prefixes once: each of `groups` (indices into `prompts`, e.g. one user's
/// candidates) with two or more prompts runs on its own common prefix; the other prompts run
/// on the prefix common to all (the system prompt). Batches of `batch` are formed from tails
/// of similar length. `progress` is told of each scored prompt.
///
/// In a data-parallel run ([`crate::dist`]) the ranks share the work: each group (a user's
/// candidates, on its own prefix) and each batch of the other prompts is one unit, done by one
/// rank ([`crate::dist::owns`]), and every rank then holds every score ([`share_rows`]). The
/// batches are those of a single-process run, so the scores are the same bit for bit.
///
/// [`share_rows`]: crate::dist::share_rows
pub fn score_grouped(
    model: &Decoder,
    prompts: &[Vec<u32>],
    groups: &[Vec<usize>],
    tokens: &RatingTokens,
    (pad_id, batch): (u32, usize),
    device: &Device,
    progress: &dyn Fn(usize),
) -> Result<(Vec<AnswerScores>, ScoringStats)> {
    use crate::engine::common_prefix_len;
    let mut out: Vec<Option<AnswerScores>> = vec![None; prompts.len()];
    let mut stats = ScoringStats {
        total_tokens: prompts.iter().map(Vec::len).sum(),
        ..ScoringStats::default()
    };
    let (mut padded, mut unbucketed, mut tail_total) = (0f64, 0f64, 0usize);
    // Units of work, numbered alike on every rank: a group is one, each other batch one.
    let mut unit = 0usize;
    let mut run = |idx: &[usize], k: usize, whole: bool, stats: &mut ScoringStats| -> Result<()> {
        if idx.is_empty() {
            return Ok(());
        }
        let tails: Vec<Vec<u32>> = idx.iter().map(|&i| prompts[i][k..].to_vec()).collect();
        let lens: Vec<usize> = tails.iter().map(Vec::len).collect();
        let (batches, after, before) = crate::batching::length_buckets(&lens, batch, true);
        let n_tail: usize = lens.iter().sum();
        padded += after * n_tail as f64;
        unbucketed += before * n_tail as f64;
        tail_total += n_tail;
        stats.computed_tokens += k + n_tail;
        let mine: Vec<bool> = (0..batches.len())
            .map(|b| crate::dist::owns(if whole { unit } else { unit + b }))
            .collect();
        unit += if whole { 1 } else { batches.len() };
        if !mine.contains(&true) {
            return Ok(());
        }
        let prefix = Prefix::new(model, &prompts[idx[0]][..k], device)?;
        for (b, _) in batches.iter().zip(&mine).filter(|(_, m)| **m) {
            let chunk: Vec<Vec<u32>> = b.iter().map(|&j| tails[j].clone()).collect();
            let scores = answer_scores(model, Some(&prefix), &chunk, tokens, pad_id, device)?;
            for (&j, s) in b.iter().zip(scores) {
                out[idx[j]] = Some(s);
            }
            progress(b.len());
        }
        Ok(())
    };
    let mut alone = vec![true; prompts.len()];
    for g in groups.iter().filter(|g| g.len() > 1) {
        let seqs: Vec<Vec<u32>> = g.iter().map(|&i| prompts[i].clone()).collect();
        run(g, common_prefix_len(&seqs), true, &mut stats)?;
        stats.shared_groups += 1;
        for &i in g {
            alone[i] = false;
        }
    }
    let rest: Vec<usize> = (0..prompts.len()).filter(|&i| alone[i]).collect();
    let k = common_prefix_len(&rest.iter().map(|&i| prompts[i].clone()).collect::<Vec<_>>());
    stats.common_prefix = k;
    run(&rest, k, false, &mut stats)?;
    if tail_total > 0 {
        stats.pad_fraction = padded / tail_total as f64;
        stats.pad_fraction_unbucketed = unbucketed / tail_total as f64;
    }
    if crate::dist::size() > 1 {
        share_scores(&mut out)?;
    }
    let scores = out
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| CoreError::Data("score_grouped: a prompt was left unscored".into()))?;
    Ok((scores, stats))
}

/// Every rank's scores on every rank ([`crate::dist::share_rows`]), each as its probabilities,
/// mass and greedy rating (with a flag for none).
fn share_scores(out: &mut [Option<AnswerScores>]) -> Result<()> {
    let mut rows: Vec<Option<Vec<f32>>> = out
        .iter()
        .map(|s| {
            s.as_ref().map(|s| {
                let mut v = s.probs.clone();
                v.extend([
                    s.mass,
                    f32::from(s.greedy.is_some()),
                    s.greedy.unwrap_or(0.0),
                ]);
                v
            })
        })
        .collect();
    crate::dist::share_rows(&mut rows)?;
    for (o, r) in out.iter_mut().zip(rows) {
        let v = r.unwrap_or_default();
        let n = v.len().checked_sub(3).ok_or_else(|| {
            CoreError::Numeric("sharded scoring: a score row is too short".into())
        })?;
        *o = Some(AnswerScores {
            probs: v[..n].to_vec(),
            mass: v[n],
            greedy: (v[n + 1] > 0.0).then_some(v[n + 2]),
        });
    }
    Ok(())
}

/// Per prompt (already ending with the answer-only suffix), the distribution over the rating
/// tokens at the next position, renormalised over them.
pub fn rating_distributions(
    model: &Decoder,
    prompts: &[Vec<u32>],
    tokens: &RatingTokens,
    pad_id: u32,
    device: &Device,
) -> Result<Vec<Vec<f32>>> {
    Ok(answer_scores(model, None, prompts, tokens, pad_id, device)?
        .into_iter()
        .map(|s| s.probs)
        .collect())
}

/// The input that reads a CoT completion's answer distribution: `prompt` followed by the
/// `generated` tokens up to and including its `<answer>` tag, so that the next position is the
/// rating the reasoning leads to (scored like an answer-only prompt: [`answer_scores`],
/// [`score_grouped`]). A completion without `<answer>` (cut off by the token budget, or out of
/// format) gets the missing tags appended (`\n</think>` when its reasoning is still open, then
/// `\n<answer>`); the flag says so.
pub fn cot_answer_input(
    tok: &TextTokenizer,
    prompt: &[u32],
    generated: &[u32],
) -> Result<(Vec<u32>, bool)> {
    const TAG: &str = "<answer>";
    let kept: Vec<u32> = generated
        .iter()
        .copied()
        .filter(|&t| Some(t) != tok.eos && Some(t) != tok.pad)
        .collect();
    let text = |k: usize| tok.decode(&kept[..k], false);
    let mut ids = prompt.to_vec();
    let whole = text(kept.len())?;
    let Some(at) = whole.find(TAG) else {
        let tail = if whole.contains("</think>") {
            "\n<answer>"
        } else {
            "\n</think>\n<answer>"
        };
        ids.extend_from_slice(&kept);
        ids.extend(tok.encode(tail, false)?);
        return Ok((ids, true));
    };
    // The shortest prefix of the generated tokens whose text holds the tag (monotone in k).
    let (mut lo, mut hi) = (1, kept.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if text(mid)?.contains(TAG) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let cut = &whole[..at + TAG.len()];
    if text(lo)?.trim_end() == cut.trim_end() {
        ids.extend_from_slice(&kept[..lo]);
    } else {
        // The tag's last token also carries what follows it: re-encode the tag's remainder.
        let before = text(lo - 1)?;
        ids.extend_from_slice(&kept[..lo - 1]);
        let rest = cut.strip_prefix(before.as_str()).unwrap_or(TAG);
        ids.extend(tok.encode(rest, false)?);
    }
    Ok((ids, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoders_on_hand_made_distributions() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        // Bimodal: argmax 5, mean 3.5, median 4.
        let p = [0.3, 0.0, 0.0, 0.3, 0.4];
        assert_eq!(RatingDecoder::Argmax.decode(&p, &v), 5.0);
        assert!((RatingDecoder::Expected.decode(&p, &v) - 3.5).abs() < 1e-6);
        assert_eq!(RatingDecoder::Median.decode(&p, &v), 4.0);
        let p = [0.5, 0.0, 0.0, 0.0, 0.5];
        assert_eq!(RatingDecoder::Median.decode(&p, &v), 1.0);
        assert_eq!(RatingDecoder::Expected.decode(&p, &v), 3.0);
    }

    #[test]
    fn rating_tokens_and_distributions_on_the_tiny_model() {
        let tok = crate::testkit::tiny_tokenizer().unwrap();
        let rt = RatingTokens::new(&tok, 5).unwrap();
        assert_eq!(rt.ids, vec![7, 8, 9, 10, 11]);
        let device = Device::flex();
        let model = crate::testkit::tiny_decoder(1, &device).unwrap();
        let d =
            rating_distributions(&model, &[vec![6, 9], vec![6, 10, 2]], &rt, 0, &device).unwrap();
        assert_eq!(d.len(), 2);
        for row in &d {
            assert_eq!(row.len(), 5);
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn the_strict_reading_takes_the_greedy_token_over_the_whole_vocabulary() {
        let tok = crate::testkit::tiny_tokenizer().unwrap();
        let rt = RatingTokens::new(&tok, 5).unwrap();
        let device = Device::flex();
        let model = crate::testkit::tiny_decoder(1, &device).unwrap();
        let prompts = [vec![6, 9], vec![6, 10, 2], vec![3, 3, 12]];
        let s = answer_scores(&model, None, &prompts, &rt, 0, &device).unwrap();
        let logits = crate::engine::last_logits(&model, None, &prompts, 0, &device)
            .unwrap()
            .try_into_vec_as::<f32>()
            .unwrap();
        for (k, sc) in s.iter().enumerate() {
            let row = &logits[k * 13..(k + 1) * 13];
            let top = (0..13).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap() as u32;
            // A rating token as the top token reads as that rating; anything else is a miss.
            match rt.ids.iter().position(|&i| i == top) {
                Some(r) => assert_eq!(sc.greedy, Some(rt.values[r])),
                None => assert_eq!(sc.greedy, None),
            }
            assert!(sc.mass > 0.0 && sc.mass <= 1.0 + 1e-6);
            let full: f32 = row.iter().map(|x| x.exp()).sum();
            let on: f32 = rt.ids.iter().map(|&i| row[i as usize].exp()).sum();
            assert!((sc.mass - on / full).abs() < 1e-5);
        }
    }

    #[test]
    fn a_cot_completion_is_read_at_its_answer_tag() {
        let tok = crate::testkit::tiny_tokenizer().unwrap();
        let rt = RatingTokens::new(&tok, 5).unwrap();
        let device = Device::flex();
        let model = crate::testkit::tiny_decoder(3, &device).unwrap();
        let prompt = tok.encode("rate 3", false).unwrap();
        let generated_ids = tok
            .encode("<think> 2 4 </think> <answer> 4 </answer>", false)
            .unwrap();
        let (ids, forced) = cot_answer_input(&tok, &prompt, &generated_ids).unwrap();
        assert!(!forced);
        let want = tok
            .encode("rate 3 <think> 2 4 </think> <answer>", false)
            .unwrap();
        assert_eq!(ids, want);
        // The distribution equals a softmax computed by hand from the full forward's logits
        // at the last position, over the rating tokens.
        let s = answer_scores(&model, None, std::slice::from_ref(&ids), &rt, 0, &device).unwrap();
        let logits = crate::engine::last_logits(&model, None, &[ids], 0, &device)
            .unwrap()
            .try_into_vec_as::<f32>()
            .unwrap();
        let z: Vec<f64> = rt
            .ids
            .iter()
            .map(|&i| f64::from(logits[i as usize]))
            .collect();
        let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = z.iter().map(|x| (x - m).exp()).collect();
        let sum: f64 = e.iter().sum();
        for (p, q) in s[0].probs.iter().zip(&e) {
            assert!((f64::from(*p) - q / sum).abs() < 1e-6, "{p} vs {}", q / sum);
        }
        // Expected rating from the same distribution.
        let exp: f64 = e.iter().zip(1..).map(|(q, r)| q / sum * f64::from(r)).sum();
        let got = RatingDecoder::Expected.decode(&s[0].probs, &rt.values);
        assert!((f64::from(got) - exp).abs() < 1e-5);
        // A completion cut off inside its reasoning gets the missing tags.
        let cut = tok.encode("<think> 2 4", false).unwrap();
        let (ids, forced) = cot_answer_input(&tok, &prompt, &cut).unwrap();
        assert!(forced);
        assert_eq!(
            ids,
            tok.encode("rate 3 <think> 2 4 </think> <answer>", false)
                .unwrap()
        );
    }
}
