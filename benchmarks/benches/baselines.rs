//! Baseline fitting and dataset loading throughput on the paper's Movies split (when present)
//! or a synthetic dataset of the same size.

use criterion::{Criterion, criterion_group, criterion_main};
use siren_core::data::{Dataset, Interaction};
use siren_core::registry::build;
use siren_core::traits::{DatasetLoader, RatingBaseline};
use siren_plugins as _;

fn synthetic() -> Dataset {
    let mut ds = Dataset::new("synthetic");
    for i in 0..10_000 {
        ds.intern_item(&format!("i{i}"));
    }
    let mut state = 12345u64;
    for u in 0..2_600u32 {
        ds.intern_user(&format!("u{u}"));
        for _ in 0..11 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let item = ((state >> 33) % 10_000) as u32;
            let rating = 1.0 + ((state >> 20) % 5) as f32;
            ds.history.push(Interaction {
                user: u,
                item,
                rating,
                timestamp: 0,
            });
        }
    }
    ds
}

fn load(c: &mut Criterion) -> Dataset {
    match siren_benchmarks::paper_movies_dir() {
        Some(dir) => {
            let mut params = toml::Table::new();
            params.insert("dir".into(), dir.display().to_string().into());
            let loader = build::<dyn DatasetLoader>("siren-jsonl", &params).expect("loader");
            c.bench_function("load siren-jsonl amazon-movies", |b| {
                b.iter(|| loader.load().expect("load"))
            });
            loader.load().expect("load")
        }
        None => synthetic(),
    }
}

fn baselines(c: &mut Criterion) {
    let ds = load(c);
    let mut g = c.benchmark_group("fit");
    g.sample_size(10);
    for name in ["global-mean", "user-avg", "item-avg", "mf"] {
        let b = build::<dyn RatingBaseline>(name, &Default::default()).expect("baseline");
        g.bench_function(name, |bench| {
            bench.iter(|| b.fit(&ds, &ds.history, 1).expect("fit"))
        });
    }
    g.finish();
}

criterion_group!(benches, baselines);
criterion_main!(benches);
