//! Helpers for integration tests against the real local stack (Kafka and
//! ClickHouse started by `scripts/stack.sh up`). Addresses come from the same
//! `ATTEST_*` variables the server reads. Each test gets its own topics,
//! consumer group and ClickHouse database, so tests never see each other's
//! data. [`TestServer::stop`] deletes them again: leftover partitions are not
//! free on Kafka (after a kill -9 the broker recovers every partition before
//! it serves, two minutes with 6,000 of them). What a failed or interrupted
//! test leaves behind, `scripts/sweep.py` deletes at the start of
//! `scripts/test.sh`.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use attest_server::config::Config;
use attest_server::Running;
use leptos::config::LeptosOptions;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

mod exactly;
// Each test crate uses some of these, none all of them.
#[allow(unused_imports)]
pub use exactly::{assert_exactly, distinct_events, wait_for_distinct};

pub struct TestServer {
    pub config: Config,
    pub running: Running,
    pub base_url: String,
    pub http: reqwest::Client,
}

/// A unique, identifier-safe suffix.
pub fn unique() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

pub fn test_config() -> Config {
    let mut config = Config::load(None).expect("configuration from the environment");
    let id = unique();
    config.listen = "127.0.0.1:0".parse().expect("addr");
    config.schemas_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas").into();
    config.kafka.topic_prefix = format!("attest-test.{id}");
    config.kafka.consumer_group = format!("attest-test-{id}");
    config.kafka.partitions = 2;
    config.clickhouse.database = format!("attest_test_{id}");
    config.ingest.spool_dir = std::env::temp_dir().join(format!("attest-test-spool-{id}"));
    config.writer.max_age = Duration::from_millis(200);
    // Each test seals with a key of its own (made at its writer's start).
    config.integrity.key_dir = std::env::temp_dir().join(format!("attest-test-keys-{id}"));
    // Most tests are about what happens after the front door; API keys have
    // their own tests (ingest_keys.rs), which turn this back on.
    config.ingest.require_api_key = false;
    config.console.require_login = false;
    config
}

pub async fn start(config: Config) -> TestServer {
    start_with(
        config,
        LeptosOptions::builder().output_name("attest").build(),
    )
    .await
}

/// [`start`] with Leptos options of the test's own (another site root).
pub async fn start_with(config: Config, leptos: LeptosOptions) -> TestServer {
    // `RUST_LOG=attest_server=debug cargo test … -- --nocapture` shows the
    // server's logs beside a failing test.
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
    let running = attest_server::start(config.clone(), leptos)
        .await
        .expect("attest starts against the local stack (is `scripts/stack.sh up` running?)");
    let base_url = format!("http://{}", running.addr);
    TestServer {
        config,
        running,
        base_url,
        http: reqwest::Client::new(),
    }
}

impl TestServer {
    /// Runs SQL on ClickHouse over plain HTTP (not through Attest's store).
    pub async fn clickhouse(&self, sql: &str) -> String {
        let response = self
            .http
            .post(&self.config.clickhouse.url)
            .query(&[("database", self.config.clickhouse.database.as_str())])
            .body(sql.to_owned())
            .send()
            .await
            .expect("clickhouse reachable");
        let status = response.status();
        let text = response.text().await.expect("clickhouse body");
        assert!(status.is_success(), "clickhouse error for {sql}: {text}");
        text
    }

    pub async fn row_count(&self) -> u64 {
        self.clickhouse("SELECT count() FROM audit_events")
            .await
            .trim()
            .parse()
            .expect("a count")
    }

    /// Waits until ClickHouse holds at least `n` rows; returns the count.
    pub async fn wait_for_rows(&self, n: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let count = self.row_count().await;
            if count >= n || Instant::now() > deadline {
                return count;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Messages in all of this server's topics (sum of high watermarks;
    /// the topics are new, so low watermarks are 0).
    pub fn kafka_message_count(&self) -> i64 {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.config.kafka.brokers)
            .create()
            .expect("kafka client");
        let mut topics = attest_server::topics::event_topics(&self.config.kafka.topic_prefix);
        topics.push(attest_server::topics::dead_letters(
            &self.config.kafka.topic_prefix,
        ));
        let mut total = 0;
        for topic in topics {
            for partition in 0..self.config.kafka.partitions {
                let (low, high) = consumer
                    .fetch_watermarks(&topic, partition, Duration::from_secs(10))
                    .expect("watermarks");
                total += high - low;
            }
        }
        total
    }

    pub async fn post_json(&self, body: impl Into<reqwest::Body>) -> (u16, serde_json::Value) {
        self.post_to("/api/v1/events", body).await
    }

    /// Posts a batch (a JSON array of events).
    pub async fn post_batch_json(
        &self,
        body: impl Into<reqwest::Body>,
    ) -> (u16, serde_json::Value) {
        self.post_to("/api/v1/events/batch", body).await
    }

    async fn post_to(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, serde_json::Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base_url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("attest reachable");
        let status = response.status().as_u16();
        let json = response.json().await.unwrap_or(serde_json::Value::Null);
        (status, json)
    }

    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base_url))
            .send()
            .await
            .expect("attest reachable");
        let status = response.status().as_u16();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    /// Rows the writer reports inserted, re-inserted copies included
    /// (unlike the table's row count, which merges may shrink).
    pub async fn rows_written(&self) -> u64 {
        self.metrics_text()
            .await
            .lines()
            .find_map(|l| l.strip_prefix("attest_writer_rows_written_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0) as u64
    }

    pub async fn metrics_text(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base_url))
            .send()
            .await
            .expect("attest reachable")
            .text()
            .await
            .expect("metrics text")
    }

    /// `/metrics` once every one of `lines` is in it (counters move at the
    /// end of a flush, after what a test may have waited for), or panics
    /// after `timeout` showing the last text.
    pub async fn metrics_with(&self, lines: &[&str], timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.metrics_text().await;
            if lines.iter().all(|line| text.lines().any(|l| l == *line)) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "/metrics never showed {lines:?}:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn stop(self) {
        let (http, config) = (self.http.clone(), self.config.clone());
        self.running.shutdown().await;
        drop_database(&http, &config).await;
        delete_topics(&config).await;
        let _ = std::fs::remove_dir_all(&config.ingest.spool_dir);
    }
}

pub async fn drop_database(http: &reqwest::Client, config: &Config) {
    let sql = format!("DROP DATABASE IF EXISTS {}", config.clickhouse.database);
    let _ = http.post(&config.clickhouse.url).body(sql).send().await;
}

/// Deletes the test's event and dead-letter topics. Best effort, like
/// [`drop_database`]: a topic the test never made is not an error, and
/// whatever stays is swept by the next `scripts/test.sh`.
pub async fn delete_topics(config: &Config) {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;

    let Ok(admin) = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.brokers)
        .create::<AdminClient<DefaultClientContext>>()
    else {
        return;
    };
    let mut topics = attest_server::topics::event_topics(&config.kafka.topic_prefix);
    topics.push(attest_server::topics::dead_letters(
        &config.kafka.topic_prefix,
    ));
    // Every server (alerts on by default) joins the alerts election.
    topics.push(attest_server::alert::election_topic(
        &config.kafka.topic_prefix,
    ));
    // ...and the trends sampler's (on by default too).
    topics.push(attest_server::trends::election_topic(
        &config.kafka.topic_prefix,
    ));
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let _ = admin.delete_topics(&names, &options).await;
}

/// A JSON number that ClickHouse may print quoted (64-bit ints on 18.16).
pub fn as_i64(v: &serde_json::Value) -> i64 {
    match v {
        serde_json::Value::String(s) => s.parse().expect("integer string"),
        other => other.as_i64().expect("integer"),
    }
}

/// Encodes `n` events the way ingest does and produces them straight to the
/// event topics (fast enough for 100k), returning their ids.
pub async fn produce_events(config: &Config, n: usize, tag: &str) -> Vec<String> {
    produce(config, encoded_events(config, n, tag).await, false).await
}

/// [`produce_events`] with the `attest.event_id` header ingest writes on
/// every message, so the broker stores what it stores for ingest.
pub async fn produce_events_as_ingest(config: &Config, n: usize, tag: &str) -> Vec<String> {
    produce(config, encoded_events(config, n, tag).await, true).await
}

/// `n` events of `tag` as (event id, topic, framed Avro), the topics made.
async fn encoded_events(config: &Config, n: usize, tag: &str) -> Vec<(String, String, Vec<u8>)> {
    use attest_server::event::{Actor, AuditEvent, Category, Outcome, Resource};
    use attest_server::produce::ensure_topics;
    use attest_server::registry::Registry;

    let registry = Registry::load(&config.schemas_dir).expect("registry");
    let mut topics = attest_server::topics::event_topics(&config.kafka.topic_prefix);
    topics.push(attest_server::topics::dead_letters(
        &config.kafka.topic_prefix,
    ));
    ensure_topics(&config.kafka, &topics).await.expect("topics");
    let now = attest_server::ingest::now_ms();
    (0..n)
        .map(|i| {
            let category = Category::ALL[i % Category::ALL.len()];
            let event = AuditEvent {
                event_id: format!("{tag}-{i}"),
                tenant_id: format!("tenant-{}", i % 7),
                occurred_at: now - (i as i64 % 86_400) * 1000,
                received_at: now,
                category,
                action: "record.read".into(),
                outcome: Outcome::ALL[i % 3],
                actor: Actor {
                    id: format!("user-{}", i % 1000),
                    kind: "user".into(),
                    ip: Some("198.51.100.4".into()),
                    user_agent: None,
                },
                resource: Some(Resource {
                    kind: "record".into(),
                    id: format!("r-{i}"),
                }),
                source_service: "load".into(),
                request_id: None,
                metadata: Default::default(),
            };
            let topic = attest_server::topics::for_category(&config.kafka.topic_prefix, category);
            let payload = registry.encode(&event).expect("encodes");
            (event.event_id, topic, payload)
        })
        .collect()
}

async fn produce(
    config: &Config,
    events: Vec<(String, String, Vec<u8>)>,
    with_header: bool,
) -> Vec<String> {
    use attest_server::produce::{EventProducer, Outgoing};
    use futures::stream::{self, StreamExt};

    let producer = EventProducer::new(&config.kafka).expect("producer");
    stream::iter(events.iter())
        .map(|(id, topic, payload)| {
            let producer = producer.clone();
            async move {
                let sent = if with_header {
                    producer.send_event(topic, id, id, payload).await
                } else {
                    producer
                        .send(Outgoing {
                            topic,
                            key: id,
                            payload,
                            headers: &[],
                        })
                        .await
                };
                sent.expect("broker acknowledged")
            }
        })
        .buffer_unordered(2000)
        .collect::<Vec<_>>()
        .await;
    events.into_iter().map(|(id, _, _)| id).collect()
}

/// The environment that points an `attest` child process at `config`.
pub fn child_env(config: &Config) -> Vec<(&'static str, String)> {
    vec![
        ("ATTEST_LISTEN", "127.0.0.1:0".into()),
        (
            "ATTEST_SCHEMAS_DIR",
            config.schemas_dir.display().to_string(),
        ),
        ("ATTEST_KAFKA__BROKERS", config.kafka.brokers.clone()),
        (
            "ATTEST_INGEST__SPOOL_DIR",
            config.ingest.spool_dir.display().to_string(),
        ),
        (
            "ATTEST_KAFKA__TOPIC_PREFIX",
            config.kafka.topic_prefix.clone(),
        ),
        (
            "ATTEST_KAFKA__CONSUMER_GROUP",
            config.kafka.consumer_group.clone(),
        ),
        (
            "ATTEST_KAFKA__PARTITIONS",
            config.kafka.partitions.to_string(),
        ),
        ("ATTEST_CLICKHOUSE__URL", config.clickhouse.url.clone()),
        (
            "ATTEST_CLICKHOUSE__DATABASE",
            config.clickhouse.database.clone(),
        ),
        (
            "ATTEST_WRITER__MAX_ROWS",
            config.writer.max_rows.to_string(),
        ),
        (
            "ATTEST_WRITER__MAX_AGE",
            config.writer.max_age.as_millis().to_string(),
        ),
        (
            "ATTEST_WRITER__RETRY_MAX",
            config.writer.retry_max.as_millis().to_string(),
        ),
        (
            "ATTEST_INTEGRITY__KEY_DIR",
            config.integrity.key_dir.display().to_string(),
        ),
        ("RUST_LOG", "warn,attest_server=info".into()),
    ]
}

/// `attest integrity check` of everything `config`'s writers sealed, with
/// the keys of its key directory.
pub async fn integrity_report(config: &Config) -> attest_server::integrity::check::Report {
    let store = attest_server::store::Store::new(&config.clickhouse);
    let keys = attest_server::integrity::KeyRing::load(&config.integrity.key_dir).expect("keys");
    attest_server::integrity::check::check_all(&store, &keys, &config.kafka, i64::MIN)
        .await
        .expect("the integrity check runs")
}

/// The event page's seal check, as the console runs it for a viewer of
/// every tenant.
pub fn event_seals(config: &Config) -> attest_server::integrity::event_seal::ScopedSeals {
    attest_server::integrity::event_seal::ScopedSeals {
        store: attest_server::store::Store::new(&config.clickhouse),
        setup: std::sync::Arc::new(attest_server::integrity::event_seal::SealCheck {
            key_dir: config.integrity.key_dir.clone(),
            topic_prefix: config.kafka.topic_prefix.clone(),
            sealing_on: true,
        }),
        viewer: attest_server::access::Viewer::unrestricted(),
    }
}

/// Asserts that every one of `n` events is sealed exactly once on an
/// unbroken, verified chain.
pub async fn assert_sealed_once(config: &Config, n: usize) {
    let report = integrity_report(config).await;
    assert!(
        report.problems.is_empty(),
        "integrity problems: {:#?}",
        report.problems
    );
    assert_eq!(report.events, n, "sealed events on the chains: {report:?}");
}

/// `scripts/stack.sh <action> <service>`: stops or starts Kafka or
/// ClickHouse for a fault test.
pub fn stack(action: &str, service: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/stack.sh");
    let status = std::process::Command::new("bash")
        .args([script, action, service])
        .status()
        .expect("stack.sh runs");
    assert!(status.success(), "stack.sh {action} {service}");
}

/// A copy of the contract in a temporary directory whose manifest lists the
/// schema under the given `(version, id)` pairs.
pub fn contract_with_ids(schemas: &std::path::Path, entries: &[(u32, u32)]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("attest-schemas-{}", unique()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::copy(
        schemas.join("audit_event.avsc"),
        dir.join("audit_event.avsc"),
    )
    .expect("copy schema");
    let versions: Vec<serde_json::Value> = entries
        .iter()
        .map(|(version, id)| serde_json::json!({"version": version, "id": id, "file": "audit_event.avsc"}))
        .collect();
    let manifest = serde_json::json!({"subjects": {"dev.attest.AuditEvent": versions}});
    std::fs::write(dir.join("registry.json"), manifest.to_string()).expect("manifest");
    dir
}

/// Waits until `n` rows were sealed by the server's writer.
pub async fn wait_sealed(server: &TestServer, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let text = server.metrics_text().await;
        let sealed = text
            .lines()
            .find_map(|l| l.strip_prefix("attest_writer_rows_sealed_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0) as u64;
        if sealed >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {sealed} of {n} rows sealed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Inserts a copy of the stored event `event_id` with its content intact
/// and `content_hash` as its identity column: a row written behind
/// Attest's back, which Search would count as a second event.
pub async fn insert_copy_with_hash(server: &TestServer, event_id: &str, content_hash: &str) {
    server
        .clickhouse(&format!(
            "INSERT INTO audit_events (event_id, tenant_id, occurred_at, received_at, category, action, \
             outcome, actor_id, actor_type, actor_ip, actor_user_agent, resource_type, resource_id, \
             source_service, request_id, metadata.key, metadata.value, schema_id, kafka_partition, \
             kafka_offset, content_hash) SELECT event_id, tenant_id, occurred_at, received_at, category, \
             action, outcome, actor_id, actor_type, actor_ip, actor_user_agent, resource_type, \
             resource_id, source_service, request_id, metadata.key, metadata.value, schema_id, \
             kafka_partition, kafka_offset, '{content_hash}' FROM audit_events WHERE event_id = '{event_id}'"
        ))
        .await;
}

/// Runs an `ALTER … UPDATE/DELETE` and waits for the mutation to finish.
pub async fn mutate(server: &TestServer, sql: &str) {
    server.clickhouse(sql).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pending = server
            .clickhouse("SELECT count() FROM system.mutations WHERE database = currentDatabase() AND is_done = 0")
            .await;
        if pending.trim() == "0" {
            return;
        }
        assert!(Instant::now() < deadline, "mutation not done: {sql}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the writers committed past `n` records of the events
/// topics (new topics: offsets from 0): a redaction refuses rows whose
/// offsets are sealed but not committed yet, and two checks compared with
/// each other must see the same chain heads.
pub async fn wait_committed(config: &attest_server::config::Config, n: i64) {
    use attest_server::integrity::seal::{committed, offsets_reader};
    let partitions: Vec<(String, i32)> =
        attest_server::topics::event_topics(&config.kafka.topic_prefix)
            .into_iter()
            .flat_map(|t| (0..config.kafka.partitions).map(move |p| (t.clone(), p)))
            .collect();
    let reader = std::sync::Arc::new(offsets_reader(&config.kafka, "test-commits").unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done: i64 = committed(reader.clone(), &partitions)
            .await
            .unwrap()
            .iter()
            .filter_map(|c| c.offset)
            .sum();
        if done >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {done} of {n} offsets committed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Posts one `document.read` by alice of `tenant` at `at_ms`, which must
/// be accepted.
pub async fn post_read(server: &TestServer, id: &str, tenant: &str, at_ms: i64) {
    let event = serde_json::json!({
        "event_id": id,
        "tenant_id": tenant,
        "occurred_at": at_ms,
        "category": "data_access",
        "action": "document.read",
        "outcome": "success",
        "actor": {"id": "alice", "type": "user"},
        "source_service": "docs",
    });
    let (status, answer) = server.post_json(event.to_string()).await;
    assert_eq!(status, 202, "{id}: {answer}");
}

/// Noon on the 15th of `month` (`YYYY-MM`), epoch ms.
pub fn mid_month_ms(month: &str) -> i64 {
    let m = attest_server::retention::Month::parse(month).expect("month");
    (m.start_s() + 14 * 86_400 + 12 * 3600) * 1000
}
