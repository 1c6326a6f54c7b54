//! Requests as JSON (`siren serve`'s bodies, `siren rank`'s input lines) to queries, with
//! errors that name the offending field.

use serde_json::Value;

use crate::data::Dataset;

use super::{Candidate, NewItem, NewRating, Query, Subject};

/// A request that cannot be served: the field and what was expected.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// The field, as a JSON path (`candidates[3]`, `history[0].rating`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// An error of `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "field `{}`: {}", self.field, self.message)
    }
}

/// How large a request may be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Most candidates of a ranking request.
    pub max_candidates: usize,
    /// Most rated items of an inline history.
    pub max_history: usize,
}

/// Most characters of a new item's title (a longer text is not a title, and it would crowd the
/// user's part out of the model's context).
pub const MAX_TITLE_CHARS: usize = 300;
/// Most genres of a new item.
pub const MAX_GENRES: usize = 16;
/// Most characters of one genre.
pub const MAX_GENRE_CHARS: usize = 64;

/// Checks a new item's title and genres against the text limits.
fn check_text(title: &str, genres: &[String], field: &str) -> Result<(), FieldError> {
    if title.trim().is_empty() {
        return Err(FieldError::new(format!("{field}.title"), "is empty"));
    }
    let n = title.chars().count();
    if n > MAX_TITLE_CHARS {
        return Err(FieldError::new(
            format!("{field}.title"),
            format!("{n} characters; at most {MAX_TITLE_CHARS}"),
        ));
    }
    if genres.len() > MAX_GENRES {
        return Err(FieldError::new(
            format!("{field}.genres"),
            format!("{} genres; at most {MAX_GENRES}", genres.len()),
        ));
    }
    for (g, genre) in genres.iter().enumerate() {
        let n = genre.chars().count();
        if n > MAX_GENRE_CHARS {
            return Err(FieldError::new(
                format!("{field}.genres[{g}]"),
                format!("{n} characters; at most {MAX_GENRE_CHARS}"),
            ));
        }
    }
    Ok(())
}

/// A ranking request: the query and how many of its candidates to return.
#[derive(Debug, Clone, PartialEq)]
pub struct RankRequest {
    /// The user and the candidates.
    pub query: Query,
    /// How many candidates to return, best first.
    pub k: usize,
}

fn object(v: &Value) -> Result<&serde_json::Map<String, Value>, FieldError> {
    v.as_object()
        .ok_or_else(|| FieldError::new("(body)", "expected a JSON object"))
}

fn id(v: &Value, field: &str) -> Result<String, FieldError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(FieldError::new(field, "expected an id (string or number)")),
    }
}

fn known_item(ds: &Dataset, v: &Value, field: &str) -> Result<u32, FieldError> {
    let s = id(v, field)?;
    ds.item_index(&s)
        .ok_or_else(|| FieldError::new(field, format!("`{s}` is not an item of `{}`", ds.name)))
}

fn new_item(v: &Value, field: &str) -> Result<NewItem, FieldError> {
    let it: NewItem = serde_json::from_value(v.clone()).map_err(|e| {
        FieldError::new(
            field,
            format!("expected {{\"title\": string, \"genres\": [string]}}: {e}"),
        )
    })?;
    check_text(&it.title, &it.genres, field)?;
    Ok(it)
}

fn candidate(ds: &Dataset, v: &Value, field: &str) -> Result<Candidate, FieldError> {
    if v.is_object() {
        Ok(Candidate::New(new_item(v, field)?))
    } else {
        Ok(Candidate::Known(known_item(ds, v, field)?))
    }
}

/// The index of the known user `v` (field `user`).
pub fn known_user(ds: &Dataset, v: &Value) -> Result<u32, FieldError> {
    let s = id(v, "user")?;
    ds.user_index(&s)
        .ok_or_else(|| FieldError::new("user", format!("`{s}` is not a user of `{}`", ds.name)))
}

fn subject(
    ds: &Dataset,
    m: &serde_json::Map<String, Value>,
    limits: Limits,
) -> Result<Subject, FieldError> {
    match (m.get("user"), m.get("history")) {
        (Some(_), Some(_)) => Err(FieldError::new(
            "user",
            "give either `user` (a known user) or `history` (a new user), not both",
        )),
        (None, None) => Err(FieldError::new(
            "user",
            "missing: give `user` (a known user's id) or `history` (a new user's rated items)",
        )),
        (Some(u), None) => known_user(ds, u).map(Subject::Known),
        (None, Some(h)) => {
            let arr = h.as_array().ok_or_else(|| {
                FieldError::new(
                    "history",
                    "expected an array of {\"title\", \"genres\", \"rating\"}",
                )
            })?;
            if arr.len() > limits.max_history {
                return Err(FieldError::new(
                    "history",
                    format!("{} items; at most {}", arr.len(), limits.max_history),
                ));
            }
            let mut out = Vec::with_capacity(arr.len());
            for (i, x) in arr.iter().enumerate() {
                let f = format!("history[{i}]");
                let r: NewRating = serde_json::from_value(x.clone()).map_err(|e| {
                    FieldError::new(
                        &f,
                        format!(
                            "expected {{\"title\": string, \"genres\": [string], \"rating\": 1-5}}: {e}"
                        ),
                    )
                })?;
                if !(1.0..=5.0).contains(&r.rating) {
                    return Err(FieldError::new(
                        format!("{f}.rating"),
                        format!("{} is outside 1 to 5", r.rating),
                    ));
                }
                check_text(&r.title, &r.genres, &f)?;
                out.push(r);
            }
            Ok(Subject::New(out))
        }
    }
}

fn no_other_fields(m: &serde_json::Map<String, Value>, allowed: &[&str]) -> Result<(), FieldError> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(FieldError::new(
            if k.is_empty() {
                "(empty key)"
            } else {
                k.as_str()
            },
            format!("unknown field; expected {}", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

/// A prediction request: `{"user", "item"}` or `{"history", "candidate"}` (a known item id
/// as `item`, a new one as `candidate: {"title", "genres"}`; either goes with either user).
pub fn predict_request(ds: &Dataset, v: &Value, limits: Limits) -> Result<Query, FieldError> {
    let m = object(v)?;
    no_other_fields(m, &["user", "history", "item", "candidate"])?;
    let subject = subject(ds, m, limits)?;
    let cand = match (m.get("item"), m.get("candidate")) {
        (Some(_), Some(_)) => {
            return Err(FieldError::new(
                "item",
                "give either `item` (a known item) or `candidate` (a new item), not both",
            ));
        }
        (None, None) => {
            return Err(FieldError::new(
                "item",
                "missing: give `item` (a known item's id) or `candidate` ({\"title\", \"genres\"})",
            ));
        }
        (Some(i), None) => Candidate::Known(known_item(ds, i, "item")?),
        (None, Some(c)) => Candidate::New(new_item(c, "candidate")?),
    };
    Ok(Query {
        subject,
        candidates: vec![cand],
    })
}

/// A ranking request: `{"user" | "history", "candidates": [id | {"title", "genres"}], "k"}`
/// (`k` defaults to every candidate).
pub fn rank_request(ds: &Dataset, v: &Value, limits: Limits) -> Result<RankRequest, FieldError> {
    let m = object(v)?;
    no_other_fields(m, &["user", "history", "candidates", "k"])?;
    let subject = subject(ds, m, limits)?;
    let arr = m
        .get("candidates")
        .ok_or_else(|| {
            FieldError::new(
                "candidates",
                "missing: an array of item ids or {\"title\", \"genres\"}",
            )
        })?
        .as_array()
        .ok_or_else(|| {
            FieldError::new(
                "candidates",
                "expected an array of item ids or {\"title\", \"genres\"}",
            )
        })?;
    if arr.is_empty() {
        return Err(FieldError::new("candidates", "is empty; give at least one"));
    }
    if arr.len() > limits.max_candidates {
        return Err(FieldError::new(
            "candidates",
            format!(
                "{} candidates; at most {}",
                arr.len(),
                limits.max_candidates
            ),
        ));
    }
    let candidates = arr
        .iter()
        .enumerate()
        .map(|(i, c)| candidate(ds, c, &format!("candidates[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let k = match m.get("k") {
        None | Some(Value::Null) => candidates.len(),
        Some(k) => match k.as_u64() {
            Some(k) if k >= 1 && k as usize <= candidates.len() => k as usize,
            _ => {
                return Err(FieldError::new(
                    "k",
                    format!(
                        "expected a whole number from 1 to {} (the candidates)",
                        candidates.len()
                    ),
                ));
            }
        },
    };
    Ok(RankRequest {
        query: Query {
            subject,
            candidates,
        },
        k,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ds() -> Dataset {
        let mut d = Dataset::new("t");
        d.intern_user("u1");
        d.intern_item("i1");
        d.intern_item("7");
        d
    }

    const L: Limits = Limits {
        max_candidates: 3,
        max_history: 2,
    };

    fn field(r: Result<impl std::fmt::Debug, FieldError>) -> String {
        r.unwrap_err().field
    }

    #[test]
    fn requests_parse_and_errors_name_the_field() {
        let d = ds();
        let q = predict_request(&d, &json!({"user": "u1", "item": 7}), L).unwrap();
        assert_eq!(q.subject, Subject::Known(0));
        assert_eq!(q.candidates, vec![Candidate::Known(1)]);
        let q = predict_request(
            &d,
            &json!({"history": [{"title": "A", "genres": ["Drama"], "rating": 4}],
                    "candidate": {"title": "B"}}),
            L,
        )
        .unwrap();
        assert!(matches!(q.subject, Subject::New(ref h) if h.len() == 1 && h[0].rating == 4.0));
        assert_eq!(field(predict_request(&d, &json!([1]), L)), "(body)");
        assert_eq!(
            field(predict_request(&d, &json!({"item": "i1"}), L)),
            "user"
        );
        assert_eq!(
            field(predict_request(&d, &json!({"user": "zz", "item": "i1"}), L)),
            "user"
        );
        assert_eq!(
            field(predict_request(&d, &json!({"user": "u1", "item": "zz"}), L)),
            "item"
        );
        assert_eq!(
            field(predict_request(&d, &json!({"user": "u1"}), L)),
            "item"
        );
        assert_eq!(
            field(predict_request(&d, &json!({"user": true, "item": "i1"}), L)),
            "user"
        );
        assert_eq!(
            field(predict_request(
                &d,
                &json!({"user": "u1", "item": "i1", "x": 1}),
                L
            )),
            "x"
        );
        let bad_rating = json!({"history": [{"title": "A", "rating": 9}], "item": "i1"});
        assert_eq!(
            field(predict_request(&d, &bad_rating, L)),
            "history[0].rating"
        );
        let typed = json!({"history": [{"title": "A", "rating": "5"}], "item": "i1"});
        assert_eq!(field(predict_request(&d, &typed, L)), "history[0]");
        let long = json!({"history": [{"title": "A", "rating": 1}, {"title": "B", "rating": 2},
                                      {"title": "C", "rating": 3}], "item": "i1"});
        assert_eq!(field(predict_request(&d, &long, L)), "history");

        let r = rank_request(
            &d,
            &json!({"user": "u1", "candidates": ["i1", {"title": "N"}], "k": 1}),
            L,
        )
        .unwrap();
        assert_eq!(r.k, 1);
        assert_eq!(r.query.candidates.len(), 2);
        assert_eq!(
            rank_request(&d, &json!({"user": "u1", "candidates": ["i1"]}), L)
                .unwrap()
                .k,
            1
        );
        for (body, f) in [
            (json!({"user": "u1", "candidates": []}), "candidates"),
            (json!({"user": "u1", "candidates": "i1"}), "candidates"),
            (json!({"user": "u1"}), "candidates"),
            (
                json!({"user": "u1", "candidates": ["i1", "nope"]}),
                "candidates[1]",
            ),
            (
                json!({"user": "u1", "candidates": ["i1", {"genres": []}]}),
                "candidates[1]",
            ),
            (
                json!({"user": "u1", "candidates": ["i1", "7"], "k": 3}),
                "k",
            ),
            (json!({"user": "u1", "candidates": ["i1"], "k": 0}), "k"),
            (
                json!({"user": "u1", "candidates": ["i1", "7", "i1", "7"]}),
                "candidates",
            ),
        ] {
            assert_eq!(field(rank_request(&d, &body, L)), f, "{body}");
        }
    }

    /// A random JSON value shaped like a request half the time (known keys, values of every
    /// type, text of every length, nested arrays and objects), anything the other half.
    fn random_value(rng: &mut rand::rngs::StdRng, depth: u32) -> Value {
        use rand::Rng;
        let text = |rng: &mut rand::rngs::StdRng| -> String {
            let n = [0, 1, 3, 12, 70, 301, 2000][rng.random_range(0..7)];
            let pool = [
                'a',
                'Z',
                ' ',
                '7',
                'é',
                '\u{0}',
                '"',
                '{',
                '漢',
                '\u{1F600}',
            ];
            (0..n)
                .map(|_| pool[rng.random_range(0..pool.len())])
                .collect()
        };
        let keys = [
            "user",
            "item",
            "history",
            "candidate",
            "candidates",
            "k",
            "title",
            "genres",
            "rating",
            "extra",
        ];
        match rng.random_range(0..if depth > 3 { 6 } else { 9 }) {
            0 => Value::Null,
            1 => Value::Bool(rng.random()),
            2 => json!(rng.random_range(-10i64..12)),
            3 => json!([1e300, -0.5, 2.5, 4.0, f64::MAX, 3.0][rng.random_range(0..6)]),
            4 => json!(["u1", "i1", "7", "nope", ""][rng.random_range(0..5)]),
            5 => Value::String(text(rng)),
            6 | 7 => {
                let n = rng.random_range(0..5);
                Value::Object(
                    (0..n)
                        .map(|_| {
                            let k = if rng.random_range(0..5) == 0 {
                                text(rng)
                            } else {
                                keys[rng.random_range(0..keys.len())].to_string()
                            };
                            (k, random_value(rng, depth + 1))
                        })
                        .collect(),
                )
            }
            _ => {
                let n = rng.random_range(0..6);
                Value::Array((0..n).map(|_| random_value(rng, depth + 1)).collect())
            }
        }
    }

    #[test]
    fn thousands_of_generated_requests_never_panic_and_every_error_names_its_field() {
        use rand::SeedableRng;
        let d = ds();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (mut ok, mut refused) = (0, 0);
        use rand::Rng;
        let valid = [
            json!({"user": "u1", "item": "i1"}),
            json!({"user": "u1", "candidate": {"title": "A", "genres": ["Drama"]}}),
            json!({"history": [{"title": "A", "genres": ["Drama"], "rating": 4}], "item": 7}),
            json!({"user": "u1", "candidates": ["i1", "7"], "k": 1}),
            json!({"history": [{"title": "B", "rating": 2}], "candidates": [{"title": "C"}]}),
        ];
        for n in 0..20_000 {
            // A third: a valid request with one field replaced by anything, or left as it is.
            let v = if n % 3 == 0 {
                let mut v = valid[rng.random_range(0..valid.len())].clone();
                if rng.random_range(0..4) > 0 {
                    let keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
                    let k = keys[rng.random_range(0..keys.len())].clone();
                    v[k] = random_value(&mut rng, 1);
                }
                v
            } else {
                random_value(&mut rng, 0)
            };
            for (route, r) in [
                ("predict", predict_request(&d, &v, L).map(|_| ())),
                ("rank", rank_request(&d, &v, L).map(|_| ())),
            ] {
                match r {
                    Ok(()) => ok += 1,
                    Err(e) => {
                        refused += 1;
                        assert!(
                            !e.field.is_empty() && !e.message.is_empty(),
                            "{n} {route}: {e:?} for {v}"
                        );
                        // The field is the body, a key of the body, or the path into one.
                        let root = e.field.split(['[', '.']).next().unwrap_or("");
                        let named = e.field == "(body)"
                            || (e.field == "(empty key)" && v.get("").is_some())
                            || v.get(&e.field).is_some()
                            || v.get(root).is_some()
                            || ["user", "item", "candidates"].contains(&root);
                        assert!(named, "{n} {route}: field `{}` for {v}", e.field);
                    }
                }
            }
        }
        assert!(refused > 1000 && ok > 0, "ok {ok}, refused {refused}");
    }

    #[test]
    fn text_over_the_limits_is_refused_naming_the_field() {
        let d = ds();
        let long = "x".repeat(MAX_TITLE_CHARS + 1);
        let e = predict_request(&d, &json!({"user": "u1", "candidate": {"title": long}}), L)
            .unwrap_err();
        assert_eq!(e.field, "candidate.title");
        let genres: Vec<String> = (0..=MAX_GENRES).map(|g| g.to_string()).collect();
        let e = rank_request(
            &d,
            &json!({"user": "u1", "candidates": ["i1", {"title": "A", "genres": genres}]}),
            L,
        )
        .unwrap_err();
        assert_eq!(e.field, "candidates[1].genres");
        let e = predict_request(
            &d,
            &json!({"history": [{"title": "A", "genres": ["g".repeat(65)], "rating": 3}],
                    "item": "i1"}),
            L,
        )
        .unwrap_err();
        assert_eq!(e.field, "history[0].genres[0]");
    }
}
