//! The HTTP API beside the console: ingest, the schema registry's read
//! endpoints (Confluent REST subset) and health.

mod error;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::ingest::{Ingest, IngestError};
use crate::keys::{AuthError, KeyRing, Principal};
use crate::metrics::Metrics;
use crate::registry::Registry;
pub use error::ApiError;

#[derive(Clone)]
pub struct ApiState {
    pub ingest: Arc<Ingest>,
    /// `None` when `ingest.require_api_key` is off (trusted networks only).
    pub keys: Option<Arc<KeyRing>>,
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    pub max_body_bytes: usize,
}

/// Ingest, the registry and the operational endpoints.
pub fn router(state: ApiState) -> Router {
    let limit = state.max_body_bytes;
    let ops = ops_router(state.metrics.clone());
    Router::new()
        .route("/api/v1/events", post(post_event))
        .route("/subjects", get(subjects))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
        .merge(ops)
}

/// `/healthz` and `/metrics`: all a standalone writer serves.
pub fn ops_router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
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
const REGISTRY_JSON: &str = "application/vnd.schemaregistry.v1+json";

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

async fn post_event(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let principal = authenticate(&state, &headers).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case(JSON) {
        return Err(ApiError::UnsupportedMediaType {
            got: content_type.to_owned(),
            expected: JSON,
        });
    }
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge {
            limit: state.max_body_bytes,
        },
        _ => ApiError::Invalid(vec![crate::ingest::validate::FieldError {
            index: 0,
            field_path: String::new(),
            problem: format!("cannot read the request body: {rejection}"),
        }]),
    })?;
    let result = state.ingest.accept_json(&body, principal.as_ref()).await;
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

async fn subjects(State(state): State<ApiState>) -> impl IntoResponse {
    let names: Vec<&str> = state.registry.subjects().map(|(s, _)| s).collect();
    ([(header::CONTENT_TYPE, REGISTRY_JSON)], Json(json!(names)))
}

async fn schema_by_id(
    State(state): State<ApiState>,
    Path(id): Path<u32>,
) -> Result<impl IntoResponse, ApiError> {
    let version = state
        .registry
        .by_id(id)
        .ok_or_else(|| ApiError::NotFound(format!("schema id {id} is not registered")))?;
    Ok((
        [(header::CONTENT_TYPE, REGISTRY_JSON)],
        Json(json!({"schema": version.text})),
    ))
}
