//! Batches without waste: sequences grouped by length, so that padding stays within a
//! bucket of similar lengths (evaluation batches, training micro-batches).

/// Batches of `lens.len()` sequences of `batch` each, in the order of `lens` or (bucketed)
/// sorted by length, and the padded fraction of the tokens each way: `(batches, padded,
/// padded without bucketing)`.
pub fn length_buckets(lens: &[usize], batch: usize, bucket: bool) -> (Vec<Vec<usize>>, f64, f64) {
    let pad_fraction = |batches: &[Vec<usize>]| -> f64 {
        let (mut total, mut real) = (0usize, 0usize);
        for b in batches {
            let m = b.iter().map(|&i| lens[i]).max().unwrap_or(0);
            total += m * b.len();
            real += b.iter().map(|&i| lens[i]).sum::<usize>();
        }
        if total == 0 {
            0.0
        } else {
            (total - real) as f64 / total as f64
        }
    };
    let plain: Vec<Vec<usize>> = (0..lens.len())
        .collect::<Vec<_>>()
        .chunks(batch.max(1))
        .map(<[usize]>::to_vec)
        .collect();
    let before = pad_fraction(&plain);
    if !bucket {
        return (plain, before, before);
    }
    let mut order: Vec<usize> = (0..lens.len()).collect();
    order.sort_by_key(|&i| lens[i]);
    let sorted: Vec<Vec<usize>> = order.chunks(batch.max(1)).map(<[usize]>::to_vec).collect();
    let after = pad_fraction(&sorted);
    (sorted, after, before)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_buckets_cut_padding_and_cover_every_row() {
        let lens = [5, 40, 6, 39, 7, 41];
        let (b, after, before) = length_buckets(&lens, 2, true);
        let mut all: Vec<usize> = b.concat();
        all.sort_unstable();
        assert_eq!(all, (0..6).collect::<Vec<_>>());
        assert!(after < before, "{after} vs {before}");
        // Plain batches: [5,40] [6,39] [7,41] → 40+39+41 − (5+6+7) pads of 240 tokens.
        assert!((before - (40.0 + 39.0 + 41.0 - 18.0) / 240.0).abs() < 1e-12);
        let (plain, p, q) = length_buckets(&lens, 2, false);
        assert_eq!(plain, vec![vec![0, 1], vec![2, 3], vec![4, 5]]);
        assert_eq!(p, q);
    }
}
