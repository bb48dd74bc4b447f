//! The writer keeps its pace as the broker fills (issue 12).
//!
//! On tansu 0.6, the local broker before Apache Kafka, every header ever
//! stored slowed every later fetch: with 64,000 stored headers a consumer
//! read nothing in 150 s, and Attest writes one header on every event. This
//! test fills the broker with 100,000 events produced as ingest produces them
//! (header included) and checks that the writer's rate afterwards is within
//! a factor of its rate on the empty topics, measured the same way in the
//! same run. Ratios of two rates, not times: the benchmark
//! (`cargo bench -p server --bench sustained`) has the figures.

mod common;

use std::time::{Duration, Instant};

use attest_server::config::Config;

/// Events per measured pass: enough that polling granularity is a small
/// part of the time.
const PROBE: usize = 20_000;
const FILL: usize = 100_000;
/// How much slower the writer may get on the full broker. A broker whose
/// fetches degrade with what it stores, as tansu's did, fails this by far.
const FACTOR: f64 = 3.0;

async fn stored(http: &reqwest::Client, config: &Config) -> u64 {
    common::distinct_events(http, config).await
}

/// Produces `n` events of `tag` and returns the writer's rate in events/s
/// from the first produce to the last row stored, with `before` rows
/// already stored.
async fn pass(http: &reqwest::Client, config: &Config, tag: &str, n: usize, before: u64) -> f64 {
    let started = Instant::now();
    common::produce_events_as_ingest(config, n, tag).await;
    let target = before + n as u64;
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let count = stored(http, config).await;
        if count >= target {
            return n as f64 / started.elapsed().as_secs_f64();
        }
        assert!(
            Instant::now() < deadline,
            "{tag}: {} of {n} events stored after 900 s",
            count.saturating_sub(before)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_writer_keeps_its_rate_on_a_broker_holding_100k_events() {
    let mut config = common::test_config();
    config.kafka.partitions = 3;
    let http = reqwest::Client::new();
    let writer = attest_server::start_writer(config.clone())
        .await
        .expect("writer starts");

    // The group is joined and the partitions assigned before timing starts.
    pass(&http, &config, "warm-up", 100, 0).await;
    let empty = pass(&http, &config, "empty", PROBE, 100).await;
    let filled = pass(&http, &config, "fill", FILL, 100 + PROBE as u64).await;
    let full = pass(&http, &config, "full", PROBE, 100 + (PROBE + FILL) as u64).await;
    println!(
        "writer rate: {empty:.0} events/s on empty topics, {filled:.0} while filling \
         {FILL}, {full:.0} with {FILL} more stored"
    );
    assert!(
        full * FACTOR >= empty,
        "the writer slowed from {empty:.0} to {full:.0} events/s once the broker held {FILL} more events"
    );
    let total = stored(&http, &config).await;
    assert_eq!(
        total,
        (100 + 2 * PROBE + FILL) as u64,
        "every event stored once"
    );
    writer.shutdown().await;
    common::drop_database(&http, &config).await;
    common::delete_topics(&config).await;
}
