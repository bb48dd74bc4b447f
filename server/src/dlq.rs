//! Reading and replaying the dead-letter topic (`attest dlq list|replay`).
//!
//! Replay re-produces a dead letter to the topic it came from once it
//! decodes (after the fix: a schema registered, a bug deployed). Replaying
//! twice is harmless: the event keeps its event_id, and rows with the same
//! event_id collapse in ClickHouse and in every query.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use crate::config::KafkaConfig;
use crate::produce::{EventProducer, Outgoing, ProduceError};
use crate::registry::Registry;
use crate::topics;
use crate::write::{HEADER_DETAIL, HEADER_OFFSET, HEADER_PARTITION, HEADER_REASON, HEADER_TOPIC};

pub const HEADER_REPLAYED_FROM: &str = "attest.replayed_from";

#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    #[error("cannot read the dead-letter topic: {0}")]
    Kafka(#[from] KafkaError),
    #[error("dead letters were still arriving after {0:?}; try again")]
    Timeout(Duration),
}

#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub partition: i32,
    pub offset: i64,
    pub reason: String,
    pub detail: String,
    pub source_topic: String,
    pub source_partition: i32,
    pub source_offset: i64,
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
}

/// Every message in the dead-letter topic, oldest first per partition.
/// Blocking: reads up to the end offsets seen at the start.
pub fn read_all(kafka: &KafkaConfig, timeout: Duration) -> Result<Vec<DeadLetter>, DlqError> {
    let topic = topics::dead_letters(&kafka.topic_prefix);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        // Assigned, never subscribed: the id is only required by the client.
        .set("group.id", format!("{}-dlq-reader", kafka.consumer_group))
        .set("enable.auto.commit", "false")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(&topic), timeout)?;
    let mut assignment = TopicPartitionList::new();
    let mut remaining = Vec::new();
    for t in metadata.topics() {
        for p in t.partitions() {
            let (low, high) = consumer.fetch_watermarks(&topic, p.id(), timeout)?;
            if high > low {
                assignment.add_partition_offset(&topic, p.id(), Offset::Offset(low))?;
                remaining.push((p.id(), high));
            }
        }
    }
    let mut letters = Vec::new();
    if remaining.is_empty() {
        return Ok(letters);
    }
    consumer.assign(&assignment)?;
    let deadline = Instant::now() + timeout;
    while !remaining.is_empty() {
        if Instant::now() > deadline {
            return Err(DlqError::Timeout(timeout));
        }
        let Some(result) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = result?;
        let (partition, offset) = (message.partition(), message.offset());
        if let Some(pos) = remaining.iter().position(|(p, _)| *p == partition) {
            if offset + 1 >= remaining[pos].1 {
                remaining.swap_remove(pos);
            }
        }
        let header = |name: &str| -> String {
            message
                .headers()
                .and_then(|h| h.iter().find(|x| x.key == name))
                .and_then(|x| x.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        letters.push(DeadLetter {
            partition,
            offset,
            reason: header(HEADER_REASON),
            detail: header(HEADER_DETAIL),
            source_topic: header(HEADER_TOPIC),
            source_partition: header(HEADER_PARTITION).parse().unwrap_or(-1),
            source_offset: header(HEADER_OFFSET).parse().unwrap_or(-1),
            key: message.key().unwrap_or_default().to_vec(),
            payload: message.payload().unwrap_or_default().to_vec(),
        });
    }
    letters.sort_by_key(|l| (l.partition, l.offset));
    Ok(letters)
}

#[derive(Debug, Default)]
pub struct ReplayReport {
    pub replayed: Vec<DeadLetter>,
    /// Letters that still do not decode, with the reason; left in place.
    pub still_failing: Vec<(DeadLetter, String)>,
}

/// Replays the letters (optionally only those with `reason`) that decode
/// with `registry` now, each to its source topic with its original key.
pub async fn replay(
    letters: Vec<DeadLetter>,
    reason: Option<&str>,
    registry: &Registry,
    producer: &EventProducer,
) -> Result<ReplayReport, ProduceError> {
    let mut report = ReplayReport::default();
    for letter in letters {
        if reason.is_some_and(|r| r != letter.reason) {
            continue;
        }
        if let Err(failure) = registry.decode(&letter.payload) {
            report.still_failing.push((letter, failure.to_string()));
            continue;
        }
        let from = format!("{}/{}", letter.partition, letter.offset);
        let key = String::from_utf8_lossy(&letter.key).into_owned();
        producer
            .send(Outgoing {
                topic: &letter.source_topic,
                key: &key,
                payload: &letter.payload,
                headers: &[(HEADER_REPLAYED_FROM, from.as_bytes())],
            })
            .await?;
        report.replayed.push(letter);
    }
    Ok(report)
}
