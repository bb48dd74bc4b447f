//! Attest's server: the console (Leptos SSR), the ingest API, the schema
//! registry, the Kafka producer, the ClickHouse writer and queries.
//!
//! An event's path, one module per stage, each knowing only the next:
//! `http` → `ingest` (validate, `registry` encode) → `produce` (Kafka) →
//! `write` (consume, batch) → `store` (ClickHouse) → `app` pages via the
//! `EventStore` interface.

pub mod access;
pub mod alert;
pub mod backoff;
pub mod config;
pub mod detect;
pub mod dlq;
pub mod event;
pub mod health;
pub mod http;
pub mod ingest;
pub mod integrity;
pub mod keys;
pub mod metrics;
pub mod notify;
mod periodic;
pub mod produce;
pub mod redaction;
pub mod registry;
pub mod retention;
pub mod spool;
pub mod store;
pub mod topics;
pub mod trends;
pub mod write;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use app::store::SharedStore;
use axum::Router;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;
use tracing::info;

use config::Config;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
    #[error(transparent)]
    Dependency(#[from] health::DependencyDown),
    #[error("cannot prepare Kafka: {0}")]
    Kafka(#[from] produce::ProduceError),
    #[error("cannot migrate the ClickHouse schema: {0}")]
    Migrate(#[from] store::StoreError),
    #[error(transparent)]
    Writer(#[from] write::WriteError),
    #[error("cannot open the spool: {0}")]
    Spool(#[from] spool::SpoolError),
    #[error(transparent)]
    Alerts(#[from] alert::AlertStartError),
    #[error(transparent)]
    Trends(#[from] trends::TrendsStartError),
    #[error("integrity keys: {0}")]
    IntegrityKeys(#[from] integrity::keys::KeyError),
    #[error("integrity check: {0}")]
    Integrity(#[from] integrity::check::CheckError),
    #[error("cannot read the writers' committed offsets for the live tail: {0}")]
    Delivered(#[from] write::delivered::DeliveredError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

const SHUTDOWN_HTTP: Duration = Duration::from_secs(15);
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(5);

/// A started server or writer; dropping it does not stop it, `shutdown` does.
pub struct Running {
    pub addr: SocketAddr,
    pub metrics: Arc<metrics::Metrics>,
    stop: CancellationToken,
    http: JoinHandle<()>,
    writer: Option<JoinHandle<()>>,
    producer: produce::EventProducer,
}

impl Running {
    /// Stops accepting requests, lets the writer insert and commit what it
    /// holds, and flushes the producer.
    /// Bounded: requests in flight get `SHUTDOWN_HTTP` (they wait at most
    /// `ingest.broker_timeout` for the broker before spooling), the writer
    /// its own grace period, the producer `SHUTDOWN_FLUSH`. What the broker
    /// has not taken by then is in the spool, and the log says how much.
    pub async fn shutdown(self) {
        self.stop.cancel();
        if tokio::time::timeout(SHUTDOWN_HTTP, self.http)
            .await
            .is_err()
        {
            tracing::warn!("requests still open at shutdown were cut off");
        }
        if let Some(writer) = self.writer {
            let _ = writer.await;
        }
        // librdkafka's flush blocks its thread: off the async workers.
        let producer = self.producer;
        let _ = tokio::task::spawn_blocking(move || producer.flush(SHUTDOWN_FLUSH)).await;
        let spooled = self.metrics.spool_pending_events.get();
        if spooled > 0 {
            tracing::warn!(
                events = spooled,
                "stopped with accepted events still in the spool; they are forwarded on the next start"
            );
        }
    }

    /// The producer this process sends through.
    pub fn producer(&self) -> &produce::EventProducer {
        &self.producer
    }

    /// Cancelling it (e.g. on a signal) starts the shutdown.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }
}

/// What both the server and a standalone writer need, checked and ready.
struct Prepared {
    registry: Arc<registry::Registry>,
    store: store::Store,
    producer: produce::EventProducer,
    metrics: Arc<metrics::Metrics>,
}

/// Loads the contract, checks both dependencies, creates missing topics and
/// applies migrations: a server and a writer may each start first.
async fn prepare(config: &Config) -> Result<Prepared, StartError> {
    // No string or byte run inside a record can be longer than the largest
    // body Attest reads; the default (512 MiB) would let a few bytes ask for
    // that much. Set before anything is decoded: the first call wins.
    // (Block counts are bounded separately, in `registry::bounds`.)
    apache_avro::util::max_allocation_bytes(config.ingest.max_batch_bytes);
    let mut registry = registry::Registry::load(&config.schemas_dir)?;
    if !config.registry.url.is_empty() {
        registry = registry.with_external(&config.registry.url, config.registry.timeout);
    }
    let registry = Arc::new(registry);
    let store = store::Store::new(&config.clickhouse);
    let check_timeout = Duration::from_secs(5);
    health::check_kafka(&config.kafka, check_timeout).await?;
    health::check_clickhouse(&config.clickhouse, &store, check_timeout).await?;

    let mut all_topics = topics::event_topics(&config.kafka.topic_prefix);
    all_topics.push(topics::dead_letters(&config.kafka.topic_prefix));
    produce::ensure_topics(&config.kafka, &all_topics).await?;
    migrate(&store).await?;

    Ok(Prepared {
        registry,
        store,
        producer: produce::EventProducer::new(&config.kafka)?,
        metrics: Arc::new(metrics::Metrics::new()),
    })
}

/// Applies the migrations. Processes that start together take turns
/// (`store::migration_lock`); a statement that fails (ClickHouse restarting,
/// a lock taken over) is tried again a few times before start-up gives up.
async fn migrate(store: &store::Store) -> Result<(), StartError> {
    const ATTEMPTS: u32 = 6;
    let mut delay = Duration::from_millis(500);
    let mut attempt = 1;
    loop {
        match store.migrate().await {
            Ok(()) => return Ok(()),
            Err(error) if attempt < ATTEMPTS => {
                tracing::warn!(%error, attempt, "migration failed, perhaps beside another process's; trying again");
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

fn new_ingest(config: &Config, prepared: &Prepared) -> ingest::Ingest {
    ingest::Ingest::new(
        prepared.registry.clone(),
        prepared.producer.clone(),
        config.kafka.topic_prefix.clone(),
    )
}

/// Console access administration for `attest access`, prepared like
/// [`open_retention`].
pub async fn open_access(config: &Config) -> Result<access::AccessAdmin, StartError> {
    let prepared = prepare(config).await?;
    let ingest = Arc::new(new_ingest(config, &prepared));
    Ok(access::AccessAdmin::new(prepared.store, ingest))
}

/// The dead-letter inbox for `attest dlq`, prepared like
/// [`open_retention`], with the gate that records the operator's actions.
pub async fn open_dead_letters(
    config: &Config,
) -> Result<(dlq::DeadLetterInbox, access::AdminGate), StartError> {
    let prepared = prepare(config).await?;
    let ingest = Arc::new(new_ingest(config, &prepared));
    let inbox = dlq::DeadLetterInbox::new(
        config.kafka.clone(),
        prepared.registry,
        prepared.producer,
        prepared.store,
    );
    Ok((inbox, access::AdminGate::new(Some(ingest))))
}

/// `attest integrity check`: every sealed partition re-verified against
/// the published keys of `integrity.key_dir`, rows sealed since `since_ms`
/// recomputed from ClickHouse.
pub async fn check_integrity(
    config: &Config,
    since_ms: i64,
) -> Result<integrity::check::Report, StartError> {
    let prepared = prepare(config).await?;
    let keys = integrity::KeyRing::load(&config.integrity.key_dir)?;
    Ok(integrity::check::check_all(&prepared.store, &keys, &config.kafka, since_ms).await?)
}

/// Governed redaction for `attest redaction`, prepared like
/// [`open_retention`].
pub async fn open_redactions(config: &Config) -> Result<redaction::Redactions, StartError> {
    let prepared = prepare(config).await?;
    let ingest = Arc::new(new_ingest(config, &prepared));
    Ok(redaction::Redactions::new(
        prepared.store,
        ingest,
        config.integrity.key_dir.clone(),
        config.kafka.clone(),
    ))
}

/// Key administration for `attest keys`, prepared like [`open_retention`].
pub async fn open_keys(config: &Config) -> Result<keys::KeyAdmin, StartError> {
    let prepared = prepare(config).await?;
    let ingest = Arc::new(new_ingest(config, &prepared));
    Ok(keys::KeyAdmin::new(prepared.store, ingest))
}

/// Retention and legal holds for `attest retention` and `attest hold`: the
/// same checks and migrations as a server start, no listener, no writer.
pub async fn open_retention(config: &Config) -> Result<retention::Retention, StartError> {
    let prepared = prepare(config).await?;
    let ingest = Arc::new(new_ingest(config, &prepared));
    retention_of(config, prepared.store, ingest)
}

/// The retention job as `config` sets it up: when writers seal rows, it
/// signs what it removes of them (docs/INTEGRITY.md, section 15).
fn retention_of(
    config: &Config,
    store: store::Store,
    ingest: Arc<ingest::Ingest>,
) -> Result<retention::Retention, StartError> {
    let delivered = write::delivered::DeliveredOffsets::new(&config.kafka, "attest-retention")?;
    let job =
        retention::Retention::new(store, ingest, config.retention.clone(), Arc::new(delivered));
    Ok(if config.integrity.seal {
        job.signing_records(retention::RecordSigning {
            key_dir: config.integrity.key_dir.clone(),
            topic_prefix: config.kafka.topic_prefix.clone(),
        })
    } else {
        job
    })
}

/// The writer under a supervisor: a writer task that ends while the server
/// is not stopping (a panic, or the watchdog asking for a new consumer) is
/// logged and replaced, so the pipeline heals without an operator.
fn spawn_writer(
    config: &Config,
    prepared: &Prepared,
    stop: &CancellationToken,
) -> Result<(JoinHandle<()>, Arc<health::ready::WriterWatch>), StartError> {
    let new_writer = {
        let (kafka, settings) = (config.kafka.clone(), config.writer.clone());
        let (registry, store) = (prepared.registry.clone(), prepared.store.clone());
        let (producer, metrics) = (prepared.producer.clone(), prepared.metrics.clone());
        let integrity = config.integrity.clone();
        move || {
            write::Writer::new(
                &kafka,
                settings.clone(),
                registry.clone(),
                store.clone(),
                producer.clone(),
                metrics.clone(),
            )
            .and_then(|writer| writer.with_sealing(&integrity, &kafka))
        }
    };
    // The first writer is made here, so a bad consumer setting fails start-up.
    let first = new_writer()?;
    tokio::spawn(health::lag::run(
        config.kafka.clone(),
        prepared.metrics.clone(),
        stop.clone(),
    ));
    let watch = Arc::new(health::ready::WriterWatch::default());
    // Marked started before the task runs, so readiness never sees a gap.
    let first_incarnation = stop.child_token();
    watch.started(first_incarnation.clone());
    let supervised = {
        let (watch, stop) = (watch.clone(), stop.clone());
        async move {
            let mut next = Some((first, first_incarnation));
            loop {
                let made = match next.take() {
                    Some(first) => Ok(first),
                    None => new_writer().map(|writer| {
                        let incarnation = stop.child_token();
                        watch.started(incarnation.clone());
                        (writer, incarnation)
                    }),
                };
                let (writer, incarnation) = match made {
                    Ok((writer, incarnation)) => (writer.with_watch(watch.clone()), incarnation),
                    Err(error) => {
                        tracing::error!(%error, "cannot create a writer; trying again");
                        watch.ended(error.to_string());
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            _ = tokio::time::sleep(Duration::from_secs(5)) => continue,
                        }
                    }
                };
                let outcome = tokio::spawn(writer.run(incarnation)).await;
                if stop.is_cancelled() {
                    return;
                }
                let why = match outcome {
                    Ok(()) => "restarted by the watchdog".to_owned(),
                    Err(error) => format!("the writer task failed: {error}"),
                };
                tracing::error!(reason = %why, "writer ended while the server runs; starting a new one");
                watch.ended(why);
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    };
    Ok((tokio::spawn(supervised), watch))
}

/// Readiness for this process, and its watchdog running beside it.
fn readiness(
    config: &Config,
    prepared: &Prepared,
    writer: Option<Arc<health::ready::WriterWatch>>,
    stop: &CancellationToken,
) -> Arc<health::ready::Readiness> {
    let readiness = Arc::new(health::ready::Readiness::new(
        config.kafka.clone(),
        config.clickhouse.clone(),
        prepared.store.clone(),
        prepared.producer.clone(),
        prepared.metrics.clone(),
        writer,
        config.writer.stall_after,
    ));
    tokio::spawn(readiness.clone().watch(stop.clone()));
    readiness
}

/// This process's status reports (`health::procs`), every
/// `trends.sample_every` while trends are on.
fn reporter(
    identity: health::procs::Identity,
    config: &Config,
    prepared: &Prepared,
    readiness: Arc<health::ready::Readiness>,
    stop: &CancellationToken,
) -> Arc<health::procs::Reporter> {
    let reporter = Arc::new(health::procs::Reporter::new(
        identity,
        config.kafka.clone(),
        prepared.store.clone(),
        prepared.metrics.clone(),
        readiness,
        config.trends.sample_every,
        config.trends.enabled,
    ));
    tokio::spawn(reporter.clone().run(stop.clone()));
    reporter
}

async fn bind(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), StartError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })?;
    Ok((listener, local))
}

fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    stop: &CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(http::serve::serve(
        listener,
        app.layer(TraceLayer::new_for_http()),
        stop.clone(),
    ))
}

/// The whole server: console, ingest API, registry, metrics and (unless
/// `writer.enabled` is false) the writer.
/// How often the read nodes are pinged, and how long a ping may take: a
/// node that stops answering leaves the rotation within about three seconds.
const READ_NODE_PING_EVERY: Duration = Duration::from_secs(2);
const READ_NODE_PING_TIMEOUT: Duration = Duration::from_secs(1);

pub async fn start(
    mut config: Config,
    mut leptos_options: LeptosOptions,
) -> Result<Running, StartError> {
    let identity = if config.writer.enabled {
        health::procs::Identity::new(&["console", "ingest", "writer"])
    } else {
        health::procs::Identity::new(&["console", "ingest"])
    };
    config.kafka.writer_client_id = identity.writer_client_id();
    let prepared = prepare(&config).await?;
    let stop = CancellationToken::new();
    let (writer, watch) = if config.writer.enabled {
        let (writer, watch) = spawn_writer(&config, &prepared, &stop)?;
        (Some(writer), Some(watch))
    } else {
        (None, None)
    };
    let readiness = readiness(&config, &prepared, watch, &stop);
    let reporter = reporter(identity, &config, &prepared, readiness.clone(), &stop);
    let spool = spool::Spool::open(
        &config.ingest.spool_dir,
        config.ingest.spool_max_bytes,
        prepared.metrics.clone(),
    )?;
    tokio::spawn(spool::forward::run(
        spool.clone(),
        prepared.producer.clone(),
        config.ingest.spool_forward_batch,
        config.ingest.spool_forward_bytes,
        stop.clone(),
    ));
    let ingest =
        Arc::new(new_ingest(&config, &prepared).with_spool(spool, config.ingest.broker_timeout));
    if prepared.store.read_nodes().is_some() {
        let (store, clickhouse, stop) = (
            prepared.store.clone(),
            config.clickhouse.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            periodic::every(READ_NODE_PING_EVERY, stop, || {
                store.ping_read_nodes(&clickhouse, READ_NODE_PING_TIMEOUT)
            })
            .await
        });
    }
    if config.retention.enabled {
        let retention = retention_of(&config, prepared.store.clone(), ingest.clone())?;
        tokio::spawn(retention.run(config.retention.interval, stop.clone()));
    }
    let keys = if config.ingest.require_api_key {
        let ring = Arc::new(keys::KeyRing::new(prepared.store.clone()));
        tokio::spawn(
            ring.clone()
                .run_refresh(config.ingest.key_refresh, stop.clone()),
        );
        Some(ring)
    } else {
        tracing::warn!("ingest.require_api_key is off: anyone who reaches the API can send events");
        None
    };
    let console_auth = console_auth(&config, &prepared, ingest.clone(), &stop);
    let api = http::router(http::ApiState {
        ingest: ingest.clone(),
        keys,
        registry: prepared.registry.clone(),
        metrics: prepared.metrics.clone(),
        max_body_bytes: config.ingest.max_body_bytes,
        max_batch_bytes: config.ingest.max_batch_bytes,
        max_batch_events: config.ingest.max_batch_events,
        in_flight: Arc::new(tokio::sync::Semaphore::new(
            config.ingest.max_in_flight_events,
        )),
        in_flight_bytes: Arc::new(tokio::sync::Semaphore::new(
            config.ingest.max_in_flight_bytes,
        )),
        body_timeout: config.ingest.body_timeout,
        readiness: readiness.clone(),
        integrity_keys: config.integrity.key_dir.clone(),
    });
    let collector = Arc::new(
        health::pipeline::PipelineCollector::new(
            config.kafka.clone(),
            &config.clickhouse,
            prepared.store.clone(),
            prepared.metrics.clone(),
            readiness,
        )
        .with_processes(reporter),
    );
    let inbox = Arc::new(dlq::DeadLetterInbox::new(
        config.kafka.clone(),
        prepared.registry.clone(),
        prepared.producer.clone(),
        prepared.store.clone(),
    ));
    let alerts = if config.alerts.enabled {
        let alerts = alert::Alerts::start(
            config.alerts.clone(),
            &config.kafka,
            prepared.store.clone(),
            collector.clone(),
            prepared.metrics.clone(),
            &stop,
        )
        .await?;
        tokio::spawn(alerts.clone().run(stop.clone()));
        Some(alerts)
    } else {
        None
    };
    let detections = match (&alerts, config.detections.enabled) {
        (Some(alerts), true) => {
            let detections = detect::Detections::start(
                config.detections.clone(),
                prepared.store.clone(),
                ingest.clone(),
                alerts,
                prepared.metrics.clone(),
                &stop,
            );
            tokio::spawn(detections.clone().run(stop.clone()));
            Some(detections)
        }
        (None, true) => {
            tracing::warn!(
                "detections need alerts.enabled (the alerts election picks the process that \
                 evaluates them): detections are off"
            );
            None
        }
        (_, false) => None,
    };
    match &alerts {
        Some(alerts) => {
            let job = integrity::job::IntegrityJob::new(
                config.integrity.clone(),
                config.kafka.clone(),
                prepared.store.clone(),
                ingest.clone(),
                alerts.leadership(),
                prepared.metrics.clone(),
            );
            tokio::spawn(job.run(stop.clone()));
        }
        None => tracing::warn!(
            "the scheduled integrity check needs alerts.enabled (the alerts election picks              the process that runs it): run `attest integrity check` yourself"
        ),
    }
    if config.trends.enabled {
        let sampler = trends::Sampler::start(
            config.trends.clone(),
            config.alerts.keep_days,
            &config.kafka,
            prepared.store.clone(),
            collector.clone(),
            prepared.metrics.clone(),
            &stop,
        )
        .await?;
        tokio::spawn(sampler.run(stop.clone()));
    }
    let (listener, addr) = bind(config.listen).await?;
    leptos_options.site_addr = addr;
    let reads = match &console_auth {
        http::ConsoleAuth::Open => None,
        http::ConsoleAuth::SignIn { .. } => Some(access::ReadLog::start(
            ingest.clone(),
            config.console.read_window,
            config.console.read_queue,
            prepared.metrics.console_reads_unrecorded.clone(),
            stop.clone(),
        )),
    };
    let redactions = Arc::new(redaction::Redactions::new(
        prepared.store.clone(),
        ingest.clone(),
        config.integrity.key_dir.clone(),
        config.kafka.clone(),
    ));
    let delivered = Arc::new(write::delivered::DeliveredOffsets::new(
        &config.kafka,
        "attest-tail",
    )?);
    let app = console_router(
        leptos_options,
        prepared.store.clone(),
        console_auth,
        ingest,
        SearchParts {
            reads,
            delivered,
            turns: access::ReadTurns::new(config.console.reads_at_once),
        },
        IntegrityParts {
            proofs: http::export::ProofsSetup {
                key_dir: config.integrity.key_dir.clone(),
                topic_prefix: config.kafka.topic_prefix.clone(),
            },
            seals: integrity::event_seal::SealCheck {
                key_dir: config.integrity.key_dir.clone(),
                topic_prefix: config.kafka.topic_prefix.clone(),
                sealing_on: config.integrity.seal,
            },
            redactions,
        },
        AdminParts {
            collector,
            inbox,
            alerts,
            detections,
            sample_every: config.trends.sample_every,
        },
    )
    .merge(api);
    let http = serve(listener, app, &stop);
    info!(%addr, "attest listening");
    Ok(Running {
        addr,
        metrics: prepared.metrics,
        stop,
        http,
        writer,
        producer: prepared.producer,
    })
}

/// A standalone writer (`attest writer`): consumes and inserts, and serves
/// only `/healthz` and `/metrics` on `listen`.
pub async fn start_writer(mut config: Config) -> Result<Running, StartError> {
    let identity = health::procs::Identity::new(&["writer"]);
    config.kafka.writer_client_id = identity.writer_client_id();
    let prepared = prepare(&config).await?;
    let stop = CancellationToken::new();
    let (writer, watch) = spawn_writer(&config, &prepared, &stop)?;
    let readiness = readiness(&config, &prepared, Some(watch), &stop);
    reporter(identity, &config, &prepared, readiness.clone(), &stop);
    let (listener, addr) = bind(config.listen).await?;
    let http = serve(
        listener,
        http::ops_router(prepared.metrics.clone(), readiness),
        &stop,
    );
    info!(%addr, "attest writer running; metrics on /metrics");
    Ok(Running {
        addr,
        metrics: prepared.metrics,
        stop,
        http,
        writer: Some(writer),
        producer: prepared.producer,
    })
}

/// Sign-in, or the open console when `console.require_login` is off.
fn console_auth(
    config: &Config,
    prepared: &Prepared,
    ingest: Arc<ingest::Ingest>,
    stop: &CancellationToken,
) -> http::ConsoleAuth {
    if !config.console.require_login {
        tracing::warn!(
            "console.require_login is off: anyone who reaches the console sees every tenant"
        );
        return http::ConsoleAuth::Open;
    }
    if config.console.session_secret.is_empty() {
        info!("console.session_secret is not set: sessions last only as long as this process");
    }
    let ring = Arc::new(keys::KeyRing::<store::AccessRow>::new(
        prepared.store.clone(),
    ));
    tokio::spawn(
        ring.clone()
            .run_refresh(config.console.access_refresh, stop.clone()),
    );
    let secure = config
        .console
        .secure_cookie
        .unwrap_or(!config.listen.ip().is_loopback());
    let sessions = Arc::new(access::Sessions::new(
        &config.console.session_secret,
        config.console.session_ttl,
        secure,
        ring,
        prepared.store.clone(),
    ));
    tokio::spawn(
        sessions
            .clone()
            .run_refresh(config.console.access_refresh, stop.clone()),
    );
    http::ConsoleAuth::sign_in(sessions, ingest)
}

/// What the admin pages and the evaluators' pages read: the pipeline's
/// figures and trends, the dead-letter inbox, and what the elected process
/// evaluates when on (pipeline alerts; detections, which need the alerts'
/// election).
struct AdminParts {
    collector: Arc<health::pipeline::PipelineCollector>,
    inbox: Arc<dlq::DeadLetterInbox>,
    alerts: Option<Arc<alert::Alerts>>,
    detections: Option<Arc<detect::Detections>>,
    /// `trends.sample_every`, for the trend charts' buckets.
    sample_every: Duration,
}

/// What Search's reads need beside the store: where they are recorded
/// (`None` without sign-in), and the writers' committed offsets, below
/// which the live tail reads.
struct SearchParts {
    reads: Option<access::ReadLog>,
    delivered: Arc<write::delivered::DeliveredOffsets>,
    /// Each viewer's turns at ClickHouse (`console.reads_at_once`).
    turns: access::ReadTurns,
}

/// What the console's integrity features need: exports with proofs, and
/// the event page's check of one event's seal.
struct IntegrityParts {
    proofs: http::export::ProofsSetup,
    seals: integrity::event_seal::SealCheck,
    /// Governed redaction. It records its steps in the tenant's own trail
    /// whatever the console's sign-in mode (without sign-in nobody can
    /// approve: requester and approver are the same anonymous viewer).
    redactions: Arc<redaction::Redactions>,
}

/// The console's pages and server functions, the export download beside
/// them (it streams, which a server function cannot) and sign-in, all
/// behind [`http::require_viewer`]. Each request's store is scoped to its
/// viewer before any page or server function sees it, and so is the
/// pipeline (through the admin gate).
fn console_router(
    options: LeptosOptions,
    store: store::Store,
    auth: http::ConsoleAuth,
    ingest: Arc<ingest::Ingest>,
    search: SearchParts,
    integrity: IntegrityParts,
    admin: AdminParts,
) -> Router {
    let SearchParts {
        reads,
        delivered,
        turns,
    } = search;
    let IntegrityParts {
        proofs,
        seals,
        redactions,
    } = integrity;
    let AdminParts {
        collector,
        inbox,
        alerts,
        detections,
        sample_every,
    } = admin;
    let routes = generate_route_list(app::App);
    let board = Arc::new(app::export_progress::board::ExportBoard::default());
    let recorder = match &auth {
        http::ConsoleAuth::Open => None,
        http::ConsoleAuth::SignIn { .. } => Some(ingest),
    };
    let gate = access::AdminGate::new(recorder.clone());
    let tail_reads = reads.clone();
    let scoped = {
        let store = store.clone();
        let board = board.clone();
        let (collector, gate) = (collector.clone(), gate.clone());
        let alerts = alerts.clone();
        let detections = detections.clone();
        let seals = Arc::new(seals);
        let redactions = redactions.clone();
        move || {
            provide_context(board.clone());
            let viewer = leptos::prelude::use_context::<axum::http::request::Parts>()
                .and_then(|parts| parts.extensions.get::<access::Viewer>().cloned());
            if let Some(viewer) = &viewer {
                provide_context(viewer.info());
            }
            // Leptos has made this request's nonce by now; the page's
            // policy allows the inline scripts that carry it and no others.
            if let (Some(nonce), Some(response)) = (
                leptos::nonce::use_nonce(),
                leptos::prelude::use_context::<leptos_axum::ResponseOptions>(),
            ) {
                if let Ok(policy) =
                    axum::http::HeaderValue::from_str(&http::browser::page_policy(&nonce))
                {
                    response.insert_header(axum::http::header::CONTENT_SECURITY_POLICY, policy);
                }
            }
            let viewer = viewer.unwrap_or_else(access::Viewer::nobody);
            provide_context(app::export_progress::ProgressOwner(
                viewer.access_id.clone(),
            ));
            provide_context(app::store::SharedPipeline(Arc::new(
                http::pipeline::ScopedPipeline {
                    collector: collector.clone(),
                    store: store.clone(),
                    sample_every,
                    gate: gate.clone(),
                    viewer: viewer.clone(),
                },
            )));
            provide_context(app::dead_letters_model::SharedDeadLetters(Arc::new(
                http::dead_letters::ScopedDeadLetters {
                    inbox: inbox.clone(),
                    gate: gate.clone(),
                    viewer: viewer.clone(),
                },
            )));
            if let Some(alerts) = &alerts {
                provide_context(app::alerts_model::SharedAlerts(Arc::new(
                    alert::console::ScopedAlerts {
                        alerts: alerts.clone(),
                        gate: gate.clone(),
                        viewer: viewer.clone(),
                    },
                )));
            }
            if let Some(detections) = &detections {
                provide_context(app::detections_model::SharedDetections(Arc::new(
                    detect::console::ScopedDetections {
                        detections: detections.clone(),
                        viewer: viewer.clone(),
                    },
                )));
            }
            provide_context(app::redactions_model::SharedRedactions(Arc::new(
                http::redactions::ScopedRedactions {
                    redactions: redactions.clone(),
                    viewer: viewer.clone(),
                },
            )));
            provide_context(app::integrity_model::SharedSeals(Arc::new(
                integrity::event_seal::ScopedSeals {
                    store: store.clone(),
                    setup: seals.clone(),
                    viewer: viewer.clone(),
                },
            )));
            provide_context(SharedStore(Arc::new(
                access::ScopedStore::new(store.clone(), viewer)
                    .recording(reads.clone())
                    .taking_turns(&turns),
            )));
        }
    };
    // The bundle (WASM, JS, CSS) straight from disk, not through Leptos's
    // fallback, which forwards only `Accept-Encoding`: with it a browser's
    // revalidation (`If-Modified-Since`, asked for by the assets'
    // `no-cache`) was never answered 304, and every visit downloaded the
    // whole WASM again. The brotli and gzip copies the release build stores
    // beside each file are sent as they are.
    let pkg = format!("/{}", options.site_pkg_dir);
    let pkg_files = tower_http::services::ServeDir::new(
        std::path::Path::new(&*options.site_root).join(&*options.site_pkg_dir),
    )
    .precompressed_br()
    .precompressed_gzip();
    Router::new()
        .leptos_routes_with_context(&options, routes, scoped, {
            let options = options.clone();
            move || app::shell(options.clone())
        })
        .nest_service(&pkg, pkg_files)
        .fallback(leptos_axum::file_and_error_handler(app::shell))
        .with_state(options)
        .merge(http::tail::router(http::tail::TailRoutes {
            store: store.clone(),
            reads: tail_reads,
            delivered,
        }))
        .merge(http::export::export_router(store, board, recorder, proofs))
        .merge(http::redactions::router(redactions))
        .merge(http::pipeline::router(http::pipeline::PipelineRoutes {
            collector,
            gate,
        }))
        .merge(
            Router::new()
                .route("/login", axum::routing::post(http::login))
                .route("/logout", axum::routing::post(http::logout))
                .with_state(auth.clone()),
        )
        .layer(axum::middleware::from_fn_with_state(
            auth,
            http::require_viewer,
        ))
        // Outermost: a cross-site post is refused before anything reads it,
        // and every answer (a sign-in redirect too) gets the headers.
        .layer(axum::middleware::from_fn(http::browser::guard))
        .layer(tower_http::compression::CompressionLayer::new())
}
