//! The API's contract as an OpenAPI 3.1 document, built from the handlers'
//! `#[utoipa::path]` annotations and the request and response types
//! themselves, so that the document changes when the code does. Served at
//! `GET /api/v1/openapi.json` without sign-in (it holds no data), printed
//! by `attest openapi`, and rendered into docs/API.md by
//! scripts/api_doc.py (a test checks the committed copy is current).

use axum::response::IntoResponse;
use axum::Json;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::RefOr;
use utoipa::{Modify, OpenApi};

/// Every documented endpoint and the types their bodies are made of.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Attest API",
        description = "Ingest audit events, export what a console search finds, and read the Avro schemas of the events topics (a Confluent Schema Registry subset). Every ingest error names the event (`index`) and field (`field_path`) at fault; `429` and `503` carry `Retry-After`, and a retry with the same `event_id`s is stored once.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        super::post_event,
        super::post_batch,
        super::export::export,
        super::registry::subjects,
        super::registry::versions,
        super::registry::version,
        super::registry::version_schema,
        super::registry::lookup,
        super::registry::schema_by_id,
        super::registry::schema_text_by_id,
        super::registry::subjects_by_id,
        super::registry::versions_by_id,
        super::registry::schema_types,
        super::registry::global_config,
        super::registry::subject_config,
        super::registry::mode,
        super::registry::compatibility,
        super::registry::compatibility_all,
        super::integrity::keys,
        super::redactions::list,
        super::redactions::create,
        super::redactions::one,
        super::redactions::approve,
        super::redactions::execute,
        serve,
    ),
    components(schemas(
        crate::ingest::validate::IncomingEvent,
        crate::ingest::validate::FieldError,
        crate::ingest::Accepted,
        crate::ingest::BatchAccepted,
        crate::ingest::EventResult,
        super::ErrorBody,
        AvroRecords,
        MessageBody,
        RegistryErrorBody,
        SubjectVersion,
        SchemaCandidate,
        crate::integrity::KeyRing,
        crate::integrity::keys::PublicKey,
        crate::redaction::NewRequest,
        crate::redaction::RequestView,
        crate::redaction::State,
        crate::redaction::Execution,
        super::redactions::RedactionRequestList,
    )),
    modifiers(&Security),
    tags(
        (name = "ingest", description = "Send audit events (JSON, NDJSON or Confluent-framed Avro)"),
        (name = "export", description = "Download search results (console session)"),
        (name = "registry", description = "The Avro schemas of the events topics, read-only, in Confluent Schema Registry's REST shape and error codes"),
        (name = "integrity", description = "The public keys that sign the integrity digests (docs/INTEGRITY.md)"),
        (name = "redaction", description = "Governed redaction (README \"Redaction\", docs/INTEGRITY.md section 14): an admin requests the erasure of fields of a tenant's events, a second admin approves it, then Attest executes it. Every route needs the console session of an admin (`attest access grant --role admin`) who sees the tenant"),
        (name = "meta", description = "This document"),
    ),
)]
pub struct ApiDoc;

/// The document as JSON, pretty-printed (what is served and committed).
pub fn document() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        // Serializing a document of plain strings and maps cannot fail;
        // if it ever did, an empty object is still valid JSON.
        .unwrap_or_else(|_| "{}".to_owned())
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)),
)]
pub async fn serve() -> impl IntoResponse {
    Json(ApiDoc::openapi())
}

/// How callers prove who they are: an ingest API key (`attest keys
/// create`) as a bearer token, or the console's session cookie.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An ingest API key from `attest keys create`, as `Authorization: Bearer <key>`. Required unless the server runs with `ingest.require_api_key = false`; the key decides the tenant and source service.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "console_session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "attest_session",
                "The console session `POST /login` sets.",
            ))),
        );
    }
}

/// `occurred_at`: what `validate::timestamp` accepts.
pub fn timestamp_schema() -> RefOr<utoipa::openapi::schema::Schema> {
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                    utoipa::openapi::KnownFormat::DateTime,
                ))),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                    utoipa::openapi::KnownFormat::Int64,
                )))
                .description(Some("epoch milliseconds")),
        )
        .description(Some(
            "When it happened: RFC 3339 text or integer epoch milliseconds; not before 2000, at most a day ahead",
        ))
        .into()
}

/// Confluent-framed Avro records, one after another: each is the magic
/// byte 0, the 4-byte big-endian schema id of a registered version, then
/// the record in Avro's binary encoding.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)] // describes a body read as bytes
pub struct AvroRecords(Vec<u8>);

/// The export's error body (the console's server functions share it).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // describes a body built with `json!`
pub struct MessageBody {
    /// `bad_request`, `bad_query`, `limit_exceeded`, `forbidden`,
    /// `unauthorized`, `unavailable`.
    error: String,
    message: String,
    /// For `bad_query`: where in the query the problem is.
    position: Option<u32>,
    /// For `bad_query`: how to fix it.
    hint: Option<String>,
}

/// Confluent's error body.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // describes a body built with `json!`
pub struct RegistryErrorBody {
    /// 40401 subject, 40402 version, 40403 schema not found; 42201 invalid
    /// schema; 42202 invalid version; 42205 read-only; 404 unknown path.
    error_code: u32,
    message: String,
}

/// A registered version of a subject.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // describes a body built with `json!`
pub struct SubjectVersion {
    subject: String,
    version: u32,
    id: u32,
    /// The Avro schema as JSON text.
    schema: String,
}

/// A schema to look up or check.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // describes a body read by the registry handlers
pub struct SchemaCandidate {
    /// The Avro schema as JSON text.
    schema: String,
    /// `AVRO` (the default) is the only type served.
    #[schema(rename = "schemaType")]
    schema_type: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_with_every_ingest_status() {
        let doc: serde_json::Value = serde_json::from_str(&document()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        for path in ["/api/v1/events", "/api/v1/events/batch"] {
            let responses = &doc["paths"][path]["post"]["responses"];
            for status in ["202", "400", "401", "413", "429", "503"] {
                assert!(responses[status].is_object(), "{path} lacks {status}");
            }
            for status in ["429", "503"] {
                assert!(
                    responses[status]["headers"]["Retry-After"].is_object(),
                    "{path} {status} lacks Retry-After"
                );
            }
        }
        let event = &doc["components"]["schemas"]["Event"];
        assert_eq!(event["additionalProperties"], serde_json::json!(false));
        assert!(event["required"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("occurred_at")));
        assert!(doc["paths"]["/subjects/{subject}/versions"]["get"].is_object());
        assert!(doc["paths"]["/api/v1/export"]["get"].is_object());
    }

    #[test]
    fn the_redaction_routes_are_documented_for_admin_sessions() {
        let doc: serde_json::Value = serde_json::from_str(&document()).unwrap();
        for (path, method, ok) in [
            ("/api/v1/redactions", "get", "200"),
            ("/api/v1/redactions", "post", "201"),
            ("/api/v1/redactions/{id}", "get", "200"),
            ("/api/v1/redactions/{id}/approve", "post", "200"),
            ("/api/v1/redactions/{id}/execute", "post", "200"),
        ] {
            let op = &doc["paths"][path][method];
            assert_eq!(
                op["tags"],
                serde_json::json!(["redaction"]),
                "{method} {path}"
            );
            assert_eq!(
                op["security"],
                serde_json::json!([{ "console_session": [] }]),
                "{method} {path}"
            );
            for status in [ok, "401", "403", "503"] {
                assert!(
                    op["responses"][status].is_object(),
                    "{method} {path} lacks {status}"
                );
            }
        }
        let tag = doc["tags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "redaction")
            .expect("the redaction tag");
        assert!(tag["description"].as_str().unwrap().contains("admin"));
        let request = &doc["components"]["schemas"]["RedactionRequestNew"];
        for field in ["tenant_id", "fields", "reason"] {
            assert!(
                request["required"]
                    .as_array()
                    .unwrap()
                    .contains(&serde_json::json!(field)),
                "{field}"
            );
        }
        let view = &doc["components"]["schemas"]["RedactionRequest"]["properties"];
        assert!(view["state"].is_object() && view["requested_by_id"].is_null());
    }
}
