//! Every error the HTTP API returns, mapped to a status and one JSON shape:
//! `{"error": code, "message": text, "errors": [{index, field_path, problem}]}`.
//! Internal detail is logged where it happens, never sent to the client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::ingest::validate::FieldError;
use crate::ingest::{EventResult, IngestError};

/// How long a client should wait after the broker did not acknowledge.
const BROKER_RETRY_AFTER_SECS: u32 = 5;
/// How long a console search waits before asking a store that was down.
const SEARCH_RETRY_AFTER_SECS: u32 = 5;

/// The body of every error answer of the ingest API (the one shape the
/// OpenAPI document describes, because it is this type).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable code: `invalid_event`, `unauthorized`, `forbidden`,
    /// `unsupported_media_type`, `payload_too_large`, `too_many_events`,
    /// `busy`, `unavailable`, `not_found`, `request_timeout`, `internal`,
    /// and for the admin endpoints `bad_request` and `conflict`.
    pub error: &'static str,
    /// What went wrong and what to do about it, for a person.
    pub message: String,
    /// Every problem found, each naming its event (`index`) and field
    /// (`field_path`); empty when the request as a whole is refused.
    pub errors: Vec<FieldError>,
    /// A batch answered `503` after part of it was stored: the events that
    /// were (retry the batch with the same `event_id`s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored: Option<Vec<EventResult>>,
}

#[derive(Debug)]
pub enum ApiError {
    Invalid(Vec<FieldError>),
    Unauthorized(String),
    Forbidden(Vec<FieldError>),
    UnsupportedMediaType {
        got: String,
        expected: &'static str,
    },
    TooLarge {
        limit: usize,
    },
    TooManyEvents {
        count: usize,
        limit: usize,
    },
    /// Within Attest's limits, but above the broker's message size limit.
    TooLargeForBroker,
    /// Part of a batch is stored, part is not; the body says which.
    NotAllStored {
        stored: Vec<EventResult>,
        not_stored: Vec<FieldError>,
    },
    Unavailable {
        what: &'static str,
        retry_after_secs: u32,
    },
    NotFound(String),
    /// An admin request with a bad field (the error names it).
    BadField(FieldError),
    /// An admin request that the state of what it acts on refuses (a
    /// redaction approved by its own requester, one not approved yet).
    Conflict(String),
    /// A console page or stream for admins only, asked for by another
    /// viewer; the message says how to get the role.
    AdminOnly(String),
    /// A console search refused before it ran (the live tail's stream):
    /// the query or a parameter, a limit, a tenant not visible, or the
    /// store down.
    Search(app::store::StoreError),
    /// Too many events in flight; the client should retry shortly.
    Busy,
    /// The body did not arrive in time.
    RequestTimeout {
        after_secs: u64,
    },
    Internal,
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> ApiError {
        match e {
            IngestError::Invalid(errors) => ApiError::Invalid(errors),
            IngestError::Forbidden(errors) => ApiError::Forbidden(errors),
            IngestError::Encode(_) | IngestError::Internal(_) => ApiError::Internal,
            IngestError::Registry(_) => ApiError::Unavailable {
                what: "the schema registry cannot confirm the schema's id; nothing was stored, retry later",
                retry_after_secs: BROKER_RETRY_AFTER_SECS,
            },
            IngestError::Spool(_) => ApiError::Unavailable {
                what: "the event broker is unavailable and the local spool cannot take more; nothing was stored, retry later",
                retry_after_secs: BROKER_RETRY_AFTER_SECS,
            },
            IngestError::NotAllStored { stored, not_stored } => {
                ApiError::NotAllStored { stored, not_stored }
            }
            IngestError::Refused(error) if error.is_too_large() => ApiError::TooLargeForBroker,
            IngestError::Refused(_) => ApiError::Internal,
            IngestError::Unavailable(_) => ApiError::Unavailable {
                what:
                    "the event broker did not acknowledge the event; it was not stored, retry later",
                retry_after_secs: BROKER_RETRY_AFTER_SECS,
            },
        }
    }
}

impl From<crate::access::AdminRefusal> for ApiError {
    fn from(refusal: crate::access::AdminRefusal) -> ApiError {
        use crate::access::AdminRefusal;
        match refusal {
            AdminRefusal::NotAdmin(not) => ApiError::AdminOnly(not.to_string()),
            AdminRefusal::Unrecorded(error) => {
                tracing::error!(%error, "cannot record an admin action; refusing it");
                ApiError::Unavailable {
                    what: "the admin action cannot be recorded in Attest's trail right now, so it was not done; retry shortly",
                    retry_after_secs: BROKER_RETRY_AFTER_SECS,
                }
            }
        }
    }
}

impl From<crate::redaction::RedactionError> for ApiError {
    fn from(e: crate::redaction::RedactionError) -> ApiError {
        use crate::redaction::RedactionError;
        match e {
            RedactionError::Invalid { field, problem } => ApiError::BadField(FieldError {
                index: 0,
                field_path: field.to_owned(),
                problem,
            }),
            RedactionError::NotFound(id) => {
                ApiError::NotFound(format!("no redaction request with id {id:?}"))
            }
            RedactionError::Refused(why)
            | RedactionError::NotSealed(why)
            | RedactionError::Unverified(why) => ApiError::Conflict(why),
            RedactionError::Record(error) => {
                tracing::error!(%error, "cannot record a redaction step; refusing it");
                ApiError::Unavailable {
                    what: "the redaction step cannot be recorded in the tenant's trail right now, so it was not done; retry shortly",
                    retry_after_secs: BROKER_RETRY_AFTER_SECS,
                }
            }
            RedactionError::Store(error) => {
                tracing::error!(%error, "a redaction step failed in ClickHouse");
                ApiError::Unavailable {
                    what: "ClickHouse did not complete the redaction step; an approved request finishes when executed again",
                    retry_after_secs: SEARCH_RETRY_AFTER_SECS,
                }
            }
            RedactionError::Kafka(error) => {
                tracing::error!(%error, "cannot read the writers' committed offsets for a redaction");
                ApiError::Unavailable {
                    what: "Kafka cannot say whether the events' offsets are committed; nothing was changed, retry shortly",
                    retry_after_secs: BROKER_RETRY_AFTER_SECS,
                }
            }
            RedactionError::Keys(error) => {
                tracing::error!(%error, "cannot read the integrity keys for a redaction");
                ApiError::Unavailable {
                    what: "the integrity signing key cannot be read (integrity.key_dir)",
                    retry_after_secs: SEARCH_RETRY_AFTER_SECS,
                }
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = match &self {
            ApiError::Unavailable {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            ApiError::NotAllStored { .. } => Some(BROKER_RETRY_AFTER_SECS),
            ApiError::Busy => Some(1),
            ApiError::Search(app::store::StoreError::Unavailable(_)) => {
                Some(SEARCH_RETRY_AFTER_SECS)
            }
            _ => None,
        };
        // What a partly stored batch adds to the common shape.
        let mut stored_part: Option<Vec<EventResult>> = None;
        let (status, code, message, errors) = match self {
            ApiError::Invalid(errors) => (
                StatusCode::BAD_REQUEST,
                "invalid_event",
                format!(
                    "{} problem(s) with the request; nothing was stored",
                    errors.len()
                ),
                errors,
            ),
            ApiError::Unauthorized(why) => (StatusCode::UNAUTHORIZED, "unauthorized", why, vec![]),
            ApiError::Forbidden(errors) => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "the API key may not send this; nothing was stored".to_owned(),
                errors,
            ),
            ApiError::UnsupportedMediaType { got, expected } => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("Content-Type {got:?} is not supported; send {expected}"),
                vec![],
            ),
            ApiError::TooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("request body is larger than {limit} bytes"),
                vec![],
            ),
            ApiError::TooManyEvents { count, limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_many_events",
                format!("the batch holds {count} events; the limit is {limit} per request"),
                vec![],
            ),
            ApiError::TooLargeForBroker => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the event is larger than the event broker accepts (its message.max.bytes); \
                 nothing was stored; send a smaller event"
                    .to_owned(),
                vec![],
            ),
            ApiError::NotAllStored { stored, not_stored } => {
                let message = format!(
                    "{} event(s) were stored and {} were not; retry the batch with the same \
                     event_ids (duplicates are removed)",
                    stored.len(),
                    not_stored.len()
                );
                stored_part = Some(stored);
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    message,
                    not_stored,
                )
            }
            ApiError::Unavailable { what, .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                what.to_owned(),
                vec![],
            ),
            ApiError::NotFound(what) => (StatusCode::NOT_FOUND, "not_found", what, vec![]),
            ApiError::BadField(error) => (
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("`{}`: {}", error.field_path, error.problem),
                vec![error],
            ),
            ApiError::Conflict(why) => (StatusCode::CONFLICT, "conflict", why, vec![]),
            ApiError::AdminOnly(why) => (StatusCode::FORBIDDEN, "forbidden", why, vec![]),
            ApiError::Search(error) => {
                use app::store::StoreError;
                let (status, code) = match &error {
                    StoreError::BadQuery(_) => (StatusCode::BAD_REQUEST, "bad_query"),
                    StoreError::Invalid(_) => (StatusCode::BAD_REQUEST, "bad_request"),
                    StoreError::Limit(_) => (StatusCode::UNPROCESSABLE_ENTITY, "limit_exceeded"),
                    StoreError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
                    StoreError::Unavailable(_) => {
                        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
                    }
                };
                // `Unavailable`'s detail is for logs; its text says only that.
                (status, code, error.to_string(), vec![])
            }
            ApiError::RequestTimeout { after_secs } => (
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!("the request body did not arrive within {after_secs} s; nothing was stored"),
                vec![],
            ),
            ApiError::Busy => (
                StatusCode::TOO_MANY_REQUESTS,
                "busy",
                "Attest has as many events in flight as it takes; nothing was stored, retry after the Retry-After delay".to_owned(),
                vec![],
            ),
            ApiError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error; nothing was stored".to_owned(),
                vec![],
            ),
        };
        let challenge = status == StatusCode::UNAUTHORIZED;
        let body = ErrorBody {
            error: code,
            message,
            errors,
            stored: stored_part,
        };
        let mut response = (status, Json(body)).into_response();
        if challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"attest\""),
            );
        }
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_carries_its_retry_after() {
        let response = ApiError::Unavailable {
            what: "broker down",
            retry_after_secs: 7,
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
        let response = ApiError::NotFound("x".into()).into_response();
        assert!(response.headers().get(header::RETRY_AFTER).is_none());
        let response = ApiError::AdminOnly("admins only".into()).into_response();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let response = ApiError::Busy.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
