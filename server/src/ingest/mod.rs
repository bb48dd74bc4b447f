//! The front door: a request body becomes a validated, Avro-encoded event
//! that the broker has acknowledged. Nothing is produced for a rejected body.

pub mod validate;

use std::sync::Arc;

use serde::Serialize;
use tracing::error;

use crate::event::AuditEvent;
use crate::produce::{EventProducer, Outgoing, ProduceError};
use crate::registry::{EncodeError, Registry};
use crate::topics;
use validate::FieldError;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the event is invalid")]
    Invalid(Vec<FieldError>),
    /// Validation let through something the schema rejects: our bug, not
    /// the caller's.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error(transparent)]
    Unavailable(#[from] ProduceError),
}

#[derive(Debug, Serialize)]
pub struct Accepted {
    pub event_id: String,
}

pub struct Ingest {
    registry: Arc<Registry>,
    producer: EventProducer,
    topic_prefix: String,
}

impl Ingest {
    pub fn new(registry: Arc<Registry>, producer: EventProducer, topic_prefix: String) -> Ingest {
        Ingest {
            registry,
            producer,
            topic_prefix,
        }
    }

    /// Validates one JSON event and returns once the broker acknowledged it.
    pub async fn accept_json(&self, body: &[u8]) -> Result<Accepted, IngestError> {
        let event =
            validate::parse_event(0, body, now_ms(), new_event_id).map_err(IngestError::Invalid)?;
        self.record(event).await
    }

    /// Encodes and produces an event built inside Attest (retention, legal
    /// holds): the same path and the same durability as a service's event.
    pub async fn record(&self, event: AuditEvent) -> Result<Accepted, IngestError> {
        let payload = self.registry.encode(&event).inspect_err(|error| {
            error!(%error, event_id = %event.event_id, "validated event does not fit the schema");
        })?;
        let topic = topics::for_category(&self.topic_prefix, event.category);
        self.producer
            .send(Outgoing {
                topic: &topic,
                // Keyed by tenant: one tenant's events stay in order.
                key: &event.tenant_id,
                payload: &payload,
                headers: &[("attest.event_id", event.event_id.as_bytes())],
            })
            .await
            .inspect_err(|error| error!(%error, topic, "event not acknowledged by the broker"))?;
        Ok(Accepted {
            event_id: event.event_id,
        })
    }
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
