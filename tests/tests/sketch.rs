//! The sketch stage: clusterer and sketch-builder contracts for every built-in, and the stage
//! end to end on the toy dataset (hashing encoder, kmeans, keywords namer, paper rule).

use siren_core::registry::build;
use siren_core::testkit;
use siren_core::traits::{SketchBuilder, TopicClusterer};
use siren_plugins as _;

#[test]
fn clusterers_meet_the_contract() {
    for name in ["kmeans", "hnsw"] {
        let c = build::<dyn TopicClusterer>(name, &Default::default()).unwrap();
        testkit::clusterer_contract(c.as_ref()).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn hnsw_and_kmeans_agree_on_separated_blobs() {
    let (items, label) = testkit::blobs(10, 200, 16, 11);
    for name in ["kmeans", "hnsw"] {
        let c = build::<dyn TopicClusterer>(name, &Default::default()).unwrap();
        let t = c.fit(&items, 10, 5, 3).unwrap();
        // Purity: each topic holds one blob.
        let mut seen = std::collections::HashMap::new();
        for (i, &a) in t.assignment.iter().enumerate() {
            let b = *seen.entry(a).or_insert(label[i]);
            assert_eq!(b, label[i], "{name}: topic {a} mixes blobs");
        }
        assert_eq!(seen.len(), 10, "{name}");
    }
}

#[test]
fn sketch_builders_meet_the_contract() {
    for name in ["paper", "majority"] {
        let b = build::<dyn SketchBuilder>(name, &Default::default()).unwrap();
        testkit::sketch_contract(b.as_ref()).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn sketch_stage_writes_topics_sketches_and_prompts() {
    let tmp = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
name = "toy-sketch"
runs_dir = "{}"
[dataset]
kind = "movielens"
[topics]
k = 3
nearest = 4
sample_prompts = 2
[encoder]
kind = "hashing"
[clusterer]
kind = "kmeans"
[namer]
kind = "keywords"
[sketch]
kind = "paper"
"#,
        tmp.path().display()
    );
    let config =
        siren_core::config::RunConfig::from_table(toml::from_str(&text).unwrap(), "t").unwrap();
    let ds = testkit::toy_dataset();
    let run = siren_core::run::RunDir::create(&config, "flex").unwrap();
    let out = siren_core::stages::sketch::run(&config, &ds, &run).unwrap();
    assert_eq!(out.topics.len(), 3);
    assert_eq!(
        out.topics.iter().map(|t| t.size).sum::<usize>(),
        ds.items.len()
    );
    assert_eq!(out.sketches.len(), ds.users.len());
    let lines = std::fs::read_to_string(run.file("sketches.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), ds.users.len());
    let first: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert_eq!(first["user_id"], ds.users[0]);
    let topics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.file("topics.json")).unwrap()).unwrap();
    assert_eq!(topics.as_array().unwrap().len(), 3);
    let sample = std::fs::read_to_string(run.file("prompts.sample.txt")).unwrap();
    assert_eq!(sample.matches("=== user").count(), 2);
    assert!(sample.contains("long-term interest sketch"));
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.file("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["sketch"]["k"], 3);
    // The second run reads the embeddings from the cache.
    let again = siren_core::stages::sketch::run(&config, &ds, &run).unwrap();
    assert_eq!(again.report["embeddings_cached"], true);
    assert_eq!(again.assignment, out.assignment);
}
