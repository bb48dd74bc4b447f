//! The Confluent Schema Registry REST subset that consumers and tools use,
//! served from Attest's contract: same paths, same JSON, same error codes
//! (`{"error_code": 40401, "message": …}`) and the
//! `application/vnd.schemaregistry.v1+json` media type, so a Confluent-aware
//! deserializer pointed at Attest decodes its topics unchanged.
//!
//! The registry shares `/` with the console, whose fallback sends unknown
//! paths to the sign-in page. A stock client that asked for something this
//! subset did not serve used to get that redirect (confluent-kafka 2.16
//! asks `/associations/…` before decoding, and took the login page for a
//! failure): so every path under the registry's prefixes answers here, with
//! Confluent's JSON, and every write with Confluent's read-only error.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::registry::{Registry, SchemaVersion, COMPATIBILITY};

const REGISTRY_JSON: &str = "application/vnd.schemaregistry.v1+json";

pub fn router(registry: Arc<Registry>) -> Router {
    type Routes = Router<Arc<Registry>>;
    // Each prefix is a nested router with its own fallbacks, so an unknown
    // path or method under it is answered here (a catch-all route beside
    // the parameter routes would not be accepted by the router).
    let nest = |router: Routes, prefix: &str, under: Routes| {
        router.nest(
            prefix,
            under
                .fallback(unknown)
                .method_not_allowed_fallback(read_only),
        )
    };
    let subjects_routes = Router::new()
        .route("/{subject}", post(lookup).delete(read_only))
        .route("/{subject}/versions", get(versions).post(read_only))
        .route(
            "/{subject}/versions/{version}",
            get(version).delete(read_only),
        )
        .route("/{subject}/versions/{version}/schema", get(version_schema));
    let schemas_routes = Router::new()
        .route("/ids/{id}", get(schema_by_id))
        .route("/ids/{id}/schema", get(schema_text_by_id))
        .route("/ids/{id}/subjects", get(subjects_by_id))
        .route("/ids/{id}/versions", get(versions_by_id))
        .route("/types", get(schema_types));
    let config_routes = Router::new().route(
        "/{subject}",
        get(subject_config).put(read_only).delete(read_only),
    );
    let mode_routes = Router::new().route("/{subject}", get(mode).put(read_only).delete(read_only));
    let compatibility_routes = Router::new()
        .route("/subjects/{subject}/versions", post(compatibility_all))
        .route(
            "/subjects/{subject}/versions/{version}",
            post(compatibility),
        );
    let associations_routes =
        Router::new().route("/resources/{namespace}/{name}", get(no_associations));
    let mut router: Routes = Router::new()
        .route("/subjects", get(subjects).fallback(read_only))
        .route("/config", get(global_config).fallback(read_only))
        .route("/mode", get(mode).fallback(read_only))
        .route("/contexts", get(contexts).fallback(read_only));
    router = nest(router, "/subjects", subjects_routes);
    router = nest(router, "/schemas", schemas_routes);
    router = nest(router, "/config", config_routes);
    router = nest(router, "/mode", mode_routes);
    router = nest(router, "/compatibility", compatibility_routes);
    router = nest(router, "/associations", associations_routes);
    for prefix in ["/contexts", "/exporters", "/dek-registry"] {
        router = nest(router, prefix, Router::new());
    }
    router
        .route("/exporters", any(unknown))
        .route("/dek-registry", any(unknown))
        .route("/schemas", any(unknown))
        .route("/compatibility", any(unknown))
        .route("/associations", any(unknown))
        .with_state(registry)
}

/// Confluent's error codes for what this subset can answer.
enum RegistryError {
    SubjectNotFound,
    VersionNotFound,
    SchemaNotFound,
    InvalidVersion(String),
    InvalidSchema(String),
    /// Attest is the only writer of its contract (`schemas/registry.json`).
    ReadOnly,
    /// A path under the registry that this subset does not serve.
    UnknownPath,
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
            RegistryError::ReadOnly => (
                StatusCode::UNPROCESSABLE_ENTITY,
                42205,
                "The registry is in read-only mode: Attest's schemas change only through a new version in schemas/registry.json".to_owned(),
            ),
            RegistryError::UnknownPath => (StatusCode::NOT_FOUND, 404, "HTTP 404 Not Found".to_owned()),
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

#[utoipa::path(
    get,
    path = "/subjects",
    tag = "registry",
    summary = "Every subject",
    responses(
        (status = 200, description = "Subject names", body = Vec<String>, content_type = "application/vnd.schemaregistry.v1+json"),
    ),
)]
async fn subjects(State(registry): State<Arc<Registry>>) -> Response {
    let names: Vec<&str> = registry.subjects().map(|(s, _)| s).collect();
    reply(StatusCode::OK, json!(names))
}

#[utoipa::path(
    get,
    path = "/subjects/{subject}/versions",
    tag = "registry",
    summary = "The versions of a subject",
    params(("subject" = String, Path, description = "e.g. `dev.attest.AuditEvent` (record-name strategy)")),
    responses(
        (status = 200, description = "Version numbers", body = Vec<u32>, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 404, description = "40401 subject not found", body = crate::http::openapi::RegistryErrorBody, content_type = "application/vnd.schemaregistry.v1+json"),
    ),
)]
async fn versions(State(registry): State<Arc<Registry>>, Path(subject): Path<String>) -> Response {
    match registry.versions(&subject) {
        Some(versions) => reply(
            StatusCode::OK,
            json!(versions.iter().map(|v| v.version).collect::<Vec<_>>()),
        ),
        None => RegistryError::SubjectNotFound.into_response(),
    }
}

#[utoipa::path(
    get,
    path = "/subjects/{subject}/versions/{version}",
    tag = "registry",
    summary = "One version of a subject",
    params(("subject" = String, Path, description = "e.g. `dev.attest.AuditEvent` (record-name strategy)"), ("version" = String, Path, description = "A version number, `latest` or `-1`")),
    responses(
        (status = 200, description = "The version", body = crate::http::openapi::SubjectVersion, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 404, description = "40401 subject or 40402 version not found", body = crate::http::openapi::RegistryErrorBody, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 422, description = "42202 not a version number or `latest`", body = crate::http::openapi::RegistryErrorBody, content_type = "application/vnd.schemaregistry.v1+json"),
    ),
)]
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

fn by_id<'a>(registry: &'a Registry, id: &str) -> Result<&'a SchemaVersion, RegistryError> {
    id.parse::<u32>()
        .ok()
        .and_then(|id| registry.by_id(id))
        .ok_or(RegistryError::SchemaNotFound)
}

#[utoipa::path(
    get,
    path = "/schemas/ids/{id}",
    tag = "registry",
    summary = "A schema by its id (the id in every message's Confluent framing)",
    params(("id" = u32, Path, description = "Schema id")),
    responses(
        (status = 200, description = "`{\"schema\": text}`", body = Object, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 404, description = "40403 schema not found", body = crate::http::openapi::RegistryErrorBody, content_type = "application/vnd.schemaregistry.v1+json"),
    ),
)]
async fn schema_by_id(
    State(registry): State<Arc<Registry>>,
    Path(id): Path<String>,
) -> Result<Response, RegistryError> {
    let v = by_id(&registry, &id)?;
    Ok(reply(StatusCode::OK, json!({"schema": v.text})))
}

/// The schema itself, as Confluent's `/schema` endpoints return it.
fn raw_schema(v: &SchemaVersion) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, REGISTRY_JSON)],
        v.text.clone(),
    )
        .into_response()
}

#[utoipa::path(
    get,
    path = "/schemas/ids/{id}/schema",
    tag = "registry",
    summary = "The schema text by its id",
    params(("id" = u32, Path, description = "Schema id")),
    responses(
        (status = 200, description = "The Avro schema (JSON)", body = Object, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 404, description = "40403 schema not found", body = crate::http::openapi::RegistryErrorBody, content_type = "application/vnd.schemaregistry.v1+json"),
    ),
)]
async fn schema_text_by_id(
    State(registry): State<Arc<Registry>>,
    Path(id): Path<String>,
) -> Result<Response, RegistryError> {
    Ok(raw_schema(by_id(&registry, &id)?))
}

#[utoipa::path(
    get,
    path = "/subjects/{subject}/versions/{version}/schema",
    tag = "registry",
    summary = "The schema text of one version",
    params(("subject" = String, Path, description = "e.g. `dev.attest.AuditEvent` (record-name strategy)"), ("version" = String, Path, description = "A version number, `latest` or `-1`")),
    responses(
        (status = 200, description = "The Avro schema (JSON)", body = Object, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 404, description = "40401 subject or 40402 version not found", body = crate::http::openapi::RegistryErrorBody, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 422, description = "42202 not a version number or `latest`", body = crate::http::openapi::RegistryErrorBody, content_type = "application/vnd.schemaregistry.v1+json"),
    ),
)]
async fn version_schema(
    State(registry): State<Arc<Registry>>,
    Path((subject, version)): Path<(String, String)>,
) -> Result<Response, RegistryError> {
    Ok(raw_schema(find(&registry, &subject, &version)?))
}

/// Every (subject, version) registered under schema `id`; ids are unique
/// to a schema here, as in Confluent.
fn uses_of<'a>(registry: &'a Registry, id: &str) -> Result<Vec<&'a SchemaVersion>, RegistryError> {
    let id: u32 = id.parse().map_err(|_| RegistryError::SchemaNotFound)?;
    let uses: Vec<&SchemaVersion> = registry
        .subjects()
        .flat_map(|(_, versions)| versions.iter().map(Arc::as_ref))
        .filter(|v| v.id == id)
        .collect();
    if uses.is_empty() {
        return Err(RegistryError::SchemaNotFound);
    }
    Ok(uses)
}

#[derive(Deserialize)]
struct SubjectFilter {
    subject: Option<String>,
}

#[utoipa::path(
    get,
    path = "/schemas/ids/{id}/subjects",
    tag = "registry",
    summary = "The subjects a schema id is registered under",
    params(("id" = u32, Path, description = "Schema id"), ("subject" = Option<String>, Query, description = "Only this subject")),
    responses(
        (status = 200, description = "Subject names", body = Vec<String>, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 404, description = "40403 schema not found", body = crate::http::openapi::RegistryErrorBody, content_type = "application/vnd.schemaregistry.v1+json"),
    ),
)]
async fn subjects_by_id(
    State(registry): State<Arc<Registry>>,
    Path(id): Path<String>,
    Query(filter): Query<SubjectFilter>,
) -> Result<Response, RegistryError> {
    let mut names: Vec<&str> = uses_of(&registry, &id)?
        .into_iter()
        .map(|v| v.subject.as_str())
        .filter(|s| filter.subject.as_deref().is_none_or(|f| f == *s))
        .collect();
    names.dedup();
    Ok(reply(StatusCode::OK, json!(names)))
}

#[utoipa::path(
    get,
    path = "/schemas/ids/{id}/versions",
    tag = "registry",
    summary = "The (subject, version) pairs of a schema id",
    params(("id" = u32, Path, description = "Schema id"), ("subject" = Option<String>, Query, description = "Only this subject")),
    responses(
        (status = 200, description = "Subject and version pairs", body = Vec<Object>, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 404, description = "40403 schema not found", body = crate::http::openapi::RegistryErrorBody, content_type = "application/vnd.schemaregistry.v1+json"),
    ),
)]
async fn versions_by_id(
    State(registry): State<Arc<Registry>>,
    Path(id): Path<String>,
    Query(filter): Query<SubjectFilter>,
) -> Result<Response, RegistryError> {
    let pairs: Vec<serde_json::Value> = uses_of(&registry, &id)?
        .into_iter()
        .filter(|v| filter.subject.as_deref().is_none_or(|f| f == v.subject))
        .map(|v| json!({"subject": v.subject, "version": v.version}))
        .collect();
    Ok(reply(StatusCode::OK, json!(pairs)))
}

#[utoipa::path(
    get,
    path = "/schemas/types",
    tag = "registry",
    summary = "The schema types served",
    responses(
        (status = 200, description = "`[\"AVRO\"]`", body = Vec<String>, content_type = "application/vnd.schemaregistry.v1+json"),
    ),
)]
async fn schema_types() -> Response {
    reply(StatusCode::OK, json!(["AVRO"]))
}

#[utoipa::path(
    get,
    path = "/config",
    tag = "registry",
    summary = "The compatibility level (BACKWARD_TRANSITIVE)",
    responses(
        (status = 200, description = "`{\"compatibilityLevel\": …}`", body = Object, content_type = "application/vnd.schemaregistry.v1+json"),
    ),
)]
async fn global_config() -> Response {
    reply(StatusCode::OK, json!({"compatibilityLevel": COMPATIBILITY}))
}

/// Every subject is held to the one level, as if configured on it.
#[utoipa::path(
    get,
    path = "/config/{subject}",
    tag = "registry",
    summary = "A subject's compatibility level (the global one)",
    params(("subject" = String, Path, description = "e.g. `dev.attest.AuditEvent` (record-name strategy)")),
    responses(
        (status = 200, description = "`{\"compatibilityLevel\": …}`", body = Object, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 404, description = "40401 subject not found", body = crate::http::openapi::RegistryErrorBody, content_type = "application/vnd.schemaregistry.v1+json"),
    ),
)]
async fn subject_config(
    State(registry): State<Arc<Registry>>,
    Path(subject): Path<String>,
) -> Result<Response, RegistryError> {
    registry
        .versions(&subject)
        .ok_or(RegistryError::SubjectNotFound)?;
    Ok(global_config().await)
}

#[utoipa::path(
    get,
    path = "/mode",
    tag = "registry",
    summary = "The registry's mode: READONLY (Attest is the only writer of its schemas)",
    responses(
        (status = 200, description = "`{\"mode\": \"READONLY\"}`", body = Object, content_type = "application/vnd.schemaregistry.v1+json"),
    ),
)]
async fn mode() -> Response {
    reply(StatusCode::OK, json!({"mode": "READONLY"}))
}

async fn contexts() -> Response {
    reply(StatusCode::OK, json!(["."]))
}

/// Attest associates no subject with a topic: clients fall back to their
/// naming strategy, and decode by the id in each message either way.
async fn no_associations() -> Response {
    reply(StatusCode::OK, json!([]))
}

async fn read_only() -> RegistryError {
    RegistryError::ReadOnly
}

async fn unknown() -> RegistryError {
    RegistryError::UnknownPath
}

/// `POST /subjects/{subject}`: under which version and id is this schema
/// registered? (What a serializer asks before it writes.) Schemas match
/// when their parsing canonical form and every field's default agree:
/// canonical form alone drops defaults, and two schemas whose defaults
/// differ resolve old data differently, so Confluent tells them apart too.
/// Whitespace and the order of attributes do not matter.
#[utoipa::path(
    post,
    path = "/subjects/{subject}",
    tag = "registry",
    summary = "Under which version and id a schema is registered (defaults included in the comparison)",
    params(("subject" = String, Path, description = "e.g. `dev.attest.AuditEvent` (record-name strategy)")),
    request_body(content = crate::http::openapi::SchemaCandidate, content_type = "application/vnd.schemaregistry.v1+json"),
    responses(
        (status = 200, description = "The matching version", body = crate::http::openapi::SubjectVersion, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 404, description = "40401 subject or 40403 schema not found", body = crate::http::openapi::RegistryErrorBody, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 422, description = "42201 not a valid Avro schema", body = crate::http::openapi::RegistryErrorBody, content_type = "application/vnd.schemaregistry.v1+json"),
    ),
)]
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
        .find(|v| {
            v.schema.canonical_form() == canonical && defaults(&v.schema) == defaults(&parsed)
        })
        .ok_or(RegistryError::SchemaNotFound)?;
    Ok(reply(
        StatusCode::OK,
        json!({"subject": found.subject, "version": found.version, "id": found.id, "schema": found.text}),
    ))
}

/// Every field's default, by its path through nested records.
fn defaults(schema: &apache_avro::Schema) -> Vec<(String, Option<serde_json::Value>)> {
    use apache_avro::Schema;
    fn walk(schema: &Schema, path: &str, out: &mut Vec<(String, Option<serde_json::Value>)>) {
        match schema {
            Schema::Record(record) => {
                for field in &record.fields {
                    let at = format!("{path}.{}", field.name);
                    out.push((at.clone(), field.default.clone()));
                    walk(&field.schema, &at, out);
                }
            }
            Schema::Union(union) => {
                for (i, branch) in union.variants().iter().enumerate() {
                    walk(branch, &format!("{path}[{i}]"), out);
                }
            }
            Schema::Array(array) => walk(&array.items, &format!("{path}[]"), out),
            Schema::Map(map) => walk(&map.types, &format!("{path}{{}}"), out),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(schema, "", &mut out);
    out
}

#[derive(Deserialize)]
struct Candidate {
    schema: String,
    /// Only Avro is served; absent means Avro, as in Confluent's API.
    #[serde(rename = "schemaType", default)]
    schema_type: Option<String>,
}

fn avro_candidate(
    body: Result<Json<Candidate>, JsonRejection>,
) -> Result<Candidate, RegistryError> {
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
    Ok(candidate)
}

/// Whether `candidate` and each of `existing` read each other's data (the
/// level, [`COMPATIBILITY`], is FULL); every reason they do not.
fn check(existing: &[&SchemaVersion], candidate: &Candidate) -> Result<Response, RegistryError> {
    let mut messages = Vec::new();
    for version in existing {
        match Registry::compatible(version, &candidate.schema) {
            Err(why) => return Err(RegistryError::InvalidSchema(why)),
            Ok(Ok(())) => {}
            Ok(Err(reasons)) => messages.extend(reasons),
        }
    }
    Ok(if messages.is_empty() {
        reply(StatusCode::OK, json!({"is_compatible": true}))
    } else {
        reply(
            StatusCode::OK,
            json!({"is_compatible": false, "messages": messages}),
        )
    })
}

#[utoipa::path(
    post,
    path = "/compatibility/subjects/{subject}/versions/{version}",
    tag = "registry",
    summary = "Whether a schema reads what one version wrote",
    params(("subject" = String, Path, description = "e.g. `dev.attest.AuditEvent` (record-name strategy)"), ("version" = String, Path, description = "A version number, `latest` or `-1`")),
    request_body(content = crate::http::openapi::SchemaCandidate, content_type = "application/vnd.schemaregistry.v1+json"),
    responses(
        (status = 200, description = "`{\"is_compatible\": bool, \"messages\": […]}`", body = Object, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 404, description = "40401 subject or 40402 version not found", body = crate::http::openapi::RegistryErrorBody, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 422, description = "42201 invalid schema or 42202 invalid version", body = crate::http::openapi::RegistryErrorBody, content_type = "application/vnd.schemaregistry.v1+json"),
    ),
)]
async fn compatibility(
    State(registry): State<Arc<Registry>>,
    Path((subject, version)): Path<(String, String)>,
    body: Result<Json<Candidate>, JsonRejection>,
) -> Result<Response, RegistryError> {
    let existing = find(&registry, &subject, &version)?;
    check(&[existing], &avro_candidate(body)?)
}

/// Against every version: the level is transitive.
#[utoipa::path(
    post,
    path = "/compatibility/subjects/{subject}/versions",
    tag = "registry",
    summary = "Whether a schema reads what every version wrote (the level is transitive)",
    params(("subject" = String, Path, description = "e.g. `dev.attest.AuditEvent` (record-name strategy)")),
    request_body(content = crate::http::openapi::SchemaCandidate, content_type = "application/vnd.schemaregistry.v1+json"),
    responses(
        (status = 200, description = "`{\"is_compatible\": bool, \"messages\": […]}`", body = Object, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 404, description = "40401 subject not found", body = crate::http::openapi::RegistryErrorBody, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 422, description = "42201 invalid schema", body = crate::http::openapi::RegistryErrorBody, content_type = "application/vnd.schemaregistry.v1+json"),
    ),
)]
async fn compatibility_all(
    State(registry): State<Arc<Registry>>,
    Path(subject): Path<String>,
    body: Result<Json<Candidate>, JsonRejection>,
) -> Result<Response, RegistryError> {
    let versions = registry
        .versions(&subject)
        .ok_or(RegistryError::SubjectNotFound)?;
    let existing: Vec<&SchemaVersion> = versions.iter().map(Arc::as_ref).collect();
    check(&existing, &avro_candidate(body)?)
}
