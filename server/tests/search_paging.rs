//! Search pages, exports and hostile input against the real stack: keyset
//! pages visit each event once while new ones arrive, an export holds
//! exactly what a direct query finds, and no parameter reaches the SQL.

mod common;
mod search_support;

use std::collections::HashSet;

use app::search_state::Cursor;
use app::store::EventStore;
use serde_json::{json, Value};

use search_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pages_visit_each_event_once_while_new_events_arrive() {
    let server = common::start(common::test_config()).await;
    let now = attest_server::ingest::now_ms();
    let base = now - MINUTE;
    // 10,000 events in acme, four per millisecond-exact timestamp so the
    // cursor's tie-breaks matter; 500 of the same ids and times in globex,
    // so even (occurred_at, event_id) ties across tenants; and acme's first
    // 500 stored twice, as a re-delivered batch leaves them. Written
    // straight to ClickHouse: the late events below take the whole path.
    let at = |i: i64| base - (i / 4) * 1_000;
    let mut events: Vec<Value> = (0..10_000)
        .map(|i| event(&format!("p-{i:05}"), "acme", at(i)))
        .collect();
    events.extend((0..500).map(|i| event(&format!("p-{i:05}"), "globex", at(i))));
    let copies: Vec<Value> = events[..500].to_vec();
    keep_duplicates(&server).await;
    seed_direct(&server, &events).await;
    seed_direct(&server, &copies).await;
    assert_eq!(server.row_count().await, 11_000, "copies are stored");
    assert_eq!(distinct_events(&server).await, 10_500);
    let expected: HashSet<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["tenant_id"].as_str().unwrap().to_owned(),
                e["event_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(expected.len(), 10_500);

    let store = store(&server);
    let mut search = query("", None, last_day());
    // An odd page size puts page boundaries between the two tenants' rows
    // of one (occurred_at, event_id), where the cursor's last tie-break acts.
    search.limit = 97;
    let first_now = attest_server::ingest::now_ms();
    let mut pages = Vec::new();
    let mut late = 0;
    loop {
        let page = EventStore::search(&store, &search, attest_server::ingest::now_ms())
            .await
            .unwrap();
        assert!(page.hits.len() <= 97);
        if !pages.is_empty() {
            assert_eq!(
                page.snapshot_ms,
                pages
                    .iter()
                    .map(|p: &app::search_model::SearchPage| p.snapshot_ms)
                    .next()
                    .unwrap(),
                "the snapshot is kept"
            );
        }
        let next = page.next_cursor.clone();
        pages.push(page);
        // New events between pages, newer and older than the cursor: none
        // may show up in this search's pages.
        if pages.len() % 10 == 1 {
            let batch: Vec<Value> = (0..10)
                .map(|k| {
                    let tenant = if k % 2 == 0 { "acme" } else { "globex" };
                    event(
                        &format!("late-{late}-{k}"),
                        tenant,
                        base - k * 60_000 + 30_000,
                    )
                })
                .collect();
            // In ClickHouse before the next page, so a page that ignored
            // the snapshot would show them.
            seed(&server, &batch).await;
            late += 10;
        }
        match next {
            Some(token) => search.cursor = Some(Cursor::decode(&token).unwrap()),
            None => break,
        }
    }
    let (shown, total) = count_pairs(&pages);
    assert_eq!(total, 10_500, "each event exactly once");
    assert_eq!(shown, expected);
    assert_eq!(pages.len(), 10_500_usize.div_ceil(97));
    assert!(pages[0].snapshot_ms >= first_now);
    // Newest first across pages: (occurred_at, event_id, tenant) descending.
    let order: Vec<(i64, String, String)> = pages
        .iter()
        .flat_map(|p| {
            p.hits
                .iter()
                .map(|h| (h.occurred_at, h.event_id.clone(), h.tenant_id.clone()))
        })
        .collect();
    assert!(order.windows(2).all(|w| w[0] > w[1]), "strictly descending");

    // The late events are in; the pages' snapshot counts them as newer.
    assert_eq!(distinct_events(&server).await, 10_500 + late as u64);
    let now = attest_server::ingest::now_ms();
    let newer = EventStore::newer_events(&store, &search, pages[0].snapshot_ms, now)
        .await
        .unwrap();
    assert_eq!(newer, late as u64);
    let later_page = EventStore::search(&store, &search, now).await.unwrap();
    assert_eq!(
        later_page.newer, late as u64,
        "a later page reports them too"
    );
    let acme_newer = EventStore::newer_events(
        &store,
        &query("", Some("acme"), last_day()),
        pages[0].snapshot_ms,
        now,
    )
    .await
    .unwrap();
    assert_eq!(acme_newer, late as u64 / 2);

    // One tenant, bigger pages: its 10,000 events plus its late ones, once.
    let mut acme = query("", Some("acme"), last_day());
    acme.limit = 500;
    let (shown, total) = count_pairs(&all_pages(&store, acme, now).await);
    assert_eq!((shown.len(), total), (10_000 + late / 2, 10_000 + late / 2));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_holds_exactly_what_a_direct_query_finds() {
    let server = common::start(common::test_config()).await;
    let now = attest_server::ingest::now_ms();
    // 100,000 events over the last 14 hours, one in five in another
    // tenant, and the first 1,000 stored twice.
    let events: Vec<Value> = (0..100_000)
        .map(|i: i64| {
            let outcome = ["success", "failure", "denied"][(i % 3) as usize];
            with(
                event(
                    &format!("x-{i}"),
                    if i % 5 == 0 { "globex" } else { "acme" },
                    now - i * 500,
                ),
                json!({
                    "outcome": outcome,
                    "metadata": {"note": "comma, \"quote\" and\nnewline", "i": i.to_string()},
                }),
            )
        })
        .collect();
    // Text a spreadsheet would run as a formula, in one of acme's failures.
    let mut events = events;
    events[1] = with(
        events[1].clone(),
        json!({"actor": {"id": "=HYPERLINK(\"http://evil.example\",\"x\")"}, "resource": {"type": "@SUM(1+1)", "id": "-2+3"}, "action": "+cmd", "request_id": "'already quoted"}),
    );
    keep_duplicates(&server).await;
    seed_direct(&server, &events).await;
    seed_direct(&server, &events[..1_000]).await;
    assert_eq!(server.row_count().await, 101_000, "copies are stored");

    for (q, condition) in [("", "1"), ("outcome:failure", "outcome = 'failure'")] {
        let direct = server
            .clickhouse(&format!("SELECT DISTINCT event_id FROM audit_events WHERE tenant_id = 'acme' AND {condition} FORMAT TSV"))
            .await;
        let mut expected: Vec<String> = direct.lines().map(str::to_owned).collect();
        expected.sort();
        let generated = events
            .iter()
            .filter(|e| e["tenant_id"] == "acme" && (q.is_empty() || e["outcome"] == "failure"))
            .count();
        assert_eq!(expected.len(), generated, "the direct query for {q:?}");

        let params = |format: &str| {
            vec![
                ("format", format.to_string()),
                ("q", q.to_string()),
                ("tenant", "acme".to_string()),
                ("range", "24h".to_string()),
            ]
        };
        // The page names the download to follow its progress.
        let token = format!("progress-of-export-{}", q.len());
        let mut named = params("csv");
        named.push(("progress", token.clone()));
        let (status, headers, body) = export(&server, &named).await;
        assert_eq!(status, 200, "{body}");
        let (_, progress) = server_fn(
            &server,
            "search/export_progress",
            &[("token", token.clone())],
        )
        .await;
        assert_eq!(
            (&progress["state"], &progress["sent"], &progress["total"]),
            (
                &json!("Done"),
                &json!(expected.len()),
                &json!(expected.len())
            ),
            "progress of the CSV export for {q:?}: {progress}"
        );
        let disposition = headers["content-disposition"].to_str().unwrap();
        assert!(
            disposition.starts_with("attachment; filename=\"attest-events-acme-"),
            "{disposition}"
        );
        assert!(headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv"));
        let rows = parse_csv(&body);
        assert_eq!(rows[0][..3], ["event_id", "tenant_id", "occurred_at"]);
        let mut ids: Vec<String> = rows[1..].iter().map(|r| r[0].clone()).collect();
        assert_eq!(ids.len(), expected.len(), "one row per event for {q:?}");
        assert_eq!(
            headers["x-attest-export-rows"].to_str().unwrap(),
            expected.len().to_string()
        );
        ids.sort();
        assert_eq!(ids, expected, "csv for {q:?}");
        // Metadata arrays are array literals inside one quoted CSV field.
        assert!(
            body.contains(r#"'comma, ""quote"" and\nnewline'"#),
            "CSV quoting"
        );
        // Formulas are neutralised in CSV, and a leading quote doubled,
        // so that removing one leading `'` gives back the stored text.
        {
            let first = rows.iter().find(|r| r[0] == "x-1").expect("x-1 exported");
            let column = |name: &str| {
                let at = rows[0].iter().position(|c| c == name).expect(name);
                first[at].as_str()
            };
            assert_eq!(
                column("actor_id"),
                "'=HYPERLINK(\"http://evil.example\",\"x\")"
            );
            assert_eq!(column("resource_type"), "'@SUM(1+1)");
            assert_eq!(column("resource_id"), "'-2+3");
            assert_eq!(column("action"), "'+cmd");
            assert_eq!(column("request_id"), "''already quoted");
            assert_eq!(column("outcome"), "failure");
        }

        let (status, headers, body) = export(&server, &params("ndjson")).await;
        assert_eq!(status, 200);
        assert_eq!(headers["content-type"], "application/x-ndjson");
        let lines: Vec<Value> = body
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
            .collect();
        assert!(lines
            .iter()
            .all(|l| l["occurred_at"].is_i64() && l["metadata_key"].is_array()));
        let newest_first: Vec<i64> = lines
            .iter()
            .map(|l| l["occurred_at"].as_i64().unwrap())
            .collect();
        assert!(newest_first.windows(2).all(|w| w[0] >= w[1]));
        let mut ids: Vec<String> = lines
            .iter()
            .map(|l| l["event_id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        assert_eq!(ids, expected, "ndjson for {q:?}");
        // NDJSON keeps every value exactly as stored.
        {
            let first = lines.iter().find(|l| l["event_id"] == "x-1").unwrap();
            assert_eq!(
                first["actor_id"],
                "=HYPERLINK(\"http://evil.example\",\"x\")"
            );
            assert_eq!(first["action"], "+cmd");
            assert_eq!(first["request_id"], "'already quoted");
        }
    }

    // Refusals are JSON and name what is wrong; a followed one says so.
    let token = "refused-export-0001".to_string();
    let (status, _, body) = export(
        &server,
        &[("q", "actor:\"bob".into()), ("progress", token.clone())],
    )
    .await;
    let (_, progress) = server_fn(&server, "search/export_progress", &[("token", token)]).await;
    assert_eq!(progress["state"], "Failed", "{progress}");
    assert!(progress["message"]
        .as_str()
        .unwrap()
        .contains("the search has an error"));
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (status, error["error"].as_str(), error["position"].as_u64()),
        (400, Some("bad_query"), Some(6)),
        "{body}"
    );
    let (status, _, body) = export(&server, &[("format", "xlsx".into())]).await;
    assert_eq!(status, 400, "{body}");
    let (status, _, body) = export(&server, &[("from", "2026-02-30".into())]).await;
    assert!(status == 400 && body.contains("from: "), "{body}");
    server.stop().await;
}

/// Payloads that break naive SQL, URL, header or cursor handling.
const HOSTILE: &[&str] = &[
    "' OR 1=1 --",
    "acme' OR '1'='1",
    "acme\\' OR 1=1 --",
    "'; DROP TABLE audit_events; --",
    "\") OR (\"1\"=\"1",
    "x) OR (1=1",
    "?",
    "??",
    "?fields",
    "{tenant:String}",
    "`audit_events`",
    "acme\0",
    "acme\r\nX-Injected: 1",
    "%27%20OR%201%3D1",
    "../../../etc/passwd",
    "1.2.61636d65.27204f5220313d31",
    "9999999999999999999999",
    "Ωmega 🙂 \u{202e}",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_in_any_parameter_finds_nothing_extra_and_never_fails_with_500() {
    let server = common::start(common::test_config()).await;
    let now = attest_server::ingest::now_ms();
    let events: Vec<Value> = (0..20)
        .map(|i| {
            event(
                &format!("h-{i}"),
                if i % 2 == 0 { "acme" } else { "globex" },
                now - i * 1_000,
            )
        })
        .collect();
    seed(&server, &events).await;
    let acme: HashSet<String> = (0..20).step_by(2).map(|i| format!("h-{i}")).collect();

    let long = "x".repeat(10_000);
    let payloads = HOSTILE.iter().copied().chain([long.as_str()]);
    for payload in payloads {
        for param in [
            "q", "tenant", "range", "from", "to", "cursor", "cols", "format",
        ] {
            // Only acme's events may come back, and none for a bad tenant.
            let allowed = if param == "tenant" {
                HashSet::new()
            } else {
                acme.clone()
            };
            let mut pairs = vec![("tenant", "acme".to_string())];
            pairs.retain(|(k, _)| *k != param);
            pairs.push((param, payload.to_string()));

            let (status, _, body) = export(&server, &pairs).await;
            assert!(
                matches!(status, 200 | 400),
                "export {param}={payload:?}: {status} {body}"
            );
            if status == 200 {
                let found: HashSet<String> = parse_csv(&body)
                    .into_iter()
                    .skip(1)
                    .map(|r| r[0].clone())
                    .collect();
                assert!(
                    found.is_subset(&allowed),
                    "export {param}={payload:?} found {found:?}"
                );
            }

            let (status, answer) = server_fn(&server, "search/page", &pairs).await;
            assert!(
                matches!(status, 200 | 400),
                "search {param}={payload:?}: {status} {answer}"
            );
            if status == 200 {
                let found: HashSet<String> = answer["hits"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| h["event_id"].as_str().unwrap().to_owned())
                    .collect();
                assert!(
                    found.is_subset(&allowed),
                    "search {param}={payload:?} found {found:?}"
                );
            }
            let (status, answer) = server_fn(&server, "search/facets", &pairs).await;
            assert!(
                matches!(status, 200 | 400),
                "facets {param}={payload:?}: {status} {answer}"
            );
        }
        for (tenant, id) in [(payload, "h-0"), ("acme", payload)] {
            let form = [("tenant", tenant.to_string()), ("id", id.to_string())];
            let (status, answer) = server_fn(&server, "search/event", &form).await;
            assert_eq!(
                (status, &answer),
                (200, &Value::Null),
                "event {tenant:?}/{id:?}"
            );
        }
    }
    // Nothing was changed or dropped along the way.
    assert_eq!(server.row_count().await, 20);
    server.stop().await;
}
