//! How far the writers' group has committed in each events topic partition,
//! for a reader that must meet a partition's rows in offset order (the live
//! tail, docs/DESIGN.md "Search: live tail") or must know which rows are
//! surely stored (retention signs and removes only those). The writer
//! commits an offset only after every row before it is inserted, so below a
//! committed offset the table is whole, in whatever order two batches in
//! flight landed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use app::tail::Delivered;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::Offset;
use tokio::sync::Mutex;

use crate::config::KafkaConfig;
use crate::event::Category;
use crate::health::lag::partitions_of;
use crate::integrity::seal::offsets_reader;
use crate::topics;

/// How long one reading serves every stream that asks: open tails poll
/// every 2 s each, and the broker is asked once for all of them.
const FRESH: Duration = Duration::from_secs(1);
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum DeliveredError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("the committed offsets could not be read: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("{0}")]
    Reader(#[from] crate::integrity::seal::HeadsError),
}

/// The writers' committed offsets, read from the broker (a client of the
/// group that never joins it), at most once per [`FRESH`].
pub struct DeliveredOffsets {
    reader: Arc<BaseConsumer>,
    /// Each events topic with its category's symbol, as positions name it.
    topics: Vec<(String, &'static str)>,
    last: Mutex<Option<(Instant, Delivered)>>,
}

impl DeliveredOffsets {
    /// `client_id` names the reader to the broker (the tail, retention).
    pub fn new(kafka: &KafkaConfig, client_id: &str) -> Result<DeliveredOffsets, DeliveredError> {
        Ok(DeliveredOffsets {
            reader: Arc::new(offsets_reader(kafka, client_id)?),
            topics: Category::ALL
                .into_iter()
                .map(|c| (topics::for_category(&kafka.topic_prefix, c), c.as_str()))
                .collect(),
            last: Mutex::new(None),
        })
    }

    /// The committed offsets now, or from the last [`FRESH`]. An older
    /// reading only holds the tail back a little: commits only move on.
    pub async fn now(&self) -> Result<Delivered, DeliveredError> {
        let mut last = self.last.lock().await;
        if let Some((at, delivered)) = last.as_ref() {
            if at.elapsed() < FRESH {
                return Ok(delivered.clone());
            }
        }
        let reader = self.reader.clone();
        let topics = self.topics.clone();
        let delivered = tokio::task::spawn_blocking(move || read(&reader, &topics)).await??;
        *last = Some((Instant::now(), delivered.clone()));
        Ok(delivered)
    }
}

/// Blocking: every partition of the events topics, then one OffsetFetch.
fn read(reader: &BaseConsumer, topics: &[(String, &'static str)]) -> Result<Delivered, KafkaError> {
    let names: Vec<String> = topics.iter().map(|(topic, _)| topic.clone()).collect();
    let committed = reader.committed_offsets(partitions_of(reader, &names)?, TIMEOUT)?;
    let mut delivered = Delivered::default();
    for element in committed.elements() {
        let category = topics
            .iter()
            .find(|(topic, _)| topic == element.topic())
            .map(|(_, category)| *category);
        if let (Some(category), Offset::Offset(offset)) = (category, element.offset()) {
            delivered
                .0
                .insert((category.to_owned(), element.partition()), offset);
        }
    }
    Ok(delivered)
}
