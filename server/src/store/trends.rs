//! The pipeline's trends in ClickHouse (migration 0018): samples written
//! in one INSERT per round, read back per window in buckets, and removed
//! a UTC day (a partition) at a time once older than the retention. The
//! alert tables' retention (migration 0016's, which has no partitions)
//! lives here too: every statement is in the `attest sql` catalogue.

use app::trends_model::{TrendPoint, TrendSeries};
use clickhouse::Row;
use serde::Deserialize;

use super::{QueryTemplate, Store, StoreError};

pub const SAMPLES_TABLE: &str = "attest_pipeline_samples";
/// A partition of the samples table: one UTC day.
pub const DAY_MS: i64 = 86_400_000;

fn insert_sql(rows: usize) -> String {
    let row = "(?, ?, ?, ?)";
    format!(
        "INSERT INTO {SAMPLES_TABLE} (at_ms, series, value, sampler) VALUES {}",
        vec![row; rows.max(1)].join(", ")
    )
}

/// Per series and bucket, the mean and the highest value, for the series
/// named in the bound array; buckets without samples are absent.
const WINDOW_SQL: &str = "SELECT series, intDiv(at_ms, ?) * ? AS bucket_ms, \
     avg(value) AS mean, max(value) AS max \
     FROM attest_pipeline_samples \
     WHERE at_ms >= ? AND at_ms < ? AND has(?, series) \
     GROUP BY series, bucket_ms ORDER BY series, bucket_ms";

/// The days (partitions) holding samples.
const DAYS_SQL: &str = "SELECT DISTINCT toUInt64(partition) AS day FROM system.parts \
     WHERE database = currentDatabase() AND table = 'attest_pipeline_samples' AND active \
     ORDER BY day";

const DROP_DAY_SQL: &str = "ALTER TABLE attest_pipeline_samples DROP PARTITION ?";

/// Delivery attempts older than the cutoff.
const DELIVERIES_RETENTION_SQL: &str =
    "ALTER TABLE attest_webhook_deliveries DELETE WHERE at_ms < ?";

/// Alerts resolved before the cutoff, both their rows; an alert still
/// firing keeps its row however old (it has no resolved row yet).
const CHANGES_RETENTION_SQL: &str = "ALTER TABLE attest_alert_changes DELETE WHERE alert_id IN \
     (SELECT alert_id FROM attest_alert_changes WHERE state = 'resolved' AND at_ms < ?)";

/// Rule versions saved before the cutoff, except the newest: it is the
/// one in force, however old.
const RULES_RETENTION_SQL: &str = "ALTER TABLE attest_alert_rules DELETE WHERE changed_ms < ? \
     AND changed_ms < (SELECT max(changed_ms) FROM attest_alert_rules)";

/// One sample of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub at_ms: u64,
    pub series: String,
    pub value: f64,
}

#[derive(Debug, Row, Deserialize)]
struct BucketRow {
    series: String,
    bucket_ms: u64,
    mean: f64,
    max: f64,
}

pub(crate) fn templates() -> Vec<QueryTemplate> {
    let t = |name: &str, sql: String, params: &'static [&'static str]| QueryTemplate {
        name: name.into(),
        sql,
        params,
    };
    vec![
        t(
            "trends_insert",
            insert_sql(1),
            &["at_ms", "series", "value", "sampler"],
        ),
        t(
            "trends_window",
            WINDOW_SQL.into(),
            &["bucket_ms", "bucket_ms", "from_ms", "to_ms", "series_list"],
        ),
        t("trends_days", DAYS_SQL.into(), &[]),
        t("trends_retention_drop_day", DROP_DAY_SQL.into(), &["day"]),
        t(
            "alert_retention_deliveries",
            DELIVERIES_RETENTION_SQL.into(),
            &["before_ms"],
        ),
        t(
            "alert_retention_changes",
            CHANGES_RETENTION_SQL.into(),
            &["before_ms"],
        ),
        t(
            "alert_retention_rules",
            RULES_RETENTION_SQL.into(),
            &["before_ms"],
        ),
    ]
}

/// The days wholly before `cutoff_ms`, among `days`: a day is dropped only
/// once all of it is older than the retention, so nothing younger goes.
pub fn days_to_drop(days: &[u64], cutoff_ms: i64) -> Vec<u64> {
    let first_kept = cutoff_ms.div_euclid(DAY_MS);
    days.iter()
        .copied()
        .filter(|day| i64::try_from(*day).is_ok_and(|d| d < first_kept))
        .collect()
}

/// Rows of the window query grouped per series, in the query's order.
fn group(rows: Vec<BucketRow>) -> Vec<TrendSeries> {
    let mut out: Vec<TrendSeries> = Vec::new();
    for row in rows {
        let point = TrendPoint {
            at_ms: i64::try_from(row.bucket_ms).unwrap_or(i64::MAX),
            mean: row.mean,
            max: row.max,
        };
        match out.last_mut() {
            Some(last) if last.series == row.series => last.points.push(point),
            _ => out.push(TrendSeries {
                series: row.series,
                points: vec![point],
            }),
        }
    }
    out
}

impl Store {
    /// Writes one round of samples in one INSERT, on the writer's node.
    pub async fn insert_samples(
        &self,
        samples: &[Sample],
        sampler: &str,
    ) -> Result<(), StoreError> {
        if samples.is_empty() {
            return Ok(());
        }
        let mut query = self.primary.query(&insert_sql(samples.len()));
        for s in samples {
            query = query
                .bind(s.at_ms)
                .bind(s.series.as_str())
                .bind(s.value)
                .bind(sampler);
        }
        query.execute().await?;
        Ok(())
    }

    /// `series` between `from_ms` and `to_ms`, in buckets of `bucket_ms`.
    pub async fn trend_window(
        &self,
        series: &[String],
        from_ms: i64,
        to_ms: i64,
        bucket_ms: i64,
    ) -> Result<Vec<TrendSeries>, StoreError> {
        let clamp = |v: i64| u64::try_from(v).unwrap_or(0);
        let rows: Vec<BucketRow> = self
            .client
            .query(WINDOW_SQL)
            .bind(clamp(bucket_ms).max(1))
            .bind(clamp(bucket_ms).max(1))
            .bind(clamp(from_ms))
            .bind(clamp(to_ms))
            .bind(series)
            .fetch_all()
            .await?;
        Ok(group(rows))
    }

    /// Drops the days of samples wholly older than `cutoff_ms`; returns them.
    pub async fn drop_samples_before(&self, cutoff_ms: i64) -> Result<Vec<u64>, StoreError> {
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

    /// Removes delivery attempts, resolved alerts and superseded rule
    /// versions older than `cutoff_ms` (mutations: ClickHouse finishes them
    /// in the background, across a restart too).
    pub async fn remove_alert_history_before(&self, cutoff_ms: i64) -> Result<(), StoreError> {
        let cutoff = u64::try_from(cutoff_ms).unwrap_or(0);
        for sql in [
            DELIVERIES_RETENTION_SQL,
            CHANGES_RETENTION_SQL,
            RULES_RETENTION_SQL,
        ] {
            self.primary.query(sql).bind(cutoff).execute().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_insert_holds_every_sample() {
        assert_eq!(insert_sql(1).matches('?').count(), 4);
        assert_eq!(insert_sql(3).matches('?').count(), 12);
        assert_eq!(insert_sql(0), insert_sql(1));
    }

    #[test]
    fn only_days_wholly_before_the_cutoff_go() {
        let day = |d: u64| d;
        // Cutoff in the middle of day 20: day 20 stays (part of it is young).
        let cutoff = 20 * DAY_MS + 3_600_000;
        assert_eq!(
            days_to_drop(&[day(18), day(19), day(20), day(21)], cutoff),
            [18, 19]
        );
        assert_eq!(days_to_drop(&[20], 20 * DAY_MS), Vec::<u64>::new());
        assert_eq!(days_to_drop(&[19], 20 * DAY_MS), [19]);
        assert_eq!(days_to_drop(&[u64::MAX], i64::MAX), Vec::<u64>::new());
        assert!(
            days_to_drop(&[1, 2], -5).is_empty(),
            "a cutoff before 1970 drops nothing"
        );
    }

    #[test]
    fn rows_group_per_series_in_order() {
        let row = |s: &str, at: u64| BucketRow {
            series: s.into(),
            bucket_ms: at,
            mean: 1.0,
            max: 2.0,
        };
        let grouped = group(vec![row("a", 0), row("a", 10), row("b", 0)]);
        assert_eq!(grouped.len(), 2);
        assert_eq!(grouped[0].points.len(), 2);
        assert_eq!(grouped[1].series, "b");
    }
}
