//! What one sampling round writes: the snapshot's figures as one value per
//! series, plus rates worked out against the previous round's readings.
//! Pure, so every series is tested without a broker or a database.

use app::pipeline_model::{bucket_delta, per_second, quantile, PipelineSnapshot};
use app::trends_model as series;

use crate::store::Sample;

/// Totals read at one round, for the next round's rates.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reading {
    pub at_ms: i64,
    /// End offsets summed over every partition of the events topics:
    /// everything ever produced. `None` when the broker did not answer.
    pub produced: Option<i64>,
    /// End offset minus lag, summed: everything the writer group has
    /// committed (or skipped past the log start).
    pub written: Option<i64>,
    /// This process's writer.
    pub rows_written: u64,
    pub insert_buckets: Vec<(f64, u64)>,
    pub inserts: u64,
}

impl Reading {
    pub fn of(
        snapshot: &PipelineSnapshot,
        at_ms: i64,
        rows_written: u64,
        insert: (Vec<(f64, u64)>, u64),
    ) -> Reading {
        let partitions = || {
            snapshot
                .kafka
                .topics
                .iter()
                .flat_map(|t| t.partitions.iter())
        };
        let reachable = snapshot.kafka.reachable && !snapshot.kafka.topics.is_empty();
        Reading {
            at_ms,
            produced: reachable
                .then(|| partitions().fold(0i64, |sum, p| sum.saturating_add(p.end_offset))),
            written: reachable.then(|| {
                partitions().fold(0i64, |sum, p| {
                    sum.saturating_add(p.end_offset.saturating_sub(p.lag_messages))
                })
            }),
            rows_written,
            insert_buckets: insert.0,
            inserts: insert.1,
        }
    }
}

/// One round's samples, all stamped `at_ms` (the interval's start).
pub fn samples_of(
    snapshot: &PipelineSnapshot,
    previous: Option<&Reading>,
    now: &Reading,
    at_ms: i64,
) -> Vec<Sample> {
    let at = u64::try_from(at_ms).unwrap_or(0);
    let mut out = Vec::new();
    let mut put = |name: String, value: f64| {
        if value.is_finite() {
            out.push(Sample {
                at_ms: at,
                series: name,
                value,
            });
        }
    };
    let kafka = &snapshot.kafka;
    // Without the broker there is no lag figure: a gap, not a zero.
    if kafka.reachable {
        put(
            series::LAG_S.into(),
            kafka.total.max_lag_ms as f64 / 1_000.0,
        );
        put(series::LAG_MESSAGES.into(), kafka.total.lag_messages as f64);
        for topic in &kafka.topics {
            put(
                series::lag_s_of(&topic.topic),
                topic.total.max_lag_ms as f64 / 1_000.0,
            );
            put(
                series::lag_messages_of(&topic.topic),
                topic.total.lag_messages as f64,
            );
        }
    }
    if let Some(before) = previous {
        let elapsed = now.at_ms.saturating_sub(before.at_ms);
        let rate = |b: Option<i64>, n: Option<i64>| per_second(b?, n?, elapsed);
        if let Some(v) = rate(before.produced, now.produced) {
            put(series::PRODUCED_PER_S.into(), v);
        }
        if let Some(v) = rate(before.written, now.written) {
            put(series::WRITTEN_PER_S.into(), v);
        }
        if snapshot.writer.in_this_process {
            let rows = |r: u64| i64::try_from(r).ok();
            if let Some(v) = rate(rows(before.rows_written), rows(now.rows_written)) {
                put(series::WRITER_ROWS_PER_S.into(), v);
            }
            let window = bucket_delta(&before.insert_buckets, &now.insert_buckets);
            let inserts = now.inserts.saturating_sub(before.inserts);
            for (name, q) in [(series::INSERT_P50_MS, 0.5), (series::INSERT_P99_MS, 0.99)] {
                if let Some(s) = quantile(&window, inserts, q) {
                    put(name.into(), s * 1_000.0);
                }
            }
        }
    }
    let ingest = &snapshot.ingest;
    put(series::ACCEPTED_PER_MIN.into(), ingest.accepted_per_min);
    put(series::REJECTED_PER_MIN.into(), ingest.rejected_per_min);
    let per_min = |n: u64| n as f64 * 60_000.0 / ingest.window_ms.max(1) as f64;
    put(series::BUSY_PER_MIN.into(), per_min(ingest.busy));
    put(
        series::UNAVAILABLE_PER_MIN.into(),
        per_min(ingest.unavailable),
    );
    if let Some(ms) = ingest.p50_ms {
        put(series::INGEST_P50_MS.into(), ms);
    }
    if let Some(ms) = ingest.p99_ms {
        put(series::INGEST_P99_MS.into(), ms);
    }
    put(
        series::SPOOL_EVENTS.into(),
        snapshot.spool.pending_events as f64,
    );
    put(
        series::SPOOL_OLDEST_S.into(),
        snapshot.spool.oldest_age_ms.unwrap_or(0) as f64 / 1_000.0,
    );
    for node in &snapshot.nodes {
        put(series::node_up_of(&node.node), f64::from(u8::from(node.up)));
        if let Some(ms) = node.read_latency_ms {
            put(series::node_read_ms_of(&node.node), ms as f64);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::pipeline_model::{
        ClickHouseHealth, IngestHealth, KafkaHealth, LagTotals, PartitionHealth, TopicHealth,
        WriterHealth,
    };

    fn snapshot(end: i64, lag: i64) -> PipelineSnapshot {
        let partition = PartitionHealth {
            end_offset: end,
            lag_messages: lag,
            lag_ms: Some(if lag > 0 { 4_000 } else { 0 }),
            ..PartitionHealth::default()
        };
        let total = LagTotals::of([&partition]);
        PipelineSnapshot {
            kafka: KafkaHealth {
                reachable: true,
                topics: vec![TopicHealth {
                    topic: "p.data_access".into(),
                    partitions: vec![partition],
                    total: total.clone(),
                    min_insync_replicas: 1,
                }],
                total,
                ..KafkaHealth::default()
            },
            writer: WriterHealth {
                in_this_process: true,
                ..WriterHealth::default()
            },
            ingest: IngestHealth {
                window_ms: 30_000,
                accepted_per_min: 120.0,
                busy: 3,
                p99_ms: Some(25.0),
                ..IngestHealth::default()
            },
            nodes: vec![ClickHouseHealth {
                node: "http://ch:8123".into(),
                up: true,
                read_latency_ms: Some(3),
                ..ClickHouseHealth::default()
            }],
            ..PipelineSnapshot::default()
        }
    }

    fn value(samples: &[Sample], name: &str) -> Option<f64> {
        samples.iter().find(|s| s.series == name).map(|s| s.value)
    }

    #[test]
    fn a_round_samples_every_figure_at_the_interval_start() {
        let s = snapshot(1_000, 100);
        let before = Reading::of(&snapshot(500, 0), 0, 10, (vec![(0.1, 0), (1.0, 0)], 0));
        let now = Reading::of(&s, 10_000, 60, (vec![(0.1, 3), (1.0, 4)], 4));
        assert_eq!((now.produced, now.written), (Some(1_000), Some(900)));
        let samples = samples_of(&s, Some(&before), &now, 10_000);
        assert!(samples.iter().all(|x| x.at_ms == 10_000));
        assert_eq!(value(&samples, series::LAG_S), Some(4.0));
        assert_eq!(value(&samples, series::LAG_MESSAGES), Some(100.0));
        assert_eq!(value(&samples, "lag_messages:p.data_access"), Some(100.0));
        assert_eq!(value(&samples, series::PRODUCED_PER_S), Some(50.0));
        assert_eq!(value(&samples, series::WRITTEN_PER_S), Some(40.0));
        assert_eq!(value(&samples, series::WRITER_ROWS_PER_S), Some(5.0));
        assert_eq!(value(&samples, series::INSERT_P50_MS), Some(100.0));
        assert_eq!(value(&samples, series::INSERT_P99_MS), Some(1_000.0));
        assert_eq!(value(&samples, series::ACCEPTED_PER_MIN), Some(120.0));
        assert_eq!(value(&samples, series::BUSY_PER_MIN), Some(6.0));
        assert_eq!(value(&samples, series::INGEST_P99_MS), Some(25.0));
        assert_eq!(
            value(&samples, series::INGEST_P50_MS),
            None,
            "no requests, no point"
        );
        assert_eq!(value(&samples, "node_up:http://ch:8123"), Some(1.0));
        assert_eq!(value(&samples, "node_read_ms:http://ch:8123"), Some(3.0));
        assert_eq!(value(&samples, series::SPOOL_OLDEST_S), Some(0.0));
    }

    #[test]
    fn no_previous_round_or_no_broker_leaves_gaps() {
        let s = snapshot(1_000, 0);
        let now = Reading::of(&s, 10_000, 0, (Vec::new(), 0));
        let first = samples_of(&s, None, &now, 10_000);
        assert_eq!(value(&first, series::PRODUCED_PER_S), None);
        assert_eq!(value(&first, series::LAG_S), Some(0.0));
        let mut down = s.clone();
        down.kafka.reachable = false;
        let then = Reading::of(&down, 20_000, 0, (Vec::new(), 0));
        assert_eq!(then.produced, None);
        let samples = samples_of(&down, Some(&now), &then, 20_000);
        assert_eq!(value(&samples, series::LAG_S), None);
        assert_eq!(value(&samples, series::PRODUCED_PER_S), None);
        // A topic recreated (offsets back to 0): no rate rather than a negative one.
        let reset = Reading::of(&snapshot(10, 0), 30_000, 0, (Vec::new(), 0));
        let samples = samples_of(&snapshot(10, 0), Some(&now), &reset, 30_000);
        assert_eq!(value(&samples, series::PRODUCED_PER_S), None);
    }
}
