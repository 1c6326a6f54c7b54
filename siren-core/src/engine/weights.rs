//! Checkpoint tensors from HF safetensors files (one file or a sharded index), converted to
//! f32 on load. Errors name the file, the tensor, and the expected vs found shape.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

use crate::{CoreError, Result};

/// Named f32 tensors of a checkpoint, taken out one by one as the model is built.
#[derive(Debug, Default)]
pub struct Weights {
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
    /// Integer and boolean tensors (buffers such as BERT's `position_ids`), by dtype; not loaded.
    skipped: HashMap<String, String>,
    origin: String,
}

fn err(path: &Path, message: impl Into<String>) -> CoreError {
    CoreError::Parse {
        path: path.to_path_buf(),
        line: 0,
        field: None,
        message: message.into(),
    }
}

fn to_f32(path: &Path, name: &str, dtype: Dtype, bytes: &[u8]) -> Result<Vec<f32>> {
    let chunks = |n: usize| bytes.chunks_exact(n);
    Ok(match dtype {
        Dtype::F32 => chunks(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => chunks(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => chunks(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::F64 => chunks(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        other => {
            return Err(err(
                path,
                format!("tensor `{name}` has dtype {other:?}; expected F32, F16, BF16 or F64"),
            ));
        }
    })
}

impl Weights {
    /// Reads every tensor of one safetensors file.
    pub fn from_safetensors(path: &Path) -> Result<Self> {
        let mut w = Self {
            origin: path.display().to_string(),
            ..Self::default()
        };
        w.add_file(path)?;
        Ok(w)
    }

    fn add_file(&mut self, path: &Path) -> Result<()> {
        let bytes = std::fs::read(path).map_err(|e| CoreError::io(path, e))?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| {
            err(
                path,
                format!("not a valid safetensors file (truncated?): {e}"),
            )
        })?;
        for (name, view) in st.tensors() {
            if matches!(
                view.dtype(),
                Dtype::BOOL
                    | Dtype::U8
                    | Dtype::I8
                    | Dtype::I16
                    | Dtype::U16
                    | Dtype::I32
                    | Dtype::U32
                    | Dtype::I64
                    | Dtype::U64
            ) {
                self.skipped.insert(name, format!("{:?}", view.dtype()));
                continue;
            }
            let data = to_f32(path, &name, view.dtype(), view.data())?;
            self.tensors.insert(name, (view.shape().to_vec(), data));
        }
        Ok(())
    }

    /// Reads a HF model folder: `model.safetensors`, or the shards listed in
    /// `model.safetensors.index.json`.
    pub fn from_hf_dir(dir: &Path) -> Result<Self> {
        let single = dir.join("model.safetensors");
        if single.is_file() {
            return Self::from_safetensors(&single);
        }
        let index = dir.join("model.safetensors.index.json");
        let text = std::fs::read_to_string(&index).map_err(|e| {
            CoreError::io(
                &index,
                std::io::Error::new(
                    e.kind(),
                    format!("{e} (and no {} either)", single.display()),
                ),
            )
        })?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|source| CoreError::Json {
                path: index.clone(),
                source,
            })?;
        let map = v["weight_map"]
            .as_object()
            .ok_or_else(|| err(&index, "missing object `weight_map`"))?;
        let mut files: Vec<PathBuf> = map
            .values()
            .filter_map(|f| f.as_str())
            .map(|f| dir.join(f))
            .collect();
        files.sort();
        files.dedup();
        let mut w = Self {
            origin: dir.display().to_string(),
            ..Self::default()
        };
        for f in files {
            w.add_file(&f)?;
        }
        Ok(w)
    }

    /// Adds or replaces a tensor (used by other loaders, e.g. GGUF).
    pub fn insert(&mut self, name: impl Into<String>, shape: Vec<usize>, data: Vec<f32>) {
        self.tensors.insert(name.into(), (shape, data));
    }

    /// Takes tensor `name` whatever its shape: `(shape, values)`.
    pub fn take_raw(&mut self, name: &str) -> Option<(Vec<usize>, Vec<f32>)> {
        self.tensors.remove(name)
    }

    /// Whether `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// Names not taken yet, sorted.
    pub fn remaining(&self) -> Vec<String> {
        let mut v: Vec<String> = self.tensors.keys().cloned().collect();
        v.sort();
        v
    }

    /// Takes tensor `name`, checking its shape, onto `device`.
    pub fn take<const D: usize>(
        &mut self,
        name: &str,
        shape: [usize; D],
        device: &Device,
    ) -> Result<Tensor<D>> {
        let (found, data) = self.tensors.remove(name).ok_or_else(|| {
            CoreError::Data(match self.skipped.get(name) {
                Some(dtype) => format!(
                    "{}: tensor `{name}` has dtype {dtype}; expected a float tensor",
                    self.origin
                ),
                None => format!("{}: tensor `{name}` is missing", self.origin),
            })
        })?;
        if found != shape {
            return Err(CoreError::Data(format!(
                "{}: tensor `{name}` has shape {found:?}, expected {shape:?}",
                self.origin
            )));
        }
        Ok(Tensor::from_data(TensorData::new(data, shape), device))
    }

    /// Takes the HF linear layer `name` (`{name}.weight` `[out, in]`, and `{name}.bias`
    /// `[out]` when `bias`) as a burn `Linear` (weight stored `[in, out]`).
    pub fn linear(
        &mut self,
        name: &str,
        out: usize,
        inp: usize,
        bias: bool,
        device: &Device,
    ) -> Result<Linear> {
        let weight: Tensor<2> = self.take(&format!("{name}.weight"), [out, inp], device)?;
        let bias = if bias {
            Some(Param::from_tensor(self.take(
                &format!("{name}.bias"),
                [out],
                device,
            )?))
        } else {
            None
        };
        Ok(Linear {
            weight: Param::from_tensor(weight.transpose()),
            bias,
        })
    }
}
