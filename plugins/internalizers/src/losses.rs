//! Alignment losses, registered in the `alignment-loss` slot (paper Eq. 12, Table 10). Inputs
//! are `[layers, batch, hidden]`; each returns the mean over layers and batch of a per-vector
//! distance, with the teacher detached (stop-gradient).
//!
//! | name | distance per vector |
//! |---|---|
//! | `cosine` (default) | 1 − cos(h_AO, sg[h_CoT]) |
//! | `mae` | mean over the hidden width of \|h_AO − sg[h_CoT]\| |
//! | `mse` | mean over the hidden width of (h_AO − sg[h_CoT])² |

use serde::Deserialize;
use siren_core::burn::tensor::Tensor;
use siren_core::traits::AlignmentLoss;
use siren_core::{Plugin, Result};

/// Parameters of the alignment losses (none).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

macro_rules! loss_plugin {
    ($ty:ident, $name:literal, $summary:literal) => {
        #[doc = $summary]
        #[derive(Debug, Clone, Default)]
        pub struct $ty;

        impl Plugin for $ty {
            type Params = NoParams;
            const SUMMARY: &'static str = $summary;
            fn from_params(_: NoParams) -> Result<Self> {
                Ok(Self)
            }
        }

        siren_core::register_alignment_loss!($name, $ty);
    };
}

loss_plugin!(Cosine, "cosine", "1 − cosine similarity per layer (Eq. 12)");
loss_plugin!(Mae, "mae", "mean absolute difference per layer");
loss_plugin!(Mse, "mse", "mean squared difference per layer");

impl AlignmentLoss for Cosine {
    fn loss(&self, student: Tensor<3>, teacher: Tensor<3>) -> Tensor<1> {
        let teacher = teacher.detach();
        let dot = student.clone().mul(teacher.clone()).sum_dim(2);
        let ns = student.clone().mul(student).sum_dim(2).sqrt();
        let nt = teacher.clone().mul(teacher).sum_dim(2).sqrt();
        let cos = dot.div(ns.mul(nt).clamp_min(1e-8));
        cos.neg().add_scalar(1.0).mean()
    }
}

impl AlignmentLoss for Mae {
    fn loss(&self, student: Tensor<3>, teacher: Tensor<3>) -> Tensor<1> {
        student.sub(teacher.detach()).abs().mean()
    }
}

impl AlignmentLoss for Mse {
    fn loss(&self, student: Tensor<3>, teacher: Tensor<3>) -> Tensor<1> {
        let d = student.sub(teacher.detach());
        d.clone().mul(d).mean()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use siren_core::burn::tensor::{Device, TensorData};

    fn t(v: Vec<f32>, shape: [usize; 3], device: &Device) -> Tensor<3> {
        Tensor::from_data(TensorData::new(v, shape), device)
    }

    fn value(x: Tensor<1>) -> f32 {
        x.try_into_vec_as::<f32>().unwrap()[0]
    }

    #[test]
    fn hand_computed_values() {
        let d = Device::flex();
        // 2 layers × 1 example × width 2.
        let s = t(vec![1.0, 0.0, 3.0, 4.0], [2, 1, 2], &d);
        let te = t(vec![0.0, 2.0, 3.0, 4.0], [2, 1, 2], &d);
        // cos: layer 0 orthogonal (1 − 0 = 1), layer 1 equal (0) → mean 0.5.
        assert!((value(Cosine.loss(s.clone(), te.clone())) - 0.5).abs() < 1e-6);
        // |diff| = [1, 2, 0, 0] → 0.75; diff² = [1, 4, 0, 0] → 1.25.
        assert!((value(Mae.loss(s.clone(), te.clone())) - 0.75).abs() < 1e-6);
        assert!((value(Mse.loss(s.clone(), te)) - 1.25).abs() < 1e-6);
        for l in [&Cosine as &dyn AlignmentLoss, &Mae, &Mse] {
            assert!(
                value(l.loss(s.clone(), s.clone())).abs() < 1e-6,
                "zero when equal"
            );
        }
        // Opposite vectors: cosine distance 2; scale does not matter.
        let a = t(vec![1.0, 1.0], [1, 1, 2], &d);
        let b = t(vec![-5.0, -5.0], [1, 1, 2], &d);
        assert!((value(Cosine.loss(a, b)) - 2.0).abs() < 1e-6);
    }

    #[test]
    fn no_gradient_reaches_the_teacher() {
        let d = Device::flex().autodiff();
        for l in [&Cosine as &dyn AlignmentLoss, &Mae, &Mse] {
            let s = t(vec![1.0, 2.0, 3.0, 4.0], [2, 1, 2], &d).require_grad();
            let te = t(vec![0.5, -1.0, 2.0, 0.0], [2, 1, 2], &d).require_grad();
            let grads = l.loss(s.clone(), te.clone()).backward();
            assert!(s.grad(&grads).is_some(), "the student gets a gradient");
            assert!(te.grad(&grads).is_none(), "the teacher is stop-gradient");
        }
    }
}
