//! `/metrics` as Prometheus itself reads it: `promtool check metrics`
//! (Debian's `prometheus` package, installed by `scripts/install.sh apt`)
//! over the text of a server that has accepted, refused and written events,
//! so the counters, labelled series and histograms all have samples. The
//! check parses the exposition format and applies Prometheus' naming rules
//! (base units, `_total` on counters, help text on every metric).

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn promtool_accepts_every_metric_of_a_busy_server() {
    let server = common::start(common::test_config()).await;
    let now = attest_server::ingest::now_ms();
    let event = json!({
        "tenant_id": "acme",
        "occurred_at": now,
        "category": "authentication",
        "action": "user.login",
        "outcome": "success",
        "actor": {"id": "alice", "type": "user"},
        "source_service": "sso",
    });
    let (status, body) = server.post_json(event.to_string()).await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = server.post_json(r#"{"tenant_id": ""}"#).await;
    assert_eq!(status, 400, "{body}");
    server.wait_for_rows(1, Duration::from_secs(60)).await;
    let text = server
        .metrics_with(
            &["attest_writer_rows_written_total 1"],
            Duration::from_secs(30),
        )
        .await;
    // What the check must have seen, so it cannot pass on an empty page.
    for family in [
        "# TYPE attest_writer_rows_written_total counter",
        "# TYPE attest_spool_oldest_pending_timestamp_seconds gauge",
        "# TYPE attest_alert_writer_lag_seconds gauge",
    ] {
        assert!(text.contains(family), "{family} missing from:\n{text}");
    }
    assert!(
        text.contains("_bucket{"),
        "no histogram samples in:\n{text}"
    );

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (scripts/install.sh apt installs Debian's prometheus package)");
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("metrics written to promtool");
    let out = promtool.wait_with_output().expect("promtool finishes");
    assert!(
        out.status.success(),
        "promtool check metrics failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    server.stop().await;
}
