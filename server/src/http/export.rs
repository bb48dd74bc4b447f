//! `GET /api/v1/export?format=csv|ndjson&q=…&tenant=…&range=…&from=…&to=…`:
//! the console's current search as a download, streamed from ClickHouse.
//! The parameters are the Search page's own (`docs/SEARCH.md`), so its
//! export buttons pass their URL on as is. With `proofs=true` the download
//! is a bundle that verifies offline (docs/INTEGRITY.md, section 10).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use app::search_model::{SearchQuery, SEARCH_PAGE_ROWS};
use app::search_state::SearchParams;
use app::store::StoreError;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::json;
use tracing::{error, info, warn};

use app::export_progress::{board::ExportBoard, board_key, valid_token, RowCounter};

use crate::access::{Scope, Viewer};
use crate::event::{Category, Outcome, Resource};
use crate::ingest::{internal_event, Ingest};
use crate::integrity::export_bundle::{write_bundle, BundleMeta, Signer};
use crate::integrity::keys::SigningKey;
use crate::integrity::proof::ExportQuery;
use crate::integrity::KeyRing;
use crate::store::{ExportFormat, ExportStream, Store};

#[derive(Clone)]
struct ExportState {
    store: Store,
    board: Arc<ExportBoard>,
    /// Where exports are recorded as audit events; `None` when the console
    /// runs without sign-in and there is no one to attribute them to.
    recorder: Option<Arc<Ingest>>,
    proofs: Arc<ProofsSetup>,
}

/// What an export with proofs needs besides the store.
pub struct ProofsSetup {
    /// `integrity.key_dir`: the published keys, and the current key that
    /// signs each bundle's manifest.
    pub key_dir: PathBuf,
    /// `kafka.topic_prefix`: where each row's digest chain is.
    pub topic_prefix: String,
}

pub fn export_router(
    store: Store,
    board: Arc<ExportBoard>,
    recorder: Option<Arc<Ingest>>,
    proofs: ProofsSetup,
) -> Router {
    Router::new()
        .route("/api/v1/export", get(export))
        .with_state(ExportState {
            store,
            board,
            recorder,
            proofs: Arc::new(proofs),
        })
}

/// Download the events a console search finds.
///
/// For a signed-in console session (the `attest_session` cookie that
/// `POST /login` sets); the viewer's tenants bound what it returns, and
/// each export is recorded as a `data.export` audit event first (an export
/// that cannot be recorded is refused with 503).
#[utoipa::path(
    get,
    path = "/api/v1/export",
    tag = "export",
    operation_id = "export",
    params(
        ("format" = Option<String>, Query, description = "`csv` (default) or `ndjson`"),
        ("q" = Option<String>, Query, description = "The search, in the console's query language (docs/SEARCH.md)"),
        ("tenant" = Option<String>, Query, description = "Only this tenant"),
        ("range" = Option<String>, Query, description = "A relative time range such as `24h` or `7d`"),
        ("from" = Option<String>, Query, description = "Start (RFC 3339), with `to`, instead of `range`"),
        ("to" = Option<String>, Query, description = "End (RFC 3339)"),
        ("sort" = Option<String>, Query, description = "The column the rows are ordered by, as the console's results: `time` (default), `tenant`, `category`, `action`, `outcome`, `actor`, `actor_type`, `ip`, `user_agent`, `resource`, `source`, `request_id` or `event_id`; ties newest first, then by identity. Any other value is a 400 naming `sort`"),
        ("dir" = Option<String>, Query, description = "`asc` or `desc`; absent: newest first for `time`, `asc` for the others"),
        ("progress" = Option<String>, Query, description = "A token under which the console follows the download's progress"),
        ("proofs" = Option<bool>, Query, description = "`true`: download a ZIP bundle that verifies offline (`attest verify FILE`): the rows exactly as the plain export of `format` gives them (`events.csv` or `events.ndjson`; the manifest's `events_format` says which), each sealed row's inclusion proof, the digests and keys they need, and a manifest signed with the current integrity key (docs/INTEGRITY.md, section 10). In CSV a text cell starting with `'` had one `'` added against spreadsheet formulas: a verifier removes it (section 10)."),
    ),
    responses(
        (status = 200, description = "The rows, streamed; with `proofs=true`, the bundle", content(
            (String = "text/csv"),
            (String = "application/x-ndjson"),
            (String = "application/zip"),
        )),
        (status = 400, description = "A parameter is invalid; the message names it", body = crate::http::openapi::MessageBody),
        (status = 401, description = "No console session: sign in at `POST /login`", body = crate::http::openapi::MessageBody),
        (status = 403, description = "The viewer may not see that tenant", body = crate::http::openapi::MessageBody),
        (status = 422, description = "The search would read more than the store allows", body = crate::http::openapi::MessageBody),
        (status = 503, description = "ClickHouse is unavailable, the export cannot be recorded, or (with proofs) the integrity keys cannot be read", body = crate::http::openapi::MessageBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    ),
    security(("console_session" = [])),
)]
async fn export(
    State(ExportState {
        store,
        board,
        recorder,
        proofs,
    }): State<ExportState>,
    viewer: Option<Extension<Viewer>>,
    params: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    // The sign-in layer always sets a viewer; without one, nothing.
    let viewer = viewer.map_or_else(Viewer::nobody, |Extension(v)| v);
    let Query(params) = match params {
        Ok(params) => params,
        Err(rejection) => return bad_request(&rejection.body_text()),
    };
    // The page's name for this download, if it follows its progress; kept
    // under the viewer's access id, so only they can read it back.
    let token = params
        .get("progress")
        .filter(|t| valid_token(t))
        .map(|t| board_key(&viewer.access_id, t));
    let response = export_response(
        store,
        viewer,
        recorder,
        &board,
        token.as_deref(),
        &params,
        &proofs,
    )
    .await;
    if let (Some(token), false) = (&token, response.status().is_success()) {
        board.refuse(token, refusal_text(response.status()));
    }
    response
}

async fn export_response(
    store: Store,
    viewer: Viewer,
    recorder: Option<Arc<Ingest>>,
    board: &Arc<ExportBoard>,
    token: Option<&str>,
    params: &HashMap<String, String>,
    proofs: &ProofsSetup,
) -> Response {
    let format_param = params.get("format").map_or("csv", String::as_str);
    let Some(format) = ExportFormat::from_param(format_param) else {
        return bad_request("format must be csv or ndjson");
    };
    let with_proofs = match params.get("proofs").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return bad_request("proofs must be true or false"),
    };
    // The keys are read before anything starts: a bundle that could not be
    // signed at its end must not begin.
    let signer = if with_proofs {
        match load_signer(proofs) {
            Ok(signer) => Some(signer),
            Err(error) => {
                error!(%error, "cannot sign an export with proofs");
                return refused(StoreError::Unavailable(error.to_string()));
            }
        }
    } else {
        None
    };
    let search = SearchParams::from_lookup(|key| params.get(key).cloned());
    let mut query = match SearchQuery::from_params(&search, SEARCH_PAGE_ROWS) {
        Ok(query) => query,
        Err(error) => return bad_request(&error.to_string()),
    };
    let scope = match viewer.scope(query.tenant.as_deref()) {
        Ok(scope) => scope,
        Err(error) => return refused(error),
    };
    query.tenant = scope.tenant.clone();
    query.within = scope.within.clone();
    let now_ms = crate::ingest::now_ms();
    match store.export(&query, format, now_ms).await {
        Ok(stream) => {
            if let Some(ingest) = &recorder {
                // An export that cannot be recorded does not happen.
                let what = Exported {
                    format,
                    rows: stream.rows,
                    proofs: with_proofs,
                };
                if let Err(error) =
                    record_export(ingest, &viewer, &scope, &query, &search, what).await
                {
                    error!(%error, "cannot record an export; refusing it");
                    return refused(StoreError::Unavailable(error.to_string()));
                }
            }
            info!(rows = stream.rows, tenant = ?query.tenant, format = format.extension(), "export started");
            let tracker =
                token.map(|token| Tracker::new(board.clone(), token, format, stream.rows));
            match signer {
                Some(signer) => {
                    let meta = BundleMeta {
                        format,
                        created_at: now_ms,
                        viewer: viewer.name.clone(),
                        query: ExportQuery {
                            q: query.q.clone(),
                            search: search.query_string(),
                            tenants: scope
                                .tenant
                                .clone()
                                .map_or(scope.within.clone(), |t| vec![t]),
                        },
                    };
                    bundle_download(
                        store,
                        stream,
                        tracker,
                        signer,
                        meta,
                        query.tenant.as_deref(),
                        now_ms,
                    )
                }
                None => download(stream, tracker, format, query.tenant.as_deref(), now_ms),
            }
        }
        Err(error) => refused(error),
    }
}

/// What an export sent, for its audit event.
struct Exported {
    format: ExportFormat,
    rows: u64,
    proofs: bool,
}

/// `data.export` in the trail of each tenant exported (Attest's own for an
/// export over every tenant): who, what query, how many rows.
async fn record_export(
    ingest: &Ingest,
    viewer: &Viewer,
    scope: &Scope,
    query: &SearchQuery,
    search: &SearchParams,
    Exported {
        format,
        rows,
        proofs,
    }: Exported,
) -> Result<(), crate::ingest::IngestError> {
    let metadata = BTreeMap::from([
        ("query".to_owned(), query.q.chars().take(1000).collect()),
        ("search".to_owned(), search.query_string()),
        ("format".to_owned(), format.extension().to_owned()),
        ("rows".to_owned(), rows.to_string()),
        ("proofs".to_owned(), proofs.to_string()),
    ]);
    let events = scope
        .trails()
        .iter()
        .map(|trail| {
            internal_event(
                trail,
                Category::DataAccess,
                "data.export",
                Outcome::Success,
                Resource {
                    kind: "audit_events".into(),
                    id: query.tenant.clone().unwrap_or_else(|| "*".into()),
                },
                &viewer.name,
                metadata.clone(),
            )
        })
        .collect();
    ingest
        .record_all(events)
        .await
        .into_iter()
        .try_for_each(|r| r.map(|_| ()))
}

/// Counts the rows of one download onto the board, for the page's
/// progress line. Dropped before the end (the browser went away), it
/// marks the export as broken off.
struct Tracker {
    board: Arc<ExportBoard>,
    token: String,
    counter: RowCounter,
    /// CSV's first line is the header, not a row.
    header_pending: bool,
    finished: bool,
}

impl Tracker {
    fn new(board: Arc<ExportBoard>, token: &str, format: ExportFormat, total: u64) -> Tracker {
        board.start(token, total);
        let csv = format == ExportFormat::Csv;
        Tracker {
            board,
            token: token.to_owned(),
            counter: RowCounter::new(csv),
            header_pending: csv,
            finished: false,
        }
    }

    fn passed(&mut self, chunk: &[u8]) {
        let mut rows = self.counter.feed(chunk);
        if self.header_pending && rows > 0 {
            self.header_pending = false;
            rows -= 1;
        }
        self.board.advance(&self.token, rows);
    }

    fn end(&mut self, outcome: Result<(), String>) {
        self.finished = true;
        self.board.finish(&self.token, outcome);
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        if !self.finished {
            self.board
                .finish(&self.token, Err("the download was interrupted".into()));
        }
    }
}

fn download(
    stream: ExportStream,
    tracker: Option<Tracker>,
    format: ExportFormat,
    tenant: Option<&str>,
    now_ms: i64,
) -> Response {
    let rows = stream.rows;
    // An error ends the body without its last chunk, so the browser marks
    // the download as failed rather than saving a file that looks whole.
    let body = futures::stream::unfold((stream, tracker), |(mut stream, mut tracker)| async move {
        match stream.next_chunk().await {
            Ok(Some(chunk)) => {
                if let Some(t) = tracker.as_mut() {
                    t.passed(&chunk);
                }
                Some((Ok(chunk), (stream, tracker)))
            }
            Ok(None) => {
                if let Some(t) = tracker.as_mut() {
                    t.end(Ok(()));
                }
                None
            }
            Err(error) => {
                warn!(%error, "export broke off");
                if let Some(t) = tracker.as_mut() {
                    t.end(Err(error.to_string()));
                }
                Some((Err(error), (stream, tracker)))
            }
        }
    });
    let disposition = format!(
        "attachment; filename=\"{}\"",
        file_name(tenant, now_ms, format.extension())
    );
    // Fused: a body layer (compression) may poll once more after the end,
    // and an unfused `unfold` panics then.
    let mut response = Body::from_stream(futures::StreamExt::fuse(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    // Audit data stays out of shared caches.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("x-attest-export-rows", HeaderValue::from(rows));
    response
}

fn load_signer(setup: &ProofsSetup) -> Result<Signer, crate::integrity::keys::KeyError> {
    Ok(Signer {
        keys: KeyRing::load(&setup.key_dir)?,
        key: SigningKey::load(&setup.key_dir)?,
        topic_prefix: setup.topic_prefix.clone(),
    })
}

/// The bundle, made by a task of its own as it is sent: a bounded channel
/// between them, so a slow download slows the reading of ClickHouse
/// instead of filling memory. An error ends the body without its last
/// chunk (the ZIP's central directory), so no tool takes it for whole.
fn bundle_download(
    store: Store,
    stream: ExportStream,
    tracker: Option<Tracker>,
    signer: Signer,
    meta: BundleMeta,
    tenant: Option<&str>,
    now_ms: i64,
) -> Response {
    let rows = stream.rows;
    // The events file's format in the name, so a CSV bundle and an NDJSON
    // bundle of the same search saved side by side do not overwrite each
    // other.
    let name = bundle_file_name(tenant, now_ms, meta.format);
    let (sink, mut receiver) = tokio::sync::mpsc::channel(8);
    tokio::spawn(async move {
        let mut tracker = tracker;
        let outcome = write_bundle(stream, &store, &signer, meta, &sink, &mut |chunk| {
            if let Some(t) = tracker.as_mut() {
                t.passed(chunk);
            }
        })
        .await;
        if let Some(t) = tracker.as_mut() {
            t.end(outcome.as_ref().map(|_| ()).map_err(ToString::to_string));
        }
        if let Err(error) = outcome {
            warn!(%error, "export with proofs broke off");
            let _ = sink
                .send(Err(std::io::Error::other(error.to_string())))
                .await;
        }
    });
    let body = futures::stream::poll_fn(move |cx| receiver.poll_recv(cx));
    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    let disposition = format!("attachment; filename=\"{name}\"");
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("x-attest-export-rows", HeaderValue::from(rows));
    response
}

/// A bundle's name: the events file's extension, then `proofs.zip`.
fn bundle_file_name(tenant: Option<&str>, now_ms: i64, format: ExportFormat) -> String {
    file_name(
        tenant,
        now_ms,
        &format!("{}.proofs.zip", format.extension()),
    )
}

/// `attest-events-<tenant|all>-<YYYYMMDDTHHMMSSZ>.<ext>`, with only
/// filename-safe characters whatever the tenant parameter held.
fn file_name(tenant: Option<&str>, now_ms: i64, extension: &str) -> String {
    let scope: String = tenant
        .unwrap_or("all")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let stamp: String = app::timefmt::utc_millis(now_ms)
        .chars()
        .take(19)
        .filter(char::is_ascii_digit)
        .collect();
    let (date, time) = stamp.split_at(stamp.len().min(8));
    format!("attest-events-{scope}-{date}T{time}Z.{extension}")
}

/// What the progress line says about an export that did not start; the
/// download itself carries the detailed JSON.
fn refusal_text(status: StatusCode) -> String {
    match status {
        StatusCode::BAD_REQUEST => "the search has an error; fix it and export again".into(),
        StatusCode::FORBIDDEN => "that tenant is not visible to you".into(),
        StatusCode::UNPROCESSABLE_ENTITY => {
            "the search matches more rows than an export may hold; narrow it".into()
        }
        StatusCode::UNAUTHORIZED => "sign in again".into(),
        _ => "the event store is unavailable; try again shortly".into(),
    }
}

fn bad_request(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "bad_request", "message": message})),
    )
        .into_response()
}

/// Why an export did not start, as the search page's errors say it.
fn refused(error: StoreError) -> Response {
    match error {
        StoreError::BadQuery(parse) => (
            StatusCode::BAD_REQUEST,
            Json(json!({
                "error": "bad_query",
                "message": format!("query error {parse}"),
                "position": parse.position,
                "hint": parse.hint,
            })),
        )
            .into_response(),
        StoreError::Limit(limit) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": "limit_exceeded", "message": limit.to_string()})),
        )
            .into_response(),
        StoreError::Invalid(message) => bad_request(&message),
        StoreError::Forbidden(message) => (
            StatusCode::FORBIDDEN,
            Json(json!({"error": "forbidden", "message": message})),
        )
            .into_response(),
        StoreError::Unavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "5")],
            Json(json!({"error": "unavailable", "message": "the event store is unavailable; try again shortly"})),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::export_progress::ExportState;

    #[test]
    fn a_tracked_download_counts_rows_and_says_how_it_ended() {
        let board = Arc::new(ExportBoard::default());
        let mut done = Tracker::new(board.clone(), "download-that-ends", ExportFormat::Csv, 2);
        done.passed(b"\"event_id\"\n\"a\"\n\"b");
        done.passed(b"\"\n");
        done.end(Ok(()));
        drop(done);
        let status = board.status("download-that-ends").unwrap();
        assert_eq!(
            (status.sent, status.state),
            (2, ExportState::Done),
            "header not counted"
        );

        // The browser went away: the stream, and its tracker, are dropped.
        let mut left = Tracker::new(
            board.clone(),
            "download-left-early",
            ExportFormat::Ndjson,
            5,
        );
        left.passed(b"{}\n");
        drop(left);
        let status = board.status("download-left-early").unwrap();
        assert_eq!((status.sent, status.state), (1, ExportState::Failed));
        assert!(status.message.unwrap().contains("interrupted"));
    }

    #[test]
    fn file_names_are_safe() {
        let now = 1_795_435_200_000; // 2026-11-23 12:00:00 UTC
        assert_eq!(
            file_name(Some("acme"), now, "csv"),
            "attest-events-acme-20261123T120000Z.csv"
        );
        assert_eq!(
            file_name(Some("a\"; filename=x.exe\r\n"), now, "ndjson"),
            "attest-events-a___filename_x.exe__-20261123T120000Z.ndjson"
        );
        assert_eq!(
            file_name(None, now, "csv"),
            "attest-events-all-20261123T120000Z.csv"
        );
        assert_eq!(
            bundle_file_name(Some("acme"), now, ExportFormat::Csv),
            "attest-events-acme-20261123T120000Z.csv.proofs.zip"
        );
        assert_eq!(
            bundle_file_name(None, now, ExportFormat::Ndjson),
            "attest-events-all-20261123T120000Z.ndjson.proofs.zip"
        );
    }
}
