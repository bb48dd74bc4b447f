//! The Search page's live tail (`GET /api/search/tail`, server-sent
//! events): new events matching a search, scoped like Search through
//! [`ScopedStore`], polled from ClickHouse every [`POLL_EVERY`] per open
//! stream, below the writers' committed offsets ([`DeliveredOffsets`]).
//! Each message's SSE id is the position after it
//! ([`TailPosition`]), so the browser's reconnect (`Last-Event-ID`)
//! resumes exactly there: nothing twice, nothing skipped.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use app::search_model::{SearchQuery, SEARCH_PAGE_ROWS};
use app::search_state::SearchParams;
use app::store::{EventStore, StoreError as ConsoleError};
use app::tail::{TailMessage, TailPosition, TAIL_PATH};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::{Extension, Router};
use futures::Stream;

use super::ApiError;
use crate::access::{ReadLog, ScopedStore, Viewer};
use crate::store::Store;
use crate::write::delivered::DeliveredOffsets;

/// How often an open stream asks ClickHouse for new rows. One query per
/// open stream per interval, bounded by the search's window and limits.
pub const POLL_EVERY: Duration = Duration::from_secs(2);
/// After a poll the store could not answer, the next waits this long.
const RETRY_EVERY: Duration = Duration::from_secs(5);
/// A stream ends after this long and the browser reconnects from its last
/// id, passing the session check again: a revoked or narrowed grant stops
/// or narrows the tail within this time.
const STREAM_LIFETIME: Duration = Duration::from_secs(300);
/// What the browser waits before reconnecting.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct TailRoutes {
    pub store: Store,
    /// Where the opening of a tail is recorded; `None` without sign-in.
    pub reads: Option<ReadLog>,
    /// The writers' committed offsets, which every poll stays below.
    pub delivered: Arc<DeliveredOffsets>,
}

pub fn router(state: TailRoutes) -> Router {
    Router::new()
        .route(TAIL_PATH, get(stream))
        .with_state(state)
}

/// Where the stream starts: the browser's `Last-Event-ID` when it
/// reconnects, else `position`, else `since` (the page's snapshot), else
/// now. A damaged value is a 400 naming it.
fn start(
    headers: &HeaderMap,
    params: &HashMap<String, String>,
    now_ms: i64,
) -> Result<TailPosition, ConsoleError> {
    let header = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty());
    if let Some(id) = header {
        return TailPosition::decode(id)
            .map_err(|e| ConsoleError::Invalid(format!("Last-Event-ID: {e}")));
    }
    if let Some(position) = params.get("position").filter(|v| !v.trim().is_empty()) {
        return TailPosition::decode(position)
            .map_err(|e| ConsoleError::Invalid(format!("position: {e}")));
    }
    match params.get("since").filter(|v| !v.trim().is_empty()) {
        Some(since) => since
            .trim()
            .parse::<i64>()
            .ok()
            .and_then(|ms| app::search_model::checked_snapshot(ms).ok())
            .map(TailPosition::starting)
            .ok_or_else(|| {
                ConsoleError::Invalid(format!(
                    "since: \"{since}\" is not a moment in epoch milliseconds"
                ))
            }),
        None => Ok(TailPosition::starting(now_ms)),
    }
}

fn message(hits: Vec<app::search_model::SearchHit>, position: &TailPosition) -> Event {
    let id = position.encode();
    let body = TailMessage {
        hits,
        position: id.clone(),
    };
    match Event::default().event("hits").id(id).json_data(&body) {
        Ok(event) => event,
        // Rows are plain data; should one ever fail to serialize, the
        // stream says so and the page shows it.
        Err(error) => {
            tracing::error!(%error, "cannot serialize tail rows");
            Event::default()
                .event("problem")
                .data("rows could not be sent")
        }
    }
}

struct Tailing {
    scoped: Arc<ScopedStore>,
    delivered: Arc<DeliveredOffsets>,
    query: SearchQuery,
    position: TailPosition,
    started: tokio::time::Instant,
    wait: Duration,
}

/// One poll: the rows after `position` and below the writers' committed
/// offsets (docs/DESIGN.md, "Search: live tail"). A broker that cannot say
/// them is a store that cannot answer.
async fn poll(
    scoped: &ScopedStore,
    delivered: &DeliveredOffsets,
    query: &SearchQuery,
    position: &TailPosition,
    now_ms: i64,
) -> Result<app::tail::TailBatch, ConsoleError> {
    let committed = delivered
        .now()
        .await
        .map_err(|e| ConsoleError::Unavailable(e.to_string()))?;
    scoped.tail(query, position, &committed, now_ms).await
}

/// Polls until there is something to send, or the stream's time is up.
async fn next_event(mut t: Tailing) -> Option<(Result<Event, Infallible>, Tailing)> {
    loop {
        tokio::time::sleep(t.wait).await;
        if t.started.elapsed() >= STREAM_LIFETIME {
            return None;
        }
        let now_ms = crate::ingest::now_ms();
        match poll(&t.scoped, &t.delivered, &t.query, &t.position, now_ms).await {
            Ok(batch) => {
                t.wait = if batch.more {
                    Duration::ZERO
                } else {
                    POLL_EVERY
                };
                t.position = batch.position;
                if !batch.hits.is_empty() {
                    let event = message(batch.hits, &t.position);
                    return Some((Ok(event), t));
                }
            }
            Err(error) => {
                t.wait = RETRY_EVERY;
                let event = Event::default().event("problem").data(error.to_string());
                return Some((Ok(event), t));
            }
        }
    }
}

async fn stream(
    State(state): State<TailRoutes>,
    viewer: Option<Extension<Viewer>>,
    headers: HeaderMap,
    params: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // The sign-in layer always sets a viewer; without one, nothing.
    let viewer = viewer.map_or_else(Viewer::nobody, |Extension(v)| v);
    let Query(params) =
        params.map_err(|r| ApiError::Search(ConsoleError::Invalid(r.body_text())))?;
    let search = SearchParams::from_lookup(|key| params.get(key).cloned());
    let query = SearchQuery::from_params(&search, SEARCH_PAGE_ROWS)
        .map_err(|e| ApiError::Search(ConsoleError::Invalid(e.to_string())))?;
    let now_ms = crate::ingest::now_ms();
    let position = start(&headers, &params, now_ms).map_err(ApiError::Search)?;
    let scoped = Arc::new(ScopedStore::new(state.store.clone(), viewer).recording(state.reads));
    // The first poll before the answer: a bad query, a tenant not visible
    // or a store that is down is the request's status, not a message.
    let first = poll(&scoped, &state.delivered, &query, &position, now_ms)
        .await
        .map_err(ApiError::Search)?;
    // A reconnect continues the same tail; only a new one is a new read.
    if headers.get("last-event-id").is_none() {
        scoped.note_tail(&query).map_err(ApiError::Search)?;
    }
    // Sent even when empty: it carries the starting position as its id,
    // so a reconnect before any row resumes from there.
    let opening = message(first.hits, &first.position).retry(RECONNECT_AFTER);
    let tailing = Tailing {
        scoped,
        delivered: state.delivered,
        query,
        position: first.position,
        started: tokio::time::Instant::now(),
        wait: if first.more {
            Duration::ZERO
        } else {
            POLL_EVERY
        },
    };
    let rest = futures::stream::unfold(tailing, next_event);
    let all = futures::StreamExt::chain(
        futures::stream::once(async move { Ok::<_, Infallible>(opening) }),
        rest,
    );
    Ok(Sse::new(all).keep_alive(KeepAlive::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reconnect_wins_over_the_page_and_damage_is_named() {
        let mut headers = HeaderMap::new();
        let mut params = HashMap::new();
        assert_eq!(
            start(&headers, &params, 7).unwrap(),
            TailPosition::starting(7)
        );
        params.insert("since".to_string(), "1000".to_string());
        assert_eq!(
            start(&headers, &params, 7).unwrap(),
            TailPosition::starting(1_000)
        );
        headers.insert("last-event-id", "2000.admin:0:5".parse().unwrap());
        let resumed = start(&headers, &params, 7).unwrap();
        assert_eq!(resumed.encode(), "2000.admin:0:5");
        headers.insert("last-event-id", "2000.nope".parse().unwrap());
        let bad = start(&headers, &params, 7).unwrap_err().to_string();
        assert!(bad.starts_with("Last-Event-ID: "), "{bad}");
        let headers = HeaderMap::new();
        params.insert("since".to_string(), "soon".to_string());
        let bad = start(&headers, &params, 7).unwrap_err().to_string();
        assert!(bad.starts_with("since: "), "{bad}");
    }
}
