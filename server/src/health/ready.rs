//! Readiness (`/readyz`): can this process do its job right now, and if
//! not, what is wrong. Liveness (`/healthz`) only says the process answers.
//!
//! Two kinds of check. Dependencies are asked on every call (Kafka metadata,
//! ClickHouse `SELECT version()`, each with a short timeout, and whether the
//! producer is in a fatal state). The pipeline's
//! own progress is judged by a watchdog that runs beside it: a writer whose
//! task ended, or that made no progress for `writer.stall_after` while the
//! broker says its partitions have lag, and a spool that holds events and
//! has not shrunk for as long. The watchdog logs each finding once at warn
//! level when it appears and when it clears, and counts it in
//! `attest_pipeline_stalled{stage}`, so a stall is never silent.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::core::Collector;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use app::pipeline_model::WriterState;

use crate::config::{ClickHouseConfig, KafkaConfig};
use crate::ingest::now_ms;
use crate::metrics::Metrics;
use crate::produce::EventProducer;
use crate::store::Store;

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
const WATCH_EVERY: Duration = Duration::from_secs(5);
/// Lag figures older than this are not evidence of anything.
const LAG_FRESH_MS: i64 = 30_000;

/// What the writer task reports about itself.
#[derive(Debug, Default)]
pub struct WriterWatch {
    running: AtomicBool,
    /// When the writer last inserted and committed a batch, or started (a
    /// stall is judged from either).
    progress_ms: AtomicI64,
    /// When the writer last inserted and committed a batch; 0 for never.
    /// Shown on the pipeline page.
    last_insert_ms: AtomicI64,
    /// The insert error the writer is backing off from, if it is.
    backing_off: Mutex<Option<String>>,
    /// The last insert error, kept after the writer recovered from it:
    /// the pipeline page shows it beside the state.
    last_error: Mutex<Option<String>>,
    /// The last reason the writer task ended, if it did.
    ended: Mutex<Option<String>>,
    /// Cancels the current writer so its supervisor makes a new one (a new
    /// consumer, so a new group member id).
    restart: Mutex<Option<CancellationToken>>,
}

impl WriterWatch {
    /// A new writer incarnation runs until `restart` fires.
    pub fn started(&self, restart: CancellationToken) {
        self.running.store(true, Ordering::SeqCst);
        self.fresh_start();
        if let Ok(mut ended) = self.ended.lock() {
            *ended = None;
        }
        if let Ok(mut slot) = self.restart.lock() {
            *slot = Some(restart);
        }
    }

    /// A batch was inserted and committed.
    pub fn progressed(&self) {
        let now = now_ms();
        self.last_insert_ms.store(now, Ordering::SeqCst);
        self.progress_ms.store(now, Ordering::SeqCst);
        self.backing_off(None);
    }

    /// A new consumer starts: the stall clock starts again, but nothing
    /// was inserted.
    fn fresh_start(&self) {
        self.progress_ms.store(now_ms(), Ordering::SeqCst);
        self.backing_off(None);
    }

    /// Epoch ms of the last batch inserted and committed, if any.
    pub fn last_insert_ms(&self) -> Option<i64> {
        Some(self.last_insert_ms.load(Ordering::SeqCst)).filter(|&ms| ms > 0)
    }

    pub fn backing_off(&self, error: Option<String>) {
        if let Some(error) = &error {
            if let Ok(mut last) = self.last_error.lock() {
                *last = Some(error.clone());
            }
        }
        if let Ok(mut slot) = self.backing_off.lock() {
            *slot = error;
        }
    }

    fn current(slot: &Mutex<Option<String>>) -> Option<String> {
        slot.lock().ok().and_then(|e| e.clone())
    }

    fn request_restart(&self) {
        if let Ok(slot) = self.restart.lock() {
            if let Some(token) = slot.as_ref() {
                token.cancel();
            }
        }
    }

    pub fn ended(&self, why: String) {
        self.running.store(false, Ordering::SeqCst);
        if let Ok(mut ended) = self.ended.lock() {
            *ended = Some(why);
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Check {
    pub ok: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl Check {
    fn ok(detail: impl Into<String>) -> Check {
        Check {
            ok: true,
            detail: detail.into(),
        }
    }

    fn failed(detail: impl Into<String>) -> Check {
        Check {
            ok: false,
            detail: detail.into(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub ready: bool,
    pub checks: std::collections::BTreeMap<&'static str, Check>,
}

/// The progress findings the watchdog keeps between rounds.
#[derive(Debug, Default)]
struct Progress {
    writer: Option<Check>,
    spool: Option<Check>,
    /// Pending spool events last seen and since when they have not shrunk.
    spool_seen: Option<(i64, i64)>,
}

pub struct Readiness {
    kafka: KafkaConfig,
    clickhouse: ClickHouseConfig,
    store: Store,
    producer: EventProducer,
    metrics: Arc<Metrics>,
    writer: Option<Arc<WriterWatch>>,
    stall_after_ms: i64,
    progress: Mutex<Progress>,
}

impl Readiness {
    pub fn new(
        kafka: KafkaConfig,
        clickhouse: ClickHouseConfig,
        store: Store,
        producer: EventProducer,
        metrics: Arc<Metrics>,
        writer: Option<Arc<WriterWatch>>,
        stall_after: Duration,
    ) -> Readiness {
        Readiness {
            kafka,
            clickhouse,
            store,
            producer,
            metrics,
            writer,
            stall_after_ms: i64::try_from(stall_after.as_millis()).unwrap_or(i64::MAX),
            progress: Mutex::default(),
        }
    }

    /// Asks the dependencies and adds the watchdog's latest findings.
    pub async fn report(&self) -> Report {
        let (kafka, clickhouse) = tokio::join!(
            super::check_kafka(&self.kafka, PROBE_TIMEOUT),
            super::check_clickhouse(&self.clickhouse, &self.store, PROBE_TIMEOUT)
        );
        let mut checks = std::collections::BTreeMap::new();
        checks.insert(
            "kafka",
            kafka.map_or_else(|e| Check::failed(e.to_string()), |()| Check::ok("")),
        );
        checks.insert(
            "clickhouse",
            clickhouse.map_or_else(
                |e| Check::failed(e.to_string()),
                |(major, minor)| Check::ok(format!("version {major}.{minor}")),
            ),
        );
        checks.insert(
            "producer",
            match self.producer.fatal_error() {
                Some(fatal) => Check::failed(format!(
                    "the Kafka producer is in a fatal state ({fatal}); the watchdog replaces it"
                )),
                None => Check::ok(""),
            },
        );
        // The writer's state is read now; the stall and the spool's
        // progress need history, which the watchdog keeps.
        if let Some(watch) = &self.writer {
            let (lag, lag_fresh) = self.lag(now_ms());
            checks.insert(
                "writer",
                writer_state(watch, lag, lag_fresh, now_ms(), self.stall_after_ms),
            );
        }
        if let Ok(progress) = self.progress.lock() {
            if let Some(spool) = &progress.spool {
                checks.insert("spool", spool.clone());
            }
        }
        Report {
            ready: checks.values().all(|c| c.ok),
            checks,
        }
    }

    /// The writer of this process, if it runs one: its state in words (the
    /// same judgement as `/readyz`) and when it last inserted.
    pub fn writer_summary(&self) -> Option<(Check, Option<i64>)> {
        let watch = self.writer.as_ref()?;
        let now = now_ms();
        let (lag, lag_fresh) = self.lag(now);
        Some((
            writer_state(watch, lag, lag_fresh, now, self.stall_after_ms),
            watch.last_insert_ms(),
        ))
    }

    /// The writer of this process, if it runs one, in the pipeline page's
    /// terms (`app::pipeline_model::WriterState`).
    pub fn writer_report(&self) -> Option<WriterReport> {
        let watch = self.writer.as_ref()?;
        let now = now_ms();
        let (lag, lag_fresh) = self.lag(now);
        let check = writer_state(watch, lag, lag_fresh, now, self.stall_after_ms);
        let backing_off = WriterWatch::current(&watch.backing_off);
        let state = if !watch.running.load(Ordering::SeqCst) {
            WriterState::Stopped
        } else if let Some(error) = &backing_off {
            if is_backpressure(error) {
                WriterState::Paused
            } else {
                WriterState::BackingOff
            }
        } else if !check.ok {
            WriterState::Stalled
        } else {
            WriterState::Running
        };
        Some(WriterReport {
            state,
            detail: check.detail,
            last_error: WriterWatch::current(&watch.last_error)
                .or_else(|| WriterWatch::current(&watch.ended)),
            last_insert_ms: watch.last_insert_ms(),
        })
    }

    /// The watchdog: judges progress every few seconds until `stop`.
    pub async fn watch(self: Arc<Self>, stop: CancellationToken) {
        crate::periodic::every(WATCH_EVERY, stop, || async { self.judge(now_ms()) }).await;
    }

    /// Messages behind on every events topic, and whether that figure was
    /// read from the broker recently enough to judge by.
    fn lag(&self, now: i64) -> (i64, bool) {
        let lag: i64 = self
            .metrics
            .writer_lag
            .collect()
            .iter()
            .flat_map(|family| family.get_metric())
            .map(|m| m.get_gauge().get_value() as i64)
            .sum();
        let checked_ms = self.metrics.writer_lag_checked.get().saturating_mul(1000);
        (lag, now.saturating_sub(checked_ms) < LAG_FRESH_MS)
    }

    fn judge(&self, now: i64) {
        // A producer in a fatal state produces nothing more; an idle process
        // would only notice at its next send.
        self.producer.replace_if_fatal();
        let (lag, lag_fresh) = self.lag(now);
        let writer = self
            .writer
            .as_ref()
            .map(|watch| writer_state(watch, lag, lag_fresh, now, self.stall_after_ms));
        let pending = self.metrics.spool_pending_events.get();
        let Ok(mut progress) = self.progress.lock() else {
            return;
        };
        let since = match progress.spool_seen {
            Some((seen, since)) if pending > 0 && pending >= seen => since,
            _ => now,
        };
        progress.spool_seen = Some((pending, since));
        let spool = if pending == 0 {
            Check::ok("empty")
        } else if now - since >= self.stall_after_ms {
            Check::failed(format!(
                "{pending} accepted events have waited in the spool for {} s without it \
                 shrinking: the broker is not taking them",
                (now - since) / 1000
            ))
        } else {
            Check::ok(format!("{pending} events waiting for the broker, draining"))
        };
        report_change(
            "writer",
            progress.writer.as_ref(),
            writer.as_ref(),
            &self.metrics,
        );
        if let (Some(watch), Some(check)) = (&self.writer, &writer) {
            // A stall with the writer not waiting for ClickHouse: its consumer
            // is stuck (say, a group that handed it no partitions). A new one
            // rejoins with a new member id; what it held is re-read.
            if check.detail.starts_with(STALLED) {
                warn!("restarting the writer with a new consumer");
                watch.request_restart();
                watch.fresh_start();
            }
        }
        report_change(
            "spool",
            progress.spool.as_ref(),
            Some(&spool),
            &self.metrics,
        );
        progress.writer = writer;
        progress.spool = Some(spool);
    }
}

fn writer_state(watch: &WriterWatch, lag: i64, lag_fresh: bool, now: i64, stall_ms: i64) -> Check {
    if !watch.running.load(Ordering::SeqCst) {
        let why = watch
            .ended
            .lock()
            .ok()
            .and_then(|e| e.clone())
            .unwrap_or_else(|| "not started".into());
        return Check::failed(format!("the writer is not running: {why}"));
    }
    let idle_ms = now - watch.progress_ms.load(Ordering::SeqCst);
    if let Some(error) = watch.backing_off.lock().ok().and_then(|e| e.clone()) {
        return Check::failed(format!(
            "the writer is backing off after an insert error ({lag} messages behind): {error}"
        ));
    }
    if lag > 0 && lag_fresh && idle_ms >= stall_ms {
        Check::failed(format!(
            "{STALLED}: no progress for {} s while {lag} messages wait on the events topics",
            idle_ms / 1000
        ))
    } else {
        Check::ok(format!("{lag} messages behind"))
    }
}

const STALLED: &str = "the writer is stalled";

/// This process's writer as the pipeline page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterReport {
    pub state: WriterState,
    /// In words, as `/readyz` says it (with the error it backs off from).
    pub detail: String,
    /// The last insert error (or why the writer task ended), if any.
    pub last_error: Option<String>,
    pub last_insert_ms: Option<i64>,
}

/// ClickHouse pushing back rather than failing: too many parts, memory,
/// too many queries, or an insert that did not finish in time. The writer
/// waits with its partitions paused either way; the words tell the
/// operator whether to look at merges and load or at an error.
fn is_backpressure(error: &str) -> bool {
    const TOO_MANY_PARTS: u32 = 252;
    const MEMORY_LIMIT_EXCEEDED: u32 = 241;
    const TOO_MANY_SIMULTANEOUS_QUERIES: u32 = 202;
    const TIMEOUT_EXCEEDED: u32 = 159;
    match crate::store::exception_code(error) {
        Some(code) => [
            TOO_MANY_PARTS,
            MEMORY_LIMIT_EXCEEDED,
            TOO_MANY_SIMULTANEOUS_QUERIES,
            TIMEOUT_EXCEEDED,
        ]
        .contains(&code),
        // `StoreError::Timeout`: the insert outran `writer.insert_timeout`.
        None => error.contains("did not finish the request within"),
    }
}

/// Logs and counts a finding when it appears and when it clears.
fn report_change(stage: &str, before: Option<&Check>, now: Option<&Check>, metrics: &Metrics) {
    let was_bad = before.is_some_and(|c| !c.ok);
    let gauge = metrics.pipeline_stalled.with_label_values(&[stage]);
    match now {
        Some(check) if !check.ok => {
            gauge.set(1);
            if !was_bad {
                warn!(stage, problem = %check.detail, "pipeline stalled");
            }
        }
        _ => {
            gauge.set(0);
            if was_bad {
                info!(stage, "pipeline moving again");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writer_is_stalled_only_with_fresh_lag_and_no_progress() {
        let watch = WriterWatch::default();
        assert!(
            !writer_state(&watch, 0, true, 0, 60_000).ok,
            "never started"
        );
        let restart = CancellationToken::new();
        watch.started(restart.clone());
        assert_eq!(watch.last_insert_ms(), None, "a start is not an insert");
        let t = watch.progress_ms.load(Ordering::SeqCst);
        assert!(
            writer_state(&watch, 0, true, t + 120_000, 60_000).ok,
            "no lag"
        );
        assert!(
            writer_state(&watch, 5, false, t + 120_000, 60_000).ok,
            "stale lag"
        );
        assert!(
            writer_state(&watch, 5, true, t + 30_000, 60_000).ok,
            "not yet"
        );
        let stalled = writer_state(&watch, 5, true, t + 60_000, 60_000);
        assert!(
            !stalled.ok && stalled.detail.contains("5 messages"),
            "{stalled:?}"
        );
        watch.backing_off(Some("Code: 241".into()));
        let waiting = writer_state(&watch, 5, true, t + 60_000, 60_000);
        assert!(
            !waiting.ok && waiting.detail.contains("backing off"),
            "{waiting:?}"
        );
        watch.progressed();
        assert!(watch.last_insert_ms().is_some());
        watch.request_restart();
        assert!(restart.is_cancelled());
        watch.ended("it panicked: boom".into());
        let ended = writer_state(&watch, 0, true, t, 60_000);
        assert!(ended.detail.contains("boom"), "{ended:?}");
        assert_eq!(
            WriterWatch::current(&watch.last_error).as_deref(),
            Some("Code: 241"),
            "the last insert error outlives the backoff"
        );
    }

    #[test]
    fn backpressure_is_told_from_other_insert_errors() {
        assert!(is_backpressure(
            "ClickHouse request failed: Code: 252, e.displayText() = DB::Exception: Too many parts"
        ));
        assert!(is_backpressure(
            "ClickHouse did not finish the request within 30s"
        ));
        assert!(!is_backpressure(
            "ClickHouse request failed: network error: connection refused"
        ));
        assert!(!is_backpressure(
            "Code: 60. DB::Exception: Table doesn't exist"
        ));
    }
}
