//! LoRA target sets, registered in the `lora-targets` slot (paper Table 4): which linear sites
//! of the decoder get adapters. Sites are named as in HF checkpoints
//! (`model.layers.{i}.self_attn.k_proj`, `model.layers.{i}.mlp.up_proj`, ...).
//!
//! | name | sites |
//! |---|---|
//! | `kv` (the paper's default) | `k_proj`, `v_proj` |
//! | `qkv` | `q_proj`, `k_proj`, `v_proj` |
//! | `qv` | `q_proj`, `v_proj` |
//! | `ffn` | `gate_proj`, `up_proj`, `down_proj` |
//! | `all-linear` | all seven projections |
//!
//! Every set takes `layers = [i, j, ...]` to restrict adapters to some layers (default: all).
#![warn(missing_docs)]

use serde::Deserialize;
use siren_core::traits::LoraTargets;
use siren_core::{CoreError, Plugin, Result};

/// Parameters shared by every target set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TargetParams {
    /// Only these layer indices (default: every layer).
    pub layers: Option<Vec<usize>>,
}

/// A set of projection names, optionally restricted to some layers.
#[derive(Debug, Clone)]
pub struct Targets {
    modules: &'static [&'static str],
    layers: Option<Vec<usize>>,
}

impl Targets {
    fn new(modules: &'static [&'static str], p: TargetParams) -> Result<Self> {
        if p.layers.as_ref().is_some_and(Vec::is_empty) {
            return Err(CoreError::config(
                "lora-targets layers",
                "an empty list selects nothing; omit it for every layer",
            ));
        }
        Ok(Self {
            modules,
            layers: p.layers,
        })
    }

    /// The projection names this set adapts (PEFT's `target_modules`).
    pub fn modules(&self) -> &'static [&'static str] {
        self.modules
    }
}

impl LoraTargets for Targets {
    fn select(&self, site: &str) -> bool {
        let Some(rest) = site.strip_prefix("model.layers.") else {
            return false;
        };
        let Some((layer, path)) = rest.split_once('.') else {
            return false;
        };
        let Ok(layer) = layer.parse::<usize>() else {
            return false;
        };
        if self.layers.as_ref().is_some_and(|l| !l.contains(&layer)) {
            return false;
        }
        let module = path.rsplit('.').next().unwrap_or(path);
        self.modules.contains(&module)
    }
}

macro_rules! target_set {
    ($ty:ident, $name:literal, $summary:literal, [$($m:literal),+]) => {
        #[doc = $summary]
        #[derive(Debug, Clone)]
        pub struct $ty(Targets);

        impl Plugin for $ty {
            type Params = TargetParams;
            const SUMMARY: &'static str = $summary;
            fn from_params(p: TargetParams) -> Result<Self> {
                Ok(Self(Targets::new(&[$($m),+], p)?))
            }
        }

        impl LoraTargets for $ty {
            fn select(&self, site: &str) -> bool {
                self.0.select(site)
            }
        }

        siren_core::register_lora_targets!($name, $ty);
    };
}

target_set!(
    Kv,
    "kv",
    "k_proj and v_proj of every attention layer (the paper's default)",
    ["k_proj", "v_proj"]
);
target_set!(
    Qkv,
    "qkv",
    "q_proj, k_proj and v_proj",
    ["q_proj", "k_proj", "v_proj"]
);
target_set!(Qv, "qv", "q_proj and v_proj", ["q_proj", "v_proj"]);
target_set!(
    Ffn,
    "ffn",
    "the MLP: gate_proj, up_proj and down_proj",
    ["gate_proj", "up_proj", "down_proj"]
);
target_set!(
    AllLinear,
    "all-linear",
    "every linear site: q/k/v/o projections and the MLP",
    [
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj"
    ]
);

#[cfg(test)]
mod tests {
    use super::*;

    fn sites(layers: usize) -> Vec<String> {
        let mut v = Vec::new();
        for i in 0..layers {
            for m in [
                "self_attn.q_proj",
                "self_attn.k_proj",
                "self_attn.v_proj",
                "self_attn.o_proj",
                "mlp.gate_proj",
                "mlp.up_proj",
                "mlp.down_proj",
            ] {
                v.push(format!("model.layers.{i}.{m}"));
            }
        }
        v
    }

    fn count(t: &dyn LoraTargets, layers: usize) -> usize {
        sites(layers).iter().filter(|s| t.select(s)).count()
    }

    #[test]
    fn each_set_selects_its_sites() {
        let p = TargetParams::default;
        assert_eq!(count(&Kv::from_params(p()).unwrap(), 3), 6);
        assert_eq!(count(&Qkv::from_params(p()).unwrap(), 3), 9);
        assert_eq!(count(&Qv::from_params(p()).unwrap(), 3), 6);
        assert_eq!(count(&Ffn::from_params(p()).unwrap(), 3), 9);
        assert_eq!(count(&AllLinear::from_params(p()).unwrap(), 3), 21);
        let kv = Kv::from_params(p()).unwrap();
        assert!(kv.select("model.layers.12.self_attn.k_proj"));
        assert!(!kv.select("model.layers.12.self_attn.q_proj"));
        assert!(!kv.select("lm_head") && !kv.select("model.embed_tokens") && !kv.select(""));
        assert!(!kv.select("model.layers.x.self_attn.k_proj"));
    }

    #[test]
    fn layers_restrict_the_set() {
        let kv = Kv::from_params(TargetParams {
            layers: Some(vec![1]),
        })
        .unwrap();
        assert_eq!(count(&kv, 3), 2);
        assert!(
            kv.select("model.layers.1.self_attn.v_proj")
                && !kv.select("model.layers.0.self_attn.v_proj")
        );
        assert!(
            Kv::from_params(TargetParams {
                layers: Some(vec![])
            })
            .is_err()
        );
    }
}
