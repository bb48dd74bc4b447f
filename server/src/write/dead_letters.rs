//! Messages the writer cannot turn into rows go to the dead-letter topic,
//! unchanged, with headers that say why and where they came from, so they
//! can be inspected and replayed. The pipeline moves on without them.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use crate::produce::{EventProducer, Outgoing};

pub const HEADER_REASON: &str = "attest.dlq.reason";
pub const HEADER_DETAIL: &str = "attest.dlq.detail";
pub const HEADER_TOPIC: &str = "attest.source.topic";
pub const HEADER_PARTITION: &str = "attest.source.partition";
pub const HEADER_OFFSET: &str = "attest.source.offset";

/// The `attest.dlq.reason` of a row ClickHouse refused to store.
pub const REASON_CLICKHOUSE_REJECTED: &str = "clickhouse_rejected";
/// Decoded, but breaks a rule of the contract that ingest enforces (an
/// empty id, a time before 2000, a control character): never stored.
pub const REASON_INVALID_EVENT: &str = "invalid_event";

/// Why a message was set aside: a stable code for filtering and replay, and
/// the error for a human.
#[derive(Debug, Clone, Copy)]
pub struct Why<'a> {
    pub reason: &'a str,
    pub detail: &'a str,
}

/// Where a dead-lettered message was read from.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

pub struct DeadLetters {
    producer: EventProducer,
    topic: String,
}

impl DeadLetters {
    pub fn new(producer: EventProducer, topic: String) -> DeadLetters {
        DeadLetters { producer, topic }
    }

    /// One attempt for each letter, all sent at once (the producer batches
    /// them on the wire); true for each the topic acknowledged.
    pub async fn send_all(&self, letters: &[&super::SetAside]) -> Vec<bool> {
        let sends = letters.iter().map(|letter| async move {
            let origin = &letter.origin;
            let why = Why {
                reason: letter.reason,
                detail: &letter.detail,
            };
            let source = Source {
                topic: origin.topic(),
                partition: origin.partition(),
                offset: origin.offset(),
            };
            self.send_once(why, source, origin.key(), origin.payload())
                .await
                .map_err(
                    |error| warn!(%error, offset = origin.offset(), "dead letter not acknowledged"),
                )
                .is_ok()
        });
        futures::future::join_all(sends).await
    }

    async fn send_once(
        &self,
        why: Why<'_>,
        source: Source<'_>,
        key: &[u8],
        payload: &[u8],
    ) -> Result<(), crate::produce::ProduceError> {
        let Source {
            topic,
            partition,
            offset,
        } = source;
        error!(
            reason = why.reason,
            error = why.detail,
            topic,
            partition,
            offset,
            "dead-lettering a message"
        );
        let partition_s = partition.to_string();
        let offset_s = offset.to_string();
        let key = String::from_utf8_lossy(key);
        let headers: [(&str, &[u8]); 5] = [
            (HEADER_REASON, why.reason.as_bytes()),
            (HEADER_DETAIL, why.detail.as_bytes()),
            (HEADER_TOPIC, topic.as_bytes()),
            (HEADER_PARTITION, partition_s.as_bytes()),
            (HEADER_OFFSET, offset_s.as_bytes()),
        ];
        self.producer
            .send(Outgoing {
                topic: &self.topic,
                key: &key,
                payload,
                headers: &headers,
            })
            .await
            .map(drop)
    }

    /// Retries until the dead-letter topic acknowledged the message, because
    /// committing past an unrecorded poison message would lose it. False if
    /// `stop` fired first.
    pub async fn send_until_acknowledged(
        &self,
        why: Why<'_>,
        source: Source<'_>,
        key: &[u8],
        payload: &[u8],
        stop: &CancellationToken,
    ) -> bool {
        loop {
            match self.send_once(why, source, key, payload).await {
                Ok(()) => return true,
                Err(error) => {
                    warn!(%error, "dead-letter topic did not acknowledge; retrying");
                    tokio::select! {
                        _ = stop.cancelled() => return false,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }
}
