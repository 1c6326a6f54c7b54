//! Checkpoint tensors from HF safetensors files (one file or a sharded index), converted to
//! f32 as each is taken. Opening a file reads and checks only its header; a tensor's bytes are
//! read when the model takes it, so loading never holds the whole file and its f32 copy at once.
//! Errors name the file, the tensor, and the expected vs found shape.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::Dtype;
use safetensors::tensor::Metadata;

use crate::{EngineError, Result};

/// Host copies of tensors by path or name: `(shape, values)`.
pub type TensorMap = std::collections::BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// Largest safetensors header accepted (the format's own limit).
const MAX_HEADER: u64 = 100_000_000;

/// Where a tensor's values are until it is taken.
#[derive(Debug)]
enum Entry {
    /// `len` bytes at `start` of open file `file`, of float type `dtype`.
    Stored {
        file: usize,
        dtype: Dtype,
        shape: Vec<usize>,
        start: u64,
        len: usize,
    },
    /// Already f32 in memory (other loaders, e.g. GGUF).
    Owned(Vec<usize>, Vec<f32>),
}

/// Named f32 tensors of a checkpoint, taken out one by one as the model is built.
#[derive(Debug, Default)]
pub struct Weights {
    tensors: HashMap<String, Entry>,
    /// The open safetensors files, with their paths.
    files: Vec<(PathBuf, File)>,
    /// Bytes of the tensor being converted (reused, so its pages are touched once).
    buf: Vec<u8>,
    /// Integer and boolean tensors (buffers such as BERT's `position_ids`), by dtype; not loaded.
    skipped: HashMap<String, String>,
    origin: String,
}

fn err(path: &Path, message: impl Into<String>) -> EngineError {
    EngineError::Parse {
        path: path.to_path_buf(),
        line: 0,
        field: None,
        message: message.into(),
    }
}

fn to_f32(dtype: Dtype, bytes: &[u8]) -> Vec<f32> {
    let chunks = |n: usize| bytes.chunks_exact(n);
    match dtype {
        Dtype::F16 => chunks(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => chunks(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::F64 => chunks(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        // F32; the only other type `add_file` lets through.
        _ => chunks(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    }
}

impl Weights {
    /// Opens one safetensors file (its header is read and checked here, its tensors when taken).
    pub fn from_safetensors(path: &Path) -> Result<Self> {
        let mut w = Self {
            origin: path.display().to_string(),
            ..Self::default()
        };
        w.add_file(path)?;
        Ok(w)
    }

    fn add_file(&mut self, path: &Path) -> Result<()> {
        let invalid = |what: String| {
            err(
                path,
                format!("not a valid safetensors file (truncated?): {what}"),
            )
        };
        let mut file = File::open(path).map_err(|e| EngineError::io(path, e))?;
        let file_len = file.metadata().map_err(|e| EngineError::io(path, e))?.len();
        let mut n = [0u8; 8];
        file.read_exact(&mut n).map_err(|_| {
            invalid(format!(
                "{file_len} bytes, shorter than the 8-byte header size"
            ))
        })?;
        let n = u64::from_le_bytes(n);
        if n > MAX_HEADER || 8 + n > file_len {
            return Err(invalid(format!(
                "header of {n} bytes in a file of {file_len} bytes"
            )));
        }
        let mut header = vec![0u8; n as usize];
        file.read_exact(&mut header)
            .map_err(|e| EngineError::io(path, e))?;
        let meta: Metadata =
            serde_json::from_slice(&header).map_err(|e| invalid(format!("header: {e}")))?;
        let data_start = 8 + n;
        if data_start + meta.data_len() as u64 != file_len {
            return Err(invalid(format!(
                "the header describes {} bytes of tensors, the file holds {}",
                meta.data_len(),
                file_len - data_start
            )));
        }
        let index = self.files.len();
        for (name, info) in meta.tensors() {
            match info.dtype {
                Dtype::F32 | Dtype::F16 | Dtype::BF16 | Dtype::F64 => {}
                Dtype::BOOL
                | Dtype::U8
                | Dtype::I8
                | Dtype::I16
                | Dtype::U16
                | Dtype::I32
                | Dtype::U32
                | Dtype::I64
                | Dtype::U64 => {
                    self.skipped.insert(name, format!("{:?}", info.dtype));
                    continue;
                }
                other => {
                    return Err(err(
                        path,
                        format!(
                            "tensor `{name}` has dtype {other:?}; expected F32, F16, BF16 or F64"
                        ),
                    ));
                }
            }
            let (s, e) = info.data_offsets;
            let entry = Entry::Stored {
                file: index,
                dtype: info.dtype,
                shape: info.shape.clone(),
                start: data_start + s as u64,
                len: e - s,
            };
            self.tensors.insert(name, entry);
        }
        self.files.push((path.to_path_buf(), file));
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
            EngineError::io(
                &index,
                std::io::Error::new(
                    e.kind(),
                    format!("{e} (and no {} either)", single.display()),
                ),
            )
        })?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|source| EngineError::Json {
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
        self.tensors.insert(name.into(), Entry::Owned(shape, data));
    }

    /// Takes tensor `name` whatever its shape: `(shape, values)`, or `None` when there is no
    /// such float tensor. Errors when its bytes cannot be read.
    pub fn take_raw(&mut self, name: &str) -> Result<Option<(Vec<usize>, Vec<f32>)>> {
        let Some(entry) = self.tensors.remove(name) else {
            return Ok(None);
        };
        match entry {
            Entry::Owned(shape, data) => Ok(Some((shape, data))),
            Entry::Stored {
                file,
                dtype,
                shape,
                start,
                len,
            } => {
                let (path, f) = &mut self.files[file];
                let read_err = |e: std::io::Error| {
                    err(
                        path,
                        format!("reading tensor `{name}` ({len} bytes at byte {start}): {e}"),
                    )
                };
                f.seek(SeekFrom::Start(start)).map_err(read_err)?;
                let data = if dtype == Dtype::F32 && cfg!(target_endian = "little") {
                    // Straight into the values: one pass over fresh memory, not two.
                    let mut values = vec![0f32; len / 4];
                    f.read_exact(bytemuck::cast_slice_mut(&mut values))
                        .map_err(read_err)?;
                    values
                } else {
                    let buf = &mut self.buf;
                    buf.clear();
                    buf.resize(len, 0);
                    f.read_exact(buf).map_err(read_err)?;
                    to_f32(dtype, buf)
                };
                Ok(Some((shape, data)))
            }
        }
    }

    /// Takes every tensor not taken yet.
    pub fn take_all(mut self) -> Result<TensorMap> {
        let mut map = TensorMap::new();
        for name in self.remaining() {
            if let Some(t) = self.take_raw(&name)? {
                map.insert(name, t);
            }
        }
        Ok(map)
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
        let (found, data) = self.take_raw(name)?.ok_or_else(|| {
            EngineError::Data(match self.skipped.get(name) {
                Some(dtype) => format!(
                    "{}: tensor `{name}` has dtype {dtype}; expected a float tensor",
                    self.origin
                ),
                None => format!("{}: tensor `{name}` is missing", self.origin),
            })
        })?;
        if found != shape {
            return Err(EngineError::Data(format!(
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

/// Serialises f32 tensors to safetensors bytes.
pub fn serialize_f32(tensors: &TensorMap) -> Result<Vec<u8>> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(k, (s, d))| {
            (
                k.clone(),
                s.clone(),
                d.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(k, s, b)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                .map(|v| (k.clone(), v))
                .map_err(|e| EngineError::Numeric(format!("tensor `{k}`: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, None).map_err(|e| EngineError::Numeric(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::TensorView;

    /// A file with one tensor of each float type, an integer buffer, and the values they hold
    /// (exact in every type).
    fn write_mixed(path: &Path) -> Vec<f32> {
        let values: Vec<f32> = vec![1.0, -2.5, 0.125, 3.0, -0.75, 1024.0];
        let f32b: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let f16b: Vec<u8> = values
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect();
        let bf16b: Vec<u8> = values
            .iter()
            .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
            .collect();
        let f64b: Vec<u8> = values
            .iter()
            .flat_map(|v| f64::from(*v).to_le_bytes())
            .collect();
        let i64b: Vec<u8> = (0..3i64).flat_map(|v| v.to_le_bytes()).collect();
        let view = |dtype, shape: Vec<usize>, bytes| TensorView::new(dtype, shape, bytes).unwrap();
        let tensors = vec![
            ("a.f32", view(Dtype::F32, vec![2, 3], &f32b[..])),
            ("b.f16", view(Dtype::F16, vec![3, 2], &f16b[..])),
            ("c.bf16", view(Dtype::BF16, vec![6], &bf16b[..])),
            ("d.f64", view(Dtype::F64, vec![1, 6], &f64b[..])),
            ("e.ids", view(Dtype::I64, vec![3], &i64b[..])),
        ];
        std::fs::write(path, safetensors::serialize(tensors, None).unwrap()).unwrap();
        values
    }

    #[test]
    fn every_float_type_reads_back_in_any_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        let values = write_mixed(&path);
        let mut w = Weights::from_safetensors(&path).unwrap();
        assert_eq!(w.remaining(), ["a.f32", "b.f16", "c.bf16", "d.f64"]);
        // Taken in the opposite order to the file's, as a model build does.
        let (shape, d) = w.take_raw("d.f64").unwrap().unwrap();
        assert_eq!((shape, d), (vec![1, 6], values.clone()));
        let (shape, c) = w.take_raw("c.bf16").unwrap().unwrap();
        assert_eq!((shape, c), (vec![6], values.clone()));
        let b: Tensor<2> = w.take("b.f16", [3, 2], &Device::default()).unwrap();
        assert_eq!(b.into_data().try_into_vec_as::<f32>().unwrap(), values);
        let e = w
            .take::<2>("a.f32", [3, 2], &Device::default())
            .unwrap_err();
        assert!(
            e.to_string().contains("shape [2, 3], expected [3, 2]"),
            "{e}"
        );
        assert!(
            w.take_raw("a.f32").unwrap().is_none(),
            "a failed take still takes"
        );
        let e = w.take::<1>("e.ids", [3], &Device::default()).unwrap_err();
        assert!(e.to_string().contains("dtype I64; expected a float"), "{e}");
        assert!(w.remaining().is_empty());
    }

    #[test]
    fn bad_files_are_errors_that_name_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        write_mixed(&path);
        let full = std::fs::read(&path).unwrap();
        let open_err = |bytes: &[u8]| {
            std::fs::write(&path, bytes).unwrap();
            Weights::from_safetensors(&path).unwrap_err().to_string()
        };
        for bytes in [&full[..full.len() - 1], &full[..20], &full[..3], &[][..]] {
            let e = open_err(bytes);
            assert!(e.contains("m.safetensors"), "{e}");
            assert!(e.contains("not a valid safetensors file"), "{e}");
        }
        let mut huge = full.clone();
        huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(open_err(&huge).contains("not a valid safetensors file"));
        // A type the engine cannot read is refused when the file is opened, naming the tensor.
        let f8 = safetensors::serialize(
            [(
                "q",
                TensorView::new(Dtype::F8_E4M3, vec![2], &[1u8, 2][..]).unwrap(),
            )],
            None,
        )
        .unwrap();
        let e = open_err(&f8);
        assert!(e.contains("tensor `q` has dtype F8_E4M3"), "{e}");
    }

    #[test]
    fn a_file_cut_short_after_opening_is_an_error_naming_the_tensor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        write_mixed(&path);
        let mut w = Weights::from_safetensors(&path).unwrap();
        // The tensor stored last loses its tail; the one stored first is untouched.
        let by_start = |last: bool| {
            let starts = w.tensors.iter().map(|(n, e)| match e {
                Entry::Stored { start, .. } => (*start, n.clone()),
                Entry::Owned(..) => unreachable!("read from a file"),
            });
            let pick = if last { starts.max() } else { starts.min() };
            pick.unwrap().1
        };
        let (first, last) = (by_start(false), by_start(true));
        let len = std::fs::metadata(&path).unwrap().len();
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 4)
            .unwrap();
        assert!(w.take_raw(&first).unwrap().is_some(), "bytes still there");
        let e = w.take_raw(&last).unwrap_err().to_string();
        assert!(
            e.contains("m.safetensors") && e.contains(&format!("tensor `{last}`")),
            "{e}"
        );
    }
}
