//! Pipeline alerts: rules over the figures the pipeline page already
//! gathers (`health::pipeline`), evaluated every `alerts.evaluate_every` by
//! the one server process elected through Kafka (`leader`), with firing
//! and resolved states (`state`), delivered to webhooks (`crate::notify`)
//! and recorded in ClickHouse (`store::alerts`).
//!
//! ClickHouse being down is one of the things alerts are for, so nothing
//! here waits for it: the election needs only the broker, deliveries go
//! out at once, and the rows that record them wait in a bounded outbox
//! until ClickHouse takes them.

pub mod console;
pub(crate) mod leader;
mod rules;
mod state;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::alerts_model::{AlertChange, DeliveryAttempt, FiringAlert, RuleSettings};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{AlertsConfig, KafkaConfig};
use crate::health::pipeline::PipelineCollector;
use crate::ingest::now_ms;
use crate::metrics::{Metrics, ALERT_RULES};
use crate::notify::{AttemptLog, Message, Notifier};
use crate::store::{RulesRow, Store};
pub use leader::Leadership;
/// The alert evaluator's election (`leader`).
const ROLE: &str = "alerts";

/// The alerts election's topic for `prefix`.
pub fn election_topic(prefix: &str) -> String {
    leader::topic(prefix, ROLE)
}

/// The alerts election's group.
pub fn election_group(consumer_group: &str) -> String {
    leader::group(consumer_group, ROLE)
}
use rules::{Observer, Round};
use state::{Book, Change, Firing};

/// Rows kept while ClickHouse cannot take them; past it the oldest go
/// (and the log says so): the deliveries themselves are not held back.
const OUTBOX_MAX: usize = 10_000;
/// Longest the dead-letter count may take to read.
const DEAD_LETTER_BUDGET: Duration = Duration::from_secs(3);
/// How much history the page lists.
const HISTORY_ROWS: u32 = 200;
const DELIVERY_ROWS: u32 = 300;

#[derive(Debug, thiserror::Error)]
pub enum AlertStartError {
    #[error("cannot prepare the alerts election topic: {0}")]
    Topic(#[from] crate::produce::ProduceError),
    #[error("cannot join the alerts election: {0}")]
    Election(#[from] rdkafka::error::KafkaError),
}

enum Pending {
    Change(AlertChange),
    Delivery(DeliveryAttempt),
}

/// Rows on their way to ClickHouse.
#[derive(Default)]
struct Outbox {
    rows: Mutex<VecDeque<Pending>>,
}

impl Outbox {
    fn push(&self, row: Pending) {
        if let Ok(mut rows) = self.rows.lock() {
            if rows.len() >= OUTBOX_MAX {
                rows.pop_front();
                warn!("alerts outbox full while ClickHouse is away; dropped its oldest row");
            }
            rows.push_back(row);
        }
    }

    /// Writes rows oldest first until one fails; that one waits for the
    /// next round, with those behind it.
    async fn flush(&self, store: &Store) {
        loop {
            let next = self.rows.lock().ok().and_then(|mut rows| rows.pop_front());
            let Some(row) = next else { return };
            let written = match &row {
                Pending::Change(change) => store.record_alert_change(change).await,
                Pending::Delivery(attempt) => store.record_delivery(attempt).await,
            };
            if written.is_err() {
                if let Ok(mut rows) = self.rows.lock() {
                    rows.push_front(row);
                }
                return;
            }
        }
    }
}

impl AttemptLog for Outbox {
    fn record(&self, attempt: DeliveryAttempt) {
        self.push(Pending::Delivery(attempt));
    }
}

/// The alerts of this process: its part in the election, and the
/// evaluation while it is elected.
pub struct Alerts {
    config: AlertsConfig,
    kafka: KafkaConfig,
    store: Store,
    collector: Arc<PipelineCollector>,
    metrics: Arc<Metrics>,
    notifier: Notifier,
    leadership: Arc<leader::Leadership>,
    outbox: Arc<Outbox>,
    /// The thresholds in force, and who saved them.
    rules: Mutex<(RuleSettings, Option<RulesRow>)>,
    /// What this process's evaluator holds as firing, for the page while
    /// ClickHouse cannot say.
    live: Mutex<Vec<FiringAlert>>,
}

/// What the evaluator keeps between rounds.
#[derive(Default)]
struct Evaluation {
    observer: Observer,
    book: Book,
    elected: bool,
    /// Alerts a previous evaluator left firing have been taken over.
    adopted: bool,
}

impl Alerts {
    /// Joins the election and starts the webhook workers; [`Alerts::run`]
    /// evaluates.
    pub async fn start(
        config: AlertsConfig,
        kafka: &KafkaConfig,
        store: Store,
        collector: Arc<PipelineCollector>,
        metrics: Arc<Metrics>,
        stop: &CancellationToken,
    ) -> Result<Arc<Alerts>, AlertStartError> {
        leader::prepare(kafka, ROLE).await?;
        let leadership = leader::join(kafka, ROLE, stop.clone())?;
        let outbox = Arc::new(Outbox::default());
        let notifier = Notifier::start(
            &config.webhooks,
            &config.delivery,
            outbox.clone(),
            metrics.clone(),
            stop.clone(),
        );
        Ok(Arc::new(Alerts {
            rules: Mutex::new((config.rules.clone(), None)),
            config,
            kafka: kafka.clone(),
            store,
            collector,
            metrics,
            notifier,
            leadership,
            outbox,
            live: Mutex::default(),
        }))
    }

    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let evaluation = tokio::sync::Mutex::new(Evaluation::default());
        crate::periodic::every(self.config.evaluate_every, stop, || async {
            let mut evaluation = evaluation.lock().await;
            self.round(&mut evaluation).await;
        })
        .await;
    }

    pub fn elected(&self) -> bool {
        self.leadership.elected()
    }

    /// This process's part in the election, for detections: the same
    /// process evaluates both.
    pub fn leadership(&self) -> Arc<Leadership> {
        self.leadership.clone()
    }

    /// Where delivery attempts go (the outbox to ClickHouse), for other
    /// senders through `crate::notify`.
    pub fn attempt_log(&self) -> Arc<dyn AttemptLog> {
        self.outbox.clone()
    }

    async fn round(&self, e: &mut Evaluation) {
        self.outbox.flush(&self.store).await;
        let elected = self.leadership.elected();
        self.metrics.alert_evaluator.set(i64::from(elected));
        if !elected {
            if e.elected {
                // Another process evaluates now; what this one held is
                // its business (it takes over the firing alerts).
                *e = Evaluation::default();
                self.publish_firing(&e.book);
            }
            return;
        }
        e.elected = true;
        let rules = self.refresh_rules().await;
        if !e.adopted {
            match self.store.firing_alerts().await {
                Ok(firing) => {
                    for alert in firing {
                        if let Some(rule) = ALERT_RULES.iter().find(|r| **r == alert.rule) {
                            e.book.adopt(
                                rule,
                                Firing {
                                    alert_id: alert.alert_id,
                                    summary: alert.summary,
                                    since_ms: i64::try_from(alert.since_ms).unwrap_or(0),
                                },
                            );
                        }
                    }
                    e.adopted = true;
                }
                // Evaluating without them risks one repeated "firing";
                // not evaluating would keep quiet through an outage.
                Err(error) => {
                    warn!(%error, "cannot read the alerts left firing; evaluating without them")
                }
            }
        }
        let snapshot = self.collector.snapshot().await;
        let dead_letters = dead_letter_count(&self.kafka).await;
        let now = now_ms();
        let round = Round {
            now_ms: now,
            snapshot: &snapshot,
            dead_letters,
            integrity_problems: self.metrics.integrity_problems.get(),
        };
        let (found, average) = e.observer.judge(&rules, &round);
        self.metrics.writer_lag_judged(
            snapshot
                .kafka
                .reachable
                .then_some(snapshot.kafka.total.max_lag_ms),
            average,
        );
        let changes = e.book.update(
            &found,
            now,
            millis(self.config.fire_after),
            millis(self.config.resolve_after),
            || uuid::Uuid::now_v7().to_string(),
        );
        // The collection took a while: another process may have been
        // elected meanwhile. It adopts what this one records.
        if !self.leadership.elected() {
            return;
        }
        for change in changes {
            let (row, message) = describe(&change);
            info!(rule = %row.rule, state = %row.state, alert_id = %row.alert_id, summary = %row.summary, "alert");
            self.outbox.push(Pending::Change(row));
            self.notifier.deliver(&message);
        }
        self.publish_firing(&e.book);
        self.outbox.flush(&self.store).await;
    }

    fn publish_firing(&self, book: &Book) {
        let mut live = Vec::new();
        for rule in ALERT_RULES {
            let firing = book.firing().find(|(r, _)| *r == rule);
            self.metrics
                .alerts_firing
                .with_label_values(&[rule])
                .set(i64::from(firing.is_some()));
            if let Some((_, alert)) = firing {
                live.push(FiringAlert {
                    alert_id: alert.alert_id.clone(),
                    rule: rule.to_owned(),
                    summary: alert.summary.clone(),
                    since_ms: u64::try_from(alert.since_ms).unwrap_or(0),
                });
            }
        }
        if let Ok(mut slot) = self.live.lock() {
            *slot = live;
        }
    }

    /// The console's saved thresholds if there are any (and they still
    /// parse), else the configured ones; the last known while ClickHouse
    /// cannot say.
    async fn refresh_rules(&self) -> RuleSettings {
        let saved = self.store.alert_rules().await;
        let Ok(mut slot) = self.rules.lock() else {
            return self.config.rules.clone();
        };
        match saved {
            Ok(Some(row)) => match serde_json::from_str::<RuleSettings>(&row.settings) {
                Ok(rules) if rules.validate().is_ok() => *slot = (rules, Some(row)),
                _ => warn!("saved alert rules do not parse; keeping the ones in force"),
            },
            Ok(None) => *slot = (self.config.rules.clone(), None),
            Err(_) => {}
        }
        slot.0.clone()
    }
}

/// The row to store and the message to deliver for one change.
fn describe(change: &Change) -> (AlertChange, Message) {
    let (rule, alert, state, at_ms) = match change {
        Change::Fired { rule, alert } => (*rule, alert, "firing", alert.since_ms),
        Change::Resolved { rule, alert, at_ms } => (*rule, alert, "resolved", *at_ms),
    };
    let at = u64::try_from(at_ms).unwrap_or(0);
    let row = AlertChange {
        alert_id: alert.alert_id.clone(),
        rule: rule.to_owned(),
        state: state.to_owned(),
        summary: alert.summary.clone(),
        at_ms: at,
    };
    let message = Message {
        subject: format!("alert:{}:{state}", alert.alert_id),
        json: json!({
            "source": "attest",
            "type": "alert",
            "alert_id": alert.alert_id,
            "rule": rule,
            "state": state,
            "summary": alert.summary,
            "started_at_ms": alert.since_ms,
            "at_ms": at_ms,
        }),
        text: format!(
            "[{}] Attest {rule}: {}",
            state.to_uppercase(),
            alert.summary
        ),
        colour: if state == "firing" {
            "#d00000"
        } else {
            "#2eb886"
        },
    };
    (row, message)
}

/// Messages ever written to the dead-letter topic: the sum of its
/// partitions' end offsets, read from the broker (every writer's dead
/// letters, not only this process's).
async fn dead_letter_count(kafka: &KafkaConfig) -> Option<i64> {
    let kafka = kafka.clone();
    let read = tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &kafka.brokers)
            .create()
            .ok()?;
        let topic = crate::topics::dead_letters(&kafka.topic_prefix);
        let metadata = consumer
            .fetch_metadata(Some(&topic), DEAD_LETTER_BUDGET)
            .ok()?;
        let partitions = metadata.topics().first()?.partitions().len();
        let mut total: i64 = 0;
        for p in 0..partitions {
            let p = i32::try_from(p).ok()?;
            let (_, high) = consumer
                .fetch_watermarks(&topic, p, DEAD_LETTER_BUDGET)
                .ok()?;
            total = total.saturating_add(high);
        }
        Some(total)
    });
    tokio::time::timeout(DEAD_LETTER_BUDGET * 2, read)
        .await
        .ok()?
        .ok()?
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_changed() {
        let alert = Firing {
            alert_id: "a-1".into(),
            summary: "ClickHouse node http://ch:8123 is down".into(),
            since_ms: 1_000,
        };
        let (row, message) = describe(&Change::Fired {
            rule: "clickhouse_down",
            alert: alert.clone(),
        });
        assert_eq!((row.state.as_str(), row.at_ms), ("firing", 1_000));
        assert_eq!(message.subject, "alert:a-1:firing");
        assert_eq!(message.json["rule"], "clickhouse_down");
        assert!(message.text.starts_with("[FIRING] Attest clickhouse_down"));
        let (row, message) = describe(&Change::Resolved {
            rule: "clickhouse_down",
            alert,
            at_ms: 9_000,
        });
        assert_eq!((row.state.as_str(), row.at_ms), ("resolved", 9_000));
        assert_eq!(message.json["started_at_ms"], 1_000);
        assert_eq!(message.colour, "#2eb886");
    }
}
