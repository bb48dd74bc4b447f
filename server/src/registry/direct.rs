//! Reads and writes the audit event straight from and to Avro binary, for
//! schema versions whose layout is the one below; others go through
//! apache-avro's generic values.
//!
//! Why: every event passes here twice (ingest encodes, the writer decodes),
//! and apache-avro's generic path rebuilds the schema's name table and a
//! tree of `Value`s for each datum. Measured on the writer, that was most of
//! its own time per event. Binary layout is all that decides the bytes, and
//! Avro's Parsing Canonical Form keeps exactly that (names, field order and
//! types, symbols; no docs, defaults or logical types), so a version whose
//! canonical form equals this layout's is read and written here. Tests hold
//! this module to apache-avro: the same bytes, the same events, and the same
//! verdict on damaged data.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use apache_avro::Schema;

use super::binary::{put_bytes, put_long, Cursor, Malformed};
use crate::event::{Actor, AuditEvent, Category, Outcome, Resource};

/// The layout this module reads and writes: version 1 of the contract.
const LAYOUT: &str = r#"{"type": "record", "name": "AuditEvent", "namespace": "dev.attest", "fields": [
    {"name": "event_id", "type": "string"},
    {"name": "tenant_id", "type": "string"},
    {"name": "occurred_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "received_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "category", "type": {"type": "enum", "name": "Category", "symbols":
        ["authentication", "data_access", "data_modification", "permission_change", "admin", "system"]}},
    {"name": "action", "type": "string"},
    {"name": "outcome", "type": {"type": "enum", "name": "Outcome", "symbols": ["success", "failure", "denied"]}},
    {"name": "actor", "type": {"type": "record", "name": "Actor", "fields": [
        {"name": "id", "type": "string"},
        {"name": "type", "type": "string"},
        {"name": "ip", "type": ["null", "string"]},
        {"name": "user_agent", "type": ["null", "string"]}]}},
    {"name": "resource", "type": ["null", {"type": "record", "name": "Resource", "fields": [
        {"name": "type", "type": "string"},
        {"name": "id", "type": "string"}]}]},
    {"name": "source_service", "type": "string"},
    {"name": "request_id", "type": ["null", "string"]},
    {"name": "metadata", "type": {"type": "map", "values": "string"}}
]}"#;

fn layout_canonical_form() -> Option<&'static str> {
    static FORM: OnceLock<Option<String>> = OnceLock::new();
    FORM.get_or_init(|| Schema::parse_str(LAYOUT).ok().map(|s| s.canonical_form()))
        .as_deref()
}

/// Whether data written with `schema` has this module's layout.
pub fn handles(schema: &Schema) -> bool {
    layout_canonical_form() == Some(schema.canonical_form().as_str())
}

/// Appends the event's Avro datum to `out`. Metadata entries are written
/// in key order, so an event always has the same bytes.
pub fn encode(event: &AuditEvent, out: &mut Vec<u8>) {
    let string = |out: &mut Vec<u8>, s: &str| put_bytes(out, s.as_bytes());
    let optional = |out: &mut Vec<u8>, s: Option<&String>| match s {
        None => put_long(out, 0),
        Some(s) => {
            put_long(out, 1);
            put_bytes(out, s.as_bytes());
        }
    };
    string(out, &event.event_id);
    string(out, &event.tenant_id);
    put_long(out, event.occurred_at);
    put_long(out, event.received_at);
    put_long(out, event.category as i64);
    string(out, &event.action);
    put_long(out, event.outcome as i64);
    string(out, &event.actor.id);
    string(out, &event.actor.kind);
    optional(out, event.actor.ip.as_ref());
    optional(out, event.actor.user_agent.as_ref());
    match &event.resource {
        None => put_long(out, 0),
        Some(r) => {
            put_long(out, 1);
            string(out, &r.kind);
            string(out, &r.id);
        }
    }
    string(out, &event.source_service);
    optional(out, event.request_id.as_ref());
    if !event.metadata.is_empty() {
        put_long(out, i64::try_from(event.metadata.len()).unwrap_or(i64::MAX));
        for (key, value) in &event.metadata {
            string(out, key);
            string(out, value);
        }
    }
    put_long(out, 0);
}

/// Reads one event from the start of `datum`; returns it and the bytes it
/// took. Every length is checked against the bytes left before it is used.
pub fn decode(datum: &[u8]) -> Result<(AuditEvent, usize), Malformed> {
    let mut c = Cursor::new(datum);
    let string = |c: &mut Cursor, what: &str| c.string(what).map(str::to_owned);
    let optional = |c: &mut Cursor, what: &str| -> Result<Option<String>, Malformed> {
        match c.index(2, what)? {
            0 => Ok(None),
            _ => c.string(what).map(|s| Some(s.to_owned())),
        }
    };
    let event_id = string(&mut c, "event_id")?;
    let tenant_id = string(&mut c, "tenant_id")?;
    let occurred_at = c.long()?;
    let received_at = c.long()?;
    let category = Category::ALL[c.index(Category::ALL.len(), "category")?];
    let action = string(&mut c, "action")?;
    let outcome = Outcome::ALL[c.index(Outcome::ALL.len(), "outcome")?];
    let actor = Actor {
        id: string(&mut c, "actor.id")?,
        kind: string(&mut c, "actor.type")?,
        ip: optional(&mut c, "actor.ip")?,
        user_agent: optional(&mut c, "actor.user_agent")?,
    };
    let resource = match c.index(2, "resource")? {
        0 => None,
        _ => Some(Resource {
            kind: string(&mut c, "resource.type")?,
            id: string(&mut c, "resource.id")?,
        }),
    };
    let source_service = string(&mut c, "source_service")?;
    let request_id = optional(&mut c, "request_id")?;
    let mut metadata = BTreeMap::new();
    loop {
        // An entry is at least two empty strings: two length bytes.
        let count = c.block(2, "metadata")?;
        if count == 0 {
            break;
        }
        for _ in 0..count {
            let key = string(&mut c, "metadata key")?;
            let value = string(&mut c, "metadata value")?;
            // As apache-avro: a key given twice keeps its last value.
            metadata.insert(key, value);
        }
    }
    let event = AuditEvent {
        event_id,
        tenant_id,
        occurred_at,
        received_at,
        category,
        action,
        outcome,
        actor,
        resource,
        source_service,
        request_id,
        metadata,
    };
    Ok((event, c.position()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::{from_avro_datum, to_avro_datum};
    use rand::{Rng, SeedableRng};

    fn shipped() -> Schema {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../schemas/audit_event.avsc"
        ))
        .expect("the contract is readable");
        Schema::parse_str(&text).expect("the contract parses")
    }

    fn text(rng: &mut impl Rng) -> String {
        let alphabet = [
            "a",
            "Z",
            "0",
            "-",
            ".",
            " ",
            "é",
            "日本",
            "\u{1F600}",
            "\0",
            "\"",
            "\n",
        ];
        let n = rng.gen_range(0..12);
        (0..n)
            .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
            .collect()
    }

    fn event(rng: &mut rand::rngs::StdRng, metadata_entries: usize) -> AuditEvent {
        let maybe = |rng: &mut rand::rngs::StdRng| rng.gen_bool(0.5).then(|| text(rng));
        AuditEvent {
            event_id: text(rng),
            tenant_id: text(rng),
            occurred_at: rng.gen(),
            received_at: rng.gen_range(-5..5_000_000_000_000),
            category: Category::ALL[rng.gen_range(0..6)],
            action: text(rng),
            outcome: Outcome::ALL[rng.gen_range(0..3)],
            actor: Actor {
                id: text(rng),
                kind: text(rng),
                ip: maybe(rng),
                user_agent: maybe(rng),
            },
            resource: rng.gen_bool(0.5).then(|| Resource {
                kind: text(rng),
                id: text(rng),
            }),
            source_service: text(rng),
            request_id: maybe(rng),
            metadata: (0..metadata_entries)
                .map(|i| (format!("{i}{}", text(rng)), text(rng)))
                .collect(),
        }
    }

    #[test]
    fn the_shipped_contract_has_this_layout_and_others_do_not() {
        assert!(handles(&shipped()));
        let renamed = LAYOUT.replace("\"request_id\"", "\"request\"");
        assert!(!handles(&Schema::parse_str(&renamed).expect("parses")));
        let reordered = LAYOUT.replace(
            r#"["success", "failure", "denied"]"#,
            r#"["failure", "success", "denied"]"#,
        );
        assert!(!handles(&Schema::parse_str(&reordered).expect("parses")));
    }

    #[test]
    fn writes_the_bytes_apache_avro_writes() {
        let schema = shipped();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for i in 0..2_000 {
            // apache-avro writes a map in hash order, so byte equality is
            // only defined up to one entry.
            let e = event(&mut rng, i % 2);
            let mut ours = Vec::new();
            encode(&e, &mut ours);
            let theirs = to_avro_datum(&schema, e.to_avro()).expect("apache-avro encodes");
            assert_eq!(ours, theirs, "event {e:?}");
        }
    }

    #[test]
    fn reads_what_apache_avro_reads() {
        let schema = shipped();
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for i in 0..2_000 {
            let e = event(&mut rng, i % 5);
            let bytes = to_avro_datum(&schema, e.to_avro()).expect("apache-avro encodes");
            let (ours, used) = decode(&bytes).expect("decodes");
            assert_eq!(used, bytes.len());
            assert_eq!(ours, e);
            let mut own = Vec::new();
            encode(&e, &mut own);
            let theirs = from_avro_datum(&schema, &mut own.as_slice(), None)
                .expect("apache-avro reads ours");
            assert_eq!(AuditEvent::from_avro(theirs).expect("an event"), e);
        }
    }

    /// Damaged datums: whatever apache-avro refuses, this refuses too, and
    /// what both accept is the same event. (This module may refuse more:
    /// an over-long block count apache-avro would try to reserve.)
    #[test]
    fn damaged_data_gets_the_verdict_apache_avro_gives() {
        let schema = shipped();
        let mut rng = rand::rngs::StdRng::seed_from_u64(13);
        for i in 0..20_000 {
            let e = event(&mut rng, i % 3);
            let mut bytes = Vec::new();
            encode(&e, &mut bytes);
            match rng.gen_range(0..3) {
                0 => {
                    let at = rng.gen_range(0..bytes.len());
                    bytes[at] = rng.gen();
                }
                1 => bytes.truncate(rng.gen_range(0..bytes.len())),
                _ => {
                    let at = rng.gen_range(0..bytes.len());
                    bytes.insert(at, rng.gen());
                }
            }
            // Only what the bounds check lets through reaches apache-avro,
            // as in the registry.
            let theirs = super::super::bounds::check_record(&schema, &bytes)
                .ok()
                .and_then(|used| {
                    let mut slice = &bytes[..used];
                    let value = from_avro_datum(&schema, &mut slice, None).ok()?;
                    AuditEvent::from_avro(value).ok().map(|e| (e, used))
                });
            let ours = decode(&bytes).ok();
            assert_eq!(ours, theirs, "datum {bytes:?}");
        }
    }
}
