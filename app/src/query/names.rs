//! Field names as analysts type them, resolved case-insensitively.

use super::ast::{TextField, TimeField};
use super::{shorten, ParseError, FIELDS};

pub(super) enum Resolved {
    Text(TextField),
    SchemaId,
    Time(TimeField),
}

/// Every accepted spelling, for suggestions on a typo.
const NAMES: &[&str] = &[
    "event_id",
    "category",
    "action",
    "outcome",
    "actor",
    "actor.id",
    "actor.type",
    "actor.ip",
    "ip",
    "actor.user_agent",
    "resource.type",
    "resource",
    "resource.id",
    "source",
    "service",
    "source_service",
    "request_id",
    "schema_id",
    "occurred_at",
    "received_at",
];

/// What a metadata field starts with; any case, as field names are.
pub const METADATA_PREFIX: &str = "metadata.";

/// Whether `key` is a metadata key the query language can name after
/// `metadata.`: one or more ASCII letters, digits, `_`, `.` and `-`. Keys
/// are case-sensitive. Everything that offers a metadata key as a field
/// (columns, facets, suggestions) checks it here, so whatever it offers
/// also parses.
pub fn is_metadata_key(key: &str) -> bool {
    !key.is_empty() && key.chars().all(metadata_key_char)
}

/// What [`is_metadata_key`] asks, in words, for every message that
/// refuses a key.
pub const METADATA_KEY_RULE: &str = "metadata keys may only contain letters, digits, _ . and -";

fn metadata_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// The key of a `metadata.<key>` field name (the prefix in any case), if
/// it is one the query language accepts.
pub fn metadata_key_of(field: &str) -> Option<&str> {
    let prefix = field.get(..METADATA_PREFIX.len())?;
    let key = &field[METADATA_PREFIX.len()..];
    (prefix.eq_ignore_ascii_case(METADATA_PREFIX) && is_metadata_key(key)).then_some(key)
}

fn lookup(lower: &str) -> Option<Resolved> {
    use TextField::*;
    Some(Resolved::Text(match lower {
        "event_id" => EventId,
        "category" => Category,
        "action" => Action,
        "outcome" => Outcome,
        "actor" | "actor.id" => ActorId,
        "actor.type" => ActorType,
        "actor.ip" | "ip" => ActorIp,
        "actor.user_agent" => ActorUserAgent,
        "resource.type" => ResourceType,
        "resource" | "resource.id" => ResourceId,
        "source" | "service" | "source_service" => SourceService,
        "request_id" => RequestId,
        "schema_id" => return Some(Resolved::SchemaId),
        "occurred_at" => return Some(Resolved::Time(TimeField::OccurredAt)),
        "received_at" => return Some(Resolved::Time(TimeField::ReceivedAt)),
        _ => return None,
    }))
}

pub(super) fn resolve(name: &str, pos: usize) -> Result<Resolved, ParseError> {
    let lower = name.to_ascii_lowercase();
    if lower.starts_with(METADATA_PREFIX) {
        // The prefix is ASCII, so its byte length is also a char count.
        let key = &name[METADATA_PREFIX.len()..];
        let key_pos = pos + METADATA_PREFIX.len();
        if key.is_empty() {
            return Err(ParseError::new(key_pos, "missing metadata key")
                .with_hint("write metadata.<key>:value, e.g. metadata.region:eu-west-1"));
        }
        if let Some(bad) = key.chars().position(|c| !metadata_key_char(c)) {
            return Err(ParseError::new(key_pos + bad, METADATA_KEY_RULE)
                .with_hint("search metadata values of any key with free text"));
        }
        return Ok(Resolved::Text(TextField::Metadata(key.to_string())));
    }
    if let Some(resolved) = lookup(&lower) {
        return Ok(resolved);
    }
    if matches!(lower.as_str(), "tenant" | "tenant_id" | "tenant.id") {
        return Err(ParseError::new(pos, "tenant is not a query field")
            .with_hint("pick the tenant with the tenant selector"));
    }
    if lower == "metadata" {
        return Err(ParseError::new(pos, "missing metadata key")
            .with_hint("write metadata.<key>:value, e.g. metadata.region:eu-west-1"));
    }
    let known: Vec<&str> = FIELDS.iter().map(|(field, _)| *field).collect();
    let known = format!("known: {}", known.join(", "));
    let suggestion = NAMES
        .iter()
        .map(|candidate| (edit_distance(&lower, candidate), *candidate))
        .min()
        .filter(|&(distance, _)| distance <= 2 && distance < lower.chars().count());
    let hint = match suggestion {
        Some((_, candidate)) => format!("did you mean {candidate}? {known}"),
        None => known,
    };
    Err(ParseError::new(pos, format!("unknown field \"{}\"", shorten(name, 32))).with_hint(hint))
}

/// Levenshtein distance, for typo suggestions on short field names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::testing::{error, matches, tree};

    #[test]
    fn every_name_and_alias_resolves() {
        use TextField::*;
        let expected = [
            ("event_id", EventId),
            ("category", Category),
            ("action", Action),
            ("outcome", Outcome),
            ("actor", ActorId),
            ("actor.id", ActorId),
            ("actor.type", ActorType),
            ("actor.ip", ActorIp),
            ("ip", ActorIp),
            ("actor.user_agent", ActorUserAgent),
            ("resource.type", ResourceType),
            ("resource", ResourceId),
            ("resource.id", ResourceId),
            ("source", SourceService),
            ("service", SourceService),
            ("source_service", SourceService),
            ("request_id", RequestId),
        ];
        for (name, field) in expected.clone() {
            let value = match field {
                Category => "admin",
                Outcome => "success",
                _ => "x",
            };
            assert_eq!(
                tree(&format!("{name}:{value}")),
                matches(field.clone(), value),
                "{name}"
            );
            let upper = name.to_uppercase();
            assert_eq!(
                tree(&format!("{upper}={value}")),
                matches(field, value),
                "{upper}"
            );
        }
        assert!(NAMES.iter().all(|name| lookup(name).is_some()));
        assert_eq!(NAMES.len(), expected.len() + 3);
    }

    #[test]
    fn metadata_keys() {
        assert_eq!(
            tree("METADATA.Region-1.x_y:eu"),
            matches(TextField::Metadata("Region-1.x_y".into()), "eu")
        );
        assert_eq!(error("metadata.a'b:x").0, 10);
        assert_eq!(error("x metadata.ké:v").0, 12);
        assert_eq!(error("metadata.k*:v").0, 10);
        let (position, message, _) = error("metadata.:x");
        assert_eq!((position, message.as_str()), (9, "missing metadata key"));
        assert_eq!(error("metadata:x").0, 0);
        // The rule the console's columns and facets check is the parser's.
        for key in ["region", "Region-1.x_y", "a", "0"] {
            assert!(is_metadata_key(key), "{key}");
            assert_eq!(
                tree(&format!("metadata.{key}:v")),
                matches(TextField::Metadata(key.into()), "v")
            );
            assert_eq!(metadata_key_of(&format!("METADATA.{key}")), Some(key));
        }
        for key in ["", "a'b", "ké", "k*", "a b", "k/v"] {
            assert!(!is_metadata_key(key), "{key}");
            assert!(
                crate::query::parse(&format!("metadata.{key}:v")).is_err(),
                "{key}"
            );
            assert_eq!(metadata_key_of(&format!("metadata.{key}")), None);
        }
        assert_eq!(metadata_key_of("metadata"), None);
        assert_eq!(metadata_key_of("actor"), None);
        assert_eq!(metadata_key_of("métadata.x"), None);
    }

    #[test]
    fn unknown_field_lists_known_ones() {
        let (position, message, hint) = error("bob actr:x");
        assert_eq!((position, message.as_str()), (4, "unknown field \"actr\""));
        assert!(
            hint.starts_with("did you mean actor? known: event_id, category,"),
            "{hint}"
        );
        assert!(hint.ends_with("received_at, metadata.<key>"), "{hint}");
        let (_, message, hint) = error("http://example.com");
        assert_eq!(message, "unknown field \"http\"");
        assert!(hint.starts_with("known: "), "{hint}");
    }

    #[test]
    fn tenant_is_not_a_field() {
        for input in ["a tenant:acme", "a TENANT_ID:acme", "a tenant.id>x"] {
            let (position, message, hint) = error(input);
            assert_eq!(
                (position, message.as_str()),
                (2, "tenant is not a query field")
            );
            assert!(hint.contains("tenant selector"));
        }
    }
}
