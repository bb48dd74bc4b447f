//! "Every event exactly once", checked twice over: in storage, read raw,
//! and in what Attest's own queries show. A check through a query that
//! itself deduplicates could never see a duplicate, so the two are kept
//! apart. An event is one identity (tenant, id, content hash; see
//! docs/DESIGN.md, "Event identity").

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use app::search_model::SearchQuery;
use app::search_state::TimeWindow;
use app::store::EventStore;
use attest_server::config::Config;
use attest_server::store::{ExportFormat, Store};

/// Distinct event identities in storage, whatever merges have run; 0 while
/// ClickHouse is down on purpose in a fault test.
pub async fn distinct_events(http: &reqwest::Client, config: &Config) -> u64 {
    let response = http
        .post(&config.clickhouse.url)
        .query(&[("database", config.clickhouse.database.as_str())])
        .body("SELECT uniqExact(tenant_id, event_id, content_hash) FROM audit_events")
        .send()
        .await;
    match response {
        Ok(r) if r.status().is_success() => r
            .text()
            .await
            .unwrap_or_default()
            .trim()
            .parse()
            .unwrap_or(0),
        _ => 0,
    }
}

/// Waits until `n` distinct events are stored (or `timeout` passes) and
/// returns the count; 0 while ClickHouse is down on purpose.
pub async fn wait_for_distinct(
    http: &reqwest::Client,
    config: &Config,
    n: u64,
    timeout: Duration,
) -> u64 {
    let deadline = Instant::now() + timeout;
    loop {
        let count = distinct_events(http, config).await;
        if count >= n || Instant::now() > deadline {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn query_clickhouse(http: &reqwest::Client, config: &Config, sql: &str) -> String {
    let response = http
        .post(&config.clickhouse.url)
        .query(&[("database", config.clickhouse.database.as_str())])
        .body(sql.to_owned())
        .send()
        .await
        .expect("clickhouse reachable");
    let status = response.status();
    let text = response.text().await.expect("body");
    assert!(status.is_success(), "clickhouse error for {sql}: {text}");
    text
}

/// Exactly the produced ids, each once: in storage once merged, and in the
/// search count and the export, Attest's own queries.
pub async fn assert_exactly(http: &reqwest::Client, config: &Config, ids: &[String]) {
    let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
    expected.sort_unstable();
    expected.dedup();

    // Storage, raw: a re-inserted batch merges away, so after a full merge
    // there is one row per identity, and nothing else.
    query_clickhouse(http, config, "OPTIMIZE TABLE audit_events FINAL").await;
    let raw = query_clickhouse(http, config, "SELECT event_id FROM audit_events FORMAT TSV").await;
    let stored: Vec<&str> = raw.lines().collect();
    assert_same("stored rows after OPTIMIZE … FINAL", &stored, &expected);

    // Attest's own queries, which must hide copies whether or not merges
    // have run.
    let store = Store::new(&config.clickhouse);
    let (search, now_ms) = everything();
    let facets = EventStore::facets(&store, &search, now_ms)
        .await
        .expect("facets");
    assert_eq!(
        facets.total,
        expected.len() as u64,
        "the search count of distinct events"
    );
    let exported = exported_ids(&store, &search, now_ms).await;
    let exported: Vec<&str> = exported.iter().map(String::as_str).collect();
    assert_same("exported events", &exported, &expected);
}

/// A search over every tenant and every time an event may carry.
fn everything() -> (SearchQuery, i64) {
    let now_ms = attest_server::ingest::now_ms() + 86_400_000;
    let search = SearchQuery {
        q: String::new(),
        tenant: None,
        window: TimeWindow::Between {
            from_ms: 0,
            to_ms: now_ms,
        },
        cursor: None,
        sort: Default::default(),
        limit: 1,
        within: Vec::new(),
        metadata_keys: Vec::new(),
    };
    (search, now_ms)
}

/// The `event_id` of every line of an NDJSON export.
async fn exported_ids(store: &Store, search: &SearchQuery, now_ms: i64) -> Vec<String> {
    let mut export = store
        .export(search, ExportFormat::Ndjson, now_ms)
        .await
        .expect("export starts");
    let mut body = Vec::new();
    while let Some(chunk) = export.next_chunk().await.expect("export chunk") {
        body.extend_from_slice(&chunk);
    }
    body.split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            let row: serde_json::Value = serde_json::from_slice(line).expect("an NDJSON row");
            row["event_id"].as_str().expect("event_id").to_owned()
        })
        .collect()
}

/// `got` holds each of `expected` (sorted, distinct) exactly once; on
/// failure, says how many are missing or repeated with a few examples,
/// rather than printing 100,000 ids.
fn assert_same(what: &str, got: &[&str], expected: &[&str]) {
    let mut counts: BTreeMap<&str, i64> = expected.iter().map(|id| (*id, -1)).collect();
    for id in got {
        *counts.entry(id).or_insert(0) += 1;
    }
    let missing: Vec<&str> = counts
        .iter()
        .filter(|(_, n)| **n < 0)
        .map(|(id, _)| *id)
        .collect();
    let repeated: Vec<&str> = counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(id, _)| *id)
        .collect();
    assert!(
        missing.is_empty() && repeated.is_empty(),
        "{what}: {} rows for {} events; {} missing (e.g. {:?}), {} extra or repeated (e.g. {:?})",
        got.len(),
        expected.len(),
        missing.len(),
        &missing[..missing.len().min(5)],
        repeated.len(),
        &repeated[..repeated.len().min(5)],
    );
}
