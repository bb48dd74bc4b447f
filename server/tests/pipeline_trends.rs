//! Pipeline trends against the real stack: samples land at the configured
//! interval, stamped at its start; retention drops days of samples past
//! `trends.keep_days` (and alert history past `alerts.keep_days`) while
//! keeping younger ones; only admins read them; and with two server
//! processes one samples at a time, the other taking over when it stops.

mod common;
mod console_support;

use std::time::{Duration, Instant};

use attest_server::config::Config;
use attest_server::ingest::now_ms;
use console_support::{grant, Browser};

const DAY_MS: i64 = 86_400_000;

fn trends_config() -> Config {
    let mut config = common::test_config();
    config.trends.sample_every = Duration::from_secs(1);
    config.trends.retention_every = Duration::from_secs(1);
    config.trends.keep_days = 8;
    config.alerts.keep_days = 90;
    config
}

/// `(at_ms, sampler)` of every sample of `series`, oldest first.
async fn samples(server: &common::TestServer, series: &str) -> Vec<(i64, String)> {
    let text = server
        .clickhouse(&format!(
            "SELECT at_ms, sampler FROM attest_pipeline_samples WHERE series = '{series}' \
             ORDER BY at_ms FORMAT TSV"
        ))
        .await;
    text.lines()
        .filter_map(|l| {
            let (at, sampler) = l.split_once('\t')?;
            Some((at.parse().ok()?, sampler.to_owned()))
        })
        .collect()
}

/// `(series, at_ms)` written more than once.
async fn doubled(server: &common::TestServer) -> String {
    server
        .clickhouse(
            "SELECT series, at_ms, count() AS n FROM attest_pipeline_samples \
             GROUP BY series, at_ms HAVING n > 1 FORMAT TSV",
        )
        .await
}

async fn count(server: &common::TestServer, sql: &str) -> u64 {
    server.clickhouse(sql).await.trim().parse().unwrap_or(0)
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_land_every_interval_old_ones_go_and_only_admins_read_them() {
    let mut config = trends_config();
    config.console.require_login = true;
    config.console.access_refresh = Duration::from_millis(200);
    let server = common::start(config.clone()).await;
    let started = now_ms();

    // Old data, written as a sampler and the alerts would have: days past
    // trends.keep_days (8), one day inside it; alert history past
    // alerts.keep_days (90), and an alert still firing from then.
    let now = now_ms();
    let old = [now - 20 * DAY_MS, now - 9 * DAY_MS - 3_600_000];
    // An hour inside the 7 d window, so the week chart still covers it.
    let kept = now - 7 * DAY_MS + 3_600_000;
    for at in old.iter().chain([&kept]) {
        server
            .clickhouse(&format!(
                "INSERT INTO attest_pipeline_samples (at_ms, series, value, sampler) \
                 VALUES ({at}, 'lag_s', 1.5, 'earlier')"
            ))
            .await;
    }
    let ancient = now - 100 * DAY_MS;
    let recent = now - DAY_MS;
    server
        .clickhouse(&format!(
            "INSERT INTO attest_webhook_deliveries \
             (subject, webhook, attempt, at_ms, status, error, duration_ms) VALUES \
             ('alert:a-old:firing', 'ops', 1, {ancient}, 200, '', 5), \
             ('alert:a-new:firing', 'ops', 1, {recent}, 200, '', 5)"
        ))
        .await;
    server
        .clickhouse(&format!(
            "INSERT INTO attest_alert_changes (alert_id, rule, state, summary, at_ms) VALUES \
             ('a-old', 'spool', 'firing', 's', {ancient}), \
             ('a-old', 'spool', 'resolved', 's', {}), \
             ('a-still', 'spool', 'firing', 's', {ancient})",
            ancient + 1_000
        ))
        .await;

    // Samples every second, each at the start of its second; the old days
    // dropped, the younger one kept; the alert history trimmed.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let lag = samples(&server, "lag_messages").await;
        let fresh = lag.iter().filter(|(at, _)| *at >= started - 1_000).count();
        let old_left = count(
            &server,
            &format!("SELECT count() FROM attest_pipeline_samples WHERE at_ms < {kept}"),
        )
        .await;
        let deliveries = count(&server, "SELECT count() FROM attest_webhook_deliveries").await;
        let changes = count(
            &server,
            "SELECT count() FROM attest_alert_changes WHERE alert_id IN ('a-old', 'a-still')",
        )
        .await;
        if fresh >= 5 && old_left == 0 && deliveries == 1 && changes == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "samples {fresh}, old samples left {old_left}, deliveries {deliveries}, changes {changes}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let lag = samples(&server, "lag_messages").await;
    assert!(lag.iter().all(|(at, _)| at % 1_000 == 0), "{lag:?}");
    assert!(
        lag.windows(2).all(|w| w[1].0 > w[0].0),
        "one sample per interval: {lag:?}"
    );
    assert!(
        lag.iter().all(|(_, s)| s == &lag[0].1),
        "one sampler: {lag:?}"
    );
    assert_eq!(doubled(&server).await, "");
    assert_eq!(
        count(
            &server,
            &format!("SELECT count() FROM attest_pipeline_samples WHERE at_ms = {kept}")
        )
        .await,
        1,
        "a day inside keep_days stays"
    );
    assert_eq!(
        server
            .clickhouse(
                "SELECT alert_id FROM attest_alert_changes WHERE alert_id IN ('a-old', 'a-still')"
            )
            .await
            .trim(),
        "a-still",
        "a firing alert keeps its row however old"
    );
    let node_series = format!("node_up:{}", config.clickhouse.url);
    assert!(
        !samples(&server, &node_series).await.is_empty(),
        "the node's state is sampled as {node_series}"
    );
    let metrics = server.metrics_text().await;
    assert_eq!(metric(&metrics, "attest_trends_sampler"), Some(1.0));
    assert!(metric(&metrics, "attest_trends_samples_written_total") > Some(0.0));

    // Read back: 403 for an analyst, the charts' series for an admin.
    let admin_key = grant(
        &config,
        &["--name", "oncall", "--all-tenants", "--role", "admin"],
    );
    let analyst_key = grant(&config, &["--name", "analyst-1", "--all-tenants"]);
    let mut analyst = Browser::new(&server.base_url);
    analyst.sign_in(&analyst_key, "/search").await;
    for window in ["1h", "24h", "7d", "2h"] {
        let (status, answer) = analyst.call("pipeline/trends", &[("window", window)]).await;
        assert_eq!(status, 403, "{window}: {answer}");
        assert!(answer.get("series").is_none(), "{answer}");
    }
    let mut admin = Browser::new(&server.base_url);
    admin.sign_in(&admin_key, "/pipeline").await;
    let (status, trends) = admin.call("pipeline/trends", &[("window", "1h")]).await;
    assert_eq!(status, 200, "{trends}");
    assert_eq!(trends["window"], "Hour");
    let lag_s = trends["series"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["series"] == "lag_s"))
        .unwrap_or_else(|| panic!("lag_s in {trends}"));
    let points = lag_s["points"].as_array().expect("points");
    // The hour is charted in 10 s buckets (one point per bucket with samples).
    assert!(!points.is_empty(), "{lag_s}");
    assert!(
        points
            .iter()
            .all(|p| p["at_ms"].as_i64().is_some_and(|at| at % 10_000 == 0)),
        "{lag_s}"
    );
    assert!(
        points
            .iter()
            .all(|p| p["at_ms"].as_i64() >= Some(started - 3_600_000)),
        "only the last hour: {lag_s}"
    );
    let (status, week) = admin.call("pipeline/trends", &[("window", "7d")]).await;
    assert_eq!(status, 200, "{week}");
    let week_lag = week["series"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["series"] == "lag_s"))
        .expect("lag_s over 7 d");
    assert!(
        week_lag["points"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["max"].as_f64() == Some(1.5))),
        "the 7-day-old sample is in the week: {week_lag}"
    );
    let (status, answer) = admin.call("pipeline/trends", &[("window", "2h")]).await;
    assert_eq!(status, 400, "{answer}");
    // The page draws the charts for admins.
    let html = admin.get("/pipeline").await.text().await.unwrap();
    for chart in ["trend-lag-time", "trend-rates", "trend-lag-messages"] {
        assert!(html.contains(&format!("data-chart=\"{chart}\"")), "{chart}");
    }
    assert!(html.contains("data-testid=\"ingest\""));
    assert!(html.contains("data-testid=\"node\""));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sampler_at_a_time_across_two_processes() {
    let config = trends_config();
    let first = common::start(config.clone()).await;
    let mut second_config = config.clone();
    second_config.ingest.spool_dir = config.ingest.spool_dir.with_extension("second");
    let second = common::start(second_config.clone()).await;
    let both_running = now_ms();

    // Both sample for a while: every interval is written once, by one of
    // them, and exactly one says it is the sampler.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let lag = samples(&first, "lag_messages").await;
        if lag.iter().filter(|(at, _)| *at > both_running).count() >= 6 {
            break;
        }
        assert!(Instant::now() < deadline, "no samples: {lag:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(doubled(&first).await, "", "an interval written twice");
    let flags = [
        metric(&first.metrics_text().await, "attest_trends_sampler"),
        metric(&second.metrics_text().await, "attest_trends_sampler"),
    ];
    assert!(
        flags == [Some(1.0), Some(0.0)] || flags == [Some(0.0), Some(1.0)],
        "{flags:?}"
    );
    let lag = samples(&first, "lag_messages").await;
    let recent: Vec<&String> = lag
        .iter()
        .filter(|(at, _)| *at > now_ms() - 3_000)
        .map(|(_, s)| s)
        .collect();
    assert!(
        recent.windows(2).all(|w| w[0] == w[1]),
        "one sampler lately: {lag:?}"
    );

    // The sampler stops: the other takes over, and still no interval
    // twice.
    let (leader, follower) = if flags[0] == Some(1.0) {
        (first, second)
    } else {
        (second, first)
    };
    let leader_id = recent.first().map(|s| (*s).clone()).unwrap_or_default();
    leader.running.shutdown().await;
    let stopped = now_ms();
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let lag = samples(&follower, "lag_messages").await;
        let taken_over = lag
            .iter()
            .filter(|(at, sampler)| *at > stopped && *sampler != leader_id)
            .count();
        if taken_over >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "nobody took over: {lag:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(doubled(&follower).await, "", "an interval written twice");
    assert_eq!(
        metric(&follower.metrics_text().await, "attest_trends_sampler"),
        Some(1.0)
    );
    follower.stop().await;
    for dir in [&config.ingest.spool_dir, &second_config.ingest.spool_dir] {
        let _ = std::fs::remove_dir_all(dir);
    }
}
