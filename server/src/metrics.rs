//! Every metric Attest exports, in one place, named
//! `attest_<stage>_<noun>_<unit>`. Recorded per request or per batch, never
//! per row inside a hot loop. Served as Prometheus text on `/metrics`.

use std::sync::atomic::{AtomicI64, Ordering};

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub ingest_events: IntCounterVec,
    pub ingest_request_seconds: Histogram,
    pub spool_pending_events: IntGauge,
    /// Exposed in seconds (Prometheus' base unit); Attest's own pages read
    /// the milliseconds through [`Metrics::spool_oldest_pending_ms`].
    spool_oldest_pending: Gauge,
    spool_oldest_pending_ms: AtomicI64,
    pub spool_pending_bytes: IntGauge,
    pub spool_appended: IntCounter,
    pub spool_forwarded: IntCounter,
    pub writer_rows_written: IntCounter,
    pub writer_batch_rows: Histogram,
    pub writer_insert_seconds: Histogram,
    pub writer_insert_retries: IntCounter,
    pub writer_rows_sealed: IntCounter,
    pub writer_seal_retries: IntCounter,
    pub integrity_checks: IntCounter,
    pub integrity_problems: IntGauge,
    pub writer_dead_letters: IntCounterVec,
    pub writer_committed_offset: IntGaugeVec,
    pub writer_end_offset: IntGaugeVec,
    pub writer_lag: IntGaugeVec,
    pub writer_lag_checked: IntGauge,
    pub pipeline_stalled: IntGaugeVec,
    pub alerts_firing: IntGaugeVec,
    pub alert_evaluator: IntGauge,
    alert_lag_average: Gauge,
    alert_lag: Gauge,
    pub notify_attempts: IntCounterVec,
    pub detections_fired: IntCounter,
    pub notify_given_up: IntCounter,
    pub console_reads_unrecorded: IntCounter,
    pub trends_sampler: IntGauge,
    pub trends_samples_written: IntCounter,
    dead_letters_waiting: IntGauge,
}

/// Every `rule` of `attest_alerts_firing`.
pub const ALERT_RULES: [&str; 7] = [
    app::alerts_model::RULE_WRITER_LAG,
    app::alerts_model::RULE_KAFKA,
    app::alerts_model::RULE_CLICKHOUSE_DOWN,
    app::alerts_model::RULE_PARTS,
    app::alerts_model::RULE_DEAD_LETTERS,
    app::alerts_model::RULE_SPOOL,
    app::alerts_model::RULE_WRITER_STALLED,
];

/// Every `result` of `attest_ingest_events_total`. Each starts at 0, so an
/// alert on a rate works before the first such event.
pub const INGEST_RESULTS: [&str; 6] = [
    "accepted",
    "rejected",
    "forbidden",
    "unauthorized",
    "busy",
    "unavailable",
];

/// Every `reason` of `attest_writer_dead_letters_total`, for the same reason.
pub const DEAD_LETTER_REASONS: [&str; 6] = [
    "bad_framing",
    "unknown_schema_id",
    "undecodable_payload",
    "contract_mismatch",
    crate::write::REASON_INVALID_EVENT,
    crate::write::REASON_CLICKHOUSE_REJECTED,
];

/// The catalogue is fixed at compile time, so a registration failure is a
/// programming error caught by the unit test below.
fn register<T: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: T) -> T {
    registry
        .register(Box::new(metric.clone()))
        .expect("metric names in the catalogue are unique and valid");
    metric
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let partition = &["topic", "partition"];
        let metrics = Metrics {
            registry: registry.clone(),
            ingest_events: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "attest_ingest_events_total",
                        "Events received, by result: accepted, rejected (invalid), forbidden \
                         (key not allowed), unauthorized (no valid key), busy (429), \
                         unavailable (503)",
                    ),
                    &["result"],
                )
                .expect("valid"),
            ),
            ingest_request_seconds: register(
                &registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "attest_ingest_request_seconds",
                        "Duration of one ingest request (single event or batch), from its \
                         first byte read to the answer, whatever the answer",
                    )
                    .buckets(vec![
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                        10.0,
                    ]),
                )
                .expect("valid"),
            ),
            spool_oldest_pending: register(
                &registry,
                Gauge::new(
                    "attest_spool_oldest_pending_timestamp_seconds",
                    "When the oldest event still in the spool was appended (Unix time); 0 \
                     while the spool is empty. After a restart, the time its spool was \
                     reopened: the age is then a lower bound",
                )
                .expect("valid"),
            ),
            spool_oldest_pending_ms: AtomicI64::new(0),
            spool_pending_events: register(
                &registry,
                IntGauge::new(
                    "attest_spool_pending_events",
                    "Accepted events in the local spool, waiting for the broker",
                )
                .expect("valid"),
            ),
            spool_pending_bytes: register(
                &registry,
                IntGauge::new(
                    "attest_spool_pending_bytes",
                    "Bytes in the local spool, waiting for the broker (bounded by ingest.spool_max_bytes)",
                )
                .expect("valid"),
            ),
            spool_appended: register(
                &registry,
                IntCounter::new(
                    "attest_spool_appended_total",
                    "Events written to the spool because the broker could not take them",
                )
                .expect("valid"),
            ),
            spool_forwarded: register(
                &registry,
                IntCounter::new(
                    "attest_spool_forwarded_total",
                    "Spooled events the broker has since acknowledged",
                )
                .expect("valid"),
            ),
            writer_rows_written: register(
                &registry,
                IntCounter::new(
                    "attest_writer_rows_written_total",
                    "Rows inserted into ClickHouse",
                )
                .expect("valid"),
            ),
            writer_rows_sealed: register(
                &registry,
                IntCounter::new(
                    "attest_writer_rows_sealed_total",
                    "Rows sealed in a signed digest (re-read rows sealed before count once)",
                )
                .expect("valid"),
            ),
            writer_seal_retries: register(
                &registry,
                IntCounter::new(
                    "attest_writer_seal_retries_total",
                    "Failed attempts to seal a batch that were retried before its commit",
                )
                .expect("valid"),
            ),
            integrity_checks: register(
                &registry,
                IntCounter::new(
                    "attest_integrity_checks_total",
                    "Scheduled integrity checks completed by this process",
                )
                .expect("valid"),
            ),
            integrity_problems: register(
                &registry,
                IntGauge::new(
                    "attest_integrity_problems",
                    "Problems the last scheduled integrity check found (changed, missing or unsealed evidence)",
                )
                .expect("valid"),
            ),
            writer_batch_rows: register(
                &registry,
                Histogram::with_opts(
                    HistogramOpts::new("attest_writer_batch_rows", "Rows per inserted batch")
                        .buckets(vec![
                            1.0, 10.0, 100.0, 1_000.0, 10_000.0, 50_000.0, 100_000.0,
                        ]),
                )
                .expect("valid"),
            ),
            writer_insert_seconds: register(
                &registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "attest_writer_insert_seconds",
                        "Duration of one successful batch INSERT",
                    )
                    .buckets(vec![
                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    ]),
                )
                .expect("valid"),
            ),
            writer_insert_retries: register(
                &registry,
                IntCounter::new(
                    "attest_writer_insert_retries_total",
                    "Failed INSERT attempts that were retried",
                )
                .expect("valid"),
            ),
            writer_dead_letters: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "attest_writer_dead_letters_total",
                        "Messages sent to the dead-letter topic, by reason: bad_framing, \
                         unknown_schema_id, undecodable_payload, contract_mismatch, \
                         invalid_event, clickhouse_rejected",
                    ),
                    &["reason"],
                )
                .expect("valid"),
            ),
            writer_committed_offset: register(
                &registry,
                IntGaugeVec::new(
                    Opts::new(
                        "attest_writer_committed_offset",
                        "Next offset to read, as committed by the writer group after the insert",
                    ),
                    partition,
                )
                .expect("valid"),
            ),
            writer_end_offset: register(
                &registry,
                IntGaugeVec::new(
                    Opts::new(
                        "attest_writer_end_offset",
                        "High watermark (end offset) of the partition",
                    ),
                    partition,
                )
                .expect("valid"),
            ),
            writer_lag: register(
                &registry,
                IntGaugeVec::new(
                    Opts::new(
                        "attest_writer_lag_messages",
                        "Messages in the partition not yet written and committed",
                    ),
                    partition,
                )
                .expect("valid"),
            ),
            writer_lag_checked: register(
                &registry,
                IntGauge::new(
                    "attest_writer_lag_checked_timestamp_seconds",
                    "When the lag gauges were last read from the broker (Unix time); \
                     0 until the first success. Alert when it stops moving: the lag \
                     gauges are then stale",
                )
                .expect("valid"),
            ),
            pipeline_stalled: register(
                &registry,
                IntGaugeVec::new(
                    Opts::new(
                        "attest_pipeline_stalled",
                        "1 while the watchdog finds a stage stuck (writer: not running, or no \
                         progress with lag; spool: not shrinking), else 0",
                    ),
                    &["stage"],
                )
                .expect("valid"),
            ),
            alerts_firing: register(
                &registry,
                IntGaugeVec::new(
                    Opts::new(
                        "attest_alerts_firing",
                        "1 while the rule's alert fires, else 0; set by the process elected                          to evaluate alerts (attest_alert_evaluator 1), 0 on the others",
                    ),
                    &["rule"],
                )
                .expect("valid"),
            ),
            alert_evaluator: register(
                &registry,
                IntGauge::new(
                    "attest_alert_evaluator",
                    "1 while this process is the one elected to evaluate alert rules",
                )
                .expect("valid"),
            ),
            alert_lag_average: register(
                &registry,
                Gauge::new(
                    "attest_alert_writer_lag_average_seconds",
                    "Writer lag in time averaged over the writer_lag rule's window, as the \
                     elected evaluator last computed it (-1 before the window is filled)",
                )
                .expect("valid"),
            ),
            alert_lag: register(
                &registry,
                Gauge::new(
                    "attest_alert_writer_lag_seconds",
                    "Writer lag in time (age of the oldest event not yet written) at the \
                     elected evaluator's last round: the sample behind the average",
                )
                .expect("valid"),
            ),
            notify_attempts: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "attest_notify_attempts_total",
                        "Webhook delivery attempts, by result: delivered (2xx) or failed",
                    ),
                    &["result"],
                )
                .expect("valid"),
            ),
            detections_fired: register(
                &registry,
                IntCounter::new(
                    "attest_detections_fired_total",
                    "Detections this process stored and queued for delivery (the elected \
                     evaluator's; each firing once across processes)",
                )
                .expect("valid"),
            ),
            notify_given_up: register(
                &registry,
                IntCounter::new(
                    "attest_notify_given_up_total",
                    "Webhook deliveries abandoned after alerts.delivery.attempts failures",
                )
                .expect("valid"),
            ),
            console_reads_unrecorded: register(
                &registry,
                IntCounter::new(
                    "attest_console_reads_unrecorded_total",
                    "Console reads (searches, event views, saved-search changes) that could \
                     not be recorded in Attest's own trail: the queue was full or the event \
                     could not be produced",
                )
                .expect("valid"),
            ),
            trends_sampler: register(
                &registry,
                IntGauge::new(
                    "attest_trends_sampler",
                    "1 while this process is the one elected to sample the pipeline's trends",
                )
                .expect("valid"),
            ),
            trends_samples_written: register(
                &registry,
                IntCounter::new(
                    "attest_trends_samples_written_total",
                    "Trend samples (one row per series) this process wrote to ClickHouse",
                )
                .expect("valid"),
            ),
            dead_letters_waiting: register(
                &registry,
                IntGauge::new(
                    "attest_dead_letters_waiting",
                    "Dead letters waiting in the inbox (neither redriven nor discarded), as \
                     this process last counted them for a pipeline snapshot (the page, its \
                     stream, the elected alert evaluator's and trend sampler's rounds); -1 \
                     before the first count or when it could not be counted",
                )
                .expect("valid"),
            ),
        };
        metrics.dead_letters_waiting.set(-1);
        for rule in ALERT_RULES {
            metrics.alerts_firing.with_label_values(&[rule]);
        }
        for result in ["delivered", "failed"] {
            metrics.notify_attempts.with_label_values(&[result]);
        }
        metrics.alert_lag_average.set(-1.0);
        for stage in ["writer", "spool"] {
            metrics.pipeline_stalled.with_label_values(&[stage]);
        }
        for result in INGEST_RESULTS {
            metrics.ingest_events.with_label_values(&[result]);
        }
        for reason in DEAD_LETTER_REASONS {
            metrics.writer_dead_letters.with_label_values(&[reason]);
        }
        metrics
    }

    /// The spool's oldest pending event was appended at `at_ms` (0: the
    /// spool is empty).
    pub fn spool_oldest_pending(&self, at_ms: i64) {
        self.spool_oldest_pending_ms.store(at_ms, Ordering::Relaxed);
        self.spool_oldest_pending.set(seconds(at_ms));
    }

    /// What [`Metrics::spool_oldest_pending`] last said, in Unix ms.
    pub fn spool_oldest_pending_ms(&self) -> i64 {
        self.spool_oldest_pending_ms.load(Ordering::Relaxed)
    }

    /// The writer-lag rule's last round: the lag it sampled (`None` when
    /// Kafka could not be read, which leaves the last sample shown) and
    /// the moving average (`None` until its window is filled, shown as -1).
    pub fn writer_lag_judged(&self, sample_ms: Option<i64>, average_ms: Option<i64>) {
        if let Some(lag) = sample_ms {
            self.alert_lag.set(seconds(lag));
        }
        self.alert_lag_average.set(average_ms.map_or(-1.0, seconds));
    }

    /// The pipeline page's count of waiting dead letters; `None` when it
    /// could not be counted.
    pub fn dead_letters_waiting(&self, waiting: Option<u64>) {
        self.dead_letters_waiting
            .set(waiting.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX)));
    }

    /// Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(error) = encoder.encode(&self.registry.gather(), &mut buffer) {
            tracing::warn!(%error, "cannot encode metrics");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

/// A histogram's cumulative buckets `(upper bound, observations at or
/// below it)` and its total count, for quantiles over a window
/// (`app::pipeline_model::quantile`).
/// Milliseconds as the seconds Prometheus expects (its base unit).
fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

pub fn histogram_buckets(histogram: &Histogram) -> (Vec<(f64, u64)>, u64) {
    use prometheus::core::Collector;
    let families = histogram.collect();
    let Some(data) = families
        .first()
        .and_then(|f| f.get_metric().first())
        .map(|m| m.get_histogram())
    else {
        return (Vec::new(), 0);
    };
    let buckets = data
        .get_bucket()
        .iter()
        .map(|b| (b.upper_bound(), b.cumulative_count()))
        .collect();
    (buckets, data.get_sample_count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_labels_start_at_zero() {
        let text = Metrics::new().render();
        for result in INGEST_RESULTS {
            let line = format!("attest_ingest_events_total{{result=\"{result}\"}} 0");
            assert!(text.contains(&line), "{line} in {text}");
        }
        for reason in DEAD_LETTER_REASONS {
            let line = format!("attest_writer_dead_letters_total{{reason=\"{reason}\"}} 0");
            assert!(text.contains(&line), "{line} in {text}");
        }
        assert!(text.contains("attest_writer_lag_checked_timestamp_seconds 0"));
        assert!(
            text.contains("attest_dead_letters_waiting -1"),
            "not counted yet"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::new();
        for seconds in [0.002, 0.002, 0.3] {
            m.ingest_request_seconds.observe(seconds);
        }
        let (buckets, total) = histogram_buckets(&m.ingest_request_seconds);
        assert_eq!(total, 3);
        assert_eq!(buckets[0], (0.001, 0));
        assert_eq!(buckets[1], (0.0025, 2));
        assert_eq!(buckets.last(), Some(&(10.0, 3)));
    }

    #[test]
    fn catalogue_registers_and_renders() {
        let m = Metrics::new();
        m.ingest_events.with_label_values(&["accepted"]).inc();
        m.writer_lag.with_label_values(&["t", "0"]).set(5);
        m.dead_letters_waiting(Some(2));
        let text = m.render();
        assert!(
            text.contains("attest_ingest_events_total{result=\"accepted\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("attest_writer_lag_messages{partition=\"0\",topic=\"t\"} 5"),
            "{text}"
        );
        assert!(text.contains("attest_dead_letters_waiting 2"), "{text}");
    }
}
