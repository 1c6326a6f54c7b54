//! `siren paired A B [C D ...]`: paired bootstrap comparisons of evaluated rows, B − A (then
//! D − C, ...), on the users both scored; see `siren_core::paired`.

use siren_core::paired::{Paired, compare, read_row};

/// The arguments of `siren paired`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Rows in pairs: A B [C D ...].
    #[arg(required = true, value_name = "FILE.jsonl:DECODER")]
    pub rows: Vec<String>,
    /// Bootstrap resamples.
    #[arg(long, default_value_t = 2000)]
    pub resamples: usize,
    /// Seed of the resampling.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

pub fn run(specs: &[String], resamples: usize, seed: u64) -> anyhow::Result<Vec<Paired>> {
    if specs.len() < 2 || !specs.len().is_multiple_of(2) {
        anyhow::bail!(
            "give rows in pairs, A B [C D ...], each FILE.jsonl:DECODER (got {})",
            specs.len()
        );
    }
    if resamples == 0 {
        anyhow::bail!("--resamples must be at least 1");
    }
    println!(
        "| A | B | users | MAE A | MAE B | ΔMAE (B − A) [95% CI] | RMSE A | RMSE B | ΔRMSE (B − A) [95% CI] |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut out = Vec::new();
    for pair in specs.chunks(2) {
        // A CoT answer that did not parse is already recorded with its fallback; greedy
        // tokens that are no rating count as the scale's middle.
        let a = read_row(&pair[0], 3.0)?;
        let b = read_row(&pair[1], 3.0)?;
        let p = compare(&a, &b, resamples, seed)?;
        println!(
            "| {} | {} | {} | {:.4} | {:.4} | {:+.4} [{:+.4}, {:+.4}] | {:.4} | {:.4} | {:+.4} [{:+.4}, {:+.4}] |",
            pair[0],
            pair[1],
            p.n,
            p.mae.a,
            p.mae.b,
            p.mae.diff,
            p.mae.lo,
            p.mae.hi,
            p.rmse.a,
            p.rmse.b,
            p.rmse.diff,
            p.rmse.lo,
            p.rmse.hi
        );
        out.push(p);
    }
    Ok(out)
}
