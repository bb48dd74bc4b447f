//! What the Dashboard page asks the store and what comes back: time
//! buckets, zero-filled series and top-N lists, and the Search link behind
//! every bar. Pure, so it runs on the server and in the browser alike.

use serde::{Deserialize, Serialize};

use crate::query::{and_term, Precision, Timestamp};
use crate::search_state::SearchParams;
use crate::timefmt::Zone;

mod panels;
pub use panels::*;

/// Bars one time chart draws at most; the bucket grows until the window
/// fits (a year in weeks is 53).
pub const MAX_BUCKETS: i64 = 200;
/// Actors one top-N list shows.
pub const TOP_ACTORS: u32 = 10;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;
const WEEK_MS: i64 = 7 * DAY_MS;
/// 1970-01-05, the first Monday after the epoch: weeks start on Monday
/// (ISO 8601), and the epoch was a Thursday.
const FIRST_MONDAY_MS: i64 = 4 * DAY_MS;

/// The width of one bar on a time chart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Bucket {
    Minute,
    Hour,
    Day,
    Week,
}

impl Bucket {
    pub const ALL: [Bucket; 4] = [Bucket::Minute, Bucket::Hour, Bucket::Day, Bucket::Week];

    pub fn width_ms(self) -> i64 {
        match self {
            Bucket::Minute => MINUTE_MS,
            Bucket::Hour => HOUR_MS,
            Bucket::Day => DAY_MS,
            Bucket::Week => WEEK_MS,
        }
    }

    /// Where bucket boundaries fall relative to the epoch: UTC midnights,
    /// and Mondays for weeks.
    pub fn offset_ms(self) -> i64 {
        match self {
            Bucket::Week => FIRST_MONDAY_MS,
            _ => 0,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Bucket::Minute => "minute",
            Bucket::Hour => "hour",
            Bucket::Day => "day",
            Bucket::Week => "week",
        }
    }

    /// The smallest bucket that draws the window in at most
    /// [`MAX_BUCKETS`] bars: minute → hour → day → week.
    pub fn for_window(from_ms: i64, to_ms: i64) -> Bucket {
        let span = to_ms.saturating_sub(from_ms).max(0);
        Bucket::ALL
            .into_iter()
            .find(|b| span / b.width_ms() < MAX_BUCKETS)
            .unwrap_or(Bucket::Week)
    }

    /// The start of the bucket holding `ms`.
    pub fn start_of(self, ms: i64) -> i64 {
        let (width, offset) = (self.width_ms(), self.offset_ms());
        ms.saturating_sub(offset)
            .div_euclid(width)
            .saturating_mul(width)
            .saturating_add(offset)
    }

    /// Every bucket start from the one holding `from_ms` to the one
    /// holding `to_ms`, so empty buckets are drawn as zero rather than
    /// skipped. Bounded by [`MAX_BUCKETS`] + 1 whatever the input.
    pub fn starts(self, from_ms: i64, to_ms: i64) -> Vec<i64> {
        let mut out = Vec::new();
        let mut at = self.start_of(from_ms);
        while at <= to_ms && out.len() <= MAX_BUCKETS as usize {
            out.push(at);
            match at.checked_add(self.width_ms()) {
                Some(next) => at = next,
                None => break,
            }
        }
        out
    }

    /// Short axis text for a bucket start (UTC).
    pub fn axis_label(self, start_ms: i64) -> String {
        let text = Timestamp {
            ms: start_ms,
            precision: Precision::Minute,
        }
        .to_string();
        match self {
            // "2026-03-01T12:30" → "12:30"
            Bucket::Minute | Bucket::Hour => text.get(11..16).unwrap_or(&text).to_string(),
            // "2026-03-01" → "03-01"
            Bucket::Day | Bucket::Week => text.get(5..10).unwrap_or(&text).to_string(),
        }
    }

    /// Short axis text for a bucket start shown in `zone`. Buckets are UTC
    /// instants (the SQL buckets them so); a minute or hour bucket is one
    /// local minute or hour in every zone whose offset is whole quarter
    /// hours, so it is labelled with its local start: on a spring-forward
    /// day the labels skip the missing hour, on an autumn day one repeats
    /// (the tooltips' abbreviations tell the two apart). Days and weeks
    /// are UTC days, so they keep their UTC dates.
    pub fn axis_label_in(self, start_ms: i64, zone: &Zone) -> String {
        match self {
            Bucket::Minute | Bucket::Hour => zone.hour_minute(start_ms),
            Bucket::Day | Bucket::Week => self.axis_label(start_ms),
        }
    }

    /// What the x axis says about where its times are.
    pub fn axis_zone(self, zone: &Zone) -> String {
        match self {
            _ if zone.is_utc() => "UTC".to_string(),
            Bucket::Minute | Bucket::Hour => zone.name.clone(),
            Bucket::Day | Bucket::Week => format!("UTC days; hover for {} times", zone.name),
        }
    }
}

/// A bucket's span in `zone` for a tooltip: "2026-03-29 03:00 CEST to
/// 04:00 CEST", or with dates on both ends when it crosses a day.
pub fn bucket_span_text(zone: &Zone, from_ms: i64, to_ms: i64) -> String {
    let (from, to) = (zone.stamp(from_ms), zone.stamp(to_ms.saturating_add(1)));
    let trim = |stamp: &str| {
        // "YYYY-MM-DD HH:MM:SS.mmm ABBR" → "YYYY-MM-DD HH:MM ABBR"
        match (stamp.get(..16), stamp.get(23..)) {
            (Some(head), Some(tail)) => format!("{head}{tail}"),
            _ => stamp.to_string(),
        }
    };
    let (from, to) = (trim(&from), trim(&to));
    match (from.get(..10), to.get(..10)) {
        (Some(a), Some(b)) if a == b => format!("{from} to {}", to.get(11..).unwrap_or(&to)),
        _ => format!("{from} to {to}"),
    }
}

/// What a time chart stacks by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeriesBy {
    Category,
    Outcome,
}

impl SeriesBy {
    /// The `audit_events` column.
    pub fn column(self) -> &'static str {
        match self {
            SeriesBy::Category => "category",
            SeriesBy::Outcome => "outcome",
        }
    }

    /// The query-language field a bar's link adds.
    pub fn query_field(self) -> &'static str {
        self.column()
    }

    /// Every value, in legend order: the contract's enums, so each one
    /// keeps its colour and place whatever the data holds.
    pub fn keys(self) -> &'static [&'static str] {
        match self {
            SeriesBy::Category => crate::query::CATEGORIES,
            SeriesBy::Outcome => crate::query::OUTCOMES,
        }
    }

    pub fn param(self) -> &'static str {
        self.column()
    }

    pub fn from_param(value: &str) -> Option<SeriesBy> {
        [SeriesBy::Category, SeriesBy::Outcome]
            .into_iter()
            .find(|s| s.param() == value)
    }
}

/// One row of a series query: distinct events in one bucket with one key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(clickhouse::Row))]
pub struct SeriesRow {
    pub bucket_ms: i64,
    pub key: String,
    pub events: u64,
}

/// Distinct events per bucket and key over a window, every bucket present.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeSeries {
    pub by: SeriesBy,
    pub bucket: Bucket,
    /// The window, inclusive, epoch ms; the first and last buckets may be
    /// cut by it.
    pub from_ms: i64,
    pub to_ms: i64,
    /// Events received after this moment are not counted, as in Search.
    pub snapshot_ms: i64,
    /// Legend order.
    pub keys: Vec<String>,
    /// Bucket starts, oldest first.
    pub starts: Vec<i64>,
    /// `counts[k][b]`: events of `keys[k]` in bucket `starts[b]`.
    pub counts: Vec<Vec<u64>>,
}

impl TimeSeries {
    /// Spreads query rows over every bucket of the window, zero where a
    /// bucket had no row. Keys outside the contract's (none today) are
    /// appended so no event goes uncounted.
    pub fn zero_filled(
        by: SeriesBy,
        from_ms: i64,
        to_ms: i64,
        snapshot_ms: i64,
        rows: &[SeriesRow],
    ) -> TimeSeries {
        let bucket = Bucket::for_window(from_ms, to_ms);
        let starts = bucket.starts(from_ms, to_ms);
        let mut keys: Vec<String> = by.keys().iter().map(|k| k.to_string()).collect();
        for row in rows {
            if !keys.contains(&row.key) {
                keys.push(row.key.clone());
            }
        }
        let mut counts = vec![vec![0u64; starts.len()]; keys.len()];
        for row in rows {
            let k = keys.iter().position(|key| *key == row.key);
            let b = starts.binary_search(&row.bucket_ms).ok();
            if let (Some(k), Some(b)) = (k, b) {
                counts[k][b] = counts[k][b].saturating_add(row.events);
            }
        }
        TimeSeries {
            by,
            bucket,
            from_ms,
            to_ms,
            snapshot_ms,
            keys,
            starts,
            counts,
        }
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    pub fn total_of(&self, key: &str) -> u64 {
        self.keys
            .iter()
            .position(|k| k == key)
            .map_or(0, |k| self.counts[k].iter().sum())
    }

    /// Failed and denied events over all events; `None` with no events.
    pub fn failure_ratio(&self) -> Option<f64> {
        let total = self.total();
        (total > 0).then(|| {
            let failed = self.total_of("failure") + self.total_of("denied");
            failed as f64 / total as f64
        })
    }

    /// The window of bucket `b`, cut to the chart's window, inclusive.
    pub fn bucket_window(&self, b: usize) -> (i64, i64) {
        let start = self.starts.get(b).copied().unwrap_or(self.from_ms);
        let end = start.saturating_add(self.bucket.width_ms() - 1);
        (start.max(self.from_ms), end.min(self.to_ms))
    }
}

/// Distinct events per actor, most first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(clickhouse::Row))]
pub struct ActorCount {
    pub actor_id: String,
    pub events: u64,
}

/// Panels 1, 2 and 8 from one reading of the window's events: they read
/// the same events (none narrows the query) and group them by time alone,
/// so one grouping by slot, category and outcome serves all three
/// (docs/DESIGN.md, "One scan for the three time panels").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    pub categories: TimeSeries,
    pub outcomes: TimeSeries,
    pub heat: HeatMap,
}

/// Distinct events of one slot (see [`Timeline::slot_ms`]), category and
/// outcome: a row of the timeline's query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(clickhouse::Row))]
pub struct SlotRow {
    pub slot_ms: i64,
    pub category: String,
    pub outcome: String,
    pub events: u64,
}

impl Timeline {
    /// The width the query groups by for a window with `bucket`: the
    /// bucket's own when shorter than a quarter hour (minutes), else a
    /// quarter hour. Slots start at multiples of it from the epoch, and
    /// every bucket (whole minutes, hours, UTC days, weeks from a Monday)
    /// and every UTC quarter hour is a whole number of slots, so each slot
    /// lies in one bucket and in one quarter hour.
    pub fn slot_ms(bucket: Bucket) -> i64 {
        bucket.width_ms().min(QUARTER_MS)
    }

    /// The three panels from the query's rows. Adding a slot's counts into
    /// its bucket, key by key, or into its quarter hour is exact: an
    /// event's identity covers its time, category and outcome, so it is
    /// counted in one row only. `slots` are the heatmap's local stretches
    /// of the window ([`HeatMap::slots`]) in `zone`.
    pub fn assemble(
        from_ms: i64,
        to_ms: i64,
        snapshot_ms: i64,
        zone: &str,
        slots: &[Slot],
        rows: &[SlotRow],
    ) -> Timeline {
        let bucket = Bucket::for_window(from_ms, to_ms);
        let series = |by: SeriesBy| {
            let rows: Vec<SeriesRow> = rows
                .iter()
                .map(|r| SeriesRow {
                    bucket_ms: bucket.start_of(r.slot_ms),
                    key: match by {
                        SeriesBy::Category => r.category.clone(),
                        SeriesBy::Outcome => r.outcome.clone(),
                    },
                    events: r.events,
                })
                .collect();
            TimeSeries::zero_filled(by, from_ms, to_ms, snapshot_ms, &rows)
        };
        let quarters: Vec<(i64, u64)> = rows
            .iter()
            .map(|r| {
                let quarter = r.slot_ms.div_euclid(QUARTER_MS).saturating_mul(QUARTER_MS);
                (quarter, r.events)
            })
            .collect();
        Timeline {
            categories: series(SeriesBy::Category),
            outcomes: series(SeriesBy::Outcome),
            heat: HeatMap::assemble(from_ms, to_ms, snapshot_ms, zone, slots, &quarters),
        }
    }
}

/// The actors with the most events and the most failed or denied ones.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopActors {
    pub from_ms: i64,
    pub to_ms: i64,
    pub snapshot_ms: i64,
    /// Every matching event, and every failed or denied one.
    pub total: u64,
    pub failures: u64,
    pub by_events: Vec<ActorCount>,
    pub by_failures: Vec<ActorCount>,
}

/// Failed and denied events, in the query language: what the failure
/// panels and their Search links add to the analyst's query.
pub const FAILED_OUTCOMES: &str = "(outcome:failure OR outcome:denied)";

/// The query that narrows `q` to failed and denied events, in the query
/// language, so the panel and its Search link run the same text.
pub fn failures_query(q: &str) -> String {
    const FAILED: &str = FAILED_OUTCOMES;
    match q.trim() {
        "" => FAILED.to_string(),
        // Without parentheses the outcomes would bind to the last OR branch
        // only; a query that does not parse keeps its own error.
        q => match crate::query::parse(q) {
            Ok(parsed) if !matches!(parsed.expr, Some(crate::query::Expr::Or(_))) => {
                format!("{q} {FAILED}")
            }
            _ => format!("({q}) {FAILED}"),
        },
    }
}

/// Search over exactly `from_ms..=to_ms` with `q`, over the dashboard's
/// tenant. The bounds are written to the millisecond, and Search's `to`
/// includes its whole last millisecond, so the window is the same.
pub fn search_href(params: &SearchParams, q: &str, from_ms: i64, to_ms: i64) -> String {
    let at = |ms| {
        Timestamp {
            ms,
            precision: Precision::Millis,
        }
        .to_string()
    };
    // Search's defaults (its columns among them) for everything else.
    SearchParams {
        q: q.to_string(),
        tenant: params.tenant.clone(),
        from: Some(at(from_ms)),
        to: Some(at(to_ms)),
        // The link opens Search in the zone the chart is shown in.
        tz: params.tz.clone(),
        ..SearchParams::from_lookup(|_| None)
    }
    .href()
}

/// The Search link behind one bar of a time series.
pub fn series_href(params: &SearchParams, series: &TimeSeries, key: &str, b: usize) -> String {
    let (from, to) = series.bucket_window(b);
    let q = and_term(&params.q, series.by.query_field(), key, false);
    search_href(params, &q, from, to)
}

/// The Search link behind one actor's bar.
pub fn actor_href(params: &SearchParams, top: &TopActors, actor: &str, failures: bool) -> String {
    let with_actor = and_term(&params.q, "actor", actor, false);
    let q = if failures {
        failures_query(&with_actor)
    } else {
        with_actor
    };
    search_href(params, &q, top.from_ms, top.to_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TimeRange;

    const DAY: i64 = 1_772_323_200_000; // 2026-03-01T00:00Z, a Sunday

    #[test]
    fn buckets_follow_the_range() {
        let bucket = |r: TimeRange| Bucket::for_window(DAY - r.duration_ms(), DAY);
        assert_eq!(bucket(TimeRange::LastHour), Bucket::Minute);
        assert_eq!(bucket(TimeRange::Last24Hours), Bucket::Hour);
        assert_eq!(bucket(TimeRange::Last7Days), Bucket::Hour);
        assert_eq!(bucket(TimeRange::Last30Days), Bucket::Day);
        assert_eq!(bucket(TimeRange::Last90Days), Bucket::Day);
        assert_eq!(bucket(TimeRange::LastYear), Bucket::Week);
        for range in TimeRange::ALL {
            let b = bucket(range);
            let n = b.starts(DAY - range.duration_ms(), DAY).len() as i64;
            assert!((2..=MAX_BUCKETS + 1).contains(&n), "{range:?}: {n}");
        }
        // Nonsense windows still give a bounded answer.
        assert_eq!(Bucket::for_window(5, 1), Bucket::Minute);
        assert!(Bucket::Week.starts(i64::MIN, i64::MAX).len() <= MAX_BUCKETS as usize + 1);
    }

    #[test]
    fn weeks_start_on_monday_and_days_at_utc_midnight() {
        // 2026-03-01 is a Sunday: its week began Monday 2026-02-23.
        assert_eq!(Bucket::Week.start_of(DAY), DAY - 6 * DAY_MS);
        assert_eq!(Bucket::Week.start_of(DAY + DAY_MS), DAY + DAY_MS);
        assert_eq!(Bucket::Day.start_of(DAY + 5), DAY);
        assert_eq!(Bucket::Hour.start_of(DAY - 1), DAY - HOUR_MS);
        assert_eq!(Bucket::Hour.axis_label(DAY + 13 * HOUR_MS), "13:00");
        assert_eq!(Bucket::Day.axis_label(DAY), "03-01");
    }

    #[test]
    fn empty_buckets_are_zero_not_skipped() {
        let from = DAY + 30 * MINUTE_MS;
        let to = DAY + 2 * HOUR_MS;
        let rows = [
            SeriesRow {
                bucket_ms: DAY,
                key: "admin".into(),
                events: 3,
            },
            SeriesRow {
                bucket_ms: DAY + 3 * HOUR_MS,
                key: "authentication".into(),
                events: 5,
            },
            SeriesRow {
                bucket_ms: DAY + 3 * HOUR_MS,
                key: "admin".into(),
                events: 1,
            },
        ];
        let s = TimeSeries::zero_filled(SeriesBy::Category, from, to, to, &rows);
        assert_eq!(s.bucket, Bucket::Minute);
        let s = TimeSeries::zero_filled(SeriesBy::Category, from, DAY + 5 * DAY_MS, to, &rows);
        assert_eq!(s.bucket, Bucket::Hour);
        assert_eq!(s.starts.len(), 5 * 24 + 1);
        let admin = s.keys.iter().position(|k| k == "admin").unwrap();
        let auth = s.keys.iter().position(|k| k == "authentication").unwrap();
        assert_eq!(&s.counts[admin][..5], &[3, 0, 0, 1, 0]);
        assert_eq!(&s.counts[auth][..5], &[0, 0, 0, 5, 0]);
        assert_eq!(s.total(), 9);
        assert_eq!(s.keys.len(), crate::query::CATEGORIES.len());
        // The first bucket is cut by the window.
        assert_eq!(s.bucket_window(0), (from, DAY + HOUR_MS - 1));
        assert_eq!(
            s.bucket_window(3),
            (DAY + 3 * HOUR_MS, DAY + 4 * HOUR_MS - 1)
        );
    }

    #[test]
    fn failure_ratio_counts_failed_and_denied() {
        let rows = [
            SeriesRow {
                bucket_ms: DAY,
                key: "success".into(),
                events: 6,
            },
            SeriesRow {
                bucket_ms: DAY,
                key: "failure".into(),
                events: 3,
            },
            SeriesRow {
                bucket_ms: DAY,
                key: "denied".into(),
                events: 1,
            },
        ];
        let s = TimeSeries::zero_filled(SeriesBy::Outcome, DAY, DAY + HOUR_MS, DAY, &rows);
        assert_eq!(s.failure_ratio(), Some(0.4));
        let empty = TimeSeries::zero_filled(SeriesBy::Outcome, DAY, DAY + HOUR_MS, DAY, &[]);
        assert_eq!(empty.failure_ratio(), None);
    }

    /// Europe/Berlin on 2026-03-29 and 2026-10-25 (what the server sends).
    fn berlin() -> Zone {
        let span = |from_ms, offset_s, abbr: &str| crate::timefmt::ZoneSpan {
            from_ms,
            offset_s,
            abbr: abbr.into(),
        };
        Zone {
            name: "Europe/Berlin".into(),
            spans: vec![
                span(i64::MIN, 3600, "CET"),
                span(1_774_746_000_000, 7200, "CEST"),
                span(1_792_890_000_000, 3600, "CET"),
            ],
        }
    }

    #[test]
    fn hour_bars_on_dst_days_are_labelled_in_local_time() {
        let z = berlin();
        // The spring-forward day: midnight to 06:00 UTC in hour buckets.
        let spring_day = 1_774_742_400_000; // 2026-03-29 00:00 UTC
        let labels: Vec<String> = Bucket::Hour
            .starts(spring_day, spring_day + 4 * HOUR_MS - 1)
            .into_iter()
            .map(|start| Bucket::Hour.axis_label_in(start, &z))
            .collect();
        // 02:00 local does not exist that day.
        assert_eq!(labels, ["01:00", "03:00", "04:00", "05:00"]);
        let autumn_day = 1_792_886_400_000; // 2026-10-25 00:00 UTC
        let labels: Vec<String> = Bucket::Hour
            .starts(autumn_day, autumn_day + 3 * HOUR_MS - 1)
            .into_iter()
            .map(|start| Bucket::Hour.axis_label_in(start, &z))
            .collect();
        // 02:00 comes twice; the tooltips say which is which.
        assert_eq!(labels, ["02:00", "02:00", "03:00"]);
        assert_eq!(
            bucket_span_text(&z, autumn_day, autumn_day + HOUR_MS - 1),
            "2026-10-25 02:00 CEST to 02:00 CET"
        );
        assert_eq!(
            bucket_span_text(&z, autumn_day + HOUR_MS, autumn_day + 2 * HOUR_MS - 1),
            "2026-10-25 02:00 CET to 03:00 CET"
        );
        // Days stay UTC days, labelled with their UTC date.
        assert_eq!(Bucket::Day.axis_label_in(spring_day, &z), "03-29");
        assert_eq!(
            Bucket::Day.axis_zone(&z),
            "UTC days; hover for Europe/Berlin times"
        );
        assert_eq!(Bucket::Hour.axis_zone(&z), "Europe/Berlin");
        assert_eq!(Bucket::Hour.axis_zone(&Zone::utc()), "UTC");
        assert_eq!(
            bucket_span_text(&Zone::utc(), spring_day, spring_day + DAY_MS - 1),
            "2026-03-29 00:00 UTC to 2026-03-30 00:00 UTC"
        );
    }

    #[test]
    fn links_open_search_over_the_same_bucket_and_query() {
        let params = SearchParams {
            q: "action:user.login".into(),
            tenant: Some("acme".into()),
            ..SearchParams::default()
        };
        let rows = [SeriesRow {
            bucket_ms: DAY + HOUR_MS,
            key: "authentication".into(),
            events: 2,
        }];
        let s = TimeSeries::zero_filled(SeriesBy::Category, DAY, DAY + DAY_MS - 1, DAY, &rows);
        let href = series_href(&params, &s, "authentication", 1);
        assert_eq!(
            href,
            "/search?q=action%3Auser.login%20category%3A%22authentication%22&tenant=acme\
             &from=2026-03-01T01%3A00%3A00.000&to=2026-03-01T01%3A59%3A59.999"
        );
        // Search reads the link back as exactly the bucket's window.
        let back = SearchParams::from_lookup(|k| {
            let query = href.split_once('?').unwrap().1;
            query.split('&').find_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                (key == k).then(|| value.replace("%3A", ":"))
            })
        });
        assert_eq!(
            back.window(),
            Ok(crate::search_state::TimeWindow::Between {
                from_ms: DAY + HOUR_MS,
                to_ms: DAY + 2 * HOUR_MS - 1
            })
        );
        let top = TopActors {
            from_ms: DAY,
            to_ms: DAY + 5,
            snapshot_ms: DAY + 5,
            total: 0,
            failures: 0,
            by_events: Vec::new(),
            by_failures: Vec::new(),
        };
        // The link keeps the zone the dashboard is shown in.
        let zoned = SearchParams {
            tz: Some("Europe/Berlin".into()),
            ..params.clone()
        };
        assert!(series_href(&zoned, &s, "authentication", 1).ends_with("&tz=Europe%2FBerlin"));
        let href = actor_href(&SearchParams::default(), &top, "mallory", true);
        assert!(
            href.starts_with(
                "/search?q=actor%3A%22mallory%22%20%28outcome%3Afailure%20OR%20outcome%3Adenied%29&"
            ),
            "{href}"
        );
        assert_eq!(
            failures_query("a OR b"),
            "(a OR b) (outcome:failure OR outcome:denied)"
        );
        assert_eq!(
            failures_query("a b"),
            "a b (outcome:failure OR outcome:denied)"
        );
        assert_eq!(failures_query(" "), "(outcome:failure OR outcome:denied)");
    }
}
