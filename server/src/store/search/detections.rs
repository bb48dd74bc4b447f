//! The counts a detection rule is evaluated on: distinct matching events
//! per group value and minute, over Search's filter (the same compiled
//! query, one tenant, a window up to a snapshot), so a firing's count is
//! what Search finds behind its link.

use app::detections_model::GroupBy;
use app::query::compile_str;
use app::search_state::TimeWindow;
use app::store::StoreError as ConsoleError;

use super::catalogue::REPRESENTATIVE_QUERY;
use super::sql::{Arrival, Filter, Shape, Span, IDENTITY};
use crate::store::{QueryTemplate, Store};

/// Most (value, minute) rows one evaluation reads: a rule grouped by a
/// field with more values than this in its look-back is not a detection.
pub const MAX_COUNT_ROWS: u64 = 100_000;

/// Events without a value (no IP sent) are left out: Search cannot name an
/// empty value, so such a firing would link to nothing.
pub(crate) fn minute_counts_sql(group_by: GroupBy, filter: &str) -> String {
    let column = group_by.column();
    format!(
        "SELECT {column} AS group_value, intDiv(occurred_at, 60000) AS minute_n, \
         uniqExact({IDENTITY}) AS events \
         FROM audit_events {filter} AND {column} != '' \
         GROUP BY group_value, minute_n \
         ORDER BY group_value, minute_n \
         LIMIT ?"
    )
}

/// One row of [`minute_counts_sql`].
#[derive(clickhouse::Row, serde::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct MinuteCount {
    pub group_value: String,
    pub minute_n: i64,
    pub events: u64,
}

static COUNT_PARAMS: [&str; 18] = [
    "q_outcome_1",
    "q_outcome_2",
    "q_actor_type",
    "q_action_regex",
    "q_metadata_key",
    "q_metadata_value",
    "q_text",
    "q_text",
    "q_text",
    "q_text",
    "q_text",
    "from_s",
    "to_s",
    "from_ms",
    "to_ms",
    "snapshot_ms",
    "tenant",
    "limit",
];

pub(crate) fn templates() -> Vec<QueryTemplate> {
    let representative = compile_str(REPRESENTATIVE_QUERY, 0)
        .map(|c| c.sql)
        .unwrap_or_default();
    GroupBy::ALL
        .into_iter()
        .map(|g| QueryTemplate {
            name: format!("detection_counts_by_{}", g.param()),
            sql: minute_counts_sql(
                g,
                &super::sql::where_sql(
                    Shape {
                        tenants: 1,
                        cursor: None,
                        arrival: Arrival::UpToSnapshot,
                    },
                    &representative,
                ),
            ),
            params: &COUNT_PARAMS,
        })
        .collect()
}

impl Store {
    /// Distinct events of `tenant` matching `query`, per value of
    /// `group_by` and epoch minute, that occurred in `from_ms..=to_ms` and
    /// arrived by `snapshot_ms`.
    pub async fn detection_counts(
        &self,
        tenant: &str,
        query: &str,
        group_by: GroupBy,
        window: TimeWindow,
        snapshot_ms: i64,
    ) -> Result<Vec<MinuteCount>, ConsoleError> {
        let compiled = compile_str(query, snapshot_ms).map_err(ConsoleError::BadQuery)?;
        let (from_ms, to_ms) = window.bounds(snapshot_ms);
        let filter = Filter::new(
            &compiled,
            &[tenant.to_owned()],
            Span {
                from_ms,
                to_ms,
                arrival: Arrival::UpToSnapshot,
                snapshot_ms,
            },
            None,
        );
        let sql = minute_counts_sql(group_by, &filter.sql);
        self.search_query(&sql, &filter)
            .bind(MAX_COUNT_ROWS)
            .fetch_all()
            .await
            .map_err(|e| self.search_failed(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_bind_every_value_and_skip_empty_values() {
        for t in templates() {
            assert_eq!(t.sql.matches('?').count(), t.params.len(), "{}", t.name);
        }
        let sql = minute_counts_sql(GroupBy::SourceIp, "WHERE 1");
        assert!(sql.contains("AND actor_ip != ''"), "{sql}");
        assert!(sql.contains("uniqExact(content_hash)"));
    }
}
