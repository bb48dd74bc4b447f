//! The writer: reads the category topics as one consumer group, inserts
//! batches into ClickHouse and only then commits their offsets.
//!
//! Offset protocol (docs/DESIGN.md): a message's offset is committed only
//! after (a) its row is in ClickHouse or (b) the dead-letter topic
//! acknowledged it. A crash between insert and commit re-reads the batch; the
//! re-inserted rows carry the same sorting key, so ReplacingMergeTree and the
//! console's `LIMIT 1 BY event_id` keep analysts from seeing them twice.

mod batch;
mod dead_letters;
pub mod delivered;
mod retry;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::ClientContext;
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::backoff::Backoff;
use crate::config::{IntegrityConfig, KafkaConfig, WriterConfig};
use crate::health::ready::WriterWatch;
use crate::ingest::{self, validate};
use crate::integrity::leaf::{ContentHash, Sealed};
use crate::integrity::merkle;
use crate::integrity::seal::{Run, SealError, Sealing};
use crate::integrity::Sealer;
use crate::metrics::Metrics;
use crate::produce::EventProducer;
use crate::registry::Registry;
use crate::store::{content_hashes, EventRow, Provenance, Store, StoreError};
use crate::topics;
use batch::{Batch, Origin, SetAside};
use dead_letters::Why;
pub use dead_letters::{
    DeadLetters, HEADER_DETAIL, HEADER_OFFSET, HEADER_PARTITION, HEADER_REASON, HEADER_TOPIC,
    REASON_CLICKHOUSE_REJECTED, REASON_INVALID_EVENT,
};
use retry::Verdict;

/// Why a message cannot become a row; permanent for that message, so it
/// goes to the dead letters with the reason.
enum Refused {
    Undecodable(crate::registry::DecodeFailure),
    Invalid(Vec<validate::FieldError>),
}

impl From<crate::registry::DecodeFailure> for Refused {
    fn from(f: crate::registry::DecodeFailure) -> Refused {
        Refused::Undecodable(f)
    }
}

impl Refused {
    fn code(&self) -> &'static str {
        match self {
            Refused::Undecodable(f) => f.code(),
            Refused::Invalid(_) => REASON_INVALID_EVENT,
        }
    }

    fn detail(&self) -> String {
        match self {
            Refused::Undecodable(f) => f.to_string(),
            Refused::Invalid(errors) => errors
                .iter()
                .map(|e| format!("{}: {}", e.field_path, e.problem))
                .collect::<Vec<_>>()
                .join("; "),
        }
    }
}

/// The leaf of every row of the batch, by row index: the CPU half of
/// sealing, which needs nothing from the chain, so it can run while the
/// rows insert.
fn leaves_of(batch: &Batch) -> Vec<merkle::Hash> {
    leaves(batch, &content_hashes(batch.rows()))
}

/// The leaves of the batch's rows from their content hashes, made already
/// (one per row, by index).
fn leaves(batch: &Batch, content: &[ContentHash]) -> Vec<merkle::Hash> {
    batch
        .rows()
        .iter()
        .zip(content)
        .map(|(row, hash)| Sealed::from(row).leaf_with(hash))
        .collect()
}

/// Each row's content hash and, when sealing, its leaf (by row index): the
/// CPU part of a batch's insert and seal, which needs nothing from
/// ClickHouse or the chain. The leaves reuse the content hashes.
struct Hashed {
    content: Vec<ContentHash>,
    leaves: Option<Vec<merkle::Hash>>,
}

fn hash_batch(batch: &Batch, sealing: bool) -> Hashed {
    let content = content_hashes(batch.rows());
    let leaves = sealing.then(|| leaves(batch, &content));
    Hashed { content, leaves }
}

/// The batch's rows grouped per partition for sealing, in offset order,
/// without the rows ClickHouse refused, with their leaves (`leaves` holds
/// one per row of the batch, by index: [`leaves_of`]).
fn runs<'a>(batch: &'a Batch, rejected: &[usize], leaves: &[merkle::Hash]) -> Vec<Run<'a>> {
    let mut grouped: Vec<(Run<'a>, Vec<(&'a EventRow, merkle::Hash)>)> = batch
        .ranges()
        .map(|(topic, partition, first_offset, last_offset)| {
            let run = Run {
                topic,
                partition,
                first_offset,
                last_offset,
                rows: Vec::new(),
                leaves: Vec::new(),
            };
            (run, Vec::new())
        })
        .collect();
    // Rows of one partition come in runs: try the last partition first.
    let mut last = 0;
    for ((i, row), leaf) in batch.rows().iter().enumerate().zip(leaves) {
        if rejected.contains(&i) {
            continue;
        }
        let Some(origin) = batch.origin(i) else {
            continue;
        };
        let same =
            |(r, _): &(Run<'_>, _)| r.topic == origin.topic() && r.partition == origin.partition();
        if !grouped.get(last).is_some_and(same) {
            match grouped.iter().position(same) {
                Some(at) => last = at,
                None => continue,
            }
        }
        if let Some((_, rows)) = grouped.get_mut(last) {
            rows.push((row, *leaf));
        }
    }
    grouped
        .into_iter()
        .map(|(mut run, mut rows)| {
            rows.sort_by_key(|(r, _)| r.kafka_offset);
            // A partition taken away and given back within one batch is
            // read again from its committed offset: the same record twice.
            // It is one event and one leaf (two leaves at one offset would
            // collapse in the leaves table and break the digest's root).
            rows.dedup_by_key(|(r, _)| r.kafka_offset);
            (run.rows, run.leaves) = rows.into_iter().unzip();
            run
        })
        .collect()
}

/// How long an idle writer waits for a message before checking for shutdown.
const IDLE_POLL: Duration = Duration::from_millis(500);

/// Messages the consumer already holds that join the batch in one go,
/// after the one the loop waited for: each without the loop's select (a
/// timer, a poll of the inserts in flight, the clock). Small enough that
/// an insert that finished meanwhile is seen within a millisecond or two.
const READY_AT_ONCE: usize = 256;

/// How long a shutdown may spend inserting the open batch.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot create the Kafka consumer: {0}")]
    Consumer(#[source] KafkaError),
    #[error("cannot seal: {0}")]
    Seal(#[from] SealError),
}

/// Counts the group's rebalances: chain heads read before one may have
/// been moved on by another writer since (see `integrity::seal`).
#[derive(Default)]
pub struct WriterContext {
    rebalances: Arc<AtomicU64>,
}

impl ClientContext for WriterContext {}

impl ConsumerContext for WriterContext {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, _: &Rebalance<'_>) {
        self.rebalances.fetch_add(1, Ordering::AcqRel);
    }
}

pub struct Writer {
    consumer: StreamConsumer<WriterContext>,
    /// Seals each batch's rows before its commit; `None` with
    /// `integrity.seal` off.
    sealer: Option<Arc<Sealer>>,
    registry: Arc<Registry>,
    store: Store,
    dead_letters: DeadLetters,
    settings: WriterConfig,
    metrics: Arc<Metrics>,
    watch: Arc<WriterWatch>,
}

/// How a background insert ended, how long it took, and, when it went
/// through and sealing is on, how sealing the batch ended.
struct Background {
    insert: Result<(), StoreError>,
    took: Duration,
    sealed: Option<Result<Sealing, SealError>>,
}

type Inserting = Result<Background, tokio::task::JoinError>;

/// A batch whose insert (and seal) runs in the background while the next
/// one fills.
struct InFlight {
    batch: Arc<Batch>,
    insert: tokio::task::JoinHandle<Background>,
}

impl InFlight {
    /// The oldest batch's outcome; never ready while none is in flight, so
    /// a `select!` branch on it waits for the other branches.
    async fn oldest(queue: &mut VecDeque<InFlight>) -> Inserting {
        match queue.front_mut() {
            Some(in_flight) => (&mut in_flight.insert).await,
            None => std::future::pending().await,
        }
    }
}

/// Whether the batch launched before a background task sealed its rows:
/// a seal chains to the previous one of its partition, so a batch's
/// background seal waits for its predecessor's and is skipped when that
/// one was not done (the predecessor is then sealed again by
/// [`Writer::finish`], and so is this batch, in order, after it).
type SealedBefore = Option<tokio::sync::oneshot::Receiver<bool>>;

/// What a background attempt did of a batch's flush.
#[derive(Default)]
struct Done {
    /// The rows are in ClickHouse.
    inserted: bool,
    /// The rows are sealed, with these heads to commit.
    sealed: Option<Sealing>,
}

/// What stopped a flush.
enum Flushed {
    Done,
    Stopped,
}

/// How inserting one run of rows ended.
enum Inserted {
    Done,
    /// ClickHouse refused the rows themselves (see `retry`): retrying the
    /// same rows cannot succeed.
    Rejected(crate::store::StoreError),
    Stopped,
}

impl Writer {
    pub fn new(
        kafka: &KafkaConfig,
        settings: WriterConfig,
        registry: Arc<Registry>,
        store: Store,
        producer: EventProducer,
        metrics: Arc<Metrics>,
    ) -> Result<Writer, WriteError> {
        let context = WriterContext::default();
        let consumer: StreamConsumer<WriterContext> = ClientConfig::new()
            .set("bootstrap.servers", &kafka.brokers)
            .set("group.id", &kafka.consumer_group)
            .set("client.id", &kafka.writer_client_id)
            // We commit by hand, after the insert; never on a timer.
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set(
                "session.timeout.ms",
                kafka.session_timeout.as_millis().to_string(),
            )
            // Bounds what librdkafka prefetches while a batch waits for
            // ClickHouse: with the batch itself, the writer's whole buffer.
            .set(
                "queued.max.messages.kbytes",
                settings.prefetch_kbytes.to_string(),
            )
            .create_with_context(context)
            .map_err(WriteError::Consumer)?;
        let topics = topics::event_topics(&kafka.topic_prefix);
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&names).map_err(WriteError::Consumer)?;
        Ok(Writer {
            consumer,
            sealer: None,
            registry,
            store,
            dead_letters: DeadLetters::new(producer, topics::dead_letters(&kafka.topic_prefix)),
            settings,
            metrics,
            watch: Arc::default(),
        })
    }

    /// Seals every batch in a signed digest before committing it
    /// (docs/INTEGRITY.md), if `integrity.seal` is on. Fails when the
    /// signing key cannot be loaded, so a bad key stops start-up.
    pub fn with_sealing(
        mut self,
        integrity: &IntegrityConfig,
        kafka: &KafkaConfig,
    ) -> Result<Writer, WriteError> {
        if integrity.seal {
            let rebalances = self.consumer.context().rebalances.clone();
            self.sealer = Some(Arc::new(Sealer::new(
                integrity,
                kafka,
                self.store.clone(),
                rebalances,
            )?));
        }
        Ok(self)
    }

    /// Reports progress and insert back-offs to `watch` (readiness and the
    /// pipeline watchdog read it).
    pub fn with_watch(mut self, watch: Arc<WriterWatch>) -> Writer {
        self.watch = watch;
        self
    }

    /// Runs until `stop` is cancelled; then inserts and commits what it holds
    /// (if ClickHouse answers within the grace period) and returns.
    ///
    /// Up to `writer.inserts_in_flight` batches insert while the next one
    /// fills: reading and decoding do not wait for ClickHouse, and
    /// ClickHouse does not wait for them. Batches are finished (their
    /// outcome awaited, their offsets committed) oldest first, so commits
    /// stay in order, each after its own batch's insert and seal; seals
    /// stay in order too (see [`SealedBefore`]). `inserts_in_flight` + 1
    /// batches are the most the writer holds.
    pub async fn run(self, stop: CancellationToken) {
        info!(
            max_rows = self.settings.max_rows,
            max_age_ms = self.settings.max_age.as_millis() as u64,
            "writer started"
        );
        let mut batch = Batch::default();
        let mut inserting: VecDeque<InFlight> = VecDeque::new();
        let mut sealed_before: SealedBefore = None;
        // Messages that arrived while a flush had the partitions paused.
        let mut held: Vec<OwnedMessage> = Vec::new();
        loop {
            // The clock is read only when held messages wait: most turns
            // of the loop have none.
            if !held.is_empty() {
                let now_ms = ingest::now_ms();
                for message in std::mem::take(&mut held) {
                    if !self
                        .add(&mut batch, message, now_ms, &mut held, &stop)
                        .await
                    {
                        return;
                    }
                }
            }
            let wait = batch
                .time_left(self.settings.max_age, Instant::now())
                .unwrap_or(IDLE_POLL);
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                outcome = InFlight::oldest(&mut inserting) => {
                    if let Some(done) = inserting.pop_front() {
                        if !self.finish(done.batch, outcome, &mut held, &stop, CommitMode::Async).await {
                            return;
                        }
                    }
                }
                received = tokio::time::timeout(wait, self.consumer.recv()) => match received {
                    Err(_) => {}
                    Ok(Err(error)) => {
                        warn!(%error, "kafka consumer error");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Ok(Ok(message)) => {
                        let (message, now_ms) = (message.detach(), ingest::now_ms());
                        if !self.add(&mut batch, message, now_ms, &mut held, &stop).await
                            || !self.add_ready(&mut batch, now_ms, &mut held, &stop).await
                        {
                            return;
                        }
                    }
                }
            }
            if batch.should_flush(
                self.settings.max_rows,
                self.settings.max_bytes,
                self.settings.max_age,
                Instant::now(),
            ) {
                while inserting.len() >= self.settings.inserts_in_flight {
                    let outcome = InFlight::oldest(&mut inserting).await;
                    let Some(oldest) = inserting.pop_front() else {
                        break;
                    };
                    if !self
                        .finish(oldest.batch, outcome, &mut held, &stop, CommitMode::Async)
                        .await
                    {
                        return;
                    }
                }
                let (launched, sealed) =
                    self.launch(std::mem::take(&mut batch), sealed_before.take());
                inserting.push_back(launched);
                sealed_before = Some(sealed);
            }
        }
        let grace = CancellationToken::new();
        let expire = grace.clone();
        tokio::spawn(async move {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
            expire.cancel();
        });
        while !inserting.is_empty() {
            let outcome = InFlight::oldest(&mut inserting).await;
            let Some(oldest) = inserting.pop_front() else {
                break;
            };
            if !self
                .finish(oldest.batch, outcome, &mut held, &grace, CommitMode::Sync)
                .await
            {
                warn!(
                    uncommitted = inserting.len() + 1,
                    "shutdown before the batches being inserted were committed; they will be re-read on restart"
                );
                return;
            }
        }
        if !batch.is_empty() {
            if let Flushed::Stopped = self
                .flush(&batch, &mut held, &grace, CommitMode::Sync, Done::default())
                .await
            {
                warn!("shutdown before the open batch was inserted; it will be re-read on restart");
            }
        }
        info!("writer stopped");
    }

    /// Starts inserting `batch` in the background: one attempt, bounded by
    /// `writer.insert_timeout`, then, if it went through and the batch
    /// before it was sealed (`sealed_before`), one attempt at sealing it,
    /// so that hashing and storing the seal overlap reading the next batch
    /// too. Whatever goes wrong is handled by [`Writer::finish`], with
    /// every retry and split rule of a flush. Answers the batch in flight
    /// and what the next batch's seal waits for.
    fn launch(
        &self,
        batch: Batch,
        sealed_before: SealedBefore,
    ) -> (InFlight, tokio::sync::oneshot::Receiver<bool>) {
        let batch = Arc::new(batch);
        let rows = batch.clone();
        let store = self.store.clone();
        let sealer = self.sealer.clone();
        let timeout = self.settings.insert_timeout;
        let (sealed_tx, sealed_rx) = tokio::sync::oneshot::channel();
        let insert = tokio::spawn(async move {
            // The rows' content hashes (and leaves) on a blocking thread,
            // beside the reading of the next batch.
            let sealing = sealer.is_some();
            let hashing = {
                let rows = rows.clone();
                tokio::task::spawn_blocking(move || hash_batch(&rows, sealing))
            };
            let hashed = hashing.await.ok();
            let started = Instant::now();
            let insert = if rows.rows().is_empty() {
                Ok(())
            } else {
                let inserting = async {
                    match &hashed {
                        Some(hashed) => {
                            store
                                .insert_hashed(rows.rows().iter().zip(&hashed.content))
                                .await
                        }
                        None => store.insert_events(rows.rows()).await,
                    }
                };
                tokio::time::timeout(timeout, inserting)
                    .await
                    .unwrap_or(Err(StoreError::Timeout(timeout)))
            };
            let took = started.elapsed();
            let leaves = hashed.and_then(|hashed| hashed.leaves);
            // The predecessor's seal first, whatever this insert did: a
            // dropped sender (its task failed) counts as not sealed.
            let chained = match sealed_before {
                Some(before) => before.await.unwrap_or(false),
                None => true,
            };
            let sealed = match (&insert, sealer, leaves) {
                (Ok(()), Some(sealer), Some(leaves)) if chained => {
                    Some(sealer.seal(&runs(&rows, &[], &leaves)).await)
                }
                _ => None,
            };
            // With sealing off nothing orders the batches but the commits.
            let done = match &sealed {
                Some(outcome) => outcome.is_ok(),
                None => insert.is_ok() && chained,
            };
            // The next batch may have been finished already (shutdown).
            let _ = sealed_tx.send(done);
            Background {
                insert,
                took,
                sealed,
            }
        });
        (InFlight { batch, insert }, sealed_rx)
    }

    /// Completes a batch sent by [`Writer::launch`]: if its insert went
    /// through, sends its dead letters and commits; if not, flushes it as
    /// if nothing had been sent (rows that did land collapse like a
    /// re-delivery). False if `stop` fired first.
    async fn finish(
        &self,
        batch: Arc<Batch>,
        outcome: Inserting,
        held: &mut Vec<OwnedMessage>,
        stop: &CancellationToken,
        mode: CommitMode,
    ) -> bool {
        let (inserted, sealed) = match outcome {
            Ok(Background {
                insert: Ok(()),
                took,
                sealed,
            }) => {
                if !batch.rows().is_empty() {
                    self.metrics
                        .writer_insert_seconds
                        .observe(took.as_secs_f64());
                }
                let sealed = match sealed {
                    Some(Ok(sealing)) => Some(sealing),
                    Some(Err(error)) => {
                        self.metrics.writer_seal_retries.inc();
                        debug!(%error, "background seal failed; sealing again with retries");
                        None
                    }
                    None => None,
                };
                (true, sealed)
            }
            Ok(Background {
                insert: Err(error), ..
            }) => {
                debug!(%error, "background insert failed; flushing the batch with retries");
                (false, None)
            }
            Err(error) => {
                warn!(%error, "background insert task failed; flushing the batch with retries");
                (false, None)
            }
        };
        let done = Done { inserted, sealed };
        match self.flush(&batch, held, stop, mode, done).await {
            Flushed::Done => {
                self.watch.progressed();
                true
            }
            Flushed::Stopped => false,
        }
    }

    /// Adds the messages the consumer already holds (up to
    /// [`READY_AT_ONCE`], and no further than a full batch), without
    /// waiting for more. Stops where a message had to wait for its schema
    /// (it and those after it are in `held`, to be added first, in order).
    /// False as [`Writer::add`].
    async fn add_ready(
        &self,
        batch: &mut Batch,
        now_ms: i64,
        held: &mut Vec<OwnedMessage>,
        stop: &CancellationToken,
    ) -> bool {
        use futures::{FutureExt, StreamExt};
        let mut ready = self.consumer.stream();
        for _ in 0..READY_AT_ONCE {
            if !held.is_empty()
                || batch.rows().len() >= self.settings.max_rows
                || batch.bytes() >= self.settings.max_bytes
            {
                break;
            }
            let message = match ready.next().now_or_never() {
                Some(Some(Ok(message))) => message.detach(),
                Some(Some(Err(error))) => {
                    warn!(%error, "kafka consumer error");
                    break;
                }
                // Nothing more yet (or the stream ended, which a Kafka
                // stream never does): back to the loop, which waits.
                Some(None) | None => break,
            };
            if !self.add(batch, message, now_ms, held, stop).await {
                return false;
            }
        }
        true
    }

    /// Decodes one message into the batch, or sets it aside for the dead
    /// letters (sent with the batch's flush, all at once). False if `stop`
    /// fired while an external registry was unreachable.
    ///
    /// `now_ms` is the moment the event's time is checked against
    /// (validation refuses times too far ahead); one reading serves the
    /// messages taken together.
    async fn add(
        &self,
        batch: &mut Batch,
        message: OwnedMessage,
        now_ms: i64,
        held: &mut Vec<OwnedMessage>,
        stop: &CancellationToken,
    ) -> bool {
        let (partition, offset) = (message.partition(), message.offset());
        let payload = message.payload().unwrap_or_default();
        if !self.ensure_schema(payload, held, stop).await {
            return false;
        }
        let decoded = self
            .registry
            .decode(payload)
            .map_err(Refused::from)
            .and_then(|(schema_id, event)| {
                // The rules of HTTP ingest apply to records another service
                // produced straight onto the topic, too.
                let errors = validate::check_event(0, &event, now_ms);
                if errors.is_empty() {
                    Ok((schema_id, event))
                } else {
                    Err(Refused::Invalid(errors))
                }
            });
        let origin = Origin::new(message);
        match decoded {
            Ok((schema_id, event)) => {
                let provenance = Provenance {
                    schema_id,
                    partition,
                    offset,
                };
                batch.push(EventRow::new(event, provenance), origin);
            }
            Err(failure) => batch.set_aside(failure.code(), failure.detail(), origin),
        }
        true
    }

    /// Sends the batch's set-aside messages to the dead-letter topic, all at
    /// once, and again those not acknowledged, until every one is: the
    /// commit must not move past an unrecorded poison message. Meanwhile
    /// the partitions are paused and the consumer polled, so the writer
    /// stays in its group however long the topic is away. False if `stop`
    /// fired first.
    async fn send_set_aside(
        &self,
        batch: &Batch,
        paused: &mut bool,
        held: &mut Vec<OwnedMessage>,
        stop: &CancellationToken,
    ) -> bool {
        let mut pending: Vec<&SetAside> = batch.set_aside_letters().iter().collect();
        let mut backoff = self.backoff();
        while !pending.is_empty() {
            let sent = self.dead_letters.send_all(&pending).await;
            let mut left = Vec::new();
            for (letter, ok) in pending.into_iter().zip(sent) {
                if ok {
                    self.metrics
                        .writer_dead_letters
                        .with_label_values(&[letter.reason])
                        .inc();
                } else {
                    left.push(letter);
                }
            }
            pending = left;
            if pending.is_empty() {
                break;
            }
            warn!(
                letters = pending.len(),
                "dead-letter topic did not acknowledge; retrying"
            );
            if !*paused {
                self.pause_all();
                *paused = true;
            }
            if !self.wait_polling(backoff.next_delay(), held, stop).await {
                return false;
            }
        }
        true
    }

    /// Makes the message's schema id decodable if a registry knows it. An
    /// external registry that cannot be reached is waited for, never taken
    /// as "unknown id": that would dead-letter good events during its
    /// outage. False if `stop` fired meanwhile.
    async fn ensure_schema(
        &self,
        payload: &[u8],
        held: &mut Vec<OwnedMessage>,
        stop: &CancellationToken,
    ) -> bool {
        let Ok((id, _)) = crate::registry::wire::unframe(payload) else {
            return true;
        };
        let mut backoff = self.backoff();
        let mut paused = false;
        let known = loop {
            match self.registry.fetch(id).await {
                Ok(_) => break true,
                Err(error) => {
                    warn!(%error, id, "cannot fetch a schema; waiting for the registry");
                    // Paused and polled while waiting, as during a flush.
                    if !paused {
                        self.pause_all();
                        paused = true;
                    }
                    if !self.wait_polling(backoff.next_delay(), held, stop).await {
                        break false;
                    }
                }
            }
        };
        if paused {
            self.resume_all();
        }
        known
    }

    /// Inserts the batch, retrying with backoff, then commits its offsets.
    /// While ClickHouse refuses, the assigned partitions are paused so that
    /// nothing more is buffered, and the consumer keeps polling so that it
    /// stays in its group. Returns `Stopped` if `stop` fired first: nothing is
    /// committed then, and the batch is re-read after restart.
    ///
    /// If ClickHouse rejects rows for what they contain, the batch is halved
    /// until the rejected rows stand alone: those go to the dead-letter topic
    /// and every other row is written. Halves written before a crash are
    /// written again after it and collapse like any re-delivered batch.
    ///
    /// `done`: what a background attempt already did (the rows are in
    /// ClickHouse; the batch is sealed too), so only the rest is left.
    async fn flush(
        &self,
        batch: &Batch,
        held: &mut Vec<OwnedMessage>,
        stop: &CancellationToken,
        mode: CommitMode,
        done: Done,
    ) -> Flushed {
        let Done { inserted, sealed } = done;
        let rows = batch.rows();
        let mut paused = false;
        let mut written = if inserted { rows.len() } else { 0 };
        // Rows ClickHouse refused, now dead letters: never sealed.
        let mut rejected: Vec<usize> = Vec::new();
        if !self.send_set_aside(batch, &mut paused, held, stop).await {
            return Flushed::Stopped;
        }
        // Runs still to insert, the next one last, so rows keep their order.
        let mut pending: Vec<std::ops::Range<usize>> = Vec::new();
        if !inserted {
            pending.push(0..rows.len());
        }
        while let Some(run) = pending.pop() {
            if run.is_empty() {
                continue;
            }
            match self
                .insert_retrying(&rows[run.clone()], &mut paused, held, stop)
                .await
            {
                Inserted::Done => written += run.len(),
                Inserted::Stopped => return Flushed::Stopped,
                Inserted::Rejected(error) if run.len() == 1 => {
                    if !self.dead_letter_row(batch, run.start, &error, stop).await {
                        return Flushed::Stopped;
                    }
                    rejected.push(run.start);
                }
                Inserted::Rejected(error) => {
                    debug!(%error, rows = run.len(), "ClickHouse rejected rows; splitting the run");
                    let middle = run.start + run.len() / 2;
                    pending.push(middle..run.end);
                    pending.push(run.start..middle);
                }
            }
        }
        let sealing = match sealed {
            Some(sealing) => Some(sealing),
            None => match self
                .seal_retrying(batch, &rejected, &mut paused, held, stop)
                .await
            {
                Some(sealing) => sealing,
                None => return Flushed::Stopped,
            },
        };
        if let Some(sealing) = &sealing {
            self.metrics.writer_rows_sealed.inc_by(sealing.rows as u64);
        }
        if paused {
            self.resume_all();
        }
        if written > 0 {
            self.metrics.writer_rows_written.inc_by(written as u64);
            self.metrics.writer_batch_rows.observe(written as f64);
        }
        self.commit(batch, mode, sealing.as_ref());
        Flushed::Done
    }

    /// Seals the batch's written rows, partition by partition, retrying
    /// with backoff like an insert: the commit waits for the seal, so no
    /// committed row is ever left unsealed. `Some(None)` with sealing off;
    /// `None` if `stop` fired first (nothing committed; the batch is
    /// re-read and sealed after restart).
    async fn seal_retrying(
        &self,
        batch: &Batch,
        rejected: &[usize],
        paused: &mut bool,
        held: &mut Vec<OwnedMessage>,
        stop: &CancellationToken,
    ) -> Option<Option<Sealing>> {
        let Some(sealer) = &self.sealer else {
            return Some(None);
        };
        let leaves = leaves_of(batch);
        let runs = runs(batch, rejected, &leaves);
        let mut backoff = self.backoff();
        loop {
            match sealer.seal(&runs).await {
                Ok(sealing) => return Some(Some(sealing)),
                Err(error) => {
                    self.metrics.writer_seal_retries.inc();
                    self.watch.backing_off(Some(error.to_string()));
                    let wait = backoff.next_delay();
                    warn!(%error, retry_in_ms = wait.as_millis() as u64, "sealing failed; will retry before committing");
                    if !*paused {
                        self.pause_all();
                        *paused = true;
                    }
                    if !self.wait_polling(wait, held, stop).await {
                        return None;
                    }
                }
            }
        }
    }

    /// One INSERT of `rows`, repeated with backoff while the failure is
    /// ClickHouse's rather than the rows'.
    async fn insert_retrying(
        &self,
        rows: &[EventRow],
        paused: &mut bool,
        held: &mut Vec<OwnedMessage>,
        stop: &CancellationToken,
    ) -> Inserted {
        let mut backoff = self.backoff();
        loop {
            let started = Instant::now();
            // A hung INSERT must not hold the writer (or a shutdown) forever;
            // a timed-out insert is retried like any failure, and a second
            // copy of rows that did land collapses like a re-delivery.
            let insert = self.store.insert_events(rows);
            let outcome = tokio::time::timeout(self.settings.insert_timeout, insert)
                .await
                .unwrap_or(Err(StoreError::Timeout(self.settings.insert_timeout)));
            let error = match outcome {
                Ok(()) => {
                    self.metrics
                        .writer_insert_seconds
                        .observe(started.elapsed().as_secs_f64());
                    return Inserted::Done;
                }
                Err(error) => error,
            };
            if retry::classify(&error) == Verdict::Split {
                return Inserted::Rejected(error);
            }
            self.metrics.writer_insert_retries.inc();
            self.watch.backing_off(Some(error.to_string()));
            let wait = backoff.next_delay();
            warn!(%error, rows = rows.len(), retry_in_ms = wait.as_millis() as u64, "insert failed; will retry");
            if !*paused {
                self.pause_all();
                *paused = true;
            }
            if !self.wait_polling(wait, held, stop).await {
                return Inserted::Stopped;
            }
        }
    }

    /// Sends the message behind a rejected row to the dead-letter topic, as
    /// it arrived. False if `stop` fired before it was acknowledged.
    async fn dead_letter_row(
        &self,
        batch: &Batch,
        row: usize,
        error: &crate::store::StoreError,
        stop: &CancellationToken,
    ) -> bool {
        let Some(origin) = batch.origin(row) else {
            // Every row is pushed with its origin; without one, not
            // committing is the only safe answer.
            warn!(
                row,
                "rejected row has no origin; leaving the batch uncommitted"
            );
            return false;
        };
        let detail = error.to_string();
        let why = Why {
            reason: REASON_CLICKHOUSE_REJECTED,
            detail: &detail,
        };
        let source = dead_letters::Source {
            topic: origin.topic(),
            partition: origin.partition(),
            offset: origin.offset(),
        };
        let sent = self
            .dead_letters
            .send_until_acknowledged(why, source, origin.key(), origin.payload(), stop)
            .await;
        if sent {
            self.metrics
                .writer_dead_letters
                .with_label_values(&[REASON_CLICKHOUSE_REJECTED])
                .inc();
        }
        sent
    }

    /// Commits the batch's offsets. While running, asynchronously: a
    /// synchronous commit would hold a runtime thread for a broker round
    /// trip per batch, and a commit that fails only means the batch is read
    /// again and collapses. At shutdown, synchronously, so the last batch
    /// is not re-read.
    fn commit(&self, batch: &Batch, mode: CommitMode, sealing: Option<&Sealing>) {
        let mut list = TopicPartitionList::new();
        for (topic, partition, next) in batch.offsets() {
            // Kafka's committed offset is the next one to read: last + 1.
            if let Err(error) = list.add_partition_offset(topic, partition, Offset::Offset(next)) {
                warn!(%error, topic, partition, "cannot record offset for commit");
            }
            // The chain's head travels with the offset: only the
            // partition's owner can commit it (docs/INTEGRITY.md).
            let head = sealing.and_then(|s| s.head(topic, partition));
            if let (Some(head), Some(mut elem)) = (head, list.find_partition(topic, partition)) {
                elem.set_metadata(head);
            }
        }
        // A failed commit is not a loss: the batch is re-read and its rows
        // collapse with the ones just inserted.
        if let Err(error) = self.consumer.commit(&list, mode) {
            warn!(%error, "offset commit failed; the batch will be re-read");
            return;
        }
        debug!(
            rows = batch.rows().len(),
            bytes = batch.bytes(),
            "batch written and committed"
        );
    }

    /// The retry policy of every wait in the writer, fresh for each run of
    /// failures.
    fn backoff(&self) -> Backoff {
        Backoff::new(self.settings.retry_initial, self.settings.retry_max)
    }

    fn pause_all(&self) {
        match self.consumer.assignment() {
            Ok(assignment) => {
                if let Err(error) = self.consumer.pause(&assignment) {
                    warn!(%error, "cannot pause partitions");
                }
            }
            Err(error) => warn!(%error, "cannot read the assignment to pause it"),
        }
    }

    fn resume_all(&self) {
        if let Ok(assignment) = self.consumer.assignment() {
            if let Err(error) = self.consumer.resume(&assignment) {
                warn!(%error, "cannot resume partitions");
            }
        }
    }

    /// Waits `d` while polling. Paused partitions deliver nothing, but a
    /// partition assigned by a rebalance meanwhile may: its message is held
    /// for the next batch and the partition paused too. False if `stop` fired.
    async fn wait_polling(
        &self,
        d: Duration,
        held: &mut Vec<OwnedMessage>,
        stop: &CancellationToken,
    ) -> bool {
        let sleep = tokio::time::sleep(d);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => return false,
                _ = &mut sleep => return true,
                received = self.consumer.recv() => match received {
                    Ok(message) => {
                        let mut one = TopicPartitionList::new();
                        one.add_partition(message.topic(), message.partition());
                        if let Err(error) = self.consumer.pause(&one) {
                            warn!(%error, "cannot pause a newly assigned partition");
                        }
                        held.push(message.detach());
                    }
                    Err(error) => warn!(%error, "kafka consumer error while paused"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests::sample;
    use crate::store::Provenance;

    fn push(batch: &mut Batch, partition: i32, offset: i64) {
        let row = EventRow::new(
            sample(),
            Provenance {
                schema_id: 1,
                partition,
                offset,
            },
        );
        batch.push(row, Origin::for_test("t", partition, offset, b"k", vec![1]));
    }

    #[test]
    fn a_record_read_twice_in_one_batch_is_sealed_once() {
        let mut batch = Batch::default();
        for offset in [5, 6, 7] {
            push(&mut batch, 0, offset);
        }
        push(&mut batch, 1, 40);
        // The partition came back after a rebalance: read again from 6.
        for offset in [6, 7, 8] {
            push(&mut batch, 0, offset);
        }
        let leaves = leaves_of(&batch);
        let runs = runs(&batch, &[], &leaves);
        let offsets = |p: i32| -> Vec<i64> {
            runs.iter()
                .filter(|r| r.partition == p)
                .flat_map(|r| r.rows.iter().map(|row| row.kafka_offset))
                .collect()
        };
        assert_eq!(offsets(0), vec![5, 6, 7, 8]);
        assert_eq!(offsets(1), vec![40]);
        let first = runs
            .iter()
            .find(|r| r.partition == 0)
            .map(|r| (r.first_offset, r.last_offset));
        assert_eq!(first, Some((5, 8)));
    }

    #[test]
    fn rows_clickhouse_refused_are_not_sealed() {
        let mut batch = Batch::default();
        for offset in [1, 2, 3] {
            push(&mut batch, 0, offset);
        }
        let leaves = leaves_of(&batch);
        let runs = runs(&batch, &[1], &leaves);
        let offsets: Vec<i64> = runs[0].rows.iter().map(|r| r.kafka_offset).collect();
        assert_eq!(offsets, vec![1, 3]);
        // Each row keeps its own leaf.
        assert_eq!(runs[0].leaves, vec![leaves[0], leaves[2]]);
        assert_eq!((runs[0].first_offset, runs[0].last_offset), (1, 3));
    }
}
