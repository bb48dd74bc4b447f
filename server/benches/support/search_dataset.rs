//! The search benchmark's data set as stored in ClickHouse: generated once
//! (see `search_data`) into its own database and reused by every
//! benchmark that reads it (`search`, `dashboard`) while its size and the
//! generator's version match. A bench includes it next to `search_data`:
//! `#[path = "support/search_dataset.rs"] mod search_dataset;`.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use anyhow::Context;
use attest_server::config::ClickHouseConfig;
use attest_server::store::{EventRow, Store};

/// The database of the full-size data set (10M events), shared by the
/// benches so that it is generated once.
pub const DATABASE: &str = "attest_bench_search";
/// Rows per INSERT while generating: large blocks suit ClickHouse, and an
/// hour-ordered batch spans at most two month partitions.
pub const INSERT_ROWS: usize = 100_000;

/// Plain SQL over ClickHouse's HTTP interface, for what the store does not
/// offer: the data set's bookkeeping and system tables.
pub struct Admin {
    pub http: reqwest::Client,
    pub config: ClickHouseConfig,
}

impl Admin {
    pub async fn sql(&self, sql: &str) -> anyhow::Result<String> {
        let password = (!self.config.password.is_empty()).then_some(&self.config.password);
        let response = self
            .http
            .post(&self.config.url)
            .basic_auth(&self.config.user, password)
            .body(sql.to_owned())
            .send()
            .await
            .with_context(|| format!("ClickHouse at {}", self.config.url))?;
        let status = response.status();
        let text = response.text().await?;
        anyhow::ensure!(
            status.is_success(),
            "ClickHouse answered {status}: {}",
            text.trim()
        );
        Ok(text)
    }

    /// Tab-separated rows.
    pub async fn rows(&self, sql: &str) -> anyhow::Result<Vec<Vec<String>>> {
        Ok(self
            .sql(sql)
            .await?
            .lines()
            .map(|l| l.split('\t').map(str::to_owned).collect())
            .collect())
    }

    pub async fn number(&self, sql: &str) -> anyhow::Result<i64> {
        let text = self.sql(sql).await?;
        text.trim()
            .parse()
            .with_context(|| format!("not a number: {text:?} from {sql}"))
    }
}

/// The data set as stored, and how it came to be.
pub struct Dataset {
    pub events: u64,
    pub end_ms: i64,
    pub generated_at: String,
    pub generate_seconds: f64,
    pub reused: bool,
}

/// The stored data set, when it is the one asked for and complete.
pub async fn stored(admin: &Admin, database: &str, events: u64) -> Option<Dataset> {
    let rows = admin
        .rows(&format!(
            "SELECT version, events, end_ms, toString(generated_at, 'UTC'), generate_seconds \
             FROM {database}.bench_dataset ORDER BY generated_at DESC LIMIT 1"
        ))
        .await
        .ok()?;
    let row = rows.first()?;
    let version: u32 = row.first()?.parse().ok()?;
    let recorded: u64 = row.get(1)?.parse().ok()?;
    let end_ms: i64 = row.get(2)?.parse().ok()?;
    if version != crate::search_data::VERSION || recorded != events {
        return None;
    }
    let count = admin
        .number(&format!("SELECT count() FROM {database}.audit_events"))
        .await
        .ok()?;
    (count == events as i64).then(|| Dataset {
        events,
        end_ms,
        generated_at: row.get(3).cloned().unwrap_or_default(),
        generate_seconds: row.get(4).and_then(|s| s.parse().ok()).unwrap_or(0.0),
        reused: true,
    })
}

pub async fn generate(
    admin: &Admin,
    store: &Store,
    database: &str,
    events: u64,
) -> anyhow::Result<Dataset> {
    admin
        .sql(&format!("DROP DATABASE IF EXISTS {database}"))
        .await?;
    store.migrate().await?;
    let end_ms = attest_server::ingest::now_ms();
    let plan = crate::search_data::Plan::new(events, end_ms);
    // Generating and inserting overlap: one core builds rows while
    // ClickHouse takes the previous batch.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<EventRow>>(2);
    let generator = tokio::task::spawn_blocking(move || {
        plan.generate(INSERT_ROWS, |rows| tx.blocking_send(rows).is_ok())
    });
    let started = Instant::now();
    let mut inserted = 0u64;
    let mut reported = 0u64;
    while let Some(rows) = rx.recv().await {
        store.insert_events(&rows).await?;
        inserted += rows.len() as u64;
        if inserted - reported >= 1_000_000 || inserted == events {
            reported = inserted;
            println!(
                "generated {inserted} of {events} events ({:.0} rows/s)",
                inserted as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    generator.await?;
    anyhow::ensure!(
        inserted == events,
        "generated {inserted} events, not {events}"
    );
    let seconds = started.elapsed().as_secs_f64();
    wait_for_merges(admin, database).await?;
    // Written last: an interrupted generation leaves no marker and is
    // generated again next time.
    admin
        .sql(&format!(
            "CREATE TABLE {database}.bench_dataset (version UInt32, events UInt64, \
             end_ms Int64, generated_at DateTime, generate_seconds Float64) ENGINE = TinyLog"
        ))
        .await?;
    admin
        .sql(&format!(
            "INSERT INTO {database}.bench_dataset VALUES ({}, {events}, {end_ms}, now(), {seconds})",
            crate::search_data::VERSION
        ))
        .await?;
    let generated_at = admin
        .sql(&format!(
            "SELECT toString(max(generated_at), 'UTC') FROM {database}.bench_dataset"
        ))
        .await?
        .trim()
        .to_owned();
    Ok(Dataset {
        events,
        end_ms,
        generated_at,
        generate_seconds: seconds,
        reused: false,
    })
}

/// Measures the table as background merges leave it, not as a pile of
/// fresh parts: waits until no merge has run for a few seconds.
async fn wait_for_merges(admin: &Admin, database: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut quiet = 0;
    while quiet < 3 && started.elapsed() < Duration::from_secs(900) {
        let merging = admin
            .number(&format!(
                "SELECT count() FROM system.merges WHERE database = '{database}'"
            ))
            .await?;
        quiet = if merging == 0 { quiet + 1 } else { 0 };
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    println!(
        "merges settled after {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
