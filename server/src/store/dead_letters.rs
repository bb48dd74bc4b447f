//! What admins did with dead letters (`attest_dead_letter_actions`,
//! migration 0015): the inbox lists the letters of the dead-letter topic
//! that have no row here.

use clickhouse::Row;
use serde::{Deserialize, Serialize};

use super::{QueryTemplate, Store, StoreError};

const COLUMNS: &str =
    "dlq_topic, dlq_partition, dlq_offset, action, reason, actor, access_id, event_id, acted_at";
const ROW_PLACEHOLDERS: &str = "(?, ?, ?, ?, ?, ?, ?, ?, ?)";

/// One statement for all the rows of an action: it lands whole or not at
/// all, and makes one part, not one per letter.
fn insert_sql(rows: usize) -> String {
    let values = vec![ROW_PLACEHOLDERS; rows.max(1)].join(", ");
    format!("INSERT INTO attest_dead_letter_actions ({COLUMNS}) VALUES {values}")
}

/// The first action on each letter of one dead-letter topic (two admins
/// acting at once leave two rows; the letter is handled either way).
pub(crate) const HANDLED_SQL: &str = "SELECT dlq_partition, dlq_offset, \
     argMin(action, acted_at) AS action, argMin(reason, acted_at) AS reason, \
     argMin(actor, acted_at) AS actor, min(acted_at) AS first_acted_at \
     FROM attest_dead_letter_actions WHERE dlq_topic = ? \
     GROUP BY dlq_partition, dlq_offset ORDER BY dlq_partition, dlq_offset";

/// One partition's retained range `[low, high)` of the dead-letter topic,
/// as `(dlq_partition = ? AND dlq_offset >= ? AND dlq_offset < ?)`: a
/// range of the table's sorting key, so only the granules of retained
/// offsets are read, however long the table's history.
const RANGE: &str = "(dlq_partition = ? AND dlq_offset >= ? AND dlq_offset < ?)";

/// Per partition, the handled letters whose offsets are within the given
/// retained ranges (one `RANGE` per partition): how many (distinct offsets,
/// as two admins acting at once leave two rows for one letter), the lowest,
/// and how many follow it without a gap (so the first waiting offset after
/// a run of handled ones is known without listing them). The set of
/// offsets stays inside ClickHouse; a few numbers per partition come back.
pub(crate) fn handled_within_sql(ranges: usize) -> String {
    let ranges = vec![RANGE; ranges.max(1)].join(" OR ");
    format!(
        "SELECT dlq_partition, toUInt64(length(offsets)) AS handled, \
         offsets[1] AS lowest, \
         toUInt64(if(gap = 0, toInt64(length(offsets)), toInt64(gap) - 1)) AS run \
         FROM (SELECT dlq_partition, \
               arraySort(groupUniqArray(dlq_offset)) AS offsets, \
               arrayFirstIndex((o, i) -> o != offsets[1] + i - 1, offsets, arrayEnumerate(offsets)) AS gap \
               FROM attest_dead_letter_actions WHERE dlq_topic = ? AND ({ranges}) \
               GROUP BY dlq_partition) \
         ORDER BY dlq_partition"
    )
}

/// A row to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterAction {
    pub dlq_topic: String,
    pub dlq_partition: i32,
    pub dlq_offset: i64,
    /// `redriven` or `discarded`.
    pub action: &'static str,
    /// The written reason of a discard; empty for a redrive.
    pub reason: String,
    pub actor: String,
    pub access_id: String,
    /// The event a redrive sent; empty when it did not decode.
    pub event_id: String,
    pub acted_at: i64,
}

/// A letter already acted on.
#[derive(Debug, Clone, Row, Serialize, Deserialize, PartialEq, Eq)]
pub struct HandledLetter {
    pub dlq_partition: i32,
    pub dlq_offset: i64,
    pub action: String,
    pub reason: String,
    pub actor: String,
    pub first_acted_at: i64,
}

/// The handled letters of one partition within its retained range
/// ([`handled_within_sql`]).
#[derive(Debug, Clone, Row, Serialize, Deserialize, PartialEq, Eq)]
pub struct HandledWithin {
    pub dlq_partition: i32,
    /// Distinct handled offsets in the range.
    pub handled: u64,
    /// The lowest of them.
    pub lowest: i64,
    /// How many handled offsets run from `lowest` without a gap
    /// (`lowest`, `lowest + 1`, …): the first offset after them is not
    /// handled.
    pub run: u64,
}

/// One partition's retained offsets `[low, high)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetainedRange {
    pub partition: i32,
    pub low: i64,
    pub high: i64,
}

impl Store {
    /// Per partition of `topic`, the handled letters within its retained
    /// range; partitions with none are absent. Nothing is asked when no
    /// partition retains anything.
    pub async fn handled_dead_letters_within(
        &self,
        topic: &str,
        ranges: &[RetainedRange],
    ) -> Result<Vec<HandledWithin>, StoreError> {
        let ranges: Vec<&RetainedRange> = ranges.iter().filter(|r| r.high > r.low).collect();
        if ranges.is_empty() {
            return Ok(Vec::new());
        }
        let sql = handled_within_sql(ranges.len());
        let mut query = self.client.query(&sql).bind(topic);
        for r in ranges {
            query = query.bind(r.partition).bind(r.low).bind(r.high);
        }
        Ok(query.fetch_all().await?)
    }

    /// Every letter of `topic` acted on, with the first action on each.
    pub async fn handled_dead_letters(
        &self,
        topic: &str,
    ) -> Result<Vec<HandledLetter>, StoreError> {
        Ok(self
            .client
            .query(HANDLED_SQL)
            .bind(topic)
            .fetch_all()
            .await?)
    }

    /// Records actions, all in one INSERT; returns once ClickHouse has
    /// written them (a read after it sees them).
    pub async fn record_dead_letter_actions(
        &self,
        rows: &[DeadLetterAction],
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let sql = insert_sql(rows.len());
        let mut query = self.client.query(&sql);
        for row in rows {
            query = query
                .bind(&row.dlq_topic)
                .bind(row.dlq_partition)
                .bind(row.dlq_offset)
                .bind(row.action)
                .bind(&row.reason)
                .bind(&row.actor)
                .bind(&row.access_id)
                .bind(&row.event_id)
                .bind(row.acted_at);
        }
        query.execute().await?;
        Ok(())
    }
}

pub(crate) fn templates() -> Vec<QueryTemplate> {
    vec![
        QueryTemplate {
            // Sent with the row's placeholders repeated once per letter.
            name: "dead_letter_action_insert".into(),
            sql: insert_sql(1),
            params: &[
                "dlq_topic",
                "dlq_partition",
                "dlq_offset",
                "action",
                "reason",
                "actor",
                "access_id",
                "event_id",
                "acted_at",
            ],
        },
        QueryTemplate {
            name: "dead_letter_actions_handled".into(),
            sql: HANDLED_SQL.to_owned(),
            params: &["dlq_topic"],
        },
        QueryTemplate {
            // Sent with the range repeated once per retained partition.
            name: "dead_letter_actions_within".into(),
            sql: handled_within_sql(1),
            params: &["dlq_topic", "dlq_partition", "low", "high"],
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_insert_holds_every_row() {
        assert_eq!(insert_sql(1).matches('?').count(), 9);
        assert_eq!(insert_sql(3).matches('?').count(), 27);
        assert_eq!(insert_sql(0), insert_sql(1));
        assert!(insert_sql(2).ends_with("?), (?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    }

    #[test]
    fn one_range_per_retained_partition() {
        // The topic, then three bounds per partition, in bind order.
        assert_eq!(handled_within_sql(1).matches('?').count(), 4);
        assert_eq!(handled_within_sql(3).matches('?').count(), 10);
        assert_eq!(handled_within_sql(0), handled_within_sql(1));
        assert_eq!(handled_within_sql(2).matches(" OR ").count(), 1);
    }
}
