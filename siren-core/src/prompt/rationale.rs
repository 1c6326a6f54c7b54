//! Rationales built only from what a rating prompt shows: the warm start of a stage 1 that
//! reasons (`cot-sft` with `source = "built"`) learns to write one inside `<think>` before
//! the rating, so that GRPO starts from a policy whose answers follow a reasoning.
//!
//! A rationale names, in this order:
//! 1. (sketch prompts) whether the candidate's topic is one the user likes or dislikes, or
//!    neither;
//! 2. the recent rated items closest to the candidate (same topic counts 2, each shared genre
//!    1; at most [`CLOSEST`], most recent first among equals) with the user's ratings of them;
//! 3. the mean of the recent ratings the prompt lists.
//!
//! It is a function of the user's interactions *before* the target, the prompt's sketch and
//! the candidate's identity; it never sees the target's rating (it is not an argument) nor
//! anything after the target (callers pass [`crate::prompt::past_of`]'s slice). A conclusion
//! ("so about 4") is deliberately absent: the answer that follows is the true rating, and a
//! rationale that concluded otherwise would teach the model to ignore its reasoning.

use crate::data::{Dataset, Interaction};
use crate::prompt::{PromptBuilder, Strategy, compact};
use crate::traits::Sketch;

/// Most close recent items a rationale names.
pub const CLOSEST: usize = 3;

/// The rationale for rating `candidate` after `past` (the user's interactions before the
/// target, oldest first), for a prompt of `strategy` showing `sketch`. `topic_of` gives an
/// item's topic when the run has a topic model.
pub fn build(
    pb: &PromptBuilder,
    ds: &Dataset,
    past: &[Interaction],
    sketch: &Sketch,
    strategy: Strategy,
    candidate: u32,
    topic_of: &dyn Fn(u32) -> Option<usize>,
) -> String {
    let cat = &pb.cfg.category;
    let recent = &past[past.len().saturating_sub(pb.cfg.recent)..];
    let topic = topic_of(candidate);
    let mut out = Vec::new();
    if matches!(strategy, Strategy::Sketch) {
        let named = |v: &[crate::traits::SketchTopic]| {
            topic.and_then(|t| v.iter().find(|s| s.topic == t).map(|s| s.name.clone()))
        };
        out.push(if let Some(n) = named(&sketch.likes) {
            format!("The candidate falls in \"{n}\", a topic the user likes.")
        } else if let Some(n) = named(&sketch.dislikes) {
            format!("The candidate falls in \"{n}\", a topic the user dislikes.")
        } else {
            format!("The candidate is in none of the user's liked or disliked {cat} topics.")
        });
    }
    let genres = pb.genres(ds, candidate);
    let mut scored: Vec<(usize, usize)> = recent
        .iter()
        .enumerate()
        .map(|(k, x)| {
            let same_topic = topic.is_some() && topic_of(x.item) == topic;
            let shared = pb
                .genres(ds, x.item)
                .iter()
                .filter(|g| genres.contains(g))
                .count();
            (k, 2 * usize::from(same_topic) + shared)
        })
        .filter(|&(_, s)| s > 0)
        .collect();
    // Highest score first, the more recent first among equals.
    scored.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(&a.0)));
    let close: Vec<String> = scored
        .iter()
        .take(CLOSEST)
        .map(|&(k, _)| {
            let x = &recent[k];
            format!(
                "{} ({})",
                compact::title(&ds.items[x.item as usize].title),
                compact::rating(x.rating)
            )
        })
        .collect();
    out.push(if close.is_empty() {
        format!("No recent {cat} is close to it.")
    } else {
        format!("Closest recent ratings: {}.", close.join(", "))
    });
    if !recent.is_empty() {
        let mean = recent.iter().map(|x| x.rating).sum::<f32>() / recent.len() as f32;
        out.push(format!("The recent ratings average {mean:.1}."));
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Item;
    use crate::prompt::{PromptConfig, PromptStyle, past_of};
    use crate::traits::SketchTopic;

    fn ds() -> Dataset {
        let mut ds = Dataset::new("toy");
        let items = [
            ("Heat", "Crime|Thriller"),
            ("Alien", "Horror|Science Fiction"),
            ("Ronin", "Crime|Action"),
            ("Brazil", "Comedy"),
            ("Solaris", "Science Fiction|Drama"),
            ("Planted Later Film", "Crime|Thriller"),
            ("Amelie", "Romance"),
            ("Stalker", "Science Fiction|Drama"),
        ];
        for (k, (t, c)) in items.iter().enumerate() {
            let i = ds.intern_item(&format!("i{k}"));
            ds.items[i as usize] = Item {
                id: format!("i{k}"),
                title: format!("{t} [DVD]"),
                categories: c.split('|').map(str::to_string).collect(),
                ..Item::default()
            };
        }
        ds.intern_user("u");
        ds
    }

    fn x(item: u32, rating: f32, t: i64) -> Interaction {
        Interaction {
            user: 0,
            item,
            rating,
            timestamp: t,
        }
    }

    #[test]
    fn a_rationale_uses_only_what_precedes_the_target() {
        let ds = ds();
        let pb = PromptBuilder::new(PromptConfig {
            style: PromptStyle::Compact,
            ..PromptConfig::default()
        })
        .unwrap();
        // The user's timeline: four items, the target (Ronin, rated 5), then a later item.
        let target = x(2, 5.0, 30);
        let timeline = vec![
            x(0, 2.0, 10),
            x(1, 1.0, 11),
            x(3, 1.0, 12),
            x(4, 1.0, 13),
            target,
            x(5, 5.0, 40),
        ];
        let past = past_of(&timeline, &target);
        assert_eq!(past.len(), 4);
        let topics = [0usize, 1, 0, 2, 1, 0, 3, 1];
        let topic_of = |i: u32| Some(topics[i as usize]);
        let sketch = Sketch {
            likes: vec![SketchTopic {
                topic: 1,
                name: "Space".into(),
                support: 2,
                mean_rating: 4.5,
            }],
            dislikes: vec![SketchTopic {
                topic: 0,
                name: "Heists".into(),
                support: 1,
                mean_rating: 2.0,
            }],
            threshold: Some(4.0),
        };
        let r = build(&pb, &ds, past, &sketch, Strategy::Sketch, 2, &topic_of);
        let mean = format!("{:.1}", 1.25f32);
        assert_eq!(
            r,
            format!(
                "The candidate falls in \"Heists\", a topic the user dislikes. Closest recent \
                 ratings: Heat (2). The recent ratings average {mean}."
            )
        );
        // Nothing from the target's rating or after the target.
        assert!(!r.contains('5'), "{r}");
        assert!(!r.contains("Planted"), "{r}");
        // Without a sketch there is no topic sentence; without close items it says so.
        let r = build(&pb, &ds, past, &sketch, Strategy::Recent, 6, &|_| None);
        assert_eq!(
            r,
            format!("No recent movie is close to it. The recent ratings average {mean}.")
        );
        // Same topic and shared genres rank the recent items: Solaris (same topic, two genres)
        // before Alien (same topic, one genre); Heat and Brazil share nothing.
        let r = build(
            &pb,
            &ds,
            past,
            &Sketch::default(),
            Strategy::Sketch,
            7,
            &topic_of,
        );
        assert_eq!(
            r,
            format!(
                "The candidate is in none of the user's liked or disliked movie topics. Closest \
                 recent ratings: Solaris (1), Alien (1). The recent ratings average {mean}."
            )
        );
    }
}
