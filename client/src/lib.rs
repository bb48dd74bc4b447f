//! Attest's Rust client: send audit events to Attest's ingest API.
//!
//! [`Client::send`] and [`Client::send_batch`] queue events for a
//! background task that posts them in batches; [`Client::flush`] waits
//! until everything queued is stored (and returns what could not be);
//! [`Client::close`] flushes and stops. [`Client::send_now`] posts at once.
//!
//! Every event gets its `event_id` (a UUIDv7) when it is queued, unless it
//! has one, and keeps it through every retry: Attest stores an exact
//! re-send once, so a retry never duplicates an event. `429` and `503`
//! answers, and requests that got no answer, are retried with backoff,
//! never sooner than the server's `Retry-After`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), attest_client::Error> {
//! let client = attest_client::Client::new(
//!     attest_client::Config::new("http://127.0.0.1:3030").api_key("ak_…"),
//! )?;
//! let id = client
//!     .send(serde_json::json!({
//!         "occurred_at": "2026-12-03T07:00:00Z",
//!         "category": "data_access",
//!         "action": "invoice.view",
//!         "outcome": "success",
//!         "actor": {"id": "alice", "type": "user"},
//!     }))
//!     .await?;
//! client.close().await?;
//! # Ok(()) }
//! ```

mod error;
mod retry;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

pub use error::{Error, FieldError};

const BATCH_PATH: &str = "/api/v1/events/batch";

/// What to do when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// Wait for room, at most this long (`None`: as long as it takes), then
    /// fail with [`Error::QueueFull`].
    Wait(Option<Duration>),
    /// Fail with [`Error::QueueFull`] at once.
    Error,
}

/// How a [`Client`] sends. Events are never dropped silently: an audit
/// event the caller believes sent and that is not is a compliance failure,
/// so a full queue makes `send` wait or fail, as `when_full` says.
#[derive(Clone)]
pub struct Config {
    url: String,
    api_key: Option<String>,
    /// Most events in one request (at most the server's
    /// `ingest.max_batch_events`).
    pub batch_size: usize,
    /// How long the background task waits for a batch to fill.
    pub linger: Duration,
    /// Most events waiting to be sent.
    pub max_queue: usize,
    pub when_full: WhenFull,
    /// How long a request is retried on 429/503 or no answer before its
    /// events fail with [`Error::Unavailable`].
    pub retry_for: Duration,
    /// The first retry's delay; each retry doubles it, up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// For one HTTP request.
    pub timeout: Duration,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of logs.
        f.debug_struct("Config")
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("batch_size", &self.batch_size)
            .field("linger", &self.linger)
            .field("max_queue", &self.max_queue)
            .field("when_full", &self.when_full)
            .field("retry_for", &self.retry_for)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Defaults for `url` (where Attest listens, e.g.
    /// `https://attest.example.com`).
    pub fn new(url: impl Into<String>) -> Config {
        Config {
            url: url.into().trim_end_matches('/').to_owned(),
            api_key: None,
            batch_size: 500,
            linger: Duration::from_millis(200),
            max_queue: 10_000,
            when_full: WhenFull::Wait(None),
            retry_for: Duration::from_secs(300),
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
        }
    }

    /// An ingest API key (`attest keys create`), sent as a bearer token.
    pub fn api_key(mut self, key: impl Into<String>) -> Config {
        self.api_key = Some(key.into());
        self
    }
}

/// Queues and sends events. Cheap to clone: clones share the queue. Build
/// it inside a Tokio runtime (it spawns its background task).
#[derive(Clone)]
pub struct Client {
    sender: Arc<Sender>,
    queue: mpsc::Sender<Message>,
    worker: Arc<tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
    max_queue: usize,
    when_full: WhenFull,
}

/// One event as it will be posted: serialized once, when queued, with the
/// `event_id` it keeps through every retry. Holding the JSON text rather
/// than a `serde_json::Value` tree spares a copy and an allocation per
/// field of every event (docs/BENCHMARKS.md, "Ingest").
struct Queued {
    event_id: String,
    json: String,
}

enum Message {
    Event(Queued),
    /// Answered once every event queued before it is stored or has failed,
    /// with the failures since the last flush.
    Flush(oneshot::Sender<Vec<Error>>),
}

impl Client {
    pub fn new(config: Config) -> Result<Client, Error> {
        if config.batch_size == 0 || config.max_queue == 0 {
            return Err(Error::Setup(
                "batch_size and max_queue must be at least 1".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("attest-client-rust/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Setup(e.to_string()))?;
        let sender = Arc::new(Sender {
            http,
            url: format!("{}{BATCH_PATH}", config.url),
            api_key: config.api_key.clone(),
            retry_for: config.retry_for,
            backoff: config.backoff,
            max_backoff: config.max_backoff,
        });
        // One slot more than events, for a flush behind a full queue.
        let (queue, rx) = mpsc::channel(config.max_queue.saturating_add(1));
        let worker = tokio::spawn(run(rx, sender.clone(), config.batch_size, config.linger));
        Ok(Client {
            sender,
            queue,
            worker: Arc::new(tokio::sync::Mutex::new(Some(worker))),
            max_queue: config.max_queue,
            when_full: config.when_full,
        })
    }

    /// Queues one event; returns its event_id (given or generated).
    pub async fn send(&self, event: impl Serialize) -> Result<String, Error> {
        let mut ids = self.send_batch([event]).await?;
        ids.pop().ok_or(Error::Closed)
    }

    /// Queues events, all or none; returns their event_ids in order.
    pub async fn send_batch<E: Serialize>(
        &self,
        events: impl IntoIterator<Item = E>,
    ) -> Result<Vec<String>, Error> {
        let events = prepare_all(events)?;
        if events.len() > self.max_queue {
            return Err(Error::QueueFull(self.max_queue));
        }
        let permits = match self.when_full {
            WhenFull::Error => self
                .queue
                .try_reserve_many(events.len())
                .map_err(|e| match e {
                    mpsc::error::TrySendError::Full(()) => Error::QueueFull(self.max_queue),
                    mpsc::error::TrySendError::Closed(()) => Error::Closed,
                })?,
            WhenFull::Wait(None) => self
                .queue
                .reserve_many(events.len())
                .await
                .map_err(|_| Error::Closed)?,
            WhenFull::Wait(Some(limit)) => {
                tokio::time::timeout(limit, self.queue.reserve_many(events.len()))
                    .await
                    .map_err(|_| Error::QueueFull(self.max_queue))?
                    .map_err(|_| Error::Closed)?
            }
        };
        let ids = events.iter().map(|e| e.event_id.clone()).collect();
        for (permit, event) in permits.zip(events) {
            permit.send(Message::Event(event));
        }
        Ok(ids)
    }

    /// Waits until every event queued so far is stored or has failed;
    /// returns the failures since the last flush (one, or
    /// [`Error::Several`]).
    pub async fn flush(&self) -> Result<(), Error> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Message::Flush(reply))
            .await
            .map_err(|_| Error::Closed)?;
        let mut failures = answer.await.map_err(|_| Error::Closed)?;
        match failures.len() {
            0 => Ok(()),
            1 => Err(failures.remove(0)),
            _ => Err(Error::Several(failures)),
        }
    }

    /// Flushes, then stops the background task (for every clone).
    pub async fn close(&self) -> Result<(), Error> {
        let flushed = self.flush().await;
        if let Some(worker) = self.worker.lock().await.take() {
            worker.abort();
            let _ = worker.await;
        }
        flushed
    }

    /// Posts events in one request at once, all or nothing, retrying like
    /// the background task; returns their event_ids.
    pub async fn send_now<E: Serialize>(
        &self,
        events: impl IntoIterator<Item = E>,
    ) -> Result<Vec<String>, Error> {
        let events = prepare_all(events)?;
        let ids = events.iter().map(|e| e.event_id.clone()).collect();
        self.sender.deliver(events, false).await?;
        Ok(ids)
    }
}

/// Each event serialized with its event_id, chosen here, once: every retry
/// re-sends the same id.
fn prepare_all<E: Serialize>(events: impl IntoIterator<Item = E>) -> Result<Vec<Queued>, Error> {
    events
        .into_iter()
        .enumerate()
        .map(|(index, event)| prepare(index, &event))
        .collect()
}

fn prepare<E: Serialize>(index: usize, event: &E) -> Result<Queued, Error> {
    let not_an_object = || Error::NotAnObject { index };
    let json = serde_json::to_string(event).map_err(|_| not_an_object())?;
    // serde_json writes an object as `{` first, with no space before it.
    let Some(fields) = json.strip_prefix('{') else {
        return Err(not_an_object());
    };
    /// The one field the client reads back; the rest is skipped unread.
    #[derive(Deserialize)]
    struct Id<'a> {
        #[serde(borrow, default)]
        event_id: Option<std::borrow::Cow<'a, str>>,
    }
    match serde_json::from_str::<Id>(&json) {
        Ok(Id { event_id: Some(id) }) if !id.is_empty() => Ok(Queued {
            event_id: id.into_owned(),
            json,
        }),
        // No id: one is written in front of the other fields.
        Ok(Id { event_id: None }) => {
            let event_id = uuid::Uuid::now_v7().to_string();
            let comma = if fields.starts_with('}') { "" } else { "," };
            let json = format!("{{\"event_id\":\"{event_id}\"{comma}{fields}");
            Ok(Queued { event_id, json })
        }
        // An empty or non-text id is replaced, as the server would refuse it.
        _ => {
            let mut value = serde_json::to_value(event).map_err(|_| not_an_object())?;
            let object = value.as_object_mut().ok_or_else(not_an_object)?;
            let event_id = uuid::Uuid::now_v7().to_string();
            object.insert("event_id".into(), Value::String(event_id.clone()));
            Ok(Queued {
                event_id,
                json: value.to_string(),
            })
        }
    }
}

/// A batch as the JSON array the server reads.
fn batch_body(events: &[Queued]) -> String {
    let length = events.iter().map(|e| e.json.len() + 1).sum::<usize>() + 2;
    let mut body = String::with_capacity(length);
    body.push('[');
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&event.json);
    }
    body.push(']');
    body
}

/// The background task: fills batches from the queue and sends them.
async fn run(
    mut queue: mpsc::Receiver<Message>,
    sender: Arc<Sender>,
    batch_size: usize,
    linger: Duration,
) {
    let mut batch: Vec<Queued> = Vec::with_capacity(batch_size);
    let mut failures: Vec<Error> = Vec::new();
    let mut deadline = tokio::time::Instant::now();
    loop {
        let message = if batch.is_empty() {
            queue.recv().await
        } else {
            match tokio::time::timeout_at(deadline, queue.recv()).await {
                Ok(message) => message,
                Err(_) => {
                    sender.deliver_into(&mut batch, &mut failures).await;
                    continue;
                }
            }
        };
        match message {
            Some(Message::Event(event)) => {
                if batch.is_empty() {
                    deadline = tokio::time::Instant::now() + linger;
                }
                batch.push(event);
                if batch.len() >= batch_size {
                    sender.deliver_into(&mut batch, &mut failures).await;
                }
            }
            Some(Message::Flush(reply)) => {
                sender.deliver_into(&mut batch, &mut failures).await;
                let _ = reply.send(std::mem::take(&mut failures));
            }
            None => {
                sender.deliver_into(&mut batch, &mut failures).await;
                return;
            }
        }
    }
}

struct Sender {
    http: reqwest::Client,
    url: String,
    api_key: Option<String>,
    retry_for: Duration,
    backoff: Duration,
    max_backoff: Duration,
}

/// One request's outcome: the status (None: no answer), body, Retry-After.
struct Answer {
    status: Option<u16>,
    body: Reply,
    retry_after: Option<Duration>,
}

/// What the client reads of an answer's body; the accepted events' ids
/// (it knows them) are skipped without being copied.
#[derive(Deserialize, Default)]
struct Reply {
    #[serde(default)]
    message: String,
    #[serde(default)]
    errors: Vec<FieldError>,
    #[serde(default)]
    results: Vec<ItemReply>,
    /// Present (as a list) when part of a batch was stored.
    #[serde(default)]
    stored: Option<Vec<serde::de::IgnoredAny>>,
}

#[derive(Deserialize)]
struct ItemReply {
    #[serde(default)]
    errors: Vec<FieldError>,
}

impl Sender {
    async fn deliver_into(&self, batch: &mut Vec<Queued>, failures: &mut Vec<Error>) {
        if batch.is_empty() {
            return;
        }
        if let Err(error) = self.deliver(std::mem::take(batch), true).await {
            failures.push(error);
        }
    }

    /// Posts until every event is stored or has failed for good. In
    /// `partial` mode the valid events of a batch are stored and the
    /// invalid ones come back as [`Error::Invalid`].
    async fn deliver(&self, mut events: Vec<Queued>, partial: bool) -> Result<(), Error> {
        let started = Instant::now();
        let mut waited = Duration::ZERO;
        let mut attempt: u32 = 0;
        loop {
            let answer = self.post(&events, partial).await;
            match answer.status {
                Some(202) => return accepted(&answer.body, &events),
                Some(400) => return Err(Error::Invalid(field_errors(&answer.body, &events))),
                Some(status) if !retry::retryable(status) => {
                    return Err(Error::Refused {
                        status,
                        message: answer.body.message.clone(),
                        errors: field_errors(&answer.body, &events),
                    })
                }
                _ => {}
            }
            if answer.status == Some(503) && answer.body.stored.is_some() {
                // Part of the batch is stored: send only the rest again.
                let not_stored: Vec<usize> = field_errors(&answer.body, &events)
                    .iter()
                    .map(|e| e.index)
                    .collect();
                if !not_stored.is_empty() {
                    events = events
                        .into_iter()
                        .enumerate()
                        .filter(|(i, _)| not_stored.contains(i))
                        .map(|(_, e)| e)
                        .collect();
                }
            }
            attempt = attempt.saturating_add(1);
            let delay = retry::delay(
                attempt,
                self.backoff,
                self.max_backoff,
                answer.retry_after,
                rand::random::<f64>(),
            );
            waited = waited.saturating_add(delay);
            if waited.max(started.elapsed().saturating_add(delay)) > self.retry_for {
                return Err(Error::Unavailable {
                    event_ids: events.iter().map(|e| e.event_id.clone()).collect(),
                    last: answer
                        .status
                        .map_or("no answer".to_owned(), |s| format!("HTTP {s}")),
                });
            }
            tokio::time::sleep(delay).await;
        }
    }

    async fn post(&self, events: &[Queued], partial: bool) -> Answer {
        let mut request = self
            .http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(batch_body(events));
        if partial {
            request = request.query(&[("partial", "true")]);
        }
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = retry::parse_retry_after(
                    response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok()),
                );
                // A body cut short reads as no body: for a retryable status
                // that changes nothing, and a 202 without results is a 202.
                let body = response.json().await.unwrap_or_default();
                Answer {
                    status: Some(status),
                    body,
                    retry_after,
                }
            }
            // No answer: maybe stored, maybe not. The retry carries the
            // same event ids, so either way each event is stored once.
            Err(_) => Answer {
                status: None,
                body: Reply::default(),
                retry_after: None,
            },
        }
    }
}

/// A 202: in partial mode, the events it did not take.
fn accepted(body: &Reply, events: &[Queued]) -> Result<(), Error> {
    let errors = named(
        body.results.iter().flat_map(|r| r.errors.iter().cloned()),
        events,
    );
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(errors))
    }
}

fn field_errors(body: &Reply, events: &[Queued]) -> Vec<FieldError> {
    named(body.errors.iter().cloned(), events)
}

/// Each error with the id of the event it is about.
fn named(errors: impl Iterator<Item = FieldError>, events: &[Queued]) -> Vec<FieldError> {
    errors
        .map(|mut e| {
            e.event_id = events.get(e.index).map(|q| q.event_id.clone());
            e
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_id_is_given_once_and_a_given_one_is_kept() {
        let events = prepare_all([
            serde_json::json!({"action": "a"}),
            serde_json::json!({"event_id": "mine", "action": "b"}),
            serde_json::json!({"event_id": ""}),
            serde_json::json!({"event_id": 7, "action": "c"}),
            serde_json::json!({}),
        ])
        .unwrap();
        let id = uuid::Uuid::parse_str(&events[0].event_id).unwrap();
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(events[1].event_id, "mine");
        for event in [&events[2], &events[3], &events[4]] {
            assert_eq!(
                uuid::Uuid::parse_str(&event.event_id)
                    .unwrap()
                    .get_version_num(),
                7
            );
        }
        // What is posted is the event with exactly that id, once.
        for event in &events {
            let posted: Value = serde_json::from_str(&event.json).unwrap();
            assert_eq!(posted["event_id"], event.event_id.as_str());
            assert_eq!(event.json.matches("\"event_id\"").count(), 1);
        }
        let posted: Value = serde_json::from_str(&events[0].json).unwrap();
        assert_eq!(posted["action"], "a");
        assert!(matches!(
            prepare_all([serde_json::json!([1])]),
            Err(Error::NotAnObject { index: 0 })
        ));
        assert!(matches!(
            prepare_all([serde_json::json!({}), serde_json::json!("text")]),
            Err(Error::NotAnObject { index: 1 })
        ));
    }

    #[test]
    fn a_batch_is_posted_as_one_json_array() {
        #[derive(Serialize)]
        struct Typed<'a> {
            action: &'a str,
            actor: serde_json::Value,
        }
        let events = prepare_all([
            Typed {
                action: "x\"y",
                actor: serde_json::json!({"id": "é"}),
            },
            Typed {
                action: "z",
                actor: serde_json::json!({}),
            },
        ])
        .unwrap();
        let body: Value = serde_json::from_str(&batch_body(&events)).unwrap();
        let items = body.as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["action"], "x\"y");
        assert_eq!(items[0]["actor"]["id"], "é");
        assert_eq!(items[1]["event_id"], events[1].event_id.as_str());
        assert_eq!(batch_body(&[]), "[]");
    }

    #[test]
    fn a_partial_answer_names_the_rejected_events_and_fields() {
        let events = prepare_all([
            serde_json::json!({"event_id": "a"}),
            serde_json::json!({"event_id": "b"}),
        ])
        .unwrap();
        let body: Reply = serde_json::from_value(serde_json::json!({"accepted": 1, "rejected": 1, "results": [
            {"index": 0, "event_id": "a"},
            {"index": 1, "errors": [{"index": 1, "field_path": "actor.ip", "problem": "not an address"}]},
        ]}))
        .unwrap();
        let error = accepted(&body, &events).unwrap_err();
        assert_eq!(error.field(), Some("actor.ip"));
        let Error::Invalid(errors) = &error else {
            panic!("{error:?}")
        };
        assert_eq!(errors[0].event_id.as_deref(), Some("b"));
        assert!(error.to_string().contains("actor.ip"));
    }

    #[test]
    fn an_answer_with_part_stored_names_what_was_not() {
        let events = prepare_all([
            serde_json::json!({"event_id": "a"}),
            serde_json::json!({"event_id": "b"}),
        ])
        .unwrap();
        let body: Reply = serde_json::from_value(serde_json::json!({
            "message": "1 event(s) of the batch were not acknowledged by the broker",
            "stored": [{"index": 0, "event_id": "a"}],
            "errors": [{"index": 1, "field_path": "", "problem": "not stored: timeout"}],
        }))
        .unwrap();
        assert!(body.stored.is_some());
        let errors = field_errors(&body, &events);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].event_id.as_deref(), Some("b"));
        let plain: Reply = serde_json::from_str(r#"{"message": "slow down"}"#).unwrap();
        assert!(plain.stored.is_none());
    }
}
