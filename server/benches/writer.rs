//! Writer throughput against its two bare halves, and end-to-end freshness.
//!
//! `cargo bench -p server --bench writer` with the local stack up
//! (`scripts/stack.sh up`). Environment: `BENCH_EVENTS` (default 2,000,000),
//! `BENCH_FRESHNESS_SECS` (default 20), `BENCH_FRESHNESS_RATE` (events/s,
//! default 200). Prints the figures and rewrites the writer section of
//! docs/BENCHMARKS.md. A benchmark, not a test: nothing here asserts a time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use attest_server::config::Config;
use attest_server::event::{Actor, AuditEvent, Category, Outcome, Resource};
use attest_server::metrics::Metrics;
use attest_server::produce::{ensure_topics, EventProducer, Outgoing};
use attest_server::registry::Registry;
use attest_server::store::{EventRow, Provenance, Store};
use attest_server::write::Writer;
use futures::stream::{self, StreamExt};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use tokio_util::sync::CancellationToken;

// The allocator of the `attest` binary, for Attest's path and the bare one
// alike.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod support;
use support::{env_usize, load_average, percentile, unique, write_section, Cpu};

/// (partition, offset, payload) of one message read by the bare consumer.
type Consumed = (i32, i64, Vec<u8>);

fn event(i: usize, now: i64) -> AuditEvent {
    let mut metadata = std::collections::BTreeMap::new();
    metadata.insert(
        "request_path".to_owned(),
        format!("/api/v2/records/{}", i % 5000),
    );
    metadata.insert(
        "region".to_owned(),
        ["eu-west-1", "us-east-1", "ap-south-1"][i % 3].to_owned(),
    );
    AuditEvent {
        event_id: format!("bench-{i}"),
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

async fn clickhouse_scalar(http: &reqwest::Client, config: &Config, sql: &str) -> u64 {
    let r = http
        .post(&config.clickhouse.url)
        .query(&[("database", config.clickhouse.database.as_str())])
        .body(sql.to_owned())
        .send()
        .await;
    match r {
        Ok(r) => r
            .text()
            .await
            .unwrap_or_default()
            .trim()
            .parse()
            .unwrap_or(0),
        Err(_) => 0,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = env_usize("BENCH_EVENTS", 2_000_000);
    let id = unique();
    let config = support::bench_config("", &id)?;
    let registry = Arc::new(Registry::load(&config.schemas_dir)?);
    let http = reqwest::Client::new();

    // 1. Pre-fill the topics.
    let mut topics = attest_server::topics::event_topics(&config.kafka.topic_prefix);
    topics.push(attest_server::topics::dead_letters(
        &config.kafka.topic_prefix,
    ));
    ensure_topics(&config.kafka, &topics).await?;
    let producer = EventProducer::new(&config.kafka)?;
    let now = attest_server::ingest::now_ms();
    let started = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let producer = producer.clone();
            let registry = registry.clone();
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
    let prefill = started.elapsed();
    println!("prefill: {n} events in {:.1} s", prefill.as_secs_f64());

    // 2. Bare consumer: read everything, decode nothing.
    let topic_names: Vec<String> = attest_server::topics::event_topics(&config.kafka.topic_prefix);
    let kafka = config.kafka.clone();
    let cpu = Cpu::now();
    let (bare_consume, payloads) =
        tokio::task::spawn_blocking(move || -> anyhow::Result<(Duration, Vec<Consumed>)> {
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &kafka.brokers)
                .set("group.id", format!("{}-bare", kafka.consumer_group))
                .set("enable.auto.commit", "false")
                .set("auto.offset.reset", "earliest")
                .create()?;
            let names: Vec<&str> = topic_names.iter().map(String::as_str).collect();
            consumer.subscribe(&names)?;
            let started = Instant::now();
            let mut kept = Vec::with_capacity(n);
            while kept.len() < n {
                if let Some(m) = consumer.poll(Duration::from_millis(500)) {
                    let m = m?;
                    kept.push((
                        m.partition(),
                        m.offset(),
                        m.payload().unwrap_or_default().to_vec(),
                    ));
                }
            }
            Ok((started.elapsed(), kept))
        })
        .await??;
    let consume_cpu = Cpu::now().since(&cpu);
    println!(
        "bare consumer: {:.0} msg/s",
        n as f64 / bare_consume.as_secs_f64()
    );

    // 3. Bare RowBinary insert of the same rows as the writer stores them
    // (each with its content hash, made before the clock starts), in
    // writer-sized batches.
    let rows: Vec<EventRow> = payloads
        .into_iter()
        .map(|(partition, offset, payload)| {
            let (schema_id, e) = registry.decode(&payload).expect("decodes");
            EventRow::new(
                e,
                Provenance {
                    schema_id,
                    partition,
                    offset,
                },
            )
        })
        .collect();
    let mut bare_config = config.clickhouse.clone();
    bare_config.database = format!("{}_bare", config.clickhouse.database);
    let bare_store = Store::new(&bare_config);
    bare_store.migrate().await?;
    let hashes = attest_server::store::content_hashes(&rows);
    let cpu = Cpu::now();
    let started = Instant::now();
    for (chunk, hashes) in rows
        .chunks(config.writer.max_rows)
        .zip(hashes.chunks(config.writer.max_rows))
    {
        bare_store.insert_hashed(chunk.iter().zip(hashes)).await?;
    }
    let bare_insert = started.elapsed();
    let insert_cpu = Cpu::now().since(&cpu);
    drop((rows, hashes));
    println!(
        "bare insert: {:.0} rows/s",
        n as f64 / bare_insert.as_secs_f64()
    );

    // 4. The writer, from a fresh group into a fresh database: with
    // sealing off (the figure compared with the bare paths), then on
    // (issue 16: sealing costs < 10 %), each from a group of its own.
    let (writer_time, stored, writer_cpu) =
        run_writer(&http, &config, &registry, &producer, n, false).await?;
    println!(
        "writer: {:.0} rows/s ({stored} distinct rows stored)",
        n as f64 / writer_time.as_secs_f64()
    );
    let mut sealed_config = config.clone();
    sealed_config.kafka.consumer_group = format!("{}-sealed", config.kafka.consumer_group);
    sealed_config.clickhouse.database = format!("{}_sealed", config.clickhouse.database);
    sealed_config.integrity.key_dir = std::env::temp_dir().join(format!("attest-bench-keys-{id}"));
    let (sealed_time, sealed_stored, sealed_cpu) =
        run_writer(&http, &sealed_config, &registry, &producer, n, true).await?;
    println!(
        "writer, sealing on: {:.0} rows/s ({sealed_stored} distinct rows stored)",
        n as f64 / sealed_time.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&sealed_config.integrity.key_dir);

    // 5. Freshness: 202 → visible in ClickHouse, at a steady rate through
    // the whole server (HTTP ingest, producer, writer).
    let secs = env_usize("BENCH_FRESHNESS_SECS", 20);
    let rate = env_usize("BENCH_FRESHNESS_RATE", 200);
    let mut fresh_config = config.clone();
    fresh_config.listen = "127.0.0.1:0".parse()?;
    fresh_config.kafka.consumer_group = format!("{}-fresh", config.kafka.consumer_group);
    fresh_config.kafka.topic_prefix = format!("{}.fresh", config.kafka.topic_prefix);
    fresh_config.clickhouse.database = format!("{}_fresh", config.clickhouse.database);
    // The bench posts without an API key and spools to a directory of its own.
    fresh_config.ingest.require_api_key = false;
    fresh_config.ingest.spool_dir = std::env::temp_dir().join(format!("attest-bench-spool-{id}"));
    let leptos = support::leptos_options();
    let running = attest_server::start(fresh_config.clone(), leptos).await?;
    let url = format!("http://{}/api/v1/events", running.addr);
    let mut latencies = Vec::new();
    let mut pending = Vec::new();
    let total = secs * rate;
    let tick = Duration::from_secs_f64(1.0 / rate as f64);
    let mut next = Instant::now();
    for i in 0..total {
        tokio::time::sleep_until(next.into()).await;
        next += tick;
        let body = serde_json::json!({
            "event_id": format!("fresh-{i}"), "tenant_id": "fresh", "occurred_at": attest_server::ingest::now_ms(),
            "category": "data_access", "action": "record.read", "outcome": "success",
            "actor": {"id": "bench", "type": "service"}, "source_service": "bench"
        });
        let http = http.clone();
        let url = url.clone();
        let cfg = fresh_config.clone();
        pending.push(tokio::spawn(async move {
            let r = http.post(&url).json(&body).send().await.ok()?;
            if r.status().as_u16() != 202 {
                return None;
            }
            let accepted = Instant::now();
            // Sample every 10th event for visibility, polling every 20 ms.
            if i % 10 != 0 {
                return None;
            }
            let sql = format!("SELECT count() FROM audit_events WHERE event_id = 'fresh-{i}'");
            loop {
                if clickhouse_scalar(&http, &cfg, &sql).await > 0 {
                    return Some(accepted.elapsed().as_secs_f64() * 1000.0);
                }
                if accepted.elapsed() > Duration::from_secs(30) {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    for p in pending {
        if let Ok(Some(ms)) = p.await {
            latencies.push(ms);
        }
    }
    running.shutdown().await;
    latencies.sort_by(|a, b| a.total_cmp(b));
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    println!(
        "freshness at {rate} ev/s: p50 {p50:.0} ms, p99 {p99:.0} ms ({} samples)",
        latencies.len()
    );

    // 6. Report.
    let consume_rate = n as f64 / bare_consume.as_secs_f64();
    let insert_rate = n as f64 / bare_insert.as_secs_f64();
    let writer_rate = n as f64 / writer_time.as_secs_f64();
    let slower = consume_rate.min(insert_rate);
    let sealed_rate = n as f64 / sealed_time.as_secs_f64();
    let section = format!(
        "## Writer (`cargo bench -p server --bench writer`)\n\n\
         Measured on {date} on the local stack: Apache Kafka 4.1.1 (one KRaft node, local, loopback), ClickHouse 18.16, 2 cores, release build. \
         The writer and the bare consumer and bare insert it is compared with were measured in the same run. 1-minute load average at the end: {load}.\n\
         {n} pre-filled events (6 topics, 3 partitions each), batches of {max_rows} rows.\n\n\
         | path | rate | vs. bare consumer (issue 12: ≥ 0.9) | vs. the slower bare path | CPU-s per 1M rows: bench + broker + ClickHouse |\n| --- | ---: | ---: | ---: | ---: |\n\
         | bare consumer (read only) | {consume_rate:.0} msg/s | | | {consume_cpu} |\n\
         | bare RowBinary insert | {insert_rate:.0} rows/s | | | {insert_cpu} |\n\
         | attest writer (read, decode, insert, commit) | {writer_rate:.0} rows/s | {consumer_ratio:.2} | {ratio:.2} | {writer_cpu} |\n\
         | attest writer, sealing on (leaves, Merkle root, Ed25519 digest per partition and batch, before the commit) | {sealed_rate:.0} rows/s | {sealed_consumer_ratio:.2} | {sealed_ratio:.2} | {sealed_cpu} |\n\n\
         Each rate includes the path's start (a consumer joining its group, the first fetch) and its last batch. \
         The machine has 2 CPU-s per second for everything: the writer does the consumer's and the insert's work (and ClickHouse's part of it) on the same 2 cores, \
         so the two bare rows' CPU added up bounds it, whatever the writer itself costs.\n\n\
         Sealing costs {seal_cost:.1} % of the writer's rate in this run (issue 16: < 10 %).\n\n\
         End-to-end freshness (`202` → row visible in ClickHouse) at a steady {rate} events/s over {secs} s, \
         every 10th event sampled ({samples} samples): p50 {p50:.0} ms, p99 {p99:.0} ms.\n",
        load = load_average(),
        date = time::OffsetDateTime::now_utc().date(),
        max_rows = config.writer.max_rows,
        ratio = writer_rate / slower,
        consumer_ratio = writer_rate / consume_rate,
        sealed_ratio = sealed_rate / slower,
        sealed_consumer_ratio = sealed_rate / consume_rate,
        seal_cost = (1.0 - sealed_rate / writer_rate) * 100.0,
        samples = latencies.len(),
        consume_cpu = consume_cpu.per_million(n),
        insert_cpu = insert_cpu.per_million(n),
        writer_cpu = writer_cpu.per_million(n),
        sealed_cpu = sealed_cpu.per_million(n),
    );
    print!("\n{section}");
    write_section("writer", &section)?;

    for db in [
        config.clickhouse.database.clone(),
        sealed_config.clickhouse.database,
        bare_config.database,
        fresh_config.clickhouse.database,
    ] {
        let _ = http
            .post(&config.clickhouse.url)
            .body(format!("DROP DATABASE IF EXISTS {db}"))
            .send()
            .await;
    }
    support::delete_topics(
        &config.kafka.brokers,
        &format!("{}.", config.kafka.topic_prefix),
    )
    .await;
    Ok(())
}

/// Runs a writer over the pre-filled topics until it has written `n` rows;
/// returns how long that took and the distinct events stored.
async fn run_writer(
    http: &reqwest::Client,
    config: &Config,
    registry: &Arc<Registry>,
    producer: &EventProducer,
    n: usize,
    seal: bool,
) -> anyhow::Result<(Duration, u64, Cpu)> {
    let store = Store::new(&config.clickhouse);
    store.migrate().await?;
    let metrics = Arc::new(Metrics::new());
    let mut integrity = config.integrity.clone();
    integrity.seal = seal;
    let writer = Writer::new(
        &config.kafka,
        config.writer.clone(),
        registry.clone(),
        store.clone(),
        producer.clone(),
        metrics.clone(),
    )?
    .with_sealing(&integrity, &config.kafka)?;
    let stop = CancellationToken::new();
    let cpu = Cpu::now();
    let started = Instant::now();
    let handle = tokio::spawn(writer.run(stop.clone()));
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let done = if seal {
            metrics.writer_rows_sealed.get() as usize >= n
        } else {
            metrics.writer_rows_written.get() as usize >= n
        };
        if done {
            break;
        }
    }
    let took = started.elapsed();
    let cpu = Cpu::now().since(&cpu);
    stop.cancel();
    let _ = handle.await;
    let stored =
        clickhouse_scalar(http, config, "SELECT uniqExact(event_id) FROM audit_events").await;
    Ok((took, stored, cpu))
}
