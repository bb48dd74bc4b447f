//! The pipeline's trends: the page's figures sampled every
//! `trends.sample_every` into `attest_pipeline_samples` (one row per
//! series and sample), read back per window in buckets, drawn as lines.
//! The series names are the contract between the sampler
//! (`server/src/trends`) and the charts here: both use these constants.

use serde::{Deserialize, Serialize};

/// Writer lag in time over every events topic (seconds; the oldest
/// waiting event's age).
pub const LAG_S: &str = "lag_s";
/// Messages not yet written, over every events topic.
pub const LAG_MESSAGES: &str = "lag_messages";
/// Per topic: `lag_s:<topic>` and `lag_messages:<topic>`.
pub fn lag_s_of(topic: &str) -> String {
    format!("{LAG_S}:{topic}")
}
pub fn lag_messages_of(topic: &str) -> String {
    format!("{LAG_MESSAGES}:{topic}")
}
/// Messages produced to the events topics per second, by every ingest
/// process (the growth of their end offsets).
pub const PRODUCED_PER_S: &str = "produced_per_s";
/// Messages the writer group committed per second, by every writer (the
/// growth of its committed offsets).
pub const WRITTEN_PER_S: &str = "written_per_s";
/// The sampling process's own ingest and writer (its counters).
pub const ACCEPTED_PER_MIN: &str = "accepted_per_min";
pub const REJECTED_PER_MIN: &str = "rejected_per_min";
pub const BUSY_PER_MIN: &str = "busy_per_min";
pub const UNAVAILABLE_PER_MIN: &str = "unavailable_per_min";
pub const INGEST_P50_MS: &str = "ingest_p50_ms";
pub const INGEST_P99_MS: &str = "ingest_p99_ms";
pub const WRITER_ROWS_PER_S: &str = "writer_rows_per_s";
pub const INSERT_P50_MS: &str = "insert_p50_ms";
pub const INSERT_P99_MS: &str = "insert_p99_ms";
pub const SPOOL_EVENTS: &str = "spool_events";
pub const SPOOL_OLDEST_S: &str = "spool_oldest_s";
/// Per ClickHouse node: 1 up, 0 down; and its read-latency probe.
pub fn node_up_of(node: &str) -> String {
    format!("node_up:{node}")
}
pub fn node_read_ms_of(node: &str) -> String {
    format!("node_read_ms:{node}")
}

/// The spans the page charts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrendWindow {
    #[default]
    Hour,
    Day,
    Week,
}

impl TrendWindow {
    pub const ALL: [TrendWindow; 3] = [TrendWindow::Hour, TrendWindow::Day, TrendWindow::Week];

    pub fn span_ms(self) -> i64 {
        match self {
            TrendWindow::Hour => 3_600_000,
            TrendWindow::Day => 86_400_000,
            TrendWindow::Week => 7 * 86_400_000,
        }
    }

    /// One point per bucket: a few hundred points per chart whatever the
    /// span (360 for the hour at the default 10 s sampling, 288 for the
    /// day, 336 for the week), never finer than the sampling itself.
    pub fn bucket_ms(self, sample_every_ms: i64) -> i64 {
        let base = match self {
            TrendWindow::Hour => 10_000,
            TrendWindow::Day => 300_000,
            TrendWindow::Week => 1_800_000,
        };
        base.max(sample_every_ms).max(1)
    }

    /// `1h`, `24h`, `7d`: in the page's query string and on its buttons.
    pub fn code(self) -> &'static str {
        match self {
            TrendWindow::Hour => "1h",
            TrendWindow::Day => "24h",
            TrendWindow::Week => "7d",
        }
    }

    pub fn parse(code: &str) -> Option<TrendWindow> {
        TrendWindow::ALL.into_iter().find(|w| w.code() == code)
    }
}

/// One series over a window: `(bucket start, mean, max)` per bucket with
/// samples; buckets without any are absent (a gap in the line).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrendSeries {
    pub series: String,
    pub points: Vec<TrendPoint>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrendPoint {
    pub at_ms: i64,
    pub mean: f64,
    pub max: f64,
}

/// What the page charts for one window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Trends {
    pub window: TrendWindow,
    pub from_ms: i64,
    pub to_ms: i64,
    pub bucket_ms: i64,
    /// `trends.sample_every`, for the page to say.
    pub sample_every_ms: i64,
    pub series: Vec<TrendSeries>,
}

impl Trends {
    pub fn series(&self, name: &str) -> Option<&TrendSeries> {
        self.series.iter().find(|s| s.series == name)
    }
}

/// Which bucket a sample's time falls in (its start).
pub fn bucket_of(at_ms: i64, bucket_ms: i64) -> i64 {
    if bucket_ms <= 0 {
        return at_ms;
    }
    at_ms.div_euclid(bucket_ms) * bucket_ms
}

/// The sample time for `now`: the start of its sampling interval, so every
/// sampler (one at a time, but another after a hand-over) stamps the same
/// instants and a series has at most one point per interval.
pub fn sample_time(now_ms: i64, sample_every_ms: i64) -> i64 {
    bucket_of(now_ms, sample_every_ms)
}

/// How a chart reduces a bucket: the worst value for figures where a peak
/// matters (lag, latency, spool depth), the mean for rates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    Max,
    Mean,
}

/// A chart of the page: which series, labelled how, reduced how.
pub struct TrendChart {
    pub id: &'static str,
    pub title: &'static str,
    pub unit: &'static str,
    pub reduce: Reduce,
    pub lines: &'static [(&'static str, &'static str)],
}

/// The page's trend charts, in order.
pub const TREND_CHARTS: &[TrendChart] = &[
    TrendChart {
        id: "trend-lag-time",
        title: "Writer lag in time",
        unit: "seconds",
        reduce: Reduce::Max,
        lines: &[(LAG_S, "oldest waiting event")],
    },
    TrendChart {
        id: "trend-rates",
        title: "Ingest rate vs write rate",
        unit: "events per second",
        reduce: Reduce::Mean,
        lines: &[
            (PRODUCED_PER_S, "produced to Kafka"),
            (WRITTEN_PER_S, "written by the writer group"),
        ],
    },
    TrendChart {
        id: "trend-lag-messages",
        title: "Writer lag in messages",
        unit: "messages",
        reduce: Reduce::Max,
        lines: &[(LAG_MESSAGES, "messages behind")],
    },
    TrendChart {
        id: "trend-latency",
        title: "Latency (sampling process)",
        unit: "milliseconds",
        reduce: Reduce::Max,
        lines: &[(INGEST_P99_MS, "ingest p99"), (INSERT_P99_MS, "insert p99")],
    },
    TrendChart {
        id: "trend-spool",
        title: "Spool depth (sampling process)",
        unit: "events",
        reduce: Reduce::Max,
        lines: &[(SPOOL_EVENTS, "events in the spool")],
    },
];

/// Every series the charts draw: what the page asks the store for.
pub fn charted_series() -> Vec<String> {
    TREND_CHARTS
        .iter()
        .flat_map(|c| c.lines.iter().map(|(s, _)| (*s).to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_have_a_few_hundred_points() {
        for w in TrendWindow::ALL {
            let points = w.span_ms() / w.bucket_ms(10_000);
            assert!((250..=400).contains(&points), "{w:?}: {points}");
            assert_eq!(TrendWindow::parse(w.code()), Some(w));
        }
        assert_eq!(TrendWindow::parse("2h"), None);
        // Never finer than the sampling.
        assert_eq!(TrendWindow::Hour.bucket_ms(60_000), 60_000);
    }

    #[test]
    fn samples_and_buckets_start_on_their_interval() {
        assert_eq!(sample_time(12_345, 10_000), 10_000);
        assert_eq!(sample_time(20_000, 10_000), 20_000);
        assert_eq!(bucket_of(-1, 10), -10, "before 1970 still floors");
        assert_eq!(bucket_of(77, 0), 77);
    }

    #[test]
    fn charts_name_known_series_once() {
        let all = charted_series();
        let mut unique = all.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), all.len());
        assert!(all.contains(&LAG_S.to_owned()));
        assert_eq!(lag_s_of("t"), "lag_s:t");
    }
}
