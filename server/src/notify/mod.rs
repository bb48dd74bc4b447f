//! Webhook delivery: "deliver this message to every configured webhook".
//! Pipeline alerts use it, and detections will: the caller says what the
//! message is (a JSON document, and one line of text for chat tools), this
//! module renders it per webhook (generic JSON or a Slack-compatible body),
//! signs it (`sign`), sends it, retries with the one backoff, and reports
//! every attempt to the caller's [`AttemptLog`] and to the metrics.
//!
//! Each webhook has its own worker and queue, so a receiver that is down
//! delays only its own deliveries, and the messages to one receiver arrive
//! in the order they were given (a "resolved" never overtakes its
//! "firing"). URLs and secrets stay in here: attempts name the webhook.

pub mod sign;
pub mod tls;

use std::sync::Arc;
use std::time::Instant;

use app::alerts_model::DeliveryAttempt;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::backoff::Backoff;
use crate::config::{DeliveryConfig, WebhookConfig, WebhookFormat};
use crate::ingest::now_ms;
use crate::metrics::Metrics;

/// Messages waiting per webhook; beyond it a message is refused (and the
/// refusal recorded as an attempt) rather than memory growing without end.
const QUEUE: usize = 1000;
/// Longest error text kept with an attempt.
const MAX_ERROR_CHARS: usize = 300;

/// What to deliver.
#[derive(Debug, Clone)]
pub struct Message {
    /// What it is about, as attempts are listed (`alert:<id>:firing`).
    pub subject: String,
    /// The generic body, sent as it is.
    pub json: serde_json::Value,
    /// One line for chat tools (the Slack body's `text`).
    pub text: String,
    /// Slack attachment colour (`#d00000`), or empty.
    pub colour: &'static str,
}

/// Where attempts go (for alerts: a ClickHouse table).
pub trait AttemptLog: Send + Sync + 'static {
    fn record(&self, attempt: DeliveryAttempt);
}

#[derive(Clone)]
pub struct Notifier {
    queues: Arc<Vec<(String, mpsc::Sender<Message>)>>,
    log: Arc<dyn AttemptLog>,
}

impl Notifier {
    /// Starts one worker per webhook, each until `stop`.
    pub fn start(
        webhooks: &[WebhookConfig],
        settings: &DeliveryConfig,
        log: Arc<dyn AttemptLog>,
        metrics: Arc<Metrics>,
        stop: CancellationToken,
    ) -> Notifier {
        let shared = tls::client(settings.timeout, None);
        let queues = webhooks
            .iter()
            .map(|hook| {
                let (tx, rx) = mpsc::channel(QUEUE);
                // Checked at start-up (`config`); should the file have
                // changed since, every attempt says why it was not sent.
                let client = match &hook.ca_file {
                    Some(path) => tls::client(settings.timeout, Some(path)),
                    None => shared.clone(),
                };
                if let Err(problem) = &client {
                    warn!(webhook = %hook.name, %problem, "webhook client not built; its deliveries will fail");
                }
                let worker = Worker {
                    hook: hook.clone(),
                    settings: settings.clone(),
                    client,
                    log: log.clone(),
                    metrics: metrics.clone(),
                };
                tokio::spawn(worker.run(rx, stop.clone()));
                (hook.name.clone(), tx)
            })
            .collect();
        Notifier {
            queues: Arc::new(queues),
            log,
        }
    }

    /// Names of the webhooks, for pages.
    pub fn webhooks(&self) -> Vec<String> {
        self.queues.iter().map(|(name, _)| name.clone()).collect()
    }

    /// Queues `message` for every webhook; returns at once.
    pub fn deliver(&self, message: &Message) {
        for (name, queue) in self.queues.iter() {
            if queue.try_send(message.clone()).is_err() {
                warn!(webhook = %name, subject = %message.subject, "webhook queue full or closed; message dropped");
                self.log.record(DeliveryAttempt {
                    subject: message.subject.clone(),
                    webhook: name.clone(),
                    attempt: 0,
                    at_ms: now_ms_u64(),
                    status: 0,
                    error: "not sent: the webhook's queue is full".into(),
                    duration_ms: 0,
                });
            }
        }
    }
}

struct Worker {
    hook: WebhookConfig,
    settings: DeliveryConfig,
    /// Or why there is none (its `ca_file` could not be used).
    client: Result<reqwest::Client, String>,
    log: Arc<dyn AttemptLog>,
    metrics: Arc<Metrics>,
}

impl Worker {
    async fn run(self, mut queue: mpsc::Receiver<Message>, stop: CancellationToken) {
        loop {
            let message = tokio::select! {
                _ = stop.cancelled() => return,
                next = queue.recv() => match next {
                    Some(message) => message,
                    None => return,
                },
            };
            self.deliver(&message, &stop).await;
        }
    }

    /// Attempts until one is answered 2xx, `delivery.attempts` have
    /// failed, or `stop`.
    async fn deliver(&self, message: &Message, stop: &CancellationToken) {
        let body = render(self.hook.format, message);
        let mut backoff = Backoff::new(self.settings.retry_initial, self.settings.retry_max);
        for attempt in 1..=self.settings.attempts {
            let record = self.attempt(message, &body, attempt).await;
            let delivered = record.delivered();
            let result = if delivered { "delivered" } else { "failed" };
            self.metrics
                .notify_attempts
                .with_label_values(&[result])
                .inc();
            if !delivered {
                warn!(webhook = %self.hook.name, subject = %message.subject, attempt,
                      status = record.status, error = %record.error, "webhook delivery failed");
            }
            self.log.record(record);
            if delivered {
                debug!(webhook = %self.hook.name, subject = %message.subject, attempt, "webhook delivered");
                return;
            }
            if attempt == self.settings.attempts {
                break;
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(backoff.next_delay()) => {}
            }
        }
        self.metrics.notify_given_up.inc();
        warn!(webhook = %self.hook.name, subject = %message.subject,
              attempts = self.settings.attempts, "webhook delivery given up");
    }

    async fn attempt(&self, message: &Message, body: &[u8], attempt: u32) -> DeliveryAttempt {
        let at_ms = now_ms_u64();
        let started = Instant::now();
        let client = match &self.client {
            Ok(client) => client,
            Err(problem) => {
                return DeliveryAttempt {
                    subject: message.subject.clone(),
                    webhook: self.hook.name.clone(),
                    attempt,
                    at_ms,
                    status: 0,
                    error: format!("not sent: {problem}")
                        .chars()
                        .take(MAX_ERROR_CHARS)
                        .collect(),
                    duration_ms: 0,
                }
            }
        };
        let sent = client
            .post(&self.hook.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(sign::TIMESTAMP_HEADER, (at_ms / 1000).to_string())
            .header(
                sign::SIGNATURE_HEADER,
                sign::signature(self.hook.secret.as_bytes(), body),
            )
            .body(body.to_vec())
            .send()
            .await;
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (status, error) = match sent {
            Ok(response) if response.status().is_success() => {
                (response.status().as_u16(), String::new())
            }
            Ok(response) => (
                response.status().as_u16(),
                "the receiver did not answer 2xx".into(),
            ),
            // reqwest's text may hold the URL, which may hold a token
            // (Slack's do): say what kind of failure it was, not where.
            Err(error) if error.is_timeout() => (0, "no answer within delivery.timeout".into()),
            Err(error) => match tls::certificate_problem(&error) {
                Some(problem) => (
                    0,
                    format!("TLS: the receiver's certificate is not trusted ({problem})"),
                ),
                None if error.is_connect() => (0, "cannot connect to the receiver".into()),
                None => (0, "the request failed".into()),
            },
        };
        DeliveryAttempt {
            subject: message.subject.clone(),
            webhook: self.hook.name.clone(),
            attempt,
            at_ms,
            status,
            error: error.chars().take(MAX_ERROR_CHARS).collect(),
            duration_ms,
        }
    }
}

/// The body for a webhook of `format`: the message's JSON as it is, or
/// Slack's incoming-webhook shape (`text`, and a coloured attachment).
pub fn render(format: WebhookFormat, message: &Message) -> Vec<u8> {
    let value = match format {
        WebhookFormat::Json => message.json.clone(),
        WebhookFormat::Slack => {
            let mut body = json!({ "text": message.text });
            if !message.colour.is_empty() {
                body["attachments"] = json!([{
                    "color": message.colour,
                    "text": message.json.get("summary").and_then(|s| s.as_str()).unwrap_or_default(),
                }]);
            }
            body
        }
    };
    // A `Value` always serializes.
    serde_json::to_vec(&value).unwrap_or_default()
}

fn now_ms_u64() -> u64 {
    u64::try_from(now_ms()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> Message {
        Message {
            subject: "alert:a1:firing".into(),
            json: json!({"state": "firing", "summary": "ClickHouse is down"}),
            text: "[FIRING] ClickHouse is down".into(),
            colour: "#d00000",
        }
    }

    #[test]
    fn json_body_is_the_message() {
        let body = render(WebhookFormat::Json, &message());
        let back: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(back, message().json);
    }

    #[test]
    fn slack_body_has_text_and_a_coloured_attachment() {
        let body = render(WebhookFormat::Slack, &message());
        let back: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(back["text"], "[FIRING] ClickHouse is down");
        assert_eq!(back["attachments"][0]["color"], "#d00000");
        assert_eq!(back["attachments"][0]["text"], "ClickHouse is down");
        let plain = Message {
            colour: "",
            ..message()
        };
        let back: serde_json::Value =
            serde_json::from_slice(&render(WebhookFormat::Slack, &plain)).expect("json");
        assert!(back.get("attachments").is_none());
    }
}
