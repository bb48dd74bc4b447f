//! Sign-in for the console: `POST /login` exchanges an access key for a
//! session cookie, `POST /logout` ends it, and [`require_viewer`] stands in
//! front of every console route (pages, server functions, export), so no
//! console answer is ever given to a request without a viewer.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde::Deserialize;
use serde_json::json;
use tracing::{error, info, warn};

use crate::access::{session_cookie, SessionError, Sessions, Viewer, SYSTEM_TENANT};
use crate::event::{Category, Outcome, Resource};
use crate::ingest::{internal_event, now_ms, Ingest};
use crate::keys::AuthError;

/// How the console decides who is looking.
#[derive(Clone)]
pub enum ConsoleAuth {
    /// `console.require_login` off: everyone sees everything.
    Open,
    SignIn {
        sessions: Arc<Sessions>,
        ingest: Arc<Ingest>,
        refusals: Arc<RefusalBudget>,
    },
}

impl ConsoleAuth {
    pub fn sign_in(sessions: Arc<Sessions>, ingest: Arc<Ingest>) -> ConsoleAuth {
        ConsoleAuth::SignIn {
            sessions,
            ingest,
            refusals: Arc::new(RefusalBudget::default()),
        }
    }
}

/// Refused sign-ins recorded as audit events per minute, at most. Someone
/// trying keys in a loop must not be able to fill the audit store; past
/// the budget each refusal is still logged, and counted in the next
/// recorded one.
const RECORDED_REFUSALS_PER_MINUTE: u32 = 60;

#[derive(Default)]
pub struct RefusalBudget {
    /// Start of the current minute, refusals recorded in it, and those
    /// passed over since the last recorded one.
    window: std::sync::Mutex<Option<(std::time::Instant, u32, u64)>>,
}

impl RefusalBudget {
    /// `Some(passed over since the last record)` when this refusal may be
    /// recorded.
    fn take(&self) -> Option<u64> {
        let mut window = self.window.lock().ok()?;
        let now = std::time::Instant::now();
        let (start, used, skipped) = window.get_or_insert((now, 0, 0));
        if now.duration_since(*start) >= std::time::Duration::from_secs(60) {
            *start = now;
            *used = 0;
        }
        if *used < RECORDED_REFUSALS_PER_MINUTE {
            *used += 1;
            Some(std::mem::take(skipped))
        } else {
            *skipped += 1;
            None
        }
    }
}

/// Paths served to anyone: the sign-in page and what it needs to render.
fn is_public(path: &str) -> bool {
    path == "/login" || path.starts_with("/pkg/") || path == "/favicon.svg"
}

/// Puts the request's [`Viewer`] into its extensions, or answers for it:
/// `401` JSON for API calls, a redirect to the sign-in page for pages.
pub async fn require_viewer(
    State(auth): State<ConsoleAuth>,
    mut request: Request,
    next: Next,
) -> Response {
    let sessions = match &auth {
        ConsoleAuth::Open => {
            request.extensions_mut().insert(Viewer::unrestricted());
            return next.run(request).await;
        }
        ConsoleAuth::SignIn { sessions, .. } => sessions,
    };
    let path = request.uri().path().to_owned();
    if is_public(&path) {
        return next.run(request).await;
    }
    let cookie = request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(session_cookie)
        .map(str::to_owned);
    let outcome = match cookie {
        Some(value) => sessions.viewer(&value, now_ms()).await,
        None => Err(SessionError::Missing),
    };
    match outcome {
        Ok(viewer) => {
            request.extensions_mut().insert(viewer);
            next.run(request).await
        }
        Err(SessionError::Unavailable(error)) => {
            error!(%error, "cannot check a console session");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "5")],
                Json(json!({"error": "unavailable", "message": "console access cannot be checked right now; try again shortly"})),
            )
                .into_response()
        }
        Err(reason) => {
            if !matches!(reason, SessionError::Missing) {
                info!(%reason, path, "console session refused");
            }
            if path.starts_with("/api/") {
                (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, "Cookie realm=\"attest-console\"")],
                    Json(json!({"error": "unauthorized", "message": format!("{reason}: sign in at /login")})),
                )
                    .into_response()
            } else {
                let next_path = request
                    .uri()
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_owned();
                let mut to = format!(
                    "/login?next={}",
                    app::search_state::encode_component(&next_path)
                );
                if matches!(reason, SessionError::Expired | SessionError::Revoked) {
                    to.push_str("&error=expired");
                }
                let mut response = Redirect::to(&to).into_response();
                if !matches!(reason, SessionError::Missing) {
                    set_cookie(&mut response, &sessions.clear_cookie());
                }
                response
            }
        }
    }
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    next: String,
}

/// Only a path on this server: never `//host` or `https://…`, so the
/// sign-in page cannot be used to send someone elsewhere.
fn local_path(next: &str) -> &str {
    let safe = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(char::is_control);
    if safe && next != "/login" && !next.starts_with("/login?") {
        next
    } else {
        // The landing page after sign-in.
        "/dashboard"
    }
}

pub async fn login(
    State(auth): State<ConsoleAuth>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let ConsoleAuth::SignIn {
        sessions,
        ingest,
        refusals,
    } = auth
    else {
        return Redirect::to(local_path(&form.next)).into_response();
    };
    let next = local_path(&form.next).to_owned();
    let again = |error: &str| {
        Redirect::to(&format!(
            "/login?error={error}&next={}",
            app::search_state::encode_component(&next)
        ))
        .into_response()
    };
    let client = client_metadata(&headers);
    match sessions.sign_in(&form.key).await {
        Ok(viewer) => {
            if let Err(error) = record_session(
                &ingest,
                "console.sign_in",
                Outcome::Success,
                &viewer.name,
                &viewer.access_id,
                client,
            )
            .await
            {
                error!(%error, "cannot record a console sign-in; refusing it");
                return again("unavailable");
            }
            info!(access_id = %viewer.access_id, "console sign-in");
            let mut response = Redirect::to(&next).into_response();
            set_cookie(
                &mut response,
                &sessions.cookie(&sessions.issue(&viewer.access_id, now_ms())),
            );
            response
        }
        Err(AuthError::Unavailable(error)) => {
            error!(%error, "cannot check a console access key");
            again("unavailable")
        }
        Err(reason) => {
            // The presented text is never logged or recorded: it may be a
            // real key pasted into the wrong place.
            warn!(%reason, "console sign-in refused");
            let Some(passed_over) = refusals.take() else {
                return again("invalid");
            };
            let mut metadata = client;
            metadata.insert("reason".into(), reason.to_string());
            if passed_over > 0 {
                metadata.insert(
                    "refusals_not_recorded_before".into(),
                    passed_over.to_string(),
                );
            }
            if let Err(error) = record_session(
                &ingest,
                "console.sign_in",
                Outcome::Failure,
                "unknown",
                "unknown",
                metadata,
            )
            .await
            {
                error!(%error, "cannot record a refused console sign-in");
            }
            again("invalid")
        }
    }
}

pub async fn logout(
    State(auth): State<ConsoleAuth>,
    viewer: Option<axum::Extension<Viewer>>,
    headers: HeaderMap,
) -> Response {
    let ConsoleAuth::SignIn {
        sessions, ingest, ..
    } = auth
    else {
        return Redirect::to("/").into_response();
    };
    if let Some(axum::Extension(viewer)) = viewer {
        if let Err(error) = record_session(
            &ingest,
            "console.sign_out",
            Outcome::Success,
            &viewer.name,
            &viewer.access_id,
            client_metadata(&headers),
        )
        .await
        {
            // Signing out still happens: refusing it would leave a session
            // open that its owner wanted closed.
            error!(%error, "cannot record a console sign-out");
        }
    }
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(session_cookie);
    let ended = match cookie {
        Some(value) => sessions.sign_out(value, now_ms()).await,
        None => Ok(()),
    };
    let mut response = match ended {
        Ok(()) => Redirect::to("/login?signed_out=1").into_response(),
        Err(error) => {
            // The browser forgets the cookie either way; the answer says
            // that a copy of it may still work elsewhere until it expires.
            error!(%error, "cannot store a console sign-out");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "5")],
                Json(json!({
                    "error": "unavailable",
                    "message": "signed out in this browser, but the sign-out could not be \
                                stored, so a copy of this session may keep working on other \
                                servers until it expires; sign in and out again shortly"
                })),
            )
                .into_response()
        }
    };
    set_cookie(&mut response, &sessions.clear_cookie());
    response
}

/// A sign-in or sign-out, in Attest's own trail, about the access it used.
async fn record_session(
    ingest: &Ingest,
    action: &str,
    outcome: Outcome,
    actor: &str,
    access_id: &str,
    metadata: BTreeMap<String, String>,
) -> Result<(), crate::ingest::IngestError> {
    let resource = Resource {
        kind: "console_access".into(),
        id: access_id.to_owned(),
    };
    let event = internal_event(
        SYSTEM_TENANT,
        Category::Authentication,
        action,
        outcome,
        resource,
        actor,
        metadata,
    );
    ingest.record(event).await.map(|_| ())
}

/// What the audit event of a console action keeps about the browser.
fn client_metadata(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut metadata = BTreeMap::new();
    if let Some(agent) = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
    {
        metadata.insert("user_agent".into(), agent.chars().take(512).collect());
    }
    metadata
}

fn set_cookie(response: &mut Response, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(local_path("/search?q=a"), "/search?q=a");
        assert_eq!(local_path("/events/acme/e-1"), "/events/acme/e-1");
        for bad in [
            "",
            "//evil.example/",
            "/\\evil.example",
            "https://evil.example",
            "evil",
            "/login",
            "/login?next=/x",
            "/a\r\nSet-Cookie: x=1",
        ] {
            assert_eq!(local_path(bad), "/dashboard", "{bad:?}");
        }
    }

    #[test]
    fn refusals_past_the_budget_are_counted_not_recorded() {
        let budget = RefusalBudget::default();
        for _ in 0..RECORDED_REFUSALS_PER_MINUTE {
            assert_eq!(budget.take(), Some(0));
        }
        assert_eq!(budget.take(), None);
        assert_eq!(budget.take(), None);
        if let Ok(mut w) = budget.window.lock() {
            if let Some((start, _, _)) = w.as_mut() {
                *start -= std::time::Duration::from_secs(61);
            }
        }
        assert_eq!(budget.take(), Some(2), "the next minute reports the two");
        assert_eq!(budget.take(), Some(0));
    }

    #[test]
    fn the_sign_in_page_is_the_only_public_page() {
        assert!(is_public("/login"));
        assert!(is_public("/pkg/attest.css"));
        for private in [
            "/",
            "/search",
            "/api/search/page",
            "/api/v1/export",
            "/loginx",
        ] {
            assert!(!is_public(private), "{private}");
        }
    }
}
