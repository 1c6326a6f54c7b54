//! `grpo`: Group Relative Policy Optimization (paper §3.2 stage 1, appendix C; METHOD.md).
//!
//! Per step, for each of the step's prompts:
//! 1. sample `group_size` completions with the current weights (`temperature`, `top_k`,
//!    `top_p`, at most `max_response_tokens`, ending at EOS or `</answer>`);
//! 2. score each with the `reward` slot; advantage `A = (R − mean) / (std + 1e-6)` within the
//!    group (`std` unbiased, as `torch.std`). A group whose rewards are all equal has `A = 0`
//!    everywhere: it gives no policy gradient and is counted as `zero_std_groups`;
//! 3. with `ρ = exp(log π − log π_old)` per token (`π_old` = the weights that sampled), the
//!    token loss is `−min(ρA, clip(ρ, 1 − ε, 1 + ε_high)·A) + β·k3`, where
//!    `k3 = exp(log π_ref − log π) − (log π_ref − log π) − 1` (VERL's `low_var_kl`, clamped to
//!    ±10) and `π_ref` is the model with adapters disabled (LoRA) or the starting weights (full
//!    fine-tuning);
//! 4. `loss_agg = "seq-mean-token-mean"` (default) averages tokens within each completion and
//!    then completions; `"token-mean"` averages every token of the step;
//! 5. `inner_steps` optimizer updates on the same samples (each over all of them, with
//!    gradient accumulation over micro-batches of whole groups: `max(1, micro_batch / G)`
//!    prompts with their G completions each).
//!
//! Log-probabilities (policy, sampling weights, reference) are those of the sampling
//! distribution: logits divided by `temperature`, as VERL computes them. Each prompt is
//! computed once for all G of its completions, when sampling and when scoring
//! ([`siren_core::engine::shared_prefix_logprobs`]).
//!
//! The first completion of up to 4 prompts per step goes to `samples.jsonl` (step, example,
//! reward, text).

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use siren_core::burn::module::Module as _;
use siren_core::burn::tensor::{Device, Tensor, TensorData};
use siren_core::engine::{Decoder, SharedPrefix, TextTokenizer, shared_prefix_logprobs};
use siren_core::train::{Optimizer, Policy, run_loop};
use siren_core::traits::{Example, PolicyTrainer, Reward, RunCtx, TrainReport};
use siren_core::{CoreError, Plugin, Result};

use crate::{Sample, Sampling, Stops};

/// How token losses become the step loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LossAgg {
    /// Mean over each completion's tokens, then over completions (the paper's setting).
    SeqMeanTokenMean,
    /// Mean over every token of the step.
    TokenMean,
}

/// Parameters of `grpo` (defaults: the paper's appendix C where it gives them).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpoParams {
    /// Samples per prompt G (paper 8).
    pub group_size: usize,
    /// Sampling temperature.
    pub temperature: f32,
    /// Top-k filter (0 = off).
    pub top_k: usize,
    /// Nucleus mass (1 = off).
    pub top_p: f32,
    /// Most tokens per completion (paper 512).
    pub max_response_tokens: usize,
    /// Clip range ε of the importance ratio (paper 0.2).
    pub clip_eps: f64,
    /// Upper clip range (default: `clip_eps`).
    pub clip_eps_high: Option<f64>,
    /// KL coefficient β (paper 0.001); 0 skips the reference pass.
    pub kl_coef: f64,
    /// Optimizer updates per batch of samples.
    pub inner_steps: usize,
    /// Token-loss aggregation.
    pub loss_agg: LossAgg,
    /// Sequences per generation call.
    pub generation_batch: usize,
}

impl Default for GrpoParams {
    fn default() -> Self {
        Self {
            group_size: 8,
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            max_response_tokens: 512,
            clip_eps: 0.2,
            clip_eps_high: None,
            kl_coef: 0.001,
            inner_steps: 1,
            loss_agg: LossAgg::SeqMeanTokenMean,
            generation_batch: 64,
        }
    }
}

/// The `grpo` trainer.
#[derive(Debug, Clone)]
pub struct Grpo {
    p: GrpoParams,
}

impl Plugin for Grpo {
    type Params = GrpoParams;
    const SUMMARY: &'static str =
        "GRPO: group-normalised advantages, clipped ratio, k3 KL to the reference policy";
    fn from_params(p: GrpoParams) -> Result<Self> {
        let bad = |k: &str, m: &str| Err(CoreError::config(format!("grpo {k}"), m));
        if p.group_size < 2 {
            return bad("group_size", "needs at least 2 samples per prompt");
        }
        if !(p.temperature > 0.0 && p.temperature.is_finite()) {
            return bad("temperature", "GRPO samples: must be > 0");
        }
        if !(p.top_p > 0.0 && p.top_p <= 1.0) {
            return bad("top_p", "must be in (0, 1]");
        }
        if p.max_response_tokens == 0 || p.inner_steps == 0 || p.generation_batch == 0 {
            return bad(
                "max_response_tokens",
                "max_response_tokens, inner_steps and generation_batch must be at least 1",
            );
        }
        if !(p.clip_eps > 0.0 && p.clip_eps < 1.0)
            || p.clip_eps_high.is_some_and(|e| e.is_nan() || e <= 0.0)
        {
            return bad("clip_eps", "must be in (0, 1) (clip_eps_high > 0)");
        }
        if !(p.kl_coef >= 0.0 && p.kl_coef.is_finite()) {
            return bad("kl_coef", "must be ≥ 0");
        }
        Ok(Self { p })
    }
}

siren_core::register_trainer!("grpo", Grpo);

/// Group-normalised advantages: `(r − mean) / (std + eps)` per consecutive group of `g`
/// rewards, `std` unbiased. Returns the advantages and the number of groups whose rewards
/// are all equal.
pub fn group_advantages(rewards: &[f32], g: usize, eps: f32) -> (Vec<f32>, usize) {
    let mut adv = Vec::with_capacity(rewards.len());
    let mut flat = 0;
    for grp in rewards.chunks(g) {
        let n = grp.len() as f32;
        let mean = grp.iter().sum::<f32>() / n;
        let var = if grp.len() > 1 {
            grp.iter().map(|r| (r - mean).powi(2)).sum::<f32>() / (n - 1.0)
        } else {
            0.0
        };
        let std = var.sqrt();
        if grp.iter().all(|&r| r == grp[0]) {
            flat += 1;
            adv.extend(std::iter::repeat_n(0.0, grp.len()));
        } else {
            adv.extend(grp.iter().map(|r| (r - mean) / (std + eps)));
        }
    }
    (adv, flat)
}

/// Per-token GRPO terms on host values, the reference the tensor loss is tested against:
/// `(policy-gradient term, k3)` of one token.
pub fn token_terms(logp: f32, old: f32, reference: f32, adv: f32, lo: f32, hi: f32) -> (f32, f32) {
    let ratio = (logp - old).exp();
    let pg = -(ratio * adv).min(ratio.clamp(lo, hi) * adv);
    let d = reference - logp;
    let k3 = (d.exp() - d - 1.0).clamp(-10.0, 10.0);
    (pg, k3)
}

/// Token-level GRPO terms as tensors `[batch, tokens]`.
pub struct TokenTerms {
    /// `−min(ρA, clip(ρ)·A) + β·k3` (before masking).
    pub loss: Tensor<2>,
    /// The importance ratio ρ.
    pub ratio: Tensor<2>,
    /// k3 per token, when a reference was given.
    pub k3: Option<Tensor<2>>,
}

/// The token loss of GRPO from the policy's log-probs (with graph), the sampling weights'
/// log-probs, the reference's log-probs (none: no KL term) and per-sequence advantages
/// `[batch, 1]`; `clip = (1 − ε, 1 + ε_high)`, `beta` the KL coefficient.
pub fn token_loss(
    logp: Tensor<2>,
    old: Tensor<2>,
    reference: Option<Tensor<2>>,
    adv: Tensor<2>,
    clip: (f64, f64),
    beta: f64,
) -> TokenTerms {
    let ratio = logp.clone().sub(old).exp();
    let s1 = ratio.clone().mul(adv.clone());
    let s2 = ratio.clone().clamp(clip.0, clip.1).mul(adv);
    let mut loss = s1.min_pair(s2).neg();
    let k3 = reference.map(|r| {
        let d = r.sub(logp);
        d.clone().exp().sub(d).sub_scalar(1.0).clamp(-10.0, 10.0)
    });
    if let Some(k) = &k3 {
        loss = loss.add(k.clone().mul_scalar(beta));
    }
    TokenTerms { loss, ratio, k3 }
}

/// The rewards of one step's samples, with how many are well-formed and parsed and the
/// summed absolute error of the parsed ones.
struct Rewards {
    rewards: Vec<f32>,
    fmt: usize,
    parsed: usize,
    abs_err: f64,
}

/// Scores every sample with `reward` (an error names the example whose reward is not finite)
/// and appends the first completion of up to 4 prompts to `samples.jsonl` in `run_dir`.
fn score_samples(
    tokenizer: &TextTokenizer,
    samples: &[Sample],
    examples: &[Example],
    reward: &dyn Reward,
    (g, step): (usize, usize),
    run_dir: &std::path::Path,
) -> Result<Rewards> {
    let mut rewards = Vec::with_capacity(samples.len());
    let (mut fmt, mut parsed, mut abs_err) = (0usize, 0usize, 0f64);
    let texts: Vec<String> = samples
        .iter()
        .map(|s| Ok(tokenizer.decode_generated(&s.ids)?))
        .collect::<Result<_>>()?;
    for (s, text) in samples.iter().zip(&texts) {
        let truth = examples[s.prompt].rating;
        let parts = reward.score(text, truth);
        if !parts.total().is_finite() {
            return Err(CoreError::Numeric(format!(
                "reward returned {} for example `{}`",
                parts.total(),
                examples[s.prompt].id
            )));
        }
        rewards.push(parts.total());
        fmt += usize::from(siren_core::answer::format_ok(text));
        if let Some(r) = parts.predicted {
            parsed += 1;
            abs_err += f64::from((r.clamp(1.0, 5.0) - truth).abs());
        }
    }
    // A few completions per step, for reading what the policy writes.
    let mut lines = String::new();
    for (j, s) in samples.iter().enumerate().step_by(g).take(4) {
        lines.push_str(
            &serde_json::json!({
                "step": step + 1,
                "id": examples[s.prompt].id,
                "rating": examples[s.prompt].rating,
                "reward": rewards[j],
                "text": texts[j],
            })
            .to_string(),
        );
        lines.push('\n');
    }
    // Each rank of a data-parallel run logs its own samples; rank 0's file keeps its name.
    let sp = match siren_core::dist::rank() {
        0 => run_dir.join("samples.jsonl"),
        r => run_dir.join(format!("samples.rank{r}.jsonl")),
    };
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&sp)
        .and_then(|mut f| std::io::Write::write_all(&mut f, lines.as_bytes()))
        .map_err(|e| CoreError::io(&sp, e))?;
    Ok(Rewards {
        rewards,
        fmt,
        parsed,
        abs_err,
    })
}

impl Rewards {
    /// The step's metrics of the rewards, with its `loss` and `flat` groups of equal rewards.
    /// `mae` and `zero_std_groups` are the whole step's (summed over the ranks of a
    /// data-parallel run); the rest are means over this rank's samples (averaged by the loop).
    fn metrics(&self, loss: f64, flat: usize) -> Result<BTreeMap<String, f64>> {
        let (abs_err, parsed, flat) = if siren_core::dist::size() > 1 {
            let mut sums = [self.abs_err as f32, self.parsed as f32, flat as f32];
            siren_core::dist::all_reduce_sum(&mut sums)?;
            (f64::from(sums[0]), sums[1] as usize, sums[2] as usize)
        } else {
            (self.abs_err, self.parsed, flat)
        };
        let n = self.rewards.len();
        let mean_r = self.rewards.iter().map(|&r| f64::from(r)).sum::<f64>() / n as f64;
        let std_r = (self
            .rewards
            .iter()
            .map(|&r| (f64::from(r) - mean_r).powi(2))
            .sum::<f64>()
            / n as f64)
            .sqrt();
        let mut m = BTreeMap::new();
        m.insert("loss".to_string(), loss);
        m.insert("reward_mean".to_string(), mean_r);
        m.insert("reward_std".to_string(), std_r);
        m.insert("format_rate".to_string(), self.fmt as f64 / n as f64);
        m.insert("parse_rate".to_string(), self.parsed as f64 / n as f64);
        if parsed > 0 {
            m.insert("mae".to_string(), abs_err / parsed as f64);
        }
        m.insert("zero_std_groups".to_string(), flat as f64);
        Ok(m)
    }
}

/// One micro-batch of whole groups as the shared-prefix engine takes it: the distinct prompts,
/// each completion's prompt among them, the completions.
struct Inputs {
    prompts: Vec<Vec<u32>>,
    owner: Vec<usize>,
    completions: Vec<Vec<u32>>,
}

impl Inputs {
    /// The samples `c` of `samples`, whose prompts are ids in `prompts`.
    fn of(c: &[usize], samples: &[Sample], prompts: &[Vec<u32>]) -> Self {
        let rows: Vec<usize> = c.iter().map(|&j| samples[j].prompt).collect();
        let (uniq, owner) = crate::distinct(&rows);
        Self {
            prompts: uniq.iter().map(|&i| prompts[i].clone()).collect(),
            owner,
            completions: c.iter().map(|&j| samples[j].ids.clone()).collect(),
        }
    }

    fn shared(&self) -> SharedPrefix<'_> {
        SharedPrefix {
            prompts: &self.prompts,
            owner: &self.owner,
            completions: &self.completions,
        }
    }
}

/// The reference model's token log-probs of every micro-batch, on the host.
fn reference_logprobs(
    (reference, device): (&Decoder, &Device),
    micro: &[Inputs],
    (pad, temperature): (u32, f32),
) -> Result<Vec<Vec<f32>>> {
    let mut refs = Vec::with_capacity(micro.len());
    for x in micro {
        refs.push(crate::host(
            shared_prefix_logprobs(reference, x.shared(), pad, temperature, device)?.logprobs,
        )?);
    }
    Ok(refs)
}

/// Of the real tokens (`mask` 1), how many there are and how many have a ratio outside the
/// clip range.
fn clipped_tokens(
    ratio: Tensor<2>,
    mask: Tensor<2>,
    (lo, hi): (f64, f64),
) -> Result<(usize, usize)> {
    let r = crate::host(ratio.detach())?;
    let mk = crate::host(mask)?;
    let (mut tokens, mut clipped) = (0, 0);
    for (x, w) in r.iter().zip(&mk) {
        if *w > 0.0 {
            tokens += 1;
            clipped += usize::from(*x < lo as f32 || *x > hi as f32);
        }
    }
    Ok((tokens, clipped))
}

impl LossAgg {
    /// The step loss of one micro-batch's masked token losses `tok` (`[m, width]`): per
    /// completion then over the step's `n` completions, or over its `total_tokens` tokens.
    fn step_loss(
        self,
        tok: Tensor<2>,
        mask: Tensor<2>,
        n: usize,
        total_tokens: usize,
    ) -> Tensor<1> {
        match self {
            Self::SeqMeanTokenMean => {
                let per_seq = tok.sum_dim(1).div(mask.sum_dim(1).clamp_min(1.0));
                per_seq.sum().div_scalar(n as f64)
            }
            Self::TokenMean => tok.sum().div_scalar(total_tokens.max(1) as f64),
        }
    }
}

/// What one GRPO step trains: a decoder on the autodiff device `device`, its optimizer, the
/// reference the KL term holds it to (none: no KL term), and the padding id of its batches.
pub struct Learner<'a> {
    /// The policy's weights; replaced by the updated ones.
    pub model: &'a mut Decoder,
    /// Its optimizer.
    pub optim: &'a mut Optimizer,
    /// The reference policy (no autodiff), for the k3 KL term.
    pub reference: Option<Decoder>,
    /// The autodiff device the model lives on.
    pub device: &'a Device,
    /// Padding id.
    pub pad: u32,
}

/// The settings of one GRPO step.
#[derive(Clone)]
pub struct StepSettings {
    /// How completions are sampled (`group_size` of them per prompt).
    pub sampling: Sampling,
    /// Where they end.
    pub stops: Stops,
    /// Sequences per forward/backward pass (whole groups: at least one group).
    pub micro_batch: usize,
    /// The clip range of the ratio, `(1 − ε, 1 + ε_high)`.
    pub clip: (f64, f64),
    /// KL coefficient β (used when a reference is given).
    pub kl_coef: f64,
    /// Optimizer updates on the same samples.
    pub inner_steps: usize,
    /// Token-loss aggregation.
    pub loss_agg: LossAgg,
}

/// What one GRPO step did.
pub struct StepOutcome {
    /// The sampled completions, `group_size` per prompt, consecutive.
    pub samples: Vec<Sample>,
    /// The loss of the last inner update.
    pub loss: f64,
    /// The k3 KL summed over the real tokens of the last inner update (0 without a reference).
    pub kl_sum: f64,
    /// Real tokens of the last inner update.
    pub tokens: usize,
    /// Of those, how many had a ratio outside the clip range.
    pub clipped: usize,
    /// Seconds sampling.
    pub sampling_s: f64,
    /// Seconds of the reference's log-probs.
    pub reference_s: f64,
    /// Seconds of the policy's log-probs, backward passes and optimizer updates (work still
    /// queued on an asynchronous device at return is not counted).
    pub update_s: f64,
}

/// One GRPO step (the module docs' steps 1–5) on the prompts `indices` of `prompts`: samples
/// `group_size` completions per prompt with the current weights (seeded by `seed`), takes
/// their advantages from `advantages` (one per sample, in order), computes the reference's
/// token log-probs per micro-batch of whole groups, then makes `inner_steps` optimizer updates
/// at learning rate `lr`, each accumulating the gradients of every micro-batch. `step` is the
/// 0-based step index errors name. The `grpo` trainer, `device-check` and the engine benchmark
/// all train through this function.
pub fn step(
    learner: Learner<'_>,
    prompts: &[Vec<u32>],
    indices: &[usize],
    s: &StepSettings,
    (lr, step, seed): (f64, usize, u64),
    advantages: &mut dyn FnMut(&[Sample]) -> Result<Vec<f32>>,
) -> Result<StepOutcome> {
    let Learner {
        model,
        optim,
        reference,
        device,
        pad,
    } = learner;
    let g = s.sampling.group_size;
    let temperature = s.sampling.temperature;
    let infer_dev = device.clone().without_autodiff();

    // 1. Sample G completions per prompt with the current weights.
    let t_gen = Instant::now();
    let on = (&model.valid(), &infer_dev, pad);
    let samples = crate::sample_on(on, prompts, indices, (&s.sampling, &s.stops), seed)?;
    let sampling_s = t_gen.elapsed().as_secs_f64();
    let gen_tokens: usize = samples.iter().map(|x| x.ids.len()).sum();
    let n = samples.len();
    // The loss is normalised over the whole step: every rank's samples in a data-parallel run.
    let (n_all, gen_all) = if siren_core::dist::size() > 1 {
        let mut counts = [n as f32, gen_tokens as f32];
        siren_core::dist::all_reduce_sum(&mut counts)?;
        (counts[0] as usize, counts[1] as usize)
    } else {
        (n, gen_tokens)
    };

    // 2. Advantages.
    let adv = advantages(&samples)?;
    if adv.len() != n {
        return Err(CoreError::Numeric(format!(
            "grpo: {} advantages for {n} samples",
            adv.len()
        )));
    }

    // 3. Log-probs of the reference, per micro-batch of whole groups. Those of the sampling
    // weights are the first inner update's own (detached): the weights have not moved yet.
    let t_ref = Instant::now();
    let per_micro = (s.micro_batch / g).max(1) * g;
    let chunks: Vec<Vec<usize>> = (0..n)
        .collect::<Vec<_>>()
        .chunks(per_micro)
        .map(<[usize]>::to_vec)
        .collect();
    // Each micro-batch's prompts and completions, built once for every pass over it.
    let micro: Vec<Inputs> = chunks
        .iter()
        .map(|c| Inputs::of(c, &samples, prompts))
        .collect();
    let refs = match &reference {
        Some(r) => reference_logprobs((r, &infer_dev), &micro, (pad, temperature))?,
        None => Vec::new(),
    };
    let reference_s = t_ref.elapsed().as_secs_f64();

    // 4. Inner optimizer updates.
    let t_upd = Instant::now();
    let mut old: Vec<Vec<f32>> = vec![Vec::new(); chunks.len()];
    let (lo, hi) = s.clip;
    let (mut loss, mut kl_sum, mut clipped, mut tokens) = (0.0, 0.0, 0usize, 0usize);
    for inner in 0..s.inner_steps {
        let last = inner + 1 == s.inner_steps;
        loss = siren_core::train::accumulated_update(
            model,
            optim,
            (lr, step),
            chunks.len(),
            &mut |model, k| {
                let c = &chunks[k];
                let sc =
                    shared_prefix_logprobs(model, micro[k].shared(), pad, temperature, device)?;
                let [m, width] = sc.logprobs.dims();
                let t = |v: Vec<f32>, shape: [usize; 2]| {
                    Tensor::<2>::from_data(TensorData::new(v, shape), device)
                };
                let old_t = if inner == 0 {
                    let lp = sc.logprobs.clone().detach();
                    if s.inner_steps > 1 {
                        old[k] = crate::host(lp.clone())?;
                    }
                    lp
                } else {
                    t(old[k].clone(), [m, width])
                };
                let a: Vec<f32> = c.iter().map(|&j| adv[j]).collect();
                let reference = refs
                    .get(k)
                    .filter(|r| !r.is_empty())
                    .map(|r| t(r.clone(), [m, width]));
                let terms = token_loss(
                    sc.logprobs.clone(),
                    old_t,
                    reference,
                    t(a, [m, 1]),
                    (lo, hi),
                    s.kl_coef,
                );
                let (tok, ratio) = (terms.loss, terms.ratio);
                // Metrics read detached copies: a result nothing backpropagates through must
                // not stay in the autodiff graph.
                if last && let Some(k3) = terms.k3 {
                    kl_sum += f64::from(crate::host(k3.detach().mul(sc.mask.clone()).sum())?[0]);
                }
                let tok = tok.mul(sc.mask.clone());
                if last {
                    let (t, c) = clipped_tokens(ratio, sc.mask.clone(), (lo, hi))?;
                    tokens += t;
                    clipped += c;
                }
                Ok(s.loss_agg.step_loss(tok, sc.mask, n_all, gen_all))
            },
        )?;
    }
    Ok(StepOutcome {
        samples,
        loss,
        kl_sum,
        tokens,
        clipped,
        sampling_s,
        reference_s,
        update_s: t_upd.elapsed().as_secs_f64(),
    })
}

impl PolicyTrainer for Grpo {
    fn train(
        &self,
        policy: &mut Policy,
        examples: &[Example],
        reward: &dyn Reward,
        ctx: &RunCtx,
    ) -> Result<TrainReport> {
        let p = &self.p;
        let prompts = crate::encode_prompts(
            "grpo",
            policy,
            examples.iter().map(|e| &e.prompt),
            ctx.training.max_prompt_tokens,
        )?;
        let hash = crate::settings_hash(p, ctx, examples)?;
        let g = p.group_size;
        let settings = StepSettings {
            sampling: Sampling {
                group_size: g,
                temperature: p.temperature,
                top_k: p.top_k,
                top_p: p.top_p,
                max_response_tokens: p.max_response_tokens,
                generation_batch: p.generation_batch,
            },
            stops: Stops::answer(policy),
            micro_batch: ctx.training.micro_batch,
            clip: (
                1.0 - p.clip_eps,
                1.0 + p.clip_eps_high.unwrap_or(p.clip_eps),
            ),
            kl_coef: p.kl_coef,
            inner_steps: p.inner_steps,
            loss_agg: p.loss_agg,
        };
        run_loop(
            "grpo",
            policy,
            examples.len(),
            hash,
            ctx,
            &mut |policy, optim, input| {
                let (tokenizer, device) = (policy.tokenizer.clone(), policy.device.clone());
                let learner = Learner {
                    reference: (p.kl_coef > 0.0).then(|| policy.reference_model()),
                    pad: policy.pad_id(),
                    device: &device,
                    model: &mut policy.model,
                    optim,
                };
                // Rewards of the samples and their group-normalised advantages.
                let mut scored = None;
                let out = step(
                    learner,
                    &prompts,
                    &input.indices,
                    &settings,
                    // A rank's first generation batch draws the seed the single-process
                    // run gives that batch (exact where shards hold whole batches).
                    (
                        input.lr,
                        input.step,
                        input
                            .seed
                            .wrapping_add((input.offset * g / p.generation_batch) as u64),
                    ),
                    &mut |samples| {
                        let r = score_samples(
                            &tokenizer,
                            samples,
                            examples,
                            reward,
                            (g, input.step),
                            &ctx.run_dir,
                        )?;
                        let (adv, flat) = group_advantages(&r.rewards, g, 1e-6);
                        scored = Some((r, flat));
                        Ok(adv)
                    },
                )?;
                let (scored, flat) = scored.ok_or_else(|| {
                    CoreError::Numeric("grpo: a step ended without scoring its samples".into())
                })?;
                let n = out.samples.len() as f64;
                let gen_tokens: usize = out.samples.iter().map(|x| x.ids.len()).sum();
                let tok_count = out.tokens.max(1) as f64;
                let mut m = scored.metrics(out.loss, flat)?;
                m.insert("response_tokens".to_string(), gen_tokens as f64 / n);
                m.insert(
                    "gen_tokens_per_s".to_string(),
                    gen_tokens as f64 / out.sampling_s.max(1e-9),
                );
                m.insert("gen_seconds".to_string(), out.sampling_s);
                m.insert("clip_frac".to_string(), out.clipped as f64 / tok_count);
                if p.kl_coef > 0.0 {
                    m.insert("kl".to_string(), out.kl_sum / tok_count);
                }
                Ok(m)
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advantages_are_group_normalised_with_unbiased_std() {
        let (a, flat) = group_advantages(&[1.0, 3.0, 2.0, 2.0, 0.0, 0.0], 2, 0.0);
        // group 1: mean 2, unbiased std sqrt(2) → ∓1/√2.
        let s = 1.0 / 2f32.sqrt();
        assert!((a[0] + s).abs() < 1e-6 && (a[1] - s).abs() < 1e-6, "{a:?}");
        assert_eq!(&a[2..], &[0.0; 4]);
        assert_eq!(flat, 2);
    }

    #[test]
    fn clipped_objective_and_k3_match_the_formulas() {
        // ratio e^0.5 ≈ 1.65 > 1.2 with A > 0: clipped, −1.2·A.
        let (pg, k3) = token_terms(-1.0, -1.5, -1.0, 2.0, 0.8, 1.2);
        assert!((pg + 2.4).abs() < 1e-6, "{pg}");
        assert!(k3.abs() < 1e-7, "same as reference: k3 = 0");
        // A < 0: min picks the unclipped ratio·A when the ratio is above the range.
        let (pg, _) = token_terms(-1.0, -1.5, -1.0, -1.0, 0.8, 1.2);
        assert!((pg - 0.5f32.exp()).abs() < 1e-5, "{pg}");
        // k3 = e^d − d − 1 ≥ 0.
        let (_, k3) = token_terms(-2.0, -2.0, -1.0, 0.0, 0.8, 1.2);
        assert!((k3 - (1f32.exp() - 2.0)).abs() < 1e-6, "{k3}");
    }

    #[test]
    fn tensor_loss_matches_the_host_formula() {
        use siren_core::burn::tensor::Device;
        let dev = Device::default();
        let logp = [-1.0f32, -0.3, -2.0, -0.7, -1.2, -0.1];
        let old = [-1.5f32, -0.3, -1.0, -0.9, -1.2, -0.4];
        let reference = [-1.0f32, -0.5, -2.5, -0.2, -1.0, -0.1];
        let adv = [2.0f32, -1.0];
        let t =
            |v: &[f32], s: [usize; 2]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), s), &dev);
        let terms = token_loss(
            t(&logp, [2, 3]),
            t(&old, [2, 3]),
            Some(t(&reference, [2, 3])),
            t(&adv, [2, 1]),
            (0.8, 1.2),
            0.1,
        );
        let got = crate::host(terms.loss).unwrap();
        for i in 0..6 {
            let (pg, k3) = token_terms(logp[i], old[i], reference[i], adv[i / 3], 0.8, 1.2);
            assert!(
                (got[i] - (pg + 0.1 * k3)).abs() < 1e-5,
                "token {i}: {} vs {}",
                got[i],
                pg + 0.1 * k3
            );
        }
    }

    #[test]
    fn a_step_on_a_bare_decoder_trains_and_checks_its_advantages() {
        use siren_core::burn::tensor::Device;
        use siren_core::engine::LoraSpec;
        let device = Device::flex().autodiff();
        let spec = LoraSpec {
            r: 2,
            alpha: 4.0,
            dropout: 0.0,
        };
        let base = siren_core::testkit::tiny_decoder(1, &device).unwrap();
        let mut model = base.add_lora(&spec, |_: &str| true, 1).unwrap().0;
        let mut optim = siren_core::train::TrainingConfig::default().optimizer();
        let settings = StepSettings {
            sampling: Sampling {
                group_size: 2,
                temperature: 1.0,
                top_k: 0,
                top_p: 1.0,
                max_response_tokens: 3,
                generation_batch: 8,
            },
            stops: Stops::default(),
            micro_batch: 2,
            clip: (0.8, 1.2),
            kl_coef: 0.1,
            inner_steps: 2,
            loss_agg: LossAgg::TokenMean,
        };
        let prompts = vec![vec![1, 2, 3], vec![4, 5]];
        let reference = model.valid();
        let mut run = |model: &mut Decoder, adv: &mut dyn FnMut(&[Sample]) -> Result<Vec<f32>>| {
            step(
                Learner {
                    model,
                    optim: &mut optim,
                    reference: Some(reference.clone()),
                    device: &device,
                    pad: 0,
                },
                &prompts,
                &[0, 1],
                &settings,
                (1e-2, 0, 7),
                adv,
            )
        };
        let e = run(&mut model, &mut |s| Ok(vec![0.0; s.len() - 1]))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("3 advantages for 4 samples"), "{e}");
        let before = model.tensors_by_path(true).unwrap();
        let out = run(&mut model, &mut |s| {
            Ok((0..s.len())
                .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
                .collect())
        })
        .unwrap();
        // Two completions per prompt, in prompt order, every one 3 tokens (no stops).
        let owners: Vec<usize> = out.samples.iter().map(|x| x.prompt).collect();
        assert_eq!(owners, [0, 0, 1, 1]);
        assert!(out.samples.iter().all(|x| x.ids.len() == 3));
        assert_eq!(out.tokens, 12);
        assert!(out.loss.is_finite() && out.kl_sum.is_finite() && out.kl_sum >= 0.0);
        let after = model.tensors_by_path(true).unwrap();
        assert!(before != after, "the step must move the adapters");
    }

    #[test]
    fn bad_params_are_refused() {
        assert!(
            Grpo::from_params(GrpoParams {
                group_size: 1,
                ..GrpoParams::default()
            })
            .is_err()
        );
        assert!(
            Grpo::from_params(GrpoParams {
                temperature: 0.0,
                ..GrpoParams::default()
            })
            .is_err()
        );
    }
}
