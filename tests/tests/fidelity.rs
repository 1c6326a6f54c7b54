//! Method fidelity: what a prompt may know. A training prompt's sketch counts only the
//! interactions before its target; `siren predict` scores a known pair from what precedes it;
//! topics do not depend on which split is evaluated.

use siren_core::config::RunConfig;
use siren_core::data::{Dataset, Interaction};
use siren_core::prompt::{PromptBuilder, past_of, timelines};
use siren_core::run::RunDir;
use siren_core::stages::{self, sketch::PromptSketches};
use siren_core::testkit;
use siren_plugins as _;

fn config(dir: &std::path::Path, scope: &str) -> RunConfig {
    let text = format!(
        r#"
name = "fidelity"
runs_dir = "{}"
[dataset]
kind = "movielens"
[prompt]
sketch_scope = "{scope}"
[topics]
k = 3
nearest = 4
[encoder]
kind = "hashing"
[clusterer]
kind = "kmeans"
[namer]
kind = "keywords"
[sketch]
kind = "paper"
"#,
        dir.display()
    );
    RunConfig::from_table(toml::from_str(&text).unwrap(), "t").unwrap()
}

/// The toy dataset with each user's history items from the fourth on as training targets.
fn toy_with_train() -> Dataset {
    let mut ds = testkit::toy_dataset();
    let mut per_user = vec![0usize; ds.users.len()];
    let mut train = Vec::new();
    for x in &ds.history {
        per_user[x.user as usize] += 1;
        if per_user[x.user as usize] > 3 {
            train.push(*x);
        }
    }
    ds.train = train;
    ds
}

fn support(s: &siren_core::traits::Sketch) -> usize {
    s.likes.iter().chain(&s.dislikes).map(|t| t.support).sum()
}

#[test]
fn training_prompts_sketch_only_what_precedes_their_target() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = toy_with_train();
    let tok = testkit::tiny_tokenizer().unwrap();
    let tl = timelines(&ds, false);
    let cfg = config(tmp.path(), "before-target");
    let run = RunDir::create(&cfg, "flex").unwrap();
    let sketches = stages::sketches_for(&cfg, &ds, &run).unwrap();
    assert!(matches!(sketches, PromptSketches::BeforeTarget(_)));
    let examples = stages::examples(&cfg, &ds, &ds.train, &sketches, &tok).unwrap();
    let pb = PromptBuilder::new(cfg.prompt.clone()).unwrap();
    let words = |s: &str| s.split_whitespace().count();
    for (x, e) in ds.train.iter().zip(&examples) {
        let past = past_of(&tl[x.user as usize], x);
        let sk = sketches.for_prompt(x.user, past).unwrap();
        // The sketch counts exactly the interactions before the target (paper rule,
        // min_support 1, no cap): neither the target nor any later item.
        assert_eq!(support(&sk), past.len(), "{}", e.id);
        assert!(past.len() < tl[x.user as usize].len());
        let want = pb.build(&ds, past, &sk, x, pb.cfg.strategy, &words);
        assert!(e.prompt.contains(&want.user), "{}", e.id);
    }
    // The per-user ablation keeps the old behaviour: every prompt of a user shares the sketch
    // of the whole history, target and later items included.
    let cfg = config(tmp.path(), "per-user");
    let sketches = stages::sketches_for(&cfg, &ds, &run).unwrap();
    for x in &ds.train {
        let past = past_of(&tl[x.user as usize], x);
        let sk = sketches.for_prompt(x.user, past).unwrap();
        assert_eq!(support(&sk), tl[x.user as usize].len());
    }
}

#[test]
fn predict_scores_a_known_pair_from_what_precedes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let mut ds = toy_with_train();
    // A test interaction after valid for user 0, on an item they have not rated.
    let test_item = 10;
    ds.test.push(Interaction {
        user: 0,
        item: test_item,
        rating: 2.0,
        timestamp: 100,
    });
    let cfg = config(tmp.path(), "before-target");
    let run = RunDir::create(&cfg, "flex").unwrap();
    let sketches = stages::sketches_for(&cfg, &ds, &run).unwrap();
    let pb = PromptBuilder::new(cfg.prompt.clone()).unwrap();
    let words = |s: &str| s.split_whitespace().count();
    let full = stages::predict::full_timelines(&ds);
    let line = |x: &Interaction| siren_core::prompt::interaction_line(&ds, x);
    let valid = ds.valid[0];
    assert_eq!(valid.user, 0);
    // The valid pair: history only, no valid or test line.
    let p =
        stages::predict::pair_prompt(&ds, &full, &sketches, &pb, (0, valid.item), &words).unwrap();
    assert!(!p.user.contains(&line(&valid)), "{}", p.user);
    assert!(!p.user.contains(&line(&ds.test[0])), "{}", p.user);
    let hist = &full[0][..full[0].len() - 2];
    let want = sketches.for_prompt(0, hist).unwrap();
    assert_eq!(support(&want), hist.len());
    assert!(
        p.user
            .contains(&siren_core::prompt::sketch_text(&want, &pb.cfg))
    );
    // The test pair sees valid but not itself.
    let p =
        stages::predict::pair_prompt(&ds, &full, &sketches, &pb, (0, test_item), &words).unwrap();
    assert!(p.user.contains(&line(&valid)) && !p.user.contains(&line(&ds.test[0])));
    // A training pair sees only the history before it.
    let x = ds.train.iter().find(|x| x.user == 0).copied().unwrap();
    let p = stages::predict::pair_prompt(&ds, &full, &sketches, &pb, (0, x.item), &words).unwrap();
    assert!(!p.user.contains(&line(&x)) && !p.user.contains(&line(&valid)));
}

#[test]
fn topics_do_not_depend_on_the_evaluated_split() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = toy_with_train();
    let cfg = config(tmp.path(), "before-target");
    let run = RunDir::create(&cfg, "flex").unwrap();
    let before = stages::sketch::topics_and_sketches(&cfg, &ds, &run).unwrap();
    // A test file brings items of its own.
    let mut with_test = ds.clone();
    for u in 0..ds.users.len() as u32 {
        let item = with_test.intern_item(&format!("new{u}"));
        with_test.items[item as usize].title = format!("Brand new film {u}");
        with_test.test.push(Interaction {
            user: u,
            item,
            rating: 4.0,
            timestamp: 100,
        });
    }
    let after = stages::sketch::topics_and_sketches(&cfg, &with_test, &run).unwrap();
    let n = ds.items.len();
    assert_eq!(before.fitted_items, after.fitted_items);
    assert_eq!(
        before.sketcher.assignment[..n],
        after.sketcher.assignment[..n]
    );
    assert_eq!(before.sketcher.names, after.sketcher.names);
    assert_eq!(after.sketcher.assignment.len(), with_test.items.len());
    // Item 10 (nobody rated it) and the new items are assigned, not fitted on.
    assert_eq!(before.fitted_items, n - 1);
}
