//! What the client could not get stored, and why.

use serde::Deserialize;

/// One problem with one field of one event, as Attest names it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FieldError {
    /// Position of the event in the request.
    pub index: usize,
    /// Dotted path of the field (`actor.ip`); empty for the event as a whole.
    #[serde(default)]
    pub field_path: String,
    #[serde(default)]
    pub problem: String,
    /// The event's id, filled in by the client.
    #[serde(skip)]
    pub event_id: Option<String>,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let field = if self.field_path.is_empty() {
            "(the event)"
        } else {
            &self.field_path
        };
        write!(f, "event {}: {field}: {}", self.index, self.problem)
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// 400: events break the contract; they were not stored and a retry
    /// as they are cannot help. Every problem names its field.
    #[error("invalid event(s): {}", describe(.0))]
    Invalid(Vec<FieldError>),
    /// 401, 403, 413, 415 and the like: a retry cannot change the answer.
    #[error("refused with {status}: {message}")]
    Refused {
        status: u16,
        message: String,
        errors: Vec<FieldError>,
    },
    /// Attest answered 429/503 or could not be reached for longer than
    /// `retry_for`. Re-sending these ids later stores each event once.
    #[error("{} event(s) not stored ({last}); retry them later with the same event ids", event_ids.len())]
    Unavailable {
        event_ids: Vec<String>,
        last: String,
    },
    /// The queue holds `max_queue` events and `send` may not wait (longer).
    /// The events were not queued.
    #[error("the queue is full ({0} events); the events were not queued")]
    QueueFull(usize),
    /// An event is not a JSON object.
    #[error("event {index} is not a JSON object")]
    NotAnObject { index: usize },
    /// The client was closed, or its background task ended.
    #[error("the client is closed")]
    Closed,
    /// Several batches failed (what a flush returns when more than one did).
    #[error("{} batches failed: {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join(" | "))]
    Several(Vec<Error>),
    /// The client could not be built (bad URL, TLS set-up).
    #[error("cannot build the client: {0}")]
    Setup(String),
}

impl Error {
    /// The first field at fault, for `Invalid` (and `Refused` with errors).
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::Invalid(errors) | Error::Refused { errors, .. } => {
                errors.first().map(|e| e.field_path.as_str())
            }
            _ => None,
        }
    }
}

fn describe(errors: &[FieldError]) -> String {
    let mut text: Vec<String> = errors.iter().take(5).map(ToString::to_string).collect();
    if errors.len() > 5 {
        text.push(format!("and {} more", errors.len() - 5));
    }
    text.join("; ")
}
