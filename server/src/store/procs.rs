//! Every process's own status (migration 0019): one row per process and
//! report, the newest row of each read back for the pipeline page, and
//! whole UTC days dropped past the trends retention, as the samples are.

use clickhouse::Row;
use serde::{Deserialize, Serialize};

use super::trends::days_to_drop;
use super::{QueryTemplate, Store, StoreError};

pub const STATUS_TABLE: &str = "attest_process_status";

const COLUMNS: &str = "at_ms, process, host, roles, version, started_at_ms, interval_ms, \
     writer_state, writer_detail, last_error, last_insert_ms, partitions, spool_events, \
     spool_oldest_ms";

/// Most processes the page lists: far above any real deployment, a bound
/// on what a page reads if something floods the table.
const MOST_PROCESSES: u64 = 500;

fn insert_sql() -> String {
    format!(
        "INSERT INTO {STATUS_TABLE} ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
}

/// The newest row of each process that reported since the bound time.
fn latest_sql() -> String {
    format!(
        "SELECT {COLUMNS} FROM {STATUS_TABLE} WHERE at_ms >= ? \
         ORDER BY process, at_ms DESC LIMIT 1 BY process LIMIT {MOST_PROCESSES}"
    )
}

const DAYS_SQL: &str = "SELECT DISTINCT toUInt64(partition) AS day FROM system.parts \
     WHERE database = currentDatabase() AND table = 'attest_process_status' AND active \
     ORDER BY day";

const DROP_DAY_SQL: &str = "ALTER TABLE attest_process_status DROP PARTITION ?";

/// One report of one process, in table column order. Times are epoch ms;
/// 0 stands for "none" (no insert yet, an empty spool).
#[derive(Debug, Clone, Default, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct StatusRow {
    pub at_ms: u64,
    pub process: String,
    pub host: String,
    pub roles: Vec<String>,
    pub version: String,
    pub started_at_ms: u64,
    pub interval_ms: u64,
    pub writer_state: String,
    pub writer_detail: String,
    pub last_error: String,
    pub last_insert_ms: u64,
    pub partitions: Vec<String>,
    pub spool_events: i64,
    pub spool_oldest_ms: u64,
}

pub(crate) fn templates() -> Vec<QueryTemplate> {
    let t = |name: &str, sql: String, params: &'static [&'static str]| QueryTemplate {
        name: name.into(),
        sql,
        params,
    };
    vec![
        t(
            "procs_status_insert",
            insert_sql(),
            &[
                "at_ms",
                "process",
                "host",
                "roles",
                "version",
                "started_at_ms",
                "interval_ms",
                "writer_state",
                "writer_detail",
                "last_error",
                "last_insert_ms",
                "partitions",
                "spool_events",
                "spool_oldest_ms",
            ],
        ),
        t("procs_status_latest", latest_sql(), &["since_ms"]),
        t("procs_status_days", DAYS_SQL.into(), &[]),
        t("procs_status_drop_day", DROP_DAY_SQL.into(), &["day"]),
    ]
}

impl Store {
    /// Writes one report, on the writer's node.
    pub async fn insert_status(&self, row: &StatusRow) -> Result<(), StoreError> {
        self.primary
            .query(&insert_sql())
            .bind(row.at_ms)
            .bind(row.process.as_str())
            .bind(row.host.as_str())
            .bind(&row.roles)
            .bind(row.version.as_str())
            .bind(row.started_at_ms)
            .bind(row.interval_ms)
            .bind(row.writer_state.as_str())
            .bind(row.writer_detail.as_str())
            .bind(row.last_error.as_str())
            .bind(row.last_insert_ms)
            .bind(&row.partitions)
            .bind(row.spool_events)
            .bind(row.spool_oldest_ms)
            .execute()
            .await?;
        Ok(())
    }

    /// The newest report of every process heard from since `since_ms`.
    pub async fn latest_statuses(&self, since_ms: i64) -> Result<Vec<StatusRow>, StoreError> {
        Ok(self
            .client
            .query(&latest_sql())
            .bind(u64::try_from(since_ms).unwrap_or(0))
            .fetch_all()
            .await?)
    }

    /// Drops the days of reports wholly older than `cutoff_ms`; returns them.
    pub async fn drop_statuses_before(&self, cutoff_ms: i64) -> Result<Vec<u64>, StoreError> {
        let days: Vec<u64> = self.primary.query(DAYS_SQL).fetch_all().await?;
        let dropping = days_to_drop(&days, cutoff_ms);
        for day in &dropping {
            self.primary
                .query(DROP_DAY_SQL)
                .bind(*day)
                .execute()
                .await?;
        }
        Ok(dropping)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_insert_binds_every_column() {
        let columns = COLUMNS.split(',').count();
        assert_eq!(insert_sql().matches('?').count(), columns);
        let insert = templates().remove(0);
        assert_eq!(insert.params.len(), columns);
        for (param, column) in insert.params.iter().zip(COLUMNS.split(',')) {
            assert_eq!(*param, column.trim());
        }
    }
}
