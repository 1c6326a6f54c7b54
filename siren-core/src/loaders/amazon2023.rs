//! Loader `amazon2023`: raw Amazon Reviews 2023 files — `<Category>.jsonl[.gz]` reviews
//! (`rating`, `parent_asin`, `user_id`, `timestamp`) and `meta_<Category>.jsonl[.gz]` item
//! metadata (`parent_asin`, `title`, `categories`, `description`, `features`) — processed by
//! optional balancing, the k-core filter and the leave-last-out split.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Processing, check_rating, require_file};
use crate::data::io::{BadRows, JsonRow, Lines, OnBadRow};
use crate::data::{Dataset, Interaction, Item};
use crate::traits::DatasetLoader;
use crate::{Plugin, Result};

/// Parameters of `amazon2023`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Amazon2023Params {
    /// Reviews file, e.g. `Movies_and_TV.jsonl.gz`.
    pub reviews: PathBuf,
    /// Metadata file, e.g. `meta_Movies_and_TV.jsonl.gz`.
    pub meta: PathBuf,
    /// Iterative k-core: users and items keep at least this many interactions. Default 5.
    #[serde(default = "default_k")]
    pub k_core: usize,
    /// Balance positives (≥ 4) against negatives (≤ 3) before the k-core. Default false.
    #[serde(default)]
    pub balance: bool,
    /// Majority : minority ratio kept when balancing (≥ 1). Default 1.
    #[serde(default = "default_ratio")]
    pub balance_ratio: f64,
    /// Seed for balancing. Default 42.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Earlier interactions a history item needs to become a `train` target. Default 3.
    #[serde(default = "default_min_history")]
    pub min_history: usize,
    /// `error` (default) or `skip` malformed / out-of-range rows.
    #[serde(default = "super::default_on_bad_row")]
    pub on_bad_row: OnBadRow,
    /// Dataset name in reports. Default: the reviews file name.
    #[serde(default)]
    pub name: Option<String>,
}

pub(crate) fn default_k() -> usize {
    5
}
pub(crate) fn default_ratio() -> f64 {
    1.0
}
pub(crate) fn default_seed() -> u64 {
    42
}
pub(crate) fn default_min_history() -> usize {
    3
}

/// The `amazon2023` loader.
#[derive(Debug, Clone)]
pub struct Amazon2023 {
    params: Amazon2023Params,
}

impl Plugin for Amazon2023 {
    type Params = Amazon2023Params;
    const SUMMARY: &'static str =
        "raw Amazon Reviews 2023 reviews + meta JSONL; k-core, balancing, leave-last-out split";
    fn from_params(params: Self::Params) -> Result<Self> {
        super::check_balance_ratio(params.balance_ratio)?;
        Ok(Self { params })
    }
}

crate::register_dataset!("amazon2023", Amazon2023);

fn join_text(row: &JsonRow<'_>, field: &str) -> Result<Vec<String>> {
    if !row.has(field) {
        return Ok(Vec::new());
    }
    row.str_list(field)
}

fn read_meta(path: &Path, bad: &mut BadRows) -> Result<HashMap<String, Item>> {
    let mut lines = Lines::open(path)?;
    let mut items = HashMap::new();
    while let Some((n, text)) = lines.next_line()? {
        if text.trim().is_empty() {
            continue;
        }
        let parsed = (|| -> Result<Item> {
            let row = JsonRow::parse(path, n, text)?;
            Ok(Item {
                id: row.str("parent_asin")?.to_string(),
                title: row.str_or_empty("title")?.trim().to_string(),
                categories: join_text(&row, "categories")?,
                description: join_text(&row, "description")?.join(" "),
                features: join_text(&row, "features")?,
            })
        })();
        match parsed {
            Ok(it) => {
                items.insert(it.id.clone(), it);
            }
            Err(e) => bad.handle(e)?,
        }
    }
    Ok(items)
}

impl DatasetLoader for Amazon2023 {
    fn load(&self) -> Result<Dataset> {
        let p = &self.params;
        require_file(&p.reviews)?;
        require_file(&p.meta)?;
        let mut ds = Dataset::new(super::dataset_name(&p.name, &p.reviews));
        let mut bad = BadRows::new(p.on_bad_row);
        let meta = read_meta(&p.meta, &mut bad)?;

        let mut lines = Lines::open(&p.reviews)?;
        let mut raw = Vec::new();
        let mut no_meta = 0usize;
        while let Some((n, text)) = lines.next_line()? {
            if text.trim().is_empty() {
                continue;
            }
            let path = p.reviews.as_path();
            let parsed = (|| -> Result<(String, String, f32, i64)> {
                let row = JsonRow::parse(path, n, text)?;
                let rating =
                    check_rating(row.f64("rating")?).map_err(|m| row.error("rating", m))?;
                Ok((
                    row.str("user_id")?.to_string(),
                    row.str("parent_asin")?.to_string(),
                    rating,
                    row.i64("timestamp")?,
                ))
            })();
            match parsed {
                Ok((user, asin, rating, timestamp)) => {
                    let Some(it) = meta.get(&asin) else {
                        no_meta += 1;
                        continue;
                    };
                    let known = ds.item_index(&asin).is_some();
                    let item = ds.intern_item(&asin);
                    if !known {
                        ds.items[item as usize] = it.clone();
                    }
                    let user = ds.intern_user(&user);
                    raw.push(Interaction {
                        user,
                        item,
                        rating,
                        timestamp,
                    });
                }
                Err(e) => bad.handle(e)?,
            }
        }
        bad.report(&p.reviews.display().to_string());
        if no_meta > 0 {
            tracing::warn!("{no_meta} reviews skipped: their parent_asin has no metadata row");
        }
        Processing {
            k_core: p.k_core,
            balance: p.balance,
            balance_ratio: p.balance_ratio,
            seed: p.seed,
            min_history: p.min_history,
        }
        .apply(&mut ds, raw)?;
        Ok(ds)
    }
}
