//! The writer: reads the category topics as one consumer group, inserts
//! batches into ClickHouse and only then commits their offsets.
//!
//! Offset protocol: a message's offset is committed only after (a) its row
//! is in ClickHouse or (b) it was acknowledged by the dead-letter topic. A
//! crash between insert and commit re-reads the batch; the re-inserted rows
//! carry the same sorting key, so ReplacingMergeTree and the console's
//! `LIMIT 1 BY event_id` keep analysts from seeing them twice.

mod batch;
mod dead_letters;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::{KafkaConfig, WriterConfig};
use crate::produce::EventProducer;
use crate::registry::Registry;
use crate::store::{EventRow, Provenance, Store};
use crate::topics;
use batch::Batch;
pub use dead_letters::DeadLetters;

/// How long an idle writer waits for a message before checking for shutdown.
const IDLE_POLL: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot create the Kafka consumer: {0}")]
    Consumer(#[source] KafkaError),
}

pub struct Writer {
    consumer: StreamConsumer,
    registry: Arc<Registry>,
    store: Store,
    dead_letters: DeadLetters,
    settings: WriterConfig,
}

impl Writer {
    pub fn new(
        kafka: &KafkaConfig,
        settings: WriterConfig,
        registry: Arc<Registry>,
        store: Store,
        producer: EventProducer,
    ) -> Result<Writer, WriteError> {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &kafka.brokers)
            .set("group.id", &kafka.consumer_group)
            .set("client.id", "attest-writer")
            // We commit by hand, after the insert; never on a timer.
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .create()
            .map_err(WriteError::Consumer)?;
        let topics = topics::event_topics(&kafka.topic_prefix);
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&names).map_err(WriteError::Consumer)?;
        Ok(Writer {
            consumer,
            registry,
            store,
            dead_letters: DeadLetters::new(producer, topics::dead_letters(&kafka.topic_prefix)),
            settings,
        })
    }

    /// Runs until `stop` is cancelled; then inserts and commits what it holds
    /// (if ClickHouse is reachable) and returns.
    pub async fn run(self, stop: CancellationToken) {
        info!(
            max_rows = self.settings.max_rows,
            max_age_ms = self.settings.max_age.as_millis() as u64,
            "writer started"
        );
        let mut batch = Batch::default();
        loop {
            let wait = batch
                .time_left(self.settings.max_age, Instant::now())
                .unwrap_or(IDLE_POLL);
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                received = tokio::time::timeout(wait, self.consumer.recv()) => match received {
                    Err(_) => {}
                    Ok(Err(error)) => {
                        warn!(%error, "kafka consumer error");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Ok(Ok(message)) => {
                        let (topic, partition, offset) = (message.topic().to_owned(), message.partition(), message.offset());
                        let payload = message.payload().unwrap_or_default();
                        match self.registry.decode(payload) {
                            Ok((schema_id, event)) => {
                                let row = EventRow::new(event, Provenance { schema_id, partition, offset });
                                batch.push(row, &topic, partition, offset);
                            }
                            Err(failure) => {
                                let key = message.key().unwrap_or_default().to_vec();
                                let payload = payload.to_vec();
                                drop(message);
                                if !self.dead_letters.send_until_acknowledged(&failure, &topic, partition, offset, &key, &payload, &stop).await {
                                    break;
                                }
                                batch.consumed(&topic, partition, offset);
                            }
                        }
                    }
                }
            }
            if batch.should_flush(
                self.settings.max_rows,
                self.settings.max_age,
                Instant::now(),
            ) {
                if !self.flush(&batch, &stop).await {
                    return;
                }
                batch = Batch::default();
            }
        }
        if !batch.is_empty() {
            // Shutdown: one more attempt set, bounded by a fresh token's timeout.
            let grace = CancellationToken::new();
            let cancel_after = grace.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(10)).await;
                cancel_after.cancel();
            });
            self.flush(&batch, &grace).await;
        }
        info!("writer stopped");
    }

    /// Inserts the batch, retrying with backoff, then commits its offsets.
    /// Returns false if `stop` fired before the insert succeeded: nothing is
    /// committed then, and the batch is re-read after restart.
    async fn flush(&self, batch: &Batch, stop: &CancellationToken) -> bool {
        let started = Instant::now();
        if !batch.rows().is_empty() {
            let mut delay = self.settings.retry_initial;
            let mut attempt = 1u32;
            loop {
                match self.store.insert_events(batch.rows()).await {
                    Ok(()) => break,
                    Err(error) => {
                        warn!(%error, attempt, rows = batch.rows().len(), retry_in_ms = delay.as_millis() as u64, "insert failed; will retry");
                        if !sleep_or_stop(jitter(delay), stop).await {
                            return false;
                        }
                        delay = (delay * 2).min(self.settings.retry_max);
                        attempt += 1;
                    }
                }
            }
        }
        let mut list = TopicPartitionList::new();
        for (topic, partition, next) in batch.offsets() {
            if let Err(error) = list.add_partition_offset(topic, partition, Offset::Offset(next)) {
                warn!(%error, topic, partition, "cannot record offset for commit");
            }
        }
        // A failed commit is not a loss: the batch is re-read and its rows
        // collapse with the ones just inserted.
        if let Err(error) = self.consumer.commit(&list, CommitMode::Sync) {
            warn!(%error, "offset commit failed; the batch will be re-read");
        }
        debug!(
            rows = batch.rows().len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "batch written"
        );
        true
    }
}

/// Full jitter on half the delay, so writers that failed together do not
/// retry together.
fn jitter(delay: Duration) -> Duration {
    let half = delay / 2;
    half + Duration::from_millis(rand::thread_rng().gen_range(0..=half.as_millis() as u64))
}

/// Sleeps; false if `stop` fired first.
async fn sleep_or_stop(d: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_half_to_full_delay() {
        let d = Duration::from_millis(400);
        for _ in 0..100 {
            let j = jitter(d);
            assert!(j >= d / 2 && j <= d, "{j:?}");
        }
    }
}
