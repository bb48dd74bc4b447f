//! Governed redaction for admins (README "Redaction"): console sessions
//! with the admin role, as the pipeline and dead-letter pages.
//!
//! - `GET  /api/v1/redactions?state=pending|approved|executed`: the requests
//!   of the tenants the admin sees;
//! - `POST /api/v1/redactions`: a new request (JSON: `tenant_id`,
//!   `event_ids` or `actor_id`, `fields`, `reason`);
//! - `GET  /api/v1/redactions/{id}`: one request;
//! - `POST /api/v1/redactions/{id}/approve`: approval by an admin other than
//!   the requester, then execution;
//! - `POST /api/v1/redactions/{id}/execute`: runs an approved request again
//!   (finishes one a failure stopped).
//!
//! Errors go through the one table in `http::error`; another tenant's
//! request is answered like a missing one.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use app::redactions_model::{ApprovalReport, PendingRedaction, RedactionSource};
use app::search_model::SearchError;

use super::pipeline::Admin;
use super::ApiError;
use crate::access::{require_admin, Viewer};
use crate::ingest::validate::FieldError;
use crate::redaction::{
    Execution, NewRequest, RedactionError, Redactions, RequestView, State as RequestState, Who,
};

pub fn router(redactions: Arc<Redactions>) -> Router {
    Router::new()
        .route("/api/v1/redactions", get(list).post(create))
        .route("/api/v1/redactions/{id}", get(one))
        .route("/api/v1/redactions/{id}/approve", post(approve))
        .route("/api/v1/redactions/{id}/execute", post(execute))
        .with_state(redactions)
}

/// `GET /api/v1/redactions`'s body.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // describes a body built with `json!`
pub struct RedactionRequestList {
    requests: Vec<RequestView>,
}

fn who(viewer: &Viewer) -> Who {
    Who {
        name: viewer.name.clone(),
        id: viewer.access_id.clone(),
    }
}

fn bad(field: &str, problem: impl Into<String>) -> ApiError {
    ApiError::BadField(FieldError {
        index: 0,
        field_path: field.to_owned(),
        problem: problem.into(),
    })
}

/// The redaction requests of the tenants the admin sees, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/redactions",
    tag = "redaction",
    operation_id = "redactions_list",
    params(("state" = Option<String>, Query, description = "Only `pending`, `approved` or `executed` requests")),
    responses(
        (status = 200, description = "The requests", body = RedactionRequestList),
        (status = 400, description = "A field is invalid; `errors[0].field_path` names it", body = crate::http::ErrorBody),
        (status = 401, description = "No console session: sign in at `POST /login`", body = crate::http::openapi::MessageBody),
        (status = 403, description = "The session is not an admin's", body = crate::http::ErrorBody),
        (status = 503, description = "ClickHouse, Kafka or the integrity keys are unavailable, or the step cannot be recorded in the tenant's trail (so it was not done); an approved request finishes when executed again", body = crate::http::ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    ),
    security(("console_session" = [])),
)]
pub async fn list(
    State(redactions): State<Arc<Redactions>>,
    Admin(viewer): Admin,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let wanted = match params.get("state").map(String::as_str) {
        None | Some("") => None,
        Some(s) => Some(
            RequestState::parse(s)
                .ok_or_else(|| bad("state", "must be pending, approved or executed"))?,
        ),
    };
    let requests: Vec<RequestView> = redactions
        .list()
        .await?
        .into_iter()
        .filter(|r| viewer.may_see(&r.tenant_id))
        .filter(|r| wanted.is_none_or(|w| r.state == w))
        .collect();
    Ok(Json(json!({ "requests": requests })))
}

/// A new request, pending until an admin other than the requester
/// approves it. The events are fixed now and must each be sealed and
/// verify.
#[utoipa::path(
    post,
    path = "/api/v1/redactions",
    tag = "redaction",
    operation_id = "redactions_create",
    request_body = crate::redaction::NewRequest,
    responses(
        (status = 201, description = "The request, pending", body = crate::redaction::RequestView),
        (status = 400, description = "A field is invalid; `errors[0].field_path` names it", body = crate::http::ErrorBody),
        (status = 409, description = "An event is not sealed or committed yet (retry shortly), or does not verify against its seal", body = crate::http::ErrorBody),
        (status = 401, description = "No console session: sign in at `POST /login`", body = crate::http::openapi::MessageBody),
        (status = 403, description = "The session is not an admin's", body = crate::http::ErrorBody),
        (status = 503, description = "ClickHouse, Kafka or the integrity keys are unavailable, or the step cannot be recorded in the tenant's trail (so it was not done); an approved request finishes when executed again", body = crate::http::ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    ),
    security(("console_session" = [])),
)]
pub async fn create(
    State(redactions): State<Arc<Redactions>>,
    Admin(viewer): Admin,
    body: Result<Json<NewRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<RequestView>), ApiError> {
    let Json(new) = body.map_err(|rejection| bad("body", rejection.body_text()))?;
    if !viewer.may_see(new.tenant_id.trim()) {
        return Err(bad(
            "tenant_id",
            "your console access does not include this tenant",
        ));
    }
    let made = redactions.request(&who(&viewer), new).await?;
    Ok((StatusCode::CREATED, Json(made)))
}

/// The request, if the admin may see its tenant.
async fn visible(
    redactions: &Redactions,
    viewer: &Viewer,
    id: &str,
) -> Result<RequestView, ApiError> {
    let request = redactions.get(id).await?;
    if viewer.may_see(&request.tenant_id) {
        Ok(request)
    } else {
        Err(RedactionError::NotFound(id.to_owned()).into())
    }
}

/// One request.
#[utoipa::path(
    get,
    path = "/api/v1/redactions/{id}",
    tag = "redaction",
    operation_id = "redactions_get",
    params(("id" = String, Path, description = "The request's id")),
    responses(
        (status = 200, description = "The request", body = crate::redaction::RequestView),
        (status = 404, description = "No request with this id among the tenants the admin sees", body = crate::http::ErrorBody),
        (status = 401, description = "No console session: sign in at `POST /login`", body = crate::http::openapi::MessageBody),
        (status = 403, description = "The session is not an admin's", body = crate::http::ErrorBody),
        (status = 503, description = "ClickHouse, Kafka or the integrity keys are unavailable, or the step cannot be recorded in the tenant's trail (so it was not done); an approved request finishes when executed again", body = crate::http::ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    ),
    security(("console_session" = [])),
)]
pub async fn one(
    State(redactions): State<Arc<Redactions>>,
    Admin(viewer): Admin,
    Path(id): Path<String>,
) -> Result<Json<RequestView>, ApiError> {
    visible(&redactions, &viewer, &id).await.map(Json)
}

/// Approves a pending request and executes it. Two admins approving at
/// once: both runs execute on the earliest approval and write the same
/// records (docs/INTEGRITY.md section 14).
#[utoipa::path(
    post,
    path = "/api/v1/redactions/{id}/approve",
    tag = "redaction",
    operation_id = "redactions_approve",
    params(("id" = String, Path, description = "The request's id")),
    responses(
        (status = 200, description = "The request, executed, with what the run did", body = crate::redaction::Execution),
        (status = 404, description = "No request with this id among the tenants the admin sees", body = crate::http::ErrorBody),
        (status = 409, description = "The approver made the request (a second admin must approve), or it is already approved or executed", body = crate::http::ErrorBody),
        (status = 401, description = "No console session: sign in at `POST /login`", body = crate::http::openapi::MessageBody),
        (status = 403, description = "The session is not an admin's", body = crate::http::ErrorBody),
        (status = 503, description = "ClickHouse, Kafka or the integrity keys are unavailable, or the step cannot be recorded in the tenant's trail (so it was not done); an approved request finishes when executed again", body = crate::http::ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    ),
    security(("console_session" = [])),
)]
pub async fn approve(
    State(redactions): State<Arc<Redactions>>,
    Admin(viewer): Admin,
    Path(id): Path<String>,
) -> Result<Json<Execution>, ApiError> {
    visible(&redactions, &viewer, &id).await?;
    Ok(Json(redactions.approve(&id, &who(&viewer)).await?))
}

/// Executes an approved request, or finishes one a failure stopped; an
/// executed request is answered as it is.
#[utoipa::path(
    post,
    path = "/api/v1/redactions/{id}/execute",
    tag = "redaction",
    operation_id = "redactions_execute",
    params(("id" = String, Path, description = "The request's id")),
    responses(
        (status = 200, description = "The request, executed, with what the run did", body = crate::redaction::Execution),
        (status = 404, description = "No request with this id among the tenants the admin sees", body = crate::http::ErrorBody),
        (status = 409, description = "The request is not approved yet", body = crate::http::ErrorBody),
        (status = 401, description = "No console session: sign in at `POST /login`", body = crate::http::openapi::MessageBody),
        (status = 403, description = "The session is not an admin's", body = crate::http::ErrorBody),
        (status = 503, description = "ClickHouse, Kafka or the integrity keys are unavailable, or the step cannot be recorded in the tenant's trail (so it was not done); an approved request finishes when executed again", body = crate::http::ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    ),
    security(("console_session" = [])),
)]
pub async fn execute(
    State(redactions): State<Arc<Redactions>>,
    Admin(viewer): Admin,
    Path(id): Path<String>,
) -> Result<Json<Execution>, ApiError> {
    visible(&redactions, &viewer, &id).await?;
    Ok(Json(redactions.execute(&id, &who(&viewer)).await?))
}

/// The redactions page's source for one console request's viewer: the
/// same service and rules as the routes above, answered in the page's
/// error terms (refusals and bad input as they are; failures as
/// "unavailable", the detail to the log).
pub struct ScopedRedactions {
    pub redactions: Arc<Redactions>,
    pub viewer: Viewer,
}

fn for_page(error: RedactionError) -> SearchError {
    match error {
        RedactionError::Invalid { .. }
        | RedactionError::NotFound(_)
        | RedactionError::Refused(_)
        | RedactionError::NotSealed(_)
        | RedactionError::Unverified(_) => SearchError::BadRequest(error.to_string()),
        other => {
            tracing::error!(error = %other, "redaction request from the console failed");
            SearchError::Unavailable
        }
    }
}

#[async_trait::async_trait]
impl RedactionSource for ScopedRedactions {
    fn admitted(&self) -> Result<(), SearchError> {
        require_admin(&self.viewer).map_err(|not| SearchError::Forbidden(not.to_string()))
    }

    async fn pending(&self) -> Result<Vec<PendingRedaction>, SearchError> {
        self.admitted()?;
        let me = who(&self.viewer);
        Ok(self
            .redactions
            .list()
            .await
            .map_err(for_page)?
            .into_iter()
            .filter(|r| r.state == RequestState::Pending && self.viewer.may_see(&r.tenant_id))
            .map(|r| PendingRedaction {
                yours: me.requested(&r),
                request_id: r.request_id,
                tenant_id: r.tenant_id,
                subject_actor_id: r.subject_actor_id,
                events: r.event_ids.len(),
                fields: r.fields,
                reason: r.reason,
                requested_by: r.requested_by,
                requested_at: r.requested_at,
            })
            .collect())
    }

    async fn approve(&self, request_id: String) -> Result<ApprovalReport, SearchError> {
        self.admitted()?;
        let request = self.redactions.get(&request_id).await.map_err(for_page)?;
        if !self.viewer.may_see(&request.tenant_id) {
            return Err(for_page(RedactionError::NotFound(request_id)));
        }
        let done = self
            .redactions
            .approve(&request_id, &who(&self.viewer))
            .await
            .map_err(for_page)?;
        Ok(ApprovalReport {
            request_id,
            redacted: done.redacted,
            missing: done.missing.len(),
        })
    }
}
