//! Read queries behind the console. User input only ever reaches ClickHouse
//! as bound values (`?`), escaped by the client; never as SQL text.

use app::dashboard_model::{Panel, PanelData, SeriesBy, TimeSeries, Timeline, TopActors};
use app::model::{Activity, EventFilter};
use app::search_model::{EventDetail, Facets, SavedSearch, SearchPage, SearchQuery};
use app::search_state::SearchParams;
use app::store::{EventStore, StoreError as ConsoleError};
use tracing::error;

use super::{Store, StoreError};

/// The condition for `tenants` bound values: none for every tenant, `=` for
/// one, `IN` for several. Each is on the sorting key's first column, so
/// ClickHouse reads only those tenants' ranges.
pub(crate) fn tenant_condition(tenants: usize) -> String {
    match tenants {
        0 => String::new(),
        1 => " AND tenant_id = ?".to_owned(),
        n => format!(" AND tenant_id IN ({})", vec!["?"; n].join(", ")),
    }
}

/// Distinct events per bucket and outcome. Merging the uniqExact states
/// across minutes is exact because each event belongs to one minute.
pub(crate) fn activity_sql(tenants: usize) -> String {
    format!(
        "SELECT toUInt32(intDiv(toUInt32(minute), ?) * ?) AS bucket_s, outcome, \
         uniqExactMerge(events) AS events \
         FROM audit_counts_per_minute \
         WHERE minute >= toDateTime(?, 'UTC') AND minute <= toDateTime(?, 'UTC'){} \
         GROUP BY bucket_s, outcome \
         ORDER BY bucket_s, outcome",
        tenant_condition(tenants)
    )
}

pub(crate) fn failing_actors_sql(tenants: usize) -> String {
    format!(
        "SELECT actor_id, uniqExactMerge(events) AS failures \
         FROM audit_failures_per_minute \
         WHERE minute >= toDateTime(?, 'UTC') AND minute <= toDateTime(?, 'UTC'){} \
         GROUP BY actor_id \
         ORDER BY failures DESC, actor_id \
         LIMIT ?",
        tenant_condition(tenants)
    )
}

/// How many actors the dashboard lists.
const TOP_ACTORS: u32 = 10;

/// The tenants with events, from the list migration 0028's view keeps (not
/// from `audit_events`, whose every row a DISTINCT would read).
pub(crate) const TENANTS_SQL: &str =
    "SELECT DISTINCT tenant_id FROM attest_tenants ORDER BY tenant_id LIMIT 1000";

/// A query as sent, with the names of its `?` placeholders in order.
#[derive(Debug, serde::Serialize)]
pub struct QueryTemplate {
    pub name: String,
    pub sql: String,
    pub params: &'static [&'static str],
}

/// Every read query Attest sends, so they can be checked on any ClickHouse
/// version (`attest sql`, and the modern-ClickHouse check in the tests).
pub fn catalogue() -> Vec<QueryTemplate> {
    let mut all = read_queries();
    all.extend(super::search::templates());
    all.extend(super::saved::templates());
    all.extend(super::retention::templates());
    all.extend(super::keys::templates());
    all.extend(super::access::templates());
    all.extend(super::pipeline::templates());
    all.extend(super::migrations::templates());
    all.extend(super::migration_lock::templates());
    all.push(QueryTemplate {
        name: "read_node_ping".into(),
        sql: super::PING_SQL.into(),
        params: &[],
    });
    all.extend(super::dead_letters::templates());
    all.extend(super::alerts::templates());
    all.extend(super::detections::templates());
    all.extend(super::search::detection_templates());
    all.extend(super::trends::templates());
    all.extend(super::integrity::templates());
    all.extend(super::redaction::templates());
    all.extend(super::procs::templates());
    all
}

fn read_queries() -> Vec<QueryTemplate> {
    const ACTIVITY: &[&str] = &["bucket_s", "bucket_s", "from_s", "to_s"];
    const ACTIVITY_TENANT: &[&str] = &["bucket_s", "bucket_s", "from_s", "to_s", "tenant"];
    const ACTORS: &[&str] = &["from_s", "to_s", "limit"];
    const ACTORS_TENANT: &[&str] = &["from_s", "to_s", "tenant", "limit"];
    vec![
        QueryTemplate {
            name: "activity".into(),
            sql: activity_sql(0),
            params: ACTIVITY,
        },
        QueryTemplate {
            name: "activity_for_tenant".into(),
            sql: activity_sql(1),
            params: ACTIVITY_TENANT,
        },
        QueryTemplate {
            name: "failing_actors".into(),
            sql: failing_actors_sql(0),
            params: ACTORS,
        },
        QueryTemplate {
            name: "failing_actors_for_tenant".into(),
            sql: failing_actors_sql(1),
            params: ACTORS_TENANT,
        },
        QueryTemplate {
            name: "tenants".into(),
            sql: TENANTS_SQL.to_owned(),
            params: &[],
        },
    ]
}

impl Store {
    pub async fn activity(
        &self,
        filter: &EventFilter,
        now_ms: i64,
    ) -> Result<Activity, StoreError> {
        let from_ms = now_ms - filter.range.duration_ms();
        let (from_s, to_s) = (from_ms.div_euclid(1000), now_ms.div_euclid(1000));
        let bucket_s = filter.range.bucket_seconds();
        let tenants = filter.tenants();
        let mut buckets = self
            .client
            .query(&activity_sql(tenants.len()))
            .bind(bucket_s)
            .bind(bucket_s)
            .bind(from_s)
            .bind(to_s);
        let mut actors = self
            .client
            .query(&failing_actors_sql(tenants.len()))
            .bind(from_s)
            .bind(to_s);
        for tenant in &tenants {
            buckets = buckets.bind(tenant);
            actors = actors.bind(tenant);
        }
        Ok(Activity {
            buckets: buckets.fetch_all().await?,
            top_failing_actors: actors.bind(TOP_ACTORS).fetch_all().await?,
            bucket_s,
            from_ms,
            to_ms: now_ms,
        })
    }

    pub async fn tenants(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.client.query(TENANTS_SQL).fetch_all().await?)
    }
}

fn unavailable(error: StoreError) -> ConsoleError {
    error!(%error, "console query failed");
    ConsoleError::Unavailable(error.to_string())
}

#[async_trait::async_trait]
impl EventStore for Store {
    async fn activity(&self, filter: &EventFilter, now_ms: i64) -> Result<Activity, ConsoleError> {
        Store::activity(self, filter, now_ms)
            .await
            .map_err(unavailable)
    }

    async fn tenants(&self) -> Result<Vec<String>, ConsoleError> {
        Store::tenants(self).await.map_err(unavailable)
    }

    async fn search(&self, query: &SearchQuery, now_ms: i64) -> Result<SearchPage, ConsoleError> {
        Store::search(self, query, now_ms).await
    }

    async fn newer_events(
        &self,
        query: &SearchQuery,
        snapshot_ms: i64,
        now_ms: i64,
    ) -> Result<u64, ConsoleError> {
        Store::newer_events(self, query, snapshot_ms, now_ms).await
    }

    async fn facets(&self, query: &SearchQuery, now_ms: i64) -> Result<Facets, ConsoleError> {
        Store::facets(self, query, now_ms).await
    }

    async fn tail(
        &self,
        query: &SearchQuery,
        position: &app::tail::TailPosition,
        delivered: &app::tail::Delivered,
        now_ms: i64,
    ) -> Result<app::tail::TailBatch, ConsoleError> {
        Store::tail(self, query, position, delivered, now_ms).await
    }

    async fn metadata_values(
        &self,
        query: &SearchQuery,
        key: &str,
        now_ms: i64,
    ) -> Result<app::search_model::MetadataValues, ConsoleError> {
        Store::metadata_values(self, query, key, now_ms).await
    }

    /// Unscoped: one tenant, or every tenant.
    async fn recent_metadata_keys(
        &self,
        tenant: Option<&str>,
        now_ms: i64,
    ) -> Result<Vec<app::search_model::MetadataKey>, ConsoleError> {
        let tenants: Vec<String> = tenant.map(str::to_owned).into_iter().collect();
        Store::recent_metadata_keys(self, &tenants, now_ms, std::future::ready(())).await
    }

    async fn time_series(
        &self,
        query: &SearchQuery,
        by: SeriesBy,
        now_ms: i64,
    ) -> Result<TimeSeries, ConsoleError> {
        Store::time_series(self, query, by, now_ms).await
    }

    async fn count_by(
        &self,
        query: &SearchQuery,
        field: app::search_model::CountField,
        now_ms: i64,
    ) -> Result<app::search_model::CountBy, ConsoleError> {
        Store::count_by(self, query, field, now_ms).await
    }

    async fn timeline(
        &self,
        query: &SearchQuery,
        tz: &str,
        now_ms: i64,
    ) -> Result<Timeline, ConsoleError> {
        Store::timeline(self, query, tz, now_ms).await
    }

    async fn top_actors(
        &self,
        query: &SearchQuery,
        now_ms: i64,
    ) -> Result<TopActors, ConsoleError> {
        Store::top_actors(self, query, now_ms).await
    }

    async fn dashboard_panel(
        &self,
        query: &SearchQuery,
        panel: Panel,
        tz: &str,
        now_ms: i64,
    ) -> Result<PanelData, ConsoleError> {
        Store::dashboard_panel(self, query, panel, tz, now_ms).await
    }

    async fn event_detail(
        &self,
        tenant: &str,
        event_id: &str,
        at_ms: Option<i64>,
        content: Option<&str>,
    ) -> Result<Option<EventDetail>, ConsoleError> {
        Store::event_detail(self, tenant, event_id, at_ms, content).await
    }

    // Unscoped, the store has no viewer: saved searches without an owner.
    // The console always reaches these through `ScopedStore`, which names
    // the signed-in grant.
    async fn saved_searches(&self) -> Result<Vec<SavedSearch>, ConsoleError> {
        Store::saved_searches(self, "").await
    }

    async fn save_search(
        &self,
        name: &str,
        params: &SearchParams,
        now_ms: i64,
    ) -> Result<SavedSearch, ConsoleError> {
        Store::save_search(self, "", name, params, now_ms).await
    }

    async fn delete_saved_search(&self, id: &str) -> Result<(), ConsoleError> {
        Store::delete_saved_search(self, "", id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_tenant_adds_exactly_one_bound_value() {
        let without = activity_sql(0);
        let with = activity_sql(1);
        let three = activity_sql(3);
        assert_eq!(with.matches('?').count(), without.matches('?').count() + 1);
        assert_eq!(three.matches('?').count(), without.matches('?').count() + 3);
        assert!(with.contains("tenant_id = ?"));
        assert!(three.contains("tenant_id IN (?, ?, ?)"));
        assert!(!without.contains("tenant_id =") && !without.contains("tenant_id IN"));
    }

    #[test]
    fn catalogue_names_every_placeholder() {
        for q in catalogue() {
            assert_eq!(q.sql.matches('?').count(), q.params.len(), "{}", q.name);
        }
    }
}
