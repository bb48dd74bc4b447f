//! Digests and leaves of the integrity seal (migrations 0020, 0021, 0023), and
//! the stored rows read back to check them. Every statement is in the
//! `attest sql` catalogue.

use clickhouse::Row;
use serde::{Deserialize, Serialize};

use super::{EventRow, QueryTemplate, Store, StoreError};
use crate::event::Category;
use crate::integrity::checkpoint::Checkpoint;
use crate::integrity::Digest;

pub const DIGESTS_TABLE: &str = "attest_integrity_digests";
pub const LEAF_SETS_TABLE: &str = "attest_integrity_leaf_sets";
pub const CHECKPOINTS_TABLE: &str = "attest_integrity_checkpoints";

const DIGEST_COLUMNS: &str = "digest_hash, topic, partition, first_offset, last_offset, \
     row_count, root, prev_hash, sealed_at, key_id, signature";

/// The digests of a partition that extend the one given (or start a chain,
/// with the genesis hash): what a writer adopts as the head of the chain
/// when it takes a partition over.
fn after_sql() -> String {
    format!(
        "SELECT {DIGEST_COLUMNS} FROM attest_integrity_digests \
         WHERE topic = ? AND partition = ? AND prev_hash = ? \
         ORDER BY last_offset DESC, digest_hash LIMIT 1 BY digest_hash"
    )
}

fn by_hash_sql() -> String {
    format!(
        "SELECT {DIGEST_COLUMNS} FROM attest_integrity_digests \
         WHERE topic = ? AND partition = ? AND digest_hash = ? LIMIT 1"
    )
}

/// Every digest of a partition, oldest range first.
fn of_partition_sql() -> String {
    format!(
        "SELECT {DIGEST_COLUMNS} FROM attest_integrity_digests \
         WHERE topic = ? AND partition = ? \
         ORDER BY first_offset, digest_hash LIMIT 1 BY digest_hash"
    )
}

/// The digests of a partition a checkpointed walk reads: those reaching
/// the checkpoint's offset or past it, and any sealed since the rows'
/// recheck window began.
fn of_partition_since_sql() -> String {
    format!(
        "SELECT {DIGEST_COLUMNS} FROM attest_integrity_digests \
         WHERE topic = ? AND partition = ? AND (last_offset >= ? OR sealed_at >= ?) \
         ORDER BY first_offset, digest_hash LIMIT 1 BY digest_hash"
    )
}

/// A chain's newest checkpoints, newest first; the check takes the first
/// that verifies.
const CHECKPOINTS_SQL: &str = "SELECT topic, partition, digest_hash, last_offset, checked_at, \
     key_id, signature FROM attest_integrity_checkpoints WHERE topic = ? AND partition = ? \
     ORDER BY last_offset DESC, checked_at DESC LIMIT 16";

/// The digests of one partition number in any of `topics` (bound, one `?`
/// each) whose ranges meet `from_offset`–`to_offset`: what an export with
/// proofs needs for the rows it holds of a partition (one topic), with the
/// chain links between them, and what the event page needs for one offset
/// (every events topic, in one read).
fn overlapping_sql(topics: usize) -> String {
    format!(
        "SELECT {DIGEST_COLUMNS} FROM attest_integrity_digests \
         WHERE topic IN ({}) AND partition = ? AND last_offset >= ? AND first_offset <= ? \
         ORDER BY topic, first_offset, digest_hash LIMIT 1 BY digest_hash",
        vec!["?"; topics].join(", ")
    )
}

/// The values of [`overlapping_sql`] over every events topic, as the event
/// page sends it (a seventh category fails to compile here until named).
static OVERLAPPING_EVENT_TOPICS_PARAMS: [&str; Category::ALL.len() + 3] = [
    "topic_1",
    "topic_2",
    "topic_3",
    "topic_4",
    "topic_5",
    "topic_6",
    "partition",
    "from_offset",
    "to_offset",
];

const PARTITIONS_SQL: &str = "SELECT DISTINCT topic, partition FROM attest_integrity_digests \
     ORDER BY topic, partition";

/// A digest's leaves, one set however often it was inserted.
const LEAVES_SQL: &str = "SELECT digest_hash, topic, partition, first_offset, kafka_offsets, \
     tenant_ids, event_ids, leaves, received_ats, schema_ids FROM attest_integrity_leaf_sets \
     WHERE topic = ? AND partition = ? AND first_offset = ? AND digest_hash = ? LIMIT 1";

/// The stored rows a digest's leaves name: narrowed by the tenants of the
/// leaves (the table's sorting key starts with `tenant_id`), then by
/// partition and offset range.
const ROWS_SQL: &str = "SELECT event_id, tenant_id, occurred_at, received_at, category, action, \
     outcome, actor_id, actor_type, actor_ip, actor_user_agent, resource_type, resource_id, \
     source_service, request_id, metadata.key, metadata.value, schema_id, kafka_partition, \
     kafka_offset, content_hash FROM audit_events \
     WHERE tenant_id IN (SELECT arrayJoin(tenant_ids) FROM attest_integrity_leaf_sets \
         WHERE topic = ? AND partition = ? AND first_offset = ? AND digest_hash = ?) \
     AND kafka_partition = ? AND kafka_offset >= ? AND kafka_offset <= ?";

/// The leaves of one digest as stored: one row, arrays in position order.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct LeafSet {
    pub digest_hash: String,
    pub topic: String,
    pub partition: i32,
    pub first_offset: i64,
    pub kafka_offsets: Vec<i64>,
    pub tenant_ids: Vec<String>,
    pub event_ids: Vec<String>,
    pub leaves: Vec<[u8; 32]>,
    /// What Attest recorded of each event besides its content (migration
    /// 0023; empty in sets stored before it): with another stored copy's
    /// content hash they give the leaf again (docs/INTEGRITY.md, 8).
    pub received_ats: Vec<i64>,
    pub schema_ids: Vec<u32>,
}

impl LeafSet {
    /// One entry per leaf, in position order. Arrays of unequal length (a
    /// set changed behind Attest's back) end at the shortest; the check
    /// then finds fewer leaves than the digest sealed.
    pub fn rows(&self) -> Vec<LeafRow> {
        self.kafka_offsets
            .iter()
            .zip(&self.tenant_ids)
            .zip(&self.event_ids)
            .zip(&self.leaves)
            .enumerate()
            .map(|(position, (((offset, tenant), event), leaf))| LeafRow {
                digest_hash: self.digest_hash.clone(),
                topic: self.topic.clone(),
                partition: self.partition,
                kafka_offset: *offset,
                position: u32::try_from(position).unwrap_or(u32::MAX),
                tenant_id: tenant.clone(),
                event_id: event.clone(),
                leaf: crate::integrity::encoding::hex(leaf),
                recorded: self
                    .received_ats
                    .get(position)
                    .zip(self.schema_ids.get(position))
                    .map(|(received_at, schema_id)| Recorded {
                        received_at: *received_at,
                        schema_id: *schema_id,
                    }),
            })
            .collect()
    }
}

/// One sealed event: where it is, under which digest, and its leaf.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct LeafRow {
    pub digest_hash: String,
    pub topic: String,
    pub partition: i32,
    pub kafka_offset: i64,
    pub position: u32,
    pub tenant_id: String,
    pub event_id: String,
    pub leaf: String,
    /// `None` for a set stored before migration 0023 (or one whose arrays
    /// were cut short behind Attest's back).
    pub recorded: Option<Recorded>,
}

/// The columns of a leaf that Attest set, not the sender (section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    pub received_at: i64,
    pub schema_id: u32,
}

#[derive(Debug, Row, Deserialize)]
struct PartitionRow {
    topic: String,
    partition: i32,
}

pub(crate) fn templates() -> Vec<QueryTemplate> {
    let t = |name: &str, sql: String, params: &'static [&'static str]| QueryTemplate {
        name: name.into(),
        sql,
        params,
    };
    const SET: &[&str] = &["topic", "partition", "first_offset", "digest_hash"];
    vec![
        t(
            "integrity_digests_after",
            after_sql(),
            &["topic", "partition", "prev_hash"],
        ),
        t(
            "integrity_digest_by_hash",
            by_hash_sql(),
            &["topic", "partition", "digest_hash"],
        ),
        t(
            "integrity_digests_of_partition",
            of_partition_sql(),
            &["topic", "partition"],
        ),
        t(
            "integrity_digests_overlapping",
            overlapping_sql(1),
            &["topic", "partition", "from_offset", "to_offset"],
        ),
        t(
            "integrity_digests_overlapping_event_topics",
            overlapping_sql(Category::ALL.len()),
            &OVERLAPPING_EVENT_TOPICS_PARAMS,
        ),
        t(
            "integrity_digests_of_partition_since",
            of_partition_since_sql(),
            &["topic", "partition", "from_offset", "since_ms"],
        ),
        t(
            "integrity_checkpoints",
            CHECKPOINTS_SQL.into(),
            &["topic", "partition"],
        ),
        t("integrity_partitions", PARTITIONS_SQL.into(), &[]),
        t("integrity_leaves", LEAVES_SQL.into(), SET),
        t(
            "integrity_rows",
            ROWS_SQL.into(),
            &[
                "topic",
                "partition",
                "first_offset",
                "digest_hash",
                "partition",
                "from_offset",
                "to_offset",
            ],
        ),
    ]
}

impl Store {
    /// Leaves first, then the digests, each in one INSERT on the writer's
    /// node: a digest is never stored without its leaves.
    pub async fn insert_seal(
        &self,
        digests: &[Digest],
        leaves: &[LeafSet],
    ) -> Result<(), StoreError> {
        if !leaves.is_empty() {
            let mut insert = self.primary.insert::<LeafSet>(LEAF_SETS_TABLE).await?;
            for set in leaves {
                insert.write(set).await?;
            }
            insert.end().await?;
        }
        if !digests.is_empty() {
            let mut insert = self.primary.insert::<Digest>(DIGESTS_TABLE).await?;
            for digest in digests {
                insert.write(digest).await?;
            }
            insert.end().await?;
        }
        Ok(())
    }

    pub async fn digests_after(
        &self,
        topic: &str,
        partition: i32,
        prev_hash: &str,
    ) -> Result<Vec<Digest>, StoreError> {
        Ok(self
            .primary
            .query(&after_sql())
            .bind(topic)
            .bind(partition)
            .bind(prev_hash)
            .fetch_all()
            .await?)
    }

    pub async fn digest_by_hash(
        &self,
        topic: &str,
        partition: i32,
        digest_hash: &str,
    ) -> Result<Option<Digest>, StoreError> {
        Ok(self
            .primary
            .query(&by_hash_sql())
            .bind(topic)
            .bind(partition)
            .bind(digest_hash)
            .fetch_optional()
            .await?)
    }

    pub async fn digests_of_partition(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Vec<Digest>, StoreError> {
        Ok(self
            .primary
            .query(&of_partition_sql())
            .bind(topic)
            .bind(partition)
            .fetch_all()
            .await?)
    }

    pub async fn digests_of_partition_since(
        &self,
        topic: &str,
        partition: i32,
        from_last_offset: i64,
        sealed_since_ms: i64,
    ) -> Result<Vec<Digest>, StoreError> {
        Ok(self
            .primary
            .query(&of_partition_since_sql())
            .bind(topic)
            .bind(partition)
            .bind(from_last_offset)
            .bind(sealed_since_ms)
            .fetch_all()
            .await?)
    }

    pub async fn checkpoints_of(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Vec<Checkpoint>, StoreError> {
        Ok(self
            .primary
            .query(CHECKPOINTS_SQL)
            .bind(topic)
            .bind(partition)
            .fetch_all()
            .await?)
    }

    pub async fn insert_checkpoints(&self, checkpoints: &[Checkpoint]) -> Result<(), StoreError> {
        if checkpoints.is_empty() {
            return Ok(());
        }
        let mut insert = self.primary.insert::<Checkpoint>(CHECKPOINTS_TABLE).await?;
        for c in checkpoints {
            insert.write(c).await?;
        }
        insert.end().await?;
        Ok(())
    }

    /// The digests of partition `partition` of any of `topics` whose ranges
    /// meet `from_offset`–`to_offset`, in one read.
    pub async fn digests_overlapping(
        &self,
        topics: &[String],
        partition: i32,
        from_offset: i64,
        to_offset: i64,
    ) -> Result<Vec<Digest>, StoreError> {
        if topics.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = self.primary.query(&overlapping_sql(topics.len()));
        for topic in topics {
            query = query.bind(topic);
        }
        Ok(query
            .bind(partition)
            .bind(from_offset)
            .bind(to_offset)
            .fetch_all()
            .await?)
    }

    pub async fn sealed_partitions(&self) -> Result<Vec<(String, i32)>, StoreError> {
        let rows: Vec<PartitionRow> = self.primary.query(PARTITIONS_SQL).fetch_all().await?;
        Ok(rows.into_iter().map(|r| (r.topic, r.partition)).collect())
    }

    /// The digest's leaves in position order (none if its set is not
    /// stored).
    pub async fn leaves_of(&self, d: &Digest) -> Result<Vec<LeafRow>, StoreError> {
        let set: Option<LeafSet> = self
            .primary
            .query(LEAVES_SQL)
            .bind(&d.topic)
            .bind(d.partition)
            .bind(d.first_offset)
            .bind(&d.digest_hash)
            .fetch_optional()
            .await?;
        Ok(set.map(|s| s.rows()).unwrap_or_default())
    }

    /// The rows a digest's leaves name, each with the content hash stored
    /// beside it (its identity, which the check compares with the hash of
    /// the row's content).
    pub async fn rows_of(&self, d: &Digest) -> Result<Vec<(EventRow, String)>, StoreError> {
        Ok(self
            .primary
            .query(ROWS_SQL)
            .bind(&d.topic)
            .bind(d.partition)
            .bind(d.first_offset)
            .bind(&d.digest_hash)
            .bind(d.partition)
            .bind(d.first_offset)
            .bind(d.last_offset)
            .fetch_all()
            .await?)
    }
}
