//! Event identity (docs/DESIGN.md, "Event identity"), against the real
//! stack. An event is (tenant, id, content hash): an exact re-send counts
//! once everywhere, and a different event sent with a used id never replaces
//! or hides the first, in storage (after merges), search, export, the
//! Events page, event detail and the rollups.

mod common;
mod search_support;

use std::process::Command;
use std::time::Duration;

use app::model::{EventFilter, TimeRange};
use app::store::EventStore;
use attest_server::config::Config;
use serde_json::{json, Value};

use common::TestServer;
use search_support::{
    all_pages, event, export, keep_duplicates, last_day, query, seed, seed_direct, server_fn,
    store, tsv_lines, with, MINUTE,
};

/// An ingest key for tenant `acme` and `service`, made by the binary as an
/// operator would.
fn api_key(config: &Config, service: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_attest"))
        .args(["keys", "create", "--tenant", "acme", "--service", service])
        .envs(common::child_env(config))
        .output()
        .expect("attest keys create runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

async fn post_with_key(server: &TestServer, key: &str, body: &Value) -> (u16, Value) {
    let response = server
        .http
        .post(format!("{}/api/v1/events", server.base_url))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {key}"))
        .body(body.to_string())
        .send()
        .await
        .expect("attest reachable");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Waits until ClickHouse holds `n` rows with this id.
async fn wait_stored(server: &TestServer, id: &str, n: u64) {
    let sql = format!("SELECT count() FROM audit_events WHERE event_id = '{id}'");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while server.clickhouse(&sql).await.trim().parse::<u64>() != Ok(n) {
        assert!(
            std::time::Instant::now() < deadline,
            "{n} rows of {id} not stored"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The rollups' view of the last day.
fn last_day_filter(tenant: Option<&str>) -> EventFilter {
    EventFilter {
        tenant: tenant.map(str::to_owned),
        range: TimeRange::Last24Hours,
        limit: 500,
        within: Vec::new(),
    }
}

/// `(actor, source service)` of each row, sorted: which events are there.
fn who(rows: impl Iterator<Item = (String, String)>) -> Vec<(String, String)> {
    let mut rows: Vec<_> = rows.collect();
    rows.sort();
    rows
}

fn pair(actor: &str, service: &str) -> (String, String) {
    (actor.to_owned(), service.to_owned())
}

/// The reproduction from issue 11: service `billing` records that mallory
/// deleted an invoice, then service `sso`, with another key of the same
/// tenant, sends the same id, time and category saying alice viewed it.
/// (Creating the keys adds `api_key.create` events to the tenant's trail;
/// the checks look at the invoice's events.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_different_event_with_a_used_id_never_replaces_or_hides_the_first() {
    let mut config = common::test_config();
    config.ingest.require_api_key = true;
    let server = common::start(config.clone()).await;
    let (billing, sso) = (api_key(&config, "billing"), api_key(&config, "sso"));
    let at = attest_server::ingest::now_ms() - 5 * MINUTE;
    let sent = |action: &str, actor: &str| {
        json!({
            "event_id": "inv-7731", "occurred_at": at, "category": "data_modification",
            "action": action, "outcome": "failure", "actor": {"id": actor, "type": "user"},
            "resource": {"type": "invoice", "id": "7731"},
        })
    };
    let (status, body) = post_with_key(&server, &billing, &sent("invoice.delete", "mallory")).await;
    assert_eq!(status, 202, "{body}");
    wait_stored(&server, "inv-7731", 1).await;
    let (status, body) = post_with_key(&server, &sso, &sent("invoice.view", "alice")).await;
    assert_eq!(status, 202, "{body}");
    wait_stored(&server, "inv-7731", 2).await;
    let both = vec![pair("alice", "sso"), pair("mallory", "billing")];

    // Storage: a full merge keeps both.
    server.clickhouse("OPTIMIZE TABLE audit_events FINAL").await;
    let stored = server
        .clickhouse(
            "SELECT actor_id, source_service FROM audit_events \
             WHERE event_id = 'inv-7731' FORMAT TSV",
        )
        .await;
    let stored = who(tsv_lines(&stored)
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone())));
    assert_eq!(stored, both, "after OPTIMIZE … FINAL");

    // Search, its count, and the export.
    let store = store(&server);
    let now = attest_server::ingest::now_ms();
    let search = query("resource.type:invoice", Some("acme"), last_day());
    let pages = all_pages(&store, search.clone(), now).await;
    let hits: Vec<_> = pages.into_iter().flat_map(|p| p.hits).collect();
    assert_eq!(
        who(hits
            .iter()
            .map(|h| (h.actor_id.clone(), h.source_service.clone()))),
        both
    );
    assert_ne!(hits[0].content_hash, hits[1].content_hash);
    let facets = EventStore::facets(&store, &search, now).await.unwrap();
    assert_eq!(facets.total, 2);
    let (status, _, body) = export(
        &server,
        &[
            ("q", "resource.type:invoice".into()),
            ("tenant", "acme".into()),
            ("format", "ndjson".into()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let exported = body.lines().map(|l| {
        let row: Value = serde_json::from_str(l).unwrap();
        (
            row["actor_id"].as_str().unwrap().to_owned(),
            row["source_service"].as_str().unwrap().to_owned(),
        )
    });
    assert_eq!(who(exported), both);

    // The Events page (Search's pages), for the tenant and for every tenant.
    for tenant in [Some("acme"), None] {
        let pages = all_pages(&store, query("", tenant, last_day()), now).await;
        let shown = pages
            .iter()
            .flat_map(|p| &p.hits)
            .filter(|e| e.event_id == "inv-7731")
            .map(|e| (e.actor_id.clone(), e.source_service.clone()));
        assert_eq!(who(shown), both, "Events page for {tenant:?}");
    }

    // The rollups count two failures, one by each actor.
    let activity = EventStore::activity(&store, &last_day_filter(Some("acme")), now)
        .await
        .unwrap();
    let failures: u64 = activity
        .buckets
        .iter()
        .filter(|b| b.outcome == "failure")
        .map(|b| b.events)
        .sum();
    assert_eq!(failures, 2);
    let failing: Vec<_> = activity
        .top_failing_actors
        .iter()
        .map(|a| (a.actor_id.as_str(), a.failures))
        .collect();
    assert_eq!(failing, [("alice", 1), ("mallory", 1)]);

    // Detail: the first received by default, either one by its hash, and a
    // warning that lists both.
    let detail = |h: Option<&str>| {
        let mut form = vec![
            ("tenant", "acme".to_string()),
            ("id", "inv-7731".to_string()),
        ];
        form.extend(h.map(|h| ("h", h.to_string())));
        let server = &server;
        async move {
            let (status, answer) = server_fn(server, "search/event", &form).await;
            assert_eq!(status, 200, "{answer}");
            answer
        }
    };
    let first = detail(None).await;
    assert_eq!(first["actor_id"], "mallory", "{first}");
    let same_id = first["same_id"].as_array().expect("same_id");
    assert_eq!(same_id.len(), 2, "{first}");
    for other in same_id {
        let hash = other["content_hash"].as_str().unwrap();
        let shown = detail(Some(&hash[..16])).await;
        assert_eq!(shown["content_hash"], hash);
        assert_eq!(shown["actor_id"], other["actor_id"]);
        assert_eq!(shown["same_id"].as_array().map(Vec::len), Some(2));
    }
    assert_eq!(detail(Some("0123456789abcdef")).await, Value::Null);
    let (status, _) = server_fn(
        &server,
        "search/event",
        &[
            ("tenant", "acme".into()),
            ("id", "inv-7731".into()),
            ("h", "ZZ'".into()),
        ],
    )
    .await;
    assert_eq!(status, 400);

    // The page as the server renders it names the conflict and links both.
    let page = server
        .http
        .get(format!("{}/events/acme/inv-7731", server.base_url))
        .send()
        .await
        .expect("attest reachable");
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("2 different events were sent with this id."),
        "{html}"
    );
    for other in same_id {
        let hash = other["content_hash"].as_str().unwrap();
        assert!(html.contains(&format!("h={}", &hash[..16])), "{html}");
    }
    server.stop().await;
}

/// A client retry posts the same event twice, and a writer re-delivery
/// inserts the same batch twice: each event counts once in every query and
/// the rollups, and storage keeps one row each once merged. A re-send with
/// one metadata value changed is no re-send: it counts as an event of its
/// own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exact_resend_counts_once_everywhere() {
    let server = common::start(common::test_config()).await;
    keep_duplicates(&server).await;
    let now = attest_server::ingest::now_ms();
    let retried = with(
        event("retried", "acme", now - 3 * MINUTE),
        json!({"outcome": "failure", "metadata": {"b": "2", "a": "1"}}),
    );
    let altered = with(retried.clone(), json!({"metadata": {"b": "3", "a": "1"}}));
    seed(&server, &[retried.clone(), retried]).await;
    let batch: Vec<Value> = (0..3)
        .map(|i| {
            with(
                event(&format!("batch-{i}"), "acme", now - MINUTE),
                json!({"outcome": "denied", "actor": {"id": "mallory"}}),
            )
        })
        .collect();
    seed_direct(&server, &batch).await;
    seed_direct(&server, &batch).await;
    assert_eq!(
        server.row_count().await,
        8,
        "every copy is stored until merged"
    );

    let store = store(&server);
    let at = attest_server::ingest::now_ms();
    let search = query("", None, last_day());
    let mut ids: Vec<String> = all_pages(&store, search.clone(), at)
        .await
        .into_iter()
        .flat_map(|p| p.hits.into_iter().map(|h| h.event_id))
        .collect();
    ids.sort();
    assert_eq!(ids, ["batch-0", "batch-1", "batch-2", "retried"]);
    assert_eq!(
        EventStore::facets(&store, &search, at).await.unwrap().total,
        4
    );
    let activity = EventStore::activity(&store, &last_day_filter(None), at)
        .await
        .unwrap();
    assert_eq!(activity.buckets.iter().map(|b| b.events).sum::<u64>(), 4);
    let failing: Vec<_> = activity
        .top_failing_actors
        .iter()
        .map(|a| (a.actor_id.as_str(), a.failures))
        .collect();
    assert_eq!(failing, [("mallory", 3), ("someone", 1)]);
    let month_start = (now / 1000) - 40 * 86_400;
    let tenants = store
        .tenants_between(month_start, now / 1000 + 86_400)
        .await
        .unwrap();
    assert_eq!(tenants, [("acme".to_string(), 4)]);
    let detail = EventStore::event_detail(&store, "acme", "retried", None, None)
        .await
        .unwrap()
        .expect("found");
    assert_eq!(detail.same_id.len(), 1, "a re-send is no conflict");

    // Once merged, one row per event.
    server.clickhouse("SYSTEM START MERGES audit_events").await;
    common::assert_exactly(&server.http, &server.config, &ids).await;

    // One value changed: a second event with that id, kept and counted.
    seed(&server, &[altered]).await;
    server.clickhouse("OPTIMIZE TABLE audit_events FINAL").await;
    assert_eq!(server.row_count().await, 5);
    let at = attest_server::ingest::now_ms();
    assert_eq!(
        EventStore::facets(&store, &search, at).await.unwrap().total,
        5
    );
    let detail = EventStore::event_detail(&store, "acme", "retried", None, None)
        .await
        .unwrap()
        .expect("found");
    assert_eq!(detail.same_id.len(), 2, "a changed re-send is a conflict");
    server.stop().await;
}

/// Two tenants choose the same id for their own events: each tenant's
/// event is its own, on the all-tenant Events page too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tenants_with_one_id_both_appear_on_the_events_page() {
    let server = common::start(common::test_config()).await;
    let now = attest_server::ingest::now_ms();
    seed(
        &server,
        &[
            event("order-1", "acme", now - MINUTE),
            event("order-1", "globex", now - MINUTE),
        ],
    )
    .await;
    let pages = all_pages(&store(&server), query("", None, last_day()), now + 1000).await;
    let mut shown: Vec<_> = pages
        .iter()
        .flat_map(|p| &p.hits)
        .map(|e| format!("{}/{}", e.tenant_id, e.event_id))
        .collect();
    shown.sort();
    assert_eq!(shown, ["acme/order-1", "globex/order-1"]);
    server.stop().await;
}

/// Events that share id and time differ only in their content hash; paging
/// one row at a time reaches each of them once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_by_one_reaches_every_event_sent_with_one_id_and_time() {
    let server = common::start(common::test_config()).await;
    let at = attest_server::ingest::now_ms() - MINUTE;
    let events: Vec<Value> = ["alice", "bob", "carol"]
        .iter()
        .map(|actor| with(event("same", "acme", at), json!({"actor": {"id": actor}})))
        .chain([
            event("before", "acme", at - 1),
            event("after", "acme", at + 1),
        ])
        .collect();
    seed(&server, &events).await;
    let mut search = query("", Some("acme"), last_day());
    search.limit = 1;
    let pages = all_pages(&store(&server), search, attest_server::ingest::now_ms()).await;
    let seen: Vec<String> = pages
        .iter()
        .flat_map(|p| {
            p.hits
                .iter()
                .map(|h| format!("{}:{}", h.event_id, h.actor_id))
        })
        .collect();
    assert_eq!(pages.iter().map(|p| p.hits.len()).max(), Some(1));
    assert_eq!(seen.len(), 5, "{seen:?}");
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "after:someone",
            "before:someone",
            "same:alice",
            "same:bob",
            "same:carol"
        ]
    );
    assert_eq!(seen.first().map(String::as_str), Some("after:someone"));
    assert_eq!(seen.last().map(String::as_str), Some("before:someone"));
    server.stop().await;
}
