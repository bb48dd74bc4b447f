//! Consumer lag of the writer group, per partition: the end offset of each
//! event topic partition against the offset the group committed. Read from
//! the broker, so it is right whichever writer process owns a partition.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::config::KafkaConfig;
use crate::metrics::Metrics;
use crate::topics;

const EVERY: Duration = Duration::from_secs(5);
const TIMEOUT: Duration = Duration::from_secs(5);

/// One partition's position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    /// Next offset the group will read; `None` before its first commit.
    pub committed: Option<i64>,
    pub end: i64,
}

impl PartitionLag {
    /// Messages not yet written and committed. Before the first commit the
    /// group starts at the earliest offset, so everything counts.
    pub fn lag(&self, low: i64) -> i64 {
        (self.end - self.committed.unwrap_or(low)).max(0)
    }
}

/// Refreshes the lag gauges until `stop` fires.
pub async fn run(kafka: KafkaConfig, metrics: Arc<Metrics>, stop: CancellationToken) {
    let client: Result<BaseConsumer, KafkaError> = ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        // Same group id, never subscribed: reads the group's commits without
        // joining it.
        .set("group.id", &kafka.consumer_group)
        .set("enable.auto.commit", "false")
        .create();
    let client = match client {
        Ok(c) => Arc::new(c),
        Err(error) => {
            warn!(%error, "lag monitor disabled: cannot create a Kafka client");
            return;
        }
    };
    let topics = topics::event_topics(&kafka.topic_prefix);
    crate::periodic::every(EVERY, stop, || async {
        let c = client.clone();
        let t = topics.clone();
        match tokio::task::spawn_blocking(move || measure(&c, &t)).await {
            Ok(Ok(rows)) => {
                for (row, low) in rows {
                    let labels = [row.topic.as_str(), &row.partition.to_string()];
                    if let Some(committed) = row.committed {
                        metrics
                            .writer_committed_offset
                            .with_label_values(&labels)
                            .set(committed);
                    }
                    metrics
                        .writer_end_offset
                        .with_label_values(&labels)
                        .set(row.end);
                    metrics
                        .writer_lag
                        .with_label_values(&labels)
                        .set(row.lag(low));
                }
                metrics
                    .writer_lag_checked
                    .set(time::OffsetDateTime::now_utc().unix_timestamp());
            }
            // Warn: stale lag gauges look exactly like a healthy pipeline.
            Ok(Err(error)) => warn!(%error, "lag measurement failed; the lag gauges are stale"),
            Err(error) => warn!(%error, "lag measurement task failed; the lag gauges are stale"),
        }
    })
    .await;
}

/// Blocking: every partition of `topics`, from the broker's metadata.
pub fn partitions_of(
    client: &BaseConsumer,
    topics: &[String],
) -> Result<TopicPartitionList, KafkaError> {
    let mut list = TopicPartitionList::new();
    for topic in topics {
        let metadata = client.fetch_metadata(Some(topic), TIMEOUT)?;
        for t in metadata.topics() {
            for p in t.partitions() {
                list.add_partition(t.name(), p.id());
            }
        }
    }
    Ok(list)
}

/// Blocking: metadata, committed offsets and watermarks for every partition.
pub fn measure(
    client: &BaseConsumer,
    topics: &[String],
) -> Result<Vec<(PartitionLag, i64)>, KafkaError> {
    let committed = client.committed_offsets(partitions_of(client, topics)?, TIMEOUT)?;
    let mut rows = Vec::new();
    for element in committed.elements() {
        let (low, end) = client.fetch_watermarks(element.topic(), element.partition(), TIMEOUT)?;
        let committed = match element.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        };
        rows.push((
            PartitionLag {
                topic: element.topic().to_owned(),
                partition: element.partition(),
                committed,
                end,
            },
            low,
        ));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_from_the_commit_or_from_the_start() {
        let mut p = PartitionLag {
            topic: "t".into(),
            partition: 0,
            committed: Some(7),
            end: 10,
        };
        assert_eq!(p.lag(0), 3);
        p.committed = None;
        assert_eq!(p.lag(2), 8);
        p.committed = Some(12); // end read before a newer commit
        assert_eq!(p.lag(0), 0);
    }
}
