//! Which server process does a job that must run once: the one the Kafka
//! group coordinator assigns the single partition of
//! `<prefix>.<role>-leader` to (docs/DESIGN.md, "Alerts: one evaluator").
//! The alert evaluator (role `alerts`) and the trends sampler (role
//! `trends`) each hold their own election. Every process with the job
//! enabled joins the group `<consumer_group>.<role>`; nothing is ever
//! produced to the topic, the group is only an election. Kafka hands the
//! partition to one member at a time, and with the eager assignors the
//! group uses, a member gives it up at the start of a rebalance before
//! anyone else gets it. A process that dies without leaving loses it after
//! `kafka.session_timeout`; one that leaves (a shutdown) at once.
//!
//! It needs only the broker, so it keeps working while ClickHouse is down,
//! which is when alerts matter most.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::KafkaConfig;
use crate::produce::{ensure_topics, ProduceError};

/// The election topic's name for `prefix`.
pub fn topic(prefix: &str, role: &str) -> String {
    format!("{prefix}.{role}-leader")
}

/// The election group's id.
pub fn group(consumer_group: &str, role: &str) -> String {
    format!("{consumer_group}.{role}")
}

/// How often the consumer is polled, which keeps it in the group and runs
/// rebalances (and their callbacks).
const POLL: Duration = Duration::from_millis(500);

#[derive(Debug, Default)]
pub struct Leadership {
    elected: AtomicBool,
    role: Role,
}

impl Leadership {
    pub fn elected(&self) -> bool {
        self.elected.load(Ordering::SeqCst)
    }
}

/// Follows the rebalances as they happen, inside the consumer's poll: the
/// partition is marked lost before the rebalance that hands it to another
/// process can complete, so two processes never both read as elected.
struct Election {
    leadership: Arc<Leadership>,
}

/// What a [`Leadership`] is for, in its log lines.
#[derive(Debug, Default)]
struct Role(String);

impl ClientContext for Election {}

impl ConsumerContext for Election {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if !matches!(rebalance, Rebalance::Assign(_)) {
            self.leadership.set(false);
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            self.leadership.set(list.count() > 0);
        }
    }
}

impl Leadership {
    fn set(&self, now: bool) {
        if self.elected.swap(now, Ordering::SeqCst) != now {
            info!(
                elected = now,
                role = %self.role.0,
                "election: this process {} the {} leader",
                if now { "is now" } else { "is no longer" },
                self.role.0
            );
        }
    }
}

/// Creates the one-partition topic if needed.
pub async fn prepare(kafka: &KafkaConfig, role: &str) -> Result<(), ProduceError> {
    let one = KafkaConfig {
        partitions: 1,
        ..kafka.clone()
    };
    ensure_topics(&one, &[topic(&kafka.topic_prefix, role)]).await
}

/// Joins the election and keeps [`Leadership`] current until `stop`; then
/// leaves the group, so another process takes over at once.
pub fn join(
    kafka: &KafkaConfig,
    role: &str,
    stop: CancellationToken,
) -> Result<Arc<Leadership>, rdkafka::error::KafkaError> {
    let leadership = Arc::new(Leadership {
        elected: AtomicBool::new(false),
        role: Role(role.to_owned()),
    });
    let context = Election {
        leadership: leadership.clone(),
    };
    let consumer: StreamConsumer<Election> = ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .set("group.id", group(&kafka.consumer_group, role))
        .set("client.id", format!("attest-{role}"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set(
            "session.timeout.ms",
            kafka.session_timeout.as_millis().to_string(),
        )
        .create_with_context(context)?;
    consumer.subscribe(&[&topic(&kafka.topic_prefix, role)])?;
    let state = leadership.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                received = tokio::time::timeout(POLL, consumer.recv()) => {
                    if let Ok(Err(error)) = received {
                        warn!(%error, "election: kafka consumer error");
                    }
                }
            }
        }
        state.set(false);
        // Leaving the group hands the partition on without waiting for the
        // session to time out.
        consumer.unsubscribe();
        drop(consumer);
    });
    Ok(leadership)
}
