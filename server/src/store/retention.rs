//! The ClickHouse side of retention and legal holds: which months hold data,
//! whose, and removing a month or one tenant's part of it from the events
//! table and its rollups alike.

use app::tail::Delivered;
use clickhouse::query::Query;
use clickhouse::Row;
use serde::{Deserialize, Serialize};

use super::{QueryTemplate, Store, StoreError, EVENTS_TABLE};
use crate::integrity::retention_record::RetentionRecord;

pub const RETENTION_RECORDS_TABLE: &str = "attest_retention_records";

/// Tables partitioned by month that hold a tenant's events or counts of
/// them, with the column their month is taken from. Retention treats them
/// as one: a dashboard must not count what the events table no longer has.
const MONTHLY_TABLES: &[(&str, &str)] = &[
    (EVENTS_TABLE, "event_time"),
    ROLLUP_TABLES[0],
    ROLLUP_TABLES[1],
];

/// The per-minute rollups of the events table. They hold no Kafka offsets,
/// so a tenant's month goes from them whole.
const ROLLUP_TABLES: [(&str, &str); 2] = [
    ("audit_counts_per_minute", "minute"),
    ("audit_failures_per_minute", "minute"),
];

pub(crate) const MONTHS_SQL: &str = "SELECT DISTINCT partition FROM system.parts \
     WHERE database = currentDatabase() AND table = 'audit_events' AND active \
     ORDER BY partition";

/// Distinct events by their identity (tenant, id, content hash), so the
/// count recorded before a removal is what the tenant sent.
pub(crate) const TENANTS_IN_MONTH_SQL: &str =
    "SELECT tenant_id, uniqExact(event_id, content_hash) FROM audit_events \
     WHERE event_time >= toDateTime(?, 'UTC') AND event_time < toDateTime(?, 'UTC') \
     GROUP BY tenant_id ORDER BY tenant_id";

/// Where one tenant's rows of a month are in Kafka, per category (its
/// topic) and partition, below the writers' committed offsets: what
/// retention signs before removing them (docs/INTEGRITY.md, section 15).
pub(crate) const PLACES_IN_MONTH_SQL: &str = concat!(
    "SELECT category, kafka_partition, arraySort(groupUniqArray(kafka_offset)) AS offsets \
     FROM audit_events WHERE tenant_id = ? \
     AND event_time >= toDateTime(?, 'UTC') AND event_time < toDateTime(?, 'UTC') AND ",
    below_committed!(),
    " GROUP BY category, kafka_partition ORDER BY category, kafka_partition"
);

/// Distinct events of some tenants in a month below the writers' committed
/// offsets: what [`DELETE_DELIVERED_SQL`] removes with the same bound,
/// counted by identity like [`TENANTS_IN_MONTH_SQL`], for the removal's
/// audit event. Rows at or above the bound stay for the next run and are
/// counted there.
pub(crate) const DELIVERED_TENANTS_IN_MONTH_SQL: &str = concat!(
    "SELECT tenant_id, uniqExact(event_id, content_hash) FROM audit_events \
     WHERE has(?, tenant_id) \
     AND event_time >= toDateTime(?, 'UTC') AND event_time < toDateTime(?, 'UTC') AND ",
    below_committed!(),
    " GROUP BY tenant_id ORDER BY tenant_id"
);

/// Removes some tenants' rows of a month below the writers' committed
/// offsets, the rows [`PLACES_IN_MONTH_SQL`] found and retention signed:
/// a row stored since (an event sent with an old `occurred_at`, its batch
/// in flight) is at or above them and stays for the next run, so nothing
/// is removed that no record names.
pub(crate) const DELETE_DELIVERED_SQL: &str = concat!(
    "ALTER TABLE audit_events DELETE WHERE has(?, tenant_id) \
     AND event_time >= toDateTime(?, 'UTC') AND event_time < toDateTime(?, 'UTC') AND ",
    below_committed!()
);

/// Every retention record of one tenant in one chain (a topic's partition).
pub(crate) const RECORDS_OF_CHAIN_SQL: &str =
    "SELECT topic, partition, tenant_id, month, kafka_offsets, executed_at, key_id, signature \
     FROM attest_retention_records WHERE topic = ? AND partition = ? AND tenant_id = ? \
     ORDER BY month, executed_at";

/// One tenant's rows of a month in one category's partition.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct MonthPlaces {
    pub category: String,
    pub kafka_partition: i32,
    pub offsets: Vec<i64>,
}

pub(crate) const HOLDS_SQL: &str = "SELECT hold_id, tenant_id, from_month, to_month, reason, \
     created_at, released_at FROM attest_legal_holds FINAL ORDER BY created_at, hold_id";

const INSERT_HOLD_SQL: &str = "INSERT INTO attest_legal_holds \
     (hold_id, tenant_id, from_month, to_month, reason, created_at, released_at, version) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)";

/// One version of a legal hold, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct HoldRow {
    pub hold_id: String,
    pub tenant_id: String,
    /// `YYYYMM`, inclusive.
    pub from_month: u32,
    /// `YYYYMM`, inclusive.
    pub to_month: u32,
    pub reason: String,
    /// Epoch seconds.
    pub created_at: u32,
    /// Epoch seconds; 0 while the hold is active.
    pub released_at: u32,
}

fn drop_month_sql(table: &str) -> String {
    format!("ALTER TABLE {table} DROP PARTITION ?")
}

fn delete_tenant_sql(table: &str, time_column: &str) -> String {
    format!(
        "ALTER TABLE {table} DELETE WHERE has(?, tenant_id) \
         AND {time_column} >= toDateTime(?, 'UTC') AND {time_column} < toDateTime(?, 'UTC')"
    )
}

/// The values of the statements that take several tenants' rows of a
/// month below the writers' committed offsets.
const TENANTS_BELOW_COMMITTED: &[&str] = &[
    "tenants",
    "from_s",
    "until_s",
    "committed_offsets",
    "committed_keys",
];

/// Retention's statements for the SQL catalogue. Names start with
/// `retention_` because they change data: checks run them last.
pub(crate) fn templates() -> Vec<QueryTemplate> {
    let mut out = vec![
        QueryTemplate {
            name: "retention_months".into(),
            sql: MONTHS_SQL.to_owned(),
            params: &[],
        },
        QueryTemplate {
            name: "retention_tenants_in_month".into(),
            sql: TENANTS_IN_MONTH_SQL.to_owned(),
            params: &["from_s", "until_s"],
        },
        QueryTemplate {
            name: "retention_legal_holds".into(),
            sql: HOLDS_SQL.to_owned(),
            params: &[],
        },
        QueryTemplate {
            name: "retention_places_in_month".into(),
            sql: PLACES_IN_MONTH_SQL.to_owned(),
            params: &[
                "tenant",
                "from_s",
                "until_s",
                "committed_offsets",
                "committed_keys",
            ],
        },
        QueryTemplate {
            name: "retention_delivered_tenants_in_month".into(),
            sql: DELIVERED_TENANTS_IN_MONTH_SQL.to_owned(),
            params: TENANTS_BELOW_COMMITTED,
        },
        QueryTemplate {
            name: format!("retention_delete_tenant_{EVENTS_TABLE}"),
            sql: DELETE_DELIVERED_SQL.to_owned(),
            params: TENANTS_BELOW_COMMITTED,
        },
        QueryTemplate {
            name: "retention_records_of_chain".into(),
            sql: RECORDS_OF_CHAIN_SQL.to_owned(),
            params: &["topic", "partition", "tenant"],
        },
    ];
    for (table, time_column) in ROLLUP_TABLES {
        out.push(QueryTemplate {
            name: format!("retention_delete_tenant_{table}"),
            sql: delete_tenant_sql(table, time_column),
            params: &["tenants", "from_s", "until_s"],
        });
    }
    for (table, _) in MONTHLY_TABLES {
        out.push(QueryTemplate {
            name: format!("retention_drop_month_{table}"),
            sql: drop_month_sql(table),
            params: &["partition"],
        });
    }
    out
}

/// Binds what follows the tenant(s) in the statements that take a month's
/// rows below the writers' committed offsets: the month's bounds, then the
/// offsets and their keys (see `below_committed!`).
fn month_below(query: Query, from_s: i64, until_s: i64, below: &Delivered) -> Query {
    let (keys, offsets) = below.bound();
    query.bind(from_s).bind(until_s).bind(offsets).bind(keys)
}

impl Store {
    /// Partition ids (`YYYYMM`) of the events table that hold any data.
    pub async fn months_with_events(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.client.query(MONTHS_SQL).fetch_all().await?)
    }

    /// Distinct events per tenant between two epoch seconds (a month).
    pub async fn tenants_between(
        &self,
        from_s: i64,
        until_s: i64,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        Ok(self
            .client
            .query(TENANTS_IN_MONTH_SQL)
            .bind(from_s)
            .bind(until_s)
            .fetch_all()
            .await?)
    }

    /// How many distinct events each of `tenants` has between two epoch
    /// seconds below the writers' committed offsets `below`, read where
    /// the writers insert, like [`Store::places_between`].
    pub async fn delivered_tenants_between(
        &self,
        tenants: &[&str],
        from_s: i64,
        until_s: i64,
        below: &Delivered,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let query = self
            .primary
            .query(DELIVERED_TENANTS_IN_MONTH_SQL)
            .bind(tenants);
        Ok(month_below(query, from_s, until_s, below)
            .fetch_all()
            .await?)
    }

    /// Where the tenant's rows between two epoch seconds (a month) are in
    /// Kafka, below the writers' committed offsets `below`, read where the
    /// writers insert (a read node may lag).
    pub async fn places_between(
        &self,
        tenant: &str,
        from_s: i64,
        until_s: i64,
        below: &Delivered,
    ) -> Result<Vec<MonthPlaces>, StoreError> {
        let query = self.primary.query(PLACES_IN_MONTH_SQL).bind(tenant);
        Ok(month_below(query, from_s, until_s, below)
            .fetch_all()
            .await?)
    }

    pub async fn insert_retention_records(
        &self,
        records: &[RetentionRecord],
    ) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut insert = self
            .primary
            .insert::<RetentionRecord>(RETENTION_RECORDS_TABLE)
            .await?;
        for record in records {
            insert.write(record).await?;
        }
        insert.end().await?;
        Ok(())
    }

    /// The retention records of one tenant in one chain.
    pub async fn retention_records_of(
        &self,
        topic: &str,
        partition: i32,
        tenant: &str,
    ) -> Result<Vec<RetentionRecord>, StoreError> {
        Ok(self
            .primary
            .query(RECORDS_OF_CHAIN_SQL)
            .bind(topic)
            .bind(partition)
            .bind(tenant)
            .fetch_all()
            .await?)
    }

    /// Drops the month's partition from the events table and its rollups.
    pub async fn drop_month(&self, partition: u32) -> Result<(), StoreError> {
        for (table, _) in MONTHLY_TABLES {
            self.client
                .query(&drop_month_sql(table))
                .bind(partition)
                .execute()
                .await?;
        }
        Ok(())
    }

    /// Deletes the tenants' rows between two epoch seconds (a month) below
    /// the writers' committed offsets `below` from the events table, and
    /// their counts of those seconds from the rollups: one mutation per
    /// table, since each rewrites the month's parts. The mutations run in
    /// the background; ClickHouse finishes them even across a restart.
    pub async fn delete_tenants_between(
        &self,
        tenants: &[&str],
        from_s: i64,
        until_s: i64,
        below: &Delivered,
    ) -> Result<(), StoreError> {
        let query = self.client.query(DELETE_DELIVERED_SQL).bind(tenants);
        month_below(query, from_s, until_s, below).execute().await?;
        for (table, time_column) in ROLLUP_TABLES {
            self.client
                .query(&delete_tenant_sql(table, time_column))
                .bind(tenants)
                .bind(from_s)
                .bind(until_s)
                .execute()
                .await?;
        }
        Ok(())
    }

    /// The latest version of every hold, released ones included.
    pub async fn legal_holds(&self) -> Result<Vec<HoldRow>, StoreError> {
        Ok(self.client.query(HOLDS_SQL).fetch_all().await?)
    }

    /// Stores a new version of a hold; the highest `version` wins.
    pub async fn put_legal_hold(&self, hold: &HoldRow, version: u64) -> Result<(), StoreError> {
        self.client
            .query(INSERT_HOLD_SQL)
            .bind(&hold.hold_id)
            .bind(&hold.tenant_id)
            .bind(hold.from_month)
            .bind(hold.to_month)
            .bind(&hold.reason)
            .bind(hold.created_at)
            .bind(hold.released_at)
            .bind(version)
            .execute()
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A different event sent with a used id is an event of its own in
    /// the count recorded before a removal.
    #[test]
    fn tenants_in_month_counts_identities() {
        assert!(TENANTS_IN_MONTH_SQL.contains("uniqExact(event_id, content_hash)"));
        assert!(TENANTS_IN_MONTH_SQL.contains("GROUP BY tenant_id"));
    }
}
