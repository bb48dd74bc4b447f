//! The console's own reads are evidence: searches, event views and
//! saved-search changes by a signed-in viewer land in Attest's own trail
//! (tenant `attest`) with the viewer as actor, identical searches within
//! `console.read_window` as one event with a count; an auditor reads that
//! trail and changes nothing; an analyst without `attest` in the grant
//! does not see it.

mod common;
mod console_support;
mod search_support;

use std::time::{Duration, Instant};

use serde_json::Value;

use console_support::{grant, Browser};
use search_support::{event, seed, MINUTE};

/// Polls `sql` until it answers `expected` (the writer batches), or fails
/// with what it answered last.
async fn trail(server: &common::TestServer, sql: &str, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = server.clickhouse(sql).await;
        if got == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{sql}\n got: {got}\nwant: {expected}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn meta(key: &str) -> String {
    format!("arrayElement(metadata.value, indexOf(metadata.key, '{key}'))")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_recorded_and_an_auditor_reads_them_and_changes_nothing() {
    let mut config = common::test_config();
    config.console.require_login = true;
    config.console.access_refresh = Duration::from_millis(200);
    // Long enough that the rapid searches below fall in one window on a
    // loaded machine; the test waits for it to close.
    config.console.read_window = Duration::from_secs(8);
    let server = common::start(config.clone()).await;
    let now = attest_server::ingest::now_ms();
    seed(
        &server,
        &[
            event("a-1", "acme", now - MINUTE),
            event("g-1", "globex", now - MINUTE),
        ],
    )
    .await;

    let alice_key = grant(
        &config,
        &["--name", "alice@acme.example", "--tenant", "acme"],
    );
    let auditor_key = grant(
        &config,
        &[
            "--name",
            "auditor-1",
            "--tenant",
            "globex",
            "--role",
            "auditor",
        ],
    );
    let bob_key = grant(&config, &["--name", "bob@acme.example", "--tenant", "acme"]);

    // Alice searches the same thing five times, then something else once,
    // opens her event and tries another tenant's, saves and deletes a search.
    let mut alice = Browser::new(&server.base_url);
    alice.sign_in(&alice_key, "/search").await;
    let logins = [
        ("q", "action:user.login"),
        ("range", "24h"),
        ("tenant", "acme"),
    ];
    for _ in 0..5 {
        let (status, page) = alice.call("search/page", &logins).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["hits"].as_array().map(Vec::len), Some(1), "{page}");
    }
    let (status, _) = alice
        .call(
            "search/page",
            &[("q", "action:user.login outcome:success"), ("range", "24h")],
        )
        .await;
    assert_eq!(status, 200);
    let (status, detail) = alice
        .call("search/event", &[("tenant", "acme"), ("id", "a-1")])
        .await;
    assert_eq!((status, &detail["event_id"]), (200, &Value::from("a-1")));
    let (status, detail) = alice
        .call("search/event", &[("tenant", "globex"), ("id", "g-1")])
        .await;
    assert_eq!((status, detail), (200, Value::Null));
    let (status, saved) = alice
        .call(
            "search/saved/save",
            &[
                ("name", "logins"),
                ("q", "action:user.login"),
                ("tenant", "acme"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{saved}");
    let saved_id = saved["id"].as_str().unwrap().to_owned();
    let (status, answer) = alice
        .call("search/saved/delete", &[("id", saved_id.as_str())])
        .await;
    assert_eq!(status, 200, "{answer}");

    // All of it in Attest's own trail, with alice as actor and her access
    // id, the five identical searches as one event counting five.
    let alice_id = &alice_key[4..20];
    trail(
        &server,
        &format!(
            "SELECT action, outcome, resource_type, resource_id, {q}, {tenants}, {window}, \
             {results}, {count}, {access} FROM audit_events \
             WHERE tenant_id = 'attest' AND actor_id = 'alice@acme.example' \
             AND action NOT LIKE 'console.sign%' \
             ORDER BY action, {q}, resource_id FORMAT TSV",
            q = meta("query"),
            tenants = meta("tenants"),
            window = meta("window"),
            results = meta("results"),
            count = meta("count"),
            access = meta("access_id"),
        ),
        &format!(
            "console.event_view\tsuccess\taudit_event\ta-1\t\t\t\t\t1\t{alice_id}\n\
             console.event_view\tfailure\taudit_event\tg-1\t\t\t\t\t1\t{alice_id}\n\
             console.search\tsuccess\taudit_events\tacme\taction:user.login\tacme\tlast 24h\t1\t5\t{alice_id}\n\
             console.search\tsuccess\taudit_events\tacme\taction:user.login outcome:success\tacme\tlast 24h\t1\t1\t{alice_id}\n\
             saved_search.create\tsuccess\tsaved_search\t{saved_id}\t\t\t\t\t1\t{alice_id}\n\
             saved_search.delete\tsuccess\tsaved_search\t{saved_id}\t\t\t\t\t1\t{alice_id}\n"
        ),
    )
    .await;
    trail(
        &server,
        &format!(
            "SELECT {tenant}, category FROM audit_events WHERE tenant_id = 'attest' \
             AND action = 'console.event_view' ORDER BY resource_id FORMAT TSV",
            tenant = meta("tenant")
        ),
        "acme\tdata_access\nglobex\tdata_access\n",
    )
    .await;
    // No session cookie and no key in the trail.
    let cookie = alice.cookie.clone().unwrap();
    let signature = cookie.rsplit('.').next().unwrap().to_owned();
    for secret in [signature.as_str(), &alice_key[21..]] {
        let found = server
            .clickhouse(&format!(
                "SELECT count() FROM audit_events \
                 WHERE arrayExists(v -> position(v, '{secret}') > 0, metadata.value) FORMAT TSV"
            ))
            .await;
        assert_eq!(found.trim(), "0", "a secret reached the trail");
    }

    // The auditor sees the trail beside their tenant, opens its events and
    // exports it, and changes nothing.
    let mut auditor = Browser::new(&server.base_url);
    auditor.sign_in(&auditor_key, "/search").await;
    let (_, viewer) = auditor.call("session/viewer", &[]).await;
    assert_eq!(viewer["tenants"], serde_json::json!(["attest", "globex"]));
    assert_eq!(viewer["role"], "auditor");
    let (status, page) = auditor
        .call(
            "search/page",
            &[
                ("q", "action:console.search"),
                ("range", "24h"),
                ("tenant", "attest"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    // Alice's two (the auditor's own may follow once their window closes).
    let hits: Vec<&Value> = page["hits"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["actor_id"] == "alice@acme.example")
        .collect();
    assert_eq!(hits.len(), 2, "{page}");
    let first = hits[0]["event_id"].as_str().unwrap().to_owned();
    let first = first.as_str();
    let (status, detail) = auditor
        .call("search/event", &[("tenant", "attest"), ("id", first)])
        .await;
    assert_eq!(status, 200);
    assert_eq!(detail["event_id"], first, "{detail}");
    let export = auditor
        .get("/api/v1/export?format=ndjson&range=24h&tenant=attest&q=action%3Aconsole.search")
        .await;
    assert_eq!(export.status().as_u16(), 200);
    let exported = export.text().await.unwrap();
    let by_alice = exported
        .lines()
        .filter(|l| l.contains("\"alice@acme.example\""))
        .count();
    assert_eq!(by_alice, 2, "{exported}");
    let (status, answer) = auditor.call("search/page", &[("tenant", "acme")]).await;
    assert_eq!(status, 403, "{answer}");
    let (status, answer) = auditor
        .call(
            "search/saved/save",
            &[("name", "mine"), ("tenant", "attest")],
        )
        .await;
    assert_eq!(status, 403, "{answer}");
    assert!(answer.to_string().contains("auditor"), "{answer}");
    let (status, answer) = auditor
        .call("search/saved/delete", &[("id", saved_id.as_str())])
        .await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(auditor.get("/pipeline").await.status().as_u16(), 403);
    let (status, _) = auditor.call("pipeline/snapshot", &[]).await;
    assert_eq!(status, 403);
    // The auditor's own reads are evidence too.
    trail(
        &server,
        "SELECT count() > 0 FROM audit_events WHERE tenant_id = 'attest' \
         AND actor_id = 'auditor-1' AND action = 'console.event_view' FORMAT TSV",
        "1\n",
    )
    .await;

    // An analyst without `attest` in the grant does not see the trail.
    let mut bob = Browser::new(&server.base_url);
    bob.sign_in(&bob_key, "/search").await;
    let (status, answer) = bob
        .call("search/page", &[("tenant", "attest"), ("range", "24h")])
        .await;
    assert_eq!(status, 403, "{answer}");
    let (status, page) = bob
        .call(
            "search/page",
            &[("q", "action:console.search"), ("range", "24h")],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["hits"].as_array().map(Vec::len), Some(0), "{page}");
    let (status, detail) = bob
        .call("search/event", &[("tenant", "attest"), ("id", first)])
        .await;
    assert_eq!((status, detail), (200, Value::Null));
    server.stop().await;
}
