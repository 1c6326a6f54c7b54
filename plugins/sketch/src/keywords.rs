//! `keywords`: deterministic topic names from class-based TF-IDF (BERTopic's c-TF-IDF) over
//! the texts of each topic's central items: the `n_words` terms that are frequent in the topic
//! and rare in the others, e.g. "Horror, Slasher, Zombie".

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;
use siren_core::traits::TopicNamer;
use siren_core::{CoreError, Plugin, Result};

/// English function words, the field labels of item texts, and store-catalog boilerplate
/// (formats, "Featured Categories", "Studio Specials", ...).
#[rustfmt::skip]
const STOPWORDS: &[&str] = &[
    "the", "and", "for", "with", "from", "that", "this", "are", "was", "were", "has", "have",
    "had", "not", "but", "all", "any", "can", "its", "into", "out", "his", "her", "their",
    "they", "them", "you", "your", "our", "who", "what", "when", "where", "which", "will",
    "would", "there", "than", "then", "also", "more", "most", "some", "such", "only", "other",
    "over", "under", "about", "after", "before", "one", "two", "three", "new", "vol", "volume",
    "edition", "title", "category", "feature", "features", "description", "genres", "genre",
    "rating", "none", "n/a", "dvd", "blu", "ray", "vhs", "set", "disc", "discs", "season",
    "complete", "collection", "series", "special", "movie", "movies", "film", "films",
    "categories", "featured", "specials", "studio", "studios", "home", "entertainment",
    "titles", "general", "deals", "today's", "releases", "fully", "loaded", "dvds", "award",
    "winners", "central", "widescreen", "digital", "uhd", "ultra", "blu-ray", "bluray",
    "pictures", "video", "boxed", "sets", "box", "format", "formats", "region", "import",
];

/// Parameters of `keywords`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeywordsParams {
    /// Terms per name (default 3).
    pub n_words: usize,
    /// Extra words never used in names.
    pub stopwords: Vec<String>,
}

impl Default for KeywordsParams {
    fn default() -> Self {
        Self {
            n_words: 3,
            stopwords: Vec::new(),
        }
    }
}

/// The `keywords` namer.
#[derive(Debug, Clone)]
pub struct Keywords {
    n_words: usize,
    stop: HashSet<String>,
}

impl Plugin for Keywords {
    type Params = KeywordsParams;
    const SUMMARY: &'static str =
        "class-based TF-IDF keywords of each topic's central items (deterministic)";
    fn from_params(p: KeywordsParams) -> Result<Self> {
        if p.n_words == 0 {
            return Err(CoreError::config(
                "topic-namer keywords.n_words",
                "must be at least 1",
            ));
        }
        let mut stop: HashSet<String> = STOPWORDS.iter().map(|s| s.to_string()).collect();
        stop.extend(p.stopwords.iter().map(|s| s.to_lowercase()));
        Ok(Self {
            n_words: p.n_words,
            stop,
        })
    }
}

siren_core::register_namer!("keywords", Keywords);

impl Keywords {
    fn terms<'a>(&'a self, text: &'a str) -> impl Iterator<Item = String> + 'a {
        text.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '\''))
            .map(|w| {
                w.trim_matches(|c: char| c == '-' || c == '\'')
                    .to_lowercase()
            })
            .filter(move |w| {
                w.chars().count() >= 3
                    && !w.chars().all(|c| c.is_ascii_digit())
                    && !self.stop.contains(w)
            })
    }
}

/// Makes names distinct by suffixing repeats: "X", "X (2)", "X (3)".
pub fn dedupe(names: Vec<String>) -> Vec<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    names
        .into_iter()
        .map(|n| {
            let c = seen.entry(n.to_lowercase()).or_insert(0);
            *c += 1;
            if *c == 1 { n } else { format!("{n} ({c})") }
        })
        .collect()
}

fn title_case(w: &str) -> String {
    let mut c = w.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

impl TopicNamer for Keywords {
    fn name(&self, central_texts: &[Vec<String>], _seed: u64) -> Result<Vec<String>> {
        // Term counts per topic (BTreeMap: deterministic order).
        let counts: Vec<BTreeMap<String, f64>> = central_texts
            .iter()
            .map(|texts| {
                let mut m = BTreeMap::new();
                for t in texts {
                    for w in self.terms(t) {
                        *m.entry(w).or_insert(0.0) += 1.0;
                    }
                }
                m
            })
            .collect();
        let mut total: BTreeMap<&str, f64> = BTreeMap::new();
        for m in &counts {
            for (w, c) in m {
                *total.entry(w.as_str()).or_insert(0.0) += c;
            }
        }
        let words: f64 = total.values().sum();
        let avg = words / counts.len().max(1) as f64;
        let names = counts
            .iter()
            .enumerate()
            .map(|(t, m)| {
                let mut scored: Vec<(f64, &str)> = m
                    .iter()
                    .map(|(w, &c)| (c * (1.0 + avg / total[w.as_str()]).ln(), w.as_str()))
                    .collect();
                scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
                let top: Vec<String> = scored
                    .iter()
                    .take(self.n_words)
                    .map(|x| title_case(x.1))
                    .collect();
                if top.is_empty() {
                    format!("Topic {}", t + 1)
                } else {
                    top.join(", ")
                }
            })
            .collect();
        Ok(dedupe(names))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinctive_words_win() {
        let k = Keywords::from_params(KeywordsParams {
            n_words: 2,
            ..KeywordsParams::default()
        })
        .unwrap();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let names = k
            .name(
                &[
                    s(&[
                        "Title: Alien.\nCategory: Movies & TV|Horror|Space.",
                        "Title: The Thing.\nCategory: Movies & TV|Horror|Space.",
                    ]),
                    s(&[
                        "Title: Notting Hill.\nCategory: Movies & TV|Romance|Comedy.",
                        "Title: Amelie.\nCategory: Movies & TV|Romance|Comedy.",
                    ]),
                    s(&[]),
                ],
                0,
            )
            .unwrap();
        assert_eq!(names[0], "Horror, Space");
        assert_eq!(names[1], "Comedy, Romance");
        assert_eq!(names[2], "Topic 3");
    }

    #[test]
    fn duplicates_get_suffixes() {
        let v = dedupe(vec!["A".into(), "B".into(), "a".into(), "A".into()]);
        assert_eq!(v, vec!["A", "B", "a (2)", "A (3)"]);
    }
}
