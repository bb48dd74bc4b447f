//! The Confluent Schema Registry REST subset that consumers and tools use,
//! served from Attest's contract: same paths, same JSON, same error codes
//! (`{"error_code": 40401, "message": …}`) and the
//! `application/vnd.schemaregistry.v1+json` media type, so a Confluent-aware
//! deserializer pointed at Attest decodes its topics unchanged.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::registry::{Registry, SchemaVersion};

const REGISTRY_JSON: &str = "application/vnd.schemaregistry.v1+json";

pub fn router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/subjects", get(subjects))
        .route("/subjects/{subject}", post(lookup))
        .route("/subjects/{subject}/versions", get(versions))
        .route("/subjects/{subject}/versions/{version}", get(version))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(compatibility),
        )
        .with_state(registry)
}

/// Confluent's error codes for what this subset can answer.
enum RegistryError {
    SubjectNotFound,
    VersionNotFound,
    SchemaNotFound,
    InvalidVersion(String),
    InvalidSchema(String),
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            RegistryError::SubjectNotFound => (StatusCode::NOT_FOUND, 40401, "Subject not found.".to_owned()),
            RegistryError::VersionNotFound => (StatusCode::NOT_FOUND, 40402, "Version not found.".to_owned()),
            RegistryError::SchemaNotFound => (StatusCode::NOT_FOUND, 40403, "Schema not found".to_owned()),
            RegistryError::InvalidVersion(v) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                42202,
                format!("The specified version '{v}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""),
            ),
            RegistryError::InvalidSchema(why) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                42201,
                format!("Either the input schema or one of its references is invalid: {why}"),
            ),
        };
        reply(status, json!({"error_code": code, "message": message}))
    }
}

fn reply(status: StatusCode, body: serde_json::Value) -> Response {
    (status, [(header::CONTENT_TYPE, REGISTRY_JSON)], Json(body)).into_response()
}

fn find<'a>(
    registry: &'a Registry,
    subject: &str,
    version: &str,
) -> Result<&'a SchemaVersion, RegistryError> {
    let versions = registry
        .versions(subject)
        .ok_or(RegistryError::SubjectNotFound)?;
    let found = if version == "latest" || version == "-1" {
        versions.last()
    } else {
        let n: u32 = version
            .parse()
            .ok()
            .filter(|n| *n >= 1 && *n <= i32::MAX as u32)
            .ok_or_else(|| RegistryError::InvalidVersion(version.to_owned()))?;
        versions.iter().find(|v| v.version == n)
    };
    found.map(Arc::as_ref).ok_or(RegistryError::VersionNotFound)
}

async fn subjects(State(registry): State<Arc<Registry>>) -> Response {
    let names: Vec<&str> = registry.subjects().map(|(s, _)| s).collect();
    reply(StatusCode::OK, json!(names))
}

async fn versions(State(registry): State<Arc<Registry>>, Path(subject): Path<String>) -> Response {
    match registry.versions(&subject) {
        Some(versions) => reply(
            StatusCode::OK,
            json!(versions.iter().map(|v| v.version).collect::<Vec<_>>()),
        ),
        None => RegistryError::SubjectNotFound.into_response(),
    }
}

async fn version(
    State(registry): State<Arc<Registry>>,
    Path((subject, version)): Path<(String, String)>,
) -> Result<Response, RegistryError> {
    let v = find(&registry, &subject, &version)?;
    Ok(reply(
        StatusCode::OK,
        json!({"subject": v.subject, "version": v.version, "id": v.id, "schema": v.text}),
    ))
}

async fn schema_by_id(
    State(registry): State<Arc<Registry>>,
    Path(id): Path<String>,
) -> Result<Response, RegistryError> {
    let v = id
        .parse::<u32>()
        .ok()
        .and_then(|id| registry.by_id(id))
        .ok_or(RegistryError::SchemaNotFound)?;
    Ok(reply(StatusCode::OK, json!({"schema": v.text})))
}

/// `POST /subjects/{subject}`: under which version and id is this schema
/// registered? (What a serializer asks before it writes.) Schemas are
/// compared in Avro's parsing canonical form, so whitespace, docs and field
/// order of attributes do not matter.
async fn lookup(
    State(registry): State<Arc<Registry>>,
    Path(subject): Path<String>,
    body: Result<Json<Candidate>, JsonRejection>,
) -> Result<Response, RegistryError> {
    let versions = registry
        .versions(&subject)
        .ok_or(RegistryError::SubjectNotFound)?;
    let Json(candidate) = body.map_err(|e| RegistryError::InvalidSchema(e.body_text()))?;
    let parsed = apache_avro::Schema::parse_str(&candidate.schema)
        .map_err(|e| RegistryError::InvalidSchema(e.to_string()))?;
    let canonical = parsed.canonical_form();
    let found = versions
        .iter()
        .find(|v| v.schema.canonical_form() == canonical)
        .ok_or(RegistryError::SchemaNotFound)?;
    Ok(reply(
        StatusCode::OK,
        json!({"subject": found.subject, "version": found.version, "id": found.id, "schema": found.text}),
    ))
}

#[derive(Deserialize)]
struct Candidate {
    schema: String,
    /// Only Avro is served; absent means Avro, as in Confluent's API.
    #[serde(rename = "schemaType", default)]
    schema_type: Option<String>,
}

async fn compatibility(
    State(registry): State<Arc<Registry>>,
    Path((subject, version)): Path<(String, String)>,
    body: Result<Json<Candidate>, JsonRejection>,
) -> Result<Response, RegistryError> {
    let existing = find(&registry, &subject, &version)?;
    let Json(candidate) = body.map_err(|e| RegistryError::InvalidSchema(e.body_text()))?;
    if candidate
        .schema_type
        .as_deref()
        .is_some_and(|t| !t.eq_ignore_ascii_case("AVRO"))
    {
        return Err(RegistryError::InvalidSchema(
            "only AVRO schemas are registered here".into(),
        ));
    }
    match Registry::can_read(existing, &candidate.schema) {
        Err(why) => Err(RegistryError::InvalidSchema(why)),
        Ok(Ok(())) => Ok(reply(StatusCode::OK, json!({"is_compatible": true}))),
        Ok(Err(why)) => Ok(reply(
            StatusCode::OK,
            json!({"is_compatible": false, "messages": [why]}),
        )),
    }
}
