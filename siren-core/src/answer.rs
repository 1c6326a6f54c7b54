//! Parsing model outputs in the `<think>…</think><answer>…</answer>` format (paper Table 12).
//!
//! - [`format_ok`]: the strict check of Eq. 11's format term: `<think>`, `</think>`, `<answer>`,
//!   `</answer>` each appear exactly once, in that order, with nothing but whitespace before
//!   `<think>`, between `</think>` and `<answer>`, and after `</answer>`.
//! - [`parse_rating`]: the number inside the first `<answer>…</answer>` (surrounding whitespace
//!   allowed), e.g. `4`, `4.0`, `4.5`; anything else (words, empty, NaN, several numbers) is
//!   unparsable.

/// The four tags, in order.
pub const TAGS: [&str; 4] = ["<think>", "</think>", "<answer>", "</answer>"];

/// What follows the prompt for an answer-only (one-token) prediction: an empty reasoning block
/// and an open answer tag (the authors' student input, METHOD.md stage 2).
pub const AO_SUFFIX: &str = "\n<think>\n</think>\n<answer>";

/// A rating as an answer: `4` for whole ratings, `4.5` otherwise.
pub fn rating_text(rating: f32) -> String {
    if rating.fract() == 0.0 {
        format!("{rating:.0}")
    } else {
        format!("{rating}")
    }
}

/// Whether `completion` follows the format strictly (see the module docs).
pub fn format_ok(completion: &str) -> bool {
    let mut pos = Vec::with_capacity(4);
    for tag in TAGS {
        let mut found = completion.match_indices(tag);
        match (found.next(), found.next()) {
            (Some((i, _)), None) => pos.push(i),
            _ => return false,
        }
    }
    if !pos.windows(2).all(|w| w[0] < w[1]) {
        return false;
    }
    let before = &completion[..pos[0]];
    let between = &completion[pos[1] + TAGS[1].len()..pos[2]];
    let after = &completion[pos[3] + TAGS[3].len()..];
    before.trim().is_empty() && between.trim().is_empty() && after.trim().is_empty()
}

/// The text inside the first `<answer>…</answer>`, if both tags are there in that order.
pub fn answer_text(completion: &str) -> Option<&str> {
    let start = completion.find(TAGS[2])? + TAGS[2].len();
    let len = completion[start..].find(TAGS[3])?;
    Some(&completion[start..start + len])
}

/// The rating inside `<answer>…</answer>`, if it is one finite number.
pub fn parse_rating(completion: &str) -> Option<f32> {
    let t = answer_text(completion)?.trim();
    if t.is_empty()
        || !t
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+'))
    {
        return None;
    }
    t.parse::<f32>().ok().filter(|x| x.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_only_helpers() {
        assert_eq!(rating_text(4.0), "4");
        assert_eq!(rating_text(4.5), "4.5");
    }

    #[test]
    fn format_is_strict() {
        assert!(format_ok(
            "<think>likes war films</think><answer>4</answer>"
        ));
        assert!(format_ok(
            "  <think>\na\n</think>\n<answer> 4.0 </answer>\n"
        ));
        assert!(
            !format_ok("<think>a</think>text<answer>4</answer>"),
            "text between"
        );
        assert!(
            !format_ok("Sure! <think>a</think><answer>4</answer>"),
            "text before"
        );
        assert!(
            !format_ok("<think>a</think><answer>4</answer> done"),
            "text after"
        );
        assert!(!format_ok("<answer>4</answer><think>a</think>"), "order");
        assert!(
            !format_ok("<think>a</think><think>b</think><answer>4</answer>"),
            "twice"
        );
        assert!(
            !format_ok("<think>a</think><answer>4</answer><answer>5</answer>"),
            "twice"
        );
        assert!(!format_ok("<think>a</think>4"), "missing answer");
        assert!(!format_ok("<answer>4</answer>"), "missing think");
        assert!(!format_ok(""));
    }

    #[test]
    fn ratings_parse_only_numbers() {
        assert_eq!(
            parse_rating("<think>x</think><answer>4</answer>"),
            Some(4.0)
        );
        assert_eq!(parse_rating("<answer> 4.5 </answer>"), Some(4.5));
        assert_eq!(parse_rating("<answer>7</answer>"), Some(7.0));
        assert_eq!(parse_rating("<answer>-3</answer>"), Some(-3.0));
        assert_eq!(parse_rating("<answer>five</answer>"), None);
        assert_eq!(parse_rating("<answer></answer>"), None);
        assert_eq!(parse_rating("<answer>4 stars</answer>"), None);
        assert_eq!(parse_rating("<answer>NaN</answer>"), None);
        assert_eq!(parse_rating("<answer>inf</answer>"), None);
        assert_eq!(parse_rating("<answer>4"), None);
        assert_eq!(parse_rating("</answer>4<answer>"), None);
        assert_eq!(parse_rating("no tags 4"), None);
        // The first answer counts when there are several.
        assert_eq!(
            parse_rating("<answer>3</answer><answer>5</answer>"),
            Some(3.0)
        );
    }
}
