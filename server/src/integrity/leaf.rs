//! What is sealed of one stored event: its leaf hash.
//!
//! The leaf covers everything the sender said (through `content_hash`, the
//! event's identity, computed here exactly as ClickHouse computes the
//! column) and what Attest recorded about it (`received_at`, `schema_id`,
//! and where it was in Kafka). Any `ALTER TABLE … UPDATE` of a stored
//! column changes the leaf recomputed from the row.

use super::encoding::{hex32, Fields};
use crate::store::EventRow;

/// The stored columns a leaf is computed from, borrowed from a row (as the
/// writer holds it, or as read back from ClickHouse).
pub struct Sealed<'a> {
    pub event_id: &'a str,
    pub tenant_id: &'a str,
    pub occurred_at: i64,
    pub received_at: i64,
    pub category: &'a str,
    pub action: &'a str,
    pub outcome: &'a str,
    pub actor_id: &'a str,
    pub actor_type: &'a str,
    pub actor_ip: &'a str,
    pub actor_user_agent: &'a str,
    pub resource_type: &'a str,
    pub resource_id: &'a str,
    pub source_service: &'a str,
    pub request_id: &'a str,
    pub metadata_key: &'a [String],
    pub metadata_value: &'a [String],
    pub schema_id: u32,
    pub kafka_partition: i32,
    pub kafka_offset: i64,
}

impl<'a> From<&'a EventRow> for Sealed<'a> {
    fn from(r: &'a EventRow) -> Sealed<'a> {
        Sealed {
            event_id: &r.event_id,
            tenant_id: &r.tenant_id,
            occurred_at: r.occurred_at,
            received_at: r.received_at,
            category: &r.category,
            action: &r.action,
            outcome: &r.outcome,
            actor_id: &r.actor_id,
            actor_type: &r.actor_type,
            actor_ip: &r.actor_ip,
            actor_user_agent: &r.actor_user_agent,
            resource_type: &r.resource_type,
            resource_id: &r.resource_id,
            source_service: &r.source_service,
            request_id: &r.request_id,
            metadata_key: &r.metadata_key,
            metadata_value: &r.metadata_value,
            schema_id: r.schema_id,
            kafka_partition: r.kafka_partition,
            kafka_offset: r.kafka_offset,
        }
    }
}

/// A content hash as the `content_hash` column holds it (lower-case hex
/// of the SHA-256), kept on the stack: the writer makes one per row.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ContentHash([u8; 64]);

impl ContentHash {
    pub fn as_str(&self) -> &str {
        // Hex digits only, so always text.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Sealed<'_> {
    /// `content_hash` as docs/DESIGN.md ("Event identity") defines it:
    /// lower-case hex SHA-256 of the sender's fields, metadata entries
    /// sorted by key then value. The writer stores it with the row
    /// (migration 0027); migration 0009's expression computes the same
    /// for a row inserted without it.
    pub fn content_hash(&self) -> String {
        self.hashed().as_str().to_owned()
    }

    /// [`Sealed::content_hash`] without an allocation.
    pub fn hashed(&self) -> ContentHash {
        let f = Fields::hashing()
            .str(self.event_id)
            .str(self.tenant_id)
            .num(self.occurred_at)
            .str(self.category)
            .str(self.action)
            .str(self.outcome)
            .str(self.actor_id)
            .str(self.actor_type)
            .str(self.actor_ip)
            .str(self.actor_user_agent)
            .str(self.resource_type)
            .str(self.resource_id)
            .str(self.source_service)
            .str(self.request_id);
        let pairs = || {
            self.metadata_key
                .iter()
                .map(String::as_str)
                .zip(self.metadata_value.iter().map(String::as_str))
        };
        let count = pairs().count();
        let mut f = f.num(count);
        // Entries usually arrive in key order; sorting a copy is only
        // needed when they do not.
        if pairs().zip(pairs().skip(1)).all(|(a, b)| a <= b) {
            for (k, v) in pairs() {
                f = f.str(k).str(v);
            }
        } else {
            let mut entries: Vec<(&str, &str)> = pairs().collect();
            entries.sort_unstable();
            for (k, v) in entries {
                f = f.str(k).str(v);
            }
        }
        ContentHash(hex32(&f.sha256()))
    }

    /// The leaf: SHA-256 over 0x00, then `content_hash`, `received_at`,
    /// `schema_id`, `kafka_partition`, `kafka_offset` as fields.
    pub fn leaf(&self) -> [u8; 32] {
        self.leaf_with(&self.hashed())
    }

    /// [`Sealed::leaf`] from the row's content hash, made already.
    pub fn leaf_with(&self, content_hash: &ContentHash) -> [u8; 32] {
        leaf_of(
            content_hash.as_str(),
            self.received_at,
            self.schema_id,
            self.kafka_partition,
            self.kafka_offset,
        )
    }
}

/// The leaf from a content hash and the recorded columns (what an export
/// row carries).
pub fn leaf_of(
    content_hash: &str,
    received_at: i64,
    schema_id: u32,
    partition: i32,
    offset: i64,
) -> [u8; 32] {
    Fields::hashing_tagged(0x00)
        .str(content_hash)
        .num(received_at)
        .num(schema_id)
        .num(partition)
        .num(offset)
        .sha256()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests::sample;
    use crate::store::{EventRow, Provenance};

    fn row() -> EventRow {
        EventRow::new(
            sample(),
            Provenance {
                schema_id: 1,
                partition: 2,
                offset: 3,
            },
        )
    }

    #[test]
    fn every_stored_column_changes_the_leaf() {
        let base = row();
        let leaf = Sealed::from(&base).leaf();
        let changes: [fn(&mut EventRow); 11] = [
            |r| r.event_id.push('x'),
            |r| r.tenant_id.push('x'),
            |r| r.occurred_at += 1,
            |r| r.received_at += 1,
            |r| r.action.push('x'),
            |r| r.actor_ip.push('1'),
            |r| r.request_id.push('x'),
            |r| r.metadata_value[0].push('x'),
            |r| r.schema_id += 1,
            |r| r.kafka_partition += 1,
            |r| r.kafka_offset += 1,
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut r = row();
            change(&mut r);
            assert_ne!(Sealed::from(&r).leaf(), leaf, "change {i}");
        }
    }

    #[test]
    fn metadata_order_does_not_count() {
        let mut r = row();
        r.metadata_key = vec!["b".into(), "a".into()];
        r.metadata_value = vec!["2".into(), "1".into()];
        let mut s = row();
        s.metadata_key = vec!["a".into(), "b".into()];
        s.metadata_value = vec!["1".into(), "2".into()];
        assert_eq!(
            Sealed::from(&r).content_hash(),
            Sealed::from(&s).content_hash()
        );
    }

    #[test]
    fn a_value_cannot_shift_into_the_next_field() {
        let mut r = row();
        r.action = "a".into();
        r.outcome = "bc".into();
        let mut s = row();
        s.action = "ab".into();
        s.outcome = "c".into();
        assert_ne!(
            Sealed::from(&r).content_hash(),
            Sealed::from(&s).content_hash()
        );
    }
}
