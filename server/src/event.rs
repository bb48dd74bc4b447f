//! The audit event as the pipeline carries it, and its mapping to and from
//! the Avro records of `schemas/audit_event.avsc`. Ingest builds one from a
//! request; the writer rebuilds it from a Kafka message.

use std::collections::{BTreeMap, HashMap};

use apache_avro::types::Value;
use serde::Deserialize;

/// What kind of action an event records. The order is the Avro enum's symbol
/// order, which the binary encoding depends on: append only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Authentication,
    DataAccess,
    DataModification,
    PermissionChange,
    Admin,
    System,
}

impl Category {
    pub const ALL: [Category; 6] = [
        Category::Authentication,
        Category::DataAccess,
        Category::DataModification,
        Category::PermissionChange,
        Category::Admin,
        Category::System,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Authentication => "authentication",
            Category::DataAccess => "data_access",
            Category::DataModification => "data_modification",
            Category::PermissionChange => "permission_change",
            Category::Admin => "admin",
            Category::System => "system",
        }
    }

    pub fn from_symbol(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Same append-only rule as [`Category`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
    Denied,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Outcome::Success, Outcome::Failure, Outcome::Denied];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }

    fn from_symbol(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub id: String,
    pub kind: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub kind: String,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub event_id: String,
    pub tenant_id: String,
    /// Epoch milliseconds.
    pub occurred_at: i64,
    /// Epoch milliseconds.
    pub received_at: i64,
    pub category: Category,
    pub action: String,
    pub outcome: Outcome,
    pub actor: Actor,
    pub resource: Option<Resource>,
    pub source_service: String,
    pub request_id: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {problem}")]
pub struct DecodeError {
    pub field: String,
    pub problem: String,
}

impl AuditEvent {
    /// The Avro record for the current schema version.
    pub fn to_avro(&self) -> Value {
        let string = |s: &str| Value::String(s.to_owned());
        let optional = |v: Option<&String>| match v {
            Some(s) => Value::Union(1, Box::new(Value::String(s.clone()))),
            None => Value::Union(0, Box::new(Value::Null)),
        };
        let actor = Value::Record(vec![
            ("id".into(), string(&self.actor.id)),
            ("type".into(), string(&self.actor.kind)),
            ("ip".into(), optional(self.actor.ip.as_ref())),
            (
                "user_agent".into(),
                optional(self.actor.user_agent.as_ref()),
            ),
        ]);
        let resource = match &self.resource {
            Some(r) => Value::Union(
                1,
                Box::new(Value::Record(vec![
                    ("type".into(), string(&r.kind)),
                    ("id".into(), string(&r.id)),
                ])),
            ),
            None => Value::Union(0, Box::new(Value::Null)),
        };
        let metadata: HashMap<String, Value> = self
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        Value::Record(vec![
            ("event_id".into(), string(&self.event_id)),
            ("tenant_id".into(), string(&self.tenant_id)),
            (
                "occurred_at".into(),
                Value::TimestampMillis(self.occurred_at),
            ),
            (
                "received_at".into(),
                Value::TimestampMillis(self.received_at),
            ),
            (
                "category".into(),
                Value::Enum(self.category as u32, self.category.as_str().into()),
            ),
            ("action".into(), string(&self.action)),
            (
                "outcome".into(),
                Value::Enum(self.outcome as u32, self.outcome.as_str().into()),
            ),
            ("actor".into(), actor),
            ("resource".into(), resource),
            ("source_service".into(), string(&self.source_service)),
            ("request_id".into(), optional(self.request_id.as_ref())),
            ("metadata".into(), Value::Map(metadata)),
        ])
    }

    /// Rebuilds an event from a record already resolved to the current
    /// schema (see `registry::Registry::decode`).
    pub fn from_avro(value: Value) -> Result<AuditEvent, DecodeError> {
        let mut fields = Fields::new("", value)?;
        let mut actor = Fields::new("actor", fields.take("actor")?)?;
        let resource = match unwrap_union(fields.take("resource")?) {
            Value::Null => None,
            v => {
                let mut r = Fields::new("resource", v)?;
                Some(Resource {
                    kind: r.string("type")?,
                    id: r.string("id")?,
                })
            }
        };
        let metadata = match fields.take("metadata")? {
            Value::Map(m) => m
                .into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k, s)),
                    other => Err(mismatch(&format!("metadata.{k}"), "string", &other)),
                })
                .collect::<Result<BTreeMap<_, _>, _>>()?,
            other => return Err(mismatch("metadata", "map", &other)),
        };
        let category = fields.symbol("category")?;
        let outcome = fields.symbol("outcome")?;
        Ok(AuditEvent {
            event_id: fields.string("event_id")?,
            tenant_id: fields.string("tenant_id")?,
            occurred_at: fields.millis("occurred_at")?,
            received_at: fields.millis("received_at")?,
            category: Category::from_symbol(&category)
                .ok_or_else(|| problem("category", format!("unknown symbol {category:?}")))?,
            action: fields.string("action")?,
            outcome: Outcome::from_symbol(&outcome)
                .ok_or_else(|| problem("outcome", format!("unknown symbol {outcome:?}")))?,
            actor: Actor {
                id: actor.string("id")?,
                kind: actor.string("type")?,
                ip: actor.optional_string("ip")?,
                user_agent: actor.optional_string("user_agent")?,
            },
            resource,
            source_service: fields.string("source_service")?,
            request_id: fields.optional_string("request_id")?,
            metadata,
        })
    }
}

fn problem(field: &str, problem: impl Into<String>) -> DecodeError {
    DecodeError {
        field: field.to_owned(),
        problem: problem.into(),
    }
}

fn mismatch(field: &str, expected: &str, got: &Value) -> DecodeError {
    problem(field, format!("expected {expected}, found {got:?}"))
}

fn unwrap_union(v: Value) -> Value {
    match v {
        Value::Union(_, inner) => *inner,
        other => other,
    }
}

/// The fields of one Avro record, taken out by name.
struct Fields {
    path: &'static str,
    fields: Vec<(String, Value)>,
}

impl Fields {
    fn new(path: &'static str, value: Value) -> Result<Fields, DecodeError> {
        match value {
            Value::Record(fields) => Ok(Fields { path, fields }),
            other => Err(mismatch(
                if path.is_empty() { "<root>" } else { path },
                "record",
                &other,
            )),
        }
    }

    fn full(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    fn take(&mut self, name: &str) -> Result<Value, DecodeError> {
        let pos = self
            .fields
            .iter()
            .position(|(n, _)| n == name)
            .ok_or_else(|| problem(&self.full(name), "missing"))?;
        Ok(std::mem::replace(&mut self.fields[pos].1, Value::Null))
    }

    fn string(&mut self, name: &str) -> Result<String, DecodeError> {
        match self.take(name)? {
            Value::String(s) => Ok(s),
            other => Err(mismatch(&self.full(name), "string", &other)),
        }
    }

    fn optional_string(&mut self, name: &str) -> Result<Option<String>, DecodeError> {
        match unwrap_union(self.take(name)?) {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            other => Err(mismatch(&self.full(name), "null or string", &other)),
        }
    }

    fn millis(&mut self, name: &str) -> Result<i64, DecodeError> {
        match self.take(name)? {
            Value::TimestampMillis(ms) | Value::Long(ms) => Ok(ms),
            other => Err(mismatch(&self.full(name), "timestamp-millis", &other)),
        }
    }

    fn symbol(&mut self, name: &str) -> Result<String, DecodeError> {
        match self.take(name)? {
            Value::Enum(_, s) => Ok(s),
            other => Err(mismatch(&self.full(name), "enum", &other)),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> AuditEvent {
        AuditEvent {
            event_id: "evt-1".into(),
            tenant_id: "acme".into(),
            occurred_at: 1_795_435_200_123,
            received_at: 1_795_435_200_456,
            category: Category::PermissionChange,
            action: "role.grant".into(),
            outcome: Outcome::Denied,
            actor: Actor {
                id: "alice".into(),
                kind: "user".into(),
                ip: Some("203.0.113.7".into()),
                user_agent: None,
            },
            resource: Some(Resource {
                kind: "role".into(),
                id: "admin".into(),
            }),
            source_service: "iam".into(),
            request_id: None,
            metadata: BTreeMap::from([("reason".into(), "ticket 42".into())]),
        }
    }

    #[test]
    fn avro_value_round_trips() {
        let e = sample();
        assert_eq!(AuditEvent::from_avro(e.to_avro()), Ok(e));
    }

    #[test]
    fn absent_optionals_round_trip() {
        let mut e = sample();
        e.resource = None;
        e.actor.ip = None;
        e.metadata.clear();
        assert_eq!(AuditEvent::from_avro(e.to_avro()), Ok(e));
    }

    #[test]
    fn enum_discriminants_match_the_schema_symbol_order() {
        for (i, c) in Category::ALL.into_iter().enumerate() {
            assert_eq!(c as usize, i);
        }
        for (i, o) in Outcome::ALL.into_iter().enumerate() {
            assert_eq!(o as usize, i);
        }
    }

    #[test]
    fn decode_errors_name_the_field() {
        let Value::Record(mut fields) = sample().to_avro() else {
            unreachable!()
        };
        fields.retain(|(n, _)| n != "tenant_id");
        let err = AuditEvent::from_avro(Value::Record(fields)).unwrap_err();
        assert_eq!(err.field, "tenant_id");
    }
}
