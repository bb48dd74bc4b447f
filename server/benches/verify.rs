//! `attest verify` rows/s (issue 16): the offline check of an export bundle
//! (every row's hash, its inclusion proof, the digests' chain and
//! signatures, the manifest), beside the bare path of the same file in the
//! same run: unpacking the bundle and parsing every row, nothing checked.
//!
//! `cargo bench -p server --bench verify` with the local stack up
//! (`scripts/stack.sh up`). Environment: `BENCH_VERIFY_EVENTS` (default
//! 200,000), `BENCH_VERIFY_RUNS` (default 3). Posts the events through a
//! server of its own (writer and sealing on), downloads the bundle the
//! Search page's export gives (`proofs=true`), then times both paths and
//! rewrites the verify section of docs/BENCHMARKS.md. A benchmark, not a
//! test: nothing here asserts a time.

use std::time::{Duration, Instant};

use attest_server::integrity::export_verify::verify;
use attest_server::integrity::export_zip::read_entries;
use attest_server::integrity::KeyRing;
use futures::stream::{self, StreamExt};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod support;
use support::{
    bench_config, env_usize, leptos_options, load_average, machine, unique, write_section,
};

const BATCH: usize = 500;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = env_usize("BENCH_VERIFY_EVENTS", 200_000);
    let runs = env_usize("BENCH_VERIFY_RUNS", 3).max(1);
    let id = unique();
    let mut config = bench_config("", &id)?;
    config.integrity.key_dir = std::env::temp_dir().join(format!("attest-bench-keys-{id}"));
    // The bench posts and exports without a key or a session.
    config.ingest.require_api_key = false;
    config.console.require_login = false;
    let running = attest_server::start(config.clone(), leptos_options()).await?;
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();

    // 1. The events, through ingest, sealed by the writer.
    let now = attest_server::ingest::now_ms();
    let posted: Vec<bool> = stream::iter(0..n.div_ceil(BATCH))
        .map(|b| {
            let http = http.clone();
            let url = format!("{base}/api/v1/events/batch");
            async move {
                let batch: Vec<serde_json::Value> = (b * BATCH..((b + 1) * BATCH).min(n))
                    .map(|i| event(i, now))
                    .collect();
                http.post(&url)
                    .json(&batch)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().as_u16() == 202)
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    anyhow::ensure!(posted.iter().all(|ok| *ok), "a batch was not accepted");
    let deadline = Instant::now() + Duration::from_secs(900);
    while sealed(&http, &base).await < n as f64 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the rows were not sealed in time"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // 2. The bundle, as the Search page's export downloads it.
    let response = http
        .get(format!(
            "{base}/api/v1/export?format=ndjson&range=7d&proofs=true"
        ))
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "export: {}",
        response.status()
    );
    let bundle = response.bytes().await?.to_vec();
    running.shutdown().await;
    let keys = KeyRing::load(&config.integrity.key_dir)?;

    // 3. Both paths over the same bytes, alternating.
    let mut verified = Vec::new();
    let mut bare = Vec::new();
    let mut rows = 0;
    for _ in 0..runs {
        let started = Instant::now();
        let report = verify(&bundle, Some(&keys));
        verified.push(started.elapsed().as_secs_f64());
        anyhow::ensure!(
            report.problems.is_empty() && report.proven_rows == n as u64,
            "the bundle does not verify: {} rows proven, {:?}",
            report.proven_rows,
            report.problems.first()
        );
        rows = report.rows;
        let started = Instant::now();
        let parsed = parse_rows(&bundle)?;
        bare.push(started.elapsed().as_secs_f64());
        anyhow::ensure!(parsed == rows, "{parsed} rows parsed, {rows} verified");
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (verified, bare) = (median(verified), median(bare));
    let rate = |secs: f64| rows as f64 / secs;
    println!(
        "attest verify: {rows} rows in {verified:.2} s ({:.0} rows/s); bare parse {bare:.2} s ({:.0} rows/s)",
        rate(verified),
        rate(bare)
    );

    let section = format!(
        "## Offline verification (`cargo bench -p server --bench verify`)\n\n\
         Measured on {date} on {machine}, release build, 1-minute load average {load}. \
         {rows} events posted through ingest and sealed by the writer, exported by the Search \
         page's export with proofs (NDJSON bundle, {mib:.1} MiB), then checked in memory, \
         each path {runs} times alternately (median shown).\n\n\
         | path | time | rate |\n| --- | ---: | ---: |\n\
         | bare: unpack the bundle and parse every row of `events.ndjson`, nothing checked | {bare_ms:.0} ms | {bare_rate:.0} rows/s |\n\
         | `attest verify`: every row's content hash and leaf, its inclusion proof, each digest's signature and chain, the manifest's signature and file hash | {ver_ms:.0} ms | **{ver_rate:.0} rows/s** ({ratio:.2} of the bare path) |\n\n\
         Command: `BENCH_VERIFY_EVENTS={n} cargo bench -p server --bench verify`.\n",
        date = time::OffsetDateTime::now_utc().date(),
        machine = machine(),
        load = load_average(),
        mib = bundle.len() as f64 / 1_048_576.0,
        bare_ms = bare * 1000.0,
        bare_rate = rate(bare),
        ver_ms = verified * 1000.0,
        ver_rate = rate(verified),
        ratio = bare / verified,
    );
    write_section("verify", &section)?;
    let _ = std::fs::remove_dir_all(&config.integrity.key_dir);
    let _ = std::fs::remove_dir_all(&config.ingest.spool_dir);
    support::delete_topics(&config.kafka.brokers, &config.kafka.topic_prefix).await;
    let _ = http
        .post(&config.clickhouse.url)
        .body(format!(
            "DROP DATABASE IF EXISTS {}",
            config.clickhouse.database
        ))
        .send()
        .await;
    Ok(())
}

/// The events of the bench: ten tenants, every category, a few actors.
fn event(i: usize, now: i64) -> serde_json::Value {
    let categories = [
        "authentication",
        "data_access",
        "data_modification",
        "permission_change",
        "admin",
        "system",
    ];
    let outcomes = ["success", "failure", "denied"];
    serde_json::json!({
        "event_id": format!("verify-{i}"),
        "tenant_id": format!("tenant-{}", i % 10),
        "occurred_at": now - (i as i64 % 86_400) * 1000,
        "category": categories[i % categories.len()],
        "action": "record.read",
        "outcome": outcomes[i % outcomes.len()],
        "actor": {"id": format!("user-{}", i % 500), "type": "user", "ip": "198.51.100.4"},
        "resource": {"type": "record", "id": format!("r-{i}")},
        "source_service": "bench",
        "metadata": {"request": format!("q-{}", i % 97)},
    })
}

/// The writer's sealed rows so far, from `/metrics`.
async fn sealed(http: &reqwest::Client, base: &str) -> f64 {
    let Ok(response) = http.get(format!("{base}/metrics")).send().await else {
        return 0.0;
    };
    let text = response.text().await.unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("attest_writer_rows_sealed_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The bare path: every row of the bundle's events file parsed.
fn parse_rows(bundle: &[u8]) -> anyhow::Result<u64> {
    let entries = read_entries(bundle).map_err(|e| anyhow::anyhow!("{e}"))?;
    let events = entries
        .iter()
        .find(|(name, _)| name == "events.ndjson")
        .ok_or_else(|| anyhow::anyhow!("no events.ndjson in the bundle"))?;
    let mut rows = 0;
    for line in events.1.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let _: serde_json::Value = serde_json::from_slice(line)?;
        rows += 1;
    }
    Ok(rows)
}
