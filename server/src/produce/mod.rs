//! Writes encoded events to Kafka and answers only once the broker has
//! acknowledged them: idempotent producer, `acks=all`, so an acknowledged
//! event survives a broker failover and a retry never duplicates it.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tracing::info;

use crate::config::KafkaConfig;

#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error("cannot create the Kafka client: {0}")]
    Client(#[source] KafkaError),
    #[error("the broker did not acknowledge the message: {0}")]
    NotAcknowledged(#[source] KafkaError),
    #[error("the broker did not acknowledge the message within {0:?}")]
    Timeout(Duration),
    #[error("cannot create topic {topic}: {source}")]
    CreateTopic {
        topic: String,
        #[source]
        source: KafkaError,
    },
}

impl ProduceError {
    fn code(&self) -> Option<RDKafkaErrorCode> {
        match self {
            ProduceError::NotAcknowledged(e) | ProduceError::Client(e) => e.rdkafka_error_code(),
            _ => None,
        }
    }

    /// The message is larger than the broker or the client allows.
    pub fn is_too_large(&self) -> bool {
        matches!(
            self.code(),
            Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::MessageBatchTooLarge)
        )
    }

    /// No retry can succeed: the message itself, or Attest's rights on the
    /// cluster, are the problem. Such an event is refused at the request
    /// rather than spooled, where it would wait forever and hold up every
    /// event behind it.
    pub fn is_permanent(&self) -> bool {
        self.is_too_large()
            || matches!(
                self.code(),
                Some(
                    RDKafkaErrorCode::InvalidRecord
                        | RDKafkaErrorCode::TopicAuthorizationFailed
                        | RDKafkaErrorCode::ClusterAuthorizationFailed
                        | RDKafkaErrorCode::InvalidRequiredAcks
                )
            )
    }
}

/// Where the broker stored a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub partition: i32,
    pub offset: i64,
}

/// One message for [`EventProducer::send`].
pub struct Outgoing<'a> {
    pub topic: &'a str,
    /// Messages with one key keep their order (one partition).
    pub key: &'a str,
    pub payload: &'a [u8],
    pub headers: &'a [(&'a str, &'a [u8])],
}

#[derive(Clone)]
pub struct EventProducer {
    producer: FutureProducer,
    timeout: Duration,
}

pub fn client_config(kafka: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &kafka.brokers)
        .set("client.id", "attest")
        // Never let a broker-side hiccup become a silent loss or a duplicate.
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", &kafka.compression)
        .set("linger.ms", kafka.linger.as_millis().to_string())
        .set("batch.num.messages", kafka.batch_messages.to_string())
        .set("batch.size", kafka.batch_bytes.to_string())
        .set(
            "queue.buffering.max.kbytes",
            kafka.buffer_kbytes.to_string(),
        )
        .set(
            "message.timeout.ms",
            kafka.message_timeout.as_millis().to_string(),
        );
    c
}

impl EventProducer {
    pub fn new(kafka: &KafkaConfig) -> Result<EventProducer, ProduceError> {
        let producer: FutureProducer = client_config(kafka)
            .create()
            .map_err(ProduceError::Client)?;
        Ok(EventProducer {
            producer,
            timeout: kafka.message_timeout,
        })
    }

    /// Resolves once the broker acknowledged the message (all in-sync
    /// replicas have it), or fails after `message_timeout`.
    pub async fn send(&self, msg: Outgoing<'_>) -> Result<Delivery, ProduceError> {
        let mut headers = OwnedHeaders::new_with_capacity(msg.headers.len());
        for (key, value) in msg.headers {
            headers = headers.insert(Header {
                key,
                value: Some(*value),
            });
        }
        let record = FutureRecord::to(msg.topic)
            .key(msg.key)
            .payload(msg.payload)
            .headers(headers);
        let delivery = self
            .producer
            .send(record, self.timeout)
            .await
            .map_err(|(e, _)| ProduceError::NotAcknowledged(e))?;
        Ok(Delivery {
            partition: delivery.partition,
            offset: delivery.offset,
        })
    }

    /// Waits for everything in flight, for a clean shutdown.
    /// Sends an encoded audit event keyed by its tenant, with its id as a
    /// header for consumers that route or deduplicate without decoding.
    pub async fn send_event(
        &self,
        topic: &str,
        tenant: &str,
        event_id: &str,
        payload: &[u8],
    ) -> Result<Delivery, ProduceError> {
        let headers = [("attest.event_id", event_id.as_bytes())];
        self.send(Outgoing {
            topic,
            key: tenant,
            payload,
            headers: &headers,
        })
        .await
    }

    pub fn flush(&self, timeout: Duration) {
        if let Err(error) = self.producer.flush(timeout) {
            tracing::warn!(%error, "producer flush did not complete");
        }
    }
}

/// Creates the topics that do not exist yet; existing ones are left alone.
pub async fn ensure_topics(kafka: &KafkaConfig, topics: &[String]) -> Result<(), ProduceError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .create()
        .map_err(ProduceError::Client)?;
    let min_isr = kafka.min_insync_replicas.to_string();
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|t| {
            let replication = TopicReplication::Fixed(kafka.replication_factor);
            let topic = NewTopic::new(t, kafka.partitions, replication);
            if kafka.min_insync_replicas > 1 {
                topic.set("min.insync.replicas", &min_isr)
            } else {
                topic
            }
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results =
        admin
            .create_topics(&new, &opts)
            .await
            .map_err(|source| ProduceError::CreateTopic {
                topic: topics.join(","),
                source,
            })?;
    for result in results {
        match result {
            Ok(topic) => info!(topic, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(ProduceError::CreateTopic {
                    topic,
                    source: KafkaError::AdminOp(code),
                })
            }
        }
    }
    Ok(())
}
