//! Loader `siren-jsonl`: the paper's preprocessed split (`history`, `train`, `valid` and an
//! optional `test` JSONL file, gzip or plain). See `shared/METHOD.md` for the schema.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{check_rating, first_existing, require_file};
use crate::data::io::{BadRows, JsonRow, Lines, OnBadRow};
use crate::data::{Dataset, Interaction};
use crate::traits::DatasetLoader;
use crate::{Plugin, Result};

/// Parameters of `siren-jsonl`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SirenJsonlParams {
    /// Folder with `history.jsonl[.gz]`, `train.jsonl[.gz]` and `valid.jsonl[.gz]`.
    pub dir: PathBuf,
    /// A test file of the same schema as `valid` (held-back split), by path. Default: none.
    #[serde(default)]
    pub test: Option<PathBuf>,
    /// `error` (default) or `skip` malformed / out-of-range rows.
    #[serde(default = "super::default_on_bad_row")]
    pub on_bad_row: OnBadRow,
    /// Dataset name in reports. Default: the folder name.
    #[serde(default)]
    pub name: Option<String>,
}

/// The `siren-jsonl` loader.
#[derive(Debug, Clone)]
pub struct SirenJsonl {
    params: SirenJsonlParams,
}

impl Plugin for SirenJsonl {
    type Params = SirenJsonlParams;
    const SUMMARY: &'static str =
        "the paper's preprocessed split: history/train/valid[/test] JSONL, gzip or plain";
    fn from_params(params: Self::Params) -> Result<Self> {
        Ok(Self { params })
    }
}

crate::register_dataset!("siren-jsonl", SirenJsonl);

/// Splits a history line `Title, cat|cat, rating` into title and categories. Titles may
/// contain commas; the last two comma fields are the categories and the rating.
fn parse_history_line(line: &str) -> (String, Vec<String>) {
    let mut parts = line.rsplitn(3, ", ");
    let _rating = parts.next();
    match (parts.next(), parts.next()) {
        (Some(cats), Some(title)) => (title.trim().to_string(), split_categories(cats)),
        _ => (line.trim().to_string(), Vec::new()),
    }
}

/// Splits a target `Title, cat|cat` into title and categories.
fn parse_target(text: &str) -> (String, Vec<String>) {
    match text.rsplit_once(", ") {
        Some((title, cats)) => (title.trim().to_string(), split_categories(cats)),
        None => (text.trim().to_string(), Vec::new()),
    }
}

fn split_categories(s: &str) -> Vec<String> {
    s.split('|')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

fn set_text(ds: &mut Dataset, item: u32, title: String, categories: Vec<String>) {
    let it = &mut ds.items[item as usize];
    if it.title.is_empty() {
        it.title = title;
        it.categories = categories;
    }
}

/// A target row of train / valid / test.
struct TargetRow {
    user: String,
    item: String,
    timestamp: i64,
    label: f32,
    target: String,
}

fn read_targets(path: &Path, bad: &mut BadRows) -> Result<Vec<TargetRow>> {
    let mut lines = Lines::open(path)?;
    let mut out = Vec::new();
    while let Some((n, text)) = lines.next_line()? {
        if text.trim().is_empty() {
            continue;
        }
        let parsed = (|| -> Result<TargetRow> {
            let row = JsonRow::parse(path, n, text)?;
            let label = row.f64("label")?;
            let label = check_rating(label).map_err(|m| row.error("label", m))?;
            Ok(TargetRow {
                user: row.str("user_id")?.to_string(),
                item: row.str("parent_asin")?.to_string(),
                timestamp: row.i64("timestamp")?,
                label,
                target: row.str_or_empty("target")?.to_string(),
            })
        })();
        match parsed {
            Ok(r) => out.push(r),
            Err(e) => bad.handle(e)?,
        }
    }
    Ok(out)
}

struct HistoryRow {
    user: String,
    asins: Vec<String>,
    ratings: Vec<f32>,
    lines: Vec<String>,
}

fn read_history(path: &Path, bad: &mut BadRows) -> Result<Vec<HistoryRow>> {
    let mut lines = Lines::open(path)?;
    let mut out = Vec::new();
    while let Some((n, text)) = lines.next_line()? {
        if text.trim().is_empty() {
            continue;
        }
        let parsed = (|| -> Result<HistoryRow> {
            let row = JsonRow::parse(path, n, text)?;
            let asins = row.str_list("history_asins")?;
            let ratings = row
                .f64_list("history_ratings")?
                .into_iter()
                .map(|r| check_rating(r).map_err(|m| row.error("history_ratings", m)))
                .collect::<Result<Vec<f32>>>()?;
            if asins.len() != ratings.len() {
                return Err(row.error(
                    "history_ratings",
                    format!(
                        "{} ratings for {} history_asins",
                        ratings.len(),
                        asins.len()
                    ),
                ));
            }
            let text = row.str_or_empty("history")?;
            let lines: Vec<String> = if text.is_empty() {
                Vec::new()
            } else {
                text.split('\n').map(str::to_string).collect()
            };
            if !lines.is_empty() && lines.len() != asins.len() {
                return Err(row.error(
                    "history",
                    format!("{} lines for {} history_asins", lines.len(), asins.len()),
                ));
            }
            Ok(HistoryRow {
                user: row.str("user_id")?.to_string(),
                asins,
                ratings,
                lines,
            })
        })();
        match parsed {
            Ok(r) => out.push(r),
            Err(e) => bad.handle(e)?,
        }
    }
    Ok(out)
}

impl SirenJsonl {
    fn file(&self, stem: &str) -> Result<PathBuf> {
        let d = &self.params.dir;
        first_existing(&[
            d.join(format!("{stem}.jsonl.gz")),
            d.join(format!("{stem}.jsonl")),
        ])
    }
}

impl DatasetLoader for SirenJsonl {
    fn load(&self) -> Result<Dataset> {
        let name = super::dataset_name(&self.params.name, &self.params.dir);
        let mut ds = Dataset::new(name);
        let mut bad = BadRows::new(self.params.on_bad_row);

        let history_path = self.file("history")?;
        let train_path = self.file("train")?;
        let valid_path = self.file("valid")?;
        if let Some(t) = &self.params.test {
            require_file(t)?;
        }

        let train_rows = read_targets(&train_path, &mut bad)?;
        let valid_rows = read_targets(&valid_path, &mut bad)?;
        let test_rows = match &self.params.test {
            Some(t) => read_targets(t, &mut bad)?,
            None => Vec::new(),
        };
        let history_rows = read_history(&history_path, &mut bad)?;

        // Timestamps of history items come from the train rows that target them.
        let mut known_ts: HashMap<(String, String), i64> = HashMap::new();
        for r in &train_rows {
            known_ts.insert((r.user.clone(), r.item.clone()), r.timestamp);
        }

        for h in &history_rows {
            let user = ds.intern_user(&h.user);
            let ts: Vec<Option<i64>> = h
                .asins
                .iter()
                .map(|a| known_ts.get(&(h.user.clone(), a.clone())).copied())
                .collect();
            let filled = fill_timestamps(&ts);
            for (k, asin) in h.asins.iter().enumerate() {
                let item = ds.intern_item(asin);
                if let Some(line) = h.lines.get(k) {
                    let (title, cats) = parse_history_line(line);
                    set_text(&mut ds, item, title, cats);
                }
                ds.history.push(Interaction {
                    user,
                    item,
                    rating: h.ratings[k],
                    timestamp: filled[k],
                });
            }
        }

        let targets = |rows: Vec<TargetRow>, ds: &mut Dataset| -> Vec<Interaction> {
            rows.into_iter()
                .map(|r| {
                    let user = ds.intern_user(&r.user);
                    let item = ds.intern_item(&r.item);
                    let (title, cats) = parse_target(&r.target);
                    set_text(ds, item, title, cats);
                    Interaction {
                        user,
                        item,
                        rating: r.label,
                        timestamp: r.timestamp,
                    }
                })
                .collect()
        };
        ds.train = targets(train_rows, &mut ds);
        ds.valid = targets(valid_rows, &mut ds);
        ds.test = targets(test_rows, &mut ds);
        bad.report(&format!("{}", self.params.dir.display()));

        if ds.history.is_empty() || ds.valid.is_empty() {
            return Err(crate::CoreError::Data(format!(
                "dataset in {} has {} history and {} valid interactions; both must be non-empty",
                self.params.dir.display(),
                ds.history.len(),
                ds.valid.len()
            )));
        }
        Ok(ds)
    }
}

/// Fills unknown timestamps with the next known one (else the previous, else 0), so that a
/// user's history stays in its given order.
fn fill_timestamps(ts: &[Option<i64>]) -> Vec<i64> {
    let mut out = vec![0i64; ts.len()];
    let mut next: Option<i64> = None;
    for k in (0..ts.len()).rev() {
        if ts[k].is_some() {
            next = ts[k];
        }
        out[k] = next.unwrap_or(i64::MIN);
    }
    let mut prev = 0i64;
    for v in out.iter_mut() {
        if *v == i64::MIN {
            *v = prev;
        }
        prev = *v;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_lines_with_commas_in_titles() {
        let (t, c) = parse_history_line("Crouching Tiger, Hidden Dragon, Movies & TV|Drama, 4.0");
        assert_eq!(t, "Crouching Tiger, Hidden Dragon");
        assert_eq!(c, vec!["Movies & TV", "Drama"]);
        let (t, c) = parse_target("Thor: Ragnarok (Feature), Movies & TV|Science Fiction");
        assert_eq!(t, "Thor: Ragnarok (Feature)");
        assert_eq!(c, vec!["Movies & TV", "Science Fiction"]);
    }

    #[test]
    fn timestamps_are_filled_in_order() {
        assert_eq!(
            fill_timestamps(&[None, None, Some(5), None, Some(9), None]),
            vec![5, 5, 5, 9, 9, 9]
        );
        assert_eq!(fill_timestamps(&[None, None]), vec![0, 0]);
    }

    /// A line for a targets or history file: a valid row, a valid row with one field replaced
    /// by a value of another type or range, JSON that is not an object, or broken text.
    fn random_line(rng: &mut rand::rngs::StdRng) -> String {
        use rand::Rng;
        let target = serde_json::json!({"user_id": "u1", "parent_asin": "i1",
            "timestamp": 1_700_000_000i64, "label": 4.0, "target": "Heat, Movies|Crime"});
        let history = serde_json::json!({"user_id": "u1", "history_asins": ["i1", "i2"],
            "history_ratings": [4.0, 2.0], "history": "A, Movies, 4.0\nB, Movies, 2.0"});
        let odd = [
            serde_json::json!(null),
            serde_json::json!(-3),
            serde_json::json!(9.5),
            serde_json::json!(f64::MAX),
            serde_json::json!("4"),
            serde_json::json!("x"),
            serde_json::json!([1, "a", null]),
            serde_json::json!({"a": 1}),
            serde_json::json!(""),
            serde_json::json!(["i1"]),
        ];
        match rng.random_range(0..6) {
            0 | 1 => {
                let mut v = if rng.random() { target } else { history };
                let keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
                let k = &keys[rng.random_range(0..keys.len())];
                match rng.random_range(0..3) {
                    0 => v[k] = odd[rng.random_range(0..odd.len())].clone(),
                    1 => {
                        v.as_object_mut().unwrap().remove(k);
                    }
                    _ => {}
                }
                v.to_string()
            }
            2 => odd[rng.random_range(0..odd.len())].to_string(),
            3 => {
                let v = if rng.random() { target } else { history }.to_string();
                v[..rng.random_range(0..v.len())].to_string()
            }
            4 => "{\"user_id\": \"u\u{0}\", \"label\": 1e999}".to_string(),
            _ => String::new(),
        }
    }

    #[test]
    fn thousands_of_generated_lines_never_panic_and_errors_name_file_and_line() {
        use rand::SeedableRng;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.jsonl");
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let (mut errors, mut skipped) = (0, 0);
        for _ in 0..300 {
            let lines: Vec<String> = (0..12).map(|_| random_line(&mut rng)).collect();
            std::fs::write(&path, lines.join("\n")).unwrap();
            for read in [0, 1] {
                let mut bad = BadRows::new(OnBadRow::Error);
                let r = if read == 0 {
                    read_targets(&path, &mut bad).map(|_| ())
                } else {
                    read_history(&path, &mut bad).map(|_| ())
                };
                if let Err(e) = r {
                    errors += 1;
                    let msg = e.to_string();
                    let crate::CoreError::Parse { line, .. } = e else {
                        panic!("not a parse error naming a line: {msg}");
                    };
                    assert!((1..=lines.len()).contains(&line), "{msg}");
                    assert!(msg.contains("rows.jsonl"), "{msg}");
                }
                let mut skip = BadRows::new(OnBadRow::Skip);
                let ok = if read == 0 {
                    read_targets(&path, &mut skip).map(|v| v.len())
                } else {
                    read_history(&path, &mut skip).map(|v| v.len())
                };
                assert!(ok.is_ok(), "skipping bad rows must not fail: {ok:?}");
                skipped += skip.skipped();
            }
        }
        assert!(
            errors > 100 && skipped > 100,
            "errors {errors}, skipped {skipped}"
        );
    }
}
