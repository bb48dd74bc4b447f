//! What the pipeline page asks the ClickHouse node about itself. Every
//! statement reads only system tables that 18.16 has as well as the current
//! LTS, except `system.disks` (19.15 and later), which is read only where
//! `system.tables` lists it. The chdb check runs each on the current server.

use std::time::{Duration, Instant};

use clickhouse::Row;
use serde::Deserialize;

use super::{QueryTemplate, Store, StoreError, EVENTS_TABLE};

const NODE_SQL: &str = "SELECT version() AS version, toUInt64(uptime()) AS uptime_s";

/// The read-latency probe: as trivial as a read gets, so its time is the
/// node's responsiveness plus the round trip, not the work.
const PROBE_SQL: &str = "SELECT toUInt8(1) AS one";

/// `value` is a String in `system.merge_tree_settings`; a missing or odd
/// one reads as 0, which the page shows as unknown.
const PARTS_LIMIT_SQL: &str = "SELECT toUInt64OrZero(value) AS parts_to_throw_insert \
     FROM system.merge_tree_settings WHERE name = 'parts_to_throw_insert'";

/// Active parts per partition of the events table in this database: the
/// insert limit applies per partition.
fn parts_sql() -> String {
    format!(
        "SELECT partition, toUInt64(count()) AS active_parts FROM system.parts \
         WHERE database = currentDatabase() AND table = '{EVENTS_TABLE}' AND active \
         GROUP BY partition ORDER BY partition"
    )
}

/// Every merge on the node: merges compete for the same disks and CPU
/// whichever database they belong to.
const MERGES_SQL: &str = "SELECT toUInt64(count()) AS merges FROM system.merges";

const HAS_DISKS_SQL: &str = "SELECT toUInt64(count()) AS tables FROM system.tables \
     WHERE database = 'system' AND name = 'disks'";

const DISKS_SQL: &str = "SELECT name, toUInt64(free_space) AS free_bytes, \
     toUInt64(total_space) AS total_bytes FROM system.disks ORDER BY name";

/// Replicated tables of this database on the node: how many, entries in
/// their replication queues, and the largest delay. No rows (a single
/// node, non-replicated tables) reads as 0 tables.
const REPLICAS_SQL: &str = "SELECT toUInt64(count()) AS tables, \
     toUInt64(sum(queue_size)) AS queue, toUInt64(max(absolute_delay)) AS delay_s \
     FROM system.replicas WHERE database = currentDatabase()";

#[derive(Debug, Row, Deserialize)]
struct NodeRow {
    version: String,
    uptime_s: u64,
}

#[derive(Debug, Row, Deserialize)]
pub struct PartsRow {
    pub partition: String,
    pub active_parts: u64,
}

#[derive(Debug, Row, Deserialize)]
struct ReplicasRow {
    tables: u64,
    queue: u64,
    delay_s: u64,
}

#[derive(Debug, Row, Deserialize)]
pub struct DiskRow {
    pub name: String,
    pub free_bytes: u64,
    pub total_bytes: u64,
}

/// What one round of questions found; each figure on its own, so one
/// failed query does not hide the others.
#[derive(Debug, Default)]
pub struct NodeFigures {
    pub version: Option<String>,
    pub uptime_s: Option<u64>,
    pub read_latency: Option<Duration>,
    pub parts_to_throw_insert: Option<u64>,
    pub parts: Option<Vec<PartsRow>>,
    pub merges: Option<u64>,
    /// `Some(None)`: the server has no `system.disks`.
    pub disks: Option<Option<Vec<DiskRow>>>,
    /// `(queue, delay_s)` where the node has replicated tables of ours.
    pub replication: Option<(u64, u64)>,
    pub problems: Vec<String>,
}

pub(crate) fn templates() -> Vec<QueryTemplate> {
    let t = |name: &str, sql: String| QueryTemplate {
        name: name.into(),
        sql,
        params: &[],
    };
    vec![
        t("pipeline_node", NODE_SQL.into()),
        t("pipeline_probe", PROBE_SQL.into()),
        t("pipeline_parts_limit", PARTS_LIMIT_SQL.into()),
        t("pipeline_parts", parts_sql()),
        t("pipeline_merges", MERGES_SQL.into()),
        t("pipeline_has_disks", HAS_DISKS_SQL.into()),
        t("pipeline_disks", DISKS_SQL.into()),
        t("pipeline_replicas", REPLICAS_SQL.into()),
    ]
}

impl Store {
    /// The figures of the node reads go to now (see [`figures_of`]).
    pub async fn node_figures(&self, timeout: Duration) -> NodeFigures {
        figures_of(&self.client, timeout).await
    }

    /// Every configured node's figures, each node asked directly (not
    /// through the read routing), all at once: `(node shown, figures)` in
    /// the configured order.
    pub async fn every_node_figures(&self, timeout: Duration) -> Vec<(String, NodeFigures)> {
        let asked = self
            .node_clients
            .iter()
            .map(|(_, client)| figures_of(client, timeout));
        let found = futures::future::join_all(asked).await;
        self.node_clients
            .iter()
            .map(|(shown, _)| shown.clone())
            .zip(found)
            .collect()
    }
}

/// Asks a node every question, each bounded by `timeout`: a node that
/// does not answer costs the page at most a few of them, never a hang
/// (the first, the probe, failing skips the rest).
async fn figures_of(client: &clickhouse::Client, timeout: Duration) -> NodeFigures {
    let mut figures = NodeFigures::default();
    let started = Instant::now();
    match bounded(timeout, client.query(PROBE_SQL).fetch_one::<u8>()).await {
        Ok(_) => figures.read_latency = Some(started.elapsed()),
        Err(error) => {
            figures
                .problems
                .push(format!("no answer to a trivial read: {error}"));
            return figures;
        }
    }
    match bounded(timeout, client.query(NODE_SQL).fetch_one::<NodeRow>()).await {
        Ok(row) => {
            figures.version = Some(row.version);
            figures.uptime_s = Some(row.uptime_s);
        }
        Err(error) => figures
            .problems
            .push(format!("version and uptime: {error}")),
    }
    match bounded(timeout, client.query(PARTS_LIMIT_SQL).fetch_all::<u64>()).await {
        Ok(rows) => figures.parts_to_throw_insert = rows.into_iter().next().filter(|&v| v > 0),
        Err(error) => figures
            .problems
            .push(format!("parts_to_throw_insert: {error}")),
    }
    match bounded(timeout, client.query(&parts_sql()).fetch_all::<PartsRow>()).await {
        Ok(rows) => figures.parts = Some(rows),
        Err(error) => figures.problems.push(format!("active parts: {error}")),
    }
    match bounded(timeout, client.query(MERGES_SQL).fetch_one::<u64>()).await {
        Ok(n) => figures.merges = Some(n),
        Err(error) => figures.problems.push(format!("merges: {error}")),
    }
    match bounded(timeout, client.query(HAS_DISKS_SQL).fetch_one::<u64>()).await {
        Ok(0) => figures.disks = Some(None),
        Ok(_) => match bounded(timeout, client.query(DISKS_SQL).fetch_all::<DiskRow>()).await {
            Ok(rows) => figures.disks = Some(Some(rows)),
            Err(error) => figures.problems.push(format!("free disk: {error}")),
        },
        Err(error) => figures.problems.push(format!("free disk: {error}")),
    }
    match bounded(
        timeout,
        client.query(REPLICAS_SQL).fetch_one::<ReplicasRow>(),
    )
    .await
    {
        Ok(row) if row.tables > 0 => figures.replication = Some((row.queue, row.delay_s)),
        Ok(_) => {}
        Err(error) => figures.problems.push(format!("replication: {error}")),
    }
    figures
}

async fn bounded<T>(
    timeout: Duration,
    query: impl std::future::Future<Output = Result<T, clickhouse::error::Error>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(timeout, query).await {
        Ok(answer) => Ok(answer?),
        Err(_) => Err(StoreError::Timeout(timeout)),
    }
}
