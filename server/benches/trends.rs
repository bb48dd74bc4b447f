//! The writer's throughput with the trends sampler on and off, side by
//! side in one run (issue 13: overhead under 1 %), and the pipeline page's
//! server time (one snapshot collection, one trends read per window).
//!
//! `cargo bench -p server --bench trends` with the local stack up.
//! Environment: `BENCH_EVENTS` (default 1,000,000), `BENCH_ROUNDS` (runs
//! of each kind, alternating off/on, default 2), `BENCH_SAMPLE_MS` (the
//! sampling interval of the "on" runs, default 1000: ten times the default
//! rate, so the overhead shown is an upper bound). The whole server runs
//! (`attest_server::start`: writer, alerts, pipeline collector), so the
//! only difference between the two kinds is `trends.enabled`. Prints the
//! figures and rewrites the trends section of docs/BENCHMARKS.md. A
//! benchmark, not a test: nothing here asserts a time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use attest_server::config::Config;
use attest_server::event::{Actor, AuditEvent, Category, Outcome, Resource};
use attest_server::produce::{ensure_topics, EventProducer, Outgoing};
use attest_server::registry::Registry;
use futures::stream::{self, StreamExt};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod support;
use support::{env_usize, load_average, percentile, unique, write_section};

fn event(i: usize, now: i64) -> AuditEvent {
    AuditEvent {
        event_id: format!("trend-bench-{i}"),
        tenant_id: format!("tenant-{}", (i * 7919) % 50),
        occurred_at: now - (i as i64 % 3_600_000),
        received_at: now,
        category: Category::ALL[i % 6],
        action: ["record.read", "record.update", "user.login", "role.grant"][i % 4].to_owned(),
        outcome: Outcome::ALL[i % 3],
        actor: Actor {
            id: format!("user-{}", i % 10_000),
            kind: "user".into(),
            ip: Some(format!("10.{}.{}.{}", i % 200, (i / 200) % 250, i % 250)),
            user_agent: None,
        },
        resource: Some(Resource {
            kind: "record".into(),
            id: format!("rec-{i}"),
        }),
        source_service: format!("svc-{}", i % 12),
        request_id: None,
        metadata: Default::default(),
    }
}

/// One run of the whole server over the pre-filled topics, from a fresh
/// group into a fresh database: rows per second until all `n` are in, and
/// (with sampling on) the page's server times.
async fn run(base: &Config, n: usize, label: &str, sampling: bool) -> anyhow::Result<Run> {
    let mut config = base.clone();
    let id = unique();
    config.listen = "127.0.0.1:0".parse()?;
    config.kafka.consumer_group = format!("{}-{label}-{id}", base.kafka.consumer_group);
    config.clickhouse.database = format!("{}_{label}_{id}", base.clickhouse.database);
    config.ingest.spool_dir = std::env::temp_dir().join(format!("attest-bench-spool-{id}"));
    config.trends.enabled = sampling;
    let leptos = leptos::config::LeptosOptions::builder()
        .output_name("attest")
        .build();
    let running = attest_server::start(config.clone(), leptos).await?;
    let started = Instant::now();
    while (running.metrics.writer_rows_written.get() as usize) < n {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = started.elapsed();
    let samples = running.metrics.trends_samples_written.get();
    let mut page = PageTimes::default();
    if sampling {
        page = page_times(&format!("http://{}", running.addr)).await;
    }
    running.shutdown().await;
    let _ = reqwest::Client::new()
        .post(&config.clickhouse.url)
        .body(format!(
            "DROP DATABASE IF EXISTS {}",
            config.clickhouse.database
        ))
        .send()
        .await;
    let _ = std::fs::remove_dir_all(&config.ingest.spool_dir);
    Ok(Run {
        rate: n as f64 / elapsed.as_secs_f64(),
        samples,
        page,
    })
}

struct Run {
    rate: f64,
    samples: u64,
    page: PageTimes,
}

#[derive(Default)]
struct PageTimes {
    snapshot_p50: f64,
    snapshot_p99: f64,
    trends: Vec<(&'static str, f64)>,
}

/// The server functions the page calls, timed from outside (the console
/// is open: this run has no sign-in). Snapshots are served from a 2 s
/// cache, so requests are spaced past it: each one collects.
async fn page_times(base: &str) -> PageTimes {
    let http = reqwest::Client::new();
    let time = |path: &'static str, form: Vec<(&'static str, &'static str)>| {
        let (http, url) = (http.clone(), format!("{base}/api/{path}"));
        async move {
            let started = Instant::now();
            let ok = http
                .post(url)
                .form(&form)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            ok.then(|| started.elapsed().as_secs_f64() * 1000.0)
        }
    };
    let mut snapshots = Vec::new();
    for _ in 0..10 {
        if let Some(ms) = time("pipeline/snapshot", Vec::new()).await {
            snapshots.push(ms);
        }
        tokio::time::sleep(Duration::from_millis(2_100)).await;
    }
    snapshots.sort_by(|a, b| a.total_cmp(b));
    let mut trends = Vec::new();
    for window in ["1h", "24h", "7d"] {
        if let Some(ms) = time("pipeline/trends", vec![("window", window)]).await {
            trends.push((window, ms));
        }
    }
    PageTimes {
        snapshot_p50: percentile(&snapshots, 0.5),
        snapshot_p99: percentile(&snapshots, 0.99),
        trends,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = env_usize("BENCH_EVENTS", 1_000_000);
    let rounds = env_usize("BENCH_ROUNDS", 2).max(1);
    let sample_ms = env_usize("BENCH_SAMPLE_MS", 1_000);
    let id = unique();
    let mut config = Config::load(None)?;
    config.schemas_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas").into();
    config.kafka.topic_prefix = format!("attest-bench.{id}");
    config.kafka.consumer_group = format!("attest-bench-{id}");
    config.clickhouse.database = format!("attest_bench_{id}");
    config.ingest.require_api_key = false;
    config.console.require_login = false;
    config.trends.sample_every = Duration::from_millis(u64::try_from(sample_ms)?);
    let registry = Arc::new(Registry::load(&config.schemas_dir)?);

    // Pre-fill the topics once; every run reads them from the start.
    let mut topics = attest_server::topics::event_topics(&config.kafka.topic_prefix);
    topics.push(attest_server::topics::dead_letters(
        &config.kafka.topic_prefix,
    ));
    ensure_topics(&config.kafka, &topics).await?;
    let producer = EventProducer::new(&config.kafka)?;
    let now = attest_server::ingest::now_ms();
    stream::iter(0..n)
        .map(|i| {
            let (producer, registry) = (producer.clone(), registry.clone());
            let prefix = config.kafka.topic_prefix.clone();
            async move {
                let e = event(i, now);
                let payload = registry.encode(&e).expect("encodes");
                let topic = attest_server::topics::for_category(&prefix, e.category);
                producer
                    .send(Outgoing {
                        topic: &topic,
                        key: &e.tenant_id,
                        payload: &payload,
                        headers: &[],
                    })
                    .await
                    .expect("acknowledged")
            }
        })
        .buffer_unordered(5_000)
        .collect::<Vec<_>>()
        .await;
    println!("prefill: {n} events");

    // Alternating, so drift on the shared machine falls on both kinds.
    let (mut off, mut on) = (Vec::new(), Vec::new());
    let mut page = PageTimes::default();
    let mut samples = 0;
    for round in 0..rounds {
        let a = run(&config, n, &format!("off{round}"), false).await?;
        println!("round {round}: sampling off {:.0} rows/s", a.rate);
        off.push(a.rate);
        let b = run(&config, n, &format!("on{round}"), true).await?;
        println!(
            "round {round}: sampling on  {:.0} rows/s ({} samples written)",
            b.rate, b.samples
        );
        on.push(b.rate);
        samples += b.samples;
        page = b.page;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (off_rate, on_rate) = (mean(&off), mean(&on));
    let overhead = (off_rate - on_rate) / off_rate * 100.0;
    let rows = |v: &[f64]| {
        v.iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let trends = page
        .trends
        .iter()
        .map(|(w, ms)| format!("{w} {ms:.0} ms"))
        .collect::<Vec<_>>()
        .join(", ");
    let section = format!(
        "## Trends sampling (`cargo bench -p server --bench trends`)\n\n\
         Measured on {date} on the local stack (Kafka 4.1, ClickHouse 18.16, 2 cores, release build); \
         1-minute load average at the end: {load}. The whole server (writer, alerts, pipeline collector) \
         read {n} pre-filled events from a fresh group into a fresh database, {rounds} run(s) each with \
         `trends.enabled` off and on, alternating; sampling every {sample_ms} ms in the \"on\" runs \
         (the default is 10,000 ms: this is an upper bound), {samples} sample rows written in all.\n\n\
         | sampling | writer rows/s (each run) | mean |\n| --- | --- | ---: |\n\
         | off | {off_rows} | {off_rate:.0} |\n\
         | on | {on_rows} | {on_rate:.0} |\n\n\
         Overhead: {overhead:.2} % (target < 1 %).\n\n\
         Page server time: a pipeline snapshot (Kafka, every ClickHouse node, ingest window) p50 \
         {snap50:.0} ms, p99 {snap99:.0} ms over 10 collections; trends read per window: {trends}.\n",
        date = time::OffsetDateTime::now_utc().date(),
        load = load_average(),
        off_rows = rows(&off),
        on_rows = rows(&on),
        snap50 = page.snapshot_p50,
        snap99 = page.snapshot_p99,
    );
    print!("\n{section}");
    write_section("trends", &section)?;
    support::delete_topics(
        &config.kafka.brokers,
        &format!("{}.", config.kafka.topic_prefix),
    )
    .await;
    Ok(())
}
