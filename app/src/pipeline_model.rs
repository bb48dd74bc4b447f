//! The pipeline page's figures, as the server collects them
//! (`server/src/health/pipeline.rs`) and the browser shows them. One
//! serializable snapshot, sent whole by the server function and by the
//! live stream, so the page has one shape to render.
//!
//! The arithmetic on broker figures lives here, as pure functions with
//! tests: offsets and timestamps come from the network and are checked,
//! never trusted to be in order.

use serde::{Deserialize, Serialize};

pub mod procs;
pub use procs::{GroupMember, ProcessStatus, ProcessesHealth, WriterState};

/// Everything the page shows, taken at `taken_at_ms`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineSnapshot {
    /// Epoch milliseconds when the collection started.
    pub taken_at_ms: i64,
    /// How long the collection took; it is bounded, never a hang.
    pub collect_ms: i64,
    pub kafka: KafkaHealth,
    pub writer: WriterHealth,
    pub spool: SpoolHealth,
    /// This process's ingest over the last minute.
    pub ingest: IngestHealth,
    /// The node the writer inserts into and migrations run on
    /// (`clickhouse.url`).
    pub clickhouse: ClickHouseHealth,
    /// Every configured node (`clickhouse.url`, then `read_urls`), each
    /// asked on its own, and which of them serves the console's reads.
    pub nodes: Vec<ClickHouseHealth>,
    /// Every server and writer process, as each last reported.
    pub processes: ProcessesHealth,
    /// Dead letters waiting for an admin in the inbox.
    #[serde(default)]
    pub dead_letters: DeadLettersHealth,
}

/// How many dead letters wait in the inbox (`/dead-letters`), counted from
/// the broker's offsets and the handled letters, without reading the topic
/// (`server/src/dlq/waiting.rs` says why it equals the inbox's count).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLettersHealth {
    /// The dead-letter topic.
    pub topic: String,
    /// `None` when it could not be counted (see `problems`).
    pub waiting: Option<u64>,
    /// How long the oldest waiting letter has waited since the writer set
    /// it aside; `None` when nothing waits or it could not be read in time.
    pub oldest_age_ms: Option<i64>,
    pub problems: Vec<String>,
}

impl DeadLettersHealth {
    /// In words, as the page shows it.
    pub fn summary(&self) -> String {
        match self.waiting {
            None => "not counted".to_owned(),
            Some(0) => "none waiting".to_owned(),
            Some(1) => "1 dead letter waiting".to_owned(),
            Some(n) => format!("{n} dead letters waiting"),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaHealth {
    /// The cluster answered for its metadata.
    pub reachable: bool,
    /// Why not, or what could not be read (partly measured figures).
    pub problems: Vec<String>,
    pub brokers: Vec<BrokerHealth>,
    /// The writer's consumer group, whose commits the lag is measured from.
    pub consumer_group: String,
    pub topics: Vec<TopicHealth>,
    /// Over every events topic.
    pub total: LagTotals,
    /// The writer group's members and their partitions; `None` when the
    /// coordinator did not say.
    pub group_members: Option<Vec<GroupMember>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerHealth {
    /// `-1` for a configured bootstrap address the cluster does not list.
    pub id: i32,
    pub address: String,
    pub up: bool,
    /// Why it shows as down.
    pub detail: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicHealth {
    pub topic: String,
    /// The topic's `min.insync.replicas`, as the broker reports it.
    pub min_insync_replicas: i32,
    pub partitions: Vec<PartitionHealth>,
    pub total: LagTotals,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionHealth {
    pub partition: i32,
    /// `-1` when the partition has no leader.
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub in_sync: Vec<i32>,
    pub under_replicated: bool,
    pub below_min_insync: bool,
    /// Next offset to be written (the high watermark).
    pub end_offset: i64,
    /// The writer group's committed offset (the next one it will read);
    /// `None` before its first commit.
    pub committed: Option<i64>,
    pub lag_messages: i64,
    /// Age of the message at the committed offset: how long the oldest
    /// event not yet written has waited. 0 when caught up; `None` when
    /// there is lag but the message could not be read in time.
    pub lag_ms: Option<i64>,
}

/// Sums over partitions (of a topic, or of every topic).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LagTotals {
    pub partitions: u32,
    pub lag_messages: i64,
    /// The oldest waiting event's age over these partitions.
    pub max_lag_ms: i64,
    pub under_replicated: u32,
    pub below_min_insync: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterHealth {
    /// This server process runs a writer (`writer.enabled`); others of the
    /// group show only through the lag.
    pub in_this_process: bool,
    pub ok: bool,
    /// In words: running, backing off (with the error), stalled, not running.
    pub state: String,
    /// Epoch ms of the last batch inserted and committed by this process.
    pub last_insert_ms: Option<i64>,
    pub rows_written: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpoolHealth {
    pub pending_events: i64,
    pub pending_bytes: i64,
    /// How long the oldest event still in the spool has waited; `None`
    /// when the spool is empty.
    pub oldest_age_ms: Option<i64>,
}

/// What this server process's ingest API did over the last `window_ms`
/// (up to a minute; less just after start-up), from its own counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IngestHealth {
    /// The span the figures cover.
    pub window_ms: i64,
    pub accepted_per_min: f64,
    pub rejected_per_min: f64,
    /// Events refused with 429 (too many in flight) in the window.
    pub busy: u64,
    /// Events answered 503 (nothing stored) in the window.
    pub unavailable: u64,
    /// Request latency quantiles in the window, from the histogram's
    /// buckets (an upper bound: the bucket's edge); `None` without requests.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

// The rates and quantiles come from counters and fixed bucket bounds: never
// NaN, so equality is total, as the snapshot (compared whole) needs.
impl Eq for IngestHealth {}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClickHouseHealth {
    /// The node's address, credentials removed.
    pub node: String,
    pub up: bool,
    /// In the read rotation (not backed off after a failure).
    pub in_rotation: bool,
    /// The node the console's reads go to now: the first in rotation.
    pub serves_reads: bool,
    /// From `system.replicas`, where the node has replicated tables of
    /// this database: entries waiting in the replication queue...
    pub replication_queue: Option<u64>,
    /// ...and the largest replica delay in seconds.
    pub replication_delay_s: Option<u64>,
    pub problems: Vec<String>,
    pub version: String,
    pub uptime_s: u64,
    /// Time of a trivial read (`SELECT 1`), round trip included.
    pub read_latency_ms: Option<i64>,
    /// The node's `parts_to_throw_insert` (MergeTree setting): beyond it,
    /// inserts into a partition fail.
    pub parts_to_throw_insert: Option<u64>,
    /// Active parts per partition (month) of the events table.
    pub partitions: Vec<PartsInPartition>,
    pub merges_running: Option<u64>,
    /// `None` where the server has no `system.disks` (18.16).
    pub disks: Option<Vec<DiskSpace>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartsInPartition {
    pub partition: String,
    pub active_parts: u64,
    /// At or above half of `parts_to_throw_insert`: inserts are slowed
    /// from `parts_to_delay_insert` (half of it by default) and fail at it.
    pub near_limit: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskSpace {
    pub name: String,
    pub free_bytes: u64,
    pub total_bytes: u64,
}

/// Messages not yet written and committed: from the committed offset to
/// the end, or from the start of the log (`low`) before the first commit,
/// as the writer then starts there. Never negative (the end may be read
/// before a newer commit) and never an overflow on hostile figures.
pub fn lag_messages(end: i64, committed: Option<i64>, low: i64) -> i64 {
    let from = committed.unwrap_or(low).max(low);
    end.checked_sub(from).unwrap_or(0).max(0)
}

/// How long the oldest event not yet written has waited: `now` minus the
/// timestamp of the message at the committed offset; 0 when nothing waits.
/// A timestamp from the future (a producer's clock ahead) counts as 0.
pub fn lag_ms(lag_messages: i64, now_ms: i64, oldest_waiting_ms: Option<i64>) -> Option<i64> {
    if lag_messages <= 0 {
        return Some(0);
    }
    oldest_waiting_ms.map(|ts| now_ms.checked_sub(ts).unwrap_or(0).max(0))
}

/// Fewer replicas in sync than assigned.
pub fn under_replicated(replicas: &[i32], in_sync: &[i32]) -> bool {
    replicas.iter().any(|r| !in_sync.contains(r))
}

/// Fewer in-sync replicas than `min.insync.replicas`: producers with
/// `acks=all`, as Attest's, are refused on this partition.
pub fn below_min_insync(in_sync: &[i32], min_insync: i32) -> bool {
    i64::try_from(in_sync.len()).unwrap_or(i64::MAX) < i64::from(min_insync)
}

/// Active parts at which a partition counts as near the insert limit.
pub fn near_parts_limit(active_parts: u64, parts_to_throw_insert: Option<u64>) -> bool {
    parts_to_throw_insert.is_some_and(|limit| limit > 0 && active_parts >= limit / 2)
}

impl LagTotals {
    pub fn of<'a>(partitions: impl IntoIterator<Item = &'a PartitionHealth>) -> LagTotals {
        partitions
            .into_iter()
            .fold(LagTotals::default(), |mut t, p| {
                t.add(&LagTotals {
                    partitions: 1,
                    lag_messages: p.lag_messages,
                    max_lag_ms: p.lag_ms.unwrap_or(0),
                    under_replicated: u32::from(p.under_replicated),
                    below_min_insync: u32::from(p.below_min_insync),
                });
                t
            })
    }

    pub fn add(&mut self, other: &LagTotals) {
        self.partitions = self.partitions.saturating_add(other.partitions);
        self.lag_messages = self.lag_messages.saturating_add(other.lag_messages);
        self.max_lag_ms = self.max_lag_ms.max(other.max_lag_ms);
        self.under_replicated = self.under_replicated.saturating_add(other.under_replicated);
        self.below_min_insync = self.below_min_insync.saturating_add(other.below_min_insync);
    }
}

/// Events per minute from two readings of a counter `elapsed_ms` apart.
/// A counter that went backwards (a restart) or no time passing gives 0.
pub fn per_minute(before: u64, now: u64, elapsed_ms: i64) -> f64 {
    if elapsed_ms <= 0 {
        return 0.0;
    }
    now.saturating_sub(before) as f64 * 60_000.0 / elapsed_ms as f64
}

/// Per second from two readings of an ever-growing total (offsets summed
/// over partitions) `elapsed_ms` apart; `None` when it went backwards (a
/// topic recreated) or no time passed, so a chart shows a gap, not a lie.
pub fn per_second(before: i64, now: i64, elapsed_ms: i64) -> Option<f64> {
    let grown = now.checked_sub(before)?;
    (grown >= 0 && elapsed_ms > 0).then(|| grown as f64 * 1_000.0 / elapsed_ms as f64)
}

/// The `q` quantile (0..=1) of observations counted into cumulative
/// histogram buckets (`(upper bound, count at or below it)`, ascending, as
/// Prometheus keeps them): the upper bound of the first bucket holding it.
/// Past the last finite bound it is that bound (the true value is larger).
/// `None` with no observations.
pub fn quantile(buckets: &[(f64, u64)], total: u64, q: f64) -> Option<f64> {
    if total == 0 {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * total as f64).ceil().max(1.0) as u64;
    buckets
        .iter()
        .find(|(_, count)| *count >= rank)
        .or(buckets.last())
        .map(|(bound, _)| *bound)
}

/// Cumulative bucket counts `now` minus `before` (the same bounds), for a
/// window's share of a histogram that only grows.
pub fn bucket_delta(before: &[(f64, u64)], now: &[(f64, u64)]) -> Vec<(f64, u64)> {
    now.iter()
        .map(|(bound, count)| {
            let old = before
                .iter()
                .find(|(b, _)| b == bound)
                .map_or(0, |(_, c)| *c);
            (*bound, count.saturating_sub(old))
        })
        .collect()
}

/// "3 h 04 min", "12 s", "850 ms": a lag or an uptime at a glance.
pub fn human_duration_ms(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1_000 {
        return format!("{ms} ms");
    }
    let s = ms / 1_000;
    match s {
        0..=59 => format!("{s} s"),
        60..=3_599 => format!("{} min {:02} s", s / 60, s % 60),
        3_600..=86_399 => format!("{} h {:02} min", s / 3_600, s % 3_600 / 60),
        _ => format!("{} d {:02} h", s / 86_400, s % 86_400 / 3_600),
    }
}

/// "1.5 GiB": free disk at a glance.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letters_are_said_in_words() {
        let mut d = DeadLettersHealth::default();
        assert_eq!(d.summary(), "not counted");
        d.waiting = Some(0);
        assert_eq!(d.summary(), "none waiting");
        d.waiting = Some(1);
        assert_eq!(d.summary(), "1 dead letter waiting");
        d.waiting = Some(12);
        assert_eq!(d.summary(), "12 dead letters waiting");
    }

    #[test]
    fn lag_counts_from_the_commit_or_the_start_and_never_goes_negative() {
        assert_eq!(lag_messages(10, Some(7), 0), 3);
        assert_eq!(lag_messages(10, None, 2), 8, "before the first commit");
        assert_eq!(
            lag_messages(10, Some(12), 0),
            0,
            "end read before a newer commit"
        );
        assert_eq!(
            lag_messages(10, Some(1), 4),
            6,
            "commit behind the log start"
        );
        assert_eq!(lag_messages(i64::MAX, Some(i64::MIN), i64::MIN), 0);
        assert_eq!(lag_messages(0, None, 0), 0);
    }

    #[test]
    fn lag_in_time_is_the_age_of_the_oldest_waiting_message() {
        assert_eq!(lag_ms(0, 5_000, None), Some(0), "caught up");
        assert_eq!(lag_ms(0, 5_000, Some(1_000)), Some(0), "caught up");
        assert_eq!(lag_ms(3, 5_000, Some(1_000)), Some(4_000));
        assert_eq!(lag_ms(3, 5_000, Some(9_000)), Some(0), "clock ahead");
        assert_eq!(lag_ms(3, 5_000, None), None, "not read in time");
        assert_eq!(lag_ms(3, i64::MIN, Some(i64::MAX)), Some(0));
    }

    #[test]
    fn replication_flags() {
        assert!(!under_replicated(&[1, 2, 3], &[3, 1, 2]));
        assert!(under_replicated(&[1, 2, 3], &[1, 3]));
        assert!(!under_replicated(&[], &[]));
        assert!(!below_min_insync(&[1, 2], 2));
        assert!(below_min_insync(&[1], 2));
        assert!(below_min_insync(&[], 1), "no replica in sync");
        assert!(!below_min_insync(&[1], 1));
    }

    #[test]
    fn totals_sum_lag_and_keep_the_oldest_age() {
        let p = |lag, ms, under| PartitionHealth {
            lag_messages: lag,
            lag_ms: ms,
            under_replicated: under,
            below_min_insync: under,
            ..Default::default()
        };
        let mut topic = LagTotals::of(&[
            p(3, Some(400), false),
            p(5, Some(900), true),
            p(0, Some(0), false),
        ]);
        assert_eq!(topic.partitions, 3);
        assert_eq!(topic.lag_messages, 8);
        assert_eq!(topic.max_lag_ms, 900);
        assert_eq!(topic.under_replicated, 1);
        topic.add(&LagTotals::of(&[p(i64::MAX, None, false)]));
        assert_eq!(topic.lag_messages, i64::MAX, "saturates");
        assert_eq!(topic.partitions, 4);
    }

    #[test]
    fn parts_near_the_limit() {
        assert!(!near_parts_limit(10, Some(300)));
        assert!(near_parts_limit(150, Some(300)));
        assert!(!near_parts_limit(1_000, None));
        assert!(!near_parts_limit(1_000, Some(0)));
    }

    #[test]
    fn rates_from_two_readings() {
        assert_eq!(per_minute(10, 40, 30_000), 60.0);
        assert_eq!(per_minute(40, 10, 30_000), 0.0, "counter reset");
        assert_eq!(per_minute(0, 5, 0), 0.0);
        assert_eq!(per_second(100, 600, 10_000), Some(50.0));
        assert_eq!(per_second(600, 100, 10_000), None, "topic recreated");
        assert_eq!(per_second(0, 1, 0), None);
        assert_eq!(per_second(i64::MIN, i64::MAX, 1), None, "overflow");
    }

    #[test]
    fn quantiles_are_the_bucket_edges() {
        let buckets = [(0.005, 10), (0.01, 50), (0.1, 99), (1.0, 100)];
        assert_eq!(quantile(&buckets, 100, 0.5), Some(0.01));
        assert_eq!(quantile(&buckets, 100, 0.99), Some(0.1));
        assert_eq!(quantile(&buckets, 100, 1.0), Some(1.0));
        assert_eq!(quantile(&buckets, 100, 0.0), Some(0.005));
        assert_eq!(quantile(&buckets, 0, 0.5), None);
        // Beyond the last bound: the last bound, a lower limit.
        assert_eq!(quantile(&[(0.1, 1)], 5, 0.99), Some(0.1));
        let before = [(0.005, 10), (0.01, 50), (0.1, 99), (1.0, 100)];
        let now = [(0.005, 10), (0.01, 52), (0.1, 140), (1.0, 141)];
        let window = bucket_delta(&before, &now);
        assert_eq!(window, [(0.005, 0), (0.01, 2), (0.1, 41), (1.0, 41)]);
        assert_eq!(quantile(&window, 41, 0.5), Some(0.1));
        assert_eq!(bucket_delta(&now, &before)[1], (0.01, 0), "never negative");
    }

    #[test]
    fn figures_read_at_a_glance() {
        assert_eq!(human_duration_ms(850), "850 ms");
        assert_eq!(human_duration_ms(12_300), "12 s");
        assert_eq!(human_duration_ms(125_000), "2 min 05 s");
        assert_eq!(human_duration_ms(3 * 3_600_000 + 4 * 60_000), "3 h 04 min");
        assert_eq!(human_duration_ms(-5), "0 ms");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }
}
