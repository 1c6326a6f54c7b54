//! `hashing`: a weight-free text encoder (feature hashing of lower-cased words and word
//! bigrams, signed buckets, L2-normalised). Deterministic and fast; for tests and smoke runs,
//! not for quality.

use serde::Deserialize;
use siren_core::traits::{Embeddings, TextEncoder};
use siren_core::{CoreError, Plugin, Result};

/// Parameters of `hashing`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HashingParams {
    /// Embedding width (default 256).
    pub dim: usize,
}

impl Default for HashingParams {
    fn default() -> Self {
        Self { dim: 256 }
    }
}

/// The `hashing` encoder.
#[derive(Debug, Clone)]
pub struct Hashing {
    dim: usize,
}

impl Plugin for Hashing {
    type Params = HashingParams;
    const SUMMARY: &'static str = "feature hashing of words and bigrams (no weights; for tests)";
    fn from_params(p: HashingParams) -> Result<Self> {
        if p.dim < 2 {
            return Err(CoreError::config(
                "text-encoder hashing.dim",
                "must be at least 2",
            ));
        }
        Ok(Self { dim: p.dim })
    }
}

siren_core::register_encoder!("hashing", Hashing);

/// FNV-1a, 64 bits.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Hashing {
    fn add(&self, row: &mut [f32], feature: &str) {
        let h = fnv1a(feature.as_bytes());
        let sign = if h >> 63 == 0 { 1.0 } else { -1.0 };
        row[(h % self.dim as u64) as usize] += sign;
    }
}

impl TextEncoder for Hashing {
    fn encode(&self, texts: &[String]) -> Result<Embeddings> {
        let mut data = vec![0f32; texts.len() * self.dim];
        for (text, row) in texts.iter().zip(data.chunks_exact_mut(self.dim)) {
            let words: Vec<String> = text
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(str::to_lowercase)
                .collect();
            for w in &words {
                self.add(row, w);
            }
            for pair in words.windows(2) {
                self.add(row, &format!("{} {}", pair[0], pair[1]));
            }
        }
        crate::l2_normalize(&mut data, self.dim);
        Ok(Embeddings {
            n: texts.len(),
            dim: self.dim,
            data,
        })
    }

    fn cache_key(&self) -> String {
        format!("hashing-v1-{}", self.dim)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similar_texts_are_closer() {
        let e = Hashing { dim: 512 };
        let t = |s: &str| s.to_string();
        let out = e
            .encode(&[
                t("space opera with aliens"),
                t("aliens in a space opera"),
                t("romantic comedy in Paris"),
                t(""),
            ])
            .unwrap();
        let cos = |a: usize, b: usize| -> f32 {
            out.row(a).iter().zip(out.row(b)).map(|(x, y)| x * y).sum()
        };
        assert!(
            cos(0, 1) > 0.5 && cos(0, 2) < 0.2,
            "{} {}",
            cos(0, 1),
            cos(0, 2)
        );
        assert!((cos(0, 0) - 1.0).abs() < 1e-5);
        assert!(out.row(3).iter().all(|&x| x == 0.0));
    }
}
