//! `device-check` (`benchmarks/src/bin/device-check.rs`): the SIREN-rs side of
//! `scripts/device-check.sh`. On one device and one
//! model folder prepared by `scripts/device_check.py` (a randomly initialised model of a real
//! shape written by transformers, `inputs.safetensors` with the token ids and transformers'
//! reference outputs, `plan.json` with the sizes), it measures what the Python side measures
//! for transformers, with the same inputs and the same protocol:
//!
//! - `parity`: logits and every hidden state (HF `output_hidden_states`) of two left-padded
//!   sequences in f32, against transformers', at the real positions: max |Δ| and max |Δ| over
//!   max |reference|, and the share of positions whose argmax agrees;
//! - `speed`: answer-only latency (one forward of `batch × prompt_tokens`, next-token logits of
//!   the last position read back) and greedy CoT tokens/s (`cot_tokens` new tokens, no early
//!   stop) at each batch size, and the CoT/AO time ratio at `reason_tokens` reasoning tokens;
//! - `grpo`: one GRPO step with a LoRA policy, through the `grpo` trainer's own step
//!   ([`siren_trainers::grpo::step`]): sample `group` completions of `response_tokens` per
//!   prompt (T = 1, no early stop), reference log-probs without gradient, then the policy's
//!   log-probs with gradient, the clipped token loss with the k3 KL term (the given
//!   advantages; every token weighs the same, as all completions have the same length),
//!   backward and the trainer's optimizer (`[training]` defaults: AdamW, global clip 1);
//! - `align`: one hidden-align step: teacher hidden states at the answer position after the
//!   reasoning (no gradient), the student's answer-only forward with gradient, the `cosine`
//!   alignment loss over layers plus cross-entropy on the five rating tokens, backward and AdamW.
//!
//! It prints (or writes with `--out`) one JSON object; the script puts it next to
//! transformers' in one table.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::{Value, json};
use siren_core::burn::module::Module;
use siren_core::burn::optim::{AdamWConfig, GradientsParams};
use siren_core::burn::tensor::activation::log_softmax;
use siren_core::burn::tensor::{DType, Device, FloatDType, Int, Tensor, TensorData};
use siren_core::engine::{Batch, Decoder, GenerationConfig, LoraSpec, generate, states_at};
use siren_core::loading::load_hf_dir;
use siren_core::registry;
use siren_core::train::TrainingConfig;
use siren_core::traits::AlignmentLoss;
// Link the plugins (backbones, losses) and the devices that `run` builds by name.
use {siren_backends as _, siren_plugins as _};

/// The arguments of `device-check`.
#[derive(Debug, clap::Parser)]
#[command(
    name = "device-check",
    version,
    about = "Measure the engine on one device against transformers' reference outputs for a \
             model folder that `scripts/device-check.sh` prepares: parity, answer-only latency, \
             CoT tokens/s, one GRPO step, one hidden-align step (one JSON object)."
)]
pub struct Args {
    /// The prepared folder: config.json, model.safetensors, inputs.safetensors, plan.json.
    #[arg(long)]
    pub model: PathBuf,
    /// Compute device: tch-cpu, tch-cuda:N, flex, wgpu, auto.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Phases, comma-separated: parity, speed, grpo, align.
    #[arg(long, value_delimiter = ',', default_value = "parity,speed,grpo,align")]
    pub only: Vec<String>,
    /// Write the JSON to this file instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Options of `device-check`.
#[derive(Debug, Clone)]
pub struct Options {
    /// The prepared model folder.
    pub model: PathBuf,
    /// Device spec.
    pub device: String,
    /// Phases to run: parity, speed, grpo, align.
    pub only: Vec<String>,
    /// Where to write the JSON (stdout when absent).
    pub out: Option<PathBuf>,
}

/// `plan.json`: the sizes both implementations use.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Plan {
    /// Float type of the speed and training phases (parity is always f32).
    dtype: String,
    batches: Vec<usize>,
    cot_tokens: usize,
    reason_tokens: usize,
    ratio_batches: Vec<usize>,
    repeats: usize,
    pad_id: u32,
    grpo: GrpoPlan,
    align: AlignPlan,
    /// Written by the Python side for its own use.
    #[serde(default)]
    #[allow(dead_code)]
    prompt_tokens: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct GrpoPlan {
    group: usize,
    response_tokens: usize,
    lora_r: usize,
    lr: f64,
    clip: f64,
    beta: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlignPlan {
    lora_r: usize,
    lr: f64,
}

const PHASES: [&str; 4] = ["parity", "speed", "grpo", "align"];

/// Parses a `device-check` command line (the program name first) and runs it.
pub fn run_args<I, T>(args: I) -> anyhow::Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::Parser as _;
    let Args {
        model,
        device,
        only,
        out,
    } = Args::try_parse_from(args)?;
    siren_core::registry::check_all()?;
    run(&Options {
        model,
        device,
        only,
        out,
    })
}

/// The tensors of `inputs.safetensors`, read on the host.
struct Inputs {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl Inputs {
    fn open(path: &Path) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        safetensors::SafeTensors::deserialize(&bytes)
            .with_context(|| format!("{}: not a safetensors file", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            bytes,
        })
    }

    fn view(&self, name: &str, dtype: safetensors::Dtype) -> anyhow::Result<(Vec<usize>, &[u8])> {
        let st = safetensors::SafeTensors::deserialize(&self.bytes)?;
        let v = st
            .tensor(name)
            .with_context(|| format!("{}: no tensor `{name}`", self.path.display()))?;
        if v.dtype() != dtype {
            bail!(
                "{}: tensor `{name}` is {:?}, expected {dtype:?}",
                self.path.display(),
                v.dtype()
            );
        }
        Ok((v.shape().to_vec(), v.data()))
    }

    fn i64s(&self, name: &str) -> anyhow::Result<(Vec<usize>, Vec<i64>)> {
        let (shape, b) = self.view(name, safetensors::Dtype::I64)?;
        let v = b
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        Ok((shape, v))
    }

    fn f32s(&self, name: &str) -> anyhow::Result<(Vec<usize>, Vec<f32>)> {
        let (shape, b) = self.view(name, safetensors::Dtype::F32)?;
        let v = b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        Ok((shape, v))
    }

    /// A `[rows, cols]` I64 tensor as token rows.
    fn rows(&self, name: &str) -> anyhow::Result<Vec<Vec<u32>>> {
        let (shape, v) = self.i64s(name)?;
        let [_, cols] = shape[..] else {
            bail!(
                "{}: tensor `{name}` has shape {shape:?}, expected [rows, tokens]",
                self.path.display()
            );
        };
        v.chunks(cols.max(1))
            .map(|r| {
                r.iter()
                    .map(|&t| {
                        u32::try_from(t).with_context(|| {
                            format!("{}: `{name}` holds token id {t}", self.path.display())
                        })
                    })
                    .collect()
            })
            .collect()
    }
}

fn load(dir: &Path, device: &Device, dtype: FloatDType) -> anyhow::Result<Decoder> {
    let m = load_hf_dir(dir, None, device)?;
    Ok(if dtype == FloatDType::F32 {
        m
    } else {
        m.to_float_dtype(dtype)?
    })
}

fn sync(device: &Device) -> anyhow::Result<()> {
    device
        .sync()
        .map_err(|e| anyhow::anyhow!("device sync: {e:?}"))
}

/// Median seconds of `repeats` runs of `f` after one warm-up run.
fn median_s(repeats: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    f()?;
    let mut v = Vec::with_capacity(repeats.max(1));
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        f()?;
        v.push(t.elapsed().as_secs_f64());
    }
    v.sort_by(f64::total_cmp);
    Ok(v[v.len() / 2])
}

fn host(t: Tensor<1>) -> anyhow::Result<f32> {
    Ok(t.try_into_vec_as::<f32>()
        .map_err(|e| anyhow::anyhow!("reading a scalar: {e:?}"))?[0])
}

fn peak_rss_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = s
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

fn lora(model: Decoder, r: usize) -> anyhow::Result<Decoder> {
    let spec = LoraSpec {
        r,
        alpha: 2.0 * r as f64,
        dropout: 0.0,
    };
    Ok(model.add_lora(&spec, |_| true, 1)?.0)
}

/// Runs the phases of `o.only` and prints or writes the JSON report.
pub fn run(o: &Options) -> anyhow::Result<()> {
    for p in &o.only {
        if !PHASES.contains(&p.as_str()) {
            bail!("--only: unknown phase `{p}` (expected one of {PHASES:?})");
        }
    }
    let plan_path = o.model.join("plan.json");
    let text = std::fs::read_to_string(&plan_path)
        .with_context(|| format!("reading {}", plan_path.display()))?;
    let plan: Plan = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a device-check plan", plan_path.display()))?;
    let inputs = Inputs::open(&o.model.join("inputs.safetensors"))?;
    let dtype = siren_core::device::float_dtype(&plan.dtype, "plan.json: dtype")?;
    let (device, label) = siren_core::device::open(&o.device)?;
    let want = |s: &str| o.only.iter().any(|p| p == s);
    let phase = || Phase {
        dir: &o.model,
        inputs: &inputs,
        plan: &plan,
        device: &device,
        dtype,
    };
    let mut report = serde_json::Map::new();
    report.insert("impl".into(), json!("siren-rs"));
    report.insert("version".into(), json!(env!("CARGO_PKG_VERSION")));
    report.insert("device".into(), json!(label));
    report.insert("dtype".into(), json!(plan.dtype));
    if want("parity") {
        eprintln!("device-check: parity (f32)");
        report.insert("parity".into(), parity(&o.model, &inputs, &plan, &device)?);
    }
    if want("speed") {
        let t = Instant::now();
        let model = load(&o.model, &device, dtype)?;
        sync(&device)?;
        report.insert("load_s".into(), json!(t.elapsed().as_secs_f64()));
        eprintln!(
            "device-check: answer-only latency and CoT tokens/s ({})",
            plan.dtype
        );
        report.insert("speed".into(), speed(&model, &inputs, &plan, &device)?);
    }
    if want("grpo") {
        eprintln!("device-check: one GRPO step");
        report.insert("grpo".into(), grpo(&phase())?);
    }
    if want("align") {
        eprintln!("device-check: one hidden-align step");
        report.insert("align".into(), align(&phase())?);
    }
    report.insert("peak_rss_mb".into(), json!(peak_rss_mb()));
    let text = serde_json::to_string(&Value::Object(report))?;
    match &o.out {
        Some(p) => {
            std::fs::write(p, text + "\n").with_context(|| format!("writing {}", p.display()))?
        }
        None => println!("{text}"),
    }
    Ok(())
}

/// Max |a − b| and max |b| over the pairs; a NaN or infinity on either side makes the
/// difference infinite (`f64::max` would silently skip a NaN).
fn max_diff(pairs: impl Iterator<Item = (f32, f32)>) -> (f64, f64) {
    pairs.fold((0.0f64, 0.0f64), |(d, m), (a, b)| {
        let x = f64::from((a - b).abs());
        let x = if x.is_finite() { x } else { f64::INFINITY };
        (d.max(x), m.max(f64::from(b.abs())))
    })
}

fn parity(dir: &Path, inputs: &Inputs, plan: &Plan, device: &Device) -> anyhow::Result<Value> {
    let model = load(dir, device, FloatDType::F32)?;
    let padded = inputs.rows("parity_ids")?;
    let (_, lens) = inputs.i64s("parity_len")?;
    let (lshape, ref_logits) = inputs.f32s("parity_logits")?;
    let (hshape, ref_hidden) = inputs.f32s("parity_hidden")?;
    let (b, s) = (padded.len(), padded.first().map_or(0, Vec::len));
    if lens.len() != b || lshape[..2] != [b, s] || hshape.len() != 4 || hshape[1..3] != [b, s] {
        bail!(
            "{}: parity tensors disagree in shape (ids [{b}, {s}], lengths {}, logits {lshape:?}, hidden {hshape:?})",
            inputs.path.display(),
            lens.len()
        );
    }
    let (v, layers, h) = (lshape[2], hshape[0], hshape[3]);
    // The real tokens of each left-padded row.
    let seqs: Vec<Vec<u32>> = padded
        .iter()
        .zip(&lens)
        .map(|(row, &n)| row[s - n as usize..].to_vec())
        .collect();
    let batch = Batch::left_padded(&seqs, plan.pad_id, device)?;
    let out = model.forward(&batch, None, true);
    if out.hidden_states.len() != layers {
        bail!(
            "parity: the engine gives {} hidden states, transformers {layers}",
            out.hidden_states.len()
        );
    }
    let logits = out
        .logits
        .try_into_vec_as::<f32>()
        .map_err(|e| anyhow::anyhow!("reading logits: {e:?}"))?;
    let real = |i: usize, t: usize| t >= s - lens[i] as usize;
    let (ld, lm) = max_diff((0..b).flat_map(|i| {
        let (logits, ref_logits) = (&logits, &ref_logits);
        (0..s).filter(move |&t| real(i, t)).flat_map(move |t| {
            let o = (i * s + t) * v;
            (0..v).map(move |k| (logits[o + k], ref_logits[o + k]))
        })
    }));
    let argmax = |x: &[f32]| {
        x.iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(k, _)| k)
    };
    let (mut agree, mut positions) = (0usize, 0usize);
    for i in 0..b {
        for t in (0..s).filter(|&t| real(i, t)) {
            let o = (i * s + t) * v;
            positions += 1;
            agree += usize::from(argmax(&logits[o..o + v]) == argmax(&ref_logits[o..o + v]));
        }
    }
    let mut per_layer = Vec::with_capacity(layers);
    let (mut hd, mut hm) = (0.0f64, 0.0f64);
    for (l, t) in out.hidden_states.into_iter().enumerate() {
        let ours = t
            .try_into_vec_as::<f32>()
            .map_err(|e| anyhow::anyhow!("reading hidden state {l}: {e:?}"))?;
        let theirs = &ref_hidden[l * b * s * h..(l + 1) * b * s * h];
        let (d, m) = max_diff((0..b).flat_map(|i| {
            let (ours, theirs) = (&ours, theirs);
            (0..s).filter(move |&t| real(i, t)).flat_map(move |t| {
                let o = (i * s + t) * h;
                (0..h).map(move |k| (ours[o + k], theirs[o + k]))
            })
        }));
        per_layer.push(d);
        hd = hd.max(d);
        hm = hm.max(m);
    }
    Ok(json!({
        "sequences": b, "tokens": lens.iter().sum::<i64>(), "layers": layers,
        "logits_max_abs": ld, "logits_max_rel": ld / lm.max(1e-30),
        "hidden_max_abs": hd, "hidden_max_rel": hd / hm.max(1e-30),
        "hidden_max_abs_per_layer": per_layer,
        "argmax_agree": agree as f64 / positions.max(1) as f64,
    }))
}

fn greedy(n: usize, pad_id: u32) -> GenerationConfig {
    GenerationConfig {
        max_new_tokens: n,
        temperature: 0.0,
        stop_tokens: Vec::new(),
        pad_id,
        ..GenerationConfig::default()
    }
}

fn speed(model: &Decoder, inputs: &Inputs, plan: &Plan, device: &Device) -> anyhow::Result<Value> {
    let prompts = inputs.rows("prompts")?;
    let ao_once = |b: usize| -> anyhow::Result<()> {
        let batch = Batch::left_padded(&prompts[..b], plan.pad_id, device)?;
        let logits = model.forward_tail(&batch, None, false, 1).logits;
        logits
            .try_into_vec_as::<f32>()
            .map_err(|e| anyhow::anyhow!("reading logits: {e:?}"))?;
        Ok(())
    };
    let cot_once = |b: usize, n: usize| -> anyhow::Result<()> {
        let out = generate(model, &prompts[..b], &greedy(n, plan.pad_id), device)?;
        if out.iter().any(|o| o.len() != n) {
            bail!("generation stopped before {n} tokens");
        }
        Ok(())
    };
    let mut ao = Vec::new();
    let mut cot = Vec::new();
    let mut ao_s = std::collections::BTreeMap::new();
    for &b in &plan.batches {
        if b == 0 || b > prompts.len() {
            bail!(
                "plan.json: batch {b} is not in 1..={} (the prompts in inputs.safetensors)",
                prompts.len()
            );
        }
        let s = median_s(plan.repeats, || ao_once(b))?;
        eprintln!("  AO batch {b}: {:.1} ms", s * 1e3);
        ao_s.insert(b, s);
        ao.push(json!({"batch": b, "ms": s * 1e3, "sequences_per_s": b as f64 / s}));
        let c = median_s(plan.repeats, || cot_once(b, plan.cot_tokens))?;
        let tok_s = (b * plan.cot_tokens) as f64 / c;
        eprintln!("  CoT batch {b}: {tok_s:.1} tokens/s");
        cot.push(json!({"batch": b, "new_tokens": plan.cot_tokens, "s": c, "tokens_per_s": tok_s}));
    }
    let mut ratio = Vec::new();
    for &b in &plan.ratio_batches {
        let a = match ao_s.get(&b) {
            Some(&a) => a,
            None => median_s(plan.repeats, || ao_once(b))?,
        };
        // One timed run: a reasoning-length generation is long enough on its own.
        let t = Instant::now();
        cot_once(b, plan.reason_tokens)?;
        let c = t.elapsed().as_secs_f64();
        eprintln!(
            "  CoT/AO at {} tokens, batch {b}: {:.0}×",
            plan.reason_tokens,
            c / a
        );
        ratio.push(json!({"batch": b, "reason_tokens": plan.reason_tokens, "cot_s": c, "ao_s": a, "ratio": c / a}));
    }
    Ok(
        json!({"prompt_tokens": prompts.first().map_or(0, Vec::len), "ao": ao, "cot": cot, "ratio": ratio}),
    )
}

/// What a training phase works on: the prepared folder, its inputs and plan, the device and
/// the float type of training.
struct Phase<'a> {
    dir: &'a Path,
    inputs: &'a Inputs,
    plan: &'a Plan,
    device: &'a Device,
    dtype: FloatDType,
}

fn grpo(c: &Phase<'_>) -> anyhow::Result<Value> {
    use siren_trainers::grpo::{LossAgg, StepSettings};
    let (dir, inputs, plan, device, dtype) = (c.dir, c.inputs, c.plan, c.device, c.dtype);
    let p = &plan.grpo;
    let prompts = inputs.rows("grpo_prompts")?;
    let (_, adv) = inputs.f32s("grpo_adv")?;
    let g = p.group;
    let n = prompts.len() * g;
    if adv.len() != n {
        bail!(
            "{}: grpo_adv has {} values, expected prompts × group = {n}",
            inputs.path.display(),
            adv.len()
        );
    }
    let train_dev = device.clone().autodiff();
    let mut policy = lora(load(dir, &train_dev, dtype)?, p.lora_r)?;
    // The reference: the weights before training (the LoRA update starts at zero).
    let reference = policy.valid();
    let training = TrainingConfig {
        lr: p.lr,
        ..TrainingConfig::default()
    };
    let mut optim = training.optimizer();
    // One micro-batch, one update, every completion `response_tokens` long: the step
    // transformers' harness takes.
    let settings = StepSettings {
        sampling: siren_trainers::Sampling {
            group_size: g,
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            max_response_tokens: p.response_tokens,
            generation_batch: n,
        },
        stops: siren_trainers::Stops::default(),
        micro_batch: n,
        clip: (1.0 - p.clip, 1.0 + p.clip),
        kl_coef: p.beta,
        inner_steps: 1,
        loss_agg: LossAgg::TokenMean,
    };
    let indices: Vec<usize> = (0..prompts.len()).collect();
    let (mut sampling, mut reference_s, mut update, mut total, mut value) =
        (0.0, 0.0, 0.0, 0.0, 0.0);
    // A warm-up step, then the timed one.
    for k in 0..2 {
        let t0 = Instant::now();
        let out = siren_trainers::grpo::step(
            siren_trainers::grpo::Learner {
                model: &mut policy,
                optim: &mut optim,
                reference: Some(reference.clone()),
                device: &train_dev,
                pad: plan.pad_id,
            },
            &prompts,
            &indices,
            &settings,
            (p.lr, k, 7),
            &mut |_| Ok(adv.clone()),
        )?;
        sync(&train_dev)?;
        total = t0.elapsed().as_secs_f64();
        (sampling, reference_s, value) = (out.sampling_s, out.reference_s, out.loss);
        // Work the device still had queued when the step returned belongs to the update.
        update = total - sampling - reference_s;
    }
    eprintln!("  GRPO step: {total:.2} s");
    Ok(json!({
        "prompts": prompts.len(), "group": g, "prompt_tokens": prompts.first().map_or(0, Vec::len),
        "response_tokens": p.response_tokens, "lora_r": p.lora_r,
        "sampling_s": sampling, "reference_s": reference_s, "update_s": update, "step_s": total,
        "loss": value,
    }))
}

fn align(c: &Phase<'_>) -> anyhow::Result<Value> {
    let (dir, inputs, plan, device, dtype) = (c.dir, c.inputs, c.plan, c.device, c.dtype);
    let a = &plan.align;
    let teacher_ids = inputs.rows("align_teacher")?;
    let student_ids = inputs.rows("align_student")?;
    let (_, answer) = inputs.i64s("answer_ids")?;
    let (_, labels) = inputs.i64s("align_labels")?;
    let b = student_ids.len();
    if teacher_ids.len() != b || labels.len() != b || answer.len() != 5 {
        bail!(
            "{}: align tensors disagree ({} teacher rows, {b} student rows, {} labels, {} answer ids; expected 5)",
            inputs.path.display(),
            teacher_ids.len(),
            labels.len(),
            answer.len()
        );
    }
    let loss_fn = registry::build::<dyn AlignmentLoss>("cosine", &Default::default())?;
    let train_dev = device.clone().autodiff();
    let policy = lora(load(dir, &train_dev, dtype)?, a.lora_r)?;
    let mut optim = AdamWConfig::new().init();
    let mut policy = policy;
    let secs = |a: Instant, b: Instant| (b - a).as_secs_f64();
    let (mut teacher_s, mut student_s, mut total, mut value) = (0.0, 0.0, 0.0, 0.0);
    // A warm-up step, then the timed one.
    for _ in 0..2 {
        let t0 = Instant::now();
        // The teacher: the same weights reading the reasoning, no gradient.
        let t = states_at(
            &policy.valid(),
            &teacher_ids,
            &vec![None; b],
            plan.pad_id,
            device,
        )?;
        let teacher = Tensor::stack::<3>(t.hidden[1..].to_vec(), 0); // [L, b, H]
        let shape = teacher.dims();
        let teacher_host = teacher
            .cast(DType::F32)
            .try_into_vec_as::<f32>()
            .map_err(|e| anyhow::anyhow!("reading teacher states: {e:?}"))?;
        let t1 = Instant::now();
        let s = states_at(
            &policy,
            &student_ids,
            &vec![None; b],
            plan.pad_id,
            &train_dev,
        )?;
        let student = Tensor::stack::<3>(s.hidden[1..].to_vec(), 0);
        let teacher = Tensor::<3>::from_data(TensorData::new(teacher_host, shape), &train_dev)
            .cast(student.dtype());
        let align = loss_fn.loss(student, teacher);
        let idx: Vec<i64> = (0..b).flat_map(|_| answer.iter().copied()).collect();
        let idx = Tensor::<2, Int>::from_data(TensorData::new(idx, [b, 5]), &train_dev);
        let lp5 = log_softmax(log_softmax(s.logits, 1).gather(1, idx), 1);
        let lab = Tensor::<2, Int>::from_data(TensorData::new(labels.clone(), [b, 1]), &train_dev);
        let ce = lp5.gather(1, lab).neg().mean();
        let loss = align.add(ce);
        value = host(loss.clone().detach())?;
        let grads = GradientsParams::from_grads(loss.backward(), &policy);
        policy = optim.step(a.lr, policy, grads);
        sync(&train_dev)?;
        let t2 = Instant::now();
        (teacher_s, student_s, total) = (secs(t0, t1), secs(t1, t2), secs(t0, t2));
    }
    eprintln!("  hidden-align step: {total:.2} s");
    Ok(json!({
        "batch": b, "teacher_tokens": teacher_ids.first().map_or(0, Vec::len),
        "student_tokens": student_ids.first().map_or(0, Vec::len), "lora_r": a.lora_r,
        "teacher_s": teacher_s, "student_update_s": student_s, "step_s": total, "loss": value,
    }))
}

#[cfg(test)]
mod tests {
    use super::max_diff;

    #[test]
    fn a_nan_or_infinity_is_an_infinite_difference() {
        let d = |v: Vec<(f32, f32)>| max_diff(v.into_iter()).0;
        assert_eq!(d(vec![(1.0, 1.5), (2.0, 2.0)]), 0.5);
        assert_eq!(d(vec![(f32::NAN, 1.0), (2.0, 2.0)]), f64::INFINITY);
        assert_eq!(d(vec![(1.0, 1.0), (2.0, f32::NAN)]), f64::INFINITY);
        assert_eq!(d(vec![(f32::INFINITY, f32::INFINITY)]), f64::INFINITY);
    }
}
