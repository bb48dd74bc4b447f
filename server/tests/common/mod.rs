//! Helpers for integration tests against the real local stack (tansu and
//! ClickHouse started by `scripts/stack.sh up`). Addresses come from the same
//! `ATTEST_*` variables the server reads. Each test gets its own topics,
//! consumer group and ClickHouse database, so tests never see each other's
//! data and never delete topics (tansu drops every topic when one is deleted).

#![allow(dead_code)]

use std::time::{Duration, Instant};

use attest_server::config::Config;
use attest_server::Running;
use leptos::config::LeptosOptions;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

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
    config.writer.max_age = Duration::from_millis(200);
    config
}

pub async fn start(config: Config) -> TestServer {
    let leptos = LeptosOptions::builder().output_name("attest").build();
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
        let response = self
            .http
            .post(format!("{}/api/v1/events", self.base_url))
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
        (status, response.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn stop(self) {
        let database = self.config.clickhouse.database.clone();
        let url = self.config.clickhouse.url.clone();
        let http = self.http.clone();
        self.running.shutdown().await;
        // Databases may be dropped (topics may not: see the module comment).
        let _ = http
            .post(url)
            .body(format!("DROP DATABASE IF EXISTS {database}"))
            .send()
            .await;
    }
}

/// A JSON number that ClickHouse may print quoted (64-bit ints on 18.16).
pub fn as_i64(v: &serde_json::Value) -> i64 {
    match v {
        serde_json::Value::String(s) => s.parse().expect("integer string"),
        other => other.as_i64().expect("integer"),
    }
}
