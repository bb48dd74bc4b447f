//! The analysts' search over `audit_events`: pages by keyset cursor, the
//! newer-events count, facets, one event in full, and exports.
//!
//! The query text goes through `app::query::compile_str`, which turns it
//! into fixed SQL with `?` placeholders; every value is bound. Each query is
//! bounded in time and runs under ClickHouse limits ([`Limits`]), and a
//! limit that trips comes back as [`QueryLimit`], naming the limit.

mod catalogue;
mod dashboard;
mod detail;
mod detections;
mod export;
mod metadata;
mod sql;

pub(crate) use catalogue::templates;
pub(crate) use detections::templates as detection_templates;
pub use detections::MinuteCount;
pub use export::{ExportFormat, ExportStream};
pub use metadata::RecentKeys;
pub(crate) use sql::{Cell as ExportCell, EXPORT_COLUMNS};

use app::query::{compile_str, Compiled, Param};
use app::search_model::{
    CountBy, CountField, FacetCounts, FacetField, FacetValue, Facets, QueryLimit, SearchHit,
    SearchPage, SearchQuery, COUNT_BY_VALUES, FACET_VALUES, SEARCH_PAGE_ROWS,
};
use app::search_state::{Cursor, TimeWindow, MAX_METADATA_COLUMNS};
use app::store::StoreError as ConsoleError;
use app::tail::{Delivered, TailBatch, TailPosition, POLL_ROWS};
use clickhouse::query::Query;
use tracing::error;

use super::{exception_code, Store};
use sql::{Arrival, Filter, Span};

/// How long one search query may run.
pub const MAX_EXECUTION_SECONDS: u64 = 10;
/// How long an export may run; it streams to a browser, which may be slow.
pub const EXPORT_MAX_EXECUTION_SECONDS: u64 = 600;
/// Rows one query may read: about a year of a busy tenant.
pub const MAX_ROWS_TO_READ: u64 = 500_000_000;
/// Rows one answer may hold, and so the largest export.
pub const MAX_RESULT_ROWS: u64 = 1_000_000;

/// The ClickHouse settings every search query runs under. They travel as
/// URL parameters of the HTTP interface, which ClickHouse 18.16 and current
/// releases both read, rather than in a `SETTINGS` clause: the SQL stays
/// exactly what `attest sql` shows, and a store with other limits (tests
/// trip them on purpose) runs the same text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_execution_seconds: u64,
    pub export_max_execution_seconds: u64,
    pub max_rows_to_read: u64,
    pub max_result_rows: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_execution_seconds: MAX_EXECUTION_SECONDS,
            export_max_execution_seconds: EXPORT_MAX_EXECUTION_SECONDS,
            max_rows_to_read: MAX_ROWS_TO_READ,
            max_result_rows: MAX_RESULT_ROWS,
        }
    }
}

impl Limits {
    fn apply(&self, query: Query, seconds: u64) -> Query {
        query
            .with_setting("max_execution_time", seconds.to_string())
            .with_setting("max_rows_to_read", self.max_rows_to_read.to_string())
            .with_setting("max_result_rows", self.max_result_rows.to_string())
    }

    /// The limit a ClickHouse error reports, if it reports one.
    pub fn hit(&self, message: &str, seconds: u64) -> Option<QueryLimit> {
        Some(match exception_code(message)? {
            // TIMEOUT_EXCEEDED, and TOO_SLOW: the estimate says it would be.
            159 | 160 => QueryLimit::ExecutionTime { seconds },
            // TOO_MANY_ROWS: max_rows_to_read.
            158 => QueryLimit::RowsToRead {
                rows: self.max_rows_to_read,
            },
            // TOO_MANY_ROWS_OR_BYTES: max_result_rows on every version.
            396 => QueryLimit::ResultRows {
                rows: self.max_result_rows,
            },
            // MEMORY_LIMIT_EXCEEDED.
            241 => QueryLimit::Memory,
            _ => return None,
        })
    }

    /// A limit, or the store being unavailable (logged; the analyst gets
    /// no internals).
    pub(crate) fn classify(&self, error: &dyn std::fmt::Display, seconds: u64) -> ConsoleError {
        let message = error.to_string();
        match self.hit(&message, seconds) {
            Some(limit) => ConsoleError::Limit(limit),
            None => {
                error!(error = %message, "search query failed");
                ConsoleError::Unavailable(message)
            }
        }
    }
}

/// Binds values in placeholder order.
fn bind_all(mut query: Query, params: &[Param]) -> Query {
    for param in params {
        query = match param {
            Param::Str(text) => query.bind(text.as_str()),
            Param::Int(n) => query.bind(*n),
        };
    }
    query
}

/// A search checked and placed in time.
struct Plan {
    compiled: Compiled,
    window: TimeWindow,
    snapshot_ms: i64,
}

impl Plan {
    fn new(query: &SearchQuery, now_ms: i64) -> Result<Plan, ConsoleError> {
        // Later pages keep the first page's moment: a relative window
        // does not slide and late arrivals do not shift the pages. Relative
        // times in the query (`now-1h`) count from the same moment.
        let snapshot_ms = query.cursor.as_ref().map_or(now_ms, |c| c.snapshot_ms);
        Ok(Plan {
            compiled: compile_str(&query.q, snapshot_ms).map_err(ConsoleError::BadQuery)?,
            window: query.window,
            snapshot_ms,
        })
    }

    fn span(&self) -> Span {
        let (from_ms, to_ms) = self.window.bounds(self.snapshot_ms);
        Span {
            from_ms,
            to_ms,
            arrival: Arrival::UpToSnapshot,
            snapshot_ms: self.snapshot_ms,
        }
    }

    /// Arrivals after `since_ms`; an open window reaches to `now_ms`.
    fn newer_span(&self, since_ms: i64, now_ms: i64) -> Span {
        let (from_ms, to_ms) = self.window.bounds(self.snapshot_ms);
        Span {
            from_ms,
            to_ms: if self.window.open_ended() {
                now_ms.max(to_ms)
            } else {
                to_ms
            },
            arrival: Arrival::AfterSnapshot,
            snapshot_ms: since_ms,
        }
    }
}

/// The facet query's rows.
#[derive(clickhouse::Row, serde::Deserialize)]
struct FacetRow {
    field: String,
    value: String,
    events: u64,
}

/// The tail query's rows: a hit, then where it is in Kafka.
#[derive(clickhouse::Row, serde::Deserialize)]
struct TailRow {
    event_id: String,
    tenant_id: String,
    occurred_at: i64,
    received_at: i64,
    category: String,
    action: String,
    outcome: String,
    actor_id: String,
    actor_type: String,
    actor_ip: String,
    actor_user_agent: String,
    resource_type: String,
    resource_id: String,
    source_service: String,
    request_id: String,
    content_hash: String,
    hit_metadata: Vec<(String, String)>,
    kafka_partition: i32,
    kafka_offset: i64,
}

impl TailRow {
    fn split(self) -> (SearchHit, i32, i64) {
        let hit = SearchHit {
            event_id: self.event_id,
            tenant_id: self.tenant_id,
            occurred_at: self.occurred_at,
            received_at: self.received_at,
            category: self.category,
            action: self.action,
            outcome: self.outcome,
            actor_id: self.actor_id,
            actor_type: self.actor_type,
            actor_ip: self.actor_ip,
            actor_user_agent: self.actor_user_agent,
            resource_type: self.resource_type,
            resource_id: self.resource_id,
            source_service: self.source_service,
            request_id: self.request_id,
            content_hash: self.content_hash,
            metadata: self.hit_metadata,
        };
        (hit, self.kafka_partition, self.kafka_offset)
    }
}

/// The metadata keys a page's hits carry: the query's, each one the query
/// language accepts (a key that is not could match nothing anyway), at most
/// [`MAX_METADATA_COLUMNS`], each once.
fn metadata_columns(query: &SearchQuery) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for key in &query.metadata_keys {
        if keys.len() == MAX_METADATA_COLUMNS {
            break;
        }
        if app::query::is_metadata_key(key) && !keys.contains(key) {
            keys.push(key.clone());
        }
    }
    keys
}

/// The count-by query's rows.
#[derive(clickhouse::Row, serde::Deserialize)]
struct CountRow {
    value: String,
    events: u64,
}

impl Store {
    fn search_query(&self, sql: &str, filter: &Filter) -> Query {
        self.filtered_query(sql, |query| query, filter)
    }

    fn filtered_query(
        &self,
        sql: &str,
        leading: impl FnOnce(Query) -> Query,
        filter: &Filter,
    ) -> Query {
        self.filtered_query_within(sql, leading, filter, self.limits.max_execution_seconds)
    }

    /// The one order of binds for SQL that holds the search filter: the
    /// values the text places before the filter (`leading`: bucket
    /// arithmetic, metadata keys, a condition inside a count), then the
    /// filter's own, then the limits with `seconds` to run.
    fn filtered_query_within(
        &self,
        sql: &str,
        leading: impl FnOnce(Query) -> Query,
        filter: &Filter,
        seconds: u64,
    ) -> Query {
        let query = bind_all(leading(self.client.query(sql)), &filter.params);
        self.limits.apply(query, seconds)
    }

    /// A query for hits ([`sql::page_sql`], [`sql::tail_sql`]): the
    /// metadata keys they carry, if any, bind before the filter's values.
    fn hits_query(
        &self,
        sql: impl Fn(&str, bool) -> String,
        keys: &[String],
        filter: &Filter,
    ) -> Query {
        let with_keys = !keys.is_empty();
        self.filtered_query(
            &sql(&filter.sql, with_keys),
            |query| if with_keys { query.bind(keys) } else { query },
            filter,
        )
    }

    fn search_failed(&self, error: clickhouse::error::Error) -> ConsoleError {
        self.limits
            .classify(&error, self.limits.max_execution_seconds)
    }

    async fn count(&self, filter: &Filter) -> Result<u64, ConsoleError> {
        self.search_query(&sql::count_sql(&filter.sql), filter)
            .fetch_one()
            .await
            .map_err(|e| self.search_failed(e))
    }

    pub async fn search(
        &self,
        query: &SearchQuery,
        now_ms: i64,
    ) -> Result<SearchPage, ConsoleError> {
        let plan = Plan::new(query, now_ms)?;
        let span = plan.span();
        let limit = query.limit.clamp(1, SEARCH_PAGE_ROWS * 10);
        let filter = Filter::new(
            &plan.compiled,
            &query.tenants(),
            span,
            query.cursor.as_ref(),
        );
        let keys = metadata_columns(query);
        let sort = query.sort;
        let page = self
            .hits_query(
                |filter, metadata| sql::page_sql(filter, metadata, sort),
                &keys,
                &filter,
            )
            .bind(limit + 1)
            .fetch_all::<SearchHit>();
        // The first page was taken just now: nothing newer yet, so only
        // later pages ask.
        let newer = async {
            match query.cursor {
                Some(_) => self.newer_events(query, plan.snapshot_ms, now_ms).await,
                None => Ok(0),
            }
        };
        let (hits, newer) = futures::join!(page, newer);
        let mut hits = hits.map_err(|e| self.search_failed(e))?;
        let next_cursor = if hits.len() > limit as usize {
            hits.truncate(limit as usize);
            hits.last().map(|last| {
                Cursor {
                    sort,
                    value: last.sort_value(sort.column),
                    snapshot_ms: plan.snapshot_ms,
                    occurred_at: last.occurred_at,
                    event_id: last.event_id.clone(),
                    tenant_id: last.tenant_id.clone(),
                    content_hash: last.content_hash.clone(),
                }
                .encode()
            })
        } else {
            None
        };
        Ok(SearchPage {
            hits,
            from_ms: span.from_ms,
            to_ms: span.to_ms,
            snapshot_ms: plan.snapshot_ms,
            next_cursor,
            newer: newer?,
        })
    }

    pub async fn newer_events(
        &self,
        query: &SearchQuery,
        snapshot_ms: i64,
        now_ms: i64,
    ) -> Result<u64, ConsoleError> {
        let plan = Plan::new(query, now_ms)?;
        let span = plan.newer_span(snapshot_ms, now_ms);
        self.count(&Filter::new(&plan.compiled, &query.tenants(), span, None))
            .await
    }

    /// The live tail's next rows: see [`app::store::EventStore::tail`].
    pub async fn tail(
        &self,
        query: &SearchQuery,
        position: &TailPosition,
        delivered: &Delivered,
        now_ms: i64,
    ) -> Result<TailBatch, ConsoleError> {
        let plan = Plan::new(query, now_ms)?;
        let span = plan.newer_span(position.since_ms, now_ms);
        let filter = Filter::new(&plan.compiled, &query.tenants(), span, None);
        let (partitions, offsets) = position.bound();
        let (committed_partitions, committed) = delivered.bound();
        let rows = self
            .hits_query(sql::tail_sql, &metadata_columns(query), &filter)
            .bind(offsets)
            .bind(partitions)
            .bind(committed)
            .bind(committed_partitions)
            .bind(POLL_ROWS)
            .fetch_all::<TailRow>()
            .await
            .map_err(|e| self.search_failed(e))?;
        let more = rows.len() >= POLL_ROWS as usize;
        let mut position = position.clone();
        let hits = position.accept(rows.into_iter().map(TailRow::split));
        Ok(TailBatch {
            hits,
            position,
            more,
        })
    }

    /// The top values of one field or metadata key, and the total they are
    /// a part of; for a key, also the events without it. Every count is of
    /// the same rows (one filter, one snapshot), so they add up.
    pub async fn count_by(
        &self,
        query: &SearchQuery,
        field: CountField,
        now_ms: i64,
    ) -> Result<CountBy, ConsoleError> {
        if let CountField::Metadata(key) = &field {
            if !app::query::is_metadata_key(key) {
                return Err(ConsoleError::Invalid(format!(
                    "field: {}",
                    app::query::METADATA_KEY_RULE
                )));
            }
        }
        let plan = Plan::new(query, now_ms)?;
        let filter = Filter::new(&plan.compiled, &query.tenants(), plan.span(), None);
        let limit = u64::from(COUNT_BY_VALUES);
        let (values, with_key, total) = match &field {
            CountField::Field(column) => {
                let rows = self
                    .search_query(&sql::count_by_sql(*column, &filter.sql), &filter)
                    .bind(limit)
                    .fetch_all::<CountRow>();
                let (rows, total) = futures::join!(rows, self.count(&filter));
                let values = rows
                    .map_err(|e| self.search_failed(e))?
                    .into_iter()
                    .map(|r| FacetValue {
                        value: r.value,
                        events: r.events,
                    })
                    .collect();
                (values, None, total?)
            }
            CountField::Metadata(key) => {
                let (counted, total) =
                    futures::join!(self.count_by_key(&filter, key, limit), self.count(&filter));
                let (values, with_key) = counted?;
                (values, Some(with_key), total?)
            }
        };
        Ok(CountBy {
            field,
            total,
            values,
            // Both counts are exact and of the same rows; only a row the
            // writer inserts while the two run side by side (received
            // before the snapshot, written during them) can reach one and
            // not the other, which must not wrap.
            without_key: with_key.map(|n| total.saturating_sub(n)),
            snapshot_ms: plan.snapshot_ms,
        })
    }

    pub async fn facets(&self, query: &SearchQuery, now_ms: i64) -> Result<Facets, ConsoleError> {
        let plan = Plan::new(query, now_ms)?;
        let filter = Filter::new(&plan.compiled, &query.tenants(), plan.span(), None);
        let rows = self
            .search_query(&sql::facets_sql(&filter.sql), &filter)
            .bind(FACET_VALUES as u64)
            .fetch_all::<FacetRow>();
        let (rows, total, metadata) = futures::join!(
            rows,
            self.count(&filter),
            self.metadata_facet_keys(query, now_ms)
        );
        let rows = rows.map_err(|e| self.search_failed(e))?;
        let fields = FacetField::ALL
            .into_iter()
            .map(|field| FacetCounts {
                field,
                values: rows
                    .iter()
                    .filter(|r| FacetField::from_column(&r.field) == Some(field))
                    .map(|r| FacetValue {
                        value: r.value.clone(),
                        events: r.events,
                    })
                    .collect(),
            })
            .collect();
        Ok(Facets {
            total: total?,
            fields,
            metadata: metadata?,
            snapshot_ms: plan.snapshot_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_exception_codes_of_old_and_new_servers() {
        let old = "bad response: Code: 159, e.displayText() = DB::Exception: Timeout exceeded: \
                   elapsed 1.003999972 seconds, maximum: 1, e.what() = DB::Exception";
        let new = "Code: 158. DB::Exception: Limit for rows (controlled by 'max_rows_to_read' \
                   setting) exceeded, max rows: 1.00 thousand. (TOO_MANY_ROWS)";
        assert_eq!(exception_code(old), Some(159));
        assert_eq!(exception_code(new), Some(158));
        assert_eq!(exception_code("network error: connection refused"), None);
        assert_eq!(exception_code("Code: "), None);
    }

    #[test]
    fn pages_fetch_only_usable_metadata_keys_once() {
        let mut query = SearchQuery {
            q: String::new(),
            tenant: None,
            window: TimeWindow::Last(app::model::TimeRange::default()),
            cursor: None,
            sort: Default::default(),
            limit: 1,
            within: Vec::new(),
            metadata_keys: ["ticket", "a'b", "ticket", "Region"]
                .map(String::from)
                .to_vec(),
        };
        assert_eq!(metadata_columns(&query), ["ticket", "Region"]);
        query.metadata_keys = (0..MAX_METADATA_COLUMNS + 3)
            .map(|n| format!("k{n}"))
            .collect();
        assert_eq!(metadata_columns(&query).len(), MAX_METADATA_COLUMNS);
    }

    #[test]
    fn limits_are_named() {
        let limits = Limits::default();
        let hit = |code: u32| limits.hit(&format!("Code: {code}. DB::Exception: x"), 10);
        assert_eq!(hit(159), Some(QueryLimit::ExecutionTime { seconds: 10 }));
        assert_eq!(hit(160), Some(QueryLimit::ExecutionTime { seconds: 10 }));
        assert_eq!(
            hit(158),
            Some(QueryLimit::RowsToRead {
                rows: MAX_ROWS_TO_READ
            })
        );
        assert_eq!(
            hit(396),
            Some(QueryLimit::ResultRows {
                rows: MAX_RESULT_ROWS
            })
        );
        assert_eq!(hit(241), Some(QueryLimit::Memory));
        assert_eq!(hit(60), None);
        assert!(matches!(
            limits.classify(&"Code: 60. DB::Exception: no table", 10),
            ConsoleError::Unavailable(_)
        ));
    }
}
