//! Stage-2 internalizers, registered in the `internalizer` slot (paper §3.2 stage 2, Eq. 12,
//! Figure 4), and the alignment losses of the `alignment-loss` slot ([`losses`]).
//!
//! Every internalizer trains the answer-only input prompt + "\n<think>\n</think>\n<answer>"
//! of the kept CoT examples, starting from the stage-1 weights, on one objective: a weighted
//! sum of three terms at the `<answer>` token q,
//!
//! - **align**: the `alignment-loss` slot between the student's hidden states of layers
//!   `1..=L` at q and the stored teacher states (prompt + "\n" + thinking + "\n" + `<answer>`),
//!   averaged over layers (Eq. 12 with `cosine`);
//! - **kd**: KL(teacher ‖ student) of the next-token distribution at q over the classes
//!   `1`, …, `5` and "any other token" (the teacher's stored from the harvest);
//! - **ce**: cross-entropy of the label's rating token at q.
//!
//! | name | objective | params (defaults) |
//! |---|---|---|
//! | `hidden-align` (SIREN) | align | — |
//! | `ce` | ce | — |
//! | `kd` | kd | — |
//! | `kd-ce` | `kd_weight`·kd + `ce_weight`·ce | `kd_weight = 1`, `ce_weight = 1` |
//! | `ha-ce` | `align_weight`·align + `ce_weight`·ce | `align_weight = 1`, `ce_weight = 1` |
//!
//! Each step logs `loss`, the unweighted terms it uses, and `answer_acc` (the student's most
//! likely rating token equals the label).
#![warn(missing_docs)]

pub mod losses;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use siren_core::burn::tensor::activation::log_softmax;
use siren_core::burn::tensor::{Int, Tensor, TensorData};
use siren_core::engine::{Batch, states_at};
use siren_core::rating::RatingTokens;
use siren_core::train::teacher::{ANSWER_CLASSES, encode_cut, student_text};
use siren_core::train::{Policy, Teacher, accumulated_step, host, run_loop};
use siren_core::traits::{AlignmentLoss, Internalizer, RunCtx, TrainReport};
use siren_core::{CoreError, Plugin, Result};

/// Weights of the three terms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Objective {
    /// Hidden-state alignment.
    pub align: f64,
    /// Distillation of the teacher's answer distribution.
    pub kd: f64,
    /// Cross-entropy of the label.
    pub ce: f64,
}

/// The student inputs (prompt, empty reasoning, `<answer>`) and the label class of every
/// teacher example, after checking the teacher fits the policy (layers, width, rating tokens)
/// and every rating is a whole 1..5.
fn students_and_labels(
    name: &str,
    policy: &Policy,
    teacher: &Teacher,
    ctx: &RunCtx,
) -> Result<(RatingTokens, Vec<Vec<u32>>, Vec<usize>)> {
    let n = teacher.examples.len();
    let spec = &policy.model.spec;
    if teacher.layers != policy.model.layers.len() || teacher.hidden != spec.hidden_size {
        return Err(CoreError::Data(format!(
            "{name}: the teacher in {} has {} layers of width {}, the policy {} of width {}",
            teacher.dir().display(),
            teacher.layers,
            teacher.hidden,
            policy.model.layers.len(),
            spec.hidden_size
        )));
    }
    let rt = RatingTokens::new(&policy.tokenizer, 5)?;
    if rt.ids != teacher.rating_tokens {
        return Err(CoreError::Data(format!(
            "{name}: the teacher's rating tokens {:?} are not the policy's {:?} (another tokenizer?)",
            teacher.rating_tokens, rt.ids
        )));
    }
    let max = ctx.training.max_prompt_tokens;
    let mut students = Vec::with_capacity(n);
    let mut labels = Vec::with_capacity(n);
    for c in &teacher.examples {
        let p = &c.example.prompt;
        students.push(encode_cut(&policy.tokenizer, p, &student_text(p), max)?);
        let r = c.example.rating.round().clamp(1.0, 5.0);
        if (r - c.example.rating).abs() > 1e-6 {
            return Err(CoreError::Data(format!(
                "{name}: example `{}` has rating {}; one-token answers need whole ratings 1..5",
                c.example.id, c.example.rating
            )));
        }
        labels.push(r as usize - 1);
    }
    Ok((rt, students, labels))
}

/// The hash of everything that shapes the training: the method, its objective, `[training]`,
/// and every teacher example's prompt and reasoning.
fn settings_hash(name: &str, obj: &Objective, ctx: &RunCtx, teacher: &Teacher) -> Result<u64> {
    let p = serde_json::to_vec(obj).map_err(|e| CoreError::Numeric(e.to_string()))?;
    let t = serde_json::to_vec(&ctx.training).map_err(|e| CoreError::Numeric(e.to_string()))?;
    let mut parts: Vec<&[u8]> = vec![name.as_bytes(), &p, &t];
    for c in &teacher.examples {
        parts.push(c.example.prompt.as_bytes());
        parts.push(c.thinking.as_bytes());
    }
    Ok(siren_core::hash::fnv1a(parts))
}

/// Trains `policy` on `teacher` with `obj`, under the name `name` (checkpoints, metrics).
pub fn internalize(
    name: &str,
    obj: Objective,
    policy: &mut Policy,
    teacher: &Teacher,
    align: &dyn AlignmentLoss,
    ctx: &RunCtx,
) -> Result<TrainReport> {
    let n = teacher.examples.len();
    let (rt, students, labels) = students_and_labels(name, policy, teacher, ctx)?;
    let hash = settings_hash(name, &obj, ctx, teacher)?;
    let micro = ctx.training.micro_batch;
    let (layers, width) = (teacher.layers, teacher.hidden);
    let pad = policy.pad_id();
    run_loop(name, policy, n, hash, ctx, &mut |policy, optim, input| {
        // Micro-batches of students of similar length: less padding, the same step loss.
        let lens: Vec<usize> = input.indices.iter().map(|&i| students[i].len()).collect();
        let (groups, pad_fraction, _) = siren_core::batching::length_buckets(&lens, micro, true);
        let order: Vec<Vec<usize>> = groups
            .iter()
            .map(|g| g.iter().map(|&j| input.indices[j]).collect())
            .collect();
        let chunks: Vec<&[usize]> = order.iter().map(Vec::as_slice).collect();
        // The loss is the mean over the whole step (every rank's share); the metrics are
        // means over this rank's examples (the ranks' are averaged).
        let total = input.batch.len() as f64;
        let mine = input.indices.len() as f64;
        // Every metric from the start, so that a rank whose share of a short last batch is
        // empty reports the same names as the others.
        let mut sums = BTreeMap::<&str, f64>::from([("ce", 0.0), ("answer_acc", 0.0)]);
        if obj.align > 0.0 {
            sums.insert("align", 0.0);
        }
        if obj.kd > 0.0 {
            sums.insert("kd", 0.0);
        }
        let loss = accumulated_step(
            policy,
            optim,
            input.lr,
            input.step,
            chunks.len(),
            &mut |policy, k| {
                let rows = chunks[k];
                let b = rows.len();
                let device = &policy.device;
                let ids: Vec<Vec<u32>> = rows.iter().map(|&i| students[i].clone()).collect();
                let (hidden, logits) = if obj.align > 0.0 {
                    let st = states_at(&policy.model, &ids, &vec![None; b], pad, device)?;
                    (st.hidden, st.logits)
                } else {
                    let batch = Batch::left_padded(&ids, pad, device)?;
                    let l = policy.model.forward_tail(&batch, None, false, 1).logits;
                    let v = l.dims()[2];
                    (Vec::new(), l.reshape([b, v]))
                };
                let (t_hidden, t_logp) = teacher.rows(rows)?;
                let logp = log_softmax(logits, 1); // [b, V]
                let rating_ids: Vec<i64> = (0..b)
                    .flat_map(|_| rt.ids.iter().map(|&i| i64::from(i)))
                    .collect();
                let idx = Tensor::<2, Int>::from_data(TensorData::new(rating_ids, [b, 5]), device);
                let lp5 = logp.gather(1, idx); // [b, 5]
                let share = b as f64 / total;
                let mut loss: Option<Tensor<1>> = None;
                let mut add = |name: &'static str, term: Tensor<1>, w: f64| -> Result<()> {
                    *sums.entry(name).or_default() +=
                        f64::from(host(term.clone())?[0]) * b as f64 / mine;
                    let t = term.mul_scalar(w * share);
                    loss = Some(match loss.take() {
                        Some(l) => l.add(t),
                        None => t,
                    });
                    Ok(())
                };
                if obj.align > 0.0 {
                    let student = Tensor::stack::<3>(hidden[1..].to_vec(), 0); // [L, b, H]
                    let teacher_h = Tensor::<3>::from_data(
                        TensorData::new(t_hidden, [b, layers, width]),
                        device,
                    )
                    .swap_dims(0, 1);
                    add("align", align.loss(student, teacher_h), obj.align)?;
                }
                if obj.kd > 0.0 {
                    let other = lp5
                        .clone()
                        .exp()
                        .sum_dim(1)
                        .neg()
                        .add_scalar(1.0)
                        .clamp_min(1e-12)
                        .log(); // [b, 1]
                    let s6 = Tensor::cat(vec![lp5.clone(), other], 1);
                    let t6 = Tensor::<2>::from_data(
                        TensorData::new(t_logp, [b, ANSWER_CLASSES]),
                        device,
                    );
                    let kl = t6.clone().exp().mul(t6.sub(s6)).sum_dim(1).mean();
                    add("kd", kl, obj.kd)?;
                }
                let label_idx: Vec<i64> = rows.iter().map(|&i| labels[i] as i64).collect();
                let lab = Tensor::<2, Int>::from_data(TensorData::new(label_idx, [b, 1]), device);
                if obj.ce > 0.0 {
                    add("ce", lp5.clone().gather(1, lab).neg().mean(), obj.ce)?;
                } else {
                    // A metric only: computed on a detached copy, so that nothing outside the
                    // loss stays in the autodiff graph.
                    let ce = lp5.clone().detach().gather(1, lab).neg().mean();
                    *sums.entry("ce").or_default() += f64::from(host(ce)?[0]) * b as f64 / mine;
                }
                let best = lp5
                    .detach()
                    .argmax(1)
                    .try_into_vec_as::<i64>()
                    .map_err(|e| CoreError::Numeric(format!("reading argmax: {e:?}")))?;
                let hits = rows
                    .iter()
                    .zip(&best)
                    .filter(|(i, b)| labels[**i] == **b as usize)
                    .count();
                *sums.entry("answer_acc").or_default() += hits as f64 / mine;
                loss.ok_or_else(|| CoreError::config(name, "every term has weight 0"))
            },
        )?;
        let mut m: BTreeMap<String, f64> =
            sums.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        m.insert("loss".into(), loss);
        m.insert("pad_fraction".into(), pad_fraction);
        Ok(m)
    })
}

fn positive(name: &str, key: &str, w: f64) -> Result<()> {
    if w.is_finite() && w >= 0.0 {
        Ok(())
    } else {
        Err(CoreError::config(
            format!("internalizer.params.{key}"),
            format!("`{name}` weights must be finite and ≥ 0"),
        ))
    }
}

/// Parameters of the single-term internalizers (none).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// Parameters of `kd-ce`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KdCeParams {
    /// Weight of the distillation term.
    pub kd_weight: f64,
    /// Weight of the cross-entropy term.
    pub ce_weight: f64,
}

impl Default for KdCeParams {
    fn default() -> Self {
        Self {
            kd_weight: 1.0,
            ce_weight: 1.0,
        }
    }
}

/// Parameters of `ha-ce`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HaCeParams {
    /// Weight of the hidden-alignment term.
    pub align_weight: f64,
    /// Weight of the cross-entropy term.
    pub ce_weight: f64,
}

impl Default for HaCeParams {
    fn default() -> Self {
        Self {
            align_weight: 1.0,
            ce_weight: 1.0,
        }
    }
}

macro_rules! internalizer {
    ($ty:ident, $name:literal, $summary:literal, $params:ty, |$p:ident| $obj:expr) => {
        #[doc = $summary]
        #[derive(Debug, Clone)]
        pub struct $ty(Objective);

        impl Plugin for $ty {
            type Params = $params;
            const SUMMARY: &'static str = $summary;
            fn from_params($p: $params) -> Result<Self> {
                let o: Objective = $obj;
                for (k, w) in [
                    ("align_weight", o.align),
                    ("kd_weight", o.kd),
                    ("ce_weight", o.ce),
                ] {
                    positive($name, k, w)?;
                }
                if o.align + o.kd + o.ce <= 0.0 {
                    return Err(CoreError::config(
                        "internalizer.params",
                        concat!("`", $name, "` needs a positive weight"),
                    ));
                }
                Ok(Self(o))
            }
        }

        siren_core::register_internalizer!($name, $ty);

        impl Internalizer for $ty {
            fn internalize(
                &self,
                policy: &mut Policy,
                teacher: &Teacher,
                align: &dyn AlignmentLoss,
                ctx: &RunCtx,
            ) -> Result<TrainReport> {
                internalize($name, self.0, policy, teacher, align, ctx)
            }
        }
    };
}

internalizer!(
    HiddenAlign,
    "hidden-align",
    "SIREN: align the answer-only hidden states at <answer> to the CoT teacher's (Eq. 12)",
    NoParams,
    |_p| Objective {
        align: 1.0,
        kd: 0.0,
        ce: 0.0
    }
);
internalizer!(
    Ce,
    "ce",
    "cross-entropy of the rating token after the answer-only input",
    NoParams,
    |_p| Objective {
        align: 0.0,
        kd: 0.0,
        ce: 1.0
    }
);
internalizer!(
    Kd,
    "kd",
    "KL to the CoT teacher's answer distribution at <answer>",
    NoParams,
    |_p| Objective {
        align: 0.0,
        kd: 1.0,
        ce: 0.0
    }
);
internalizer!(
    KdCe,
    "kd-ce",
    "weighted KD + cross-entropy",
    KdCeParams,
    |p| Objective {
        align: 0.0,
        kd: p.kd_weight,
        ce: p.ce_weight
    }
);
internalizer!(
    HaCe,
    "ha-ce",
    "weighted hidden alignment + cross-entropy",
    HaCeParams,
    |p| Objective {
        align: p.align_weight,
        kd: 0.0,
        ce: p.ce_weight
    }
);

#[cfg(test)]
mod tests {
    use siren_core::registry::build;
    use siren_core::traits::Internalizer;

    fn params(s: &str) -> siren_core::config::Params {
        s.parse().unwrap()
    }

    #[test]
    fn weights_are_checked() {
        for name in ["hidden-align", "ce", "kd", "kd-ce", "ha-ce"] {
            assert!(
                build::<dyn Internalizer>(name, &params("")).is_ok(),
                "{name}"
            );
        }
        let e = build::<dyn Internalizer>("kd-ce", &params("kd_weight = -1.0"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("kd_weight"), "{e}");
        let e = build::<dyn Internalizer>("ha-ce", &params("align_weight = 0.0\nce_weight = 0.0"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("positive weight"), "{e}");
        let e = build::<dyn Internalizer>("hidden-align", &params("loss = \"mse\""))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("unknown field"), "{e}");
    }
}
