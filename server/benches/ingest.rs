//! Ingest throughput and latency against a bare rdkafka producer.
//!
//! `cargo bench -p server --bench ingest` with the local stack up
//! (`scripts/stack.sh up`). Environment: `BENCH_INGEST_EVENTS` (default
//! 200,000), `BENCH_BATCH` (events per request, default 500),
//! `BENCH_CLIENTS` (concurrent clients, default 8), `BENCH_STEADY_SECS`
//! (default 15). Prints the figures and rewrites the ingest section of
//! docs/BENCHMARKS.md. A benchmark, not a test: nothing here asserts a time.
//!
//! 1. Peak: N events sent by C clients, each the Rust SDK (`attest-client`,
//!    what services run: its queue, batching, JSON encoding and retries),
//!    through the whole front door (API key, validation, Avro encoding,
//!    idempotent producer with `acks=all`, the `202`).
//! 2. Bare: the same events, encoded once beforehand, produced by the same
//!    producer configuration from C tasks, each waiting for its chunk's
//!    acknowledgements: the ceiling ingest is measured against.
//! 3. Latency: requests at half of the measured peak for a while, each one
//!    `Client::send_now` of a batch, p50/p99.

use std::sync::Arc;
use std::time::{Duration, Instant};

use attest_server::produce::{ensure_topics, EventProducer};
use attest_server::registry::Registry;
use serde_json::{json, Value};

// The allocator of the `attest` binary, for Attest's path and the bare one
// alike.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod support;
use support::{env_usize, load_average, percentile, unique, write_section, Cpu};

const CATEGORIES: [&str; 6] = [
    "authentication",
    "data_access",
    "data_modification",
    "permission_change",
    "admin",
    "system",
];
const ACTIONS: [&str; 4] = ["record.read", "record.update", "user.login", "role.grant"];
const OUTCOMES: [&str; 3] = ["success", "failure", "denied"];
const REGIONS: [&str; 2] = ["eu-west-1", "us-east-1"];

fn event(i: usize, now: i64) -> Value {
    json!({
        "event_id": format!("ingest-{i}"),
        "occurred_at": now - (i as i64 % 3_600_000),
        "category": CATEGORIES[i % 6],
        "action": ACTIONS[i % 4],
        "outcome": OUTCOMES[i % 3],
        "actor": {
            "id": format!("user-{}", i % 10_000),
            "type": "user",
            "ip": format!("10.{}.{}.{}", i % 200, (i / 200) % 250, i % 250),
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64) bench"
        },
        "resource": {"type": "record", "id": format!("rec-{i}")},
        "request_id": format!("req-{i}"),
        "metadata": {"region": REGIONS[i % 2], "request_path": format!("/api/v2/records/{}", i % 5000)}
    })
}

/// A client as a service would run it: the Rust SDK with the bench's key,
/// sending batches of `batch`.
fn sdk_client(base: &str, key: &str, batch: usize) -> anyhow::Result<attest_client::Client> {
    let mut config = attest_client::Config::new(base).api_key(key);
    config.batch_size = batch;
    // A bench that hits 429/503 should say so, not wait minutes.
    config.retry_for = Duration::from_secs(30);
    Ok(attest_client::Client::new(config)?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = env_usize("BENCH_INGEST_EVENTS", 200_000);
    let batch = env_usize("BENCH_BATCH", 500).max(1);
    let clients = env_usize("BENCH_CLIENTS", 8).max(1);
    let steady_secs = env_usize("BENCH_STEADY_SECS", 15);
    let id = unique();
    let mut config = support::bench_config("-ingest", &id)?;
    // Ingest alone: the writer would compete for the same 2 cores.
    config.writer.enabled = false;
    let http = reqwest::Client::new();

    let leptos = support::leptos_options();
    let running = attest_server::start(config.clone(), leptos).await?;
    let key = attest_server::open_keys(&config)
        .await?
        .create("bench", "bench", &[], "ingest benchmark", "bench")
        .await?
        .key;
    let base = format!("http://{}", running.addr);
    let now = attest_server::ingest::now_ms();

    // 1. Peak through the front door, from C SDK clients, each sending its
    // share of the events (built beforehand, as a service has them).
    let shares: Vec<Vec<Value>> = (0..clients)
        .map(|c| (c..n).step_by(clients).map(|i| event(i, now)).collect())
        .collect();
    let cpu = Cpu::now();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for share in shares {
        let client = sdk_client(&base, &key, batch)?;
        tasks.push(tokio::spawn(async move {
            for chunk in share.chunks(batch) {
                client.send_batch(chunk).await?;
            }
            client.close().await?;
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let ingest_time = started.elapsed();
    let ingest_cpu = Cpu::now().since(&cpu);
    let ingest_rate = n as f64 / ingest_time.as_secs_f64();
    println!(
        "ingest: {ingest_rate:.0} events/s ({n} events, batches of {batch}, {clients} clients)"
    );

    // 2. The bare producer on the same encoded records.
    let registry = Registry::load(&config.schemas_dir)?;
    let mut bare_kafka = config.kafka.clone();
    bare_kafka.topic_prefix = format!("{}.bare", config.kafka.topic_prefix);
    // The very records ingest produced: each event above, as the key
    // completes it, validated and encoded beforehand, to its category's
    // topic keyed by its tenant, so the broker sees the same topics,
    // partitions and bytes.
    let records: Vec<(String, String, Vec<u8>)> = (0..n)
        .map(|i| {
            let mut value = event(i, now);
            value["tenant_id"] = "bench".into();
            value["source_service"] = "bench".into();
            let e = attest_server::ingest::validate::parse_value(i, value, now, String::new)
                .map_err(|e| anyhow::anyhow!("bench event {i} is invalid: {e:?}"))?;
            let topic = attest_server::topics::for_category(&bare_kafka.topic_prefix, e.category);
            Ok((topic, e.event_id.clone(), registry.encode(&e)?))
        })
        .collect::<anyhow::Result<_>>()?;
    let mut topics: Vec<String> = records.iter().map(|(t, _, _)| t.clone()).collect();
    topics.sort();
    topics.dedup();
    ensure_topics(&bare_kafka, &topics).await?;
    let producer = EventProducer::new(&bare_kafka)?;
    let records = Arc::new(records);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let cpu = Cpu::now();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (producer, records, next) = (producer.clone(), records.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let chunk = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(slice) =
                    records.get(chunk * batch..((chunk + 1) * batch).min(records.len()))
                else {
                    return Ok::<_, anyhow::Error>(());
                };
                if slice.is_empty() {
                    return Ok(());
                }
                let sends = slice
                    .iter()
                    .map(|(topic, id, payload)| producer.send_event(topic, "bench", id, payload));
                for r in futures::future::join_all(sends).await {
                    r?;
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let bare_rate = n as f64 / started.elapsed().as_secs_f64();
    let bare_cpu = Cpu::now().since(&cpu);
    println!("bare producer: {bare_rate:.0} events/s");

    // 3. Latency at half of the peak, paced.
    let target = ingest_rate / 2.0;
    let requests_per_s = (target / batch as f64).max(1.0);
    let total = (requests_per_s * steady_secs as f64).round() as usize;
    let tick = Duration::from_secs_f64(1.0 / requests_per_s);
    let client = Arc::new(sdk_client(&base, &key, batch)?);
    let mut when = Instant::now();
    let mut pending = Vec::new();
    for r in 0..total {
        tokio::time::sleep_until(when.into()).await;
        when += tick;
        let events: Vec<Value> = (0..batch).map(|i| event(n + r * batch + i, now)).collect();
        let client = client.clone();
        pending.push(tokio::spawn(async move {
            let t = Instant::now();
            client.send_now(events).await.ok()?;
            Some(t.elapsed().as_secs_f64() * 1000.0)
        }));
    }
    let mut latencies = Vec::new();
    for p in pending {
        if let Ok(Some(ms)) = p.await {
            latencies.push(ms);
        }
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    println!("at {target:.0} events/s: p50 {p50:.1} ms, p99 {p99:.1} ms per request of {batch}");
    running.shutdown().await;

    let section = format!(
        "## Ingest (`cargo bench -p server --bench ingest`)\n\n\
         Measured on {date} on the local stack: Apache Kafka 4.1.1 (one KRaft node, local, loopback), 2 cores, release build, writer off. \
         Attest's ingest and the bare producer it is compared with were measured in the same run. 1-minute load average at the end: {load}.\n\
         {n} events as batches of {batch} from {clients} concurrent clients, each the Rust SDK (`attest-client`) with an API key.\n\n\
         | path | rate | vs. bare producer | CPU-s per 1M events: bench + broker + ClickHouse |\n| --- | ---: | ---: | ---: |\n\
         | bare rdkafka producer: the same events validated and encoded beforehand, to the same topics with the same key and `attest.event_id` header, `acks=all`, idempotent | {bare_rate:.0} events/s | | {bare_cpu} |\n\
         | attest ingest through the Rust SDK (its queue and JSON encoding, HTTP, key, validation, Avro, produce, `202` after the acknowledgement) | {ingest_rate:.0} events/s | {ratio:.2} (issue 12: ≥ 0.9) | {ingest_cpu} |\n\n\
         The bench process holds the SDK clients, Attest and the bare producer, so its CPU is theirs; the machine has 2 CPU-s per second, \
         so a path needing C CPU-s per million events can reach at most 2,000,000 / C events/s here.\n\n\
         Latency per `Client::send_now` of {batch} events at half of the peak ({target:.0} events/s for {steady_secs} s, \
         {samples} requests): p50 {p50:.1} ms, p99 {p99:.1} ms (target p99 < 100 ms).\n",
        load = load_average(),
        date = time::OffsetDateTime::now_utc().date(),
        ratio = ingest_rate / bare_rate,
        samples = latencies.len(),
        bare_cpu = bare_cpu.per_million(n),
        ingest_cpu = ingest_cpu.per_million(n),
    );
    print!("\n{section}");
    write_section("ingest", &section)?;
    let _ = http
        .post(&config.clickhouse.url)
        .body(format!(
            "DROP DATABASE IF EXISTS {}",
            config.clickhouse.database
        ))
        .send()
        .await;
    let _ = std::fs::remove_dir_all(&config.ingest.spool_dir);
    support::delete_topics(
        &config.kafka.brokers,
        &format!("{}.", config.kafka.topic_prefix),
    )
    .await;
    Ok(())
}
