//! Loading a decoder by backbone name: from a HF model folder (the backbone named by
//! `model_type`, or given) or a GGUF file. This sits above the engine: the engine builds a
//! decoder from a spec and weights, the `Backbone` plugin found in the registry makes the spec.

use std::path::Path;

use burn::tensor::Device;

use crate::engine::gguf::Gguf;
use crate::engine::{Decoder, TextTokenizer, Weights};
use crate::registry;
use crate::traits::Backbone;
use crate::{CoreError, Result};

/// Reads `dir/config.json`, resolves the backbone named by its `model_type` (or `backbone`
/// when given), and builds the decoder from the folder's safetensors on `device`.
pub fn load_hf_dir(dir: &Path, backbone: Option<&str>, device: &Device) -> Result<Decoder> {
    let config_path = dir.join("config.json");
    let text = std::fs::read_to_string(&config_path).map_err(|e| CoreError::io(&config_path, e))?;
    let config: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| CoreError::Json {
            path: config_path.clone(),
            source,
        })?;
    let kind = match backbone {
        Some(k) => k.to_string(),
        None => config
            .get("model_type")
            .and_then(|v| v.as_str())
            .ok_or_else(|| {
                CoreError::config(
                    config_path.display().to_string(),
                    "no `model_type`; name the backbone explicitly",
                )
            })?
            .to_string(),
    };
    let plugin = registry::build::<dyn Backbone>(&kind, &Default::default())?;
    let spec = plugin.spec(&config)?;
    let mut weights = Weights::from_hf_dir(dir)?;
    let model = Decoder::from_weights(spec, &mut weights, device)?;
    let unused = weights.remaining();
    if !unused.is_empty() {
        tracing::warn!(
            "{}: {} checkpoint tensors unused (first: {})",
            dir.display(),
            unused.len(),
            unused[0]
        );
    }
    Ok(model)
}

/// Loads a decoder and its tokenizer from a GGUF file (weights dequantised to f32): the backbone
/// named by the file's `general.architecture` reads its spec and tensors.
pub fn load_gguf(path: &Path, device: &Device) -> Result<(Decoder, TextTokenizer)> {
    let g = Gguf::open(path)?;
    let plugin = registry::build::<dyn Backbone>(g.architecture()?, &Default::default())?;
    let (spec, mut weights) = plugin.gguf(&g)?;
    let model = Decoder::from_weights(spec, &mut weights, device)?;
    let tokenizer = TextTokenizer::from_gguf(&g, &path.display().to_string())?;
    Ok((model, tokenizer))
}

/// Loads a decoder and its tokenizer from a GGUF file or a HF folder (`backbone` names the
/// architecture of a folder when its `model_type` should not decide).
pub fn load_model(
    path: &Path,
    backbone: Option<&str>,
    device: &Device,
) -> Result<(Decoder, TextTokenizer)> {
    if path.is_dir() {
        let m = load_hf_dir(path, backbone, device)?;
        Ok((m, TextTokenizer::from_hf_dir(path)?))
    } else if path.is_file() {
        load_gguf(path, device)
    } else {
        Err(CoreError::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such GGUF file or model folder",
            ),
        ))
    }
}
