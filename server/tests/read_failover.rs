//! Read routing over several ClickHouse nodes, on the real stack. The
//! preferred node is a TCP relay in front of the local ClickHouse, so the
//! test can stop it (as a node that dies: its port refuses connections)
//! without stopping the ClickHouse other tests use; the second node is that
//! ClickHouse itself, holding the same data as a replica would.

mod common;
mod console_support;

use std::time::{Duration, Instant};

use console_support::Browser;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// A relay to ClickHouse's HTTP port that can be stopped: its listener and
/// every relayed connection are dropped, so the port refuses connections.
struct Node {
    url: String,
    tasks: JoinSet<()>,
}

impl Node {
    async fn relay_to(upstream: &str) -> Node {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut relays = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                relays.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Node { url, tasks }
    }

    /// Aborting the accept loop drops the listener and, with its JoinSet,
    /// every relay.
    async fn stop(mut self) {
        self.tasks.shutdown().await;
    }
}

fn ids(answer: &Value) -> Vec<String> {
    let mut ids: Vec<String> = answer["hits"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| r["event_id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn searches_keep_answering_from_the_other_node_and_say_plainly_when_none_does() {
    let mut config = common::test_config();
    let direct = config.clickhouse.url.clone();
    let preferred = Node::relay_to(&direct).await;
    config.clickhouse.url = preferred.url.clone();
    config.clickhouse.read_urls = vec![direct.clone()];
    let server = common::start(config.clone()).await;
    let browser = Browser::new(&server.base_url);

    let tenant = format!("failover-{}", common::unique());
    for i in 0..3 {
        let (status, body) = server
            .post_json(
                serde_json::json!({
                    "event_id": format!("f-{i}"),
                    "tenant_id": tenant,
                    "occurred_at": attest_server::ingest::now_ms() - 60_000,
                    "category": "authentication",
                    "action": "user.login",
                    "outcome": "failure",
                    "actor": {"id": "mallory", "type": "user"},
                    "source_service": "sso"
                })
                .to_string(),
            )
            .await;
        assert_eq!(status, 202, "{body}");
    }
    let search = [("tenant", tenant.as_str()), ("range", "24h")];
    let want = ["f-0", "f-1", "f-2"];
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, answer) = browser.call("search/page", &search).await;
        assert_eq!(status, 200, "{answer}");
        if ids(&answer) == want {
            break;
        }
        assert!(Instant::now() < deadline, "events not searchable: {answer}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // The preferred node dies. Every search still answers, from the other.
    preferred.stop().await;
    for attempt in 0..5 {
        let (status, answer) = browser.call("search/page", &search).await;
        assert_eq!(
            status, 200,
            "search {attempt} after the node stopped: {answer}"
        );
        assert_eq!(ids(&answer), want, "search {attempt}");
    }
    let http = reqwest::Client::new();
    let mut direct_config = server.config.clone();
    direct_config.clickhouse.url = direct.clone();
    server.running.shutdown().await;
    common::drop_database(&http, &direct_config).await;
    common::delete_topics(&direct_config).await;

    // Every node down: the console says so, within a few seconds.
    let mut config = common::test_config();
    let (first, second) = (Node::relay_to(&direct).await, Node::relay_to(&direct).await);
    config.clickhouse.url = first.url.clone();
    config.clickhouse.read_urls = vec![second.url.clone()];
    let server = common::start(config).await;
    let browser = Browser::new(&server.base_url);
    first.stop().await;
    second.stop().await;
    let asked = Instant::now();
    let (status, answer) = browser.call("search/page", &search).await;
    let waited = asked.elapsed();
    assert_eq!(status, 503, "{answer}");
    let shown = answer.to_string();
    assert!(
        shown.to_lowercase().contains("unavailable") || shown.contains("ClickHouse"),
        "says what is wrong: {shown}"
    );
    // An upper bound for "does not hang", not a speed target: two refused
    // connections take milliseconds.
    assert!(waited < Duration::from_secs(10), "took {waited:?}");
    // The database lives on the direct node; the stopped relays cannot drop it.
    let mut direct_config = server.config.clone();
    direct_config.clickhouse.url = direct;
    server.running.shutdown().await;
    common::drop_database(&http, &direct_config).await;
    common::delete_topics(&direct_config).await;
}
