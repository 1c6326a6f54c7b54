//! Dataset loaders on hand-made files: formats, processing, and bad input.

use std::io::Write;
use std::path::Path;

use siren_core::registry::build;
use siren_core::testkit::dataset_contract;
use siren_core::traits::DatasetLoader;

fn write_gz(path: &Path, text: &str) {
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::default(),
    );
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap();
}

fn params(s: &str) -> toml::Table {
    toml::from_str(s).unwrap()
}

fn load(kind: &str, p: &str) -> siren_core::Result<siren_core::data::Dataset> {
    build::<dyn DatasetLoader>(kind, &params(p))?.load()
}

/// MovieLens atomic files: 4 users; user 4 has only 2 ratings.
fn movielens(dir: &Path, extra_line: &str) -> (String, String) {
    let inter = dir.join("ml.inter");
    let item = dir.join("ml.item");
    let mut rows = String::from("user_id:token\titem_id:token\trating:float\ttimestamp:float\n");
    for u in 1..=3 {
        for i in 1..=5 {
            rows.push_str(&format!("{u}\t{i}\t{}\t{}\n", 1 + (u * i) % 5, 100 * i + u));
        }
    }
    rows.push_str("4\t1\t5\t1\n4\t2\t4\t2\n");
    rows.push_str(extra_line);
    std::fs::write(&inter, rows).unwrap();
    std::fs::write(
        &item,
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n\
         1\tToy Story\t1995\tAnimation Children's Comedy\n2\tGoldenEye\t1995\tAction\n\
         3\tFour Rooms\t1995\tThriller\n4\tGet Shorty\t1995\tAction Comedy\n5\tCopycat\t1995\tCrime\n",
    )
    .unwrap();
    (inter.display().to_string(), item.display().to_string())
}

#[test]
fn movielens_leave_last_out() {
    let tmp = tempfile::tempdir().unwrap();
    let (inter, item) = movielens(tmp.path(), "");
    let p = format!("inter = '{inter}'\nitem = '{item}'\nk_core = 3\nmin_history = 1");
    let ds = dataset_contract(
        build::<dyn DatasetLoader>("movielens", &params(&p))
            .unwrap()
            .as_ref(),
    )
    .unwrap();
    assert_eq!(ds.users.len(), 3, "k-core 3 drops user 4");
    assert_eq!((ds.valid.len(), ds.test.len(), ds.history.len()), (3, 3, 9));
    assert_eq!(ds.train.len(), 6);
    // valid is each user's 4th item by time (item 4), test the 5th.
    for x in &ds.valid {
        assert_eq!(ds.items[x.item as usize].id, "4");
    }
    let toy = &ds.items[ds.item_index("1").unwrap() as usize];
    assert_eq!(toy.title, "Toy Story (1995)");
    assert_eq!(toy.categories, vec!["Animation", "Children's", "Comedy"]);

    // Without the k-core, user 4 cannot be split.
    let p = format!("inter = '{inter}'\nitem = '{item}'");
    let e = load("movielens", &p).unwrap_err().to_string();
    assert!(e.contains("user `4` has 2 interaction(s)"), "{e}");
}

#[test]
fn bad_ratings_error_or_skip_with_count() {
    let tmp = tempfile::tempdir().unwrap();
    let (inter, item) = movielens(tmp.path(), "1\t2\t7\t5\n");
    let p = format!("inter = '{inter}'\nitem = '{item}'\nk_core = 3");
    let e = load("movielens", &p).unwrap_err().to_string();
    assert!(
        e.contains("ml.inter:19: field `rating`: rating 7 is outside [1, 5]"),
        "{e}"
    );
    let ds = load("movielens", &format!("{p}\non_bad_row = 'skip'")).unwrap();
    assert_eq!(ds.valid.len(), 3);
    let (inter, item) = movielens(tmp.path(), "1\t2\n");
    let p = format!("inter = '{inter}'\nitem = '{item}'\nk_core = 3");
    let e = load("movielens", &p).unwrap_err().to_string();
    assert!(e.contains(":19: field `rating`: missing"), "{e}");
}

#[test]
fn missing_files_and_empty_results_are_clear_errors() {
    let e = load(
        "movielens",
        "inter = '/nope/a.inter'\nitem = '/nope/a.item'",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("/nope/a.inter") && e.contains("not found"),
        "{e}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let (inter, item) = movielens(tmp.path(), "");
    let e = load(
        "movielens",
        &format!("inter = '{inter}'\nitem = '{item}'\nk_core = 50"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("empty after filtering"), "{e}");
    let e = load("siren-jsonl", "dir = '/nope'")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("/nope/history.jsonl.gz") && e.contains("/nope/history.jsonl"),
        "{e}"
    );
}

fn amazon_files(dir: &Path) -> (String, String) {
    let reviews = dir.join("Movies_and_TV.jsonl.gz");
    let meta = dir.join("meta_Movies_and_TV.jsonl");
    let mut r = String::new();
    for u in 0..4 {
        for i in 0..4 {
            let rating = if (u + i) % 3 == 0 { 2.0 } else { 5.0 };
            r.push_str(&format!(
                "{{\"rating\": {rating}, \"title\": \"t\", \"text\": \"x\", \"asin\": \"A{i}\", \"parent_asin\": \"P{i}\", \"user_id\": \"U{u}\", \"timestamp\": {}, \"verified_purchase\": true}}\n",
                1_600_000_000_000i64 + 1000 * (i as i64) + u as i64
            ));
        }
    }
    // A review of an item without metadata is skipped.
    r.push_str(
        "{\"rating\": 4.0, \"parent_asin\": \"NOMETA\", \"user_id\": \"U0\", \"timestamp\": 1}\n",
    );
    write_gz(&reviews, &r);
    let mut m = String::new();
    for i in 0..4 {
        m.push_str(&format!(
            "{{\"main_category\": \"Movies & TV\", \"title\": \"Film {i}\", \"features\": [\"f{i}\"], \"description\": [\"About {i}.\", \"More.\"], \"categories\": [\"Movies & TV\", \"Drama\"], \"parent_asin\": \"P{i}\"}}\n"
        ));
    }
    std::fs::write(&meta, m).unwrap();
    (reviews.display().to_string(), meta.display().to_string())
}

#[test]
fn amazon2023_reviews_and_meta() {
    let tmp = tempfile::tempdir().unwrap();
    let (reviews, meta) = amazon_files(tmp.path());
    let p = format!("reviews = '{reviews}'\nmeta = '{meta}'\nk_core = 3\nmin_history = 0");
    let ds = dataset_contract(
        build::<dyn DatasetLoader>("amazon2023", &params(&p))
            .unwrap()
            .as_ref(),
    )
    .unwrap();
    assert_eq!((ds.users.len(), ds.items.len()), (4, 4));
    assert_eq!((ds.history.len(), ds.valid.len(), ds.test.len()), (8, 4, 4));
    let it = &ds.items[ds.item_index("P2").unwrap() as usize];
    assert_eq!(it.title, "Film 2");
    assert_eq!(it.categories, vec!["Movies & TV", "Drama"]);
    assert_eq!(it.description, "About 2. More.");
    assert_eq!(it.features, vec!["f2"]);
    for x in &ds.test {
        assert_eq!(
            ds.items[x.item as usize].id, "P3",
            "test = last by timestamp"
        );
    }
    // Balancing: 6 negatives vs 10 positives at ratio 1.5 → 6 + 9 kept.
    let p = format!(
        "reviews = '{reviews}'\nmeta = '{meta}'\nk_core = 0\nbalance = true\nbalance_ratio = 1.5\nseed = 3"
    );
    let a = load("amazon2023", &p).unwrap();
    let b = load("amazon2023", &p).unwrap();
    let count = |d: &siren_core::data::Dataset| d.history.len() + d.valid.len() + d.test.len();
    assert_eq!(count(&a), 15);
    assert_eq!(a.history, b.history, "deterministic under a seed");
}

fn paper_dir(dir: &Path, corrupt_valid_line: Option<&str>) {
    let history = r#"{"user_id":"U1","history":"Alpha, Movies & TV|Drama, 4\nBeta, Gamma, Movies & TV|Comedy, 2\nDelta, Movies & TV, 5","history_asins":"['A', 'B', 'D']","history_ratings":"[4, 2, 5]"}
{"user_id":"U2","history":"Alpha, Movies & TV|Drama, 3\nDelta, Movies & TV, 1","history_asins":["A","D"],"history_ratings":[3.0,1.0]}
"#;
    write_gz(&dir.join("history.jsonl.gz"), history);
    std::fs::write(
        dir.join("train.jsonl"),
        r#"{"user_id":"U1","parent_asin":"D","timestamp":300,"label":5.0,"target":"Delta, Movies & TV","history":"..."}
"#,
    )
    .unwrap();
    let mut valid = String::from(
        r#"{"user_id":"U1","parent_asin":"E","timestamp":400,"label":3.0,"target":"Epsilon, Movies & TV|Horror","history":"..."}
"#,
    );
    valid.push_str(corrupt_valid_line.unwrap_or(
        r#"{"user_id":"U2","parent_asin":"A","timestamp":500,"label":4.0,"target":"Alpha, Movies & TV|Drama","history":"..."}"#,
    ));
    valid.push('\n');
    std::fs::write(dir.join("valid.jsonl"), valid).unwrap();
}

#[test]
fn siren_jsonl_mixed_gzip_plain_and_list_strings() {
    let tmp = tempfile::tempdir().unwrap();
    paper_dir(tmp.path(), None);
    let p = format!("dir = '{}'", tmp.path().display());
    let ds = dataset_contract(
        build::<dyn DatasetLoader>("siren-jsonl", &params(&p))
            .unwrap()
            .as_ref(),
    )
    .unwrap();
    assert_eq!(
        (
            ds.users.len(),
            ds.history.len(),
            ds.train.len(),
            ds.valid.len()
        ),
        (2, 5, 1, 2)
    );
    let b = &ds.items[ds.item_index("B").unwrap() as usize];
    assert_eq!(b.title, "Beta, Gamma");
    assert_eq!(b.categories, vec!["Movies & TV", "Comedy"]);
    let e = &ds.items[ds.item_index("E").unwrap() as usize];
    assert_eq!(e.title, "Epsilon");
    assert!(ds.test.is_empty());
    // A test file of the same schema is taken by path.
    let p = format!(
        "dir = '{0}'\ntest = '{0}/valid.jsonl'",
        tmp.path().display()
    );
    assert_eq!(load("siren-jsonl", &p).unwrap().test.len(), 2);
}

#[test]
fn corrupted_jsonl_line_names_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    paper_dir(
        tmp.path(),
        Some(r#"{"user_id":"U2","parent_asin":"A","timestamp":500,"label":4.0,"tar"#),
    );
    let p = format!("dir = '{}'", tmp.path().display());
    let e = load("siren-jsonl", &p).unwrap_err().to_string();
    let file = tmp.path().join("valid.jsonl").display().to_string();
    assert!(e.starts_with(&format!("{file}:2: invalid JSON")), "{e}");
    paper_dir(
        tmp.path(),
        Some(r#"{"user_id":"U2","parent_asin":"A","timestamp":500,"label":0,"target":"x"}"#),
    );
    let e = load("siren-jsonl", &p).unwrap_err().to_string();
    assert!(
        e.contains("valid.jsonl:2: field `label`: rating 0 is outside [1, 5]"),
        "{e}"
    );
    let ds = load("siren-jsonl", &format!("{p}\non_bad_row = 'skip'")).unwrap();
    assert_eq!(ds.valid.len(), 1);
}

/// The shipped split is the paper's, byte for byte: every file matches `SHA256SUMS`.
#[test]
fn shipped_movies_split_matches_its_checksums() {
    use sha2::Digest;
    let dir = siren_tests::paper_movies_dir().expect("data/amazon-movies ships with the project");
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    let mut files = 0;
    for line in sums.lines().filter(|l| !l.trim().is_empty()) {
        let (want, name) = line.split_once("  ").expect("`<sha256>  <file>` lines");
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let got: String = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(got, want, "{name}");
        files += 1;
    }
    assert_eq!(files, 3, "train, valid and history");
}
