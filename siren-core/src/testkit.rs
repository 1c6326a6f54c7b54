//! Contract checks for slots, usable by built-in and third-party plugins alike:
//!
//! ```ignore
//! let b = siren_core::registry::build::<dyn RatingBaseline>("my-baseline", &Default::default())?;
//! siren_core::testkit::baseline_contract(b.as_ref())?;
//! ```

use crate::data::{Dataset, Interaction};
use crate::traits::{ComputeDevice, DatasetLoader, RatingBaseline, Retriever};
use crate::{CoreError, Result};

fn fail(what: impl Into<String>) -> CoreError {
    CoreError::Data(format!("contract violated: {}", what.into()))
}

/// A small deterministic dataset: 12 users, 10 items, 8 history ratings per user, a valid item
/// per user, plus one item that nobody rated.
pub fn toy_dataset() -> Dataset {
    let mut ds = Dataset::new("toy");
    for i in 0..11 {
        let id = ds.intern_item(&format!("item{i}"));
        ds.items[id as usize].title = format!("Item {i}");
    }
    for u in 0..12u32 {
        ds.intern_user(&format!("user{u}"));
        for k in 0..9u32 {
            let item = (u + 3 * k) % 10;
            let rating = 1.0 + ((u * 7 + item * 3 + k) % 5) as f32;
            let x = Interaction {
                user: u,
                item,
                rating,
                timestamp: i64::from(k),
            };
            if k < 8 {
                ds.history.push(x);
            } else {
                ds.valid.push(x);
            }
        }
    }
    ds
}

/// Checks the `rating-baseline` contract: predictions finite and in `[1, 5]` for every user
/// and item (including an item and a user absent from the fit set), and determinism for a
/// seed.
pub fn baseline_contract(baseline: &dyn RatingBaseline) -> Result<()> {
    let mut ds = toy_dataset();
    let stranger = ds.intern_user("stranger");
    let fit: Vec<Interaction> = ds.history.clone();
    let a = baseline.fit(&ds, &fit, 7)?;
    let b = baseline.fit(&ds, &fit, 7)?;
    for u in 0..ds.users.len() as u32 {
        for i in 0..ds.items.len() as u32 {
            let p = a.predict(u, i);
            if !(p.is_finite() && (1.0..=5.0).contains(&p)) {
                return Err(fail(format!(
                    "predict({u}, {i}) = {p}, expected a value in [1, 5]"
                )));
            }
            if p != b.predict(u, i) {
                return Err(fail(format!(
                    "predict({u}, {i}) differs between two fits with seed 7"
                )));
            }
        }
    }
    let _ = a.predict(stranger, 10);
    Ok(())
}

/// Checks the `retriever` contract: one finite score per item for every user (including a
/// user and an item absent from the fit set), and the same scores from two fits with one seed.
pub fn retriever_contract(retriever: &dyn Retriever) -> Result<()> {
    let mut ds = toy_dataset();
    let stranger = ds.intern_user("stranger");
    let fit: Vec<Interaction> = ds.history.clone();
    let a = retriever.fit(&ds, &fit, 7)?;
    let b = retriever.fit(&ds, &fit, 7)?;
    let n = ds.items.len();
    let (mut sa, mut sb) = (vec![f32::NAN; n], vec![f32::NAN; n]);
    for u in 0..ds.users.len() as u32 {
        a.scores(u, &mut sa);
        b.scores(u, &mut sb);
        if let Some(i) = sa.iter().position(|s| !s.is_finite()) {
            return Err(fail(format!(
                "scores({u})[{i}] = {}, expected a finite score",
                sa[i]
            )));
        }
        if sa.iter().zip(&sb).any(|(x, y)| x.to_bits() != y.to_bits()) {
            return Err(fail(format!(
                "scores({u}) differ between two fits with seed 7"
            )));
        }
    }
    a.scores(stranger, &mut sa);
    if sa.iter().any(|s| !s.is_finite()) {
        return Err(fail(
            "a user absent from the fit set got a non-finite score",
        ));
    }
    Ok(())
}

/// Checks the `dataset` contract on a loaded dataset.
pub fn dataset_contract(loader: &dyn DatasetLoader) -> Result<Dataset> {
    let ds = loader.load()?;
    if ds.history.is_empty() || ds.valid.is_empty() {
        return Err(fail("history and valid must be non-empty"));
    }
    let (nu, ni) = (ds.users.len() as u32, ds.items.len() as u32);
    for x in ds
        .history
        .iter()
        .chain(&ds.train)
        .chain(&ds.valid)
        .chain(&ds.test)
    {
        if x.user >= nu || x.item >= ni {
            return Err(fail(format!(
                "interaction {x:?} indexes outside the catalog"
            )));
        }
        if !(1.0..=5.0).contains(&x.rating) {
            return Err(fail(format!("rating {} outside [1, 5]", x.rating)));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for x in &ds.valid {
        if !seen.insert(x.user) {
            return Err(fail(format!(
                "user {} has two valid interactions",
                ds.users[x.user as usize]
            )));
        }
    }
    Ok(ds)
}

/// Checks the `device` contract: the device opens and computes a 2×2 matmul correctly.
pub fn device_contract(device: &dyn ComputeDevice) -> Result<()> {
    use burn::tensor::Tensor;
    let d = device.open()?;
    let a = Tensor::<2>::from_floats([[1.0, 2.0], [3.0, 4.0]], &d);
    let b = Tensor::<2>::from_floats([[5.0, 6.0], [7.0, 8.0]], &d);
    let got: Vec<f32> = a
        .matmul(b)
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| fail(format!("reading back from {}: {e:?}", device.label())))?;
    if got != [19.0, 22.0, 43.0, 50.0] {
        return Err(fail(format!(
            "{} computed {got:?} for a known matmul",
            device.label()
        )));
    }
    Ok(())
}

/// `n_blobs` well-separated Gaussian-like blobs of `per_blob` points in `dim` dimensions
/// (deterministic), with the blob of each point.
pub fn blobs(
    n_blobs: usize,
    per_blob: usize,
    dim: usize,
    seed: u64,
) -> (crate::traits::Embeddings, Vec<usize>) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let centers: Vec<Vec<f32>> = (0..n_blobs)
        .map(|_| (0..dim).map(|_| rng.random_range(-10.0..10.0)).collect())
        .collect();
    let mut data = Vec::with_capacity(n_blobs * per_blob * dim);
    let mut label = Vec::with_capacity(n_blobs * per_blob);
    for k in 0..per_blob * n_blobs {
        let b = k % n_blobs;
        for c in &centers[b] {
            data.push(c + rng.random_range(-0.5..0.5));
        }
        label.push(b);
    }
    (
        crate::traits::Embeddings {
            n: n_blobs * per_blob,
            dim,
            data,
        },
        label,
    )
}

/// Checks the `topic-clusterer` contract on separated blobs: `k` centers, every item assigned,
/// each blob in one topic, `nearest` lists of at most `m` items sorted by distance to the
/// center, the same result for the same seed, and an error (not a panic) for k > n.
pub fn clusterer_contract(c: &dyn crate::traits::TopicClusterer) -> Result<()> {
    let (items, label) = blobs(4, 25, 8, 7);
    let (k, m) = (4, 6);
    let t = c.fit(&items, k, m, 1)?;
    if t.centers.n != k || t.centers.dim != items.dim {
        return Err(fail(format!(
            "{} × {} centers for k = {k}",
            t.centers.n, t.centers.dim
        )));
    }
    if t.assignment.len() != items.n || t.assignment.iter().any(|&a| a >= k) {
        return Err(fail("every item needs a topic index below k"));
    }
    let mut topic_of_blob = [usize::MAX; 4];
    for (i, &a) in t.assignment.iter().enumerate() {
        let slot = &mut topic_of_blob[label[i]];
        if *slot == usize::MAX {
            *slot = a;
        } else if *slot != a {
            return Err(fail(format!(
                "blob {} split across topics {} and {a}",
                label[i], *slot
            )));
        }
    }
    if t.nearest.len() != k {
        return Err(fail(format!(
            "{} nearest lists for k = {k}",
            t.nearest.len()
        )));
    }
    for (topic, list) in t.nearest.iter().enumerate() {
        if list.is_empty() || list.len() > m {
            return Err(fail(format!(
                "topic {topic}: {} nearest items (1..={m})",
                list.len()
            )));
        }
        let d: Vec<f32> = list
            .iter()
            .map(|&i| {
                items
                    .row(i)
                    .iter()
                    .zip(t.centers.row(topic))
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum()
            })
            .collect();
        if d.windows(2).any(|w| w[0] > w[1] + 1e-4) {
            return Err(fail(format!(
                "topic {topic}: nearest items not sorted by distance"
            )));
        }
    }
    if c.fit(&items, k, m, 1)? != t {
        return Err(fail("two fits with the same seed differ"));
    }
    let few = crate::traits::Embeddings {
        n: 2,
        dim: 8,
        data: items.data[..16].to_vec(),
    };
    if c.fit(&few, 3, m, 1).is_ok() {
        return Err(fail("3 topics from 2 items must be an error"));
    }
    Ok(())
}

/// Checks the `sketch-builder` contract on random histories: no topic both liked and
/// disliked, topics without items absent, supports and means right, deterministic.
pub fn sketch_contract(b: &dyn crate::traits::SketchBuilder) -> Result<()> {
    use crate::traits::TopicRating;
    use rand::{Rng, SeedableRng};
    let names: Vec<String> = (0..6).map(|t| format!("T{t}")).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    for _ in 0..50 {
        let n = rng.random_range(0..20);
        let h: Vec<TopicRating> = (0..n)
            .map(|_| TopicRating {
                topic: rng.random_range(0..5), // topic 5 never has items
                rating: rng.random_range(1..=5) as f32,
            })
            .collect();
        let s = b.build(&h, &names)?;
        if s != b.build(&h, &names)? {
            return Err(fail("same history, different sketches"));
        }
        for like in &s.likes {
            if s.dislikes.iter().any(|d| d.topic == like.topic) {
                return Err(fail(format!(
                    "topic {} both liked and disliked",
                    like.topic
                )));
            }
        }
        for st in s.likes.iter().chain(&s.dislikes) {
            let r: Vec<f32> = h
                .iter()
                .filter(|x| x.topic == st.topic)
                .map(|x| x.rating)
                .collect();
            if r.is_empty() || st.topic == 5 {
                return Err(fail(format!(
                    "topic {} has no items but is in the sketch",
                    st.topic
                )));
            }
            let mean = r.iter().sum::<f32>() / r.len() as f32;
            if st.support != r.len()
                || (st.mean_rating - mean).abs() > 1e-5
                || st.name != names[st.topic]
            {
                return Err(fail(format!(
                    "topic {}: wrong support, mean or name",
                    st.topic
                )));
            }
        }
    }
    Ok(())
}

/// Checks the `reward` contract: finite, deterministic scores for well-formed, malformed and
/// hostile completions (unicode, huge numbers, nested tags), and a well-formed exact answer
/// scoring at least as much as a malformed or wrong one.
pub fn reward_contract(r: &dyn crate::traits::Reward) -> Result<()> {
    let cases = [
        "<think>ok</think><answer>4</answer>",
        "<think>ok</think><answer>1</answer>",
        "<answer>4</answer>",
        "",
        "<think></think><answer></answer>",
        "<think>é漢字🙂</think><answer>4</answer>",
        "<answer>1e40</answer>",
        "<answer>-1e40</answer>",
        "<answer><answer>4</answer></answer>",
        "</answer><answer>",
        "<think>unclosed",
        "<answer>   3.7   </answer>",
    ];
    for c in cases {
        for truth in [1.0, 3.0, 5.0] {
            let p = r.score(c, truth);
            if !p.total().is_finite() || p != r.score(c, truth) {
                return Err(fail(format!(
                    "score of {c:?} is not finite or not deterministic"
                )));
            }
        }
    }
    let good = r.score(cases[0], 4.0).total();
    for bad in [cases[1], cases[2], cases[3]] {
        if r.score(bad, 4.0).total() > good {
            return Err(fail(format!(
                "{bad:?} scores above a well-formed exact answer"
            )));
        }
    }
    Ok(())
}

pub use siren_engine::testkit::{
    TINY_VOCAB, tiny_decoder, tiny_tokenizer, tiny_tokenizer_json, write_tiny_model,
};
