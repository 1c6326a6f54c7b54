//! Rotary position embedding as in HF Llama/Qwen: `x·cos + rotate_half(x)·sin`, where
//! `rotate_half(x) = [-x₂, x₁]` for the two halves of each head, with optional Llama-3
//! frequency scaling.

use burn::tensor::{Device, Int, Tensor, TensorData};

use super::config::{DecoderSpec, RopeScaling};

/// Inverse frequencies `θ^(-2i/d)` for `i < d/2`, scaled as configured (HF
/// `_compute_default_rope_parameters` / `_compute_llama3_parameters`).
pub fn inverse_frequencies(spec: &DecoderSpec) -> Vec<f32> {
    let d = spec.head_dim;
    let base: Vec<f64> = (0..d / 2)
        .map(|i| 1.0 / spec.rope_theta.powf((2 * i) as f64 / d as f64))
        .collect();
    match &spec.rope_scaling {
        None => base.iter().map(|&f| f as f32).collect(),
        Some(RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings,
        }) => {
            let old = *original_max_position_embeddings as f64;
            let low_wavelen = old / low_freq_factor;
            let high_wavelen = old / high_freq_factor;
            base.iter()
                .map(|&f| {
                    let wavelen = 2.0 * std::f64::consts::PI / f;
                    let scaled = if wavelen > low_wavelen { f / factor } else { f };
                    // wavelengths are finite, so `!(w < hi) && !(w > lo)` is `hi <= w <= lo`
                    let medium = (high_wavelen..=low_wavelen).contains(&wavelen);
                    let out = if medium {
                        let smooth = (old / wavelen - low_freq_factor)
                            / (high_freq_factor - low_freq_factor);
                        (1.0 - smooth) * scaled / factor + smooth * scaled
                    } else {
                        scaled
                    };
                    out as f32
                })
                .collect()
        }
    }
}

/// `cos` and `sin` tables `[batch, 1, seq, head_dim]` for the given positions `[batch, seq]`.
pub fn tables(
    inv_freq: &[f32],
    positions: Tensor<2, Int>,
    device: &Device,
) -> (Tensor<4>, Tensor<4>) {
    let half = inv_freq.len();
    let inv = Tensor::<1>::from_data(TensorData::new(inv_freq.to_vec(), [half]), device)
        .reshape([1, 1, half]);
    let pos: Tensor<3> = positions.float().unsqueeze_dim(2); // [B, S, 1]
    let freqs = pos.mul(inv); // [B, S, half]
    let emb = Tensor::cat(vec![freqs.clone(), freqs], 2); // [B, S, d]
    let cos = emb.clone().cos().unsqueeze_dim(1);
    let sin = emb.sin().unsqueeze_dim(1);
    (cos, sin)
}

/// Applies the rotation to `x` `[batch, heads, seq, head_dim]`.
pub fn apply(x: Tensor<4>, cos: &Tensor<4>, sin: &Tensor<4>) -> Tensor<4> {
    let d = x.dims()[3];
    let x1 = x.clone().narrow(3, 0, d / 2);
    let x2 = x.clone().narrow(3, d / 2, d / 2);
    let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
    x.mul(cos.clone()).add(rotated.mul(sin.clone()))
}
