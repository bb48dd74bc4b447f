//! Turns a request body into an [`AuditEvent`], or into the list of every
//! problem with it, each naming the field. Pure: no I/O, so it is unit-tested
//! exhaustively and the HTTP layer only maps the result.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::de::{IgnoredAny, MapAccess, SeqAccess, Unexpected, Visitor};
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

/// One event as it reached ingest, before any check.
#[derive(Debug, PartialEq, Eq)]
pub enum Submitted<'a> {
    /// A request body that must hold exactly one event.
    Body(&'a [u8]),
    /// One element of a JSON array batch, or one NDJSON line.
    Item(&'a [u8]),
    /// A record decoded from Confluent-framed Avro: typed already, but held
    /// to every rule a JSON event is.
    Decoded(AuditEvent),
}

/// An event read in one pass from its JSON (or taken from a decoded
/// record), not yet checked: tenant and service still as given, because an
/// API key may fill them in or must match them.
pub struct Incoming(IncomingEvent);

// Read straight from the request's bytes, never through a
// `serde_json::Value`: the derived visitor refuses a field given twice
// ("duplicate field"), and so do `Bound` and `unique_keys` below, so a key
// repeated in any object of the contract is refused, never resolved. That
// matters for an audit trail: `{"tenant_id": "a", "tenant_id": "b"}` read as
// `b` here and as `a` by the proxy or WAF in front would be two readers and
// two events.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IncomingEvent {
    event_id: Option<String>,
    #[serde(default)]
    tenant_id: Bound,
    #[serde(deserialize_with = "timestamp")]
    occurred_at: i64,
    category: Category,
    action: String,
    outcome: Outcome,
    actor: IncomingActor,
    resource: Option<IncomingResource>,
    #[serde(default)]
    source_service: Bound,
    request_id: Option<String>,
    #[serde(default, deserialize_with = "unique_keys")]
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

/// A field an API key decides (`tenant_id`, `source_service`), read as
/// given so that a key's caller naming another tenant, in any JSON type, is
/// answered 403 for that field rather than a type error.
#[derive(Default)]
enum Bound {
    #[default]
    Absent,
    Null,
    Text(String),
    /// Not a string: serde's description of what was given.
    Other(String),
}

impl<'de> Deserialize<'de> for Bound {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(BoundVisitor)
    }
}

struct BoundVisitor;

impl<'de> Visitor<'de> for BoundVisitor {
    type Value = Bound;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E>(self, v: &str) -> Result<Bound, E> {
        Ok(Bound::Text(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Bound, E> {
        Ok(Bound::Text(v))
    }

    fn visit_unit<E>(self) -> Result<Bound, E> {
        Ok(Bound::Null)
    }

    fn visit_none<E>(self) -> Result<Bound, E> {
        Ok(Bound::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Bound, E> {
        Ok(Bound::Other(Unexpected::Bool(v).to_string()))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Bound, E> {
        Ok(Bound::Other(Unexpected::Signed(v).to_string()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Bound, E> {
        Ok(Bound::Other(Unexpected::Unsigned(v).to_string()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Bound, E> {
        Ok(Bound::Other(Unexpected::Float(v).to_string()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bound, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Bound::Other(Unexpected::Seq.to_string()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Bound, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Bound::Other(Unexpected::Map.to_string()))
    }
}

impl Bound {
    /// The value once any key has had its say; the error names the field.
    fn into_text(self, index: usize, field: &str) -> Result<String, FieldError> {
        let problem = match self {
            Bound::Text(text) => return Ok(text),
            Bound::Absent => "is required".to_owned(),
            Bound::Null => "invalid type: null, expected a string".to_owned(),
            Bound::Other(given) => format!("invalid type: {given}, expected a string"),
        };
        Err(FieldError {
            index,
            field_path: field.to_owned(),
            problem,
        })
    }
}

/// `metadata` as a map that refuses a key given twice (a `BTreeMap` would
/// keep the last).
fn unique_keys<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = BTreeMap<String, String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map of string keys to string values")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(key) = map.next_key::<String>()? {
                if out.contains_key(&key) {
                    return Err(serde::de::Error::custom(format_args!(
                        "duplicate field `{key}`"
                    )));
                }
                let value = map.next_value::<String>()?;
                out.insert(key, value);
            }
            Ok(out)
        }
    }
    d.deserialize_map(Keys)
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

impl Incoming {
    /// Reads one submitted event in a single pass; structural problems
    /// (syntax, types, unknown or repeated fields) name the field.
    pub fn read(index: usize, submitted: Submitted<'_>) -> Result<Incoming, Vec<FieldError>> {
        let (bytes, what) = match submitted {
            Submitted::Decoded(event) => return Ok(Incoming::decoded(event)),
            Submitted::Body(bytes) => (bytes, "body must be"),
            Submitted::Item(bytes) => (bytes, "must be"),
        };
        // serde would read a struct from an array too, and then blame "[0]".
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            let problem = match serde_json::from_slice::<IgnoredAny>(bytes) {
                Ok(_) => format!("{what} a JSON object holding one audit event"),
                Err(e) => format!("body is not valid JSON: {e}"),
            };
            return Err(vec![FieldError {
                index,
                field_path: String::new(),
                problem,
            }]);
        }
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        let incoming = incoming(index, &mut deserializer)?;
        deserializer.end().map_err(|e| {
            vec![FieldError {
                index,
                field_path: String::new(),
                problem: format!("body is not valid JSON: {e}"),
            }]
        })?;
        Ok(incoming)
    }

    fn decoded(e: AuditEvent) -> Incoming {
        // `received_at` is Attest's to set, whatever the record says.
        Incoming(IncomingEvent {
            event_id: Some(e.event_id),
            tenant_id: Bound::Text(e.tenant_id),
            occurred_at: e.occurred_at,
            category: e.category,
            action: e.action,
            outcome: e.outcome,
            actor: IncomingActor {
                id: e.actor.id,
                kind: e.actor.kind,
                ip: e.actor.ip,
                user_agent: e.actor.user_agent,
            },
            resource: e.resource.map(|r| IncomingResource {
                kind: r.kind,
                id: r.id,
            }),
            source_service: Bound::Text(e.source_service),
            request_id: e.request_id,
            metadata: e.metadata,
        })
    }

    /// The key decides the tenant and the source service: an event may
    /// leave them out (they are filled in) or repeat them, but never name
    /// others. The errors are the key's refusals (403), field by field.
    pub fn bind(
        &mut self,
        index: usize,
        tenant_id: &str,
        source_service: &str,
    ) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        for (field, given, bound) in [
            ("tenant_id", &mut self.0.tenant_id, tenant_id),
            ("source_service", &mut self.0.source_service, source_service),
        ] {
            match given {
                Bound::Absent | Bound::Null => *given = Bound::Text(bound.to_owned()),
                Bound::Text(text) if text == bound => {}
                Bound::Text(_) | Bound::Other(_) => errors.push(FieldError {
                    index,
                    field_path: field.to_owned(),
                    problem: format!("this API key may only send events with {field} {bound:?}"),
                }),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The event, if it meets every rule ([`check_event`]). `event_id` and
    /// `received_at` come from the caller so tests stay deterministic.
    pub fn into_event(
        self,
        index: usize,
        now_ms: i64,
        new_id: impl FnOnce() -> String,
    ) -> Result<AuditEvent, Vec<FieldError>> {
        let incoming = self.0;
        let tenant_id = incoming.tenant_id.into_text(index, "tenant_id");
        let source_service = incoming.source_service.into_text(index, "source_service");
        let (tenant_id, source_service) = match (tenant_id, source_service) {
            (Ok(tenant), Ok(service)) => (tenant, service),
            (tenant, service) => {
                return Err([tenant.err(), service.err()]
                    .into_iter()
                    .flatten()
                    .collect())
            }
        };
        let event = AuditEvent {
            event_id: incoming.event_id.unwrap_or_else(new_id),
            tenant_id,
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
            source_service,
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
}

/// Deserializes the contract's shape from any JSON source, keeping the
/// path of the first problem.
fn incoming<'de, D>(index: usize, d: D) -> Result<Incoming, Vec<FieldError>>
where
    D: Deserializer<'de, Error = serde_json::Error>,
{
    serde_path_to_error::deserialize(d)
        .map(Incoming)
        .map_err(|e| vec![structural_error(index, &e.path().to_string(), e.inner())])
}

/// Parses and checks one JSON event body (no API key).
pub fn parse_event(
    index: usize,
    body: &[u8],
    now_ms: i64,
    new_id: impl FnOnce() -> String,
) -> Result<AuditEvent, Vec<FieldError>> {
    Incoming::read(index, Submitted::Body(body))?.into_event(index, now_ms, new_id)
}

/// [`parse_event`] for an event already held as a JSON value (tests and
/// seeding tools build them that way).
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
    incoming(index, value)?.into_event(index, now_ms, new_id)
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
    if let Some(name) = backticked_after(&message, "duplicate field ") {
        return FieldError {
            index,
            field_path: join(name),
            problem: "is given more than once in the same object; ambiguous JSON is refused".into(),
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
    fn a_key_given_twice_is_refused_at_any_depth() {
        let body = valid().to_string();
        for (twice, path) in [
            (r#"{"tenant_id": "a", "tenant_id": "a","#, "tenant_id"),
            (r#"{"event_id": "e", "event_id": "e","#, "event_id"),
            (
                r#"{"actor": {"id": "a", "id": "b", "type": "user"},"#,
                "actor.id",
            ),
            (
                r#"{"resource": {"type": "t", "type": "t", "id": "1"},"#,
                "resource.type",
            ),
            (r#"{"metadata": {"k": "1", "k": "2"},"#, "metadata.k"),
        ] {
            // The duplicate comes first, so the field given later again
            // is a second problem serde never reaches.
            let first = twice.trim_end_matches(',').trim_start_matches('{');
            let key = first.split('"').nth(1).unwrap();
            let rest: serde_json::Value = {
                let mut v = valid();
                v.as_object_mut().unwrap().remove(key);
                v
            };
            let json = format!("{twice}{}", &rest.to_string()[1..]);
            let e = parse_event(0, json.as_bytes(), NOW, || "x".into()).unwrap_err();
            assert_eq!(e.len(), 1, "{json}: {e:?}");
            assert_eq!(e[0].field_path, path, "{json}");
            assert!(e[0].problem.contains("more than once"), "{}", e[0].problem);
        }
        assert!(parse_event(0, body.as_bytes(), NOW, || "x".into()).is_ok());
    }

    #[test]
    fn a_key_fills_in_or_must_match_tenant_and_service() {
        let read = |v: &serde_json::Value| {
            Incoming::read(0, Submitted::Item(v.to_string().as_bytes())).expect("readable")
        };
        let mut v = valid();
        v.as_object_mut().unwrap().remove("tenant_id");
        v["source_service"] = serde_json::Value::Null;
        let mut incoming = read(&v);
        incoming.bind(0, "acme", "auth").expect("filled in");
        let event = incoming.into_event(0, NOW, || "x".into()).expect("valid");
        assert_eq!(
            (event.tenant_id.as_str(), event.source_service.as_str()),
            ("acme", "auth")
        );

        for other in [
            serde_json::json!("globex"),
            serde_json::json!(7),
            serde_json::json!({"$ne": ""}),
        ] {
            let mut v = valid();
            v["tenant_id"] = other.clone();
            let errors = read(&v).bind(0, "acme", "auth").unwrap_err();
            assert_eq!(errors.len(), 1, "{other}");
            assert_eq!(errors[0].field_path, "tenant_id");
        }

        // Without a key, a tenant that is not a string is a type error.
        let mut v = valid();
        v["tenant_id"] = 7.into();
        let e = only_error(&v);
        assert_eq!(
            (e.field_path.as_str(), e.problem.as_str()),
            ("tenant_id", "invalid type: integer `7`, expected a string")
        );
    }

    #[test]
    fn batch_items_and_bodies_name_a_non_object_differently() {
        let e = Incoming::read(4, Submitted::Item(b"[1]"))
            .err()
            .expect("refused");
        assert_eq!(
            (e[0].index, e[0].problem.as_str()),
            (4, "must be a JSON object holding one audit event")
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
