//! Types that cross the wire between the server and the browser.

use serde::{Deserialize, Serialize};

/// The relative time windows the console offers; every query is bounded by
/// one so ClickHouse only reads the month partitions it needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeRange {
    Last15Minutes,
    LastHour,
    #[default]
    Last24Hours,
    Last7Days,
    Last30Days,
    Last90Days,
    LastYear,
}

impl TimeRange {
    pub const ALL: [TimeRange; 7] = [
        TimeRange::Last15Minutes,
        TimeRange::LastHour,
        TimeRange::Last24Hours,
        TimeRange::Last7Days,
        TimeRange::Last30Days,
        TimeRange::Last90Days,
        TimeRange::LastYear,
    ];

    /// The value used in URLs (`?range=24h`).
    pub fn param(self) -> &'static str {
        match self {
            TimeRange::Last15Minutes => "15m",
            TimeRange::LastHour => "1h",
            TimeRange::Last24Hours => "24h",
            TimeRange::Last7Days => "7d",
            TimeRange::Last30Days => "30d",
            TimeRange::Last90Days => "90d",
            TimeRange::LastYear => "1y",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            TimeRange::Last15Minutes => "Last 15 minutes",
            TimeRange::LastHour => "Last hour",
            TimeRange::Last24Hours => "Last 24 hours",
            TimeRange::Last7Days => "Last 7 days",
            TimeRange::Last30Days => "Last 30 days",
            TimeRange::Last90Days => "Last 90 days",
            TimeRange::LastYear => "Last year",
        }
    }

    /// Unknown values fall back to the default rather than failing the page:
    /// a stale bookmark should still open.
    pub fn from_param(value: &str) -> TimeRange {
        TimeRange::ALL
            .into_iter()
            .find(|r| r.param() == value)
            .unwrap_or_default()
    }

    pub fn duration_ms(self) -> i64 {
        const MINUTE: i64 = 60_000;
        const HOUR: i64 = 60 * MINUTE;
        const DAY: i64 = 24 * HOUR;
        match self {
            TimeRange::Last15Minutes => 15 * MINUTE,
            TimeRange::LastHour => HOUR,
            TimeRange::Last24Hours => DAY,
            TimeRange::Last7Days => 7 * DAY,
            TimeRange::Last30Days => 30 * DAY,
            TimeRange::Last90Days => 90 * DAY,
            TimeRange::LastYear => 365 * DAY,
        }
    }

    /// Width of one bar on the activity chart: between about 50 and 170
    /// bars whatever the range, so the chart stays readable and the rollup
    /// query returns little.
    pub fn bucket_seconds(self) -> u32 {
        match self {
            TimeRange::Last15Minutes | TimeRange::LastHour => 60,
            TimeRange::Last24Hours => 15 * 60,
            TimeRange::Last7Days => 3600,
            TimeRange::Last30Days => 6 * 3600,
            TimeRange::Last90Days => 24 * 3600,
            TimeRange::LastYear => 7 * 24 * 3600,
        }
    }
}

/// What the events list asks the store for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventFilter {
    /// `None` means every tenant (of `within`, when that is not empty).
    pub tenant: Option<String>,
    pub range: TimeRange,
    pub limit: u32,
    /// Without a `tenant`, only these tenants. Set by the server from the
    /// signed-in viewer; never read from a request.
    #[serde(skip)]
    pub within: Vec<String>,
}

impl EventFilter {
    /// The tenants the filter covers; empty means every tenant.
    pub fn tenants(&self) -> Vec<String> {
        tenants_of(&self.tenant, &self.within)
    }
}

/// `tenant` if there is one, else `within` (empty: every tenant).
pub(crate) fn tenants_of(tenant: &Option<String>, within: &[String]) -> Vec<String> {
    match tenant {
        Some(tenant) => vec![tenant.clone()],
        None => within.to_vec(),
    }
}

/// Distinct events in one time bucket with one outcome, from the rollups.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(clickhouse::Row))]
pub struct ActivityBucket {
    /// Start of the bucket, epoch seconds UTC.
    pub bucket_s: u32,
    pub outcome: String,
    pub events: u64,
}

/// Failed or denied attempts by one actor over the window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(clickhouse::Row))]
pub struct ActorFailures {
    pub actor_id: String,
    pub failures: u64,
}

/// The dashboard's answer: activity over time and who fails most.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    pub buckets: Vec<ActivityBucket>,
    pub top_failing_actors: Vec<ActorFailures>,
    pub bucket_s: u32,
    pub from_ms: i64,
    pub to_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_range_params_round_trip() {
        for range in TimeRange::ALL {
            assert_eq!(TimeRange::from_param(range.param()), range);
        }
    }

    #[test]
    fn unknown_range_falls_back_to_default() {
        assert_eq!(TimeRange::from_param("2w"), TimeRange::Last24Hours);
    }

    #[test]
    fn every_range_has_a_readable_number_of_buckets() {
        for range in TimeRange::ALL {
            let bars = range.duration_ms() / 1000 / i64::from(range.bucket_seconds());
            assert!((15..=170).contains(&bars), "{range:?}: {bars}");
        }
    }

    #[test]
    fn ranges_grow() {
        let durations: Vec<i64> = TimeRange::ALL.iter().map(|r| r.duration_ms()).collect();
        assert!(durations.windows(2).all(|w| w[0] < w[1]));
    }
}
