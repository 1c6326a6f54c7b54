//! The policy a trainer updates: a decoder on an autodiff device with its tokenizer, trained
//! through LoRA adapters (base frozen) or in full.

use std::path::Path;
use std::sync::Arc;

use burn::module::Module;
use burn::tensor::Device;

use crate::engine::{
    CompletionScores, Decoder, GenerationConfig, LoraSpec, SharedPrefix, TensorMap, TextTokenizer,
    completion_logprobs, generate, generate_shared, shared_prefix_logprobs,
};
use crate::{CoreError, Result};

/// What trains.
#[derive(Debug, Clone, PartialEq)]
pub enum Tuning {
    /// LoRA adapters on the selected sites; the base is frozen and the reference policy is
    /// the same model with adapters disabled.
    Lora(LoraSpec),
    /// Every parameter; the reference policy is a frozen copy of the starting weights.
    Full,
}

/// A decoder being trained, with its tokenizer.
pub struct Policy {
    /// The model, on an autodiff device.
    pub model: Decoder,
    /// Its tokenizer.
    pub tokenizer: Arc<TextTokenizer>,
    /// The autodiff device the model lives on.
    pub device: Device,
    /// What trains.
    pub tuning: Tuning,
    /// Where the base weights came from (written into adapter configs).
    pub source: String,
    /// Frozen starting weights (full fine-tuning, or a start from existing adapters).
    reference: Option<Decoder>,
}

impl Policy {
    /// Wraps `model` (loaded on an autodiff device). For [`Tuning::Lora`], `select` picks the
    /// linear sites that get fresh adapters (seeded by `seed`); a model that already carries
    /// adapters (e.g. loaded from a PEFT folder) keeps them, `select` is not used, and the
    /// reference policy is that starting model.
    pub fn new(
        model: Decoder,
        tokenizer: TextTokenizer,
        tuning: Tuning,
        select: &dyn Fn(&str) -> bool,
        seed: u64,
        source: impl Into<String>,
    ) -> Result<Self> {
        let device = model.embed_tokens.weight.val().device();
        if !device.is_autodiff() {
            return Err(CoreError::Device {
                name: format!("{device:?}"),
                reason: "training needs the model on an autodiff device (`device.autodiff()`)"
                    .into(),
            });
        }
        let (model, reference) = match &tuning {
            // A model that already carries adapters (a later stage, or `init_adapter`) keeps
            // them, and its starting weights are the reference: KL measures the drift from
            // where this training began, as with a frozen copy of the initial policy.
            Tuning::Lora(_) if model.lora_sites() > 0 => {
                let reference = model.valid();
                (model, Some(reference))
            }
            Tuning::Lora(spec) => (model.add_lora(spec, select, seed)?.0, None),
            // Every parameter trains, including weights an earlier merge left frozen.
            Tuning::Full => {
                let reference = model.valid();
                (model.require_grad_all(), Some(reference))
            }
        };
        Ok(Self {
            model: model.with_stable_param_ids(),
            tokenizer: Arc::new(tokenizer),
            device,
            tuning,
            source: source.into(),
            reference,
        })
    }

    /// Also trains the embedding (and untied `lm_head`) rows of `ids` under LoRA, where every
    /// base parameter is otherwise frozen (PEFT's trainable tokens; e.g. the new `<answer>`
    /// and `</answer>` tokens). Rows the model already carries (a PEFT adapter with trainable
    /// tokens) are kept; full fine-tuning trains every row already.
    pub fn train_tokens(mut self, ids: &[u32]) -> Result<Self> {
        if ids.is_empty() || self.tuning == Tuning::Full || self.model.token_rows.is_some() {
            return Ok(self);
        }
        self.model = self.model.train_token_rows(ids)?.with_stable_param_ids();
        Ok(self)
    }

    /// The device inference runs on (the training device without autodiff).
    pub fn inference_device(&self) -> Device {
        self.device.clone().without_autodiff()
    }

    /// The current weights for inference: no autodiff graph, dropout off.
    pub fn inference_model(&self) -> Decoder {
        self.model.valid()
    }

    /// The reference policy for KL terms: the model with adapters disabled (fresh LoRA) or the
    /// frozen starting weights (full fine-tuning, or adapters the model came with).
    pub fn reference_model(&self) -> Decoder {
        match &self.reference {
            Some(r) => r.clone(),
            None => {
                let mut m = self.model.valid();
                m.set_lora_enabled(false);
                m
            }
        }
    }

    /// Token ids of `text` (no BOS/EOS added: chat templates write their own).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self.tokenizer.encode(text, false)?)
    }

    /// Text of generated ids, special tokens kept (tags may be special tokens) but end and
    /// padding tokens dropped.
    pub fn decode_completion(&self, ids: &[u32]) -> Result<String> {
        Ok(self.tokenizer.decode_generated(ids)?)
    }

    /// Padding id for batches (the tokenizer's pad, else its EOS, else 0).
    pub fn pad_id(&self) -> u32 {
        self.tokenizer.pad_id()
    }

    /// Continues `prompts` with the current weights (no gradient).
    pub fn generate(&self, prompts: &[Vec<u32>], cfg: &GenerationConfig) -> Result<Vec<Vec<u32>>> {
        Ok(generate(
            &self.inference_model(),
            prompts,
            cfg,
            &self.inference_device(),
        )?)
    }

    /// Continues `prompts[owner[i]]` for every `i` with the current weights (no gradient),
    /// each prompt computed once.
    pub fn generate_shared(
        &self,
        prompts: &[Vec<u32>],
        owner: &[usize],
        cfg: &GenerationConfig,
    ) -> Result<Vec<Vec<u32>>> {
        Ok(generate_shared(
            &self.inference_model(),
            prompts,
            owner,
            cfg,
            &self.inference_device(),
        )?)
    }

    /// Per-token log-probabilities at `temperature` of completions that share prompts, each
    /// prompt computed once, with the autodiff graph.
    pub fn scores_shared(
        &self,
        shared: SharedPrefix<'_>,
        temperature: f32,
    ) -> Result<CompletionScores> {
        Ok(shared_prefix_logprobs(
            &self.model,
            shared,
            self.pad_id(),
            temperature,
            &self.device,
        )?)
    }

    /// Per-token log-probabilities of `completions` after `prompts`, with the autodiff graph.
    pub fn scores(
        &self,
        prompts: &[Vec<u32>],
        completions: &[Vec<u32>],
    ) -> Result<CompletionScores> {
        Ok(completion_logprobs(
            &self.model,
            prompts,
            completions,
            self.pad_id(),
            &self.device,
        )?)
    }

    /// The trainable tensors by path (a checkpoint's weights).
    pub fn trainable(&self) -> Result<TensorMap> {
        Ok(self.model.tensors_by_path(true)?)
    }

    /// What trains, for log lines: `, LoRA `<targets>` r=.. α=.. on N sites` (`targets` is the
    /// `lora-targets` plugin that chose the sites) or `, full fine-tuning`.
    pub fn tuning_note(&self, targets: &str) -> String {
        match &self.tuning {
            Tuning::Lora(s) => format!(
                ", LoRA `{targets}` r={} α={} on {} sites{}",
                s.r,
                s.alpha,
                self.model.lora_sites(),
                match &self.model.token_rows {
                    Some(t) => format!(" + the rows of tokens {:?}", t.ids),
                    None => String::new(),
                }
            ),
            Tuning::Full => ", full fine-tuning".into(),
        }
    }

    /// Number of trainable scalars.
    pub fn trainable_count(&self) -> Result<usize> {
        Ok(self
            .trainable()?
            .values()
            .map(|(s, _)| s.iter().product::<usize>())
            .sum())
    }

    /// Restores trainable tensors saved by [`Policy::trainable`].
    pub fn restore(&mut self, tensors: TensorMap) -> Result<()> {
        let want = self.trainable()?;
        if let Some(k) = want.keys().find(|k| !tensors.contains_key(*k)) {
            return Err(CoreError::Data(format!(
                "trainable tensor `{k}` is missing ({} saved, {} expected)",
                tensors.len(),
                want.len()
            )));
        }
        self.model = self.model.clone().with_tensors_by_path(tensors)?;
        Ok(())
    }

    /// Writes the trained weights for use outside training: a PEFT adapter folder (LoRA) or
    /// `model.safetensors` with every parameter by path (full fine-tuning).
    pub fn export(&self, dir: &Path) -> Result<()> {
        match &self.tuning {
            Tuning::Lora(spec) => Ok(self.model.save_peft(dir, spec, Some(&self.source))?),
            Tuning::Full => {
                std::fs::create_dir_all(dir).map_err(|e| CoreError::io(dir, e))?;
                let bytes = crate::engine::serialize_f32(&self.model.tensors_by_path(false)?)?;
                Ok(crate::files::write_atomic(
                    &dir.join("model.safetensors"),
                    &bytes,
                )?)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::LoraSpec;
    use crate::testkit::{tiny_decoder, tiny_tokenizer};

    fn spec() -> LoraSpec {
        LoraSpec {
            r: 2,
            alpha: 4.0,
            dropout: 0.0,
        }
    }

    #[test]
    fn full_finetuning_after_a_merged_lora_trains_every_weight() {
        let device = Device::flex().autodiff();
        let fresh = tiny_decoder(2, &device).unwrap();
        let all = fresh.num_params();
        // A LoRA stage merged into the base leaves the merged weights frozen...
        let merged = fresh
            .add_lora(&spec(), |s| s.ends_with("k_proj"), 1)
            .unwrap()
            .0
            .merge_lora();
        let p = Policy::new(
            merged,
            tiny_tokenizer().unwrap(),
            Tuning::Full,
            &|_| false,
            1,
            "tiny",
        )
        .unwrap();
        // ...full fine-tuning trains them all the same.
        assert_eq!(p.trainable_count().unwrap(), all);
    }

    #[test]
    fn lora_trains_the_new_token_rows_and_saves_them() {
        let device = Device::flex().autodiff();
        let p = Policy::new(
            tiny_decoder(2, &device).unwrap(),
            tiny_tokenizer().unwrap(),
            Tuning::Lora(spec()),
            &|s| s.ends_with("v_proj"),
            1,
            "tiny",
        )
        .unwrap();
        let lora_only = p.trainable_count().unwrap();
        let p = p.train_tokens(&[12]).unwrap();
        let h = p.model.spec.hidden_size;
        // The row of token 12 in the embedding and in the untied head train with the adapter.
        assert_eq!(p.trainable_count().unwrap(), lora_only + 2 * h);
        let names: Vec<String> = p.trainable().unwrap().keys().cloned().collect();
        assert!(names.iter().any(|n| n == "token_rows.embed"), "{names:?}");
        // They round-trip through the PEFT folder.
        let dir = tempfile::tempdir().unwrap();
        p.export(dir.path()).unwrap();
        let cfg = std::fs::read_to_string(dir.path().join("adapter_config.json")).unwrap();
        assert!(cfg.contains("trainable_token_indices"), "{cfg}");
        let (back, _) = tiny_decoder(2, &Device::flex())
            .unwrap()
            .load_peft(dir.path())
            .unwrap();
        assert_eq!(back.token_rows.as_ref().unwrap().ids, vec![12]);
    }
}
