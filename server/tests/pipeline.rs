//! End to end through the real broker and ClickHouse: HTTP ingest → Kafka →
//! writer → ClickHouse.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use serde_json::{json, Value};

const CATEGORIES: [&str; 6] = [
    "authentication",
    "data_access",
    "data_modification",
    "permission_change",
    "admin",
    "system",
];
const OUTCOMES: [&str; 3] = ["success", "failure", "denied"];

/// A varied event: every optional field present on some, absent on others,
/// and metadata with characters that need escaping on every hop.
fn event(i: usize, now_ms: i64) -> Value {
    let mut e = json!({
        "tenant_id": format!("tenant-{}", i % 3),
        "occurred_at": now_ms - (i as i64) * 1_000,
        "category": CATEGORIES[i % 6],
        "action": format!("action.{}", i % 7),
        "outcome": OUTCOMES[i % 3],
        "actor": {"id": format!("user-{i}"), "type": if i.is_multiple_of(2) { "user" } else { "service" }},
        "source_service": format!("svc-{}", i % 4),
        "metadata": {
            "index": i.to_string(),
            "quote": "it's \"quoted\"\ttab\nnewline \\ backslash",
            "unicode": "Zürich 東京 🚀"
        }
    });
    if i.is_multiple_of(2) {
        // Half carry their own id, half get one assigned by Attest.
        e["event_id"] = json!(format!("client-{i}"));
        e["actor"]["ip"] = json!(if i.is_multiple_of(4) {
            "203.0.113.9"
        } else {
            "2001:db8::7"
        });
        e["actor"]["user_agent"] = json!("Mozilla/5.0 (X11; Linux x86_64)");
        e["request_id"] = json!(format!("req-{i}"));
    }
    if !i.is_multiple_of(5) {
        e["resource"] = json!({"type": "document", "id": format!("doc-{i}")});
    }
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_events_arrive_in_clickhouse_exactly_once_with_every_field_intact() {
    let server = common::start(common::test_config()).await;
    let now_ms = attest_server::ingest::now_ms();
    let sent: Vec<Value> = (0..1000).map(|i| event(i, now_ms)).collect();

    let responses: Vec<(usize, u16, Value)> = stream::iter(sent.iter().enumerate())
        .map(|(i, e)| {
            let server = &server;
            async move {
                let (status, body) = server.post_json(e.to_string()).await;
                (i, status, body)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;

    let mut expected: HashMap<String, &Value> = HashMap::new();
    for (i, status, body) in &responses {
        assert_eq!(*status, 202, "event {i} rejected: {body}");
        let id = body["event_id"]
            .as_str()
            .expect("event_id in response")
            .to_owned();
        if let Some(client_id) = sent[*i].get("event_id") {
            assert_eq!(
                client_id.as_str(),
                Some(id.as_str()),
                "client event_id kept"
            );
        }
        assert!(
            expected.insert(id, &sent[*i]).is_none(),
            "event ids are distinct"
        );
    }
    assert_eq!(expected.len(), 1000);

    let count = server.wait_for_rows(1000, Duration::from_secs(90)).await;
    assert_eq!(count, 1000, "rows in ClickHouse");
    let stats = server
        .clickhouse("SELECT count(), uniqExact(event_id) FROM audit_events FORMAT TSV")
        .await;
    assert_eq!(stats.trim(), "1000\t1000", "each event exactly once");

    let rows = server
        .clickhouse(
            "SELECT event_id, tenant_id, occurred_at, received_at, category, action, outcome, \
             actor_id, actor_type, actor_ip, actor_user_agent, resource_type, resource_id, \
             source_service, request_id, metadata.key AS mk, metadata.value AS mv, schema_id \
             FROM audit_events FORMAT JSONEachRow",
        )
        .await;
    let mut seen = 0;
    for line in rows.lines() {
        let row: Value = serde_json::from_str(line).expect("JSONEachRow line");
        let id = row["event_id"].as_str().expect("event_id");
        let sent = expected
            .get(id)
            .unwrap_or_else(|| panic!("unexpected event_id {id}"));
        let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
        assert_eq!(row["tenant_id"], sent["tenant_id"]);
        assert_eq!(
            common::as_i64(&row["occurred_at"]),
            sent["occurred_at"].as_i64().unwrap()
        );
        let received = common::as_i64(&row["received_at"]);
        assert!(
            (now_ms..now_ms + 600_000).contains(&received),
            "received_at {received}"
        );
        assert_eq!(row["category"], sent["category"]);
        assert_eq!(row["action"], sent["action"]);
        assert_eq!(row["outcome"], sent["outcome"]);
        assert_eq!(row["actor_id"], sent["actor"]["id"]);
        assert_eq!(row["actor_type"], sent["actor"]["type"]);
        assert_eq!(text(&row["actor_ip"]), text(&sent["actor"]["ip"]));
        assert_eq!(
            text(&row["actor_user_agent"]),
            text(&sent["actor"]["user_agent"])
        );
        assert_eq!(text(&row["resource_type"]), text(&sent["resource"]["type"]));
        assert_eq!(text(&row["resource_id"]), text(&sent["resource"]["id"]));
        assert_eq!(row["source_service"], sent["source_service"]);
        assert_eq!(text(&row["request_id"]), text(&sent["request_id"]));
        let keys = row["mk"].as_array().expect("keys");
        let values = row["mv"].as_array().expect("values");
        let metadata: HashMap<&str, &str> = keys
            .iter()
            .zip(values)
            .map(|(k, v)| (k.as_str().unwrap(), v.as_str().unwrap()))
            .collect();
        let sent_metadata: HashMap<&str, &str> = sent["metadata"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
            .collect();
        assert_eq!(metadata, sent_metadata, "metadata of {id}");
        assert_eq!(common::as_i64(&row["schema_id"]), 1);
        seen += 1;
    }
    assert_eq!(seen, 1000);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_requests_leave_no_trace_in_kafka_or_clickhouse() {
    let server = common::start(common::test_config()).await;
    let now_ms = attest_server::ingest::now_ms();
    let valid = event(1, now_ms);

    let mut missing = valid.clone();
    missing["actor"].as_object_mut().unwrap().remove("id");
    let mut wrong_type = valid.clone();
    wrong_type["occurred_at"] = json!({"when": "now"});
    let mut unknown = valid.clone();
    unknown["tennant"] = json!("typo");

    let cases: Vec<(&str, String, &str)> = vec![
        ("truncated JSON", r#"{"tenant_id": "acme", "#.to_owned(), ""),
        ("not an object", "[1, 2, 3]".to_owned(), ""),
        ("missing field", missing.to_string(), "actor.id"),
        ("wrong type", wrong_type.to_string(), "occurred_at"),
        ("unknown field", unknown.to_string(), "tennant"),
    ];
    for (name, body, field) in cases {
        let (status, json) = server.post_json(body).await;
        assert_eq!(status, 400, "{name}: {json}");
        assert_eq!(json["error"], "invalid_event", "{name}");
        let errors = json["errors"].as_array().expect("errors list");
        assert!(!errors.is_empty(), "{name}");
        assert_eq!(errors[0]["field_path"], field, "{name}: {json}");
        assert!(
            !errors[0]["problem"].as_str().unwrap_or("").is_empty(),
            "{name}"
        );
    }

    let wrong_media = server
        .http
        .post(format!("{}/api/v1/events", server.base_url))
        .header("content-type", "text/plain")
        .body(valid.to_string())
        .send()
        .await
        .expect("reachable");
    assert_eq!(wrong_media.status().as_u16(), 415);

    // A control event proves the pipeline was live while the others were refused.
    let (status, body) = server.post_json(valid.to_string()).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(server.wait_for_rows(1, Duration::from_secs(60)).await, 1);
    // Give a stray message time to surface, were there one.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        server.row_count().await,
        1,
        "only the valid event reached ClickHouse"
    );
    assert_eq!(
        server.kafka_message_count(),
        1,
        "only the valid event reached Kafka"
    );
    let metrics = server.metrics_text().await;
    assert!(
        metrics.contains("attest_ingest_events_total{result=\"rejected\"} 5"),
        "{metrics}"
    );
    assert!(
        metrics.contains("attest_ingest_events_total{result=\"accepted\"} 1"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn registry_serves_the_schema_that_frames_every_message() {
    let server = common::start(common::test_config()).await;
    let (status, subjects) = server.get_json("/subjects").await;
    assert_eq!((status, subjects), (200, json!(["dev.attest.AuditEvent"])));
    let (status, schema) = server.get_json("/schemas/ids/1").await;
    assert_eq!(status, 200);
    let text = schema["schema"].as_str().expect("schema is a JSON string");
    apache_avro::Schema::parse_str(text).expect("served schema parses");
    let (status, missing) = server.get_json("/schemas/ids/999").await;
    assert_eq!(
        (status, &missing["error_code"]),
        (404, &json!(40403)),
        "{missing}"
    );
    server.stop().await;
}

#[tokio::test]
async fn migrations_are_recorded_once_and_gated_by_server_version() {
    let config = common::test_config();
    let first = common::start(config.clone()).await;
    let version = first.clickhouse("SELECT version()").await;
    let major: u32 = version.trim().split('.').next().unwrap().parse().unwrap();
    first.running.shutdown().await;

    // A second start on the same database re-runs nothing and fails nothing.
    let mut again = config.clone();
    again.listen = "127.0.0.1:0".parse().unwrap();
    let second = common::start(again).await;
    let ledger = second
        .clickhouse("SELECT version FROM attest_schema_migrations ORDER BY version FORMAT TSV")
        .await;
    // 10 and 11 re-apply 2 and 3 to the table that 9 rebuilt, under the
    // same version gates.
    let expected = match major {
        0..=19 => "1\n4\n5\n6\n7\n8\n9\n12\n13\n14\n15\n16\n17\n18\n19\n20\n21\n22\n23\n24\n25\n26\n27\n28\n",
        20 => "1\n2\n4\n5\n6\n7\n8\n9\n10\n12\n13\n14\n15\n16\n17\n18\n19\n20\n21\n22\n23\n24\n25\n26\n27\n28\n",
        _ => "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n15\n16\n17\n18\n19\n20\n21\n22\n23\n24\n25\n26\n27\n28\n",
    };
    assert_eq!(ledger, expected, "ledger on ClickHouse {}", version.trim());
    second.stop().await;
}

/// Waits until the writer reports at least `n` rows inserted (re-inserted
/// duplicates included, unlike a row count that merges may shrink).
async fn wait_for_rows_written(server: &common::TestServer, n: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let written = server.rows_written().await;
        if written >= n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "writer wrote {written} of {n} rows"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn rollups_count_each_event_once_even_when_it_is_delivered_twice() {
    let server = common::start(common::test_config()).await;
    let now_ms = attest_server::ingest::now_ms();
    let events: Vec<Value> = (0..60)
        .map(|i| {
            let mut e = event(i, now_ms);
            e["event_id"] = json!(format!("roll-{i}"));
            e["actor"]["id"] = json!(format!("actor-{}", i % 4));
            e
        })
        .collect();
    // Every event twice, in two rounds: the second round is a client retry,
    // which reaches ClickHouse (and the rollup views) as a second row.
    for round in 1..=2u64 {
        for e in &events {
            let (status, body) = server.post_json(e.to_string()).await;
            assert_eq!(status, 202, "{body}");
        }
        wait_for_rows_written(&server, 60 * round).await;
    }

    let store = attest_server::store::Store::new(&server.config.clickhouse);
    let filter = app::model::EventFilter {
        tenant: Some("tenant-1".into()),
        range: app::model::TimeRange::Last24Hours,
        limit: 100,

        within: Vec::new(),
    };
    let activity = store
        .activity(&filter, now_ms + 60_000)
        .await
        .expect("activity query");

    let mut from_rollup: HashMap<String, u64> = HashMap::new();
    for b in &activity.buckets {
        assert_eq!(b.bucket_s % activity.bucket_s, 0, "bucket aligned: {b:?}");
        *from_rollup.entry(b.outcome.clone()).or_default() += b.events;
    }
    let direct = server
        .clickhouse(
            "SELECT outcome, uniqExact(event_id, content_hash) FROM audit_events \
             WHERE tenant_id = 'tenant-1' GROUP BY outcome ORDER BY outcome FORMAT TSV",
        )
        .await;
    let direct: HashMap<String, u64> = direct
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(o, n)| (o.to_owned(), n.parse().unwrap()))
        .collect();
    assert_eq!(from_rollup, direct);
    assert_eq!(
        from_rollup.values().sum::<u64>(),
        20,
        "tenant-1 has 20 events"
    );

    let direct_actors = server
        .clickhouse(
            "SELECT actor_id, uniqExact(event_id, content_hash) AS n FROM audit_events \
             WHERE tenant_id = 'tenant-1' AND outcome != 'success' \
             GROUP BY actor_id ORDER BY n DESC, actor_id FORMAT TSV",
        )
        .await;
    let from_rollup_actors: String = activity
        .top_failing_actors
        .iter()
        .map(|a| format!("{}\t{}\n", a.actor_id, a.failures))
        .collect();
    assert_eq!(from_rollup_actors, direct_actors);
    assert!(!activity.top_failing_actors.is_empty());
    server.stop().await;
}
