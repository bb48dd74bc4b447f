//! A retention record (docs/INTEGRITY.md, section 15): the signed statement,
//! written by retention before it removes a tenant's month, of exactly
//! which sealed rows it removes: the Kafka offsets, per topic and
//! partition, of the tenant's rows in that month. The check accepts a
//! sealed leaf without its row as *expired* only when a record signed
//! with a published key names its tenant, topic, partition and offset.
//! Someone who can write to ClickHouse but holds no signing key cannot
//! pass a deletion off as retention: a record they write does not verify.

use clickhouse::Row;
use serde::{Deserialize, Serialize};

use super::encoding::{hex, Fields};
use super::keys::{KeyRing, SigningKey, Unverified};

/// Names the format inside what is signed, so a retention record's
/// signature can never be read as a digest's, a manifest's or a
/// redaction record's.
pub const FORMAT: &str = "attest-retention-v1";

#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct RetentionRecord {
    pub topic: String,
    pub partition: i32,
    pub tenant_id: String,
    /// `YYYYMM`, the month removed.
    pub month: u32,
    /// Ascending, each once.
    pub kafka_offsets: Vec<i64>,
    /// Epoch milliseconds when it was signed.
    pub executed_at: i64,
    pub key_id: String,
    /// Ed25519 over the signed message, 128 lower-case hex digits.
    pub signature: String,
}

/// The signed message: every column but the signature, the offsets as
/// their count followed by each.
fn signed_fields(r: &RetentionRecord) -> Fields {
    let mut f = Fields::new()
        .str(FORMAT)
        .str(&r.topic)
        .num(r.partition)
        .str(&r.tenant_id)
        .num(r.month)
        .num(r.executed_at)
        .str(&r.key_id)
        .num(r.kafka_offsets.len());
    for &offset in &r.kafka_offsets {
        f = f.num(offset);
    }
    f
}

impl RetentionRecord {
    /// Signs the record of one tenant's rows of one month in one partition;
    /// `offsets` in any order.
    pub fn sign(
        key: &SigningKey,
        topic: &str,
        partition: i32,
        tenant_id: &str,
        month: u32,
        mut offsets: Vec<i64>,
        executed_at: i64,
    ) -> RetentionRecord {
        offsets.sort_unstable();
        offsets.dedup();
        let mut r = RetentionRecord {
            topic: topic.to_owned(),
            partition,
            tenant_id: tenant_id.to_owned(),
            month,
            kafka_offsets: offsets,
            executed_at,
            key_id: key.id().to_owned(),
            signature: String::new(),
        };
        r.signature = hex(&key.sign(signed_fields(&r).bytes()));
        r
    }

    /// The signature under a published key valid when it was made
    /// (section 6's rule, with `executed_at` for `sealed_at`).
    pub fn check(&self, keys: &KeyRing) -> Result<(), Unverified> {
        keys.verify(
            &self.key_id,
            self.executed_at,
            signed_fields(self).bytes(),
            &self.signature,
        )
    }

    /// Whether it names this sealed row's place. The offsets are ascending
    /// as signed; a record stored out of order fails its signature anyway.
    pub fn covers(&self, topic: &str, partition: i32, tenant_id: &str, offset: i64) -> bool {
        self.topic == topic
            && self.partition == partition
            && self.tenant_id == tenant_id
            && self.kafka_offsets.binary_search(&offset).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::keys::tests::{flip_first, ring_with_one_key};

    fn record(key: &SigningKey) -> RetentionRecord {
        RetentionRecord::sign(
            key,
            "attest.authentication",
            2,
            "acme",
            202401,
            vec![40, 7, 12, 7],
            1_800_000_000_000,
        )
    }

    #[test]
    fn a_signed_record_verifies_and_covers_exactly_its_rows() {
        let (ring, key, _dir) = ring_with_one_key();
        let r = record(&key);
        assert_eq!(r.kafka_offsets, vec![7, 12, 40], "sorted, each once");
        assert_eq!(r.check(&ring), Ok(()));
        assert!(r.covers("attest.authentication", 2, "acme", 12));
        assert!(!r.covers("attest.authentication", 2, "acme", 13));
        assert!(!r.covers("attest.authentication", 1, "acme", 12));
        assert!(!r.covers("attest.admin", 2, "acme", 12));
        assert!(!r.covers("attest.authentication", 2, "globex", 12));
    }

    #[test]
    fn every_signed_column_is_covered_by_the_signature() {
        let (ring, key, _dir) = ring_with_one_key();
        let changes: [fn(&mut RetentionRecord); 7] = [
            |r| r.topic.push('x'),
            |r| r.partition += 1,
            |r| r.tenant_id.push('x'),
            |r| r.month += 1,
            |r| r.kafka_offsets.push(41),
            |r| r.executed_at += 1,
            |r| flip_first(&mut r.signature),
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut r = record(&key);
            change(&mut r);
            assert!(r.check(&ring).is_err(), "change {i}");
        }
        let mut unknown = record(&key);
        unknown.key_id = "other".into();
        assert_eq!(
            unknown.check(&ring),
            Err(Unverified::UnknownKey("other".into()))
        );
    }
}
