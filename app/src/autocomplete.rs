//! Suggestions for the query bar: which word the caret is in, what could
//! complete it, in what order, and the text once one is accepted. Pure, so
//! the ranking is tested here and the page only wires keys and a listbox
//! (`pages/search_form.rs`).

/// Suggestions shown at once.
pub const SHOWN: usize = 8;

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
