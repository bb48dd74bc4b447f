//! The live tail (`GET /api/search/tail`, issue 17) against the real
//! stack: an event posted after the stream opened arrives; only the
//! viewer's tenants do; across a reconnect from the last id nothing comes
//! twice and nothing is skipped.

mod common;
mod console_support;
mod search_support;

use std::collections::HashMap;
use std::time::Duration;

use console_support::{grant, Browser};
use search_support::*;
use serde_json::Value;

/// One server-sent event: its type, id and data.
#[derive(Debug, Clone)]
struct Sse {
    event: String,
    id: Option<String>,
    data: String,
}

/// Reads a `text/event-stream` response.
struct Stream {
    response: reqwest::Response,
    buffer: String,
}

impl Stream {
    async fn open(browser: &Browser, path: &str, last_id: Option<&str>) -> reqwest::Response {
        let mut request = browser.with_cookie(browser.http.get(format!("{}{path}", browser.base)));
        if let Some(id) = last_id {
            request = request.header("Last-Event-ID", id);
        }
        request.send().await.unwrap()
    }

    /// The next event, or `None` if none came within `wait`.
    async fn next(&mut self, wait: Duration) -> Option<Sse> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut sse = Sse {
                    event: "message".into(),
                    id: None,
                    data: String::new(),
                };
                let mut any = false;
                for line in block.lines() {
                    let (field, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match field {
                        "event" => (sse.event, any) = (value.to_owned(), true),
                        "id" => (sse.id, any) = (Some(value.to_owned()), true),
                        "data" => (sse.data, any) = (sse.data.clone() + value, true),
                        _ => {}
                    }
                }
                if any {
                    return Some(sse);
                }
                continue;
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk()).await;
            match chunk {
                Ok(Ok(Some(bytes))) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }

    /// Every hit until `want` (event ids) have all come or `wait` is over;
    /// the ids of the hits, in order, and the last id seen.
    async fn hits_until(
        &mut self,
        want: &[&str],
        wait: Duration,
        last_id: &mut Option<String>,
    ) -> Vec<(String, String)> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut got: Vec<(String, String)> = Vec::new();
        while !want
            .iter()
            .all(|w| got.iter().any(|(_, id)| id.as_str() == *w))
        {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(sse) = self.next(left).await else {
                break;
            };
            if sse.id.is_some() {
                *last_id = sse.id.clone();
            }
            assert_ne!(sse.event, "problem", "{}", sse.data);
            if sse.event == "hits" {
                let message: Value = serde_json::from_str(&sse.data).unwrap();
                assert_eq!(message["position"].as_str(), sse.id.as_deref());
                for hit in message["hits"].as_array().unwrap() {
                    got.push((
                        hit["tenant_id"].as_str().unwrap().to_owned(),
                        hit["event_id"].as_str().unwrap().to_owned(),
                    ));
                }
            }
        }
        got
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tail_delivers_new_events_of_the_viewers_tenants_once_across_a_reconnect() {
    let mut config = common::test_config();
    config.console.require_login = true;
    let server = common::start(config.clone()).await;
    let before = attest_server::ingest::now_ms();
    // Stored before the tail starts: the search page shows it, the tail
    // does not.
    seed(&server, &[event("old-acme", "acme", before - MINUTE)]).await;

    let alice = grant(
        &config,
        &["--name", "alice@acme.example", "--tenant", "acme"],
    );
    let mut browser = Browser::new(&server.base_url);
    browser.sign_in(&alice, "/search").await;

    // Another tenant, asked for by name: refused before any stream.
    let refused = Stream::open(&browser, "/api/search/tail?tenant=globex", None).await;
    assert_eq!(refused.status().as_u16(), 403);
    let bad = Stream::open(&browser, "/api/search/tail?q=actr:x", None).await;
    assert_eq!(bad.status().as_u16(), 400);
    let damaged = Stream::open(&browser, "/api/search/tail", Some("12.nope:1:2")).await;
    assert_eq!(damaged.status().as_u16(), 400);

    let since = attest_server::ingest::now_ms();
    let path = format!("/api/search/tail?q=action:user.login&since={since}");
    let response = Stream::open(&browser, &path, None).await;
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut stream = Stream {
        response,
        buffer: String::new(),
    };
    let now = attest_server::ingest::now_ms();
    post_all(
        &server,
        &[
            event("t-1", "acme", now),
            event("g-1", "globex", now),
            with(
                event("t-other", "acme", now),
                serde_json::json!({"action": "user.logout"}),
            ),
        ],
    )
    .await;
    let mut last_id = None;
    let first = stream
        .hits_until(&["t-1"], Duration::from_secs(60), &mut last_id)
        .await;
    assert!(first.contains(&("acme".into(), "t-1".into())), "{first:?}");
    // A few more polls: globex's event was stored too (the writer inserts
    // in batches) but never reaches alice, nor the one the query excludes.
    server.wait_for_rows(4, Duration::from_secs(60)).await;
    let settled = stream
        .hits_until(&["never"], Duration::from_secs(6), &mut last_id)
        .await;
    drop(stream);

    // Reconnect from the last id, as a browser does; an event posted while
    // disconnected arrives, and nothing delivered before comes again.
    post_all(
        &server,
        &[event("t-2", "acme", attest_server::ingest::now_ms())],
    )
    .await;
    let resumed = Stream::open(&browser, &path, last_id.as_deref()).await;
    assert_eq!(resumed.status().as_u16(), 200);
    let mut stream = Stream {
        response: resumed,
        buffer: String::new(),
    };
    let second = stream
        .hits_until(&["t-2"], Duration::from_secs(60), &mut last_id)
        .await;
    let more = stream
        .hits_until(&["never"], Duration::from_secs(6), &mut last_id)
        .await;

    let all: Vec<(String, String)> = [first, settled, second, more].concat();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (tenant, id) in &all {
        assert_eq!(
            tenant, "acme",
            "another tenant's event reached alice: {all:?}"
        );
        *counts.entry(id.as_str()).or_default() += 1;
    }
    assert_eq!(
        counts,
        HashMap::from([("t-1", 1), ("t-2", 1)]),
        "each new matching event exactly once: {all:?}"
    );
    server.stop().await;
}

/// Two batches of one partition insert at once (`writer.inserts_in_flight`),
/// and the younger one can land first. A poll in between must not move the
/// position past the older batch's offsets, or its rows are never streamed:
/// polls stay below the writers' committed offsets, which pass an offset
/// only once everything before it is in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_younger_batch_landing_first_does_not_make_the_tail_skip_the_older_one() {
    use app::store::EventStore;
    use app::tail::{Delivered, TailPosition};
    use attest_server::ingest::validate;
    use attest_server::store::{EventRow, Provenance};

    let server = common::start(common::test_config()).await;
    let store = store(&server);
    let since = attest_server::ingest::now_ms() - 1_000;
    let row = |id: &str, offset: i64| {
        let value = event(id, "acme", since - MINUTE);
        let received = attest_server::ingest::now_ms();
        let parsed = validate::parse_value(0, value, received, || unreachable!("ids are given"))
            .expect("a valid event");
        EventRow::new(
            parsed,
            Provenance {
                schema_id: 1,
                partition: 0,
                offset,
            },
        )
    };
    let search = query("", Some("acme"), last_day());
    let committed = |next: i64| {
        Delivered(
            [(("authentication".to_owned(), 0), next)]
                .into_iter()
                .collect(),
        )
    };
    let ids = |hits: &[app::search_model::SearchHit]| -> Vec<String> {
        hits.iter().map(|h| h.event_id.clone()).collect()
    };

    // The younger batch (offset 7) is in; the older one (offsets 5 and 6)
    // is still inserting, so the group has committed up to 5.
    store
        .insert_events(&[row("young-7", 7)])
        .await
        .expect("insert");
    let now = attest_server::ingest::now_ms();
    let first = EventStore::tail(
        &store,
        &search,
        &TailPosition::starting(since),
        &committed(5),
        now,
    )
    .await
    .expect("a poll");
    assert!(
        first.hits.is_empty(),
        "nothing below the commit: {:?}",
        ids(&first.hits)
    );

    // The older batch lands; both are committed (next offset 8).
    store
        .insert_events(&[row("old-5", 5), row("old-6", 6)])
        .await
        .expect("insert");
    let now = attest_server::ingest::now_ms();
    let second = EventStore::tail(&store, &search, &first.position, &committed(8), now)
        .await
        .expect("a poll");
    assert_eq!(
        ids(&second.hits),
        ["old-5", "old-6", "young-7"],
        "in offset order, none skipped"
    );

    // A partition the group has not committed in is not read at all.
    let none = EventStore::tail(
        &store,
        &search,
        &TailPosition::starting(since),
        &Delivered::default(),
        now,
    )
    .await
    .expect("a poll");
    assert!(none.hits.is_empty(), "{:?}", ids(&none.hits));
    server.stop().await;
}
