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
//! only difference between the two kinds is `trends.enabled`.
//!
//! On 2 shared cores two runs of the same kind differ by more than the 1 %
//! the issue asks about, so the bench also measures the sampler's cost
//! directly: the CPU time (this process, the broker, ClickHouse) of an
//! idle server, writer off, over `BENCH_IDLE_SECS` (default 30) with
//! sampling off and on, alternating, `BENCH_ROUNDS` times each. The
//! difference per sample written, against the CPU the 2 cores offer in one
//! default interval, is the share of the machine (and so, at most, of a
//! writer that uses all of it) that sampling takes.
//!
//! Prints the figures and rewrites the trends section of
//! docs/BENCHMARKS.md. A benchmark, not a test: nothing here asserts a
//! time.

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
use support::{env_usize, load_average, percentile, unique, write_section, Cpu};

/// The cores the local stack shares (the machine's; the figure is a share
/// of what they offer).
fn cores() -> f64 {
    std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)
}

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

/// The whole server on a fresh group, database and spool, with its writer
/// and the sampler on or off.
async fn start(
    base: &Config,
    label: &str,
    writer: bool,
    sampling: bool,
) -> anyhow::Result<(Config, attest_server::Running)> {
    let mut config = base.clone();
    let id = unique();
    config.listen = "127.0.0.1:0".parse()?;
    config.kafka.consumer_group = format!("{}-{label}-{id}", base.kafka.consumer_group);
    config.clickhouse.database = format!("{}_{label}_{id}", base.clickhouse.database);
    config.ingest.spool_dir = std::env::temp_dir().join(format!("attest-bench-spool-{id}"));
    config.writer.enabled = writer;
    config.trends.enabled = sampling;
    let leptos = support::leptos_options();
    let running = attest_server::start(config.clone(), leptos).await?;
    Ok((config, running))
}

/// Stops the server and removes its database and spool.
async fn stop(config: &Config, running: attest_server::Running) {
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
}

/// One run of the whole server over the pre-filled topics, from a fresh
/// group into a fresh database: rows per second until all `n` are in, and
/// (with sampling on) the page's server times.
async fn run(base: &Config, n: usize, label: &str, sampling: bool) -> anyhow::Result<Run> {
    let (config, running) = start(base, label, true, sampling).await?;
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
    stop(&config, running).await;
    Ok(Run {
        rate: n as f64 / elapsed.as_secs_f64(),
        samples,
        page,
    })
}

/// An idle server (writer off, nothing posted) for `secs` after it has
/// settled: the CPU seconds it, the broker and ClickHouse used, and the
/// sample rows written meanwhile.
async fn idle(base: &Config, secs: u64, label: &str, sampling: bool) -> anyhow::Result<Idle> {
    let (config, running) = start(base, label, false, sampling).await?;
    // Start-up (migrations, elections, the first sample) is not the cost
    // asked about: wait until the sampler writes, or as long without it.
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_secs(20)
        && (!sampling || running.metrics.trends_samples_written.get() == 0)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !sampling {
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let (before, samples_before) = (Cpu::now(), running.metrics.trends_samples_written.get());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let used = Cpu::now().since(&before);
    let samples = running.metrics.trends_samples_written.get() - samples_before;
    stop(&config, running).await;
    Ok(Idle {
        cpu: used.bench + used.broker + used.clickhouse,
        samples,
    })
}

struct Idle {
    cpu: f64,
    samples: u64,
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
    // The direct cost: idle servers, alternating as above.
    let idle_secs = u64::try_from(env_usize("BENCH_IDLE_SECS", 30))?;
    let (mut idle_off, mut idle_on) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let a = idle(&config, idle_secs, &format!("idleoff{round}"), false).await?;
        let b = idle(&config, idle_secs, &format!("idleon{round}"), true).await?;
        println!(
            "round {round}: idle {idle_secs} s: {:.3} CPU-s without sampling, {:.3} with ({} sample rows)",
            a.cpu, b.cpu, b.samples
        );
        idle_off.push(a);
        idle_on.push(b);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    // One round of the sampler writes one row per figure; the rows per
    // round are those of one run divided by its rounds.
    let cpu_off = mean(&idle_off.iter().map(|r| r.cpu).collect::<Vec<_>>());
    let cpu_on = mean(&idle_on.iter().map(|r| r.cpu).collect::<Vec<_>>());
    let rounds_on = idle_secs as f64 * 1000.0 / sample_ms.max(1) as f64;
    let per_round = (cpu_on - cpu_off).max(0.0) / rounds_on;
    let default_interval = attest_server::config::TrendsConfig::default()
        .sample_every
        .as_secs_f64();
    let share = per_round / (default_interval * cores()) * 100.0;
    let idle_rows = |v: &[Idle]| {
        v.iter()
            .map(|r| format!("{:.2}", r.cpu))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (off_rate, on_rate) = (mean(&off), mean(&on));
    let spread = {
        let (lo, hi) = off
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
        (hi - lo) / off_rate * 100.0
    };
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
         Between the means: {overhead:.2} % (sampling every {sample_ms} ms); the runs without \
         sampling alone spread over {spread:.1} % of their mean, so on this shared machine the \
         throughput runs cannot resolve a cost near 1 %.\n\n\
         **Measured directly.** An idle server (writer off) for {idle_secs} s, {rounds} time(s) each, \
         alternating: CPU seconds of this process, the broker and ClickHouse without sampling \
         {idle_off_rows} (mean {cpu_off:.2}), with sampling every {sample_ms} ms {idle_on_rows} \
         (mean {cpu_on:.2}). That is {per_round_ms:.1} CPU-ms per sampling round; at the default \
         interval ({default_interval:.0} s) on {cores:.0} cores, **{share:.3} % of the machine** \
         (target < 1 %), and so at most that share of a writer's throughput when the writer \
         uses the whole machine.\n\n\
         Page server time: a pipeline snapshot (Kafka, every ClickHouse node, ingest window) p50 \
         {snap50:.0} ms, p99 {snap99:.0} ms over 10 collections; trends read per window: {trends}.\n",
        date = time::OffsetDateTime::now_utc().date(),
        load = load_average(),
        off_rows = rows(&off),
        on_rows = rows(&on),
        idle_off_rows = idle_rows(&idle_off),
        idle_on_rows = idle_rows(&idle_on),
        per_round_ms = per_round * 1000.0,
        cores = cores(),
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
