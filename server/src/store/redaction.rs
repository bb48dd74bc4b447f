//! The ClickHouse side of governed redaction (migration 0022): requests and
//! their versions, the signed records, the rows a request covers, and the
//! three changes an execution makes (the redacted row in, the original out,
//! the rollups of its minute rebuilt). Every statement is in the `attest
//! sql` catalogue; names start with `redaction_`.

use std::time::{Duration, Instant};

use clickhouse::Row;
use serde::{Deserialize, Serialize};

use super::{EventRow, QueryTemplate, Store, StoreError, EVENTS_TABLE};
use crate::integrity::redaction::RedactionRecord;

pub const REQUESTS_TABLE: &str = "attest_redaction_requests";
pub const RECORDS_TABLE: &str = "attest_redaction_records";
pub const APPROVALS_TABLE: &str = "attest_redaction_approvals";

const REQUEST_COLUMNS: &str = "request_id, tenant_id, subject_actor_id, event_ids, \
     content_hashes, fields, reason, requested_by, requested_by_id, requested_at, approved_by, \
     approved_by_id, approved_at, executed_at, version";

const RECORD_COLUMNS: &str = "request_id, tenant_id, event_id, kafka_partition, kafka_offset, \
     original_hash, redacted_hash, fields, requested_by, approved_by, reason, executed_at, \
     key_id, signature";

const ROW_COLUMNS: &str = "event_id, tenant_id, occurred_at, received_at, category, action, \
     outcome, actor_id, actor_type, actor_ip, actor_user_agent, resource_type, resource_id, \
     source_service, request_id, metadata.key, metadata.value, schema_id, kafka_partition, \
     kafka_offset";

/// The newest version of every request.
fn requests_sql() -> String {
    format!(
        "SELECT {REQUEST_COLUMNS} FROM {REQUESTS_TABLE} FINAL ORDER BY requested_at, request_id"
    )
}

fn request_sql() -> String {
    format!("SELECT {REQUEST_COLUMNS} FROM {REQUESTS_TABLE} FINAL WHERE request_id = ?")
}

/// Every approval ever stored for a request, each once: two admins
/// approving at once each store one, and the executor picks the one that
/// counts from all of them. They are read from their own table (migration
/// 0026), where a merge collapses only an approval stored twice; the
/// request's versions would lose all but the newest to a merge.
fn approvals_sql() -> String {
    format!(
        "SELECT DISTINCT request_id, approved_at, approved_by_id, approved_by \
         FROM {APPROVALS_TABLE} WHERE request_id = ? ORDER BY approved_at, approved_by_id"
    )
}

/// One row per record however often it was inserted (a repeated run).
fn records_of_events_sql() -> String {
    format!(
        "SELECT {RECORD_COLUMNS} FROM {RECORDS_TABLE} WHERE tenant_id = ? AND has(?, event_id) \
         ORDER BY event_id, executed_at, key_id \
         LIMIT 1 BY tenant_id, event_id, kafka_partition, kafka_offset, redacted_hash, request_id"
    )
}

/// The records of one partition number's offsets, in any topic (a record
/// names its row by tenant, event id, partition and offset; the caller
/// matches them to its rows).
fn records_in_range_sql() -> String {
    format!(
        "SELECT {RECORD_COLUMNS} FROM {RECORDS_TABLE} \
         WHERE kafka_partition = ? AND kafka_offset >= ? AND kafka_offset <= ? \
         ORDER BY kafka_offset, executed_at, key_id \
         LIMIT 1 BY tenant_id, event_id, kafka_partition, kafka_offset, redacted_hash, request_id"
    )
}

fn rows_of_events_sql() -> String {
    format!(
        "SELECT {ROW_COLUMNS} FROM {EVENTS_TABLE} WHERE tenant_id = ? AND has(?, event_id) \
         ORDER BY kafka_partition, kafka_offset"
    )
}

/// A subject's events: every row of the tenant whose actor is the subject,
/// one more than the cap so that the caller can tell when it was reached.
fn rows_of_actor_sql() -> String {
    format!(
        "SELECT {ROW_COLUMNS} FROM {EVENTS_TABLE} WHERE tenant_id = ? AND actor_id = ? \
         ORDER BY kafka_partition, kafka_offset LIMIT ?"
    )
}

/// Removes exactly the identities given (docs/DESIGN.md, "Event
/// identity"), each as `<event_id>/<content_hash>` (the hash is the last 64
/// characters, so the pair reads one way whatever the id holds), in one
/// mutation: the redacted row beside each has another content hash and
/// stays.
const DELETE_ROWS_SQL: &str = "ALTER TABLE audit_events DELETE WHERE tenant_id = ? \
     AND has(?, concat(event_id, '/', content_hash))";

/// How many identities one delete names: a mutation per batch, not per
/// event, and a statement of bounded size.
const DELETE_BATCH: usize = 1_000;

/// Mutations of a table not finished yet (18.16 runs them in the
/// background: an `ALTER … DELETE` answers before its rows are gone).
const PENDING_MUTATIONS_SQL: &str = "SELECT count() FROM system.mutations \
     WHERE database = currentDatabase() AND table = ? AND is_done = 0";

/// The older versions of requests hold the subject's actor id, which the
/// executed version no longer does: merged away at once.
const OPTIMIZE_REQUESTS_SQL: &str = "OPTIMIZE TABLE attest_redaction_requests FINAL";

/// The rollups derived from `audit_events` (migration 0009's views), each
/// with the SELECT its view runs, narrowed to one tenant and a range of
/// `occurred_at`. A rollup's distinct-identity states hold the original
/// row's (event_id, content_hash), and the failures rollup its actor id:
/// after a redaction the affected minutes are deleted and rebuilt from the
/// raw table with the view's own query. uniqExact states merge
/// idempotently, so an event that lands in between through the view is
/// still counted once.
pub(crate) const ROLLUPS: &[(&str, &str)] = &[
    (
        "audit_counts_per_minute",
        "SELECT tenant_id, toStartOfMinute(toDateTime(intDiv(occurred_at, 1000), 'UTC')) AS minute, \
         category, action, toString(outcome) AS outcome, uniqExactState(event_id, content_hash) AS events \
         FROM audit_events WHERE tenant_id = ? AND occurred_at >= ? AND occurred_at < ? \
         AND has(?, intDiv(occurred_at, 60000)) GROUP BY tenant_id, minute, category, action, outcome",
    ),
    (
        "audit_failures_per_minute",
        "SELECT tenant_id, toStartOfMinute(toDateTime(intDiv(occurred_at, 1000), 'UTC')) AS minute, \
         actor_id, category, toString(outcome) AS outcome, uniqExactState(event_id, content_hash) AS events \
         FROM audit_events WHERE outcome != 'success' AND tenant_id = ? AND occurred_at >= ? \
         AND occurred_at < ? AND has(?, intDiv(occurred_at, 60000)) \
         GROUP BY tenant_id, minute, actor_id, category, outcome",
    ),
];

/// The minutes are epoch seconds (each a minute's start).
fn delete_rollup_sql(table: &str) -> String {
    format!("ALTER TABLE {table} DELETE WHERE tenant_id = ? AND has(?, toUInt32(minute))")
}

fn rebuild_rollup_sql(table: &str, select: &str) -> String {
    format!("INSERT INTO {table} {select}")
}

/// One version of a request, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct RequestRow {
    pub request_id: String,
    pub tenant_id: String,
    /// The actor whose events the request covers; empty for a request by
    /// event ids, and emptied once executed.
    pub subject_actor_id: String,
    /// The rows covered, fixed when the request was made: `event_ids[i]`
    /// with `content_hashes[i]`.
    pub event_ids: Vec<String>,
    pub content_hashes: Vec<String>,
    pub fields: Vec<String>,
    pub reason: String,
    /// Console name, and the grant's access id (`cli:<name>` from the CLI).
    pub requested_by: String,
    pub requested_by_id: String,
    /// Epoch milliseconds.
    pub requested_at: i64,
    pub approved_by: String,
    pub approved_by_id: String,
    /// Epoch milliseconds; 0 while pending.
    pub approved_at: i64,
    /// Epoch milliseconds; 0 until executed.
    pub executed_at: i64,
    pub version: u64,
}

/// One admin's approval of a request, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct ApprovalRow {
    pub request_id: String,
    /// Epoch milliseconds.
    pub approved_at: i64,
    /// The grant's access id (`cli:<name>` from the CLI).
    pub approved_by_id: String,
    /// Console name.
    pub approved_by: String,
}

pub(crate) fn templates() -> Vec<QueryTemplate> {
    let t = |name: &str, sql: String, params: &'static [&'static str]| QueryTemplate {
        name: name.into(),
        sql,
        params,
    };
    let mut out = vec![
        t("redaction_requests", requests_sql(), &[]),
        t("redaction_request", request_sql(), &["request_id"]),
        t("redaction_approvals", approvals_sql(), &["request_id"]),
        t(
            "redaction_records_of_events",
            records_of_events_sql(),
            &["tenant", "event_ids"],
        ),
        t(
            "redaction_records_in_range",
            records_in_range_sql(),
            &["partition", "from_offset", "to_offset"],
        ),
        t(
            "redaction_rows_of_events",
            rows_of_events_sql(),
            &["tenant", "event_ids"],
        ),
        t(
            "redaction_rows_of_actor",
            rows_of_actor_sql(),
            &["tenant", "actor_id", "limit"],
        ),
        t(
            "redaction_pending_mutations",
            PENDING_MUTATIONS_SQL.into(),
            &["table"],
        ),
    ];
    for (table, select) in ROLLUPS {
        out.push(t(
            &format!("redaction_delete_rollup_{table}"),
            delete_rollup_sql(table),
            &["tenant", "minutes_s"],
        ));
        out.push(t(
            &format!("redaction_rebuild_rollup_{table}"),
            rebuild_rollup_sql(table, select),
            &["tenant", "from_ms", "until_ms", "minutes"],
        ));
    }
    out.push(t(
        "redaction_delete_rows",
        DELETE_ROWS_SQL.into(),
        &["tenant", "identities"],
    ));
    out.push(t(
        "redaction_optimize_requests",
        OPTIMIZE_REQUESTS_SQL.into(),
        &[],
    ));
    out
}

impl Store {
    pub async fn redaction_requests(&self) -> Result<Vec<RequestRow>, StoreError> {
        Ok(self.primary.query(&requests_sql()).fetch_all().await?)
    }

    pub async fn redaction_request(&self, id: &str) -> Result<Option<RequestRow>, StoreError> {
        Ok(self
            .primary
            .query(&request_sql())
            .bind(id)
            .fetch_optional()
            .await?)
    }

    /// Every stored approval of a request, earliest first (see
    /// [`approvals_sql`]).
    pub async fn redaction_approvals(&self, id: &str) -> Result<Vec<ApprovalRow>, StoreError> {
        Ok(self
            .primary
            .query(&approvals_sql())
            .bind(id)
            .fetch_all()
            .await?)
    }

    /// Stores one approval. The approver stores it before the request's
    /// approved version, so that an approved request always has it.
    pub async fn put_redaction_approval(&self, row: &ApprovalRow) -> Result<(), StoreError> {
        let mut insert = self.primary.insert::<ApprovalRow>(APPROVALS_TABLE).await?;
        insert.write(row).await?;
        insert.end().await?;
        Ok(())
    }

    /// Stores a new version of a request; the highest `version` wins.
    pub async fn put_redaction_request(&self, row: &RequestRow) -> Result<(), StoreError> {
        let mut insert = self.primary.insert::<RequestRow>(REQUESTS_TABLE).await?;
        insert.write(row).await?;
        insert.end().await?;
        Ok(())
    }

    /// Merges the request versions away (see [`OPTIMIZE_REQUESTS_SQL`]).
    pub async fn compact_redaction_requests(&self) -> Result<(), StoreError> {
        self.primary.query(OPTIMIZE_REQUESTS_SQL).execute().await?;
        Ok(())
    }

    /// Stores records in one insert (the caller bounds how many).
    pub async fn put_redaction_records(
        &self,
        records: &[RedactionRecord],
    ) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut insert = self
            .primary
            .insert::<RedactionRecord>(RECORDS_TABLE)
            .await?;
        for record in records {
            insert.write(record).await?;
        }
        insert.end().await?;
        Ok(())
    }

    pub async fn redaction_records_of_events(
        &self,
        tenant: &str,
        event_ids: &[String],
    ) -> Result<Vec<RedactionRecord>, StoreError> {
        Ok(self
            .primary
            .query(&records_of_events_sql())
            .bind(tenant)
            .bind(event_ids)
            .fetch_all()
            .await?)
    }

    pub async fn redaction_records_in_range(
        &self,
        partition: i32,
        from_offset: i64,
        to_offset: i64,
    ) -> Result<Vec<RedactionRecord>, StoreError> {
        Ok(self
            .primary
            .query(&records_in_range_sql())
            .bind(partition)
            .bind(from_offset)
            .bind(to_offset)
            .fetch_all()
            .await?)
    }

    /// Every stored row of these events (any content hash).
    pub async fn rows_of_events(
        &self,
        tenant: &str,
        event_ids: &[String],
    ) -> Result<Vec<EventRow>, StoreError> {
        Ok(self
            .primary
            .query(&rows_of_events_sql())
            .bind(tenant)
            .bind(event_ids)
            .fetch_all()
            .await?)
    }

    /// At most `limit` rows of the tenant's events by this actor.
    pub async fn rows_of_actor(
        &self,
        tenant: &str,
        actor_id: &str,
        limit: u64,
    ) -> Result<Vec<EventRow>, StoreError> {
        Ok(self
            .primary
            .query(&rows_of_actor_sql())
            .bind(tenant)
            .bind(actor_id)
            .bind(limit)
            .fetch_all()
            .await?)
    }

    /// Deletes the tenant's rows of these identities (event id, content
    /// hash) and waits until they are gone.
    pub async fn delete_identities(
        &self,
        tenant: &str,
        identities: &[(String, String)],
        wait: Duration,
    ) -> Result<(), StoreError> {
        for batch in identities.chunks(DELETE_BATCH) {
            let pairs: Vec<String> = batch
                .iter()
                .map(|(event_id, hash)| format!("{event_id}/{hash}"))
                .collect();
            self.primary
                .query(DELETE_ROWS_SQL)
                .bind(tenant)
                .bind(&pairs)
                .execute()
                .await?;
        }
        self.wait_for_mutations(EVENTS_TABLE, wait).await
    }

    /// Rebuilds the rollups of one tenant's minutes (epoch seconds, each
    /// the start of a minute) from the raw table: the minutes' rows are
    /// deleted (one mutation per rollup, waited for), then inserted again
    /// by the views' own query (one insert per rollup).
    pub async fn rebuild_rollups(
        &self,
        tenant: &str,
        minutes_s: &[u32],
        wait: Duration,
    ) -> Result<(), StoreError> {
        let (Some(first), Some(last)) = (minutes_s.iter().min(), minutes_s.iter().max()) else {
            return Ok(());
        };
        for (table, _) in ROLLUPS {
            self.primary
                .query(&delete_rollup_sql(table))
                .bind(tenant)
                .bind(minutes_s)
                .execute()
                .await?;
            self.wait_for_mutations(table, wait).await?;
        }
        let minutes: Vec<i64> = minutes_s.iter().map(|m| i64::from(*m) / 60).collect();
        let from_ms = i64::from(*first) * 1000;
        let until_ms = (i64::from(*last) + 60) * 1000;
        for (table, select) in ROLLUPS {
            self.primary
                .query(&rebuild_rollup_sql(table, select))
                .bind(tenant)
                .bind(from_ms)
                .bind(until_ms)
                .bind(&minutes)
                .execute()
                .await?;
        }
        Ok(())
    }

    /// Waits until no mutation of `table` is pending, polling on the one
    /// backoff policy; [`StoreError::Timeout`] after `wait`.
    pub async fn wait_for_mutations(&self, table: &str, wait: Duration) -> Result<(), StoreError> {
        let deadline = Instant::now() + wait;
        let mut backoff =
            crate::backoff::Backoff::new(Duration::from_millis(50), Duration::from_secs(1));
        loop {
            let pending: u64 = self
                .primary
                .query(PENDING_MUTATIONS_SQL)
                .bind(table)
                .fetch_one()
                .await?;
            if pending == 0 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(StoreError::Timeout(wait));
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rebuild runs the views' own query: the SELECT of each view in
    /// migration 0009, narrowed by tenant and time. A view changed without
    /// its rebuild would count redacted minutes differently.
    #[test]
    fn the_rebuild_is_the_views_query() {
        let migration = include_str!("../../migrations/0009_event_identity.sql");
        let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        let migration = squash(migration);
        for (table, select) in ROLLUPS {
            let view = format!("CREATE MATERIALIZED VIEW IF NOT EXISTS {table}_mv TO {table} AS ");
            let at = migration.find(&view).expect("the view is in 0009") + view.len();
            let body = &migration[at..];
            let body = &body[..body.find(';').unwrap_or(body.len())];
            let ours = squash(select)
                .replace(
                    "WHERE outcome != 'success' AND tenant_id = ? AND occurred_at >= ? \
                     AND occurred_at < ? AND has(?, intDiv(occurred_at, 60000)) ",
                    "WHERE outcome != 'success' ",
                )
                .replace(
                    " WHERE tenant_id = ? AND occurred_at >= ? AND occurred_at < ? \
                     AND has(?, intDiv(occurred_at, 60000))",
                    "",
                );
            assert_eq!(ours, body.trim(), "{table}");
        }
    }
}
