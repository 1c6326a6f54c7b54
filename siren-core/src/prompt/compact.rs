//! The `compact` prompt style: the same information as the paper's Table 12 prompt in fewer
//! tokens. Items are `Title | genre, genre` with edition and format notes dropped from titles
//! (a release year is kept) and store boilerplate dropped from category paths; ratings are
//! whole numbers when whole; the instructions are short.
//!
//! Which category words are boilerplate is decided per dataset: a component that most items
//! carry (a store root such as `Movies & TV`) says nothing, nor do store-navigation words
//! (`Featured Categories`, `All Sony Pictures Titles`, `Blu-ray`, ...). At most
//! [`MAX_GENRES`] informative components are kept, most specific last.

use std::collections::{HashMap, HashSet};

use crate::data::Dataset;

/// Most category components kept per item.
pub const MAX_GENRES: usize = 3;

/// Substrings (lower case) of category components that name store navigation, formats or
/// promotions rather than what an item is about.
const BOILERPLATE: [&str; 27] = [
    "featured",
    "titles",
    "home entertainment",
    "home video",
    "studio specials",
    "deals",
    "blowout",
    "gift ideas",
    "central",
    "fully loaded",
    "special editions",
    "boxed sets",
    "independently distributed",
    "characters & series",
    "blu-ray",
    "dvd",
    "dts",
    "4k",
    "ultra hd",
    "general",
    "award winners",
    "new releases",
    "spotlight",
    "today's",
    "prime video",
    "all ",
    "widescreen",
];

/// Category components that most items of `ds` carry (more than half), e.g. a store root.
pub fn frequent_components(ds: &Dataset) -> HashSet<String> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for it in &ds.items {
        let uniq: HashSet<&str> = it.categories.iter().map(String::as_str).collect();
        for c in uniq {
            *count.entry(c).or_default() += 1;
        }
    }
    let n = ds.items.len();
    count
        .into_iter()
        .filter(|&(_, k)| 2 * k > n)
        .map(|(c, _)| c.to_string())
        .collect()
}

/// Whether a category component is store boilerplate.
fn is_boilerplate(c: &str) -> bool {
    let l = c.to_lowercase();
    l == "movies" || l == "movie" || BOILERPLATE.iter().any(|b| l.contains(b))
}

/// The informative components of a category list: neither frequent nor boilerplate, without
/// repeats, the last [`MAX_GENRES`].
pub fn genres(categories: &[String], frequent: &HashSet<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in categories {
        let c = c.trim();
        if c.is_empty() || frequent.contains(c) || is_boilerplate(c) {
            continue;
        }
        if !out.iter().any(|o| o == c) {
            out.push(c.to_string());
        }
    }
    let skip = out.len().saturating_sub(MAX_GENRES);
    out.split_off(skip)
}

/// A title without edition and format notes: `(…)` and `[…]` groups are dropped unless they
/// hold only a four-digit year.
pub fn title(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    let mut rest = t;
    while let Some(start) = rest.find(['(', '[']) {
        let close = if rest.as_bytes()[start] == b'(' {
            ')'
        } else {
            ']'
        };
        let Some(len) = rest[start..].find(close) else {
            break;
        };
        let inner = &rest[start + 1..start + len];
        out.push_str(&rest[..start]);
        if inner.len() == 4 && inner.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(&rest[start..=start + len]);
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    let words: Vec<&str> = out.split_whitespace().collect();
    let t2 = words.join(" ");
    let t2 = t2.trim_end_matches([',', ':', '-', ' ']).to_string();
    if t2.is_empty() {
        t.trim().to_string()
    } else {
        t2
    }
}

/// `Title | genre, genre` (just the title when no genre is informative).
pub fn item_text(ds: &Dataset, item: u32, frequent: &HashSet<String>) -> String {
    let it = &ds.items[item as usize];
    let g = genres(&it.categories, frequent);
    let t = title(&it.title);
    if g.is_empty() {
        t
    } else {
        format!("{t} | {}", g.join(", "))
    }
}

/// A rating as written in compact prompts: `4`, or `4.5` when not whole.
pub fn rating(r: f32) -> String {
    if r.fract() == 0.0 {
        format!("{r:.0}")
    } else {
        format!("{r}")
    }
}

/// The compact system prompt: the task and the answer format in a few words.
pub fn system_prompt(category: &str) -> String {
    format!(
        "Predict the rating (1-5) a user gives a candidate {category} from their tastes. Reason \
         inside <think> </think>, then give the rating inside <answer> </answer>."
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Item;

    #[test]
    fn titles_lose_edition_notes_but_keep_years() {
        assert_eq!(title("The Martian [Blu-ray]"), "The Martian");
        assert_eq!(
            title("Alien (Widescreen Edition) (1979) [DVD]"),
            "Alien (1979)"
        );
        assert_eq!(title("Heat (2 Disc/DVD)"), "Heat");
        assert_eq!(
            title("Crouching Tiger, Hidden Dragon"),
            "Crouching Tiger, Hidden Dragon"
        );
        assert_eq!(title("(Untitled)"), "(Untitled)", "never empty");
        assert_eq!(title("Broken (paren"), "Broken (paren");
    }

    #[test]
    fn store_paths_keep_their_genres() {
        let mut ds = Dataset::new("hand");
        let paths = [
            "Movies & TV|Studio Specials|Sony Pictures Home Entertainment|All Sony Pictures Titles",
            "Movies & TV|Featured Categories|Blu-ray|Action & Adventure",
            "Movies & TV|Science Fiction & Fantasy|Science Fiction|Sci-Fi Action|Futuristic",
            "Movies & TV|Genre for Featured Categories|Drama",
        ];
        for (k, p) in paths.iter().enumerate() {
            let i = ds.intern_item(&format!("i{k}"));
            ds.items[i as usize] = Item {
                id: format!("i{k}"),
                title: format!("Film {k} [Blu-ray]"),
                categories: p.split('|').map(str::to_string).collect(),
                ..Item::default()
            };
        }
        let f = frequent_components(&ds);
        assert!(f.contains("Movies & TV"));
        assert_eq!(item_text(&ds, 0, &f), "Film 0");
        assert_eq!(item_text(&ds, 1, &f), "Film 1 | Action & Adventure");
        assert_eq!(
            item_text(&ds, 2, &f),
            "Film 2 | Science Fiction, Sci-Fi Action, Futuristic"
        );
        assert_eq!(item_text(&ds, 3, &f), "Film 3 | Drama");
        // Genre lists (MovieLens) are kept as they are.
        let ml = ["Action", "Adventure", "Thriller"].map(String::from);
        assert_eq!(genres(&ml, &HashSet::new()), ml.to_vec());
        assert_eq!(rating(4.0), "4");
        assert_eq!(rating(3.5), "3.5");
    }
}
