//! `GET /api/v1/integrity/keys`: the public keys digests are signed with,
//! each with its validity, old keys included (docs/INTEGRITY.md). Public
//! by nature: no key or session needed, so an auditor can fetch and keep
//! them, and verify later against the copy they kept.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use tracing::warn;

use super::error::ApiError;
use crate::integrity::KeyRing;

pub fn router(key_dir: PathBuf) -> Router {
    Router::new()
        .route("/api/v1/integrity/keys", get(keys))
        .with_state(Arc::new(key_dir))
}

/// The published signing keys.
#[utoipa::path(
    get,
    path = "/api/v1/integrity/keys",
    tag = "integrity",
    responses(
        (status = 200, description = "Every Ed25519 public key that signed or signs digests, with its validity (epoch ms; `not_after` null for the current key)", body = KeyRing),
        (status = 503, description = "The key list cannot be read", body = super::ErrorBody),
    ),
)]
pub async fn keys(State(dir): State<Arc<PathBuf>>) -> Result<Json<KeyRing>, ApiError> {
    KeyRing::load(&dir).map(Json).map_err(|error| {
        warn!(%error, "cannot read the published integrity keys");
        ApiError::Unavailable {
            what: "the integrity key list",
            retry_after_secs: 5,
        }
    })
}
