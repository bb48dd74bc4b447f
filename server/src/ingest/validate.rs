//! Turns a request body into an [`AuditEvent`], or into the list of every
//! problem with it, each naming the field. Pure: no I/O, so it is unit-tested
//! exhaustively and the HTTP layer only maps the result.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Deserializer, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::event::{Actor, AuditEvent, Category, Outcome, Resource};

/// One problem with one field of one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Position of the event in the request (0 for a single event).
    pub index: usize,
    /// Dotted path of the field, e.g. `actor.ip` or `metadata.region`;
    /// empty when the body as a whole is unusable.
    pub field_path: String,
    pub problem: String,
}

pub(crate) const MAX_ID: usize = 128;
const MAX_SHORT: usize = 256;
const MAX_TEXT: usize = 8 * 1024;
const MAX_METADATA_ENTRIES: usize = 64;
/// Clock skew we tolerate from emitting services.
const MAX_FUTURE_MS: i64 = 24 * 3600 * 1000;
/// 2000-01-01: anything earlier is almost surely seconds sent as milliseconds.
const MIN_OCCURRED_AT_MS: i64 = 946_684_800_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IncomingEvent {
    event_id: Option<String>,
    tenant_id: String,
    #[serde(deserialize_with = "timestamp")]
    occurred_at: i64,
    category: Category,
    action: String,
    outcome: Outcome,
    actor: IncomingActor,
    resource: Option<IncomingResource>,
    source_service: String,
    request_id: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IncomingActor {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    ip: Option<String>,
    user_agent: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IncomingResource {
    #[serde(rename = "type")]
    kind: String,
    id: String,
}

/// Accepts RFC 3339 text or an integer of epoch milliseconds.
fn timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Millis(i64),
        Text(String),
    }
    match Raw::deserialize(d).map_err(|_| {
        serde::de::Error::custom(
            "expected an RFC 3339 timestamp string or integer epoch milliseconds",
        )
    })? {
        Raw::Millis(ms) => Ok(ms),
        Raw::Text(s) => OffsetDateTime::parse(&s, &Rfc3339)
            .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
            .map_err(|e| serde::de::Error::custom(format!("not an RFC 3339 timestamp ({e})"))),
    }
}

/// Parses and checks one JSON event. `event_id` and `received_at` are
/// assigned by the caller-supplied functions so tests stay deterministic.
pub fn parse_event(
    index: usize,
    body: &[u8],
    now_ms: i64,
    new_id: impl FnOnce() -> String,
) -> Result<AuditEvent, Vec<FieldError>> {
    // serde would read a struct from an array too, and then blame "[0]".
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        let problem = match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            Ok(_) => "body must be a JSON object holding one audit event".to_owned(),
            Err(e) => format!("body is not valid JSON: {e}"),
        };
        return Err(vec![FieldError {
            index,
            field_path: String::new(),
            problem,
        }]);
    }
    let value = super::strict_json::parse(body).map_err(|e| {
        vec![FieldError {
            index,
            field_path: e.field_path,
            problem: e.problem,
        }]
    })?;
    parse_value(index, value, now_ms, new_id)
}

/// [`parse_event`] for a body already read as JSON (one element of a batch,
/// or an event whose tenant was filled in from its API key).
pub fn parse_value(
    index: usize,
    value: serde_json::Value,
    now_ms: i64,
    new_id: impl FnOnce() -> String,
) -> Result<AuditEvent, Vec<FieldError>> {
    if !value.is_object() {
        return Err(vec![FieldError {
            index,
            field_path: String::new(),
            problem: "must be a JSON object holding one audit event".to_owned(),
        }]);
    }
    let incoming: IncomingEvent = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        vec![structural_error(index, &path, e.inner())]
    })?;
    let event = AuditEvent {
        event_id: incoming.event_id.unwrap_or_else(new_id),
        tenant_id: incoming.tenant_id,
        occurred_at: incoming.occurred_at,
        received_at: now_ms,
        category: incoming.category,
        action: incoming.action,
        outcome: incoming.outcome,
        actor: Actor {
            id: incoming.actor.id,
            kind: incoming.actor.kind,
            ip: incoming.actor.ip,
            user_agent: incoming.actor.user_agent,
        },
        resource: incoming.resource.map(|r| Resource {
            kind: r.kind,
            id: r.id,
        }),
        source_service: incoming.source_service,
        request_id: incoming.request_id,
        metadata: incoming.metadata,
    };
    let errors = check_event(index, &event, now_ms);
    if errors.is_empty() {
        Ok(event)
    } else {
        Err(errors)
    }
}

/// Every rule an event must meet to enter the trail, whichever way it came:
/// an HTTP body (JSON or Avro) or a record another service produced straight
/// onto an events topic (the writer calls this before a row is built). One
/// list, so no path into the table is held to less. Empty when it passes.
pub fn check_event(index: usize, event: &AuditEvent, now_ms: i64) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut check = |field: &str, problem: Option<String>| {
        if let Some(problem) = problem {
            errors.push(FieldError {
                index,
                field_path: field.to_owned(),
                problem,
            });
        }
    };

    check("event_id", identifier(&event.event_id, MAX_ID));
    check("tenant_id", identifier(&event.tenant_id, MAX_ID));
    check("occurred_at", occurred_at(event.occurred_at, now_ms));
    check("action", text(&event.action, MAX_SHORT));
    check("actor.id", text(&event.actor.id, MAX_SHORT));
    check("actor.type", text(&event.actor.kind, MAX_ID));
    if let Some(ip) = &event.actor.ip {
        check(
            "actor.ip",
            ip.parse::<IpAddr>()
                .err()
                .map(|_| format!("{ip:?} is not an IPv4 or IPv6 address")),
        );
    }
    if let Some(ua) = &event.actor.user_agent {
        check("actor.user_agent", length(ua, MAX_TEXT));
    }
    if let Some(r) = &event.resource {
        check("resource.type", text(&r.kind, MAX_ID));
        check("resource.id", text(&r.id, MAX_SHORT));
    }
    check("source_service", text(&event.source_service, MAX_ID));
    if let Some(rid) = &event.request_id {
        check("request_id", text(rid, MAX_SHORT));
    }
    if event.metadata.len() > MAX_METADATA_ENTRIES {
        check(
            "metadata",
            Some(format!(
                "has {} entries, at most {MAX_METADATA_ENTRIES} are allowed",
                event.metadata.len()
            )),
        );
    }
    for (key, value) in &event.metadata {
        let path = format!("metadata.{key}");
        check(&path, text(key, MAX_ID).map(|p| format!("key {p}")));
        check(&path, length(value, MAX_TEXT));
    }
    errors
}

/// serde reports a missing field at its parent; name the field itself.
fn structural_error(index: usize, path: &str, err: &serde_json::Error) -> FieldError {
    if matches!(
        err.classify(),
        serde_json::error::Category::Syntax
            | serde_json::error::Category::Eof
            | serde_json::error::Category::Io
    ) {
        // Broken JSON has no field to blame; its line and column are the clue.
        return FieldError {
            index,
            field_path: String::new(),
            problem: format!("body is not valid JSON: {err}"),
        };
    }
    let message = strip_position(&err.to_string());
    let parent = if path == "." { "" } else { path };
    let join = |child: &str| {
        if parent.is_empty() {
            child.to_owned()
        } else {
            format!("{parent}.{child}")
        }
    };
    if let Some(name) = backticked_after(&message, "missing field ") {
        return FieldError {
            index,
            field_path: join(name),
            problem: "is required".into(),
        };
    }
    if message.starts_with("unknown field ") {
        // Here the path already ends with the unknown field.
        return FieldError {
            index,
            field_path: parent.to_owned(),
            problem: format!("is not a field of the audit event contract ({message})"),
        };
    }
    FieldError {
        index,
        field_path: parent.to_owned(),
        problem: message,
    }
}

fn backticked_after<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(prefix)?.strip_prefix('`')?;
    rest.split('`').next()
}

/// serde_json appends "at line 1 column 5", which means nothing next to a
/// field path.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(pos) => message[..pos].to_owned(),
        None => message.to_owned(),
    }
}

fn length(value: &str, max: usize) -> Option<String> {
    (value.len() > max).then(|| format!("is {} bytes long, at most {max} are allowed", value.len()))
}

fn text(value: &str, max: usize) -> Option<String> {
    if value.trim().is_empty() {
        return Some("must not be empty".into());
    }
    if value.chars().any(char::is_control) {
        return Some("must not contain control characters".into());
    }
    length(value, max)
}

/// `None` if `value` is a usable id (tenant, event, key scope); else why not.
pub(crate) fn identifier(value: &str, max: usize) -> Option<String> {
    text(value, max).or_else(|| {
        (!value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':')))
        .then(|| "may only contain letters, digits, '.', '_', '-' and ':'".into())
    })
}

fn occurred_at(ms: i64, now_ms: i64) -> Option<String> {
    if ms < MIN_OCCURRED_AT_MS {
        Some(format!(
            "{ms} is before the year 2000; send epoch milliseconds (not seconds) or RFC 3339 text"
        ))
    } else if ms > now_ms.saturating_add(MAX_FUTURE_MS) {
        Some("is more than 24 hours in the future".into())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_435_200_000; // 2026-11-23T12:00:00Z

    fn valid() -> serde_json::Value {
        serde_json::json!({
            "tenant_id": "acme",
            "occurred_at": "2026-11-23T11:59:00.250Z",
            "category": "authentication",
            "action": "user.login",
            "outcome": "success",
            "actor": {"id": "alice", "type": "user", "ip": "2001:db8::1"},
            "resource": {"type": "session", "id": "s-1"},
            "source_service": "auth",
            "metadata": {"mfa": "totp"}
        })
    }

    fn parse(v: &serde_json::Value) -> Result<AuditEvent, Vec<FieldError>> {
        parse_event(3, v.to_string().as_bytes(), NOW, || "generated".into())
    }

    fn only_error(v: &serde_json::Value) -> FieldError {
        let errors = parse(v).expect_err("must be rejected");
        assert_eq!(errors.len(), 1, "{errors:?}");
        errors.into_iter().next().expect("one error")
    }

    #[test]
    fn accepts_a_valid_event_and_assigns_id_and_received_at() {
        let e = parse(&valid()).expect("valid");
        assert_eq!(e.event_id, "generated");
        assert_eq!(e.occurred_at, NOW - 59_750);
        assert_eq!(e.received_at, NOW);
        assert_eq!(e.category, Category::Authentication);
        assert_eq!(e.metadata["mfa"], "totp");
    }

    #[test]
    fn keeps_a_client_event_id_and_accepts_epoch_millis() {
        let mut v = valid();
        v["event_id"] = "svc-123:abc".into();
        v["occurred_at"] = (NOW - 1).into();
        let e = parse(&v).expect("valid");
        assert_eq!(e.event_id, "svc-123:abc");
        assert_eq!(e.occurred_at, NOW - 1);
    }

    #[test]
    fn missing_fields_are_named_with_their_path() {
        let mut v = valid();
        v.as_object_mut().unwrap().remove("tenant_id");
        let e = only_error(&v);
        assert_eq!(
            (e.index, e.field_path.as_str(), e.problem.as_str()),
            (3, "tenant_id", "is required")
        );

        let mut v = valid();
        v["actor"].as_object_mut().unwrap().remove("id");
        assert_eq!(only_error(&v).field_path, "actor.id");
    }

    #[test]
    fn wrong_types_name_the_field() {
        let mut v = valid();
        v["action"] = 5.into();
        let e = only_error(&v);
        assert_eq!(e.field_path, "action");
        assert!(e.problem.contains("expected a string"), "{}", e.problem);

        let mut v = valid();
        v["metadata"]["mfa"] = true.into();
        assert_eq!(only_error(&v).field_path, "metadata.mfa");
    }

    #[test]
    fn unknown_enum_symbols_and_fields_are_rejected() {
        let mut v = valid();
        v["category"] = "login".into();
        let e = only_error(&v);
        assert_eq!(e.field_path, "category");
        assert!(
            e.problem.contains("authentication"),
            "lists the allowed values: {}",
            e.problem
        );

        let mut v = valid();
        v["tenant"] = "acme".into();
        assert_eq!(only_error(&v).field_path, "tenant");
    }

    #[test]
    fn malformed_json_is_a_body_error() {
        let e = parse_event(0, b"{\"tenant_id\": ", NOW, || "x".into()).unwrap_err();
        assert_eq!(e[0].field_path, "");
        assert!(
            e[0].problem.starts_with("body is not valid JSON"),
            "{}",
            e[0].problem
        );
        let e = parse_event(0, b"[1,2]", NOW, || "x".into()).unwrap_err();
        assert_eq!(
            (e[0].field_path.as_str(), e[0].problem.as_str()),
            ("", "body must be a JSON object holding one audit event")
        );
        let e = parse_event(0, b"", NOW, || "x".into()).unwrap_err();
        assert!(
            e[0].problem.starts_with("body is not valid JSON"),
            "{}",
            e[0].problem
        );
        let e = parse_event(0, b"\xff\xfe", NOW, || "x".into()).unwrap_err();
        assert!(
            e[0].problem.starts_with("body is not valid JSON"),
            "{}",
            e[0].problem
        );
    }

    #[test]
    fn semantic_problems_are_all_reported() {
        let mut v = valid();
        v["tenant_id"] = "acme corp".into();
        v["actor"]["ip"] = "10.0.0.999".into();
        v["occurred_at"] = 1_795_435_200i64.into(); // seconds, not millis
        v["source_service"] = "   ".into();
        let errors = parse(&v).unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|e| e.field_path.as_str()).collect();
        assert_eq!(
            paths,
            ["tenant_id", "occurred_at", "actor.ip", "source_service"]
        );
        assert!(errors[1].problem.contains("milliseconds"));
    }

    #[test]
    fn rejects_future_timestamps_and_huge_strings() {
        let mut v = valid();
        v["occurred_at"] = (NOW + 25 * 3600 * 1000).into();
        assert_eq!(only_error(&v).field_path, "occurred_at");

        let mut v = valid();
        v["actor"]["user_agent"] = "x".repeat(MAX_TEXT + 1).into();
        assert_eq!(only_error(&v).field_path, "actor.user_agent");
    }

    #[test]
    fn bad_timestamp_text_names_the_field() {
        let mut v = valid();
        v["occurred_at"] = "yesterday".into();
        let e = only_error(&v);
        assert_eq!(e.field_path, "occurred_at");
        assert!(e.problem.contains("RFC 3339"), "{}", e.problem);
    }
}
