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

impl Store {
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
}
