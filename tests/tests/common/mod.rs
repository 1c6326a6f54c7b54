//! Helpers shared by the engine tests: the parity fixtures made by
//! `scripts/make-parity-fixtures.py` and the devices every check runs on.
#![allow(dead_code)]

use std::path::PathBuf;

use siren_core::burn::tensor::{Device, Tensor};
use siren_core::engine::Batch;

pub const TOL: f32 = 1e-4;

pub fn fixture(arch: &str) -> PathBuf {
    siren_tests::repo_root()
        .join("tests/fixtures/parity")
        .join(arch)
}

pub fn devices() -> Vec<(&'static str, Device)> {
    let mut v = Vec::new();
    for name in ["flex", "tch-cpu"] {
        if let Ok((d, _)) = siren_backends::open(name) {
            v.push((name, d));
        } else if siren_backends::compiled_in().contains(&name) {
            panic!("{name} is compiled in but does not open");
        }
    }
    v
}

pub struct Expected {
    pub prompts: Vec<Vec<u32>>,
    pub greedy_prompt: Vec<u32>,
    pub greedy_tokens: Vec<u32>,
    pub position_ids: Vec<i64>,
    pub logits: (Vec<usize>, Vec<f32>),
    pub hidden: (Vec<usize>, Vec<f32>),
}

pub fn expected(arch: &str) -> Expected {
    let dir = fixture(arch);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let to_u32 = |v: &serde_json::Value| -> Vec<u32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect()
    };
    let st = dir.join("expected.safetensors");
    Expected {
        prompts: json["prompts"]
            .as_array()
            .unwrap()
            .iter()
            .map(to_u32)
            .collect(),
        greedy_prompt: to_u32(&json["greedy_prompt"]),
        greedy_tokens: to_u32(&json["greedy_tokens"]),
        position_ids: read_i64(&st, "position_ids").1,
        logits: read_f32(&st, "logits"),
        hidden: read_f32(&st, "hidden_states"),
    }
}

pub fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.try_into_vec_as::<f32>().unwrap()
}

/// Max |a - b| over the rows (batch, position) that are real tokens; `width` values per row.
pub fn max_diff_real(a: &[f32], b: &[f32], width: usize, real: &[bool]) -> f32 {
    assert_eq!(a.len(), b.len());
    let mut m = 0f32;
    for (row, &keep) in real.iter().enumerate() {
        if keep {
            for k in row * width..(row + 1) * width {
                m = m.max((a[k] - b[k]).abs());
            }
        }
    }
    m
}

/// Which (batch, position) rows of `batch` are real tokens.
pub fn real_tokens(batch: &Batch) -> Vec<bool> {
    let pad = batch
        .pad
        .clone()
        .into_data()
        .try_into_vec::<bool>()
        .unwrap();
    pad.into_iter().map(|p| !p).collect()
}

/// f32 tensor `name` of a safetensors file: (shape, values).
pub fn read_f32(path: &std::path::Path, name: &str) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor(name).unwrap();
    let data = t
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    (t.shape().to_vec(), data)
}

/// i64 tensor `name` of a safetensors file: (shape, values).
pub fn read_i64(path: &std::path::Path, name: &str) -> (Vec<usize>, Vec<i64>) {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor(name).unwrap();
    let data = t
        .data()
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (t.shape().to_vec(), data)
}

/// Max |a - b|.
pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
}
