//! Sustained end-to-end rate: events posted over HTTP with the writer on,
//! for minutes, at the highest rate whose lag stays bounded; on fresh
//! topics and again once millions more events are stored; side by side
//! with a bare producer and a bare consumer of the same broker, without
//! headers, in the same run (issue 12).
//!
//! `cargo bench -p server --bench sustained` with the local stack up.
//! Environment: `BENCH_SUSTAINED_SECS` (each sustained run, default 600),
//! `BENCH_FILL_EVENTS` (stored between the two runs, default 5,000,000),
//! `BENCH_BARE_EVENTS` (bare producer and consumer, default 1,000,000),
//! `BENCH_PROBE_SECS` (each step of the search for the peak, default 20),
//! `BENCH_RATE` (events/s: skip the search and use this rate).
//! Prints the figures and rewrites the sustained section of
//! docs/BENCHMARKS.md. A benchmark, not a test: nothing here asserts a time.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use attest_server::config::Config;
use attest_server::event::{Actor, AuditEvent, Category, Outcome, Resource};
use attest_server::produce::{ensure_topics, EventProducer, Outgoing};
use attest_server::registry::Registry;
use futures::stream::{self, StreamExt};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

// The allocator of the `attest` binary, for Attest's path and the bare one
// alike.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod support;
use support::{env_usize, load_average, percentile, unique, write_section, Cpu};

const BATCH: usize = 500;
const CLIENTS: usize = 8;
/// Lag counts as bounded while the writer is at most this far behind.
const LAG_BOUND: Duration = Duration::from_secs(2);

fn event(i: u64, now: i64, prefix: &str) -> AuditEvent {
    let mut metadata = std::collections::BTreeMap::new();
    metadata.insert(
        "region".to_owned(),
        ["eu-west-1", "us-east-1"][(i % 2) as usize].to_owned(),
    );
    metadata.insert(
        "request_path".to_owned(),
        format!("/api/v2/records/{}", i % 5000),
    );
    AuditEvent {
        event_id: format!("{prefix}-{i}"),
        tenant_id: format!("tenant-{}", i % 50),
        occurred_at: now - (i % 3_600_000) as i64,
        received_at: now,
        category: Category::ALL[(i % 6) as usize],
        action: ["record.read", "record.update", "user.login", "role.grant"][(i % 4) as usize]
            .to_owned(),
        outcome: Outcome::ALL[(i % 3) as usize],
        actor: Actor {
            id: format!("user-{}", i % 10_000),
            kind: "user".into(),
            ip: Some(format!("10.{}.{}.{}", i % 200, (i / 200) % 250, i % 250)),
            user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) bench".into()),
        },
        resource: Some(Resource {
            kind: "record".into(),
            id: format!("rec-{i}"),
        }),
        source_service: format!("svc-{}", i % 12),
        request_id: Some(format!("req-{i}")),
        metadata,
    }
}

/// A request body of `BATCH` events as a service sends them, built from
/// pre-rendered JSON around a fresh id, so the load generator spends little
/// of the 2 cores.
struct Bodies {
    /// Each template split where the event id goes.
    templates: Vec<(String, String)>,
    next: AtomicU64,
    run: String,
}

impl Bodies {
    fn new(run: &str) -> Bodies {
        let now = attest_server::ingest::now_ms();
        let templates = (0..64)
            .map(|i| {
                let e = event(i, now, "ID");
                let json = serde_json::json!({
                    "event_id": "@@ID@@",
                    "occurred_at": e.occurred_at,
                    "category": e.category.as_str(),
                    "action": e.action,
                    "outcome": e.outcome.as_str(),
                    "actor": {"id": e.actor.id, "type": e.actor.kind, "ip": e.actor.ip, "user_agent": e.actor.user_agent},
                    "resource": {"type": "record", "id": format!("rec-{i}")},
                    "request_id": format!("req-{i}"),
                    "metadata": e.metadata,
                })
                .to_string();
                let (a, b) = json.split_once("@@ID@@").unwrap_or((&json, ""));
                (a.to_owned(), b.to_owned())
            })
            .collect();
        Bodies {
            templates,
            next: AtomicU64::new(0),
            run: run.to_owned(),
        }
    }

    fn body(&self) -> String {
        let first = self.next.fetch_add(BATCH as u64, Ordering::Relaxed);
        let mut out = String::with_capacity(BATCH * 520);
        out.push('[');
        for k in 0..BATCH as u64 {
            if k > 0 {
                out.push(',');
            }
            let (a, b) = &self.templates[((first + k) % 64) as usize];
            out.push_str(a);
            out.push_str(&self.run);
            out.push('-');
            out.push_str(&(first + k).to_string());
            out.push_str(b);
        }
        out.push(']');
        out
    }
}

/// What one paced run measured.
struct Run {
    offered: f64,
    accepted: u64,
    secs: f64,
    /// Per 10 s: (events accepted, rows written) in that window.
    windows: Vec<(u64, u64)>,
    /// Greatest (accepted − written) seen, in events.
    max_lag: u64,
    /// Accepted − written at the end of the run, before draining.
    end_lag: u64,
    latencies_ms: Vec<f64>,
    cpu: Cpu,
    errors: u64,
}

async fn rows_written(http: &reqwest::Client, base: &str) -> u64 {
    let Ok(r) = http.get(format!("{base}/metrics")).send().await else {
        return 0;
    };
    let text = r.text().await.unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("attest_writer_rows_written_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or(0)
}

/// Posts at `rate` events/s for `secs` from `CLIENTS` clients, sampling
/// the writer every second.
async fn paced(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    bodies: &Arc<Bodies>,
    rate: f64,
    secs: u64,
) -> Run {
    let url = Arc::new(format!("{base}/api/v1/events/batch"));
    let accepted = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let requests = (rate * secs as f64 / BATCH as f64).round() as usize;
    let interval = Duration::from_secs_f64(BATCH as f64 / rate);
    let written_before = rows_written(http, base).await;
    let cpu_before = Cpu::now();
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (http, url, key, bodies, next, accepted, errors) = (
            http.clone(),
            url.clone(),
            key.to_owned(),
            bodies.clone(),
            next.clone(),
            accepted.clone(),
            errors.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    return latencies;
                }
                tokio::time::sleep_until((started + interval * i as u32).into()).await;
                let body = bodies.body();
                let sent = Instant::now();
                let r = http
                    .post(url.as_str())
                    .header("content-type", "application/json")
                    .header("authorization", format!("Bearer {key}"))
                    .body(body)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().as_u16() == 202 => {
                        latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                        accepted.fetch_add(BATCH as u64, Ordering::Relaxed);
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let mut windows = Vec::new();
    let mut max_lag = 0;
    let (mut last_accepted, mut last_written) = (0, 0);
    let mut tick = started;
    while !tasks.iter().all(|t| t.is_finished()) {
        tick += Duration::from_secs(1);
        tokio::time::sleep_until(tick.into()).await;
        let a = accepted.load(Ordering::Relaxed);
        let w = rows_written(http, base)
            .await
            .saturating_sub(written_before);
        max_lag = max_lag.max(a.saturating_sub(w));
        let elapsed = tick.duration_since(started).as_secs();
        if elapsed.is_multiple_of(10) {
            windows.push((a - last_accepted, w.saturating_sub(last_written)));
            (last_accepted, last_written) = (a, w);
        }
    }
    let mut latencies_ms = Vec::new();
    for t in tasks {
        latencies_ms.extend(t.await.unwrap_or_default());
    }
    let secs_taken = started.elapsed().as_secs_f64();
    let total = accepted.load(Ordering::Relaxed);
    let end_lag = total.saturating_sub(
        rows_written(http, base)
            .await
            .saturating_sub(written_before),
    );
    // Drain before the next run, and count the drain's CPU in this run.
    let deadline = Instant::now() + Duration::from_secs(600);
    while rows_written(http, base)
        .await
        .saturating_sub(written_before)
        < total
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    latencies_ms.sort_by(|a, b| a.total_cmp(b));
    Run {
        offered: rate,
        accepted: total,
        secs: secs_taken,
        windows,
        max_lag,
        end_lag,
        latencies_ms,
        cpu: Cpu::now().since(&cpu_before),
        errors: errors.load(Ordering::Relaxed),
    }
}

impl Run {
    fn rate(&self) -> f64 {
        self.accepted as f64 / self.secs
    }

    /// Kept up: nearly all offered got through, and the writer was never
    /// more than `LAG_BOUND` behind.
    fn bounded(&self) -> bool {
        self.errors == 0
            && self.rate() >= 0.97 * self.offered
            && (self.max_lag as f64) <= self.offered * LAG_BOUND.as_secs_f64()
    }

    /// Written per 10 s window, as events/s: (lowest, highest), the first
    /// and last windows left out (ramp-up and the partial end).
    fn written_range(&self) -> (f64, f64) {
        let inner: Vec<f64> = self
            .windows
            .iter()
            .skip(1)
            .take(self.windows.len().saturating_sub(2))
            .map(|(_, w)| *w as f64 / 10.0)
            .collect();
        if inner.is_empty() {
            return (f64::NAN, f64::NAN);
        }
        let lo = inner.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = inner.iter().copied().fold(0.0, f64::max);
        (lo, hi)
    }
}

/// Pre-encoded records of the same schema, no header, produced as fast as
/// the producer takes them; returns (events/s, CPU).
async fn bare_produce(
    config: &Config,
    topics: &[String],
    records: &[(String, Vec<u8>)],
    header: bool,
) -> anyhow::Result<(f64, Cpu)> {
    let producer = EventProducer::new(&config.kafka)?;
    let cpu = Cpu::now();
    let started = Instant::now();
    stream::iter(records.iter().enumerate())
        .map(|(i, (id, payload))| {
            let producer = producer.clone();
            let topic = &topics[i % topics.len()];
            async move {
                let sent = if header {
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
                sent.map(drop)
            }
        })
        .buffer_unordered(5_000)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<()>, _>>()?;
    let rate = records.len() as f64 / started.elapsed().as_secs_f64();
    Ok((rate, Cpu::now().since(&cpu)))
}

fn encode(
    registry: &Registry,
    prefix: &str,
    range: std::ops::Range<u64>,
) -> Vec<(String, Vec<u8>)> {
    let now = attest_server::ingest::now_ms();
    range
        .map(|i| {
            let e = event(i, now, prefix);
            let payload = registry.encode(&e).expect("encodes");
            (e.event_id, payload)
        })
        .collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let secs = env_usize("BENCH_SUSTAINED_SECS", 600) as u64;
    let fill = env_usize("BENCH_FILL_EVENTS", 5_000_000);
    let bare_n = env_usize("BENCH_BARE_EVENTS", 1_000_000);
    let probe_secs = env_usize("BENCH_PROBE_SECS", 20) as u64;
    let id = unique();
    let config = support::bench_config("-sustained", &id)?;
    let registry = Registry::load(&config.schemas_dir)?;
    let http = reqwest::Client::new();
    let load_at_start = load_average();

    // 1. The bare producer and the bare consumer: the broker's ceiling.
    let mut bare = config.clone();
    bare.kafka.topic_prefix = format!("{}.bare", config.kafka.topic_prefix);
    let bare_topics = attest_server::topics::event_topics(&bare.kafka.topic_prefix);
    ensure_topics(&bare.kafka, &bare_topics).await?;
    let records = encode(&registry, "bare", 0..bare_n as u64);
    let (produce_rate, produce_cpu) = bare_produce(&bare, &bare_topics, &records, false).await?;
    drop(records);
    println!("bare producer: {produce_rate:.0} events/s");
    let kafka = bare.kafka.clone();
    let topics = bare_topics.clone();
    let (consume_rate, consume_cpu) =
        tokio::task::spawn_blocking(move || -> anyhow::Result<(f64, Cpu)> {
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &kafka.brokers)
                .set("group.id", format!("{}-bare", kafka.consumer_group))
                .set("enable.auto.commit", "false")
                .set("auto.offset.reset", "earliest")
                .create()?;
            let names: Vec<&str> = topics.iter().map(String::as_str).collect();
            consumer.subscribe(&names)?;
            let cpu = Cpu::now();
            let started = Instant::now();
            let mut read = 0;
            let mut bytes = 0usize;
            while read < bare_n {
                if let Some(m) = consumer.poll(Duration::from_millis(500)) {
                    let m = m?;
                    bytes += rdkafka::Message::payload(&m).map_or(0, <[u8]>::len);
                    read += 1;
                }
            }
            std::hint::black_box(bytes);
            Ok((
                read as f64 / started.elapsed().as_secs_f64(),
                Cpu::now().since(&cpu),
            ))
        })
        .await??;
    println!("bare consumer: {consume_rate:.0} events/s");

    // 2. Attest, writer on, through the front door.
    let leptos = support::leptos_options();
    let running = attest_server::start(config.clone(), leptos).await?;
    let base = format!("http://{}", running.addr);
    let key = attest_server::open_keys(&config)
        .await?
        .create("bench", "bench", &[], "sustained benchmark", "bench")
        .await?
        .key;
    let bodies = Arc::new(Bodies::new("fresh"));

    // 3. The highest rate whose lag stays bounded: bisection on short runs.
    // `BENCH_RATE` skips the search (for profiling at a known rate).
    let fixed = env_usize("BENCH_RATE", 0) as f64;
    let (mut lo, mut hi) = (fixed, produce_rate);
    let mut probes = Vec::new();
    for _ in 0..if fixed > 0.0 { 0 } else { 6 } {
        let rate = if lo == 0.0 { hi / 4.0 } else { (lo + hi) / 2.0 };
        let run = paced(&http, &base, &key, &bodies, rate, probe_secs).await;
        println!(
            "probe at {rate:.0}/s: {:.0}/s accepted, max lag {} events, bounded: {}",
            run.rate(),
            run.max_lag,
            run.bounded()
        );
        probes.push((rate, run.bounded()));
        if run.bounded() {
            lo = rate;
        } else {
            hi = rate;
        }
        if hi - lo < 0.05 * hi {
            break;
        }
    }
    let peak = lo.max(1_000.0);

    // 4. Sustained on fresh topics.
    let fresh = paced(&http, &base, &key, &bodies, peak, secs).await;
    report_run("fresh topics", &fresh);

    // 5. Fill the topics and the table, as ingest would (header and all),
    // and let the writer catch up.
    let topics = attest_server::topics::event_topics(&config.kafka.topic_prefix);
    let before = rows_written(&http, &base).await;
    let fill_started = Instant::now();
    let mut filled = 0u64;
    while filled < fill as u64 {
        let chunk = (fill as u64 - filled).min(500_000);
        let records = encode(&registry, "fill", filled..filled + chunk);
        bare_produce(&config, &topics, &records, true).await?;
        filled += chunk;
    }
    while rows_written(&http, &base).await.saturating_sub(before) < filled {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let catch_up = fill_started.elapsed();
    println!(
        "filled {filled} events in {:.0} s (produce and write, overlapped)",
        catch_up.as_secs_f64()
    );

    // 6. Sustained again on the full broker.
    let bodies = Arc::new(Bodies::new("full"));
    let full = paced(&http, &base, &key, &bodies, peak, secs).await;
    report_run("after the fill", &full);
    running.shutdown().await;

    // 7. Report.
    let row = |name: &str, r: &Run| {
        let (lo, hi) = r.written_range();
        let p50 = percentile(&r.latencies_ms, 0.5);
        let p99 = percentile(&r.latencies_ms, 0.99);
        format!(
            "| attest, {name} | {:.0} events/s | {:.2} | {lo:.0}–{hi:.0} | {} events ({:.2} s) | {} | {p50:.0} / {p99:.0} ms | {} |\n",
            r.rate(),
            r.rate() / produce_rate,
            r.max_lag,
            r.max_lag as f64 / r.rate().max(1.0),
            r.end_lag,
            r.cpu.per_million(r.accepted as usize),
        )
    };
    let probes_text = probes
        .iter()
        .map(|(r, ok)| format!("{r:.0}/s {}", if *ok { "bounded" } else { "not" }))
        .collect::<Vec<_>>()
        .join(", ");
    let section = format!(
        "## Sustained end to end (`cargo bench -p server --bench sustained`)\n\n\
         Measured on {date} on the local stack: Apache Kafka 4.1.1 (one KRaft node, loopback), ClickHouse 18.16, 2 cores shared by \
         the broker, ClickHouse, Attest and the load generator; release build. Attest runs `serve` with its writer on; {CLIENTS} clients \
         post batches of {BATCH} events over HTTP with an API key, paced at the rate found below. Every figure comes from the same run.\n\n\
         The rate is the highest whose lag stays bounded (no refusals, ≥ 97 % of the offered rate accepted, the writer never more than \
         {lag} s behind), found by bisection on {probe_secs} s runs: {probes_text}. It was then held for {secs} s on fresh topics, \
         and again after {filled} more events (a ClickHouse table and a broker holding them) were produced as ingest produces them \
         and written (in {fill_s:.0} s).\n\n\
         | path | rate | vs. bare producer | written per 10 s (min–max) | greatest lag | lag at the end | request p50 / p99 | CPU-s per 1M events: bench + broker + ClickHouse |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n\
         | bare producer, same records encoded beforehand, no header, idempotent, `acks=all` | {produce_rate:.0} events/s | 1.00 | | | | | {pc} |\n\
         | bare consumer of those records | {consume_rate:.0} events/s | | | | | | {cc} |\n\
         {fresh_row}{full_row}\n\
         The bench process holds Attest (ingest, spool, writer) and the load generator, so its CPU is theirs together. Issue 12's target \
         for this ratio is ≥ 0.8. The 1-minute load average was {load_at_start} at the start and {load_at_end} at the end.\n",
        load_at_end = load_average(),
        date = time::OffsetDateTime::now_utc().date(),
        lag = LAG_BOUND.as_secs(),
        fill_s = catch_up.as_secs_f64(),
        pc = produce_cpu.per_million(bare_n),
        cc = consume_cpu.per_million(bare_n),
        fresh_row = row("fresh topics", &fresh),
        full_row = row(&format!("after {filled} more stored"), &full),
    );
    print!("\n{section}");
    write_section("sustained", &section)?;
    let _ = http
        .post(&config.clickhouse.url)
        .body(format!(
            "DROP DATABASE IF EXISTS {}",
            config.clickhouse.database
        ))
        .send()
        .await;
    support::delete_topics(
        &config.kafka.brokers,
        &format!("{}.", config.kafka.topic_prefix),
    )
    .await;
    Ok(())
}

fn report_run(name: &str, r: &Run) {
    let (lo, hi) = r.written_range();
    println!(
        "{name}: offered {:.0}/s, accepted {:.0}/s over {:.0} s, written {lo:.0}–{hi:.0}/s per 10 s, \
         greatest lag {} events, {} at the end, p99 {:.0} ms, {} refused requests",
        r.offered,
        r.rate(),
        r.secs,
        r.max_lag,
        r.end_lag,
        percentile(&r.latencies_ms, 0.99),
        r.errors
    );
}
