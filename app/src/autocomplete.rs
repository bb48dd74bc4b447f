//! Suggestions for the query bar: which word the caret is in, what could
//! complete it, in what order, and the text once one is accepted. Pure, so
//! the ranking is tested here and the page only wires keys and a listbox
//! (`pages/search_form.rs`).

use crate::query::{metadata_key_of, FIELDS, METADATA_PREFIX};
use crate::search_model::{FacetField, Facets, MetadataKey, MetadataValues};

/// Suggestions shown at once.
pub const SHOWN: usize = 8;

/// What the page knows to suggest beyond the contract's fields.
#[derive(Clone, Copy, Debug, Default)]
pub struct Known<'a> {
    /// The current search's facets: values per field, and its most common
    /// metadata keys.
    pub facets: Option<&'a Facets>,
    /// Metadata keys seen recently in the viewer's tenants.
    pub recent_keys: &'a [MetadataKey],
    /// The metadata facets opened on the page, with their values.
    pub metadata: &'a [MetadataValues],
}

/// Candidates for the word being typed: field names from the contract and
/// `metadata.<key>` for each metadata key known (counted by events), or a
/// field's values (the facets' counts, an opened metadata facet's, and the
/// fixed lists).
pub fn candidates(word: &Word, known: Known<'_>) -> Vec<Candidate> {
    match &word.kind {
        WordKind::Field { .. } => {
            let mut out: Vec<Candidate> = FIELDS
                .iter()
                .map(|(name, _)| Candidate::new(*name, 0))
                .collect();
            let facet_keys = known.facets.map_or(&[][..], |f| f.metadata.as_slice());
            out.extend(
                facet_keys
                    .iter()
                    .chain(known.recent_keys)
                    .filter(|k| crate::query::is_metadata_key(&k.key))
                    .map(|k| Candidate::new(format!("{METADATA_PREFIX}{}", k.key), k.events)),
            );
            out
        }
        WordKind::Value { field, .. } => {
            if let Some(key) = metadata_key_of(field) {
                return known
                    .metadata
                    .iter()
                    .filter(|m| m.key == key)
                    .flat_map(|m| &m.values)
                    .filter(|v| !v.value.is_empty())
                    .map(|v| Candidate::new(v.value.clone(), v.events))
                    .collect();
            }
            let name = match field.to_ascii_lowercase().as_str() {
                "ip" => "actor.ip".to_string(),
                "actor.id" => "actor".to_string(),
                "service" | "source_service" => "source".to_string(),
                other => other.to_string(),
            };
            let mut out: Vec<Candidate> = FacetField::from_query_field(&name)
                .and_then(|f| known.facets?.fields.iter().find(|c| c.field == f))
                .map(|counts| {
                    counts
                        .values
                        .iter()
                        .filter(|v| !v.value.is_empty())
                        .map(|v| Candidate::new(v.value.clone(), v.events))
                        .collect()
                })
                .unwrap_or_default();
            let fixed: &[&str] = match name.as_str() {
                "category" => crate::query::CATEGORIES,
                "outcome" => crate::query::OUTCOMES,
                _ => &[],
            };
            out.extend(fixed.iter().map(|v| Candidate::new(*v, 0)));
            out
        }
    }
}

/// The word being typed: where it is in the text, and whether it is a
/// field name or the value after `field:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    /// Byte range of the whole word in the text.
    pub start: usize,
    pub end: usize,
    pub kind: WordKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WordKind {
    /// No `:` yet: a field name, or free text.
    Field { typed: String },
    /// After `field:`; a leading `-` stays outside the field's name.
    Value { field: String, typed: String },
}

/// What can end a word: spaces and the grouping brackets.
fn boundary(c: char) -> bool {
    c.is_whitespace() || c == '(' || c == ')'
}

/// The word around byte `caret` (clamped to the text and to a character
/// boundary), or `None` at a space or inside a quoted value.
pub fn word_at(text: &str, caret: usize) -> Option<Word> {
    let mut caret = caret.min(text.len());
    while !text.is_char_boundary(caret) {
        caret -= 1;
    }
    // Inside quotes the analyst is writing a phrase; suggestions would
    // only get in the way.
    if text[..caret].matches('"').count() % 2 == 1 {
        return None;
    }
    let start = text[..caret]
        .char_indices()
        .rev()
        .find(|(_, c)| boundary(*c))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let end = text[caret..]
        .char_indices()
        .find(|(_, c)| boundary(*c))
        .map_or(text.len(), |(i, _)| caret + i);
    let word = &text[start..caret];
    if word.is_empty() {
        return None;
    }
    let bare = word.strip_prefix('-').unwrap_or(word);
    let sign = word.len() - bare.len();
    let kind = match bare.split_once(':') {
        Some((field, typed)) if !field.is_empty() => WordKind::Value {
            field: field.to_string(),
            typed: typed.trim_start_matches(['<', '>', '=']).to_string(),
        },
        Some(_) => return None,
        None => WordKind::Field {
            typed: bare.to_string(),
        },
    };
    Some(Word {
        start: start + sign,
        end,
        kind,
    })
}

/// One candidate: its text and how often it was seen (0: unknown).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub text: String,
    pub count: u64,
}

impl Candidate {
    pub fn new(text: impl Into<String>, count: u64) -> Candidate {
        Candidate {
            text: text.into(),
            count,
        }
    }
}

/// The candidates that contain `typed` (ignoring case), best first: the
/// typed text itself (accepting it still adds the `:` or the space), then
/// those that start with it, then those that only contain it; within each,
/// the most frequent, then the shorter, then alphabetically. Repeats are
/// left out.
pub fn rank(typed: &str, candidates: &[Candidate], limit: usize) -> Vec<Candidate> {
    let needle = typed.to_lowercase();
    // 0: the same, 1: starts with it, 2: contains it.
    let mut found: Vec<(u8, &Candidate)> = candidates
        .iter()
        .filter_map(|c| {
            let lower = c.text.to_lowercase();
            if lower == needle {
                Some((0, c))
            } else if lower.starts_with(&needle) {
                Some((1, c))
            } else if lower.contains(&needle) {
                Some((2, c))
            } else {
                None
            }
        })
        .collect();
    found.sort_by(|(a_class, a), (b_class, b)| {
        a_class
            .cmp(b_class)
            .then(b.count.cmp(&a.count))
            .then(a.text.len().cmp(&b.text.len()))
            .then(a.text.cmp(&b.text))
    });
    let mut out: Vec<Candidate> = Vec::new();
    for (_, c) in found {
        if !out.iter().any(|o| o.text == c.text) {
            out.push(c.clone());
        }
        if out.len() == limit {
            break;
        }
    }
    out
}

/// A value as the query language reads it: bare when it is one plain
/// word, else quoted with `"` and `\` escaped.
pub fn value_text(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '/'))
        && !value.starts_with('-');
    if plain {
        value.to_string()
    } else {
        format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// The text with `word` replaced by `choice`, and the caret after it: a
/// field becomes `field:` (its value comes next), a value becomes
/// `field:value ` (the next term comes next).
pub fn accept(text: &str, word: &Word, choice: &str) -> (String, usize) {
    let replacement = match &word.kind {
        WordKind::Field { .. } => format!("{choice}:"),
        WordKind::Value { field, .. } => format!("{field}:{} ", value_text(choice)),
    };
    let (start, end) = (word.start.min(text.len()), word.end.min(text.len()));
    let rest = &text[end..];
    // One space between the value and what follows, not two.
    let rest = if replacement.ends_with(' ') {
        rest.trim_start_matches(' ')
    } else {
        rest
    };
    let caret = start + replacement.len();
    (format!("{}{replacement}{rest}", &text[..start]), caret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(found: &[Candidate]) -> Vec<&str> {
        found.iter().map(|c| c.text.as_str()).collect()
    }

    #[test]
    fn prefix_before_substring_then_frequency() {
        let candidates = [
            Candidate::new("resource.type", 0),
            Candidate::new("actor.type", 0),
            Candidate::new("action", 0),
            Candidate::new("actor", 0),
            Candidate::new("metadata.contract", 40),
            Candidate::new("actor.ip", 0),
        ];
        assert_eq!(
            texts(&rank("act", &candidates, 10)),
            // "contract" contains it: frequent, yet after every prefix.
            [
                "actor",
                "action",
                "actor.ip",
                "actor.type",
                "metadata.contract"
            ]
        );
        assert_eq!(
            texts(&rank("ty", &candidates, 10)),
            ["actor.type", "resource.type"]
        );
        // A frequent substring match still comes after every prefix match.
        let values = [
            Candidate::new("bob", 1),
            Candidate::new("alice", 3),
            Candidate::new("mallory", 90),
            Candidate::new("alex", 7),
        ];
        assert_eq!(
            texts(&rank("al", &values, 10)),
            ["alex", "alice", "mallory"]
        );
        assert_eq!(texts(&rank("", &values, 2)), ["mallory", "alex"]);
        assert_eq!(texts(&rank("AL", &values, 1)), ["alex"]);
        // Typed in full: first, however rare (it still takes its `:`).
        assert_eq!(texts(&rank("alice", &values, 10)), ["alice"]);
        assert_eq!(texts(&rank("actor", &candidates, 2)), ["actor", "actor.ip"]);
        assert!(rank("zed", &values, 10).is_empty());
        let twice = [Candidate::new("x1", 1), Candidate::new("x1", 1)];
        assert_eq!(rank("x", &twice, 10).len(), 1);
    }

    #[test]
    fn finds_the_word_at_the_caret() {
        let q = "outcome:fail act";
        assert_eq!(
            word_at(q, q.len()),
            Some(Word {
                start: 13,
                end: 16,
                kind: WordKind::Field {
                    typed: "act".into()
                }
            })
        );
        assert_eq!(
            word_at(q, 12),
            Some(Word {
                start: 0,
                end: 12,
                kind: WordKind::Value {
                    field: "outcome".into(),
                    typed: "fail".into()
                }
            })
        );
        assert_eq!(
            word_at("(-actor:al", 10).map(|w| (w.start, w.kind)),
            Some((
                2,
                WordKind::Value {
                    field: "actor".into(),
                    typed: "al".into()
                }
            ))
        );
        assert_eq!(word_at("x ", 2), None);
        assert_eq!(word_at("\"two wo", 7), None);
        assert_eq!(word_at(":x", 2), None);
        // A caret past the end or inside a character is clamped.
        assert!(word_at("é", 1).is_none());
        assert!(word_at("ab", 99).is_some());
    }

    fn key(key: &str, events: u64) -> MetadataKey {
        MetadataKey {
            key: key.into(),
            events,
        }
    }

    fn field_word(typed: &str) -> Word {
        word_at(typed, typed.len()).expect("a word")
    }

    #[test]
    fn metadata_keys_seen_recently_are_fields() {
        let recent = [key("ticket", 40), key("tier", 3), key("region", 12)];
        let known = Known {
            recent_keys: &recent,
            ..Known::default()
        };
        let found = rank("ti", &candidates(&field_word("ti"), known), SHOWN);
        // "ti" is inside them and inside "action" only: most events first.
        assert_eq!(
            texts(&found),
            ["metadata.ticket", "metadata.tier", "action"]
        );
        let found = rank(
            "metadata.",
            &candidates(&field_word("metadata."), known),
            SHOWN,
        );
        assert_eq!(
            texts(&found),
            [
                "metadata.ticket",
                "metadata.region",
                "metadata.tier",
                "metadata.<key>"
            ]
        );
        assert_eq!(found[0].count, 40);
        // A key the query language cannot name is never offered, and a
        // key in the facets and the recent list is offered once.
        let bad = [key("a b", 99), key("ticket", 1)];
        let facets = Facets {
            total: 1,
            fields: Vec::new(),
            metadata: vec![key("ticket", 7)],
            snapshot_ms: 0,
        };
        let known = Known {
            facets: Some(&facets),
            recent_keys: &bad,
            metadata: &[],
        };
        let found = rank("met", &candidates(&field_word("met"), known), SHOWN);
        assert_eq!(texts(&found), ["metadata.ticket", "metadata.<key>"]);
        assert_eq!(found[0].count, 7);
        // Accepting one makes a term that parses once a value follows.
        let word = field_word("x meta");
        let (text, _) = accept("x meta", &word, "metadata.ticket");
        assert_eq!(text, "x metadata.ticket:");
        assert!(crate::query::parse(&format!("{text}SEC-1")).is_ok());
    }

    #[test]
    fn an_opened_metadata_facet_gives_its_key_values() {
        let opened = [
            MetadataValues {
                key: "ticket".into(),
                values: vec![
                    crate::search_model::FacetValue {
                        value: "SEC-1".into(),
                        events: 5,
                    },
                    crate::search_model::FacetValue {
                        value: "SEC-12".into(),
                        events: 9,
                    },
                    crate::search_model::FacetValue {
                        value: String::new(),
                        events: 1,
                    },
                ],
            },
            MetadataValues {
                key: "Ticket".into(),
                values: vec![crate::search_model::FacetValue {
                    value: "other".into(),
                    events: 1,
                }],
            },
        ];
        let known = Known {
            metadata: &opened,
            ..Known::default()
        };
        let q = "METADATA.ticket:SEC";
        let word = field_word(q);
        let found = rank("SEC", &candidates(&word, known), SHOWN);
        // The key is case-sensitive, the prefix is not.
        assert_eq!(texts(&found), ["SEC-12", "SEC-1"]);
        assert_eq!(accept(q, &word, "SEC-12").0, "METADATA.ticket:SEC-12 ");
        // No facet opened for the key: nothing to suggest.
        let word = field_word("metadata.region:e");
        assert!(candidates(&word, known).is_empty());
        assert!(candidates(&word, Known::default()).is_empty());
    }

    #[test]
    fn accepting_completes_a_field_then_a_value() {
        let q = "outcome:failure act";
        let word = word_at(q, q.len()).unwrap();
        let (q, caret) = accept(q, &word, "actor");
        assert_eq!((q.as_str(), caret), ("outcome:failure actor:", 22));
        let word = word_at(&q, caret).unwrap();
        let (q, caret) = accept(&q, &word, "mallory@example.com");
        assert_eq!(q, "outcome:failure actor:mallory@example.com ");
        assert_eq!(caret, q.len());
        let word = word_at("source:ss", 9).unwrap();
        assert_eq!(
            accept("source:ss", &word, "single sign-on").0,
            "source:\"single sign-on\" "
        );
        let word = word_at("-out x", 4).unwrap();
        assert_eq!(accept("-out x", &word, "outcome").0, "-outcome: x");
    }
}
