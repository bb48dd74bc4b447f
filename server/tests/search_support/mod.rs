//! Seeding and reading helpers for the search tests: events go in through
//! the HTTP ingest API like any service's (or, for the large sets, through
//! the writer's own insert), and come back through the store, the server
//! functions and the export endpoint.

#![allow(dead_code)]

use std::collections::HashSet;
use std::time::Duration;

use app::model::TimeRange;
use app::search_model::{SearchPage, SearchQuery};
use app::search_state::{Cursor, TimeWindow};
use app::store::EventStore;
use attest_server::ingest::validate;
use attest_server::store::{EventRow, Provenance, Store};
use futures::stream::{self, StreamExt};
use serde_json::{json, Value};

use crate::common::TestServer;

pub const MINUTE: i64 = 60_000;

/// An event with every required field; `with` adds or replaces fields.
pub fn event(id: &str, tenant: &str, occurred_at: i64) -> Value {
    json!({
        "event_id": id,
        "tenant_id": tenant,
        "occurred_at": occurred_at,
        "category": "authentication",
        "action": "user.login",
        "outcome": "success",
        "actor": {"id": "someone", "type": "user"},
        "source_service": "sso",
    })
}

/// Merges `fields` into `event`, one level deep for `actor`.
pub fn with(mut event: Value, fields: Value) -> Value {
    if let (Some(target), Some(source)) = (event.as_object_mut(), fields.as_object()) {
        for (key, value) in source {
            match (key.as_str(), target.get_mut(key)) {
                ("actor", Some(Value::Object(actor))) => {
                    for (k, v) in value.as_object().cloned().unwrap_or_default() {
                        actor.insert(k, v);
                    }
                }
                _ => {
                    target.insert(key.clone(), value.clone());
                }
            }
        }
    }
    event
}

/// Posts every event (32 at a time) and asserts each was accepted.
pub async fn post_all(server: &TestServer, events: &[Value]) {
    let statuses: Vec<(u16, Value)> = stream::iter(events)
        .map(|e| server.post_json(e.to_string()))
        .buffer_unordered(32)
        .collect()
        .await;
    for (status, body) in statuses {
        assert_eq!(status, 202, "{body}");
    }
}

/// Posts every event and waits until the writer has inserted them all.
/// The writer's own count is the one to wait for: ReplacingMergeTree may
/// already have folded re-sent copies together, so the table's row count
/// can stay below what was sent.
pub async fn seed(server: &TestServer, events: &[Value]) {
    let before = server.rows_written().await;
    post_all(server, events).await;
    let target = before + events.len() as u64;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let written = server.rows_written().await;
        if written >= target {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the writer wrote {written} of {target} rows"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Writes events straight into ClickHouse through the writer's own insert
/// (`Store::insert_events`), for data sets larger than the local broker
/// takes in the time a test may run (written for tansu, the earlier local
/// broker, at about 4,500 events/s; on Kafka it still saves the test time).
/// Each event is checked by ingest's own validation first, so the rows are
/// exactly what the pipeline would have stored; the events that arrive
/// during a test still go through the HTTP API.
pub async fn seed_direct(server: &TestServer, events: &[Value]) {
    let store = store(server);
    let received = attest_server::ingest::now_ms();
    for (chunk_number, chunk) in events.chunks(20_000).enumerate() {
        let rows: Vec<EventRow> = chunk
            .iter()
            .enumerate()
            .map(|(i, value)| {
                let event = validate::parse_value(i, value.clone(), received, || {
                    unreachable!("seeded events carry their ids")
                })
                .unwrap_or_else(|errors| panic!("seeded event {value}: {errors:?}"));
                let offset = (chunk_number * 20_000 + i) as i64;
                EventRow::new(
                    event,
                    Provenance {
                        schema_id: 1,
                        partition: 0,
                        offset,
                    },
                )
            })
            .collect();
        store.insert_events(&rows).await.expect("insert");
    }
}

/// Stops ReplacingMergeTree from folding re-sent copies together, so the
/// copies a re-delivered batch leaves stay stored and a query that forgot
/// to hide them would show them.
pub async fn keep_duplicates(server: &TestServer) {
    server.clickhouse("SYSTEM STOP MERGES audit_events").await;
}

/// Rows the writer inserted so far, from `/metrics`.
/// Events as analysts count them: one per identity (tenant, id, content).
pub async fn distinct_events(server: &TestServer) -> u64 {
    server
        .clickhouse("SELECT uniqExact(tenant_id, event_id, content_hash) FROM audit_events")
        .await
        .trim()
        .parse()
        .expect("a count")
}

pub fn store(server: &TestServer) -> Store {
    Store::new(&server.config.clickhouse)
}

pub fn query(q: &str, tenant: Option<&str>, window: TimeWindow) -> SearchQuery {
    SearchQuery {
        q: q.to_owned(),
        tenant: tenant.map(str::to_owned),
        window,
        cursor: None,
        sort: Default::default(),
        limit: 100,
        within: Vec::new(),
        metadata_keys: Vec::new(),
    }
}

pub fn last_day() -> TimeWindow {
    TimeWindow::Last(TimeRange::Last24Hours)
}

/// Every page of a search, in order, each page as returned.
pub async fn all_pages(store: &Store, mut search: SearchQuery, now_ms: i64) -> Vec<SearchPage> {
    let mut pages = Vec::new();
    loop {
        let page = EventStore::search(store, &search, now_ms)
            .await
            .unwrap_or_else(|e| panic!("{:?}: {e}", search.q));
        let next = page.next_cursor.clone();
        pages.push(page);
        match next {
            Some(token) => search.cursor = Some(Cursor::decode(&token).expect("own cursor")),
            None => return pages,
        }
        assert!(pages.len() < 1_000, "pagination does not end");
    }
}

/// The event ids a search finds over all its pages, sorted.
pub async fn ids(store: &Store, search: SearchQuery, now_ms: i64) -> Vec<String> {
    let mut ids: Vec<String> = all_pages(store, search, now_ms)
        .await
        .into_iter()
        .flat_map(|p| p.hits.into_iter().map(|h| h.event_id))
        .collect();
    ids.sort();
    ids
}

/// One column of a `FORMAT TSV` answer.
pub fn tsv_lines(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

/// RFC 4180 CSV as ClickHouse writes it (`""` inside quotes is a quote,
/// newlines may sit inside quotes).
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

/// A GET of the export endpoint: status, headers and body.
pub async fn export(
    server: &TestServer,
    pairs: &[(&str, String)],
) -> (u16, reqwest::header::HeaderMap, String) {
    let url = format!(
        "{}/api/v1/export{}",
        server.base_url,
        app::search_state::query_string(pairs)
    );
    let response = server.http.get(url).send().await.expect("attest reachable");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap_or_default())
}

/// A server function called the way the browser calls it: a form POST,
/// answered with JSON.
pub async fn server_fn(server: &TestServer, path: &str, form: &[(&str, String)]) -> (u16, Value) {
    let response = server
        .http
        .post(format!("{}/api/{path}", server.base_url))
        .form(form)
        .send()
        .await
        .expect("attest reachable");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// `(tenant, event_id)` pairs of a search, with how often each was shown.
pub fn count_pairs(pages: &[SearchPage]) -> (HashSet<(String, String)>, usize) {
    let shown: Vec<(String, String)> = pages
        .iter()
        .flat_map(|p| p.hits.iter())
        .map(|h| (h.tenant_id.clone(), h.event_id.clone()))
        .collect();
    let total = shown.len();
    (shown.into_iter().collect(), total)
}

/// A small world with known answers: who did what, from where, when.
pub fn investigation(now: i64) -> Vec<serde_json::Value> {
    let at = |minutes: i64| now - minutes * MINUTE;
    let e = |id: &str, minutes: i64| event(id, "acme", at(minutes));
    vec![
        with(
            e("login-alice", 10),
            json!({"actor": {"id": "alice@example.com", "ip": "10.0.0.5", "user_agent": "Mozilla/5.0 Firefox/128"}, "request_id": "req-7f3a9c", "metadata": {"region": "eu-west-1"}}),
        ),
        with(
            e("login-bob-fail", 20),
            json!({"outcome": "failure", "actor": {"id": "bob@example.com", "ip": "10.0.1.9"}}),
        ),
        with(
            e("login-mallory-fail", 30),
            json!({"outcome": "failure", "actor": {"id": "mallory@evil.example", "ip": "203.0.113.66"}, "metadata": {"city": "Zürich"}}),
        ),
        with(
            e("logout-alice", 40),
            json!({"action": "user.logout", "actor": {"id": "alice@example.com", "ip": "10.0.0.5"}}),
        ),
        with(
            e("role-grant-svc", 50),
            json!({"category": "permission_change", "action": "role.grant", "actor": {"id": "deploy-bot", "type": "service"}, "resource": {"type": "role", "id": "admin"}, "source_service": "iam", "request_id": "req-7f3a9c"}),
        ),
        with(
            e("role-grant-carol", 60),
            json!({"category": "permission_change", "action": "role.grant", "outcome": "denied", "actor": {"id": "carol@example.com"}, "resource": {"type": "role", "id": "admin"}, "source_service": "iam"}),
        ),
        with(
            e("report-read-dave", 70),
            json!({"category": "data_access", "action": "document.read", "actor": {"id": "dave@contractor.example"}, "resource": {"type": "document", "id": "q3 report.pdf"}, "source_service": "docs"}),
        ),
        with(
            e("report-export-dave", 80),
            json!({"category": "data_access", "action": "data.export", "actor": {"id": "dave@contractor.example"}, "resource": {"type": "document", "id": "q3 report.pdf"}, "source_service": "docs", "metadata": {"format": "csv"}}),
        ),
        with(
            e("billing-admin-eu", 90),
            json!({"category": "admin", "action": "plan.change", "actor": {"id": "erin@example.com"}, "source_service": "billing", "metadata": {"region": "eu-central-1"}}),
        ),
        with(
            e("billing-admin-us", 100),
            json!({"category": "admin", "action": "plan.change", "actor": {"id": "erin@example.com"}, "source_service": "billing", "metadata": {"region": "us-east-1"}}),
        ),
        with(
            e("user-delete-denied", 110),
            json!({"category": "admin", "action": "user.delete", "outcome": "denied", "actor": {"id": "frank@example.com", "ip": "2001:db8::1"}, "resource": {"type": "user", "id": "u-42"}, "source_service": "iam"}),
        ),
        with(
            e("old-login", 2 * 24 * 60),
            json!({"actor": {"id": "alice@example.com"}}),
        ),
        with(
            event("globex-login", "globex", at(15)),
            json!({"outcome": "failure", "actor": {"id": "alice@example.com", "ip": "10.0.0.5"}}),
        ),
    ]
}
