//! The spool against the real stack: with the broker down, accepted events
//! are fsynced to the local spool and still answered `202`; once the broker
//! is back they reach ClickHouse exactly once, even when Attest is killed
//! with SIGKILL in the middle of draining the spool.
//!
//! These tests stop and start the shared local broker (Kafka), so they run
//! one at a time, in a test binary of their own.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::Mutex;

static SERIAL: Mutex<()> = Mutex::const_new(());

/// The tests' configuration. The writer's group session outlasts the
/// outage. That began as a workaround for tansu 0.6, the earlier local
/// broker, which did not let a consumer whose session expired during an
/// outage rejoin its group; Kafka does, so here it is harmless, and it keeps
/// these tests about the spool, not group membership.
fn config() -> attest_server::config::Config {
    let mut config = common::test_config();
    config.kafka.session_timeout = Duration::from_secs(300);
    config
}

/// Waits until the restarted broker answers requests, not only accepts
/// connections. The long deadline dates from tansu, the earlier local
/// broker, which could spend minutes on its sqlite file after a start; Kafka
/// answers within seconds, so on Kafka the wait is short and harmless.
fn wait_for_broker(config: &attest_server::config::Config) {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.brokers)
        .create()
        .expect("kafka client");
    let deadline = Instant::now() + Duration::from_secs(600);
    while consumer
        .fetch_metadata(None, Duration::from_secs(5))
        .is_err()
    {
        assert!(Instant::now() < deadline, "the broker did not come back");
    }
}

fn events(prefix: &str, n: usize) -> Vec<Value> {
    let now = attest_server::ingest::now_ms();
    (0..n)
        .map(|i| {
            json!({
                "event_id": format!("{prefix}-{i:05}"),
                "tenant_id": format!("tenant-{}", i % 5),
                "occurred_at": now - i as i64,
                "category": "data_modification",
                "action": "invoice.update",
                "outcome": "success",
                "actor": {"id": format!("user-{}", i % 17), "type": "user"},
                "source_service": "billing",
            })
        })
        .collect()
}

/// Posts in batches of 500; every batch must be accepted.
async fn post_all(http: &reqwest::Client, base: &str, all: &[Value]) {
    for chunk in all.chunks(500) {
        let response = http
            .post(format!("{base}/api/v1/events/batch"))
            .json(&chunk)
            .send()
            .await
            .expect("attest reachable");
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["accepted"].as_u64(), Some(chunk.len() as u64));
    }
}

async fn metric(http: &reqwest::Client, base: &str, name: &str) -> Option<i64> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map(|v| v as i64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broker_outage_costs_no_event() {
    let _serial = SERIAL.lock().await;
    let mut config = config();
    config.ingest.broker_timeout = Duration::from_secs(1);
    config.ingest.max_batch_events = 500;
    config.ingest.max_in_flight_events = 500;
    let server = common::start(config.clone()).await;
    // The topics exist and the pipeline is live before the outage.
    post_all(&server.http, &server.base_url, &events("before", 10)).await;

    common::stack("down", "kafka");
    let during = events("outage", 5_000);
    // While the first batch waits for the broker (broker_timeout), it holds
    // all the room for events in flight: a second request gets 429 at once
    // instead of queueing without bound.
    let first = {
        let (http, base, batch) = (
            server.http.clone(),
            server.base_url.clone(),
            during[..500].to_vec(),
        );
        tokio::spawn(async move { post_all(&http, &base, &batch).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let busy = server
        .http
        .post(format!("{}/api/v1/events", server.base_url))
        .json(&events("busy", 1)[0])
        .send()
        .await
        .expect("attest reachable");
    assert_eq!(busy.status().as_u16(), 429);
    assert_eq!(busy.headers()["retry-after"], "1");
    first.await.expect("first batch accepted");
    post_all(&server.http, &server.base_url, &during[500..]).await;
    let spooled = metric(
        &server.http,
        &server.base_url,
        "attest_spool_pending_events",
    )
    .await;
    assert_eq!(
        spooled,
        Some(5_000),
        "every event accepted during the outage waits in the spool"
    );
    common::stack("up", "kafka");

    let ids: Vec<String> = events("before", 10)
        .iter()
        .chain(during.iter())
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect();
    let n = ids.len() as u64;
    let arrived =
        common::wait_for_distinct(&server.http, &config, n, Duration::from_secs(180)).await;
    assert_eq!(arrived, n, "every event accepted during the outage arrives");
    common::assert_exactly(&server.http, &config, &ids).await;
    assert_eq!(
        metric(
            &server.http,
            &server.base_url,
            "attest_spool_pending_events"
        )
        .await,
        Some(0)
    );
    server.stop().await;
}

/// An `attest serve` child process without its writer (the test runs the
/// writer), so that SIGKILL hits ingest and the spool forwarder only.
struct Attest {
    child: Child,
    base: String,
}

impl Attest {
    fn start(config: &attest_server::config::Config, log_name: &str) -> Attest {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log_dir = std::env::var("ATTEST_LOG_DIR")
            .unwrap_or_else(|_| std::env::temp_dir().display().to_string());
        let log = std::fs::File::create(format!("{log_dir}/{log_name}.log")).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_attest"))
            .arg("serve")
            .envs(common::child_env(config))
            .env("ATTEST_LISTEN", format!("127.0.0.1:{port}"))
            .env("ATTEST_WRITER__ENABLED", "false")
            .env("ATTEST_INGEST__REQUIRE_API_KEY", "false")
            .env("ATTEST_INGEST__BROKER_TIMEOUT", "1000")
            .env("ATTEST_INGEST__SPOOL_FORWARD_BATCH", "10")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("attest serve starts");
        Attest {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn wait_ready(&self, http: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while http
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "attest did not come up");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attest_killed_while_draining_the_spool_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let config = config();
    let http = reqwest::Client::new();
    let writer = attest_server::start_writer(config.clone())
        .await
        .expect("writer starts");

    let first = Attest::start(&config, "spool-kill-1");
    first.wait_ready(&http).await;
    common::stack("down", "kafka");
    let all = events("drain", 5_000);
    post_all(&http, &first.base, &all).await;
    common::stack("up", "kafka");
    wait_for_broker(&config);

    // Kill once the forwarder has sent part of the spool, not all of it.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let forwarded = metric(&http, &first.base, "attest_spool_forwarded_total")
            .await
            .unwrap_or(0);
        if forwarded > 0 {
            assert!(
                forwarded < 5_000,
                "killed mid-drain, not after it ({forwarded})"
            );
            break;
        }
        assert!(Instant::now() < deadline, "the forwarder never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut child = first.child;
    child.kill().expect("SIGKILL");
    let _ = child.wait();

    // The restart resumes from the spool's last acknowledged position.
    let second = Attest::start(&config, "spool-kill-2");
    second.wait_ready(&http).await;
    let ids: Vec<String> = all
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect();
    let n = ids.len() as u64;
    let arrived = common::wait_for_distinct(&http, &config, n, Duration::from_secs(180)).await;
    assert_eq!(arrived, n, "every spooled event arrives after the restart");
    common::assert_exactly(&http, &config, &ids).await;

    let mut child = second.child;
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    writer.shutdown().await;
    common::drop_database(&http, &config).await;
    common::delete_topics(&config).await;
    let _ = std::fs::remove_dir_all(&config.ingest.spool_dir);
}
