//! A redaction record (docs/INTEGRITY.md, section 14): the signed statement
//! that one sealed row was rewritten with some fields erased, by which
//! approved request. It names the content hash the writer sealed
//! (`original_hash`, inside the row's leaf) and the one of the row as
//! redacted (`redacted_hash`): a verifier recomputes `redacted_hash` from
//! the stored row, so the fields left are still protected, and the leaf
//! from `original_hash`, so the row's place in its digest and chain still
//! verifies. Every verifier (the scheduled check, the event page, `attest
//! verify`) judges a row through [`judge_row`], so they agree on what is
//! redacted and what was changed.

use serde::{Deserialize, Serialize};

use super::encoding::{hex, unhex, Fields};
use super::keys::{KeyRing, SigningKey};
use super::leaf::leaf_of;

/// Names the format inside what is signed, so a redaction record's
/// signature can never be read as a digest's or a manifest's.
pub const FORMAT: &str = "attest-redaction-v1";

/// What replaces a redacted value (a redacted metadata entry keeps its key).
pub const MARKER: &str = "[redacted]";

#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clickhouse::Row, utoipa::ToSchema,
)]
pub struct RedactionRecord {
    pub request_id: String,
    pub tenant_id: String,
    pub event_id: String,
    pub kafka_partition: i32,
    pub kafka_offset: i64,
    /// The content hash sealed in the row's leaf (the event as sent).
    pub original_hash: String,
    /// The content hash of the row as redacted (as stored now).
    pub redacted_hash: String,
    /// The fields erased, sorted (`actor.ip`, `metadata.<key>`, …).
    pub fields: Vec<String>,
    /// Who asked and who approved (console names).
    pub requested_by: String,
    pub approved_by: String,
    pub reason: String,
    /// Epoch milliseconds when the record was signed.
    pub executed_at: i64,
    pub key_id: String,
    /// Ed25519 over the signed message, 128 lower-case hex digits.
    pub signature: String,
}

/// A record before it is signed.
pub struct Unsigned<'a> {
    pub request_id: &'a str,
    pub tenant_id: &'a str,
    pub event_id: &'a str,
    pub kafka_partition: i32,
    pub kafka_offset: i64,
    pub original_hash: &'a str,
    pub redacted_hash: &'a str,
    pub fields: &'a [String],
    pub requested_by: &'a str,
    pub approved_by: &'a str,
    pub reason: &'a str,
    pub executed_at: i64,
}

/// The signed message: every column but the signature, in table order,
/// the field list as its count followed by each name.
fn signed_fields(r: &RedactionRecord) -> Fields {
    let mut f = Fields::new()
        .str(FORMAT)
        .str(&r.request_id)
        .str(&r.tenant_id)
        .str(&r.event_id)
        .num(r.kafka_partition)
        .num(r.kafka_offset)
        .str(&r.original_hash)
        .str(&r.redacted_hash)
        .num(r.fields.len());
    for name in &r.fields {
        f = f.str(name);
    }
    f.str(&r.requested_by)
        .str(&r.approved_by)
        .str(&r.reason)
        .num(r.executed_at)
        .str(&r.key_id)
}

impl Unsigned<'_> {
    pub fn sign(self, key: &SigningKey) -> RedactionRecord {
        let mut fields = self.fields.to_vec();
        fields.sort_unstable();
        fields.dedup();
        let mut r = RedactionRecord {
            request_id: self.request_id.to_owned(),
            tenant_id: self.tenant_id.to_owned(),
            event_id: self.event_id.to_owned(),
            kafka_partition: self.kafka_partition,
            kafka_offset: self.kafka_offset,
            original_hash: self.original_hash.to_owned(),
            redacted_hash: self.redacted_hash.to_owned(),
            fields,
            requested_by: self.requested_by.to_owned(),
            approved_by: self.approved_by.to_owned(),
            reason: self.reason.to_owned(),
            executed_at: self.executed_at,
            key_id: key.id().to_owned(),
            signature: String::new(),
        };
        r.signature = hex(&key.sign(signed_fields(&r).bytes()));
        r
    }
}

/// What is wrong with a record on its own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordProblem {
    #[error("redaction record of request {request}: signed by key {key_id}, which is not among the published keys")]
    UnknownKey { request: String, key_id: String },
    #[error("redaction record of request {request}: signed at {executed_at}, outside the validity of key {key_id}")]
    OutsideKeyValidity {
        request: String,
        key_id: String,
        executed_at: i64,
    },
    #[error(
        "redaction record of request {request}: the signature does not verify with key {key_id}"
    )]
    BadSignature { request: String, key_id: String },
}

impl RedactionRecord {
    /// The signature under a published key valid when it was made
    /// (section 6's rule, with `executed_at` for `sealed_at`).
    pub fn check(&self, keys: &KeyRing) -> Result<(), RecordProblem> {
        let request = self.request_id.clone();
        let key_id = self.key_id.clone();
        let Some(key) = keys.get(&self.key_id) else {
            return Err(RecordProblem::UnknownKey { request, key_id });
        };
        if !key.valid_at(self.executed_at) {
            return Err(RecordProblem::OutsideKeyValidity {
                request,
                key_id,
                executed_at: self.executed_at,
            });
        }
        let good = unhex::<64>(&self.signature)
            .is_some_and(|sig| key.verifies(signed_fields(self).bytes(), &sig));
        if good {
            Ok(())
        } else {
            Err(RecordProblem::BadSignature { request, key_id })
        }
    }

    /// Whether the record is about this row (its place and identity).
    pub fn names(&self, tenant_id: &str, event_id: &str, partition: i32, offset: i64) -> bool {
        self.tenant_id == tenant_id
            && self.event_id == event_id
            && self.kafka_partition == partition
            && self.kafka_offset == offset
    }
}

/// A row as a verifier recomputed it: its content hash and the columns
/// its leaf covers besides.
pub struct RowHashes<'a> {
    pub tenant_id: &'a str,
    pub event_id: &'a str,
    pub content_hash: &'a str,
    pub received_at: i64,
    pub schema_id: u32,
    pub kafka_partition: i32,
    pub kafka_offset: i64,
}

/// How a stored row stands against the leaf sealed for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowSeal<'a> {
    /// The row hashes to the sealed leaf.
    Intact,
    /// The row hashes to a valid record's `redacted_hash`, and the
    /// record's `original_hash` gives the sealed leaf.
    Redacted(&'a RedactionRecord),
    /// A record would explain the row, but it does not verify.
    BadRecord(&'a RedactionRecord, RecordProblem),
    /// Nothing explains the row: it was changed after it was sealed (or
    /// after it was redacted).
    Altered,
}

/// Judges a row against its sealed leaf and the redaction records that
/// may name it (records about other rows are ignored).
pub fn judge_row<'a>(
    row: &RowHashes<'_>,
    sealed_leaf: &[u8; 32],
    records: impl IntoIterator<Item = &'a RedactionRecord>,
    keys: &KeyRing,
) -> RowSeal<'a> {
    let leaf = |content_hash: &str| {
        leaf_of(
            content_hash,
            row.received_at,
            row.schema_id,
            row.kafka_partition,
            row.kafka_offset,
        )
    };
    if &leaf(row.content_hash) == sealed_leaf {
        return RowSeal::Intact;
    }
    let mut bad = None;
    for r in records {
        if !r.names(
            row.tenant_id,
            row.event_id,
            row.kafka_partition,
            row.kafka_offset,
        ) || r.redacted_hash != row.content_hash
            || &leaf(&r.original_hash) != sealed_leaf
        {
            continue;
        }
        match r.check(keys) {
            Ok(()) => return RowSeal::Redacted(r),
            Err(problem) => bad = bad.or(Some(RowSeal::BadRecord(r, problem))),
        }
    }
    bad.unwrap_or(RowSeal::Altered)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::integrity::keys::tests::ring_with_one_key;

    pub(crate) fn record(key: &SigningKey, original: &str, redacted: &str) -> RedactionRecord {
        Unsigned {
            request_id: "r-1",
            tenant_id: "acme",
            event_id: "e-1",
            kafka_partition: 0,
            kafka_offset: 7,
            original_hash: original,
            redacted_hash: redacted,
            fields: &["actor.ip".into(), "actor.id".into()],
            requested_by: "alice",
            approved_by: "bob",
            reason: "GDPR erasure, ticket 12",
            executed_at: 1_800_000_000_000,
        }
        .sign(key)
    }

    #[test]
    fn the_signed_message_is_the_documented_one() {
        let (_, key, _dir) = ring_with_one_key();
        let r = record(&key, "h", "h2");
        // Fields sorted, each length-prefixed (docs/INTEGRITY.md, 14).
        let expected = format!(
            "19:attest-redaction-v13:r-14:acme3:e-11:01:71:h2:h21:28:actor.id8:actor.ip\
             5:alice3:bob23:GDPR erasure, ticket 1213:180000000000016:{}",
            key.id()
        );
        assert_eq!(
            String::from_utf8(signed_fields(&r).bytes().to_vec()).unwrap(),
            expected
        );
    }

    #[test]
    fn a_signed_record_checks_and_any_change_fails() {
        let (ring, key, _dir) = ring_with_one_key();
        let r = record(&key, "h", "h2");
        assert_eq!(r.check(&ring), Ok(()));
        let changes: [fn(&mut RedactionRecord); 6] = [
            |r| r.redacted_hash.push('x'),
            |r| r.original_hash.push('x'),
            |r| {
                r.fields.pop();
            },
            |r| r.approved_by = "alice".into(),
            |r| r.kafka_offset += 1,
            |r| r.reason.push('!'),
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut altered = r.clone();
            change(&mut altered);
            assert!(
                matches!(
                    altered.check(&ring),
                    Err(RecordProblem::BadSignature { .. })
                ),
                "change {i}"
            );
        }
        let (other, _, _other_dir) = ring_with_one_key();
        assert!(matches!(
            r.check(&other),
            Err(RecordProblem::UnknownKey { .. })
        ));
    }

    #[test]
    fn a_row_is_intact_redacted_badly_recorded_or_altered() {
        let (ring, key, _dir) = ring_with_one_key();
        let row = |content_hash| RowHashes {
            tenant_id: "acme",
            event_id: "e-1",
            content_hash,
            received_at: 5,
            schema_id: 1,
            kafka_partition: 0,
            kafka_offset: 7,
        };
        let sealed = leaf_of("h", 5, 1, 0, 7);
        let good = record(&key, "h", "h2");
        assert_eq!(judge_row(&row("h"), &sealed, [], &ring), RowSeal::Intact);
        assert_eq!(
            judge_row(&row("h2"), &sealed, [&good], &ring),
            RowSeal::Redacted(&good)
        );
        // Changed after the redaction: no record names its hash.
        assert_eq!(
            judge_row(&row("h3"), &sealed, [&good], &ring),
            RowSeal::Altered
        );
        // No record at all.
        assert_eq!(judge_row(&row("h2"), &sealed, [], &ring), RowSeal::Altered);
        // A forged record: right hashes, wrong signature.
        let mut forged = good.clone();
        forged.signature = "00".repeat(64);
        assert!(matches!(
            judge_row(&row("h2"), &sealed, [&forged], &ring),
            RowSeal::BadRecord(_, RecordProblem::BadSignature { .. })
        ));
        // A record whose original is not what was sealed explains nothing.
        let elsewhere = record(&key, "other", "h2");
        assert_eq!(
            judge_row(&row("h2"), &sealed, [&elsewhere], &ring),
            RowSeal::Altered
        );
    }
}
