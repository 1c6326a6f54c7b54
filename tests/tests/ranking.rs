//! Retrievers as `siren rank` uses them: every retriever (and a rating baseline) proposes only
//! items the user has not seen, the same list on every fit, and the reranking evaluation runs
//! end to end on the tiny model with the retriever comparison.

use serde_json::Value;
use siren_core::config::RunConfig;
use siren_core::data::SplitName;
use siren_core::stages::rank::Candidates;
use siren_tests::tiny_config;

#[test]
fn every_retriever_excludes_seen_items_and_is_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tiny_config(tmp.path(), "");
    let config = RunConfig::load(&cfg, &[]).unwrap();
    let ds = siren_core::stages::load_dataset(&config).unwrap();
    for split in [SplitName::Valid] {
        let fit = ds.fit_set(split);
        for name in ["popularity", "item-knn", "bpr-mf", "lightgcn", "mf"] {
            let a = Candidates::fit_named(&config, name, &Default::default(), &ds, split).unwrap();
            let b = Candidates::fit_named(&config, name, &Default::default(), &ds, split).unwrap();
            for u in 0..ds.users.len() as u32 {
                let seen: std::collections::HashSet<u32> = fit
                    .iter()
                    .chain(&ds.train)
                    .filter(|x| x.user == u)
                    .map(|x| x.item)
                    .collect();
                let top = a.top(u, 10);
                assert_eq!(top.len(), 10.min(ds.items.len() - seen.len()), "{name}");
                for &(i, _) in &top {
                    assert!(
                        !seen.contains(&i),
                        "{name} proposed item {i} that user {u} has seen"
                    );
                }
                assert_eq!(top, b.top(u, 10), "{name}: two fits differ for user {u}");
            }
        }
    }
    // An unknown name is an error naming the field.
    let err = RunConfig::load(&cfg, &["rank.retriever=\"nope\"".into()])
        .and_then(|c| c.validate())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("rank.retriever") && err.contains("lightgcn"),
        "{err}"
    );
}

#[test]
fn the_reranking_evaluation_runs_end_to_end_with_the_retriever_comparison() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tiny_config(tmp.path(), "");
    let c = cfg.to_str().unwrap();
    let args = vec![
        "siren",
        "rank",
        c,
        "--evaluate",
        "--set",
        "rank.candidates=5",
        "--set",
        "rank.cutoffs=[1,3,5]",
        "--set",
        "rank.compare=[\"popularity\",\"item-knn\"]",
        "--set",
        "rank.params={epochs = 20, batch = 64}",
    ];
    siren_cli::run_args(args).unwrap();
    let r: Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("runs/tiny/rank.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(r["retriever"], "lightgcn");
    let hit = r["hit_rate"].as_f64().unwrap();
    for order in ["model", "model-p5", "retriever", "random"] {
        let m = &r["retrieved"][order];
        let r5 = m["recall@5"].as_f64().unwrap();
        // Every order reorders the same list: Recall@5 (the whole list) is the hit rate.
        assert!((r5 - hit).abs() < 1e-12, "{order}: {m}");
        let ci = m["ci"]["recall@1"].as_array().unwrap();
        let mean = m["recall@1"].as_f64().unwrap();
        assert!(ci[0].as_f64().unwrap() <= mean && mean <= ci[1].as_f64().unwrap());
    }
    for name in ["lightgcn", "popularity", "item-knn"] {
        let m = &r["retrievers"][name];
        assert!(m["hit_rate"].as_f64().is_some(), "{name}: {m}");
    }
    assert!(r["latency_ms_per_query"].as_f64().unwrap() > 0.0);
    let md = std::fs::read_to_string(tmp.path().join("runs/tiny/rank.md")).unwrap();
    assert!(
        md.contains("| item-knn |") && md.contains("random order"),
        "{md}"
    );

    // Without the model: the retrievers' tables only.
    let args = vec![
        "siren",
        "rank",
        c,
        "--evaluate",
        "--set",
        "rank.rerank=false",
        "--set",
        "rank.retriever=\"popularity\"",
    ];
    siren_cli::run_args(args).unwrap();
    let r: Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("runs/tiny/rank.json")).unwrap(),
    )
    .unwrap();
    assert!(
        r["method"].is_null() && r["retrieved"]["model"].is_null(),
        "{r}"
    );
    assert!(r["retrieved"]["retriever"]["recall@20"].as_f64().is_some());
}
