//! Batches: reading a JSON array or NDJSON body into events, and the
//! per-event answer. Pure, so every body shape is unit-tested.

use serde::Serialize;

use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use super::validate::{FieldError, Submitted};
use super::IngestError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchMode {
    /// One invalid event rejects the whole request; nothing is produced.
    AllOrNothing,
    /// Valid events are produced; invalid ones are reported.
    Partial,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchFormat {
    /// `[{…}, {…}]`
    JsonArray,
    /// One event per line.
    Ndjson,
}

/// The answer for one event of a batch: its id, or why it was not taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EventResult {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl EventResult {
    pub fn accepted(index: usize, event_id: String) -> EventResult {
        EventResult {
            index,
            event_id: Some(event_id),
            errors: vec![],
        }
    }
}

/// How a batch went: every event's id, or (with `?partial=true`) why an
/// event was not taken.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchAccepted {
    pub accepted: usize,
    pub rejected: usize,
    pub results: Vec<EventResult>,
}

impl BatchAccepted {
    pub fn new(results: Vec<EventResult>) -> BatchAccepted {
        let accepted = results.iter().filter(|r| r.event_id.is_some()).count();
        BatchAccepted {
            accepted,
            rejected: results.len() - accepted,
            results,
        }
    }
}

/// Why one event was not taken: invalid (400) or not allowed for the
/// caller's key (403).
#[derive(Debug)]
pub(super) struct Rejection {
    forbidden: bool,
    errors: Vec<FieldError>,
}

impl Rejection {
    pub(super) fn invalid(errors: Vec<FieldError>) -> Rejection {
        Rejection {
            forbidden: false,
            errors,
        }
    }

    pub(super) fn forbidden(errors: Vec<FieldError>) -> Rejection {
        Rejection {
            forbidden: true,
            errors,
        }
    }

    /// All rejections of a request as one: 403 if any event was not the
    /// key's to send (that is the problem to fix first), else 400.
    pub(super) fn merge(all: Vec<Rejection>) -> Rejection {
        Rejection {
            forbidden: all.iter().any(|r| r.forbidden),
            errors: all.into_iter().flat_map(|r| r.errors).collect(),
        }
    }

    pub(super) fn into_error(self) -> IngestError {
        if self.forbidden {
            IngestError::Forbidden(self.errors)
        } else {
            IngestError::Invalid(self.errors)
        }
    }

    /// One result per event index (an event may have several errors).
    pub(super) fn into_results(self) -> Vec<EventResult> {
        let mut out: Vec<EventResult> = Vec::new();
        for error in self.errors {
            match out.last_mut() {
                Some(last) if last.index == error.index => last.errors.push(error),
                _ => out.push(EventResult {
                    index: error.index,
                    event_id: None,
                    errors: vec![error],
                }),
            }
        }
        out
    }
}

/// Why a batch body cannot be read at all.
#[derive(Debug, PartialEq, Eq)]
pub enum BatchBodyError {
    /// Not a batch; the problems, each with the index (line) it concerns.
    Unreadable(Vec<FieldError>),
    TooManyEvents {
        count: usize,
        limit: usize,
    },
}

/// Splits a body into events, checking the count before any validation.
/// The body's syntax is checked here, as a whole; each event's fields are
/// read once, later, by [`super::validate::Incoming::read`].
pub fn parse_batch(
    body: &[u8],
    format: BatchFormat,
    max_events: usize,
) -> Result<Vec<Submitted<'_>>, BatchBodyError> {
    let whole = |problem: String| {
        BatchBodyError::Unreadable(vec![FieldError {
            index: 0,
            field_path: String::new(),
            problem,
        }])
    };
    let items: Vec<Submitted<'_>> = match format {
        BatchFormat::JsonArray => {
            if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'[') {
                return Err(whole(match serde_json::from_slice::<IgnoredAny>(body) {
                    Ok(_) => "body must be a JSON array of events (or NDJSON, one event per \
                              line, with Content-Type: application/x-ndjson)"
                        .into(),
                    Err(e) => format!("body is not valid JSON: {e}"),
                }));
            }
            // Borrowed slices of the body: the array's syntax is checked
            // without building anything per event.
            let elements: Vec<&RawValue> = serde_json::from_slice(body)
                .map_err(|e| whole(format!("body is not valid JSON: {e}")))?;
            elements
                .into_iter()
                .map(|raw| Submitted::Item(raw.get().as_bytes()))
                .collect()
        }
        BatchFormat::Ndjson => {
            let lines: Vec<&[u8]> = body
                .split(|b| *b == b'\n')
                .filter(|line| line.iter().any(|b| !b.is_ascii_whitespace()))
                .collect();
            if lines.len() > max_events {
                return Err(BatchBodyError::TooManyEvents {
                    count: lines.len(),
                    limit: max_events,
                });
            }
            // A broken line makes the body unreadable, as a broken array
            // does, whatever the batch mode.
            let errors: Vec<FieldError> = lines
                .iter()
                .enumerate()
                .filter_map(|(index, line)| {
                    let e = serde_json::from_slice::<IgnoredAny>(line).err()?;
                    Some(FieldError {
                        index,
                        field_path: String::new(),
                        problem: format!("line {} is not valid JSON: {e}", index + 1),
                    })
                })
                .collect();
            if !errors.is_empty() {
                return Err(BatchBodyError::Unreadable(errors));
            }
            lines.into_iter().map(Submitted::Item).collect()
        }
    };
    if items.len() > max_events {
        return Err(BatchBodyError::TooManyEvents {
            count: items.len(),
            limit: max_events,
        });
    }
    if items.is_empty() {
        return Err(whole("the batch holds no events".into()));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_arrays_and_ndjson() {
        let json = |items: Vec<Submitted<'_>>| -> Vec<String> {
            items
                .into_iter()
                .map(|item| match item {
                    Submitted::Item(bytes) => String::from_utf8_lossy(bytes).trim().to_owned(),
                    _ => panic!("JSON batches hold items"),
                })
                .collect()
        };
        let array = parse_batch(br#"[{"a":1}, {"a":2}]"#, BatchFormat::JsonArray, 10).unwrap();
        assert_eq!(json(array), [r#"{"a":1}"#, r#"{"a":2}"#]);
        let lines = parse_batch(b"{\"a\":1}\n\n{\"a\":2}\r\n", BatchFormat::Ndjson, 10).unwrap();
        assert_eq!(json(lines), [r#"{"a":1}"#, r#"{"a":2}"#]);
    }

    #[test]
    fn names_what_is_wrong_with_the_body() {
        let Err(BatchBodyError::Unreadable(e)) =
            parse_batch(b"{\"a\":1}", BatchFormat::JsonArray, 10)
        else {
            panic!("an object is not a batch");
        };
        assert!(e[0].problem.contains("JSON array"));
        let Err(BatchBodyError::Unreadable(e)) =
            parse_batch(b"{}\n{oops\n{}", BatchFormat::Ndjson, 10)
        else {
            panic!("a bad line is an error");
        };
        assert_eq!((e.len(), e[0].index), (1, 1));
        assert!(
            e[0].problem.starts_with("line 2 is not valid JSON"),
            "{}",
            e[0].problem
        );
        assert!(matches!(
            parse_batch(b"[]", BatchFormat::JsonArray, 10),
            Err(BatchBodyError::Unreadable(_))
        ));
    }

    #[test]
    fn counts_before_anything_else() {
        let body = "{}\n".repeat(11);
        assert_eq!(
            parse_batch(body.as_bytes(), BatchFormat::Ndjson, 10),
            Err(BatchBodyError::TooManyEvents {
                count: 11,
                limit: 10
            })
        );
        let body = format!("[{}]", ["{}"; 11].join(","));
        assert_eq!(
            parse_batch(body.as_bytes(), BatchFormat::JsonArray, 10),
            Err(BatchBodyError::TooManyEvents {
                count: 11,
                limit: 10
            })
        );
    }

    #[test]
    fn rejections_become_one_result_per_event() {
        let e = |index, field: &str| FieldError {
            index,
            field_path: field.into(),
            problem: "bad".into(),
        };
        let merged = Rejection::merge(vec![
            Rejection::invalid(vec![e(1, "action"), e(1, "outcome")]),
            Rejection::forbidden(vec![e(3, "tenant_id")]),
        ]);
        assert!(matches!(merged.into_error(), IngestError::Forbidden(errors) if errors.len() == 3));
        let results = Rejection::invalid(vec![e(1, "action"), e(1, "outcome")]).into_results();
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].errors.len(), 2);
        let answer = BatchAccepted::new(vec![
            EventResult::accepted(0, "x".into()),
            results[0].clone(),
        ]);
        assert_eq!((answer.accepted, answer.rejected), (1, 1));
    }
}
