//! ClickHouse: the schema (migrations), batch inserts for the writer and the
//! read queries behind the console.

/// The condition "this row's Kafka offset is below the writers' committed
/// offset of its partition", with two parameters: the offsets, then their
/// `category/partition` keys, as `app::tail::Delivered::bound` makes them.
/// A partition the arrays do not name finds index 0 and so offset 0: none
/// of its rows qualify. Below a committed offset every row is in the table
/// (the writer commits only after its rows are in), whatever order two
/// batches in flight landed in; the live tail and retention read there.
macro_rules! below_committed {
    () => {
        "kafka_offset < arrayElement(?, indexOf(?, concat(category, '/', toString(kafka_partition))))"
    };
}

mod access;
mod alerts;
mod dead_letters;
mod detections;
mod integrity;
mod keys;
mod migration_lock;
pub mod migrations;
pub mod nodes;
mod pipeline;
mod procs;
mod queries;
mod redaction;
mod retention;
mod saved;
mod search;
mod trends;

pub use access::{AccessRow, SignOutRow};
pub use alerts::RulesRow;
pub use dead_letters::{DeadLetterAction, HandledLetter, HandledWithin, RetainedRange};
pub use detections::{RuleVersion, DELIVERY_SUBJECT_PREFIX};
pub use integrity::{LeafRow, LeafSet, Recorded};
pub use keys::KeyRow;
pub use pipeline::NodeFigures;
pub use procs::{StatusRow, STATUS_TABLE};
pub use queries::{catalogue, QueryTemplate};
pub use redaction::{ApprovalRow, RequestRow};
pub use retention::HoldRow;
pub(crate) use search::{ExportCell, EXPORT_COLUMNS};
pub use search::{ExportFormat, ExportStream, Limits as SearchLimits, MinuteCount};
pub use trends::{days_to_drop, Sample, DAY_MS, SAMPLES_TABLE};

use std::sync::Arc;
use std::time::Duration;

use clickhouse::{Client, Row};
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::config::ClickHouseConfig;
use crate::event::AuditEvent;
use crate::integrity::leaf::{ContentHash, Sealed};

pub const EVENTS_TABLE: &str = "audit_events";
const PING_SQL: &str = "SELECT 1";

/// The number after `Code: ` in a ClickHouse exception, as 18.16
/// (`Code: 159, e.displayText() = …`) and current releases
/// (`Code: 159. DB::Exception: …`) write it.
pub fn exception_code(message: &str) -> Option<u32> {
    let rest = &message[message.find("Code: ")? + "Code: ".len()..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("ClickHouse request failed: {0}")]
    ClickHouse(#[from] clickhouse::error::Error),
    #[error("ClickHouse answered with an unexpected version string {0:?}")]
    Version(String),
    #[error("ClickHouse did not finish the request within {0:?}")]
    Timeout(std::time::Duration),
}

/// One row of `audit_events`, in table column order (written by the
/// writer, read back by the integrity check, and read from an export by
/// `attest verify`).
#[derive(Debug, Clone, Row, Serialize, Deserialize)]
pub struct EventRow {
    pub event_id: String,
    pub tenant_id: String,
    pub occurred_at: i64,
    pub received_at: i64,
    pub category: String,
    pub action: String,
    pub outcome: String,
    pub actor_id: String,
    pub actor_type: String,
    pub actor_ip: String,
    pub actor_user_agent: String,
    pub resource_type: String,
    pub resource_id: String,
    pub source_service: String,
    pub request_id: String,
    // The alias reads an export's NDJSON line, which names the columns so.
    #[serde(rename = "metadata.key", alias = "metadata_key")]
    pub metadata_key: Vec<String>,
    #[serde(rename = "metadata.value", alias = "metadata_value")]
    pub metadata_value: Vec<String>,
    pub schema_id: u32,
    pub kafka_partition: i32,
    pub kafka_offset: i64,
}

/// A row as inserted: the event's columns with its content hash, made by
/// the writer (migration 0027). The writer computes it anyway to seal the
/// row, and computing it in Rust costs about half of what migration
/// 0009's expression costs ClickHouse per row (docs/DESIGN.md, "Where an
/// event's CPU goes").
#[derive(Row, Serialize)]
struct StoredEvent<'a> {
    event_id: &'a str,
    tenant_id: &'a str,
    occurred_at: i64,
    received_at: i64,
    category: &'a str,
    action: &'a str,
    outcome: &'a str,
    actor_id: &'a str,
    actor_type: &'a str,
    actor_ip: &'a str,
    actor_user_agent: &'a str,
    resource_type: &'a str,
    resource_id: &'a str,
    source_service: &'a str,
    request_id: &'a str,
    #[serde(rename = "metadata.key")]
    metadata_key: &'a [String],
    #[serde(rename = "metadata.value")]
    metadata_value: &'a [String],
    schema_id: u32,
    kafka_partition: i32,
    kafka_offset: i64,
    content_hash: &'a str,
}

impl<'a> StoredEvent<'a> {
    fn of(r: &'a EventRow, content_hash: &'a ContentHash) -> StoredEvent<'a> {
        StoredEvent {
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
            content_hash: content_hash.as_str(),
        }
    }
}

/// Each row's content hash, by index, for [`Store::insert_hashed`].
pub fn content_hashes(rows: &[EventRow]) -> Vec<ContentHash> {
    rows.iter().map(|row| Sealed::from(row).hashed()).collect()
}

/// Where a row came from, kept with it so any row can be traced back to its
/// Kafka message.
#[derive(Debug, Clone, Copy)]
pub struct Provenance {
    pub schema_id: u32,
    pub partition: i32,
    pub offset: i64,
}

impl EventRow {
    /// Bytes the row's strings hold: what a batch of rows weighs.
    pub fn heap_bytes(&self) -> usize {
        let strings = [
            &self.event_id,
            &self.tenant_id,
            &self.category,
            &self.action,
            &self.outcome,
            &self.actor_id,
            &self.actor_type,
            &self.actor_ip,
            &self.actor_user_agent,
            &self.resource_type,
            &self.resource_id,
            &self.source_service,
            &self.request_id,
        ];
        let metadata = self.metadata_key.iter().chain(&self.metadata_value);
        strings
            .into_iter()
            .chain(metadata)
            .map(String::len)
            .sum::<usize>()
            + std::mem::size_of::<EventRow>()
    }

    pub fn new(event: AuditEvent, from: Provenance) -> EventRow {
        let (metadata_key, metadata_value) = event.metadata.into_iter().unzip();
        let (resource_type, resource_id) =
            event.resource.map(|r| (r.kind, r.id)).unwrap_or_default();
        EventRow {
            event_id: event.event_id,
            tenant_id: event.tenant_id,
            occurred_at: event.occurred_at,
            received_at: event.received_at,
            category: event.category.as_str().to_owned(),
            action: event.action,
            outcome: event.outcome.as_str().to_owned(),
            actor_id: event.actor.id,
            actor_type: event.actor.kind,
            actor_ip: event.actor.ip.unwrap_or_default(),
            actor_user_agent: event.actor.user_agent.unwrap_or_default(),
            resource_type,
            resource_id,
            source_service: event.source_service,
            request_id: event.request_id.unwrap_or_default(),
            metadata_key,
            metadata_value,
            schema_id: from.schema_id,
            kafka_partition: from.partition,
            kafka_offset: from.offset,
        }
    }
}

/// `sql` with `values` bound by the ClickHouse client exactly as the store
/// binds them before sending (`attest sql --bind`): what the check on the
/// current ClickHouse runs, so hostile values meet the real escaping.
pub fn bound_sql(sql: &str, values: &[serde_json::Value]) -> String {
    let client = Client::default();
    let query = values
        .iter()
        .fold(client.query(sql), |query, value| query.bind(value));
    query.sql_display().to_string()
}

#[derive(Clone)]
pub struct Store {
    /// Bound to the configured database; routed over every read node
    /// (`nodes`) when there are several. Console and API queries use it.
    client: Client,
    /// Bound to the configured database, on `clickhouse.url` only: the
    /// writer's inserts and the migrations stay on one server.
    primary: Client,
    /// Bound to no database, on `clickhouse.url`, for what must work before
    /// ours exists.
    server: Client,
    /// The read nodes and their health, when there are several.
    nodes: Option<Arc<nodes::Nodes>>,
    /// One client per configured node (`url`, then `read_urls`), bound to
    /// the database and not routed: for questions about a given node.
    node_clients: Arc<Vec<(String, Client)>>,
    database: String,
    /// What one search query may cost ClickHouse.
    limits: SearchLimits,
    /// The query bar's recent metadata keys, per set of tenants, shared by
    /// every clone of the store.
    recent_keys: Arc<search::RecentKeys>,
}

impl Store {
    /// A client for the configured database; no network traffic yet.
    pub fn new(config: &ClickHouseConfig) -> Store {
        let server = base_client(Client::default(), config);
        let primary = server.clone().with_database(&config.database);
        let read_nodes = config.read_nodes();
        // Config::validate checked every URL, so this holds; a store that
        // cannot route still reads from the primary.
        let nodes = (read_nodes.len() > 1)
            .then(|| nodes::Nodes::new(&read_nodes).map(Arc::new))
            .and_then(Result::ok);
        let client = match &nodes {
            Some(nodes) => {
                let http = hyper_util::client::legacy::Client::builder(
                    hyper_util::rt::TokioExecutor::new(),
                )
                // See `nodes`: a pooled connection would outlive its node's
                // place in the rotation.
                .pool_max_idle_per_host(0)
                .build(nodes::Failover::new(nodes.clone()));
                base_client(Client::with_http_client(http), config).with_database(&config.database)
            }
            None => primary.clone(),
        };
        let node_clients = read_nodes
            .iter()
            .map(|url| {
                let one = ClickHouseConfig {
                    url: url.clone(),
                    ..config.clone()
                };
                (
                    crate::config::redact_url(url),
                    base_client(Client::default(), &one).with_database(&config.database),
                )
            })
            .collect();
        Store {
            client,
            primary,
            server,
            nodes,
            node_clients: Arc::new(node_clients),
            database: config.database.clone(),
            limits: SearchLimits::default(),
            recent_keys: Arc::default(),
        }
    }

    /// The read nodes and their health; `None` with a single node.
    pub fn read_nodes(&self) -> Option<&Arc<nodes::Nodes>> {
        self.nodes.as_ref()
    }

    /// Pings every read node (`SELECT 1`, bounded by `timeout`), in
    /// rotation or not: a node that accepts connections but does not answer
    /// leaves the rotation here, before a query waits on it, and one that
    /// is back rejoins without waiting for its back-off.
    pub async fn ping_read_nodes(&self, config: &ClickHouseConfig, timeout: Duration) {
        let Some(nodes) = &self.nodes else { return };
        let pings = config.read_nodes().into_iter().map(|url| {
            let client = base_client(
                Client::default(),
                &ClickHouseConfig {
                    url,
                    ..config.clone()
                },
            );
            async move {
                match tokio::time::timeout(timeout, client.query(PING_SQL).fetch_one::<u8>()).await
                {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(error)) => Err(error.to_string()),
                    Err(_) => Err(format!(
                        "no answer to a ping within {} ms",
                        timeout.as_millis()
                    )),
                }
            }
        });
        for (i, outcome) in futures::future::join_all(pings)
            .await
            .into_iter()
            .enumerate()
        {
            nodes.record_ping(i, outcome);
        }
    }

    /// The same store with other search limits (tests trip them on purpose).
    pub fn with_search_limits(self, limits: SearchLimits) -> Store {
        Store { limits, ..self }
    }

    /// `SELECT version()`, as `(major, minor)`.
    pub async fn server_version(&self) -> Result<(u32, u32), StoreError> {
        let v: String = self.server.query("SELECT version()").fetch_one().await?;
        migrations::parse_version(&v).ok_or(StoreError::Version(v))
    }

    /// Creates the database if needed and applies pending migrations.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        // The name was checked to be a plain identifier by Config::validate.
        self.server
            .query(&format!("CREATE DATABASE IF NOT EXISTS {}", self.database))
            .execute()
            .await?;
        let version = self.server_version().await?;
        info!(version = %format!("{}.{}", version.0, version.1), database = %self.database, "clickhouse schema check");
        migrations::apply(&self.primary, version).await
    }

    /// Inserts one batch in a single INSERT: it lands whole or not at all.
    pub async fn insert_events(&self, rows: &[EventRow]) -> Result<(), StoreError> {
        let hashes = content_hashes(rows);
        self.insert_hashed(rows.iter().zip(&hashes)).await
    }

    /// [`Store::insert_events`] of rows whose content hashes were made
    /// already (by [`content_hashes`]), each with its own.
    pub async fn insert_hashed<'a>(
        &self,
        rows: impl IntoIterator<Item = (&'a EventRow, &'a ContentHash)>,
    ) -> Result<(), StoreError> {
        let mut insert = self.primary.insert::<StoredEvent>(EVENTS_TABLE).await?;
        for (row, hash) in rows {
            insert.write(&StoredEvent::of(row, hash)).await?;
        }
        insert.end().await?;
        Ok(())
    }
}

fn base_client(client: Client, config: &ClickHouseConfig) -> Client {
    // With read routing the URL's host is not dialled (the connector picks
    // the node); the path and credentials still apply.
    let mut client = client
        .with_url(&config.url)
        .with_user(&config.user)
        // 18.16 cannot answer RowBinaryWithNamesAndTypes, which validation needs.
        .with_validation(false);
    if !config.password.is_empty() {
        client = client.with_password(&config.password);
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests::sample;

    #[test]
    fn row_flattens_the_event() {
        let row = EventRow::new(
            sample(),
            Provenance {
                schema_id: 1,
                partition: 2,
                offset: 42,
            },
        );
        assert_eq!(row.category, "permission_change");
        assert_eq!(row.outcome, "denied");
        assert_eq!(
            (row.resource_type.as_str(), row.resource_id.as_str()),
            ("role", "admin")
        );
        assert_eq!(row.actor_user_agent, "");
        assert_eq!(row.metadata_key, ["reason"]);
        assert_eq!(row.metadata_value, ["ticket 42"]);
        assert_eq!((row.kafka_partition, row.kafka_offset), (2, 42));
    }
}
