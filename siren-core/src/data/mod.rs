//! The in-memory data model: items, users, interactions and splits, plus the readers and the
//! processing steps (k-core filter, positive/negative balancing, leave-last-out split). The
//! dataset loaders (plugins of the `dataset` slot) are in [`crate::loaders`].

use std::collections::HashMap;

pub mod io;
pub mod process;

/// An item (movie, book...) with its text fields.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Item {
    /// Source id (e.g. Amazon `parent_asin`, MovieLens `item_id`).
    pub id: String,
    /// Title.
    pub title: String,
    /// Categories / genres, most general first.
    pub categories: Vec<String>,
    /// Free-text description.
    pub description: String,
    /// Feature bullet points.
    pub features: Vec<String>,
}

/// One rating event. `user` and `item` index [`Dataset::users`] and [`Dataset::items`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Interaction {
    /// User index.
    pub user: u32,
    /// Item index.
    pub item: u32,
    /// Rating in `[1, 5]`.
    pub rating: f32,
    /// Milliseconds (or seconds, per source) since the epoch; orders a user's history.
    pub timestamp: i64,
}

/// The evaluated splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitName {
    /// Each user's second-to-last interaction.
    Valid,
    /// Each user's last interaction.
    Test,
}

impl SplitName {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Test => "test",
        }
    }
}

impl std::str::FromStr for SplitName {
    type Err = crate::CoreError;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "valid" => Ok(Self::Valid),
            "test" => Ok(Self::Test),
            other => Err(crate::CoreError::config(
                "eval.split",
                format!("unknown split `{other}`; valid names: test, valid"),
            )),
        }
    }
}

/// A dataset: catalog, users and splits.
///
/// - `history`: every interaction before each user's valid item (what models fit on when
///   evaluating on valid);
/// - `train`: the supervised targets for LLM training (history items that have enough earlier
///   history to build a prompt);
/// - `valid`, `test`: one interaction per user (`test` may be empty when held back).
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// Name for reports.
    pub name: String,
    /// Items, indexed by [`Interaction::item`].
    pub items: Vec<Item>,
    /// User ids, indexed by [`Interaction::user`].
    pub users: Vec<String>,
    /// Interactions before valid, per user in time order.
    pub history: Vec<Interaction>,
    /// LLM training targets.
    pub train: Vec<Interaction>,
    /// Validation targets.
    pub valid: Vec<Interaction>,
    /// Test targets (possibly empty).
    pub test: Vec<Interaction>,
    item_index: HashMap<String, u32>,
    user_index: HashMap<String, u32>,
}

impl Dataset {
    /// An empty dataset called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// Index of item `id`, adding an empty item when new.
    pub fn intern_item(&mut self, id: &str) -> u32 {
        if let Some(&i) = self.item_index.get(id) {
            return i;
        }
        let i = self.items.len() as u32;
        self.items.push(Item {
            id: id.to_string(),
            ..Item::default()
        });
        self.item_index.insert(id.to_string(), i);
        i
    }

    /// Index of user `id`, adding it when new.
    pub fn intern_user(&mut self, id: &str) -> u32 {
        if let Some(&u) = self.user_index.get(id) {
            return u;
        }
        let u = self.users.len() as u32;
        self.users.push(id.to_string());
        self.user_index.insert(id.to_string(), u);
        u
    }

    /// Index of item `id`, if known.
    pub fn item_index(&self, id: &str) -> Option<u32> {
        self.item_index.get(id).copied()
    }

    /// Index of user `id`, if known.
    pub fn user_index(&self, id: &str) -> Option<u32> {
        self.user_index.get(id).copied()
    }

    /// The targets of `split`.
    pub fn split(&self, split: SplitName) -> &[Interaction] {
        match split {
            SplitName::Valid => &self.valid,
            SplitName::Test => &self.test,
        }
    }

    /// What a model may fit on before predicting `split`: `history` for valid, `history` plus
    /// `valid` for test.
    pub fn fit_set(&self, split: SplitName) -> Vec<Interaction> {
        match split {
            SplitName::Valid => self.history.clone(),
            SplitName::Test => {
                let mut v = self.history.clone();
                v.extend_from_slice(&self.valid);
                v
            }
        }
    }

    /// Counts for logs and reports.
    pub fn summary(&self) -> String {
        format!(
            "{}: {} users, {} items, {} history, {} train, {} valid, {} test",
            self.name,
            self.users.len(),
            self.items.len(),
            self.history.len(),
            self.train.len(),
            self.valid.len(),
            self.test.len()
        )
    }
}
