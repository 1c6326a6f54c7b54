//! Loader `movielens`: RecBole atomic files (`ml-100k.inter`, `ml-100k.item`): tab-separated,
//! with a tab-separated typed header such as `user_id:token item_id:token rating:float timestamp:float`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::amazon2023::{default_min_history, default_ratio, default_seed};
use super::{Processing, check_rating, require_file};
use crate::data::io::{BadRows, Lines, OnBadRow};
use crate::data::{Dataset, Interaction};
use crate::traits::DatasetLoader;
use crate::{CoreError, Plugin, Result};

/// Parameters of `movielens`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MovieLensParams {
    /// The `.inter` file.
    pub inter: PathBuf,
    /// The `.item` file (titles, year, genres).
    pub item: PathBuf,
    /// Iterative k-core. Default 0 (ML-100K is already 20-core).
    #[serde(default)]
    pub k_core: usize,
    /// Balance positives (≥ 4) against negatives (≤ 3). Default false.
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
    /// Dataset name in reports. Default: the `.inter` file name.
    #[serde(default)]
    pub name: Option<String>,
}

/// The `movielens` loader.
#[derive(Debug, Clone)]
pub struct MovieLens {
    params: MovieLensParams,
}

impl Plugin for MovieLens {
    type Params = MovieLensParams;
    const SUMMARY: &'static str =
        "RecBole atomic files (ml-100k.inter / ml-100k.item); leave-last-out split";
    fn from_params(params: Self::Params) -> Result<Self> {
        super::check_balance_ratio(params.balance_ratio)?;
        Ok(Self { params })
    }
}

crate::register_dataset!("movielens", MovieLens);

/// A tab-separated atomic file: column positions by field name (the part before `:`).
struct Atomic {
    lines: Lines,
    columns: HashMap<String, usize>,
}

impl Atomic {
    fn open(path: &Path) -> Result<Self> {
        let mut lines = Lines::open(path)?;
        let header = match lines.next_line()? {
            Some((_, h)) => h.to_string(),
            None => {
                return Err(CoreError::Parse {
                    path: path.to_path_buf(),
                    line: 1,
                    field: None,
                    message: "empty file; expected a header such as `user_id:token\t...`".into(),
                });
            }
        };
        let columns = header
            .split('\t')
            .enumerate()
            .map(|(i, c)| (c.split(':').next().unwrap_or(c).trim().to_string(), i))
            .collect();
        Ok(Self { lines, columns })
    }

    fn column(&self, name: &str) -> Result<usize> {
        self.columns
            .get(name)
            .copied()
            .ok_or_else(|| CoreError::Parse {
                path: self.lines.path().to_path_buf(),
                line: 1,
                field: Some(name.to_string()),
                message: "column missing from the header".into(),
            })
    }
}

fn field<'a>(
    path: &Path,
    line: usize,
    cells: &[&'a str],
    idx: usize,
    name: &str,
) -> Result<&'a str> {
    cells.get(idx).copied().ok_or_else(|| CoreError::Parse {
        path: path.to_path_buf(),
        line,
        field: Some(name.to_string()),
        message: format!("missing (the line has {} columns)", cells.len()),
    })
}

fn number(path: &Path, line: usize, s: &str, name: &str) -> Result<f64> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .ok_or_else(|| CoreError::Parse {
            path: path.to_path_buf(),
            line,
            field: Some(name.to_string()),
            message: format!("expected a number, found {s:?}"),
        })
}

/// Title columns recognised in `.item` files, in order of preference.
const TITLE_COLUMNS: [&str; 3] = ["movie_title", "title", "name"];
/// Year columns recognised in `.item` files.
const YEAR_COLUMNS: [&str; 2] = ["release_year", "year"];
/// Genre / category columns recognised in `.item` files.
const GENRE_COLUMNS: [&str; 5] = ["class", "genre", "genres", "categories", "category"];

/// Genres of a cell: separated by spaces (`token_seq`, or a `token` holding several), `|` or
/// `,`.
fn split_genres(cell: &str) -> Vec<String> {
    cell.split(|c: char| c.is_whitespace() || c == '|' || c == ',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_string)
        .collect()
}

impl DatasetLoader for MovieLens {
    fn load(&self) -> Result<Dataset> {
        let p = &self.params;
        require_file(&p.inter)?;
        require_file(&p.item)?;
        let mut ds = Dataset::new(super::dataset_name(&p.name, &p.inter));
        let mut bad = BadRows::new(p.on_bad_row);

        // Items: RecBole's movie datasets name their text columns differently (ml-100k
        // `class:token_seq`, ml-1m `genre:token_seq`, others `genre:token`).
        let mut items = Atomic::open(&p.item)?;
        let c_id = items.column("item_id")?;
        let pick = |names: &[&str]| -> Option<(usize, String)> {
            names
                .iter()
                .find_map(|n| items.columns.get(*n).map(|&c| (c, (*n).to_string())))
        };
        let title_col = pick(&TITLE_COLUMNS);
        let year_col = pick(&YEAR_COLUMNS);
        let genre_col = pick(&GENRE_COLUMNS);
        let used = |c: &Option<(usize, String)>| {
            c.as_ref()
                .map_or("none".to_string(), |(_, n)| format!("`{n}`"))
        };
        tracing::info!(
            "{}: item fields used: title {}, year {}, genres {}",
            p.item.display(),
            used(&title_col),
            used(&year_col),
            used(&genre_col)
        );
        if genre_col.is_none() {
            tracing::warn!(
                "{}: no genre column (looked for {}); prompts and topic names will use titles only",
                p.item.display(),
                GENRE_COLUMNS.join(", ")
            );
        }
        let (c_title, c_year, c_class) = (
            title_col.map(|c| c.0),
            year_col.map(|c| c.0),
            genre_col.map(|c| c.0),
        );
        let item_path = p.item.clone();
        while let Some((n, text)) = items.lines.next_line()? {
            if text.trim().is_empty() {
                continue;
            }
            let cells: Vec<&str> = text.split('\t').collect();
            let id = match field(&item_path, n, &cells, c_id, "item_id") {
                Ok(id) => id.trim().to_string(),
                Err(e) => {
                    bad.handle(e)?;
                    continue;
                }
            };
            let i = ds.intern_item(&id);
            let get =
                |c: Option<usize>| c.and_then(|c| cells.get(c)).map(|s| s.trim()).unwrap_or("");
            let title = get(c_title);
            let year = get(c_year);
            let it = &mut ds.items[i as usize];
            it.title = if year.is_empty() {
                title.to_string()
            } else {
                format!("{title} ({year})")
            };
            it.categories = split_genres(get(c_class));
        }

        // Interactions.
        let mut inter = Atomic::open(&p.inter)?;
        let (cu, ci, cr, ct) = (
            inter.column("user_id")?,
            inter.column("item_id")?,
            inter.column("rating")?,
            inter.column("timestamp")?,
        );
        let inter_path = p.inter.clone();
        let mut raw = Vec::new();
        let mut unknown_items = 0usize;
        while let Some((n, text)) = inter.lines.next_line()? {
            if text.trim().is_empty() {
                continue;
            }
            let cells: Vec<&str> = text.split('\t').collect();
            let parsed = (|| -> Result<(String, String, f32, i64)> {
                let user = field(&inter_path, n, &cells, cu, "user_id")?;
                let item = field(&inter_path, n, &cells, ci, "item_id")?;
                let r = number(
                    &inter_path,
                    n,
                    field(&inter_path, n, &cells, cr, "rating")?,
                    "rating",
                )?;
                let rating = check_rating(r).map_err(|m| CoreError::Parse {
                    path: inter_path.clone(),
                    line: n,
                    field: Some("rating".into()),
                    message: m,
                })?;
                let t = number(
                    &inter_path,
                    n,
                    field(&inter_path, n, &cells, ct, "timestamp")?,
                    "timestamp",
                )?;
                Ok((
                    user.trim().to_string(),
                    item.trim().to_string(),
                    rating,
                    t as i64,
                ))
            })();
            match parsed {
                Ok((user, item, rating, timestamp)) => {
                    let Some(item) = ds.item_index(&item) else {
                        unknown_items += 1;
                        continue;
                    };
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
        bad.report(&p.inter.display().to_string());
        if unknown_items > 0 {
            tracing::warn!(
                "{unknown_items} interactions skipped: item not in {}",
                p.item.display()
            );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genre_cells_of_recbole_movie_datasets() {
        assert_eq!(
            split_genres("Animation Children's Comedy"),
            vec!["Animation", "Children's", "Comedy"]
        );
        assert_eq!(
            split_genres("Action|Film-Noir"),
            vec!["Action", "Film-Noir"]
        );
        assert_eq!(split_genres("  "), Vec::<String>::new());
    }

    #[test]
    fn ml_1m_style_columns_give_genres() {
        let dir = tempfile::tempdir().unwrap();
        let item = dir.path().join("ml-1m.item");
        let inter = dir.path().join("ml-1m.inter");
        std::fs::write(
            &item,
            "item_id:token\tmovie_title:token_seq\trelease_year:token\tgenre:token_seq\n\
             1\tToy Story\t1995\tAnimation Children's Comedy\n2\tHeat\t1995\tAction Crime Thriller\n\
             3\tFargo\t1996\tCrime Drama Thriller\n",
        )
        .unwrap();
        let mut rows =
            String::from("user_id:token\titem_id:token\trating:float\ttimestamp:float\n");
        for (k, (u, i)) in [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3)]
            .iter()
            .enumerate()
        {
            rows.push_str(&format!("{u}\t{i}\t4\t{k}\n"));
        }
        std::fs::write(&inter, rows).unwrap();
        let ds = MovieLens::from_params(MovieLensParams {
            inter,
            item,
            k_core: 0,
            balance: false,
            balance_ratio: 1.0,
            seed: 1,
            min_history: 0,
            on_bad_row: OnBadRow::Error,
            name: None,
        })
        .unwrap()
        .load()
        .unwrap();
        let toy = &ds.items[ds.item_index("1").unwrap() as usize];
        assert_eq!(toy.title, "Toy Story (1995)");
        assert_eq!(toy.categories, vec!["Animation", "Children's", "Comedy"]);
    }
}
