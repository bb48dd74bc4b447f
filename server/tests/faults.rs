//! Faults against the real stack: a writer killed with SIGKILL mid-stream,
//! and ClickHouse stopped while events flow. The writer runs as a separate
//! `attest writer` process so it can be killed for real.
//!
//! These tests stop and start the shared local ClickHouse, so they run one at
//! a time (a lock) in a test binary of their own.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

static SERIAL: Mutex<()> = Mutex::const_new(());

struct WriterProcess {
    child: Child,
}

impl WriterProcess {
    fn start(config: &attest_server::config::Config, log_name: &str) -> WriterProcess {
        let log_dir = std::env::var("ATTEST_LOG_DIR")
            .unwrap_or_else(|_| std::env::temp_dir().display().to_string());
        let log = std::fs::File::create(format!("{log_dir}/{log_name}.log")).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_attest"))
            .arg("writer")
            .envs(common::child_env(config))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("attest writer starts");
        WriterProcess { child }
    }

    /// Peak resident memory so far, in MiB, from /proc.
    fn peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }

    fn kill_9(mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }

    fn terminate(mut self) {
        // SIGTERM: the writer flushes and commits before it exits.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_writer_killed_mid_stream_loses_nothing_and_shows_nothing_twice() {
    let _serial = SERIAL.lock().await;
    let mut config = common::test_config();
    config.writer.max_rows = 5_000;
    let http = reqwest::Client::new();
    let ids = common::produce_events(&config, 100_000, "kill").await;

    let writer = WriterProcess::start(&config, "faults-kill-1");
    let reached = common::wait_for_distinct(&http, &config, 20_000, Duration::from_secs(120)).await;
    assert!(
        reached >= 20_000,
        "the first writer made progress ({reached})"
    );
    assert!(
        reached < 100_000,
        "killed mid-stream, not after the end ({reached})"
    );
    writer.kill_9();

    // Waiting out the dead member's session was needed on tansu 0.6, the
    // earlier local broker, which dropped a dead member only when a request
    // arrived after its session expired (a sooner restart left the new writer
    // waiting for a rebalance that never completed). Kafka times the old
    // member out by itself, so on Kafka the wait is harmless.
    tokio::time::sleep(config.kafka.session_timeout + Duration::from_secs(5)).await;
    let writer = WriterProcess::start(&config, "faults-kill-2");
    let total = common::wait_for_distinct(&http, &config, 100_000, Duration::from_secs(240)).await;
    writer.terminate();
    assert_eq!(total, 100_000);
    common::assert_exactly(&http, &config, &ids).await;
    // Killed wherever it was (between insert, seal and commit included):
    // every row sealed once, the chains whole.
    common::assert_sealed_once(&config, 100_000).await;
    common::drop_database(&http, &config).await;
    common::delete_topics(&config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clickhouse_down_for_30_seconds_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let mut config = common::test_config();
    config.writer.max_rows = 10_000;
    config.writer.retry_max = Duration::from_secs(2);
    let http = reqwest::Client::new();

    // Start the writer while ClickHouse is up (it migrates at start-up).
    let first = common::produce_events(&config, 1_000, "before").await;
    let writer = WriterProcess::start(&config, "faults-outage");
    assert_eq!(
        common::wait_for_distinct(&http, &config, 1_000, Duration::from_secs(60)).await,
        1_000
    );

    common::stack("down", "clickhouse");
    let outage = Instant::now();
    let during = common::produce_events(&config, 50_000, "during").await;
    let rss_during = writer.peak_rss_mib();
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(outage.elapsed())).await;
    common::stack("up", "clickhouse");

    let total = common::wait_for_distinct(&http, &config, 51_000, Duration::from_secs(180)).await;
    let peak = writer.peak_rss_mib();
    writer.terminate();
    assert_eq!(total, 51_000);
    let ids: Vec<String> = first.into_iter().chain(during).collect();
    common::assert_exactly(&http, &config, &ids).await;
    common::assert_sealed_once(&config, 51_000).await;
    // Reported, not asserted: a memory figure is a benchmark, not a test.
    eprintln!("writer peak RSS: {rss_during:?} MiB during the outage, {peak:?} MiB overall");
    common::drop_database(&http, &config).await;
    common::delete_topics(&config).await;
}

/// A second writer joins mid-stream and the first one leaves (SIGTERM):
/// two rebalances under load, nothing lost, nothing shown twice. (A writer
/// that dies without leaving is replaced once the broker expires its
/// session; tansu 0.6, the earlier local broker, only noticed that on a later
/// join, so that failover is covered by the SIGKILL test's restart, and on
/// Kafka by the session timeout.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_joining_and_leaving_the_group_lose_nothing() {
    let _serial = SERIAL.lock().await;
    let mut config = common::test_config();
    config.writer.max_rows = 2_000;
    config.kafka.partitions = 4;
    let http = reqwest::Client::new();
    let ids = common::produce_events(&config, 60_000, "pair").await;

    let a = WriterProcess::start(&config, "faults-pair-a");
    let reached = common::wait_for_distinct(&http, &config, 10_000, Duration::from_secs(120)).await;
    assert!(reached >= 10_000, "first writer made progress ({reached})");
    let b = WriterProcess::start(&config, "faults-pair-b");
    let reached = common::wait_for_distinct(&http, &config, 25_000, Duration::from_secs(120)).await;
    assert!(
        (25_000..60_000).contains(&reached),
        "left mid-run ({reached})"
    );
    a.terminate();

    let total = common::wait_for_distinct(&http, &config, 60_000, Duration::from_secs(240)).await;
    b.terminate();
    assert_eq!(total, 60_000);
    common::assert_exactly(&http, &config, &ids).await;
    // Two writers and two rebalances under load: every chain verifies.
    common::assert_sealed_once(&config, 60_000).await;
    common::drop_database(&http, &config).await;
    common::delete_topics(&config).await;
}

/// Two writers share the group and one is killed with SIGKILL mid-run. Its
/// partitions are handed over once the group notices its session expired:
/// Kafka does so on its own after `session_timeout`; tansu 0.6, the earlier
/// local broker, only when a member next joined, so a third writer joins
/// after the timeout here (a deployment's replacement pod; on Kafka it is
/// harmless). The survivor keeps writing throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_of_two_writers_killed_mid_run_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let mut config = common::test_config();
    config.writer.max_rows = 2_000;
    config.kafka.partitions = 4;
    let http = reqwest::Client::new();
    let ids = common::produce_events(&config, 60_000, "twokill").await;

    let a = WriterProcess::start(&config, "faults-twokill-a");
    let b = WriterProcess::start(&config, "faults-twokill-b");
    let reached = common::wait_for_distinct(&http, &config, 15_000, Duration::from_secs(120)).await;
    assert!(
        (15_000..60_000).contains(&reached),
        "killed mid-run ({reached})"
    );
    a.kill_9();
    let after_kill = common::distinct_events(&http, &config).await;

    tokio::time::sleep(config.kafka.session_timeout + Duration::from_secs(5)).await;
    let c = WriterProcess::start(&config, "faults-twokill-c");
    let total = common::wait_for_distinct(&http, &config, 60_000, Duration::from_secs(240)).await;
    b.terminate();
    c.terminate();
    assert!(
        after_kill < 60_000,
        "the kill came before the end ({after_kill})"
    );
    assert_eq!(total, 60_000);
    common::assert_exactly(&http, &config, &ids).await;
    common::assert_sealed_once(&config, ids.len()).await;
    common::drop_database(&http, &config).await;
    common::delete_topics(&config).await;
}

/// A writer killed and replaced at once, well inside the group's session
/// timeout (the dead member still holds its partitions): the new writer is
/// handed them once the broker expires the old member, and every event is
/// stored within a bound of that, with nobody restarting anything else.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_writer_restarted_inside_the_session_timeout_gets_the_partitions() {
    let _serial = SERIAL.lock().await;
    let mut config = common::test_config();
    config.writer.max_rows = 2_000;
    let http = reqwest::Client::new();
    let before = common::produce_events(&config, 5_000, "restart-before").await;
    let writer = WriterProcess::start(&config, "faults-restart-1");
    assert_eq!(
        common::wait_for_distinct(&http, &config, 5_000, Duration::from_secs(120)).await,
        5_000
    );
    writer.kill_9();
    // No wait: the replacement joins while the dead member is still in the
    // group, as a supervisor restarting a crashed process would.
    let restarted = Instant::now();
    let writer = WriterProcess::start(&config, "faults-restart-2");
    let after = common::produce_events(&config, 5_000, "restart-after").await;
    // The bound: the old member's session, a rebalance, and the batches.
    let bound = config.kafka.session_timeout + Duration::from_secs(60);
    let total = common::wait_for_distinct(&http, &config, 10_000, bound).await;
    let took = restarted.elapsed();
    writer.terminate();
    assert_eq!(total, 10_000, "every event stored within {bound:?}");
    eprintln!("all stored {took:?} after the restart");
    let ids: Vec<String> = before.into_iter().chain(after).collect();
    common::assert_exactly(&http, &config, &ids).await;
    common::assert_sealed_once(&config, ids.len()).await;
    common::drop_database(&http, &config).await;
    common::delete_topics(&config).await;
}
