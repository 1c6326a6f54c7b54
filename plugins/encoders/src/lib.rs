//! Text encoders, registered in the `text-encoder` slot: [`bert`] (BERT-family models on burn,
//! real weights from a HF folder) and [`hashing`] (no weights; fast tests).
#![warn(missing_docs)]

pub mod bert;
pub mod hashing;

/// L2-normalises each `dim`-wide row of `data` in place (all-zero rows stay zero).
pub(crate) fn l2_normalize(data: &mut [f32], dim: usize) {
    for row in data.chunks_exact_mut(dim) {
        let n = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        if n > 0.0 {
            row.iter_mut().for_each(|x| *x /= n);
        }
    }
}
