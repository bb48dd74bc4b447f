//! The pipeline page's figures, collected in one place: the Kafka cluster
//! and the writer group's lag and members (from the brokers), this
//! process's writer and spool (from the watchdog and the metrics), every
//! other process's (from their reports, `super::procs`), and the ClickHouse
//! node (from its system tables), and how many dead letters wait (from the
//! dead-letter topic's offsets and the handled letters, `crate::dlq::waiting`).
//! The result is `app::pipeline_model::PipelineSnapshot`,
//! which the server function and the live stream both send.
//!
//! Every question is bounded: the Kafka half has `KAFKA_BUDGET` in all
//! (each broker call gets what is left of it), each ClickHouse question
//! `CLICKHOUSE_TIMEOUT`. A broker or node that does not answer shows as down
//! with why; the page never hangs. A snapshot is reused for `FRESH`, so
//! several admins watching cost the brokers one collection, not one each.

use std::sync::Arc;
use std::time::{Duration, Instant};

use app::pipeline_model::{
    below_min_insync, bucket_delta, lag_messages, lag_ms, near_parts_limit, per_minute, quantile,
    under_replicated, BrokerHealth, ClickHouseHealth, DeadLettersHealth, DiskSpace, IngestHealth,
    KafkaHealth, LagTotals, PartitionHealth, PartsInPartition, PipelineSnapshot, ProcessesHealth,
    SpoolHealth, TopicHealth, WriterHealth,
};
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::Mutex;
use tracing::warn;

use super::procs::Reporter;
use super::ready::Readiness;
use crate::config::{redact_url, ClickHouseConfig, KafkaConfig};
use crate::dlq::waiting;
use crate::ingest::now_ms;
use crate::metrics::Metrics;
use crate::store::{RetainedRange, Store};
use crate::topics;

/// All the broker calls of one collection together.
const KAFKA_BUDGET: Duration = Duration::from_secs(4);
const CLICKHOUSE_TIMEOUT: Duration = Duration::from_secs(2);
/// The writer group's member list, out of `KAFKA_BUDGET`.
const GROUP_BUDGET: Duration = Duration::from_secs(1);
/// How long one snapshot is served before the next collection (so the
/// page, its stream and the samplers share one collection).
pub const FRESH: Duration = Duration::from_secs(2);
/// Reading the oldest waiting dead letter's timestamp (one record per
/// partition with letters waiting), after the Kafka half.
const DEAD_LETTER_AGE_BUDGET: Duration = Duration::from_secs(1);
/// The span the ingest figures cover.
const INGEST_WINDOW_MS: i64 = 60_000;

/// This process's ingest counters at one instant.
#[derive(Clone, Debug, Default)]
struct IngestReading {
    at_ms: i64,
    accepted: u64,
    rejected: u64,
    busy: u64,
    unavailable: u64,
    latency: Vec<(f64, u64)>,
    requests: u64,
}

impl IngestReading {
    fn now(metrics: &Metrics) -> IngestReading {
        let count = |result: &str| metrics.ingest_events.with_label_values(&[result]).get();
        let (latency, requests) =
            crate::metrics::histogram_buckets(&metrics.ingest_request_seconds);
        IngestReading {
            at_ms: now_ms(),
            accepted: count("accepted"),
            rejected: count("rejected"),
            busy: count("busy"),
            unavailable: count("unavailable"),
            latency,
            requests,
        }
    }
}

/// Readings of the last minute, oldest first: the first is the window's
/// baseline. Starts with the process's zero counters, so the first page
/// counts from start-up.
#[derive(Debug)]
struct IngestWindow {
    readings: std::collections::VecDeque<IngestReading>,
}

impl IngestWindow {
    fn new(at_ms: i64) -> IngestWindow {
        IngestWindow {
            readings: std::collections::VecDeque::from([IngestReading {
                at_ms,
                ..IngestReading::default()
            }]),
        }
    }

    /// Adds `now` and says what happened since the reading a minute ago
    /// (or the oldest kept, if younger).
    fn figures(&mut self, now: IngestReading) -> IngestHealth {
        // Keep the newest reading at least a minute old as the baseline.
        while self
            .readings
            .get(1)
            .is_some_and(|r| now.at_ms.saturating_sub(r.at_ms) >= INGEST_WINDOW_MS)
        {
            self.readings.pop_front();
        }
        let figures = match self.readings.front() {
            Some(before) => ingest_between(before, &now),
            None => IngestHealth::default(),
        };
        self.readings.push_back(now);
        figures
    }
}

/// The ingest figures between two readings of the same process.
fn ingest_between(before: &IngestReading, now: &IngestReading) -> IngestHealth {
    let window_ms = now.at_ms.saturating_sub(before.at_ms).max(0);
    let latency = bucket_delta(&before.latency, &now.latency);
    let requests = now.requests.saturating_sub(before.requests);
    let ms = |q: f64| quantile(&latency, requests, q).map(|s| s * 1_000.0);
    IngestHealth {
        window_ms,
        accepted_per_min: per_minute(before.accepted, now.accepted, window_ms),
        rejected_per_min: per_minute(before.rejected, now.rejected, window_ms),
        busy: now.busy.saturating_sub(before.busy),
        unavailable: now.unavailable.saturating_sub(before.unavailable),
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
    }
}

pub struct PipelineCollector {
    kafka: KafkaConfig,
    node: String,
    store: Store,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    /// Every process's reports; without it (a collector made outside a
    /// server) the page lists no processes.
    reporter: Option<Arc<Reporter>>,
    last: Mutex<Option<(Instant, PipelineSnapshot)>>,
    ingest: std::sync::Mutex<IngestWindow>,
}

impl PipelineCollector {
    pub fn new(
        kafka: KafkaConfig,
        clickhouse: &ClickHouseConfig,
        store: Store,
        metrics: Arc<Metrics>,
        readiness: Arc<Readiness>,
    ) -> PipelineCollector {
        PipelineCollector {
            kafka,
            node: redact_url(&clickhouse.url),
            store,
            metrics,
            readiness,
            reporter: None,
            last: Mutex::new(None),
            ingest: std::sync::Mutex::new(IngestWindow::new(now_ms())),
        }
    }

    /// Lists every process from `reporter`'s reports, this one as it is.
    pub fn with_processes(mut self, reporter: Arc<Reporter>) -> PipelineCollector {
        self.reporter = Some(reporter);
        self
    }

    /// The figures now, or from the last `FRESH`. Callers that arrive
    /// during a collection wait for it rather than start their own.
    pub async fn snapshot(&self) -> PipelineSnapshot {
        let mut last = self.last.lock().await;
        if let Some((at, snapshot)) = last.as_ref() {
            if at.elapsed() < FRESH {
                return snapshot.clone();
            }
        }
        let snapshot = self.collect().await;
        *last = Some((Instant::now(), snapshot.clone()));
        snapshot
    }

    async fn collect(&self) -> PipelineSnapshot {
        let started = Instant::now();
        let taken_at_ms = now_ms();
        let others = async {
            match &self.reporter {
                Some(reporter) => Some(reporter.others().await),
                None => None,
            }
        };
        let ((kafka, retained), nodes, others) =
            tokio::join!(self.kafka_health(), self.nodes_health(), others);
        let dead_letters = self.dead_letters_health(retained).await;
        self.metrics.dead_letters_waiting(dead_letters.waiting);
        // The first configured node is the writer's and the migrations'.
        let clickhouse = nodes.first().cloned().unwrap_or_else(|| ClickHouseHealth {
            node: self.node.clone(),
            problems: vec!["no ClickHouse node is configured".into()],
            ..ClickHouseHealth::default()
        });
        let writer = match self.readiness.writer_summary() {
            Some((check, last_insert_ms)) => WriterHealth {
                in_this_process: true,
                ok: check.ok,
                // The lag in the words of `/readyz` comes from gauges that
                // are refreshed every few seconds; the page shows the
                // broker's own figures below, so only the state is said here.
                state: if check.ok {
                    "running".to_owned()
                } else {
                    check.detail
                },
                last_insert_ms,
                rows_written: self.metrics.writer_rows_written.get(),
            },
            None => WriterHealth {
                in_this_process: false,
                ok: true,
                state: "this process runs no writer (writer.enabled is off); the lag below is \
                        the group's, whichever process writes"
                    .into(),
                last_insert_ms: None,
                rows_written: 0,
            },
        };
        let oldest = self.metrics.spool_oldest_pending_ms();
        let spool = SpoolHealth {
            pending_events: self.metrics.spool_pending_events.get(),
            pending_bytes: self.metrics.spool_pending_bytes.get(),
            oldest_age_ms: (oldest > 0).then(|| now_ms().saturating_sub(oldest).max(0)),
        };
        let reading = IngestReading::now(&self.metrics);
        let ingest = match self.ingest.lock() {
            Ok(mut window) => window.figures(reading),
            Err(_) => IngestHealth::default(),
        };
        let processes = match (&self.reporter, others) {
            (Some(reporter), Some(others)) => {
                reporter.processes(others, kafka.group_members.as_deref())
            }
            _ => ProcessesHealth::default(),
        };
        PipelineSnapshot {
            taken_at_ms,
            collect_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
            kafka,
            writer,
            spool,
            ingest,
            clickhouse,
            nodes,
            processes,
            dead_letters,
        }
    }

    /// How many dead letters wait, from the dead-letter topic's retained
    /// ranges (read with the Kafka half) and one grouped count of the
    /// handled letters within them; and the oldest waiting letter's age
    /// from its record's timestamp, one record per partition.
    async fn dead_letters_health(
        &self,
        retained: Result<Vec<RetainedRange>, String>,
    ) -> DeadLettersHealth {
        let topic = topics::dead_letters(&self.kafka.topic_prefix);
        let uncounted = |problem: String| DeadLettersHealth {
            topic: topic.clone(),
            problems: vec![format!("dead letters not counted: {problem}")],
            ..DeadLettersHealth::default()
        };
        let retained = match retained {
            Ok(ranges) => ranges,
            Err(problem) => return uncounted(problem),
        };
        let handled = match tokio::time::timeout(
            CLICKHOUSE_TIMEOUT,
            self.store.handled_dead_letters_within(&topic, &retained),
        )
        .await
        {
            Ok(Ok(handled)) => handled,
            Ok(Err(error)) => {
                return uncounted(format!("the handled letters were not read: {error}"))
            }
            Err(_) => {
                return uncounted(format!(
                    "the handled letters were not read within {} s",
                    CLICKHOUSE_TIMEOUT.as_secs()
                ))
            }
        };
        let partitions = waiting::waiting_per_partition(&retained, &handled);
        let starts: Vec<(String, i32, i64)> = partitions
            .iter()
            .filter_map(|p| p.first_waiting.map(|o| (topic.clone(), p.partition, o)))
            .collect();
        let mut oldest = None;
        if !starts.is_empty() {
            let kafka = self.kafka.clone();
            let deadline = Instant::now() + DEAD_LETTER_AGE_BUDGET;
            let read = tokio::task::spawn_blocking(move || {
                let mut list = TopicPartitionList::new();
                for (topic, partition, offset) in &starts {
                    list.add_partition_offset(topic, *partition, Offset::Offset(*offset))
                        .ok()?;
                }
                let found = oldest_waiting(&kafka, &list, &starts, deadline);
                // The oldest of all or none: a partition that did not
                // answer in time may hold the oldest.
                if found.len() < starts.len() {
                    return None;
                }
                found.iter().map(|(_, _, ts)| *ts).min()
            });
            if let Ok(Ok(found)) =
                tokio::time::timeout(DEAD_LETTER_AGE_BUDGET + Duration::from_secs(1), read).await
            {
                oldest = found;
            }
        }
        let mut health = waiting::health(&topic, &partitions, oldest, now_ms());
        if health.waiting.unwrap_or(0) > 0 && health.oldest_age_ms.is_none() {
            health
                .problems
                .push("the oldest waiting letter could not be read in time".into());
        }
        health
    }

    /// Every configured node, asked directly and at once, with its place
    /// in the read rotation.
    async fn nodes_health(&self) -> Vec<ClickHouseHealth> {
        let found = self.store.every_node_figures(CLICKHOUSE_TIMEOUT).await;
        let (states, serving) = match self.store.read_nodes() {
            Some(nodes) => (Some(nodes.states()), nodes.serving()),
            None => (None, 0),
        };
        found
            .into_iter()
            .enumerate()
            .map(|(i, (node, figures))| {
                let in_rotation = states
                    .as_ref()
                    .and_then(|s| s.get(i))
                    .is_none_or(|s| s.in_rotation);
                let mut health = node_health(node, figures);
                health.in_rotation = in_rotation;
                health.serves_reads = i == serving;
                health
            })
            .collect()
    }

    /// The cluster's figures, and the dead-letter topic's retained ranges
    /// read with the same client and metadata (or why not).
    async fn kafka_health(&self) -> (KafkaHealth, Result<Vec<RetainedRange>, String>) {
        let deadline = Instant::now() + KAFKA_BUDGET;
        let (kafka, topics) = (
            self.kafka.clone(),
            topics::event_topics(&self.kafka.topic_prefix),
        );
        // librdkafka's calls block their thread: off the async workers, and
        // given up on (not waited for) past the budget.
        let measured = tokio::time::timeout(
            KAFKA_BUDGET + Duration::from_secs(1),
            tokio::task::spawn_blocking(move || {
                let mut retained = Err("the Kafka check ended before reaching it".to_owned());
                let health = measure(&kafka, &topics, deadline, &mut retained);
                (health, retained)
            }),
        )
        .await;
        let (mut health, retained) = match measured {
            Ok(Ok(measured)) => measured,
            Ok(Err(error)) => {
                let why = format!("the check failed: {error}");
                (unreachable_cluster(&self.kafka, why.clone()), Err(why))
            }
            Err(_) => {
                let why = format!("no answer within {} s", KAFKA_BUDGET.as_secs());
                (unreachable_cluster(&self.kafka, why.clone()), Err(why))
            }
        };
        health.consumer_group = self.kafka.consumer_group.clone();
        if health.reachable {
            self.apply_min_insync(&mut health).await;
        }
        let mut total = LagTotals::default();
        for topic in &mut health.topics {
            topic.total = LagTotals::of(&topic.partitions);
            total.add(&topic.total);
        }
        health.total = total;
        (health, retained)
    }

    /// Reads each topic's `min.insync.replicas` from the brokers (an
    /// operator may have changed it since Attest created the topic) and
    /// flags the partitions below it. If the brokers do not say, the
    /// configured value stands in, and the page says so.
    async fn apply_min_insync(&self, health: &mut KafkaHealth) {
        let configured = self.kafka.min_insync_replicas;
        let names: Vec<String> = health.topics.iter().map(|t| t.topic.clone()).collect();
        let from_brokers = match min_insync_of(&self.kafka, &names).await {
            Ok(found) => found,
            Err(problem) => {
                health.problems.push(format!(
                    "min.insync.replicas could not be read ({problem}); using the configured {configured}"
                ));
                Vec::new()
            }
        };
        for topic in &mut health.topics {
            topic.min_insync_replicas = from_brokers
                .iter()
                .find(|(name, _)| *name == topic.topic)
                .map_or(configured, |(_, min)| *min);
            for p in &mut topic.partitions {
                p.below_min_insync = below_min_insync(&p.in_sync, topic.min_insync_replicas);
            }
        }
    }
}

/// What the page shows of one node's figures.
fn node_health(node: String, f: crate::store::NodeFigures) -> ClickHouseHealth {
    let limit = f.parts_to_throw_insert;
    ClickHouseHealth {
        node,
        in_rotation: true,
        serves_reads: false,
        replication_queue: f.replication.map(|(queue, _)| queue),
        replication_delay_s: f.replication.map(|(_, delay)| delay),
        up: f.read_latency.is_some(),
        problems: f.problems,
        version: f.version.unwrap_or_default(),
        uptime_s: f.uptime_s.unwrap_or(0),
        read_latency_ms: f
            .read_latency
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        parts_to_throw_insert: limit,
        partitions: f
            .parts
            .unwrap_or_default()
            .into_iter()
            .map(|p| PartsInPartition {
                near_limit: near_parts_limit(p.active_parts, limit),
                partition: p.partition,
                active_parts: p.active_parts,
            })
            .collect(),
        merges_running: f.merges,
        disks: f.disks.and_then(|disks| {
            disks.map(|rows| {
                rows.into_iter()
                    .map(|d| DiskSpace {
                        name: d.name,
                        free_bytes: d.free_bytes,
                        total_bytes: d.total_bytes,
                    })
                    .collect()
            })
        }),
    }
}

/// What the page says when the cluster did not answer at all: every
/// configured broker down, with why.
fn unreachable_cluster(kafka: &KafkaConfig, why: String) -> KafkaHealth {
    KafkaHealth {
        reachable: false,
        brokers: kafka
            .brokers
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|address| BrokerHealth {
                id: -1,
                address: address.to_owned(),
                up: false,
                detail: why.clone(),
            })
            .collect(),
        problems: vec![format!("Kafka at {}: {why}", kafka.brokers)],
        ..KafkaHealth::default()
    }
}

/// Which brokers answer. Kafka's metadata lists only live brokers, so those
/// listed are up; a broker that a partition names as a replica but the
/// metadata does not list is down, and so is an address of `kafka.brokers`
/// (the bootstrap list) that no listed broker has.
fn broker_states(
    listed: &[(i32, String)],
    replica_ids: &[i32],
    configured: &str,
) -> Vec<BrokerHealth> {
    let mut brokers: Vec<BrokerHealth> = listed
        .iter()
        .map(|(id, address)| BrokerHealth {
            id: *id,
            address: address.clone(),
            up: true,
            detail: String::new(),
        })
        .collect();
    let mut missing: Vec<i32> = replica_ids
        .iter()
        .copied()
        .filter(|id| !listed.iter().any(|(known, _)| known == id))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    brokers.extend(missing.into_iter().map(|id| BrokerHealth {
        id,
        address: String::new(),
        up: false,
        detail: "holds replicas but is not in the cluster's metadata".into(),
    }));
    for address in configured.split(',').map(str::trim) {
        if !address.is_empty() && !listed.iter().any(|(_, a)| a == address) {
            brokers.push(BrokerHealth {
                id: -1,
                address: address.to_owned(),
                up: false,
                detail: "configured in kafka.brokers but not in the cluster's metadata".into(),
            });
        }
    }
    brokers
}

/// Time left before `deadline`, or `None` when it has passed.
fn left(deadline: Instant) -> Option<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    (!left.is_zero()).then_some(left)
}

fn client(kafka: &KafkaConfig, group: &str) -> Result<BaseConsumer, rdkafka::error::KafkaError> {
    ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .set("group.id", group)
        // Never commits: these clients read the group's commits and peek
        // at messages, they must not move anything.
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .create()
}

/// Blocking: the cluster's brokers, the partitions of the events topics
/// with their replicas, end offsets, the group's commits, and the age of
/// the oldest message waiting on each partition that has lag. Last, into
/// `dead_letters`, the dead-letter topic's retained ranges.
fn measure(
    kafka: &KafkaConfig,
    topics: &[String],
    deadline: Instant,
    dead_letters: &mut Result<Vec<RetainedRange>, String>,
) -> KafkaHealth {
    let out_of_time = || unreachable_cluster(kafka, "ran out of time".into());
    // Same group id as the writers, never subscribed: it reads the group's
    // commits without joining it (as `health::lag` does).
    let reader = match client(kafka, &kafka.consumer_group) {
        Ok(c) => c,
        Err(error) => {
            return unreachable_cluster(kafka, format!("cannot create a client: {error}"))
        }
    };
    let Some(time) = left(deadline) else {
        return out_of_time();
    };
    let metadata = match reader.fetch_metadata(None, time) {
        Ok(m) => m,
        Err(error) => return unreachable_cluster(kafka, format!("no cluster metadata: {error}")),
    };
    let mut health = KafkaHealth {
        reachable: true,
        ..KafkaHealth::default()
    };

    let listed: Vec<(i32, String)> = metadata
        .brokers()
        .iter()
        .map(|b| (b.id(), format!("{}:{}", b.host(), b.port())))
        .collect();
    let replica_ids: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().flat_map(|p| p.replicas().to_vec()))
        .collect();
    health.brokers = broker_states(&listed, &replica_ids, &kafka.brokers);

    // Partitions of the events topics, and the group's commits for them.
    let mut wanted = TopicPartitionList::new();
    for name in topics {
        let Some(topic) = metadata.topics().iter().find(|t| t.name() == name) else {
            health
                .problems
                .push(format!("topic {name} is not in the cluster's metadata"));
            continue;
        };
        let mut partitions = Vec::new();
        for p in topic.partitions() {
            if let Some(error) = p.error() {
                health
                    .problems
                    .push(format!("{name} partition {}: {error:?}", p.id()));
            }
            wanted.add_partition(name, p.id());
            partitions.push(PartitionHealth {
                partition: p.id(),
                leader: p.leader(),
                replicas: p.replicas().to_vec(),
                in_sync: p.isr().to_vec(),
                under_replicated: under_replicated(p.replicas(), p.isr()),
                ..PartitionHealth::default()
            });
        }
        partitions.sort_by_key(|p| p.partition);
        health.topics.push(TopicHealth {
            topic: name.clone(),
            min_insync_replicas: kafka.min_insync_replicas,
            partitions,
            total: LagTotals::default(),
        });
    }
    let Some(time) = left(deadline) else {
        health
            .problems
            .push("ran out of time before reading the lag".into());
        return health;
    };
    match super::procs::members_of(&reader, &kafka.consumer_group, time.min(GROUP_BUDGET)) {
        Ok(members) => health.group_members = Some(members),
        Err(error) => health.problems.push(format!(
            "the writer group's members could not be read: {error}"
        )),
    }
    let Some(time) = left(deadline) else {
        health
            .problems
            .push("ran out of time before reading the lag".into());
        return health;
    };
    let committed = match reader.committed_offsets(wanted, time) {
        Ok(list) => list,
        Err(error) => {
            health.problems.push(format!(
                "the writer group's commits could not be read: {error}"
            ));
            return health;
        }
    };

    // End offsets, lag, and where the oldest waiting message is.
    let mut waiting = TopicPartitionList::new();
    let mut starts: Vec<(String, i32, i64)> = Vec::new();
    'offsets: for topic in &mut health.topics {
        for p in &mut topic.partitions {
            let Some(time) = left(deadline) else {
                health
                    .problems
                    .push("ran out of time reading end offsets; some lags are missing".into());
                break 'offsets;
            };
            let (low, end) = match reader.fetch_watermarks(&topic.topic, p.partition, time) {
                Ok(marks) => marks,
                Err(error) => {
                    health.problems.push(format!(
                        "{} partition {}: end offset not read: {error}",
                        topic.topic, p.partition
                    ));
                    p.lag_ms = None;
                    continue;
                }
            };
            p.end_offset = end;
            p.committed = committed
                .find_partition(&topic.topic, p.partition)
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                });
            p.lag_messages = lag_messages(end, p.committed, low);
            p.lag_ms = Some(0);
            if p.lag_messages > 0 {
                // The next message the group will read is the oldest not
                // yet written (Kafka's committed offset is exclusive).
                let from = p.committed.unwrap_or(low).max(low);
                starts.push((topic.topic.clone(), p.partition, from));
                if let Err(error) =
                    waiting.add_partition_offset(&topic.topic, p.partition, Offset::Offset(from))
                {
                    health.problems.push(format!("{}: {error}", topic.topic));
                }
            }
        }
    }
    if !starts.is_empty() {
        let ages = oldest_waiting(kafka, &waiting, &starts, deadline);
        let now = now_ms();
        for topic in &mut health.topics {
            for p in &mut topic.partitions {
                if p.lag_messages > 0 {
                    let ts = ages
                        .iter()
                        .find(|(t, part, _)| *t == topic.topic && *part == p.partition)
                        .map(|(_, _, ts)| *ts);
                    p.lag_ms = lag_ms(p.lag_messages, now, ts);
                }
            }
        }
        let unread = health
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .filter(|p| p.lag_ms.is_none())
            .count();
        if unread > 0 {
            health.problems.push(format!(
                "the oldest waiting message of {unread} partition(s) could not be read in time"
            ));
        }
    }
    *dead_letters = match left(deadline) {
        Some(time) => waiting::retained(
            &reader,
            &metadata,
            &topics::dead_letters(&kafka.topic_prefix),
            time,
        ),
        None => Err("ran out of time before reading its offsets".into()),
    };
    health
}

/// Blocking: the timestamp of the message at each `(topic, partition,
/// offset)` in `starts`, as far as they arrive before `deadline`. A fresh
/// consumer, assigned (not subscribed) and never committing.
fn oldest_waiting(
    kafka: &KafkaConfig,
    waiting: &TopicPartitionList,
    starts: &[(String, i32, i64)],
    deadline: Instant,
) -> Vec<(String, i32, i64)> {
    let peek_group = format!("{}.pipeline-page", kafka.consumer_group);
    let consumer = match client(kafka, &peek_group) {
        Ok(c) => c,
        Err(error) => {
            warn!(%error, "cannot create a client to read message ages");
            return Vec::new();
        }
    };
    if let Err(error) = consumer.assign(waiting) {
        warn!(%error, "cannot assign partitions to read message ages");
        return Vec::new();
    }
    let mut found: Vec<(String, i32, i64)> = Vec::new();
    while found.len() < starts.len() {
        let Some(time) = left(deadline) else { break };
        let Some(polled) = consumer.poll(time.min(Duration::from_millis(200))) else {
            continue;
        };
        let Ok(message) = polled else { continue };
        let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
        let wanted = starts
            .iter()
            .any(|(t, p, o)| t == topic && *p == partition && *o <= offset);
        let known = found.iter().any(|(t, p, _)| t == topic && *p == partition);
        if wanted && !known {
            if let Some(ts) = message.timestamp().to_millis() {
                found.push((topic.to_owned(), partition, ts));
            }
            // This partition is done: stop fetching it.
            let mut done = TopicPartitionList::new();
            done.add_partition(topic, partition);
            let _ = consumer.pause(&done);
        }
    }
    found
}

/// `(topic, min.insync.replicas)` as the brokers report them.
async fn min_insync_of(
    kafka: &KafkaConfig,
    topics: &[String],
) -> Result<Vec<(String, i32)>, String> {
    if topics.is_empty() {
        return Ok(Vec::new());
    }
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .create()
        .map_err(|e| e.to_string())?;
    let specifiers: Vec<ResourceSpecifier<'_>> =
        topics.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(2)));
    let answer = tokio::time::timeout(
        Duration::from_secs(3),
        admin.describe_configs(&specifiers, &options),
    )
    .await
    .map_err(|_| "no answer within 3 s".to_owned())?
    .map_err(|e| e.to_string())?;
    Ok(topics
        .iter()
        .zip(answer)
        .filter_map(|(topic, result)| {
            let resource = result.ok()?;
            let value = resource.get("min.insync.replicas")?.value.as_deref()?;
            Some((topic.clone(), value.trim().parse().ok()?))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brokers_missing_from_the_metadata_are_down() {
        let listed = vec![(1, "k1:9092".to_owned()), (3, "k3:9092".to_owned())];
        let brokers = broker_states(&listed, &[1, 2, 3, 2], "k1:9092, k2:9092,k3:9092");
        let state: Vec<(i32, &str, bool)> = brokers
            .iter()
            .map(|b| (b.id, b.address.as_str(), b.up))
            .collect();
        assert_eq!(
            state,
            [
                (1, "k1:9092", true),
                (3, "k3:9092", true),
                (2, "", false),
                (-1, "k2:9092", false)
            ]
        );
        let single = broker_states(&[(1, "127.0.0.1:19092".into())], &[1], "127.0.0.1:19092");
        assert!(single.len() == 1 && single[0].up);
    }

    #[test]
    fn the_budget_runs_out() {
        assert!(left(Instant::now() + Duration::from_secs(5)).is_some());
        assert!(left(Instant::now()).is_none());
    }
}
