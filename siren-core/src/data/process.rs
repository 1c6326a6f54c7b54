//! Deterministic processing of raw interactions: the iterative k-core filter, stratified
//! positive/negative balancing and the leave-last-out split.

use std::collections::HashMap;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::{Dataset, Interaction};
use crate::{CoreError, Result};

/// Ratings at or above this are positive (liked) in balancing.
pub const POSITIVE_THRESHOLD: f32 = 4.0;

/// Keeps only interactions whose user and item both have at least `k` interactions, repeating
/// until no more are removed. `k <= 1` keeps everything. Order is preserved.
pub fn k_core(mut interactions: Vec<Interaction>, k: usize) -> Vec<Interaction> {
    if k <= 1 {
        return interactions;
    }
    loop {
        let mut per_user: HashMap<u32, usize> = HashMap::new();
        let mut per_item: HashMap<u32, usize> = HashMap::new();
        for x in &interactions {
            *per_user.entry(x.user).or_default() += 1;
            *per_item.entry(x.item).or_default() += 1;
        }
        let before = interactions.len();
        interactions.retain(|x| per_user[&x.user] >= k && per_item[&x.item] >= k);
        if interactions.len() == before {
            return interactions;
        }
    }
}

/// Stratified balancing of positives (rating ≥ 4) against negatives (≤ 3): the larger class is
/// sampled without replacement, with `seed`, down to `ratio` times the smaller one (`ratio`
/// ≥ 1; 1 gives equal classes). The smaller class is kept whole and the original order of the
/// kept interactions is preserved.
pub fn balance(interactions: Vec<Interaction>, ratio: f64, seed: u64) -> Result<Vec<Interaction>> {
    if !(ratio.is_finite() && ratio >= 1.0) {
        return Err(CoreError::config(
            "balance_ratio",
            format!("must be a finite number ≥ 1, got {ratio}"),
        ));
    }
    let (pos, neg): (Vec<usize>, Vec<usize>) =
        (0..interactions.len()).partition(|&i| interactions[i].rating >= POSITIVE_THRESHOLD);
    let (mut major, minor) = if pos.len() >= neg.len() {
        (pos, neg)
    } else {
        (neg, pos)
    };
    let keep = ((minor.len() as f64) * ratio).floor() as usize;
    if major.len() > keep {
        let mut rng = StdRng::seed_from_u64(seed);
        major.shuffle(&mut rng);
        major.truncate(keep);
    }
    let mut kept: Vec<usize> = major.into_iter().chain(minor).collect();
    kept.sort_unstable();
    Ok(kept.into_iter().map(|i| interactions[i]).collect())
}

/// Leave-last-out split by timestamp (ties keep input order): per user, the last interaction is
/// `test`, the second-to-last `valid`, the rest `history`; `train` holds the history
/// interactions preceded by at least `min_history` earlier ones. A user with fewer than 3
/// interactions is an error naming the user.
pub fn leave_last_out(
    ds: &mut Dataset,
    interactions: Vec<Interaction>,
    min_history: usize,
) -> Result<()> {
    let mut per_user: Vec<Vec<Interaction>> = vec![Vec::new(); ds.users.len()];
    for x in interactions {
        let slot = per_user.get_mut(x.user as usize).ok_or_else(|| {
            CoreError::Data(format!(
                "interaction refers to unknown user index {}",
                x.user
            ))
        })?;
        slot.push(x);
    }
    ds.history.clear();
    ds.train.clear();
    ds.valid.clear();
    ds.test.clear();
    for (u, mut xs) in per_user.into_iter().enumerate() {
        if xs.is_empty() {
            continue;
        }
        if xs.len() < 3 {
            return Err(CoreError::Data(format!(
                "user `{}` has {} interaction(s); leave-last-out needs at least 3 \
                 (raise the k-core filter to k ≥ 3)",
                ds.users[u],
                xs.len()
            )));
        }
        xs.sort_by_key(|x| x.timestamp); // stable: ties keep input order
        let test = xs
            .pop()
            .ok_or_else(|| CoreError::Data("empty user".into()))?;
        let valid = xs
            .pop()
            .ok_or_else(|| CoreError::Data("empty user".into()))?;
        ds.train.extend(xs.iter().skip(min_history).copied());
        ds.history.extend(xs);
        ds.valid.push(valid);
        ds.test.push(test);
    }
    if ds.valid.is_empty() {
        return Err(CoreError::Data(format!(
            "dataset `{}` is empty after filtering",
            ds.name
        )));
    }
    Ok(())
}

/// Drops users and items no interaction refers to and renumbers the rest (first use order).
pub fn compact(ds: &mut Dataset) {
    let mut out = Dataset::new(ds.name.clone());
    let remap = |x: &Interaction, out: &mut Dataset| -> Interaction {
        let item = &ds.items[x.item as usize];
        let known = out.item_index(&item.id).is_some();
        let i = out.intern_item(&item.id);
        if !known {
            out.items[i as usize] = item.clone();
        }
        Interaction {
            user: out.intern_user(&ds.users[x.user as usize]),
            item: i,
            ..*x
        }
    };
    let history: Vec<_> = ds.history.iter().map(|x| remap(x, &mut out)).collect();
    let train: Vec<_> = ds.train.iter().map(|x| remap(x, &mut out)).collect();
    let valid: Vec<_> = ds.valid.iter().map(|x| remap(x, &mut out)).collect();
    let test: Vec<_> = ds.test.iter().map(|x| remap(x, &mut out)).collect();
    out.history = history;
    out.train = train;
    out.valid = valid;
    out.test = test;
    *ds = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x(user: u32, item: u32, rating: f32, timestamp: i64) -> Interaction {
        Interaction {
            user,
            item,
            rating,
            timestamp,
        }
    }

    #[test]
    fn k_core_is_iterative() {
        // Item 9 and user 3 fall below k = 2 in the first pass; that leaves user 2 with one
        // interaction, removed in the second pass.
        let data = vec![
            x(0, 0, 5.0, 1),
            x(0, 1, 4.0, 2),
            x(1, 0, 3.0, 1),
            x(1, 1, 2.0, 2),
            x(2, 1, 5.0, 1),
            x(2, 9, 5.0, 2),
            x(3, 2, 1.0, 1),
        ];
        let kept = k_core(data.clone(), 2);
        assert_eq!(kept, data[..4].to_vec());
        assert_eq!(k_core(data.clone(), 1), data);
        assert!(k_core(data, 3).is_empty());
    }

    #[test]
    fn balance_keeps_minority_and_order() {
        let data: Vec<_> = (0..10)
            .map(|i| x(0, i, if i < 3 { 2.0 } else { 5.0 }, i as i64))
            .collect();
        let b = balance(data.clone(), 1.0, 7).unwrap();
        assert_eq!(b.len(), 6);
        assert_eq!(b.iter().filter(|x| x.rating < 4.0).count(), 3);
        assert!(b.windows(2).all(|w| w[0].timestamp < w[1].timestamp));
        assert_eq!(
            b,
            balance(data.clone(), 1.0, 7).unwrap(),
            "same seed, same sample"
        );
        let b2 = balance(data.clone(), 2.0, 7).unwrap();
        assert_eq!(b2.len(), 9);
        assert!(balance(data, 0.5, 7).is_err());
    }

    fn ds_with_users(n: usize) -> Dataset {
        let mut ds = Dataset::new("t");
        for u in 0..n {
            ds.intern_user(&format!("u{u}"));
        }
        for i in 0..10 {
            ds.intern_item(&format!("i{i}"));
        }
        ds
    }

    #[test]
    fn leave_last_out_by_timestamp() {
        let mut ds = ds_with_users(2);
        let data = vec![
            x(0, 3, 5.0, 30),
            x(0, 1, 4.0, 10),
            x(0, 2, 3.0, 20),
            x(0, 4, 2.0, 40),
            x(0, 5, 1.0, 50),
            x(1, 7, 5.0, 5),
            x(1, 8, 4.0, 5),
            x(1, 9, 3.0, 6),
        ];
        leave_last_out(&mut ds, data, 1).unwrap();
        assert_eq!(ds.test, vec![x(0, 5, 1.0, 50), x(1, 9, 3.0, 6)]);
        assert_eq!(ds.valid, vec![x(0, 4, 2.0, 40), x(1, 8, 4.0, 5)]);
        assert_eq!(
            ds.history,
            vec![
                x(0, 1, 4.0, 10),
                x(0, 2, 3.0, 20),
                x(0, 3, 5.0, 30),
                x(1, 7, 5.0, 5)
            ]
        );
        assert_eq!(ds.train, vec![x(0, 2, 3.0, 20), x(0, 3, 5.0, 30)]);
    }

    #[test]
    fn leave_last_out_rejects_short_users() {
        let mut ds = ds_with_users(1);
        let err = leave_last_out(&mut ds, vec![x(0, 1, 4.0, 1), x(0, 2, 4.0, 2)], 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("user `u0` has 2 interaction(s)"), "{err}");
        let mut ds = ds_with_users(1);
        let err = leave_last_out(&mut ds, vec![], 0).unwrap_err().to_string();
        assert!(err.contains("empty after filtering"), "{err}");
    }

    #[test]
    fn compact_drops_unused() {
        let mut ds = ds_with_users(3);
        let data = vec![x(2, 9, 5.0, 1), x(2, 8, 4.0, 2), x(2, 7, 3.0, 3)];
        leave_last_out(&mut ds, data, 0).unwrap();
        compact(&mut ds);
        assert_eq!(ds.users, vec!["u2".to_string()]);
        assert_eq!(ds.items.len(), 3);
        assert_eq!(ds.items[ds.valid[0].item as usize].id, "i8");
    }
}
