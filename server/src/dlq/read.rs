//! Reading the whole dead-letter topic, as it is now.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::DlqError;
use crate::config::KafkaConfig;
use crate::topics;
use crate::write::{HEADER_DETAIL, HEADER_OFFSET, HEADER_PARTITION, HEADER_REASON, HEADER_TOPIC};

/// One message of the dead-letter topic: the record as the writer read it
/// (key and payload unchanged) and the headers it added.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub partition: i32,
    pub offset: i64,
    /// When the writer set it aside (the message's timestamp, epoch ms).
    pub timestamp_ms: i64,
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
            timestamp_ms: message.timestamp().to_millis().unwrap_or(0),
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
