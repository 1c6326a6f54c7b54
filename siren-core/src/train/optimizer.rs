//! The optimizer every trainer steps: AdamW with gradient clipping.
//!
//! Clipping follows `[training] grad_clip` (default 1.0; 0 turns it off) and `grad_clip_mode`:
//! - `global` (default, as `torch.nn.utils.clip_grad_norm_` and VERL): the L2 norm over every
//!   trainable tensor together; when it exceeds `grad_clip`, every gradient is scaled by
//!   `grad_clip / (norm + 1e-6)`;
//! - `per-parameter`: each tensor's gradient is clipped to that norm on its own (burn's
//!   `GradientClipping::Norm`).
//!
//! The norm before clipping is reported with every step as `grad_norm`.

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::engine::Decoder;
use crate::{CoreError, Result};

/// How gradients are clipped (`[training] grad_clip_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClipMode {
    /// One L2 norm over every trainable tensor (torch `clip_grad_norm_`, VERL).
    Global,
    /// Each tensor's gradient on its own.
    PerParameter,
}

/// AdamW plus global gradient clipping; see the module docs.
pub struct Optimizer {
    inner: ModuleOptimizer,
    global_clip: Option<f64>,
    last_norm: Option<f64>,
}

impl std::fmt::Debug for Optimizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Optimizer")
            .field("global_clip", &self.global_clip)
            .field("last_norm", &self.last_norm)
            .finish()
    }
}

struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    total: Option<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let s = g.cast(burn::tensor::DType::F32).powi_scalar(2).sum();
            self.total = Some(match self.total.take() {
                Some(t) => t.add(s),
                None => s,
            });
        }
    }
}

struct Scale<'a> {
    grads: &'a mut GradientsParams,
    by: f64,
    ids: Vec<ParamId>,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if self.ids.contains(&param.id) {
            return;
        }
        if let Some(g) = self.grads.remove::<D>(param.id) {
            self.grads.register(param.id, g.mul_scalar(self.by));
            self.ids.push(param.id);
        }
    }
}

struct ByPath<'a> {
    grads: &'a GradientsParams,
    path: Vec<String>,
    out: Vec<(String, Tensor<1>, Vec<usize>)>,
}

impl ModuleVisitor for ByPath<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let shape = g.dims().to_vec();
            let n: usize = shape.iter().product();
            self.out.push((self.path.join("."), g.reshape([n]), shape));
        }
    }
}

/// Host copies of the gradients in `grads`, by the module path of their parameter (the paths
/// of [`Decoder::tensors_by_path`]).
pub fn grads_by_path(model: &Decoder, grads: &GradientsParams) -> Result<crate::engine::TensorMap> {
    let mut v = ByPath {
        grads,
        path: Vec::new(),
        out: Vec::new(),
    };
    model.visit(&mut v);
    let mut map = crate::engine::TensorMap::new();
    for (name, t, shape) in v.out {
        map.insert(name, (shape, super::host(t)?));
    }
    Ok(map)
}

/// The global L2 norm of `grads` over `model`'s parameters.
pub fn grad_norm(model: &Decoder, grads: &GradientsParams) -> Result<f64> {
    let mut v = SquaredNorm { grads, total: None };
    model.visit(&mut v);
    match v.total {
        Some(t) => {
            let s = super::host(t)?[0];
            Ok(f64::from(s).sqrt())
        }
        None => Ok(0.0),
    }
}

/// Scales `grads` so that their global norm is at most `max` (torch's `clip_grad_norm_`:
/// factor `max / (norm + 1e-6)` when below 1). Returns the norm before clipping.
pub fn clip_global(model: &Decoder, grads: &mut GradientsParams, max: f64) -> Result<f64> {
    let norm = grad_norm(model, grads)?;
    if !norm.is_finite() {
        return Err(CoreError::Numeric(format!(
            "the gradient norm is {norm}; training stopped before the optimizer step (lower \
             training.lr or check the data)"
        )));
    }
    let coef = max / (norm + 1e-6);
    if coef < 1.0 {
        let mut s = Scale {
            grads,
            by: coef,
            ids: Vec::new(),
        };
        model.visit(&mut s);
    }
    Ok(norm)
}

impl Optimizer {
    pub(crate) fn new(inner: ModuleOptimizer, global_clip: Option<f64>) -> Self {
        Self {
            inner,
            global_clip,
            last_norm: None,
        }
    }

    /// One update of `model` with `grads` at learning rate `lr` (clipped first, see the module
    /// docs).
    pub fn step(&mut self, lr: f64, model: Decoder, mut grads: GradientsParams) -> Result<Decoder> {
        self.last_norm = Some(match self.global_clip {
            Some(max) => clip_global(&model, &mut grads, max)?,
            None => grad_norm(&model, &grads)?,
        });
        Ok(self.inner.step(lr, model, grads))
    }

    /// The gradient norm (before clipping) of the latest step.
    pub fn last_grad_norm(&self) -> Option<f64> {
        self.last_norm
    }

    pub(crate) fn inner(&self) -> &ModuleOptimizer {
        &self.inner
    }

    pub(crate) fn map_inner(
        self,
        f: impl FnOnce(ModuleOptimizer) -> Result<ModuleOptimizer>,
    ) -> Result<Self> {
        Ok(Self {
            inner: f(self.inner)?,
            ..self
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::LoraSpec;
    use burn::tensor::{Device, TensorData};

    struct Ones<'a> {
        grads: &'a mut GradientsParams,
        count: usize,
    }

    impl ModuleVisitor for Ones<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let t = param.val();
            if t.is_require_grad() {
                let shape = t.dims();
                let n: usize = shape.iter().product();
                // Gradient k of this tensor: 0.5 everywhere.
                self.grads.register(
                    param.id,
                    Tensor::<D>::from_data(TensorData::new(vec![0.5f32; n], shape), &t.device()),
                );
                self.count += n;
            }
        }
    }

    #[test]
    fn global_clipping_matches_a_hand_computed_norm() {
        let device = Device::flex().autodiff();
        let (model, _) = crate::testkit::tiny_decoder(1, &device)
            .unwrap()
            .add_lora(
                &LoraSpec {
                    r: 2,
                    alpha: 2.0,
                    dropout: 0.0,
                },
                |s| s.ends_with("q_proj"),
                0,
            )
            .unwrap();
        let mut grads = GradientsParams::new();
        let mut ones = Ones {
            grads: &mut grads,
            count: 0,
        };
        model.visit(&mut ones);
        let n = ones.count;
        // n entries of 0.5: norm 0.5·√n.
        let want = 0.5 * (n as f64).sqrt();
        assert!((grad_norm(&model, &grads).unwrap() - want).abs() < 1e-4);
        let before = clip_global(&model, &mut grads, 1.0).unwrap();
        assert!((before - want).abs() < 1e-4);
        let after = grad_norm(&model, &grads).unwrap();
        assert!((after - 1.0).abs() < 1e-4, "clipped to 1: {after}");
        // Below the limit nothing changes.
        let again = clip_global(&model, &mut grads, 10.0).unwrap();
        assert!((again - after).abs() < 1e-9);
        assert!((grad_norm(&model, &grads).unwrap() - after).abs() < 1e-6);
    }
}
