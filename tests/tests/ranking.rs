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

#[test]
fn scoring_only_the_hits_leaves_the_table_unchanged_and_relevance_adds_its_order() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tiny_config(tmp.path(), "");
    let c = cfg.to_str().unwrap();
    let run = |score_misses: bool| -> Value {
        let misses = format!("rank.score_misses={score_misses}");
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
            "rank.retriever=\"popularity\"",
            "--set",
            "rank.by=\"relevance\"",
            "--set",
            &misses,
        ];
        siren_cli::run_args(args).unwrap();
        serde_json::from_str(
            &std::fs::read_to_string(tmp.path().join("runs/tiny/rank.json")).unwrap(),
        )
        .unwrap()
    };
    let all = run(true);
    let hits = run(false);
    // A list without the held-out item counts 0 under every order: the table is the same
    // whether those lists are scored or not, the random order included.
    assert_eq!(all["retrieved"], hits["retrieved"]);
    assert!(
        all["retrieved"]["model-relevance"]["recall@5"].is_number(),
        "{all}"
    );
    let n_hits = (hits["hit_rate"].as_f64().unwrap() * hits["users"].as_f64().unwrap()).round();
    assert_eq!(hits["scored_queries"].as_f64().unwrap(), n_hits, "{hits}");
    // Some lists hold the held-out item and some do not, so both paths ran.
    assert!(
        n_hits > 0.0 && n_hits < hits["users"].as_f64().unwrap(),
        "{hits}"
    );
    assert_eq!(all["scored_queries"], all["users"]);
    assert!(hits["held_out_inserted"].is_null() && all["held_out_inserted"].is_object());
    assert!(hits["relevance_ms_per_query"].as_f64().is_some());
    // The paired differences equal the differences of the means.
    for order in ["model", "model-p5", "model-relevance"] {
        for reference in ["retriever", "random"] {
            let d = &hits["paired"][order][reference];
            let want = hits["retrieved"][order]["ndcg@3"].as_f64().unwrap()
                - hits["retrieved"][reference]["ndcg@3"].as_f64().unwrap();
            assert!((d["ndcg@3"].as_f64().unwrap() - want).abs() < 1e-12, "{d}");
            let ci = d["ci"]["ndcg@3"].as_array().unwrap();
            assert!(ci[0].as_f64().unwrap() <= ci[1].as_f64().unwrap());
        }
    }
    let md = std::fs::read_to_string(tmp.path().join("runs/tiny/rank.md")).unwrap();
    assert!(
        md.contains("by expected relevance answer") && md.contains("Paired differences"),
        "{md}"
    );
}

#[test]
fn relevance_examples_come_from_an_earlier_cut_and_never_read_the_valid_split() {
    use siren_core::stages::relevance;
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tiny_config(
        tmp.path(),
        "[relevance]\nusers = 6\nnegatives = 2\n[rank]\nretriever = \"popularity\"\ncandidates = 5\ncutoffs = [1, 3, 5]\n",
    );
    let config = RunConfig::load(&cfg, &[]).unwrap();
    config.validate().unwrap();
    let mut ds = siren_core::stages::load_dataset(&config).unwrap();
    let rel = config.relevance.clone().unwrap();
    let draws = relevance::draws(&config, &rel, &ds).unwrap();
    assert_eq!(draws.len(), 6);
    let earlier = relevance::held_out_last(&ds);
    for d in &draws {
        let x = d.held_out;
        // The held-out item is the user's last history interaction, and no negative is it or
        // an item the user had seen before it.
        let last = ds.history.iter().rfind(|h| h.user == x.user).unwrap();
        assert_eq!((last.item, last.timestamp), (x.item, x.timestamp));
        assert_eq!(d.negatives.len(), 2);
        for &i in &d.negatives {
            assert_ne!(i, x.item);
            assert!(
                !earlier
                    .history
                    .iter()
                    .any(|h| h.user == x.user && h.item == i)
            );
        }
    }
    // Another valid split gives the same draws.
    let before = draws.clone();
    for v in &mut ds.valid {
        v.item = (v.item + 1) % ds.items.len() as u32;
    }
    assert_eq!(relevance::draws(&config, &rel, &ds).unwrap(), before);

    // The prompts: one positive (answer 5) and two negatives (answer 1) per user, asking the
    // relevance question about the candidate.
    let (_, tok) = siren_core::stages::load_run_model(
        &config,
        &siren_core::device::open("flex").unwrap().0,
        "test",
    )
    .unwrap();
    let sk = siren_core::stages::sketches_for(
        &config,
        &ds,
        &siren_core::run::RunDir::create(&config, "flex").unwrap(),
    )
    .unwrap();
    let ex = relevance::examples(&config, &ds, &sk, &tok).unwrap();
    assert_eq!(ex.len(), 18);
    assert_eq!(ex.iter().filter(|e| e.rating == 5.0).count(), 6);
    assert!(
        ex.iter()
            .all(|e| e.prompt.contains("how likely is the user to choose"))
    );
    // Without the table: none.
    let plain = RunConfig::load(&tiny_config(tmp.path(), ""), &[]).unwrap();
    assert!(
        relevance::examples(&plain, &ds, &sk, &tok)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn the_blend_is_fitted_on_earlier_cuts_and_never_reads_the_evaluated_split() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tiny_config(
        tmp.path(),
        "[rank]\nretriever = \"popularity\"\ncandidates = 5\ncutoffs = [1, 3, 5]\n\
         [rank.blend]\nfeatures = [\"retriever\", \"rating\"]\ncuts = [2, 3]\n",
    );
    let c = cfg.to_str().unwrap();
    siren_cli::run_args(vec!["siren", "rank", c, "--evaluate"]).unwrap();
    let runs = tmp.path().join("runs/tiny");
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(runs.join("rank.json")).unwrap()).unwrap();
    let b = &r["blend"];
    let w = b["weights"].as_array().unwrap();
    assert_eq!(w.len(), 2, "{b}");
    assert!(w.iter().all(|x| x.as_f64().unwrap().is_finite()), "{b}");
    assert!(b["lists"].as_u64().unwrap() > 0, "{b}");
    // The blended order reorders the same lists: Recall@5 (the whole list) is the hit rate.
    let blended = &r["retrieved"]["model-blend"];
    assert!(
        (blended["recall@5"].as_f64().unwrap() - r["hit_rate"].as_f64().unwrap()).abs() < 1e-12
    );
    assert!(
        r["paired"]["model-blend"]["retriever"]["ndcg@3"].is_number(),
        "{r}"
    );
    let md = std::fs::read_to_string(runs.join("rank.md")).unwrap();
    assert!(
        md.contains("blended with the retriever's score") && md.contains("conditional logit"),
        "{md}"
    );
    let fitted: Value =
        serde_json::from_str(&std::fs::read_to_string(runs.join("blend.json")).unwrap()).unwrap();
    assert_eq!(fitted["weights"], b["weights"]);
    assert_eq!(fitted["cuts"].as_array().unwrap().len(), 2, "{fitted}");
    // Weights fitted before (`[rank.blend] file`) are read instead of fitted: the same order.
    let copy = tmp.path().join("fitted-blend.json");
    std::fs::copy(runs.join("blend.json"), &copy).unwrap();
    std::fs::remove_file(runs.join("blend.json")).unwrap();
    let file = format!("rank.blend.file=\"{}\"", copy.display());
    siren_cli::run_args(vec!["siren", "rank", c, "--evaluate", "--set", &file]).unwrap();
    let again: Value =
        serde_json::from_str(&std::fs::read_to_string(runs.join("rank.json")).unwrap()).unwrap();
    assert_eq!(
        again["retrieved"]["model-blend"],
        r["retrieved"]["model-blend"]
    );
    assert!(!runs.join("blend.json").exists(), "read, not fitted again");

    // Another evaluated split: the same weights (they come from the history cuts alone), and
    // an evaluation at a history cut is the same report.
    let config = RunConfig::load(&cfg, &[]).unwrap();
    let run = siren_core::run::RunDir::create(&config, "flex").unwrap();
    let weights = siren_core::stages::eval::Weights::Base;
    let mut ds = siren_core::stages::load_dataset(&config).unwrap();
    let at_cut = |ds: &siren_core::data::Dataset| {
        let mut cut = config.clone();
        cut.rank.as_mut().unwrap().cut = Some(1);
        siren_core::stages::rank::evaluate(&cut, ds, &run, &weights).unwrap()
    };
    let before = at_cut(&ds);
    assert_eq!(before["split"], "history cut 1");
    for x in &mut ds.valid {
        x.item = (x.item + 1) % ds.items.len() as u32;
    }
    let after = at_cut(&ds);
    assert_eq!(before["blend"], after["blend"]);
    assert_eq!(before["retrieved"], after["retrieved"]);
    let moved = siren_core::stages::rank::evaluate(&config, &ds, &run, &weights).unwrap();
    assert_eq!(moved["blend"], before["blend"]);
    let (a, b) = (&moved["blend"]["weights"], &r["blend"]["weights"]);
    for k in 0..2 {
        assert!(
            (a[k].as_f64().unwrap() - b[k].as_f64().unwrap()).abs() < 1e-12,
            "{a} vs {b}"
        );
    }

    // The blend may not be fitted on a cut the reranker trained on.
    let mut trained = config.clone();
    trained.relevance = Some(siren_core::config::RelevanceConfig {
        cuts: 2,
        ..Default::default()
    });
    let e = siren_core::stages::rank::evaluate(&trained, &ds, &run, &weights).unwrap_err();
    assert!(e.to_string().contains("rank.blend.cuts"), "{e}");
    // Nor evaluated at one of its own cuts.
    let mut own = config.clone();
    own.rank.as_mut().unwrap().cut = Some(2);
    let e = siren_core::stages::rank::evaluate(&own, &ds, &run, &weights).unwrap_err();
    assert!(e.to_string().contains("rank.cut"), "{e}");
}
