//! Writes encoded events to Kafka and answers only once the broker has
//! acknowledged them: idempotent producer, `acks=all`, so an acknowledged
//! event survives a broker failover and a retry never duplicates it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tracing::{error, info, warn};

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

/// The producer every part of Attest sends through. It replaces its
/// librdkafka producer (and so its idempotent producer id) when that one is
/// broken for good: a fatal error (librdkafka stops producing for good after
/// one, e.g. a sequence or producer-id mismatch the broker reports after a
/// crash), or sends failing without a single success for
/// `kafka.producer_recreate_after`. Without this, one broker incident left
/// every later produce failing and the spool growing until someone
/// restarted Attest.
#[derive(Clone)]
pub struct EventProducer {
    shared: Arc<Shared>,
    timeout: Duration,
}

struct Shared {
    config: ClientConfig,
    current: RwLock<Arc<FutureProducer>>,
    /// When sends started failing with no success since, if they are.
    failing_since: Mutex<Option<Instant>>,
    recreate_after: Duration,
    recreated: AtomicU64,
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
        let config = client_config(kafka);
        let producer: FutureProducer = config.create().map_err(ProduceError::Client)?;
        Ok(EventProducer {
            shared: Arc::new(Shared {
                config,
                current: RwLock::new(Arc::new(producer)),
                failing_since: Mutex::new(None),
                recreate_after: kafka.producer_recreate_after,
                recreated: AtomicU64::new(0),
            }),
            timeout: kafka.message_timeout,
        })
    }

    fn current(&self) -> Arc<FutureProducer> {
        match self.shared.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// How many times the librdkafka producer was replaced.
    pub fn recreated(&self) -> u64 {
        self.shared.recreated.load(Ordering::Relaxed)
    }

    fn succeeded(&self) {
        if let Ok(mut since) = self.shared.failing_since.lock() {
            *since = None;
        }
    }

    /// Decides, after a failed send through `used`, whether it is broken
    /// for good, and replaces it if so (once, however many sends failed
    /// through it at the same time).
    fn failed(&self, used: &Arc<FutureProducer>, error: &ProduceError) {
        if let Some((code, reason)) = used.client().fatal_error() {
            self.replace(used, &format!("a fatal error ({code:?}: {reason})"));
            return;
        }
        let stuck = match self.shared.failing_since.lock() {
            Ok(mut since) => since
                .get_or_insert_with(Instant::now)
                .elapsed()
                .ge(&self.shared.recreate_after),
            Err(_) => false,
        };
        if stuck {
            self.replace(
                used,
                &format!("no send succeeded for kafka.producer_recreate_after ({error})"),
            );
        }
    }

    /// The fatal error the current producer is in, if any: librdkafka
    /// produces nothing more after one.
    pub fn fatal_error(&self) -> Option<String> {
        self.current()
            .client()
            .fatal_error()
            .map(|(code, reason)| format!("{code:?}: {reason}"))
    }

    /// Replaces the current producer if it is in a fatal state, without
    /// waiting for a send to fail: the watchdog calls this, so an idle
    /// process heals too. True if it did.
    pub fn replace_if_fatal(&self) -> bool {
        let current = self.current();
        match current.client().fatal_error() {
            Some((code, reason)) => {
                self.replace(&current, &format!("a fatal error ({code:?}: {reason})"))
            }
            None => false,
        }
    }

    /// Swaps `used` for a new producer (a new idempotent producer id),
    /// once however many callers found it broken at the same time.
    fn replace(&self, used: &Arc<FutureProducer>, why: &str) -> bool {
        let fresh: FutureProducer = match self.shared.config.create() {
            Ok(fresh) => fresh,
            Err(create) => {
                error!(%create, "cannot create a new Kafka producer; keeping the broken one");
                return false;
            }
        };
        let Ok(mut current) = self.shared.current.write() else {
            return false;
        };
        if !Arc::ptr_eq(&current, used) {
            return false; // replaced already
        }
        *current = Arc::new(fresh);
        drop(current);
        self.succeeded();
        self.shared.recreated.fetch_add(1, Ordering::Relaxed);
        warn!(
            reason = why,
            "replaced the Kafka producer with a new one (new producer id)"
        );
        true
    }

    /// Makes the current producer fail as after a fatal broker error,
    /// through librdkafka's own test hook: what the recovery tests use to
    /// put the producer in the state a crash of the broker left it in.
    #[doc(hidden)]
    pub fn inject_fatal_error_for_tests(&self) {
        let producer = self.current();
        let reason = c"injected by a test";
        // SAFETY: the handle is alive (we hold an Arc to its producer) and
        // the reason is a NUL-terminated string that outlives the call.
        unsafe {
            rdkafka::bindings::rd_kafka_test_fatal_error(
                producer.client().native_ptr(),
                rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                reason.as_ptr(),
            );
        }
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
        let producer = self.current();
        match producer.send(record, self.timeout).await {
            Ok(delivery) => {
                self.succeeded();
                Ok(Delivery {
                    partition: delivery.partition,
                    offset: delivery.offset,
                })
            }
            Err((e, _)) => {
                let error = ProduceError::NotAcknowledged(e);
                self.failed(&producer, &error);
                Err(error)
            }
        }
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
        if let Err(error) = self.current().flush(timeout) {
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
