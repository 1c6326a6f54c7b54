//! Answer-only rating prediction in one forward pass: the next-token distribution after
//! prompt + [`crate::answer::AO_SUFFIX`], restricted to the rating tokens `1`..`5` and
//! renormalised, turned into a rating by a [`RatingDecoder`]: `argmax` (the paper's greedy
//! token), `expected` (the probability-weighted mean, RMSE-optimal) or `median`
//! (MAE-optimal).

use burn::tensor::Device;

use crate::engine::{Batch, Decoder, TextTokenizer};
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

/// Per prompt (already ending with the answer-only suffix), the distribution over the rating
/// tokens at the next position, renormalised over them.
pub fn rating_distributions(
    model: &Decoder,
    prompts: &[Vec<u32>],
    tokens: &RatingTokens,
    pad_id: u32,
    device: &Device,
) -> Result<Vec<Vec<f32>>> {
    let batch = Batch::left_padded(prompts, pad_id, device)?;
    let [b, _] = batch.ids.dims();
    let logits = model.forward_tail(&batch, None, false, 1).logits; // [b, 1, v]
    let v = logits.dims()[2];
    let host = logits
        .reshape([b, v])
        .try_into_vec_as::<f32>()
        .map_err(|e| CoreError::Numeric(format!("reading logits: {e:?}")))?;
    Ok(host
        .chunks_exact(v)
        .map(|row| {
            let z: Vec<f32> = tokens.ids.iter().map(|&i| row[i as usize]).collect();
            let m = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f32> = z.iter().map(|x| (x - m).exp()).collect();
            let sum: f32 = e.iter().sum();
            e.into_iter().map(|x| x / sum).collect()
        })
        .collect())
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
}
