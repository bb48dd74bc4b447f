//! The dashboard's panels: the same compiled query, tenants, window and
//! snapshot as Search ([`super::sql::Filter`]), grouped by time bucket or
//! actor instead of paged. Every count is of distinct event identities, as
//! Search counts, so a bar's value is what Search finds behind it.
//!
//! The source is the raw table, not the per-minute rollups: the rollups
//! hold neither the query language's fields (actor type, resource,
//! metadata, free text) nor `received_at`, so they could not answer a
//! narrowed panel, nor equal Search's count. docs/DESIGN.md ("Dashboard")
//! has the measurement.

use app::dashboard_model::{
    failures_query, ActorCount, SeriesBy, SeriesRow, TimeSeries, TopActors,
};
use app::dashboard_model::{Bucket, TOP_ACTORS};
use app::search_model::SearchQuery;
use app::store::StoreError as ConsoleError;

use super::sql::{Filter, IDENTITY};
use super::{bind_all, Plan};
use crate::store::Store;

/// Distinct events per bucket and value of `column`. A bucket starts at
/// `intDiv(t - offset, width) * width + offset`: whole minutes, hours and
/// UTC days, and weeks from Monday (the offset). Integer arithmetic on
/// `occurred_at` runs on 18.16 and current releases alike and puts each
/// event in exactly the bucket [`Bucket::start_of`] names. The bucket's
/// values come first, in text order, then the filter's.
pub(crate) fn series_sql(by: SeriesBy, filter: &str) -> String {
    let column = by.column();
    format!(
        "SELECT toInt64(intDiv(occurred_at - ?, ?) * ? + ?) AS bucket_ms, {column} AS key, \
         uniqExact({IDENTITY}) AS events \
         FROM audit_events {filter} \
         GROUP BY bucket_ms, key \
         ORDER BY bucket_ms, key"
    )
}

/// The actors with the most distinct events, ties by name.
pub(crate) fn top_actors_sql(filter: &str) -> String {
    format!(
        "SELECT actor_id, uniqExact({IDENTITY}) AS events \
         FROM audit_events {filter} \
         GROUP BY actor_id \
         ORDER BY events DESC, actor_id \
         LIMIT ?"
    )
}

impl Store {
    pub async fn time_series(
        &self,
        query: &SearchQuery,
        by: SeriesBy,
        now_ms: i64,
    ) -> Result<TimeSeries, ConsoleError> {
        let plan = Plan::new(query, now_ms)?;
        let span = plan.span();
        let bucket = Bucket::for_window(span.from_ms, span.to_ms);
        let filter = Filter::new(&plan.compiled, &query.tenants(), span, None);
        let sql = self
            .client
            .query(&series_sql(by, &filter.sql))
            .bind(bucket.offset_ms())
            .bind(bucket.width_ms())
            .bind(bucket.width_ms())
            .bind(bucket.offset_ms());
        let sql = self.limits.apply(
            bind_all(sql, &filter.params),
            self.limits.max_execution_seconds,
        );
        let rows: Vec<SeriesRow> = sql.fetch_all().await.map_err(|e| self.search_failed(e))?;
        Ok(TimeSeries::zero_filled(
            by,
            span.from_ms,
            span.to_ms,
            plan.snapshot_ms,
            &rows,
        ))
    }

    pub async fn top_actors(
        &self,
        query: &SearchQuery,
        now_ms: i64,
    ) -> Result<TopActors, ConsoleError> {
        // The analyst's query first, so its errors point into their text.
        let plan = Plan::new(query, now_ms)?;
        let failed = SearchQuery {
            q: failures_query(&query.q),
            ..query.clone()
        };
        let failed_plan = Plan::new(&failed, now_ms)?;
        let span = plan.span();
        let tenants = query.tenants();
        let all = Filter::new(&plan.compiled, &tenants, span, None);
        let failures = Filter::new(&failed_plan.compiled, &tenants, span, None);
        let top = |filter: &Filter| {
            self.search_query(&top_actors_sql(&filter.sql), filter)
                .bind(TOP_ACTORS)
                .fetch_all::<ActorCount>()
        };
        let (by_events, by_failures, total, failed_total) = futures::join!(
            top(&all),
            top(&failures),
            self.count(&all),
            self.count(&failures)
        );
        Ok(TopActors {
            from_ms: span.from_ms,
            to_ms: span.to_ms,
            snapshot_ms: plan.snapshot_ms,
            total: total?,
            failures: failed_total?,
            by_events: by_events.map_err(|e| self.search_failed(e))?,
            by_failures: by_failures.map_err(|e| self.search_failed(e))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::search::sql::{Arrival, Span};
    use app::query::compile_str;

    #[test]
    fn panels_count_identities_over_the_search_filter() {
        let compiled = compile_str("actor:bob").unwrap();
        let span = Span {
            from_ms: 0,
            to_ms: 1,
            arrival: Arrival::UpToSnapshot,
            snapshot_ms: 1,
        };
        let filter = Filter::new(&compiled, &["acme".to_owned()], span, None);
        let series = series_sql(SeriesBy::Outcome, &filter.sql);
        assert!(series.contains("uniqExact(tenant_id, event_id, content_hash) AS events"));
        assert!(series.contains("outcome AS key"));
        assert!(series.contains(&filter.sql));
        // The bucket's four values, then the filter's.
        assert_eq!(series.matches('?').count(), 4 + filter.params.len());
        let top = top_actors_sql(&filter.sql);
        assert!(top.contains("uniqExact(tenant_id, event_id, content_hash) AS events"));
        assert_eq!(top.matches('?').count(), filter.params.len() + 1);
        assert!(top.ends_with("ORDER BY events DESC, actor_id LIMIT ?"));
    }
}
