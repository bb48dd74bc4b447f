//! The HTTP API beside the console: ingest, the schema registry's read
//! endpoints (Confluent REST subset) and health.

pub mod browser;
mod console_auth;
pub mod dead_letters;
mod error;
pub mod export;
pub mod integrity;
pub mod openapi;
pub mod pipeline;
pub mod redactions;
mod registry;
pub mod serve;
pub mod tail;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::health::ready::Readiness;
use crate::ingest::{
    parse_batch, BatchBodyError, BatchFormat, BatchMode, Ingest, IngestError, Submitted,
};
use crate::keys::{AuthError, KeyRing, Principal};
use crate::metrics::Metrics;
use crate::registry::Registry;
pub use console_auth::{login, logout, require_viewer, ConsoleAuth};
pub use error::{ApiError, ErrorBody};

#[derive(Clone)]
pub struct ApiState {
    pub ingest: Arc<Ingest>,
    /// `None` when `ingest.require_api_key` is off (trusted networks only).
    pub keys: Option<Arc<KeyRing>>,
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    pub max_body_bytes: usize,
    pub max_batch_bytes: usize,
    pub max_batch_events: usize,
    /// Events being validated, encoded or waiting for the broker, across
    /// all requests: what bounds ingest's memory.
    pub in_flight: Arc<tokio::sync::Semaphore>,
    /// Request body bytes being read or handled, across all requests:
    /// taken before a body is read.
    pub in_flight_bytes: Arc<tokio::sync::Semaphore>,
    /// Longest a client may take to send a body.
    pub body_timeout: std::time::Duration,
    pub readiness: Arc<Readiness>,
    /// Where the published integrity keys are (`integrity.key_dir`).
    pub integrity_keys: std::path::PathBuf,
}

/// Ingest, the registry and the operational endpoints.
pub fn router(state: ApiState) -> Router {
    let ops = ops_router(state.metrics.clone(), state.readiness.clone());
    let schemas = registry::router(state.registry.clone());
    let keys = integrity::router(state.integrity_keys.clone());
    Router::new()
        .route("/api/v1/events", post(post_event))
        .route("/api/v1/events/batch", post(post_batch))
        .route("/api/v1/openapi.json", get(openapi::serve))
        .with_state(state)
        .merge(schemas)
        .merge(keys)
        .merge(ops)
}

/// `/healthz` (the process answers), `/readyz` (it can do its job; 503 with
/// what is wrong otherwise) and `/metrics`: all a standalone writer serves.
pub fn ops_router(metrics: Arc<Metrics>, readiness: Arc<Readiness>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || async move {
                let report = readiness.report().await;
                let status = if report.ready {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                (status, Json(report))
            }),
        )
        .route(
            "/metrics",
            get(move || async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    metrics.render(),
                )
            }),
        )
}

const JSON: &str = "application/json";
const NDJSON: &str = "application/x-ndjson";
/// Confluent-framed Avro records, one after another.
const AVRO: &str = "application/vnd.attest.avro";

/// The caller's key, checked before anything else about the request.
async fn authenticate(
    state: &ApiState,
    headers: &HeaderMap,
) -> Result<Option<Principal>, ApiError> {
    let Some(keys) = &state.keys else {
        return Ok(None);
    };
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match keys.authenticate(header).await {
        Ok(principal) => Ok(Some(principal)),
        Err(AuthError::Unavailable(error)) => {
            tracing::error!(%error, "cannot check an API key");
            Err(ApiError::Unavailable {
                what: "API keys cannot be checked right now; nothing was stored, retry later",
                retry_after_secs: 5,
            })
        }
        Err(error) => {
            state
                .metrics
                .ingest_events
                .with_label_values(&["unauthorized"])
                .inc();
            Err(ApiError::Unauthorized(error.to_string()))
        }
    }
}

/// Store one audit event.
///
/// Answers once the event is durable (acknowledged by every in-sync Kafka
/// replica, or written to the server's spool while the broker is away).
#[utoipa::path(
    post,
    path = "/api/v1/events",
    tag = "ingest",
    operation_id = "send_event",
    request_body(
        description = "One event: JSON, or one Confluent-framed Avro record (magic byte 0, the schema id, the record) of a registered version",
        content(
            (crate::ingest::validate::IncomingEvent = "application/json"),
            (openapi::AvroRecords = "application/vnd.attest.avro"),
        ),
    ),
    responses(
        (status = 202, description = "Stored", body = crate::ingest::Accepted),
        (status = 400, description = "Invalid: `errors` names each field and problem; nothing was stored", body = ErrorBody),
        (status = 401, description = "No API key, or one that is unknown or revoked", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"attest\"`"))),
        (status = 403, description = "The key may not send this tenant, service or category", body = ErrorBody),
        (status = 408, description = "The body did not arrive within `ingest.body_timeout`", body = ErrorBody),
        (status = 413, description = "Larger than `ingest.max_body_bytes`, or than the broker takes", body = ErrorBody),
        (status = 415, description = "Another Content-Type", body = ErrorBody),
        (status = 429, description = "Too many events in flight; nothing was stored, retry after Retry-After", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
        (status = 503, description = "The broker (and the spool) or the key store is unavailable; nothing was stored, retry with the same event_id after Retry-After", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    ),
    security((), ("api_key" = [])),
)]
async fn post_event(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    // Observed when dropped: every answer counts, refusals included.
    let _timer = state.metrics.ingest_request_seconds.start_timer();
    let principal = authenticate(&state, &headers).await?;
    let mime = media_type(&headers);
    let avro = mime.eq_ignore_ascii_case(AVRO);
    if !avro && !mime.eq_ignore_ascii_case(JSON) {
        return Err(ApiError::UnsupportedMediaType {
            got: content_type(&headers).to_owned(),
            expected: "application/json or application/vnd.attest.avro",
        });
    }
    let _permit = admit(&state, 1)?;
    let (body, _bytes_permit) = read_body(&state, &headers, body, state.max_body_bytes).await?;
    let result = if avro {
        match state.ingest.avro_items(&body) {
            Ok(mut items) if items.len() == 1 => match items.pop() {
                Some(item) => state.ingest.accept_one(item, principal.as_ref()).await,
                None => Err(IngestError::Internal("one Avro record expected")),
            },
            Ok(items) => Err(IngestError::Invalid(vec![
                crate::ingest::validate::FieldError {
                    index: 0,
                    field_path: String::new(),
                    problem: format!(
                        "the body holds {} Avro records; send several to /api/v1/events/batch",
                        items.len()
                    ),
                },
            ])),
            Err(error) => Err(error),
        }
    } else {
        state
            .ingest
            .accept_one(Submitted::Body(&body), principal.as_ref())
            .await
    };
    let label = match &result {
        Ok(_) => "accepted",
        Err(IngestError::Invalid(_)) => "rejected",
        Err(IngestError::Forbidden(_)) => "forbidden",
        Err(_) => "unavailable",
    };
    state
        .metrics
        .ingest_events
        .with_label_values(&[label])
        .inc();
    Ok((StatusCode::ACCEPTED, Json(result?)))
}

/// Takes room for `events` in flight, or answers 429 at once: a client told
/// to come back shortly is better than a server that buffers without bound.
fn admit(state: &ApiState, events: usize) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
    let n = u32::try_from(events).unwrap_or(u32::MAX);
    state.in_flight.try_acquire_many(n).map_err(|_| {
        state
            .metrics
            .ingest_events
            .with_label_values(&["busy"])
            .inc_by(events as u64);
        ApiError::Busy
    })
}

fn content_type(headers: &HeaderMap) -> &str {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The media type without parameters (`; charset=utf-8`).
fn media_type(headers: &HeaderMap) -> &str {
    content_type(headers).split(';').next().unwrap_or("").trim()
}

/// Reads the body once the request is known to be worth reading: a declared
/// length over the limit is refused from the headers, before any byte of
/// the body is read; a body that grows past it (chunked) is cut off there.
/// Reads a body of at most `limit` bytes, within `state.body_timeout`,
/// after taking room for it among the bytes in flight (its declared length,
/// or `limit` when it declares none): a flood of large bodies gets 429
/// before any is read, and a body sent slowly is cut off with 408. The
/// permit is held until the request is answered.
async fn read_body<'a>(
    state: &'a ApiState,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<(Bytes, tokio::sync::SemaphorePermit<'a>), ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::TooLarge { limit });
    }
    let room = declared.map_or(limit as u64, |n| n.max(1));
    let permit = state
        .in_flight_bytes
        .try_acquire_many(u32::try_from(room).unwrap_or(u32::MAX))
        .map_err(|_| ApiError::Busy)?;
    let read = tokio::time::timeout(state.body_timeout, axum::body::to_bytes(body, limit))
        .await
        .map_err(|_| ApiError::RequestTimeout {
            after_secs: state.body_timeout.as_secs(),
        })?;
    let bytes = read.map_err(|error| {
        let too_large = std::error::Error::source(&error)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            ApiError::TooLarge { limit }
        } else {
            ApiError::Invalid(vec![crate::ingest::validate::FieldError {
                index: 0,
                field_path: String::new(),
                problem: format!("cannot read the request body: {error}"),
            }])
        }
    })?;
    Ok((bytes, permit))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct BatchParams {
    /// Accept the valid events and report the rest, instead of rejecting
    /// the whole request.
    #[serde(default)]
    partial: bool,
}

/// Store several audit events in one request.
///
/// By default all or nothing: one invalid event rejects the request before
/// anything is stored. With `partial=true` the valid events are stored and
/// `results` says, per index, why each other one was not.
#[utoipa::path(
    post,
    path = "/api/v1/events/batch",
    tag = "ingest",
    operation_id = "send_batch",
    params(BatchParams),
    request_body(
        description = "At most `ingest.max_batch_events` events, in `ingest.max_batch_bytes`: a JSON array, NDJSON (one event object per line), or Confluent-framed Avro records one after another",
        content(
            (Vec<crate::ingest::validate::IncomingEvent> = "application/json"),
            (String = "application/x-ndjson"),
            (openapi::AvroRecords = "application/vnd.attest.avro"),
        ),
    ),
    responses(
        (status = 202, description = "Stored (with `partial=true`, the valid events; `results` says which)", body = crate::ingest::BatchAccepted),
        (status = 400, description = "Invalid: `errors` names each event (`index`) and field; nothing was stored", body = ErrorBody),
        (status = 401, description = "No API key, or one that is unknown or revoked", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"attest\"`"))),
        (status = 403, description = "The key may not send an event's tenant, service or category", body = ErrorBody),
        (status = 408, description = "The body did not arrive within `ingest.body_timeout`", body = ErrorBody),
        (status = 413, description = "Larger than `ingest.max_batch_bytes` or more than `ingest.max_batch_events` events", body = ErrorBody),
        (status = 415, description = "Another Content-Type", body = ErrorBody),
        (status = 429, description = "Too many events in flight; nothing was stored, retry after Retry-After", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
        (status = 503, description = "Unavailable; `stored` lists the events that were stored anyway: retry the whole batch with the same event_ids after Retry-After (an exact re-send is stored once)", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    ),
    security((), ("api_key" = [])),
)]
async fn post_batch(
    State(state): State<ApiState>,
    Query(params): Query<BatchParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let _timer = state.metrics.ingest_request_seconds.start_timer();
    let principal = authenticate(&state, &headers).await?;
    let mime = media_type(&headers);
    let format = if mime.eq_ignore_ascii_case(JSON) {
        Some(BatchFormat::JsonArray)
    } else if mime.eq_ignore_ascii_case(NDJSON) {
        Some(BatchFormat::Ndjson)
    } else if mime.eq_ignore_ascii_case(AVRO) {
        None
    } else {
        return Err(ApiError::UnsupportedMediaType {
            got: content_type(&headers).to_owned(),
            expected: "application/json (an array of events), application/x-ndjson or application/vnd.attest.avro",
        });
    };
    let (body, _bytes_permit) = read_body(&state, &headers, body, state.max_batch_bytes).await?;
    let items = match format {
        Some(format) => {
            parse_batch(&body, format, state.max_batch_events).map_err(|e| match e {
                BatchBodyError::Unreadable(errors) => ApiError::Invalid(errors),
                BatchBodyError::TooManyEvents { count, limit } => {
                    ApiError::TooManyEvents { count, limit }
                }
            })?
        }
        None => {
            let items = state.ingest.avro_items(&body)?;
            if items.len() > state.max_batch_events {
                return Err(ApiError::TooManyEvents {
                    count: items.len(),
                    limit: state.max_batch_events,
                });
            }
            items
        }
    };
    let _permit = admit(&state, items.len())?;
    let mode = if params.partial {
        BatchMode::Partial
    } else {
        BatchMode::AllOrNothing
    };
    let total = items.len() as u64;
    let result = state
        .ingest
        .accept_batch(items, principal.as_ref(), mode)
        .await;
    let counter = |label: &str, n: u64| {
        state
            .metrics
            .ingest_events
            .with_label_values(&[label])
            .inc_by(n)
    };
    match &result {
        Ok(answer) => {
            counter("accepted", answer.accepted as u64);
            counter("rejected", answer.rejected as u64);
        }
        Err(IngestError::Invalid(_)) => counter("rejected", total),
        Err(IngestError::Forbidden(_)) => counter("forbidden", total),
        Err(IngestError::NotAllStored { stored, not_stored }) => {
            counter("accepted", stored.len() as u64);
            counter("unavailable", not_stored.len() as u64);
        }
        Err(_) => counter("unavailable", total),
    }
    Ok((StatusCode::ACCEPTED, Json(result?)))
}
