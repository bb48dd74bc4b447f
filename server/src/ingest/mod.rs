//! The front door: a request body becomes a validated, Avro-encoded event
//! that the broker has acknowledged. Nothing is produced for a rejected body.

mod batch;
pub mod validate;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tracing::{error, warn};

use crate::event::{Actor, AuditEvent, Category, Outcome, Resource};
use crate::keys::Principal;
use crate::produce::{Delivery, EventProducer, ProduceError};
use crate::registry::{EncodeError, ExternalError, Registry};
use crate::spool::{Spool, SpoolError, SpoolRecord};
use crate::topics;
use batch::Rejection;
pub use batch::{parse_batch, BatchAccepted, BatchBodyError, BatchFormat, BatchMode, EventResult};
pub use validate::Submitted;
use validate::{FieldError, Incoming};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the event is invalid")]
    Invalid(Vec<FieldError>),
    /// Valid, but not something the caller's API key may send.
    #[error("the API key may not send this event")]
    Forbidden(Vec<FieldError>),
    /// Validation let through something the schema rejects: our bug, not
    /// the caller's.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error(transparent)]
    Unavailable(#[from] ProduceError),
    /// The broker refuses the event for good (too large, no rights): not
    /// stored, not spooled, and retrying it as is cannot help.
    #[error("the broker refuses the event: {0}")]
    Refused(Arc<ProduceError>),
    /// The broker did not take the event and neither could the spool.
    #[error(transparent)]
    Spool(Arc<SpoolError>),
    #[error("internal error: {0}")]
    Internal(&'static str),
    /// An external schema registry could not confirm the schema's id.
    #[error(transparent)]
    Registry(Arc<ExternalError>),
    /// Part of a batch was acknowledged, part was not: the caller learns
    /// which, and retries with the same event_ids (duplicates are removed).
    #[error("{} event(s) of the batch were not acknowledged by the broker", not_stored.len())]
    NotAllStored {
        stored: Vec<EventResult>,
        not_stored: Vec<FieldError>,
    },
}

/// A stored event: its id (the one sent, or the one Attest gave it).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    pub event_id: String,
}

pub struct Ingest {
    registry: Arc<Registry>,
    producer: EventProducer,
    topic_prefix: String,
    /// Absent in one-shot commands (`attest keys`, `attest retention`):
    /// they fail loudly when the broker is down, and must not contend for
    /// the server's spool directory.
    spool: Option<Arc<Spool>>,
    broker_timeout: Duration,
}

impl Ingest {
    pub fn new(registry: Arc<Registry>, producer: EventProducer, topic_prefix: String) -> Ingest {
        Ingest {
            registry,
            producer,
            topic_prefix,
            spool: None,
            broker_timeout: Duration::ZERO,
        }
    }

    /// Events the broker does not acknowledge within `broker_timeout` go to
    /// `spool` instead, and are still answered `202`.
    pub fn with_spool(mut self, spool: Arc<Spool>, broker_timeout: Duration) -> Ingest {
        self.spool = Some(spool);
        self.broker_timeout = broker_timeout;
        self
    }

    /// Validates one event and returns once the broker acknowledged it.
    /// With a `principal`, the event belongs to the key's tenant and service.
    pub async fn accept_one(
        &self,
        submitted: Submitted<'_>,
        principal: Option<&Principal>,
    ) -> Result<Accepted, IngestError> {
        let event = prepare(0, submitted, principal, now_ms()).map_err(Rejection::into_error)?;
        self.record(event).await
    }

    /// Decodes a body of Confluent-framed Avro records (for services that
    /// already encode). Each is then held to every rule a JSON event is.
    pub fn avro_items(&self, body: &[u8]) -> Result<Vec<Submitted<'static>>, IngestError> {
        let events = self
            .registry
            .decode_many(body)
            .map_err(|(index, failure)| {
                IngestError::Invalid(vec![FieldError {
                    index,
                    field_path: String::new(),
                    problem: format!("Avro record {index}: {failure}"),
                }])
            })?;
        if events.is_empty() {
            return Err(IngestError::Invalid(vec![FieldError {
                index: 0,
                field_path: String::new(),
                problem: "the body holds no Avro records".into(),
            }]));
        }
        Ok(events
            .into_iter()
            .map(|event| Submitted::Decoded(Box::new(event)))
            .collect())
    }

    /// Validates every event of a batch, then produces the valid ones
    /// concurrently (the producer batches them on the wire) and returns
    /// once the broker answered for each. In `AllOrNothing` mode one invalid
    /// event rejects the request before anything is produced.
    pub async fn accept_batch(
        &self,
        items: Vec<Submitted<'_>>,
        principal: Option<&Principal>,
        mode: BatchMode,
    ) -> Result<BatchAccepted, IngestError> {
        let now = now_ms();
        let mut events = Vec::with_capacity(items.len());
        let mut rejected: Vec<Rejection> = Vec::new();
        for (index, item) in items.into_iter().enumerate() {
            match prepare(index, item, principal, now) {
                Ok(event) => events.push((index, event)),
                Err(rejection) => rejected.push(rejection),
            }
        }
        if mode == BatchMode::AllOrNothing && !rejected.is_empty() {
            return Err(Rejection::merge(rejected).into_error());
        }
        let (indices, events): (Vec<usize>, Vec<AuditEvent>) = events.into_iter().unzip();
        let sent: Vec<(usize, Result<Accepted, IngestError>)> = indices
            .into_iter()
            .zip(self.record_all(events).await)
            .collect();
        let mut results: Vec<EventResult> = Vec::with_capacity(sent.len() + rejected.len());
        let mut unacknowledged = Vec::new();
        for (index, outcome) in sent {
            match outcome {
                Ok(accepted) => results.push(EventResult::accepted(index, accepted.event_id)),
                Err(error) => unacknowledged.push(FieldError {
                    index,
                    field_path: String::new(),
                    problem: format!("not stored: {error}"),
                }),
            }
        }
        if !unacknowledged.is_empty() {
            return Err(IngestError::NotAllStored {
                stored: results,
                not_stored: unacknowledged,
            });
        }
        results.extend(rejected.into_iter().flat_map(Rejection::into_results));
        results.sort_by_key(|r| r.index);
        Ok(BatchAccepted::new(results))
    }

    /// Encodes and produces an event built inside Attest (retention, legal
    /// holds, keys): the same path and the same durability as a service's.
    pub async fn record(&self, event: AuditEvent) -> Result<Accepted, IngestError> {
        self.record_all(vec![event])
            .await
            .pop()
            .unwrap_or(Err(IngestError::Internal("no result for the event")))
    }

    /// Makes every event durable, in order, and answers per event: in Kafka
    /// (acknowledged) or, with a spool, in the spool (fsynced) when the
    /// broker does not acknowledge within `broker_timeout`. While the spool
    /// holds anything, events go behind it rather than overtaking it.
    pub async fn record_all(&self, events: Vec<AuditEvent>) -> Vec<Result<Accepted, IngestError>> {
        if let Err(error) = self.registry.ready().await {
            error!(%error, "no schema id to encode with; refusing events");
            let shared = Arc::new(error);
            return events
                .iter()
                .map(|_| Err(IngestError::Registry(shared.clone())))
                .collect();
        }
        let mut results: Vec<Result<Accepted, IngestError>> = Vec::with_capacity(events.len());
        let mut outgoing: Vec<(usize, SpoolRecord)> = Vec::with_capacity(events.len());
        for event in events {
            match self.registry.encode(&event) {
                Ok(payload) => {
                    outgoing.push((
                        results.len(),
                        SpoolRecord {
                            topic: topics::for_category(&self.topic_prefix, event.category),
                            // Keyed by tenant: one tenant's events stay in order.
                            key: event.tenant_id.clone(),
                            event_id: event.event_id.clone(),
                            payload,
                        },
                    ));
                    results.push(Ok(Accepted {
                        event_id: event.event_id,
                    }));
                }
                Err(error) => {
                    error!(%error, event_id = %event.event_id, "validated event does not fit the schema");
                    results.push(Err(error.into()));
                }
            }
        }
        let to_spool = match &self.spool {
            Some(spool) if spool.is_active() => outgoing,
            _ => self.send_all(outgoing, &mut results).await,
        };
        if let (Some(spool), false) = (&self.spool, to_spool.is_empty()) {
            let (indices, records): (Vec<usize>, Vec<SpoolRecord>) = to_spool.into_iter().unzip();
            if let Err(error) = spool.append(records).await {
                error!(%error, events = indices.len(), "broker unavailable and the spool refused the events; answering 503");
                let shared = Arc::new(error);
                for i in indices {
                    results[i] = Err(IngestError::Spool(shared.clone()));
                }
            }
        }
        results
    }

    /// Sends to Kafka concurrently; returns what the broker did not
    /// acknowledge (in time, with a spool). Without a spool those become
    /// errors in `results`.
    async fn send_all(
        &self,
        outgoing: Vec<(usize, SpoolRecord)>,
        results: &mut [Result<Accepted, IngestError>],
    ) -> Vec<(usize, SpoolRecord)> {
        let sends = outgoing.iter().map(|(_, r)| {
            self.producer
                .send_event(&r.topic, &r.key, &r.event_id, &r.payload)
        });
        let sent = match self.spool {
            // One deadline for the whole request rather than a timer per
            // event: what has no acknowledgement by then is spooled. If the
            // broker acknowledges it later, the spooled copy becomes a
            // duplicate with the same event_id, removed downstream.
            Some(_) => until_deadline(sends, self.broker_timeout).await,
            None => futures::future::join_all(sends).await,
        };
        let mut unsent = Vec::new();
        for ((index, record), outcome) in outgoing.into_iter().zip(sent) {
            if let Err(error) = outcome {
                if error.is_permanent() {
                    error!(%error, topic = %record.topic, event_id = %record.event_id, "the broker refuses the event for good; answering with an error");
                    results[index] = Err(IngestError::Refused(Arc::new(error)));
                } else if self.spool.is_some() {
                    warn!(%error, topic = %record.topic, "broker did not acknowledge; spooling the event");
                    unsent.push((index, record));
                } else {
                    error!(%error, topic = %record.topic, "event not acknowledged by the broker");
                    results[index] = Err(IngestError::Unavailable(error));
                }
            }
        }
        unsent
    }
}

/// Runs the sends together and gives each one's outcome, in order; those
/// still waiting after `timeout` fail with [`ProduceError::Timeout`].
async fn until_deadline<F>(
    sends: impl Iterator<Item = F>,
    timeout: Duration,
) -> Vec<Result<Delivery, ProduceError>>
where
    F: std::future::Future<Output = Result<Delivery, ProduceError>>,
{
    use futures::stream::{FuturesUnordered, StreamExt};
    let mut pending: FuturesUnordered<_> = sends
        .enumerate()
        .map(|(index, send)| async move { (index, send.await) })
        .collect();
    let mut outcomes: Vec<Result<Delivery, ProduceError>> = (0..pending.len())
        .map(|_| Err(ProduceError::Timeout(timeout)))
        .collect();
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = pending.next() => match next {
                Some((index, outcome)) => {
                    if let Some(slot) = outcomes.get_mut(index) {
                        *slot = outcome;
                    }
                }
                None => break,
            },
            () = &mut deadline => break,
        }
    }
    outcomes
}

/// One event of a request, read once and checked against the contract and
/// the caller's key.
fn prepare(
    index: usize,
    submitted: Submitted<'_>,
    principal: Option<&Principal>,
    now: i64,
) -> Result<AuditEvent, Rejection> {
    let mut incoming = Incoming::read(index, submitted).map_err(Rejection::invalid)?;
    if let Some(principal) = principal {
        incoming
            .bind(index, &principal.tenant_id, &principal.source_service)
            .map_err(Rejection::forbidden)?;
    }
    let event = incoming
        .into_event(index, now, new_event_id)
        .map_err(Rejection::invalid)?;
    if let Some(principal) = principal {
        check_category(index, &event, principal).map_err(Rejection::forbidden)?;
    }
    Ok(event)
}

fn check_category(
    index: usize,
    event: &AuditEvent,
    principal: &Principal,
) -> Result<(), Vec<FieldError>> {
    if principal.may_send(event.category) {
        return Ok(());
    }
    Err(vec![FieldError {
        index,
        field_path: "category".into(),
        problem: format!(
            "this API key may only send categories {}",
            principal.categories.join(", ")
        ),
    }])
}

/// UUIDv7: unique without coordination, and sorts by creation time.
pub fn new_event_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// An event Attest records about its own administration (retention, legal
/// holds, API keys), in the tenant's own trail, with `source_service`
/// "attest". An `actor` named `attest-…` is one of Attest's own jobs; any
/// other is an operator.
pub fn internal_event(
    tenant: &str,
    category: Category,
    action: &str,
    outcome: Outcome,
    resource: Resource,
    actor: &str,
    metadata: BTreeMap<String, String>,
) -> AuditEvent {
    let now = now_ms();
    AuditEvent {
        event_id: new_event_id(),
        tenant_id: tenant.to_owned(),
        occurred_at: now,
        received_at: now,
        category,
        action: action.to_owned(),
        outcome,
        actor: Actor {
            id: actor.to_owned(),
            kind: if actor.starts_with("attest-") {
                "system"
            } else {
                "operator"
            }
            .to_owned(),
            ip: None,
            user_agent: None,
        },
        resource: Some(resource),
        source_service: "attest".to_owned(),
        request_id: None,
        metadata,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sends_without_an_answer_by_the_deadline_time_out_in_place() {
        let at = |offset| Delivery {
            partition: 0,
            offset,
        };
        let answers: Vec<Option<Result<Delivery, ProduceError>>> = vec![
            Some(Ok(at(1))),
            None,
            Some(Err(ProduceError::Timeout(Duration::from_secs(9)))),
            Some(Ok(at(4))),
        ];
        let sends = answers.into_iter().map(|answer| async move {
            match answer {
                Some(outcome) => outcome,
                None => std::future::pending().await,
            }
        });
        let outcomes = until_deadline(sends, Duration::from_millis(200)).await;
        assert_eq!(outcomes.len(), 4);
        assert_eq!(outcomes[0].as_ref().ok(), Some(&at(1)));
        assert!(
            matches!(outcomes[1], Err(ProduceError::Timeout(t)) if t == Duration::from_millis(200))
        );
        assert!(
            matches!(outcomes[2], Err(ProduceError::Timeout(t)) if t == Duration::from_secs(9))
        );
        assert_eq!(outcomes[3].as_ref().ok(), Some(&at(4)));
    }

    #[tokio::test]
    async fn sends_that_all_finish_do_not_wait_for_the_deadline() {
        let sends = (0..3).map(|i| async move {
            Ok(Delivery {
                partition: 0,
                offset: i,
            })
        });
        // A deadline of an hour: were it awaited, the guard would fail.
        let outcomes = tokio::time::timeout(
            Duration::from_secs(60),
            until_deadline(sends, Duration::from_secs(3600)),
        )
        .await
        .expect("returned once every send finished");
        assert!(outcomes.iter().all(Result::is_ok));
    }
}
