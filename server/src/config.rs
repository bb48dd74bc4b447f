//! Attest's one typed configuration: defaults that point at the local stack,
//! overridden by an optional TOML file and then by `ATTEST_*` environment
//! variables (`ATTEST_KAFKA__BROKERS` sets `kafka.brokers`). Validated once at
//! start-up so a bad value fails fast with the key that is wrong.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration could not be read: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("configuration key `{key}` is invalid: {problem}")]
    Invalid { key: &'static str, problem: String },
    #[error("configuration file {} does not exist (or is not a file)", .0.display())]
    Missing(std::path::PathBuf),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the console and the HTTP API listen on.
    pub listen: SocketAddr,
    /// Directory holding the Avro contract (`*.avsc` and `registry.json`).
    pub schemas_dir: PathBuf,
    pub kafka: KafkaConfig,
    pub clickhouse: ClickHouseConfig,
    pub writer: WriterConfig,
    pub ingest: IngestConfig,
    pub retention: RetentionConfig,
    pub registry: RegistryConfig,
    pub console: ConsoleConfig,
    pub alerts: AlertsConfig,
    pub detections: DetectionsConfig,
    pub trends: TrendsConfig,
    pub integrity: IntegrityConfig,
}

/// Who may use the console. Analysts sign in with a console access key
/// (`attest access grant`), which names the tenants they may see.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Off only for tests and throwaway local runs: everyone who reaches
    /// the console then sees every tenant.
    pub require_login: bool,
    /// Key for signing session cookies, at least 32 characters; every
    /// console instance behind one address needs the same. Empty: a random
    /// key per process, so sessions end when the process does. Never
    /// logged or shown; `Debug` redacts it.
    pub session_secret: String,
    /// How long a sign-in lasts.
    #[serde(with = "millis")]
    pub session_ttl: Duration,
    /// Send the session cookie with `Secure`. Unset: on unless `listen` is
    /// a loopback address (plain-HTTP local runs), because anything else
    /// is expected to sit behind TLS.
    pub secure_cookie: Option<bool>,
    /// How often grants and revocations are re-read.
    #[serde(with = "millis")]
    pub access_refresh: Duration,
    /// Identical console reads (searches, event views) by one viewer
    /// within this long of the first are recorded as one audit event with
    /// a count.
    #[serde(with = "millis")]
    pub read_window: Duration,
    /// Reads waiting to be recorded; beyond it a read is counted and
    /// logged as not recorded rather than slowing the page.
    pub read_queue: usize,
    /// How many of one viewer's scans of the events (a search, its facets,
    /// each dashboard panel) run in ClickHouse at once; the rest wait their
    /// turn in the order asked (docs/DESIGN.md, "One viewer's reads take
    /// turns").
    pub reads_at_once: usize,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            require_login: true,
            session_secret: String::new(),
            session_ttl: Duration::from_secs(12 * 3600),
            secure_cookie: None,
            access_refresh: Duration::from_secs(5),
            read_window: Duration::from_secs(10),
            read_queue: 10_000,
            reads_at_once: 2,
        }
    }
}

impl fmt::Debug for ConsoleConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsoleConfig")
            .field("require_login", &self.require_login)
            .field(
                "session_secret",
                &if self.session_secret.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .field("session_ttl", &self.session_ttl)
            .field("secure_cookie", &self.secure_cookie)
            .field("access_refresh", &self.access_refresh)
            .field("read_window", &self.read_window)
            .field("read_queue", &self.read_queue)
            .field("reads_at_once", &self.reads_at_once)
            .finish()
    }
}

/// Where schema ids come from: Attest's own contract (default), or a
/// Confluent-compatible registry run elsewhere.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// Base URL of an external registry (`http://registry:8081`). Empty:
    /// the embedded one. When set, Attest's schema must already be
    /// registered there under `dev.attest.AuditEvent`; while the registry
    /// cannot confirm its id, ingest answers 503 (fails closed).
    pub url: String,
    #[serde(with = "millis")]
    pub timeout: Duration,
}

impl fmt::Debug for RegistryConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryConfig")
            .field("url", &redact_url(&self.url))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// `url` with any `user:password@` replaced, for logs, errors and
/// `attest config`: a registry or ClickHouse URL may carry credentials.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let authority_end = url[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| scheme_end + i);
    match url[scheme_end..authority_end].rfind('@') {
        Some(at) => format!(
            "{}<redacted>@{}",
            &url[..scheme_end],
            &url[scheme_end + at + 1..]
        ),
        None => url.to_owned(),
    }
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            url: String::new(),
            timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` bootstrap list.
    pub brokers: String,
    /// Events go to `<topic_prefix>.<category>`; dead letters to
    /// `<topic_prefix>.dead_letters`.
    pub topic_prefix: String,
    /// Partitions for topics Attest creates when they are missing.
    pub partitions: i32,
    /// Replication factor for topics Attest creates (3 in production).
    pub replication_factor: i32,
    /// `min.insync.replicas` for topics Attest creates (2 in production):
    /// with `acks=all`, an event is acknowledged only once this many replicas
    /// hold it. 1 leaves the broker's default in place.
    pub min_insync_replicas: i32,
    /// How long the producer keeps retrying one event before ingest gives up
    /// and answers 503.
    #[serde(with = "millis")]
    pub message_timeout: Duration,
    /// How long the producer waits to fill a batch.
    #[serde(with = "millis")]
    pub linger: Duration,
    /// Most messages in one producer batch (per partition)...
    pub batch_messages: u32,
    /// ...and most bytes: a batch is sent when either fills, or after
    /// `linger`.
    pub batch_bytes: u32,
    /// Most bytes the producer buffers while the broker acknowledges; with
    /// `ingest.max_in_flight_events`, what bounds its memory.
    pub buffer_kbytes: u32,
    /// `none`, `gzip`, `snappy` or `lz4`.
    pub compression: String,
    /// Consumer group of the ClickHouse writer.
    pub consumer_group: String,
    /// How soon the group notices a writer that died without leaving, and
    /// hands its partitions to the others.
    #[serde(with = "millis")]
    pub session_timeout: Duration,
    /// A producer whose sends have all failed for this long is replaced by
    /// a new one (a new idempotent producer id); so is one that hit a fatal
    /// error, at once.
    #[serde(with = "millis")]
    pub producer_recreate_after: Duration,
    /// The writer consumer's `client.id`. Not read from configuration:
    /// start-up sets it to `attest-writer/<process id>`, so the pipeline
    /// page can tell which process each member of the writer group is
    /// (docs/DESIGN.md, "Every process on the pipeline page").
    #[serde(skip, default = "default_writer_client_id")]
    pub writer_client_id: String,
}

fn default_writer_client_id() -> String {
    "attest-writer".into()
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClickHouseConfig {
    /// HTTP interface URL of the node the writer inserts into, migrations
    /// run on, and console reads prefer.
    pub url: String,
    /// Further nodes (replicas of `url`'s data) that console and API reads
    /// fail over to when a node refuses connections or fails its ping, in
    /// order of preference. Empty: every read goes to `url`.
    pub read_urls: Vec<String>,
    pub database: String,
    pub user: String,
    /// Never logged or shown; `Debug` redacts it.
    pub password: String,
}

impl fmt::Debug for ClickHouseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClickHouseConfig")
            .field("url", &redact_url(&self.url))
            .field(
                "read_urls",
                &self
                    .read_urls
                    .iter()
                    .map(|u| redact_url(u))
                    .collect::<Vec<_>>(),
            )
            .field("database", &self.database)
            .field("user", &self.user)
            .field(
                "password",
                &if self.password.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .finish()
    }
}

/// The most batches `writer.inserts_in_flight` may keep inserting at once.
const MAX_INSERTS_IN_FLIGHT: usize = 4;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WriterConfig {
    /// Run the Kafka → ClickHouse writer inside the server process.
    pub enabled: bool,
    /// A batch is inserted once it holds this many rows...
    pub max_rows: usize,
    /// ...or this many bytes of rows and raw messages (what bounds the
    /// batch's memory whatever the events' sizes)...
    pub max_bytes: usize,
    /// ...or once its oldest row has waited this long.
    #[serde(with = "millis")]
    pub max_age: Duration,
    /// First delay between insert retries; doubles up to `retry_max`.
    #[serde(with = "millis")]
    pub retry_initial: Duration,
    #[serde(with = "millis")]
    pub retry_max: Duration,
    /// Most data (KiB) the Kafka client prefetches per partition queue while
    /// a batch waits: with `max_rows`, what bounds the writer's memory.
    pub prefetch_kbytes: u32,
    /// Longest one INSERT may take before it is abandoned and retried.
    #[serde(with = "millis")]
    pub insert_timeout: Duration,
    /// Batches inserting at once while the next one fills. One INSERT
    /// keeps one ClickHouse thread busy; a second lets ClickHouse use
    /// another core while the first finishes. Each is one more batch in
    /// memory (`max_bytes`). Commits and seals stay in order whatever it is.
    pub inserts_in_flight: usize,
    /// A writer that makes no progress this long while its topics have lag
    /// is reported as stalled (log, `/readyz`, `attest_pipeline_stalled`);
    /// so is a spool that holds events and has not shrunk for as long.
    #[serde(with = "millis")]
    pub stall_after: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Largest accepted body of a single-event request.
    pub max_body_bytes: usize,
    /// Most events in one batch request.
    pub max_batch_events: usize,
    /// Largest accepted body of a batch request.
    pub max_batch_bytes: usize,
    /// Most events in flight (being checked, encoded or acknowledged) at
    /// once; a request that does not fit gets 429. Bounds ingest's memory.
    pub max_in_flight_events: usize,
    /// Most request body bytes being read or handled at once; a body that
    /// does not fit gets 429 before it is read. At least `max_batch_bytes`.
    pub max_in_flight_bytes: usize,
    /// Longest a client may take to send a request body (408 after it).
    #[serde(with = "millis")]
    pub body_timeout: Duration,
    /// Every ingest request must carry an API key (`attest keys create`).
    /// Turn off only where the network itself decides who may send.
    pub require_api_key: bool,
    /// How often API keys are re-read, which bounds how long a revoked key
    /// keeps working.
    #[serde(with = "millis")]
    pub key_refresh: Duration,
    /// Where accepted events wait (fsynced) while the broker cannot take
    /// them. One directory per server process; keep it on durable storage.
    pub spool_dir: PathBuf,
    /// Most bytes the spool holds; beyond it ingest answers 503.
    pub spool_max_bytes: u64,
    /// How long ingest waits for the broker's acknowledgement before it
    /// spools the event instead.
    #[serde(with = "millis")]
    pub broker_timeout: Duration,
    /// Events the forwarder sends to Kafka per round while draining...
    pub spool_forward_batch: usize,
    /// ...and the most bytes of them (at least one event, however large).
    pub spool_forward_bytes: u64,
}

/// How long audit events are kept. Whole months are the unit: a month is
/// removed once all of it is older than the policy, so nothing younger than
/// the policy is ever removed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Run the retention job inside the server every `interval`. Off by
    /// default: removing audit data must be a deliberate choice.
    /// `attest retention run` runs it once either way.
    pub enabled: bool,
    /// Full months kept before the current one for tenants without a policy
    /// of their own; 0 keeps everything.
    pub default_months: u32,
    /// Per-tenant months, overriding `default_months`; 0 keeps everything.
    pub tenants: BTreeMap<String, u32>,
    #[serde(with = "millis")]
    pub interval: Duration,
}

impl RetentionConfig {
    /// Months kept for `tenant`; 0 keeps everything.
    pub fn months_for(&self, tenant: &str) -> u32 {
        self.tenants
            .get(tenant)
            .copied()
            .unwrap_or(self.default_months)
    }
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            enabled: false,
            default_months: 0,
            tenants: BTreeMap::new(),
            interval: Duration::from_secs(3600),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 3030)),
            schemas_dir: PathBuf::from("schemas"),
            kafka: KafkaConfig::default(),
            clickhouse: ClickHouseConfig::default(),
            writer: WriterConfig::default(),
            ingest: IngestConfig::default(),
            retention: RetentionConfig::default(),
            registry: RegistryConfig::default(),
            console: ConsoleConfig::default(),
            alerts: AlertsConfig::default(),
            detections: DetectionsConfig::default(),
            trends: TrendsConfig::default(),
            integrity: IntegrityConfig::default(),
        }
    }
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:19092".into(),
            topic_prefix: "attest.events".into(),
            partitions: 3,
            replication_factor: 1,
            min_insync_replicas: 1,
            message_timeout: Duration::from_secs(30),
            linger: Duration::from_millis(10),
            batch_messages: 5_000,
            batch_bytes: 1_000_000,
            buffer_kbytes: 262_144,
            compression: "lz4".into(),
            consumer_group: "attest-writer".into(),
            session_timeout: Duration::from_secs(10),
            producer_recreate_after: Duration::from_secs(60),
            writer_client_id: default_writer_client_id(),
        }
    }
}

impl ClickHouseConfig {
    /// Every node reads may go to: `url` first, then `read_urls`.
    pub fn read_nodes(&self) -> Vec<String> {
        let mut nodes = vec![self.url.clone()];
        for url in &self.read_urls {
            if !nodes.contains(url) {
                nodes.push(url.clone());
            }
        }
        nodes
    }
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        ClickHouseConfig {
            url: "http://127.0.0.1:18123".into(),
            read_urls: Vec::new(),
            database: "attest".into(),
            user: "default".into(),
            password: String::new(),
        }
    }
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            enabled: true,
            max_rows: 50_000,
            max_bytes: 64 * 1024 * 1024,
            max_age: Duration::from_secs(1),
            retry_initial: Duration::from_millis(200),
            retry_max: Duration::from_secs(30),
            prefetch_kbytes: 65_536,
            insert_timeout: Duration::from_secs(30),
            inserts_in_flight: 2,
            stall_after: Duration::from_secs(60),
        }
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_body_bytes: 1024 * 1024,
            max_batch_events: 10_000,
            max_batch_bytes: 10 * 1024 * 1024,
            max_in_flight_events: 100_000,
            max_in_flight_bytes: 256 * 1024 * 1024,
            body_timeout: Duration::from_secs(10),
            require_api_key: true,
            key_refresh: Duration::from_secs(5),
            spool_dir: PathBuf::from(".data/spool"),
            spool_max_bytes: 1024 * 1024 * 1024,
            broker_timeout: Duration::from_secs(5),
            spool_forward_batch: 1000,
            spool_forward_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Top-level keys that environment variables may set; everything else under
/// `ATTEST_` (the dev scripts' own `ATTEST_DATA_DIR`, ports...) is not ours.
const ENV_KEYS: &[&str] = &[
    "listen",
    "schemas_dir",
    "kafka",
    "clickhouse",
    "writer",
    "ingest",
    "retention",
    "registry",
    "console",
    "alerts",
    "detections",
    "trends",
    "integrity",
];

impl Config {
    /// Defaults, then `file` (if given and present), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            // figment skips a missing file silently; a mistyped path would
            // then run with the defaults, which point at the local stack.
            if !path.is_file() {
                return Err(ConfigError::Missing(path.to_owned()));
            }
            figment = figment.merge(Toml::file(path));
        }
        let env = Env::prefixed("ATTEST_").split("__").filter(|key| {
            // Keys arrive already split: `kafka.brokers`.
            let top = key.as_str().split('.').next().unwrap_or_default();
            ENV_KEYS.iter().any(|k| top.eq_ignore_ascii_case(k))
        });
        let config: Config = figment.merge(env).extract().map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks that need no network; dependencies are checked by `health`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn invalid(key: &'static str, problem: impl Into<String>) -> ConfigError {
            ConfigError::Invalid {
                key,
                problem: problem.into(),
            }
        }
        if self.kafka.brokers.trim().is_empty() {
            return Err(invalid("kafka.brokers", "must name at least one host:port"));
        }
        if !is_topic_name(&self.kafka.topic_prefix) {
            return Err(invalid(
                "kafka.topic_prefix",
                "must be 1-200 characters of letters, digits, '.', '_' or '-'",
            ));
        }
        if self.kafka.partitions < 1 {
            return Err(invalid("kafka.partitions", "must be at least 1"));
        }
        if self.kafka.replication_factor < 1 {
            return Err(invalid("kafka.replication_factor", "must be at least 1"));
        }
        if self.kafka.min_insync_replicas < 1
            || self.kafka.min_insync_replicas > self.kafka.replication_factor
        {
            return Err(invalid(
                "kafka.min_insync_replicas",
                "must be between 1 and kafka.replication_factor",
            ));
        }
        if !["none", "gzip", "snappy", "lz4"].contains(&self.kafka.compression.as_str()) {
            return Err(invalid(
                "kafka.compression",
                "must be one of none, gzip, snappy, lz4",
            ));
        }
        if self.kafka.batch_messages == 0 || self.kafka.batch_bytes < 1024 {
            return Err(invalid(
                "kafka.batch_messages",
                "kafka.batch_messages must be at least 1 and kafka.batch_bytes at least 1024",
            ));
        }
        if self.kafka.buffer_kbytes < 1024 {
            return Err(invalid("kafka.buffer_kbytes", "must be at least 1024"));
        }
        if self.kafka.consumer_group.trim().is_empty() {
            return Err(invalid("kafka.consumer_group", "must not be empty"));
        }
        if !(self.clickhouse.url.starts_with("http://")
            || self.clickhouse.url.starts_with("https://"))
        {
            return Err(invalid(
                "clickhouse.url",
                "must be an http:// or https:// URL",
            ));
        }
        // Read routing dials plain TCP: the client is built without TLS.
        if let Some(bad) = self
            .clickhouse
            .read_urls
            .iter()
            .find(|u| !u.starts_with("http://"))
        {
            return Err(invalid(
                "clickhouse.read_urls",
                format!("{} must be an http:// URL", redact_url(bad)),
            ));
        }
        if !is_identifier(&self.clickhouse.database) {
            return Err(invalid(
                "clickhouse.database",
                "must start with a letter or '_' and hold only letters, digits and '_'",
            ));
        }
        if self.writer.max_rows == 0 {
            return Err(invalid("writer.max_rows", "must be at least 1"));
        }
        if !(1..=MAX_INSERTS_IN_FLIGHT).contains(&self.writer.inserts_in_flight) {
            return Err(invalid(
                "writer.inserts_in_flight",
                "must be from 1 to 4 (each is one more batch in memory)",
            ));
        }
        if self.writer.max_age.is_zero() {
            return Err(invalid("writer.max_age", "must be more than 0 ms"));
        }
        if self.writer.retry_initial.is_zero() || self.writer.retry_initial > self.writer.retry_max
        {
            return Err(invalid(
                "writer.retry_initial",
                "must be more than 0 ms and at most writer.retry_max",
            ));
        }
        if self.writer.prefetch_kbytes < 1024 {
            return Err(invalid("writer.prefetch_kbytes", "must be at least 1024"));
        }
        if self.ingest.max_body_bytes < 1024 {
            return Err(invalid("ingest.max_body_bytes", "must be at least 1024"));
        }
        if self.ingest.max_batch_events == 0 {
            return Err(invalid("ingest.max_batch_events", "must be at least 1"));
        }
        if self.ingest.max_in_flight_bytes < self.ingest.max_batch_bytes
            || u32::try_from(self.ingest.max_in_flight_bytes).is_err()
        {
            return Err(invalid(
                "ingest.max_in_flight_bytes",
                "must be at least ingest.max_batch_bytes and below 4 GiB",
            ));
        }
        if self.ingest.max_in_flight_events < self.ingest.max_batch_events {
            return Err(invalid(
                "ingest.max_in_flight_events",
                "must be at least ingest.max_batch_events, or a full batch could never be taken",
            ));
        }
        if self.ingest.max_batch_bytes < self.ingest.max_body_bytes {
            return Err(invalid(
                "ingest.max_batch_bytes",
                "must be at least ingest.max_body_bytes",
            ));
        }
        if self.kafka.producer_recreate_after < self.kafka.message_timeout {
            return Err(invalid(
                "kafka.producer_recreate_after",
                "must be at least kafka.message_timeout, or a producer would be replaced \
                 before one message could time out",
            ));
        }
        if self.ingest.broker_timeout < Duration::from_millis(100)
            || self.ingest.broker_timeout > self.kafka.message_timeout
        {
            return Err(invalid(
                "ingest.broker_timeout",
                "must be at least 100 ms and at most kafka.message_timeout",
            ));
        }
        if self.ingest.spool_max_bytes < 1024 * 1024 {
            return Err(invalid(
                "ingest.spool_max_bytes",
                "must be at least 1048576 (1 MiB)",
            ));
        }
        if self.ingest.spool_forward_batch == 0 {
            return Err(invalid("ingest.spool_forward_batch", "must be at least 1"));
        }
        if self.ingest.key_refresh < Duration::from_millis(100) {
            return Err(invalid("ingest.key_refresh", "must be at least 100 ms"));
        }
        if !self.console.session_secret.is_empty() && self.console.session_secret.len() < 32 {
            return Err(invalid(
                "console.session_secret",
                "must be empty (a random key per process) or at least 32 characters",
            ));
        }
        if self.console.session_ttl < Duration::from_secs(60) {
            return Err(invalid("console.session_ttl", "must be at least 60000 ms"));
        }
        if self.console.access_refresh < Duration::from_millis(100) {
            return Err(invalid("console.access_refresh", "must be at least 100 ms"));
        }
        if self.console.read_window > Duration::from_secs(3600) {
            return Err(invalid("console.read_window", "must be at most 3600000 ms"));
        }
        if !(1..=1_000_000).contains(&self.console.read_queue) {
            return Err(invalid("console.read_queue", "must be 1 to 1000000"));
        }
        if !(1..=64).contains(&self.console.reads_at_once) {
            return Err(invalid("console.reads_at_once", "must be 1 to 64"));
        }
        let url = &self.registry.url;
        let usable = url.is_empty() || url.starts_with("http://") || url.starts_with("https://");
        if !usable {
            return Err(invalid(
                "registry.url",
                "must be empty (the embedded registry) or an http:// or https:// URL",
            ));
        }
        if self.retention.interval < Duration::from_secs(60) {
            return Err(invalid("retention.interval", "must be at least 60000 ms"));
        }
        let policies = std::iter::once(("retention.default_months", self.retention.default_months))
            .chain(
                self.retention
                    .tenants
                    .values()
                    .map(|m| ("retention.tenants", *m)),
            );
        for (key, months) in policies {
            if months > 1200 {
                return Err(invalid(
                    key,
                    format!("{months} months: must be at most 1200 (0 keeps everything)"),
                ));
            }
        }
        self.alerts.validate()?;
        self.detections.validate()?;
        self.trends.validate()?;
        self.integrity.validate()?;
        Ok(())
    }
}

fn is_topic_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// The database name is spliced into DDL, so it must be a plain identifier.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Tamper evidence (docs/INTEGRITY.md): the writer seals what it writes in
/// signed, chained digests.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntegrityConfig {
    /// Seal written rows. Off only for throwaway runs: rows written while
    /// it is off are never sealed.
    pub seal: bool,
    /// Holds `keys.json` (the public keys, published) and one
    /// `<key_id>.secret` per private key (owner-readable only). Every
    /// writer process needs the same directory (a mounted secret in
    /// production).
    pub key_dir: PathBuf,
    /// With no key in `key_dir`, the first writer to start makes one.
    /// Production sets this off and runs `attest integrity keygen` once.
    pub generate_key: bool,
    /// How often the scheduled check runs (on the process the alerts
    /// election picks): chains and signatures whole, rows sealed within
    /// `check_recent`...
    #[serde(with = "millis")]
    pub check_every: Duration,
    #[serde(with = "millis")]
    pub check_recent: Duration,
    /// ...and every row this often.
    #[serde(with = "millis")]
    pub full_check_every: Duration,
}

impl Default for IntegrityConfig {
    fn default() -> Self {
        IntegrityConfig {
            seal: true,
            key_dir: PathBuf::from(".data/integrity"),
            generate_key: true,
            check_every: Duration::from_secs(600),
            check_recent: Duration::from_secs(86_400),
            full_check_every: Duration::from_secs(86_400),
        }
    }
}

impl IntegrityConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.seal && self.key_dir.as_os_str().is_empty() {
            return Err(ConfigError::Invalid {
                key: "integrity.key_dir",
                problem: "must name a directory when integrity.seal is on".into(),
            });
        }
        if self.check_every < Duration::from_secs(1) {
            return Err(ConfigError::Invalid {
                key: "integrity.check_every",
                problem: "must be at least 1000 ms".into(),
            });
        }
        Ok(())
    }
}

/// Pipeline trends (docs/DESIGN.md, "Pipeline trends"): the pipeline
/// page's figures sampled into ClickHouse by one elected server process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrendsConfig {
    /// Take part in the election of the process that samples.
    pub enabled: bool,
    /// How often the elected process samples the figures.
    #[serde(with = "millis")]
    pub sample_every: Duration,
    /// Whole UTC days of samples kept (the 7 d chart needs 8).
    pub keep_days: u32,
    /// How often the elected process removes samples past `keep_days` (and
    /// alert history past `alerts.keep_days`).
    #[serde(with = "millis")]
    pub retention_every: Duration,
}

impl Default for TrendsConfig {
    fn default() -> Self {
        TrendsConfig {
            enabled: true,
            sample_every: Duration::from_secs(10),
            keep_days: 30,
            retention_every: Duration::from_secs(3600),
        }
    }
}

impl TrendsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &'static str, problem: &str| ConfigError::Invalid {
            key,
            problem: problem.to_owned(),
        };
        // Below a second the sampling would cost more than the figures are
        // worth; above ten minutes the 1 h chart has six points.
        if self.sample_every < Duration::from_secs(1)
            || self.sample_every > Duration::from_secs(600)
        {
            return Err(invalid(
                "trends.sample_every",
                "must be between 1000 and 600000 ms",
            ));
        }
        if !(8..=3650).contains(&self.keep_days) {
            return Err(invalid(
                "trends.keep_days",
                "must be between 8 (the 7 d chart and the day being written) and 3650",
            ));
        }
        if self.retention_every < Duration::from_secs(1) {
            return Err(invalid(
                "trends.retention_every",
                "must be at least 1000 ms",
            ));
        }
        Ok(())
    }
}

/// Pipeline alerts (docs/DESIGN.md, "Alerts"): rules over the pipeline's
/// figures, evaluated by one elected server process, delivered to webhooks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// Take part in the election of the process that evaluates the rules.
    pub enabled: bool,
    /// How often the elected process evaluates them.
    #[serde(with = "millis")]
    pub evaluate_every: Duration,
    /// A rule's condition must hold this long before its alert fires...
    #[serde(with = "millis")]
    pub fire_after: Duration,
    /// ...and be gone this long before a firing alert resolves.
    #[serde(with = "millis")]
    pub resolve_after: Duration,
    /// The thresholds until an admin changes them in the console.
    pub rules: app::alerts_model::RuleSettings,
    /// Where alerts are delivered (`[[alerts.webhooks]]`).
    pub webhooks: Vec<WebhookConfig>,
    pub delivery: DeliveryConfig,
    /// Days of alert history kept: delivery attempts, resolved alerts and
    /// superseded rule versions older than this are removed by the trends
    /// sampler's retention round; 0 keeps everything.
    pub keep_days: u32,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            enabled: true,
            evaluate_every: Duration::from_secs(10),
            fire_after: Duration::from_secs(30),
            resolve_after: Duration::from_secs(30),
            rules: app::alerts_model::RuleSettings::default(),
            webhooks: Vec::new(),
            delivery: DeliveryConfig::default(),
            keep_days: 90,
        }
    }
}

impl AlertsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &'static str, problem: String| ConfigError::Invalid { key, problem };
        if self.evaluate_every < Duration::from_millis(100) {
            return Err(invalid(
                "alerts.evaluate_every",
                "must be at least 100 ms".into(),
            ));
        }
        self.rules
            .validate()
            .map_err(|bad| invalid("alerts.rules", bad.to_string()))?;
        validate_delivery(&self.delivery, &self.webhooks, &ALERT_KEYS)
    }
}

/// The configuration keys a section's delivery settings are named by in
/// errors (`alerts.…`, `detections.…`).
struct DeliveryKeys {
    attempts: &'static str,
    timeout: &'static str,
    retry_initial: &'static str,
    name: &'static str,
    url: &'static str,
    secret: &'static str,
    ca_file: &'static str,
}

const ALERT_KEYS: DeliveryKeys = DeliveryKeys {
    attempts: "alerts.delivery.attempts",
    timeout: "alerts.delivery.timeout",
    retry_initial: "alerts.delivery.retry_initial",
    name: "alerts.webhooks.name",
    url: "alerts.webhooks.url",
    secret: "alerts.webhooks.secret",
    ca_file: "alerts.webhooks.ca_file",
};

const DETECTION_KEYS: DeliveryKeys = DeliveryKeys {
    attempts: "detections.delivery.attempts",
    timeout: "detections.delivery.timeout",
    retry_initial: "detections.delivery.retry_initial",
    name: "detections.webhooks.name",
    url: "detections.webhooks.url",
    secret: "detections.webhooks.secret",
    ca_file: "detections.webhooks.ca_file",
};

/// The one check of webhook delivery settings, for alerts and detections.
fn validate_delivery(
    d: &DeliveryConfig,
    webhooks: &[WebhookConfig],
    keys: &DeliveryKeys,
) -> Result<(), ConfigError> {
    let invalid = |key: &'static str, problem: String| ConfigError::Invalid { key, problem };
    if d.attempts == 0 || d.attempts > 20 {
        return Err(invalid(keys.attempts, "must be between 1 and 20".into()));
    }
    if d.timeout < Duration::from_millis(100) {
        return Err(invalid(keys.timeout, "must be at least 100 ms".into()));
    }
    if d.retry_initial.is_zero() || d.retry_initial > d.retry_max {
        return Err(invalid(
            keys.retry_initial,
            "must be more than 0 ms and at most the section's delivery.retry_max".into(),
        ));
    }
    for (i, hook) in webhooks.iter().enumerate() {
        if hook.name.trim().is_empty() || hook.name.len() > 100 {
            return Err(invalid(
                keys.name,
                format!("webhook {}: must be 1-100 characters", i + 1),
            ));
        }
        if webhooks[..i].iter().any(|h| h.name == hook.name) {
            return Err(invalid(
                keys.name,
                format!("{:?} is used by two webhooks", hook.name),
            ));
        }
        let https = hook.url.starts_with("https://");
        if !https && !hook.url.starts_with("http://") {
            return Err(invalid(
                keys.url,
                format!(
                    "webhook {:?}: must be an http:// or https:// URL",
                    hook.name
                ),
            ));
        }
        if let Some(path) = &hook.ca_file {
            if !https {
                return Err(invalid(
                    keys.ca_file,
                    format!(
                        "webhook {:?}: a ca_file is for an https:// URL; this one is http://",
                        hook.name
                    ),
                ));
            }
            crate::notify::tls::check_ca_file(path).map_err(|problem| {
                invalid(keys.ca_file, format!("webhook {:?}: {problem}", hook.name))
            })?;
        }
        if hook.secret.len() < 16 {
            return Err(invalid(
                keys.secret,
                format!("webhook {:?}: must be at least 16 characters", hook.name),
            ));
        }
    }
    Ok(())
}

/// Detections (docs/DESIGN.md, "Detections"): rules over the audit events
/// that analysts keep in the console per tenant, evaluated by the process
/// the alerts election chose, delivered to `[[detections.webhooks]]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectionsConfig {
    /// Evaluate rules (needs `alerts.enabled`: the same election decides
    /// which process evaluates).
    pub enabled: bool,
    /// How often the elected process evaluates every enabled rule.
    #[serde(with = "millis")]
    pub evaluate_every: Duration,
    /// How late an event may arrive and still be counted: each evaluation
    /// looks back over a rule's window plus this.
    #[serde(with = "millis")]
    pub lateness: Duration,
    /// Where firings are delivered.
    pub webhooks: Vec<WebhookConfig>,
    pub delivery: DeliveryConfig,
}

impl Default for DetectionsConfig {
    fn default() -> Self {
        DetectionsConfig {
            enabled: true,
            evaluate_every: Duration::from_secs(30),
            lateness: Duration::from_secs(600),
            webhooks: Vec::new(),
            delivery: DeliveryConfig::default(),
        }
    }
}

impl DetectionsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &'static str, problem: String| ConfigError::Invalid { key, problem };
        if self.evaluate_every < Duration::from_millis(100) {
            return Err(invalid(
                "detections.evaluate_every",
                "must be at least 100 ms".into(),
            ));
        }
        if self.lateness > Duration::from_secs(24 * 3600) {
            return Err(invalid(
                "detections.lateness",
                "must be at most a day".into(),
            ));
        }
        validate_delivery(&self.delivery, &self.webhooks, &DETECTION_KEYS)
    }
}

/// One receiver of alerts or detections.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Shown on the alerts page and in logs, instead of the URL.
    pub name: String,
    /// Never logged or shown (a chat webhook's URL is itself a credential).
    pub url: String,
    /// Key of the `X-Attest-Signature` HMAC; never logged or shown.
    pub secret: String,
    #[serde(default)]
    pub format: WebhookFormat,
    /// PEM file of CA certificates trusted for this webhook besides the
    /// system's roots (a receiver behind a private CA); https URLs only.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("name", &self.name)
            .field("url", &"<redacted>")
            .field("secret", &"<redacted>")
            .field("format", &self.format)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// `json`: the alert as a JSON document; `slack`: Slack's incoming-webhook
/// body (`text` and a coloured attachment).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    #[default]
    Json,
    Slack,
}

/// How deliveries are attempted.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Attempts per message and webhook, the first included.
    pub attempts: u32,
    /// Longest one attempt may take.
    #[serde(with = "millis")]
    pub timeout: Duration,
    /// First wait between attempts; doubles up to `retry_max` (jittered).
    #[serde(with = "millis")]
    pub retry_initial: Duration,
    #[serde(with = "millis")]
    pub retry_max: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            attempts: 6,
            timeout: Duration::from_secs(10),
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
        }
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
// figment's Jail returns its large error type by design.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_point_at_the_local_stack() {
        let c = Config::default();
        c.validate().expect("defaults validate");
        assert_eq!(c.kafka.brokers, "127.0.0.1:19092");
        assert_eq!(c.clickhouse.url, "http://127.0.0.1:18123");
    }

    #[test]
    fn invalid_values_name_their_key() {
        let mut c = Config::default();
        c.clickhouse.database = "attest; DROP".into();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("clickhouse.database"), "{err}");

        let mut c = Config::default();
        c.writer.max_rows = 0;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("writer.max_rows"));

        for in_flight in [0, MAX_INSERTS_IN_FLIGHT + 1] {
            let mut c = Config::default();
            c.writer.inserts_in_flight = in_flight;
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains("writer.inserts_in_flight"), "{err}");
        }

        for at_once in [0, 65] {
            let mut c = Config::default();
            c.console.reads_at_once = at_once;
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains("console.reads_at_once"), "{err}");
        }

        let mut c = Config::default();
        c.kafka.compression = "brotli".into();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("kafka.compression"));
    }

    #[test]
    fn file_and_environment_override_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "attest.toml",
                "listen = \"127.0.0.1:4000\"\n[writer]\nmax_rows = 10\nmax_age = 250\n",
            )?;
            jail.set_env("ATTEST_KAFKA__BROKERS", "10.0.0.1:9092");
            // Not a configuration key: the dev scripts set it; it must be ignored.
            jail.set_env("ATTEST_DATA_DIR", "/tmp/whatever");
            let c = Config::load(Some(Path::new("attest.toml"))).expect("loads");
            assert_eq!(c.listen.port(), 4000);
            assert_eq!(c.writer.max_rows, 10);
            assert_eq!(c.writer.max_age, Duration::from_millis(250));
            assert_eq!(c.kafka.brokers, "10.0.0.1:9092");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_rejected() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("attest.toml", "[kafka]\nbrokerz = \"x\"\n")?;
            let err = Config::load(Some(Path::new("attest.toml")))
                .unwrap_err()
                .to_string();
            assert!(err.contains("brokerz"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn read_nodes_come_from_the_environment_as_a_list_and_must_be_http() {
        figment::Jail::expect_with(|jail| {
            jail.set_env(
                "ATTEST_CLICKHOUSE__READ_URLS",
                r#"["http://ch2:8123", "http://ch3:8123"]"#,
            );
            let c = Config::load(None).expect("loads");
            assert_eq!(
                c.clickhouse.read_nodes(),
                [
                    "http://127.0.0.1:18123",
                    "http://ch2:8123",
                    "http://ch3:8123"
                ]
            );
            jail.set_env("ATTEST_CLICKHOUSE__READ_URLS", r#"["https://ch2:8443"]"#);
            let err = Config::load(None).unwrap_err().to_string();
            assert!(err.contains("clickhouse.read_urls"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_config_file_that_does_not_exist_is_refused() {
        figment::Jail::expect_with(|_| {
            let err = Config::load(Some(Path::new("atest.toml")))
                .unwrap_err()
                .to_string();
            assert!(err.contains("atest.toml does not exist"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn credentials_in_urls_are_redacted() {
        assert_eq!(
            redact_url("https://svc:s3cret@registry:8081/base?x=1"),
            "https://<redacted>@registry:8081/base?x=1"
        );
        assert_eq!(
            redact_url("http://registry:8081/a@b"),
            "http://registry:8081/a@b"
        );
        assert_eq!(redact_url("not a url"), "not a url");
        let registry = RegistryConfig {
            url: "http://u:hunter2@r:8081".into(),
            ..RegistryConfig::default()
        };
        let clickhouse = ClickHouseConfig {
            url: "http://u:hunter2@ch:8123".into(),
            ..ClickHouseConfig::default()
        };
        for shown in [format!("{registry:?}"), format!("{clickhouse:?}")] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("<redacted>@"), "{shown}");
        }
    }

    #[test]
    fn alert_settings_are_checked_and_webhook_secrets_redacted() {
        let mut c = Config::default();
        c.alerts.rules.writer_lag.threshold_s = 0;
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("writer_lag.threshold_s"), "{err}");
        let hook = WebhookConfig {
            name: "ops".into(),
            url: "http://hooks.example/T0/B0/tok3n".into(),
            secret: "s3cret-s3cret-s3cret".into(),
            format: WebhookFormat::Slack,
            ca_file: None,
        };
        let mut c = Config::default();
        c.alerts.webhooks = vec![hook.clone(), hook.clone()];
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("used by two"));
        c.alerts.webhooks = vec![WebhookConfig {
            secret: "short".into(),
            ..hook.clone()
        }];
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("alerts.webhooks.secret"));
        c.alerts.webhooks = vec![hook.clone()];
        c.validate().expect("a good webhook");
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("tok3n"),
            "{shown}"
        );
    }

    #[test]
    fn https_webhooks_take_a_ca_file_that_must_be_usable() {
        let hook = WebhookConfig {
            name: "soc".into(),
            url: "https://hooks.example/in".into(),
            secret: "s3cret-s3cret-s3cret".into(),
            format: WebhookFormat::Json,
            ca_file: None,
        };
        let check = |hook: WebhookConfig| {
            let mut c = Config::default();
            c.detections.webhooks = vec![hook];
            c.validate().err().map(|e| e.to_string())
        };
        assert_eq!(check(hook.clone()), None, "https with the system roots");
        let ftp = check(WebhookConfig {
            url: "ftp://hooks.example/in".into(),
            ..hook.clone()
        });
        assert!(ftp.is_some_and(|e| e.contains("detections.webhooks.url")));
        let missing = check(WebhookConfig {
            ca_file: Some("/nonexistent/attest-ca.pem".into()),
            ..hook.clone()
        })
        .unwrap_or_default();
        assert!(
            missing.contains("detections.webhooks.ca_file") && missing.contains("cannot be read"),
            "{missing}"
        );
        let plain = check(WebhookConfig {
            url: "http://hooks.example/in".into(),
            ca_file: Some("/etc/hostname".into()),
            ..hook.clone()
        });
        assert!(plain.is_some_and(|e| e.contains("is for an https:// URL")));
        let not_pem = std::env::temp_dir().join(format!("attest-not-pem-{}", uuid::Uuid::now_v7()));
        std::fs::write(&not_pem, "hello").expect("temp file");
        let bad = check(WebhookConfig {
            ca_file: Some(not_pem.clone()),
            ..hook
        })
        .unwrap_or_default();
        let _ = std::fs::remove_file(&not_pem);
        assert!(
            bad.contains("detections.webhooks.ca_file") && bad.contains("no PEM certificate"),
            "{bad}"
        );
    }

    #[test]
    fn password_is_redacted_in_debug() {
        let c = ClickHouseConfig {
            password: "hunter2".into(),
            ..ClickHouseConfig::default()
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn trends_settings_are_bounded() {
        let check = |change: fn(&mut Config)| {
            let mut c = Config::default();
            change(&mut c);
            c.validate().err().map(|e| e.to_string())
        };
        assert!(check(|_| {}).is_none());
        let too_often = check(|c| c.trends.sample_every = Duration::from_millis(500));
        assert!(too_often.is_some_and(|e| e.contains("trends.sample_every")));
        let too_rare = check(|c| c.trends.sample_every = Duration::from_secs(601));
        assert!(too_rare.is_some_and(|e| e.contains("trends.sample_every")));
        let short = check(|c| c.trends.keep_days = 7);
        assert!(short.is_some_and(|e| e.contains("trends.keep_days")));
        let busy = check(|c| c.trends.retention_every = Duration::ZERO);
        assert!(busy.is_some_and(|e| e.contains("trends.retention_every")));
    }
}
