//! GGUF files (llama.cpp): metadata, tensors dequantised to f32 (F32, F16, BF16, Q8_0, Q4_0,
//! Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K), mapped to HF Llama tensor names. Q/K projections are un-permuted back to HF's
//! `rotate_half` layout. Errors name the file, the tensor and the unsupported type; a
//! truncated file is an error, never a panic.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::config::DecoderSpec;
use super::weights::Weights;
use crate::{EngineError, Result};

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Any integer type.
    Int(i64),
    /// f32 or f64.
    Float(f64),
    /// bool.
    Bool(bool),
    /// UTF-8 string.
    Str(String),
    /// Array of values.
    Array(Vec<Value>),
}

impl Value {
    fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            _ => None,
        }
    }
    fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Float(f) => Some(*f),
            Self::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// One tensor's header.
#[derive(Debug, Clone)]
struct TensorInfo {
    dims: Vec<usize>, // ne[0] first (fastest-varying)
    kind: u32,
    offset: usize,
}

/// A parsed GGUF file, holding its bytes.
pub struct Gguf {
    path: PathBuf,
    bytes: Vec<u8>,
    /// Metadata by key.
    pub metadata: HashMap<String, Value>,
    tensors: HashMap<String, TensorInfo>,
    data_start: usize,
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| {
                gguf_err(
                    self.path,
                    format!("truncated file: needs {n} bytes at offset {}", self.pos),
                )
            })?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&mut self) -> Result<u64> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_le_bytes(a))
    }
    fn len(&mut self) -> Result<usize> {
        let n = self.u64()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.b.len())
            .ok_or_else(|| {
                gguf_err(
                    self.path,
                    format!("implausible length {n} at offset {}", self.pos),
                )
            })
    }
    fn string(&mut self) -> Result<String> {
        let n = self.len()?;
        let s = self.take(n)?;
        String::from_utf8(s.to_vec()).map_err(|_| gguf_err(self.path, "a string is not UTF-8"))
    }
    fn value(&mut self, kind: u32) -> Result<Value> {
        Ok(match kind {
            0 => Value::Int(i64::from(self.take(1)?[0])),
            1 => Value::Int(i64::from(self.take(1)?[0] as i8)),
            2 => {
                let s = self.take(2)?;
                Value::Int(i64::from(u16::from_le_bytes([s[0], s[1]])))
            }
            3 => {
                let s = self.take(2)?;
                Value::Int(i64::from(i16::from_le_bytes([s[0], s[1]])))
            }
            4 => Value::Int(i64::from(self.u32()?)),
            5 => Value::Int(i64::from(self.u32()? as i32)),
            6 => Value::Float(f64::from(f32::from_bits(self.u32()?))),
            7 => Value::Bool(self.take(1)?[0] != 0),
            8 => Value::Str(self.string()?),
            9 => {
                let inner = self.u32()?;
                let n = self.len()?;
                let mut v = Vec::with_capacity(n.min(1 << 20));
                for _ in 0..n {
                    v.push(self.value(inner)?);
                }
                Value::Array(v)
            }
            10 => Value::Int(self.u64()? as i64),
            11 => Value::Int(self.u64()? as i64),
            12 => Value::Float(f64::from_bits(self.u64()?)),
            other => {
                return Err(gguf_err(
                    self.path,
                    format!("unknown metadata value type {other}"),
                ));
            }
        })
    }
}

fn gguf_err(path: &Path, message: impl Into<String>) -> EngineError {
    EngineError::Parse {
        path: path.to_path_buf(),
        line: 0,
        field: None,
        message: message.into(),
    }
}

/// Elements per block and bytes per block of a GGML tensor type.
fn block(kind: u32) -> Option<(usize, usize, &'static str)> {
    Some(match kind {
        0 => (1, 4, "F32"),
        1 => (1, 2, "F16"),
        2 => (32, 18, "Q4_0"),
        3 => (32, 20, "Q4_1"),
        6 => (32, 22, "Q5_0"),
        7 => (32, 24, "Q5_1"),
        8 => (32, 34, "Q8_0"),
        12 => (256, 144, "Q4_K"),
        13 => (256, 176, "Q5_K"),
        14 => (256, 210, "Q6_K"),
        30 => (1, 2, "BF16"),
        _ => return None,
    })
}

fn f16(b: &[u8]) -> f32 {
    half::f16::from_le_bytes([b[0], b[1]]).to_f32()
}

fn dequantize(kind: u32, raw: &[u8], n: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(n);
    match kind {
        0 => out.extend(
            raw.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        ),
        1 => out.extend(raw.chunks_exact(2).map(f16)),
        30 => out.extend(
            raw.chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()),
        ),
        2 => {
            for blk in raw.chunks_exact(18) {
                let d = f16(&blk[..2]);
                let qs = &blk[2..];
                out.extend(qs.iter().map(|q| (f32::from(q & 0x0f) - 8.0) * d));
                out.extend(qs.iter().map(|q| (f32::from(q >> 4) - 8.0) * d));
            }
        }
        3 => {
            for blk in raw.chunks_exact(20) {
                let (d, m) = (f16(&blk[..2]), f16(&blk[2..4]));
                let qs = &blk[4..];
                out.extend(qs.iter().map(|q| f32::from(q & 0x0f) * d + m));
                out.extend(qs.iter().map(|q| f32::from(q >> 4) * d + m));
            }
        }
        6 | 7 => {
            // Q5_0: d, qh (u32), 16 bytes of low nibbles; q - 16. Q5_1: d, m, qh, qs; q·d + m.
            let bytes = if kind == 6 { 22 } else { 24 };
            for blk in raw.chunks_exact(bytes) {
                let (d, m, rest) = if kind == 6 {
                    (f16(&blk[..2]), -16.0 * f16(&blk[..2]), &blk[2..])
                } else {
                    (f16(&blk[..2]), f16(&blk[2..4]), &blk[4..])
                };
                let qh = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
                let qs = &rest[4..];
                let lo = (0..16).map(|j| u32::from(qs[j] & 0x0f) | (((qh >> j) << 4) & 0x10));
                let hi = (0..16).map(|j| u32::from(qs[j] >> 4) | ((qh >> (j + 12)) & 0x10));
                out.extend(lo.map(|q| q as f32 * d + m));
                out.extend(hi.map(|q| q as f32 * d + m));
            }
        }
        8 => {
            for blk in raw.chunks_exact(34) {
                let d = f16(&blk[..2]);
                out.extend(blk[2..].iter().map(|&q| f32::from(q as i8) * d));
            }
        }
        12 | 13 => {
            // Q4_K / Q5_K super-blocks: d, dmin, 12 bytes of packed 6-bit scales and mins for
            // 8 sub-blocks of 32; Q5_K adds 32 bytes of fifth bits.
            let bytes = if kind == 12 { 144 } else { 176 };
            for blk in raw.chunks_exact(bytes) {
                let (d, dmin) = (f16(&blk[..2]), f16(&blk[2..4]));
                let scales = &blk[4..16];
                let (qh, qs) = if kind == 12 {
                    (None, &blk[16..])
                } else {
                    (Some(&blk[16..48]), &blk[48..])
                };
                for j in 0..4 {
                    let q = &qs[j * 32..(j + 1) * 32];
                    for (half, shift) in [(0usize, 0u8), (1, 4)] {
                        let (sc, mn) = scale_min_k4(2 * j + half, scales);
                        let (d1, m1) = (d * f32::from(sc), dmin * f32::from(mn));
                        let bit = 1u8 << (2 * j + half);
                        out.extend((0..32).map(|l| {
                            let high = qh.map_or(0, |h| if h[l] & bit != 0 { 16 } else { 0 });
                            d1 * f32::from(((q[l] >> shift) & 0x0f) + high) - m1
                        }));
                    }
                }
            }
        }
        14 => {
            // Q6_K: 128 bytes of low nibbles, 64 of high 2-bit pairs, 16 i8 scales, d.
            for blk in raw.chunks_exact(210) {
                let d = f16(&blk[208..210]);
                let mut y = [0f32; 256];
                for n in 0..2 {
                    let ql = &blk[n * 64..n * 64 + 64];
                    let qh = &blk[128 + n * 32..128 + n * 32 + 32];
                    let sc = &blk[192 + n * 8..192 + n * 8 + 8];
                    for l in 0..32 {
                        let is = l / 16;
                        let q = [
                            (ql[l] & 0x0f) | ((qh[l] & 3) << 4),
                            (ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4),
                            (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4),
                            (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4),
                        ];
                        for (k, &qk) in q.iter().enumerate() {
                            let s = f32::from(sc[is + 2 * k] as i8);
                            y[n * 128 + l + 32 * k] = d * s * (f32::from(qk) - 32.0);
                        }
                    }
                }
                out.extend(y);
            }
        }
        _ => {}
    }
    out.truncate(n);
    out
}

/// The 6-bit scale and min of sub-block `j` in a K-quant's 12 packed bytes.
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

impl Gguf {
    /// Reads and parses `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| EngineError::io(path, e))?;
        let mut r = Reader {
            b: &bytes,
            pos: 0,
            path,
        };
        if r.take(4)? != b"GGUF" {
            return Err(gguf_err(path, "not a GGUF file (bad magic)"));
        }
        let version = r.u32()?;
        if !(2..=3).contains(&version) {
            return Err(gguf_err(
                path,
                format!("GGUF version {version} is not supported (2 or 3)"),
            ));
        }
        let n_tensors = r.len()?;
        let n_kv = r.len()?;
        let mut metadata = HashMap::new();
        for _ in 0..n_kv {
            let key = r.string()?;
            let kind = r.u32()?;
            let v = r.value(kind)?;
            metadata.insert(key, v);
        }
        let mut tensors = HashMap::new();
        for _ in 0..n_tensors {
            let name = r.string()?;
            let n_dims = r.u32()? as usize;
            if n_dims > 4 {
                return Err(gguf_err(
                    path,
                    format!("tensor `{name}` has {n_dims} dimensions"),
                ));
            }
            let mut dims = Vec::with_capacity(n_dims);
            for _ in 0..n_dims {
                dims.push(r.len()?);
            }
            let kind = r.u32()?;
            // Checked against the file size when the tensor is read ("truncated file").
            let offset = usize::try_from(r.u64()?).unwrap_or(usize::MAX);
            tensors.insert(name, TensorInfo { dims, kind, offset });
        }
        let align = metadata
            .get("general.alignment")
            .and_then(Value::as_i64)
            .map(|a| a as usize)
            .filter(|&a| a > 0)
            .unwrap_or(32);
        let data_start = r.pos.div_ceil(align) * align;
        let g = Self {
            path: path.to_path_buf(),
            bytes,
            metadata,
            tensors,
            data_start,
        };
        Ok(g)
    }

    fn meta_f64(&self, key: &str) -> Result<f64> {
        self.metadata
            .get(key)
            .and_then(Value::as_f64)
            .ok_or_else(|| {
                gguf_err(
                    &self.path,
                    format!("metadata `{key}` is missing or not a number"),
                )
            })
    }

    /// The architecture (`general.architecture`).
    pub fn architecture(&self) -> Result<&str> {
        self.metadata
            .get("general.architecture")
            .and_then(Value::as_str)
            .ok_or_else(|| gguf_err(&self.path, "metadata `general.architecture` is missing"))
    }

    /// The decoder configuration from the `<arch>.*` metadata that llama.cpp writes for every
    /// Llama-family architecture (`<arch>` = `general.architecture`): sizes, heads, norm epsilon,
    /// RoPE base and context length; a tied `lm_head` when the file has no `output.weight`,
    /// attention biases when it has `blk.0.attn_q.bias`. What only some architectures have
    /// (q/k norm, RoPE scaling, MLP biases) starts off: the backbone that reads the file sets
    /// it, and validates the result.
    pub fn common_spec(&self) -> Result<DecoderSpec> {
        let arch = self.architecture()?.to_string();
        let k = |s: &str| format!("{arch}.{s}");
        let hidden = self.meta_f64(&k("embedding_length"))? as usize;
        let heads = self.meta_f64(&k("attention.head_count"))? as usize;
        let kv = self
            .meta_f64(&k("attention.head_count_kv"))
            .map(|x| x as usize)
            .unwrap_or(heads);
        let head_dim = self
            .meta_f64(&k("attention.key_length"))
            .map(|x| x as usize)
            .unwrap_or(hidden / heads.max(1));
        let vocab = match self.metadata.get("tokenizer.ggml.tokens") {
            Some(Value::Array(v)) => v.len(),
            _ => self.meta_f64(&k("vocab_size"))? as usize,
        };
        Ok(DecoderSpec {
            vocab_size: vocab,
            hidden_size: hidden,
            intermediate_size: self.meta_f64(&k("feed_forward_length"))? as usize,
            num_layers: self.meta_f64(&k("block_count"))? as usize,
            num_heads: heads,
            num_kv_heads: kv,
            head_dim,
            rms_norm_eps: self.meta_f64(&k("attention.layer_norm_rms_epsilon"))?,
            rope_theta: self.meta_f64(&k("rope.freq_base")).unwrap_or(10000.0),
            rope_scaling: None,
            max_position_embeddings: self
                .meta_f64(&k("context_length"))
                .map(|x| x as usize)
                .unwrap_or(2048),
            tie_word_embeddings: !self.tensors.contains_key("output.weight"),
            attention_bias: self.tensors.contains_key("blk.0.attn_q.bias"),
            mlp_bias: false,
            qk_norm: false,
        })
    }

    /// Dequantises tensor `name` to f32, returning its PyTorch-order shape.
    pub fn tensor(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let info = self
            .tensors
            .get(name)
            .ok_or_else(|| gguf_err(&self.path, format!("tensor `{name}` is missing")))?;
        let (per_block, block_bytes, _) = block(info.kind).ok_or_else(|| {
            gguf_err(
                &self.path,
                format!(
                    "tensor `{name}` uses GGML type {}; supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K",
                    info.kind
                ),
            )
        })?;
        let n: usize = info.dims.iter().product();
        let nbytes = n.div_ceil(per_block) * block_bytes;
        let start = self.data_start.saturating_add(info.offset);
        let raw = self
            .bytes
            .get(start..start.saturating_add(nbytes))
            .ok_or_else(|| {
                gguf_err(
                    &self.path,
                    format!("truncated file: tensor `{name}` runs past the end"),
                )
            })?;
        let mut shape = info.dims.clone();
        shape.reverse();
        Ok((shape, dequantize(info.kind, raw, n)))
    }

    /// Every tensor, dequantised, passed through `map` (the backbone's names and fix-ups: it
    /// returns the HF name with the shape and values to keep, or `None` to skip the tensor).
    pub fn weights(
        &self,
        mut map: impl FnMut(&str, Vec<usize>, Vec<f32>) -> Result<Option<Mapped>>,
    ) -> Result<Weights> {
        let mut w = Weights::default();
        let mut names: Vec<&String> = self.tensors.keys().collect();
        names.sort();
        for name in names {
            let (shape, data) = self.tensor(name)?;
            match map(name, shape, data)? {
                Some((hf, shape, data)) => w.insert(hf, shape, data),
                None => tracing::debug!("{}: ignoring tensor `{name}`", self.path.display()),
            }
        }
        Ok(w)
    }

    /// The file, for errors.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An error about this file.
    pub fn error(&self, message: impl Into<String>) -> EngineError {
        gguf_err(&self.path, message)
    }
}

/// A tensor as a backbone keeps it: HF name, shape, values.
pub type Mapped = (String, Vec<usize>, Vec<f32>);

/// Undoes llama.cpp's q/k row permutation on GGUF tensor `name`, whose HF name is `hf`
/// (`...self_attn.q_proj.weight` with `q_heads` heads, `...k_proj.weight` with `kv_heads`);
/// other tensors pass unchanged. For architectures whose converter permutes those rows
/// (llama.cpp does for `llama`).
pub fn unpermute_qk(
    gguf: &Gguf,
    name: &str,
    hf: &str,
    shape: &[usize],
    data: Vec<f32>,
    q_heads: usize,
    kv_heads: usize,
) -> Result<Vec<f32>> {
    let heads = if hf.ends_with("self_attn.q_proj.weight") {
        q_heads
    } else if hf.ends_with("self_attn.k_proj.weight") {
        kv_heads
    } else {
        return Ok(data);
    };
    if shape.len() != 2 || heads == 0 || !shape[0].is_multiple_of(2 * heads) {
        return Err(gguf.error(format!(
            "tensor `{name}` has shape {shape:?}; expected rows divisible by 2 × {heads} heads"
        )));
    }
    Ok(unpermute(&data, heads, shape))
}

/// Undoes llama.cpp's q/k row permutation (`reshape(h, 2, d/2, in).swap(1, 2)`), giving back
/// HF's `rotate_half` layout.
fn unpermute(data: &[f32], heads: usize, shape: &[usize]) -> Vec<f32> {
    let (rows, cols) = (shape[0], shape.get(1).copied().unwrap_or(1));
    let half = rows / heads / 2;
    let mut out = vec![0f32; data.len()];
    for h in 0..heads {
        for i in 0..half {
            for two in 0..2 {
                // GGUF row (h, i, two) holds HF row (h, two, i).
                let src = (h * half + i) * 2 + two;
                let dst = h * 2 * half + two * half + i;
                out[dst * cols..(dst + 1) * cols]
                    .copy_from_slice(&data[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

/// llama.cpp's tensor names (shared by the Llama family) → HF Llama names; `None` for a
/// tensor without one.
pub fn llama_cpp_name(name: &str) -> Option<String> {
    let fixed = match name {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = name.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let (part, kind) = rest.rsplit_once('.')?;
    let site = match part {
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "attn_q_norm" => "self_attn.q_norm",
        "attn_k_norm" => "self_attn.k_norm",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{site}.{kind}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q4_1_and_q8_0_blocks() {
        // Q4_1: d = 0.5, m = -1, nibbles 0..15 → -1 + 0.5·q.
        let mut blk = Vec::new();
        blk.extend(half::f16::from_f32(0.5).to_le_bytes());
        blk.extend(half::f16::from_f32(-1.0).to_le_bytes());
        blk.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let x = dequantize(3, &blk, 32);
        assert_eq!(x[0], -1.0);
        assert_eq!(x[15], -1.0 + 7.5);
        assert_eq!(x[16], -1.0 + 7.5);
        assert_eq!(x[31], -1.0);
        // Q8_0: d = 0.25, q = -3.
        let mut blk = Vec::new();
        blk.extend(half::f16::from_f32(0.25).to_le_bytes());
        blk.extend([(-3i8) as u8; 32]);
        assert!(dequantize(8, &blk, 32).iter().all(|&v| v == -0.75));
    }

    /// Every block type against gguf-py's dequantisation (`tests/fixtures/gguf`, made by
    /// `scripts/make-gguf-quant-fixtures.py`).
    #[test]
    fn block_types_match_gguf_py() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/gguf/quants.safetensors"
        );
        let bytes = std::fs::read(path).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        for (kind, name) in [
            (2u32, "Q4_0"),
            (3, "Q4_1"),
            (6, "Q5_0"),
            (7, "Q5_1"),
            (8, "Q8_0"),
            (12, "Q4_K"),
            (13, "Q5_K"),
            (14, "Q6_K"),
        ] {
            let raw = st.tensor(&format!("{name}.raw")).unwrap();
            let want: Vec<f32> = st
                .tensor(&format!("{name}.f32"))
                .unwrap()
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            let (per, bytes, label) = block(kind).unwrap();
            assert_eq!(label, name);
            assert_eq!(raw.data().len() / bytes * per, want.len(), "{name}");
            let got = dequantize(kind, raw.data(), want.len());
            assert_eq!(got.len(), want.len(), "{name}");
            let d = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(d <= 1e-6, "{name}: max abs diff {d} vs gguf-py");
        }
    }

    #[test]
    fn unpermute_inverts_llama_cpp_permute() {
        // llama.cpp: reshape(h, 2, d/2, in).swapaxes(1, 2); rows of 1 column for clarity.
        let (heads, d) = (2usize, 4usize);
        let hf: Vec<f32> = (0..(heads * d)).map(|x| x as f32).collect();
        let mut gguf = vec![0f32; hf.len()];
        for h in 0..heads {
            for two in 0..2 {
                for i in 0..d / 2 {
                    gguf[(h * (d / 2) + i) * 2 + two] = hf[h * d + two * (d / 2) + i];
                }
            }
        }
        assert_eq!(unpermute(&gguf, heads, &[heads * d, 1]), hf);
    }

    #[test]
    fn names_map_to_hf() {
        assert_eq!(
            llama_cpp_name("blk.3.attn_k.weight").as_deref(),
            Some("model.layers.3.self_attn.k_proj.weight")
        );
        assert_eq!(
            llama_cpp_name("blk.0.ffn_norm.weight").as_deref(),
            Some("model.layers.0.post_attention_layernorm.weight")
        );
        assert_eq!(
            llama_cpp_name("token_embd.weight").as_deref(),
            Some("model.embed_tokens.weight")
        );
        assert_eq!(llama_cpp_name("rope_freqs.weight"), None);
    }

    #[test]
    fn truncated_and_foreign_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.gguf");
        std::fs::write(&p, b"GGUF\x03\x00\x00\x00\x05").unwrap();
        let e = Gguf::open(&p).err().unwrap().to_string();
        assert!(e.contains("truncated"), "{e}");
        std::fs::write(&p, b"PK\x03\x04 not gguf").unwrap();
        let e = Gguf::open(&p).err().unwrap().to_string();
        assert!(e.contains("bad magic"), "{e}");
    }
}
