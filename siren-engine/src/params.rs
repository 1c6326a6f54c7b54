//! Parameters by module path: stable ids (so optimizer state saved by one process applies in
//! another), and snapshots of the trainable tensors (training checkpoints).
//!
//! A path is the chain of field names and indices from the decoder down to the tensor, e.g.
//! `layers.3.self_attn.k_proj.adapter.lora_a`.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{Tensor, TensorData};

use super::decoder::Decoder;
use super::weights::TensorMap;
use crate::{EngineError, Result};

#[derive(Default)]
struct Path(Vec<String>);

impl Path {
    fn enter(&mut self, name: &str) {
        self.0.push(name.to_string());
    }
    fn exit(&mut self) {
        self.0.pop();
    }
    fn joined(&self) -> String {
        self.0.join(".")
    }
}

fn path_id(path: &str) -> ParamId {
    ParamId::from(crate::hash::fnv1a([
        b"siren-param".as_slice(),
        path.as_bytes(),
    ]))
}

struct StableIds(Path);

impl ModuleMapper for StableIds {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.0.enter(name);
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.0.exit();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let id = path_id(&self.0.joined());
        let (_, value, mapper) = param.consume();
        Param::from_mapped_value(id, value, mapper)
    }
}

struct Collect {
    path: Path,
    only_trainable: bool,
    out: Vec<(String, Tensor<1>, Vec<usize>)>,
}

impl ModuleVisitor for Collect {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.enter(name);
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.exit();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val();
        if self.only_trainable && !t.is_require_grad() {
            return;
        }
        let shape = t.dims().to_vec();
        let n: usize = shape.iter().product();
        self.out
            .push((self.path.joined(), t.detach().reshape([n]), shape));
    }
}

struct Replace {
    path: Path,
    tensors: TensorMap,
    error: Option<EngineError>,
}

impl ModuleMapper for Replace {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.enter(name);
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.exit();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = self.path.joined();
        let Some((shape, data)) = self.tensors.remove(&name) else {
            return param;
        };
        let (id, old, mapper) = param.consume();
        if shape != old.dims().to_vec() {
            self.error.get_or_insert(EngineError::Data(format!(
                "tensor `{name}` has shape {shape:?} but the model expects {:?}",
                old.dims()
            )));
            return Param::from_mapped_value(id, old, mapper);
        }
        let grad = old.is_require_grad();
        let value = Tensor::<D>::from_data(
            TensorData::new(data, shape).convert_dtype(old.dtype()),
            &old.device(),
        )
        .set_require_grad(grad);
        Param::from_mapped_value(id, value, mapper)
    }
}

struct RequireGrad;

impl ModuleMapper for RequireGrad {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.set_require_grad(true)
    }
}

impl Decoder {
    /// Marks every parameter as trainable (full fine-tuning), including weights that a merge
    /// of adapters or [`Module::no_grad`] left frozen.
    pub fn require_grad_all(self) -> Self {
        self.map(&mut RequireGrad)
    }

    /// Gives every parameter an id derived from its path, so that the same model built twice
    /// (e.g. before a crash and on resume) has the same ids and saved optimizer state applies.
    pub fn with_stable_param_ids(self) -> Self {
        self.map(&mut StableIds(Path::default()))
    }

    /// Host copies of the parameters by path: all of them, or only those that train (require
    /// a gradient).
    pub fn tensors_by_path(&self, only_trainable: bool) -> Result<TensorMap> {
        let mut c = Collect {
            path: Path::default(),
            only_trainable,
            out: Vec::new(),
        };
        self.visit(&mut c);
        let mut map = TensorMap::new();
        for (name, t, shape) in c.out {
            let data = t
                .try_into_vec_as::<f32>()
                .map_err(|e| EngineError::Numeric(format!("reading `{name}`: {e:?}")))?;
            map.insert(name, (shape, data));
        }
        Ok(map)
    }

    /// Replaces parameter values by path (keeping ids and whether they train). A tensor whose
    /// path matches no parameter, or whose shape differs, is an error naming it.
    pub fn with_tensors_by_path(self, tensors: TensorMap) -> Result<Self> {
        let mut r = Replace {
            path: Path::default(),
            tensors,
            error: None,
        };
        let model = self.map(&mut r);
        if let Some(e) = r.error {
            return Err(e);
        }
        if let Some(name) = r.tensors.keys().next() {
            return Err(EngineError::Data(format!(
                "tensor `{name}` matches no parameter of the model"
            )));
        }
        Ok(model)
    }
}
