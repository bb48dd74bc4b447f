//! Which fields of a stored event a redaction may erase, named as the
//! ingest API names them (`actor.ip`, `metadata.<key>`), and erasing them
//! from a row. What identifies, places or counts an event (`event_id`,
//! `tenant_id`, `occurred_at`, `category`, `outcome`, and what Attest
//! recorded about it) is refused by name: erasing it would change which
//! event the row is, not what it says about a person.

use crate::integrity::redaction::MARKER;
use crate::store::EventRow;

/// One redactable field.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    ActorId,
    ActorType,
    ActorIp,
    ActorUserAgent,
    ResourceType,
    ResourceId,
    RequestId,
    /// Every metadata entry with this key keeps its key; its value is
    /// erased.
    Metadata(String),
}

/// The fixed fields, by name, for parsing and for the error that lists
/// them.
const NAMED: &[(&str, Field)] = &[
    ("actor.id", Field::ActorId),
    ("actor.type", Field::ActorType),
    ("actor.ip", Field::ActorIp),
    ("actor.user_agent", Field::ActorUserAgent),
    ("resource.type", Field::ResourceType),
    ("resource.id", Field::ResourceId),
    ("request_id", Field::RequestId),
];

const METADATA_PREFIX: &str = "metadata.";

/// Fields that can never be redacted, with why.
const REFUSED: &[(&str, &str)] = &[
    ("event_id", "it is the event's identity"),
    ("tenant_id", "it says whose trail the event is in"),
    (
        "occurred_at",
        "it places the event in time (searches, rollups, retention)",
    ),
    ("category", "it names the event's topic and chain"),
    ("outcome", "the dashboards and detections count by it"),
    (
        "action",
        "it says what happened; erase the personal data around it instead",
    ),
    ("source_service", "it names the service that sent the event"),
    ("received_at", "Attest recorded it, not the sender"),
    ("schema_id", "Attest recorded it, not the sender"),
    ("kafka_partition", "Attest recorded it, not the sender"),
    ("kafka_offset", "Attest recorded it, not the sender"),
];

impl Field {
    /// The name as a request spells it.
    pub fn name(&self) -> String {
        match self {
            Field::Metadata(key) => format!("{METADATA_PREFIX}{key}"),
            fixed => NAMED
                .iter()
                .find(|(_, f)| f == fixed)
                .map(|(n, _)| (*n).to_owned())
                .unwrap_or_default(),
        }
    }

    /// Replaces the field's value in `row` with the marker.
    pub fn erase(&self, row: &mut EventRow) {
        let marker = || MARKER.to_owned();
        match self {
            Field::ActorId => row.actor_id = marker(),
            Field::ActorType => row.actor_type = marker(),
            Field::ActorIp => row.actor_ip = marker(),
            Field::ActorUserAgent => row.actor_user_agent = marker(),
            Field::ResourceType => row.resource_type = marker(),
            Field::ResourceId => row.resource_id = marker(),
            Field::RequestId => row.request_id = marker(),
            Field::Metadata(key) => {
                for (k, v) in row.metadata_key.iter().zip(row.metadata_value.iter_mut()) {
                    if k == key {
                        *v = marker();
                    }
                }
            }
        }
    }
}

/// Parses one field name; the error says why it cannot be redacted, or
/// which names can.
pub fn parse(name: &str) -> Result<Field, String> {
    let name = name.trim();
    if let Some((_, f)) = NAMED.iter().find(|(n, _)| *n == name) {
        return Ok(f.clone());
    }
    if let Some(key) = name.strip_prefix(METADATA_PREFIX) {
        if key.is_empty() {
            return Err("`metadata.` needs the metadata key after the dot".into());
        }
        return Ok(Field::Metadata(key.to_owned()));
    }
    if let Some((_, why)) = REFUSED.iter().find(|(n, _)| *n == name) {
        return Err(format!("`{name}` cannot be redacted: {why}"));
    }
    let known: Vec<&str> = NAMED.iter().map(|(n, _)| *n).collect();
    Err(format!(
        "`{name}` is not a redactable field; use {} or metadata.<key>",
        known.join(", ")
    ))
}

/// Parses a request's list: at least one field, each once, sorted.
pub fn parse_list(names: &[String]) -> Result<Vec<Field>, String> {
    if names.iter().all(|n| n.trim().is_empty()) {
        return Err("name at least one field to redact (e.g. actor.ip)".into());
    }
    let mut fields = names
        .iter()
        .filter(|n| !n.trim().is_empty())
        .map(|n| parse(n))
        .collect::<Result<Vec<_>, _>>()?;
    fields.sort();
    fields.dedup();
    Ok(fields)
}

/// The row with the fields erased.
pub fn redacted(row: &EventRow, fields: &[Field]) -> EventRow {
    let mut out = row.clone();
    for f in fields {
        f.erase(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests::sample;
    use crate::integrity::leaf::Sealed;
    use crate::store::Provenance;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn fields_parse_and_protected_ones_are_refused_by_name() {
        let parsed = parse_list(&names(&["metadata.email", "actor.ip", "actor.ip"])).unwrap();
        assert_eq!(
            parsed,
            vec![Field::ActorIp, Field::Metadata("email".into())]
        );
        assert_eq!(parsed[1].name(), "metadata.email");
        assert_eq!(
            parse("actor.user_agent").unwrap().name(),
            "actor.user_agent"
        );
        for protected in [
            "event_id",
            "tenant_id",
            "occurred_at",
            "category",
            "outcome",
        ] {
            let e = parse_list(&names(&["actor.ip", protected])).unwrap_err();
            assert!(
                e.starts_with(&format!("`{protected}` cannot be redacted")),
                "{e}"
            );
        }
        let e = parse("actor.name").unwrap_err();
        assert!(
            e.contains("not a redactable field") && e.contains("actor.id"),
            "{e}"
        );
        assert!(parse("metadata.").is_err());
        assert!(parse_list(&[]).is_err());
        assert!(parse_list(&names(&[" "])).is_err());
    }

    #[test]
    fn erasing_keeps_keys_and_changes_the_content_hash() {
        let row = EventRow::new(
            sample(),
            Provenance {
                schema_id: 1,
                partition: 0,
                offset: 3,
            },
        );
        let fields =
            parse_list(&names(&["actor.id", "metadata.reason", "metadata.absent"])).unwrap();
        let out = redacted(&row, &fields);
        assert_eq!(out.actor_id, MARKER);
        assert_eq!(out.metadata_key, row.metadata_key, "keys stay");
        assert_eq!(out.metadata_value, vec![MARKER.to_owned()]);
        assert_eq!(out.actor_type, row.actor_type, "other fields untouched");
        assert_eq!(out.event_id, row.event_id);
        assert_ne!(
            Sealed::from(&out).content_hash(),
            Sealed::from(&row).content_hash()
        );
        // Erasing again changes nothing: a repeated run is a no-op.
        assert_eq!(
            Sealed::from(&redacted(&out, &fields)).content_hash(),
            Sealed::from(&out).content_hash()
        );
    }
}
