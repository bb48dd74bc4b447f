//! The pipeline page against the real stack: only admins see it (page,
//! server function and live stream), and its figures are the broker's:
//! events produced while no writer runs show as lag in messages and in
//! time, per partition, and the lag reaches 0 once a writer has written
//! them. Roles are granted through the binary, as an operator would.

mod common;
mod console_support;

use std::process::Command;
use std::time::{Duration, Instant};

use attest_server::config::Config;
use attest_server::event::{Actor, AuditEvent, Category, Outcome, Resource};
use attest_server::produce::{ensure_topics, EventProducer, Outgoing};
use attest_server::registry::Registry;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use reqwest::header::CONTENT_TYPE;
use serde_json::Value;

use console_support::{grant, Browser};

/// Produces `n` valid events straight to the data_access topic, which no
/// event of Attest's own goes to (those are sign-ins, grants and admin
/// actions), so its lag is exactly these.
async fn produce_data_access(config: &Config, n: usize) -> String {
    let registry = Registry::load(&config.schemas_dir).expect("registry");
    let mut topics = attest_server::topics::event_topics(&config.kafka.topic_prefix);
    topics.push(attest_server::topics::dead_letters(
        &config.kafka.topic_prefix,
    ));
    ensure_topics(&config.kafka, &topics).await.expect("topics");
    let topic =
        attest_server::topics::for_category(&config.kafka.topic_prefix, Category::DataAccess);
    let producer = EventProducer::new(&config.kafka).expect("producer");
    let now = attest_server::ingest::now_ms();
    for i in 0..n {
        let event = AuditEvent {
            event_id: format!("lag-{i}"),
            tenant_id: "acme".into(),
            occurred_at: now,
            received_at: now,
            category: Category::DataAccess,
            action: "record.read".into(),
            outcome: Outcome::Success,
            actor: Actor {
                id: "alice".into(),
                kind: "user".into(),
                ip: None,
                user_agent: None,
            },
            resource: Some(Resource {
                kind: "record".into(),
                id: format!("r-{i}"),
            }),
            source_service: "crm".into(),
            request_id: None,
            metadata: Default::default(),
        };
        let payload = registry.encode(&event).expect("encodes");
        producer
            .send(Outgoing {
                topic: &topic,
                key: &event.event_id,
                payload: &payload,
                headers: &[],
            })
            .await
            .expect("broker acknowledged");
    }
    topic
}

/// Messages per partition of `topic`, asked of the broker directly.
fn produced_per_partition(config: &Config, topic: &str) -> Vec<(i32, i64)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.brokers)
        .create()
        .expect("kafka client");
    (0..config.kafka.partitions)
        .map(|p| {
            let (low, high) = consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .expect("watermarks");
            (p, high - low)
        })
        .collect()
}

/// `(partition, lag in messages, lag in ms)` of every row the page
/// rendered for `topic`, read from its data attributes.
fn page_rows(html: &str, topic: &str) -> Vec<(i32, i64, Option<i64>)> {
    let attr = |row: &str, name: &str| -> Option<String> {
        let start = row.find(&format!(" {name}=\""))? + name.len() + 3;
        let end = row[start..].find('"')? + start;
        Some(row[start..end].to_owned())
    };
    html.split("<tr")
        .filter(|row| row.contains("data-testid=\"partition\""))
        .filter(|row| attr(row, "data-topic").as_deref() == Some(topic))
        .map(|row| {
            (
                attr(row, "data-partition").unwrap().parse().unwrap(),
                attr(row, "data-lag").unwrap().parse().unwrap(),
                attr(row, "data-lag-ms").and_then(|v| v.parse().ok()),
            )
        })
        .collect()
}

/// The same figures from a snapshot as JSON (server function or stream).
fn snapshot_rows(snapshot: &Value, topic: &str) -> Vec<(i32, i64, Option<i64>)> {
    snapshot["kafka"]["topics"]
        .as_array()
        .unwrap_or_else(|| panic!("topics in {snapshot}"))
        .iter()
        .filter(|t| t["topic"] == topic)
        .flat_map(|t| t["partitions"].as_array().unwrap().iter())
        .map(|p| {
            (
                p["partition"].as_i64().unwrap() as i32,
                p["lag_messages"].as_i64().unwrap(),
                p["lag_ms"].as_i64(),
            )
        })
        .collect()
}

/// Reads the live stream until its first snapshot.
async fn first_streamed_snapshot(browser: &Browser) -> Value {
    let mut response = browser.get("/api/pipeline/events").await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()[CONTENT_TYPE], "text/event-stream");
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("the stream sends within 10 s")
            .expect("stream readable")
            .expect("stream open");
        text.push_str(&String::from_utf8_lossy(&chunk));
        if let Some(at) = text.find("event: snapshot\ndata: ") {
            let rest = &text[at + "event: snapshot\ndata: ".len()..];
            if let Some(end) = rest.find("\n\n") {
                return serde_json::from_str(&rest[..end]).expect("snapshot JSON");
            }
        }
    }
    panic!("no snapshot on the stream: {text}");
}

fn access(config: &Config, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_attest"))
        .arg("access")
        .args(args)
        .envs(common::child_env(config))
        .output()
        .expect("attest access runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_see_the_pipeline_and_its_lag_is_the_brokers() {
    let mut config = common::test_config();
    config.console.require_login = true;
    config.console.access_refresh = Duration::from_millis(200);
    // No writer: what is produced stays as lag until one starts.
    config.writer.enabled = false;
    let server = common::start(config.clone()).await;

    // Roles: an unknown one is refused naming the flag; the list shows them.
    let refused = access(
        &config,
        &["grant", "--name", "x", "--all-tenants", "--role", "root"],
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("--role") && stderr.contains("admin, analyst or auditor"),
        "{stderr}"
    );
    let admin_key = grant(
        &config,
        &["--name", "oncall", "--all-tenants", "--role", "admin"],
    );
    let analyst_key = grant(&config, &["--name", "analyst-1", "--all-tenants"]);
    let list = access(&config, &["list"]);
    let list = String::from_utf8_lossy(&list.stdout);
    let role_of = |name: &str| {
        list.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .and_then(|l| l.split_whitespace().nth(3))
            .map(str::to_owned)
    };
    assert_eq!(role_of("oncall").as_deref(), Some("admin"), "{list}");
    assert_eq!(role_of("analyst-1").as_deref(), Some("analyst"), "{list}");

    // An analyst: 403 on the page, its server function and its stream,
    // and no figures anywhere in the answers.
    let mut analyst = Browser::new(&server.base_url);
    analyst.sign_in(&analyst_key, "/search").await;
    let page = analyst.get("/pipeline").await;
    assert_eq!(page.status().as_u16(), 403);
    let html = page.text().await.unwrap();
    assert!(html.contains("for admins only"), "{html}");
    assert!(!html.contains("data-testid=\"partition\""), "{html}");
    let (status, answer) = analyst.call("pipeline/snapshot", &[]).await;
    assert_eq!(status, 403, "{answer}");
    assert!(answer.get("kafka").is_none(), "{answer}");
    let stream = analyst.get("/api/pipeline/events").await;
    assert_eq!(stream.status().as_u16(), 403);
    let body: Value = stream.json().await.unwrap();
    assert_eq!(body["error"], "forbidden");
    assert!(
        !analyst
            .get("/search")
            .await
            .text()
            .await
            .unwrap()
            .contains("href=\"/pipeline\""),
        "no link for analysts"
    );

    // Events produced while no writer runs: the page shows them as lag.
    const N: usize = 9;
    let topic = produce_data_access(&config, N).await;
    let produced = produced_per_partition(&config, &topic);
    assert_eq!(produced.iter().map(|(_, n)| n).sum::<i64>(), N as i64);
    // A snapshot the server's samplers collected before the produce is
    // served for `FRESH`; the page must show the broker's figures after it.
    tokio::time::sleep(attest_server::health::pipeline::FRESH + Duration::from_millis(100)).await;

    let mut admin = Browser::new(&server.base_url);
    admin.sign_in(&admin_key, "/pipeline").await;
    let page = admin.get("/pipeline").await;
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("href=\"/pipeline\""), "admins get the link");
    let rows = page_rows(&html, &topic);
    assert_eq!(rows.len(), produced.len(), "{html}");
    for (partition, count) in &produced {
        let (_, lag, lag_ms) = rows
            .iter()
            .find(|(p, _, _)| p == partition)
            .copied()
            .unwrap_or_else(|| panic!("partition {partition} in {rows:?}"));
        assert_eq!(lag, *count, "partition {partition}: {rows:?}");
        if lag > 0 {
            assert!(lag_ms.is_some_and(|ms| ms > 0), "{rows:?}");
        } else {
            assert_eq!(lag_ms, Some(0), "{rows:?}");
        }
    }
    // The same from the server function and from the live stream.
    let (status, snapshot) = admin.call("pipeline/snapshot", &[]).await;
    assert_eq!(status, 200, "{snapshot}");
    assert_eq!(
        snapshot_rows(&snapshot, &topic)
            .iter()
            .map(|r| r.1)
            .sum::<i64>(),
        N as i64
    );
    assert_eq!(snapshot["kafka"]["reachable"], true);
    assert!(snapshot["clickhouse"]["up"] == true, "{snapshot}");
    assert!(
        snapshot["clickhouse"]["parts_to_throw_insert"].as_u64() > Some(0),
        "{snapshot}"
    );
    assert_eq!(snapshot["writer"]["in_this_process"], false);
    let streamed = first_streamed_snapshot(&admin).await;
    assert_eq!(
        snapshot_rows(&streamed, &topic)
            .iter()
            .map(|r| r.1)
            .sum::<i64>(),
        N as i64
    );

    // A writer starts: the lag reaches 0 in messages and in time.
    let mut writer_config = config.clone();
    writer_config.writer.enabled = true;
    let writer = attest_server::start_writer(writer_config)
        .await
        .expect("writer starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    let caught_up = loop {
        let (status, snapshot) = admin.call("pipeline/snapshot", &[]).await;
        assert_eq!(status, 200, "{snapshot}");
        let rows = snapshot_rows(&snapshot, &topic);
        if rows.iter().all(|(_, lag, ms)| *lag == 0 && *ms == Some(0)) {
            break true;
        }
        if Instant::now() > deadline {
            panic!("lag never reached 0: {rows:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(caught_up);
    let written = server
        .clickhouse("SELECT count() FROM audit_events WHERE tenant_id = 'acme' FORMAT TSV")
        .await;
    assert_eq!(written.trim(), N.to_string(), "the lag was these events");

    // Each admin action is in Attest's own trail, the analyst's refusals
    // are not admin actions.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let recorded = server
            .clickhouse(
                "SELECT action, actor_id FROM audit_events WHERE tenant_id = 'attest' \
                 AND action IN ('pipeline.view', 'pipeline.watch') \
                 GROUP BY action, actor_id ORDER BY action FORMAT TSV",
            )
            .await;
        if recorded == "pipeline.view\toncall\npipeline.watch\toncall\n" {
            break;
        }
        assert!(Instant::now() < deadline, "recorded: {recorded:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    writer.shutdown().await;
    server.stop().await;
}

/// A broker and a ClickHouse node that do not answer (an address nothing
/// listens on, where packets may simply vanish): the snapshot still comes
/// within its bounds and says both are down, instead of hanging the page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_broker_and_node_show_as_down_without_hanging() {
    use attest_server::health::pipeline::PipelineCollector;
    use attest_server::health::ready::Readiness;
    use std::sync::Arc;

    let mut config = common::test_config();
    // TEST-NET-1 (RFC 5737): reserved, never routed to a host.
    config.kafka.brokers = "192.0.2.1:9092".into();
    config.clickhouse.url = "http://192.0.2.1:8123".into();
    let store = attest_server::store::Store::new(&config.clickhouse);
    let metrics = Arc::new(attest_server::metrics::Metrics::new());
    let producer = EventProducer::new(&config.kafka).expect("a producer is created lazily");
    let readiness = Arc::new(Readiness::new(
        config.kafka.clone(),
        config.clickhouse.clone(),
        store.clone(),
        producer,
        metrics.clone(),
        None,
        config.writer.stall_after,
    ));
    let collector = PipelineCollector::new(
        config.kafka.clone(),
        &config.clickhouse,
        store,
        metrics,
        readiness,
    );
    let started = Instant::now();
    let snapshot = tokio::time::timeout(Duration::from_secs(15), collector.snapshot())
        .await
        .expect("the snapshot is bounded");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(!snapshot.kafka.reachable, "{snapshot:?}");
    assert_eq!(snapshot.kafka.brokers.len(), 1, "{snapshot:?}");
    assert!(!snapshot.kafka.brokers[0].up);
    assert_eq!(snapshot.kafka.brokers[0].address, "192.0.2.1:9092");
    assert!(!snapshot.kafka.problems.is_empty());
    assert!(!snapshot.clickhouse.up, "{snapshot:?}");
    assert_eq!(snapshot.clickhouse.read_latency_ms, None);
    assert!(!snapshot.clickhouse.problems.is_empty());
    assert!(!snapshot.writer.in_this_process);
}
