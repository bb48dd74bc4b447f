//! Detections against the real stack: a burst that crosses a rule's
//! threshold fires exactly once, across two evaluation ticks and two server
//! processes (and after the elected one stops), and is delivered once,
//! signed, to a webhook receiver inside the test; a burst below never
//! fires; rule changes are recorded in the tenant's audit trail; and a
//! viewer of one tenant can neither see nor touch another tenant's rules or
//! firings through any detections server function.

mod common;
mod console_support;
mod search_support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use attest_server::config::{Config, WebhookConfig, WebhookFormat};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

use console_support::{grant, Browser};
use search_support::*;

const SECRET: &str = "detections-receiver-secret-0123";

#[derive(Debug, Clone)]
struct Received {
    body: Value,
    signed: bool,
}

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

async fn receive(
    State(receiver): State<Receiver>,
    headers: HeaderMap,
    body: Bytes,
) -> &'static str {
    let signature = headers
        .get("x-attest-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    receiver.got.lock().expect("lock").push(Received {
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        signed: signature == sign(&body),
    });
    "ok"
}

impl Receiver {
    async fn start(stop: CancellationToken) -> (Receiver, SocketAddr) {
        let receiver = Receiver::default();
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
        (receiver, addr)
    }

    fn all(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }
}

fn detecting_config(hook: SocketAddr) -> Config {
    let mut config = common::test_config();
    config.alerts.evaluate_every = Duration::from_millis(500);
    config.detections.evaluate_every = Duration::from_millis(500);
    config.detections.delivery.retry_initial = Duration::from_millis(200);
    config.detections.delivery.retry_max = Duration::from_secs(1);
    config.detections.webhooks = vec![WebhookConfig {
        name: "soc".into(),
        url: format!("http://{hook}/hook"),
        secret: SECRET.into(),
        format: WebhookFormat::Json,
        ca_file: None,
    }];
    config
}

/// Failed logins of `actor` in `tenant`, occurring over the last seconds.
fn failed_logins(tag: &str, tenant: &str, actor: &str, n: usize) -> Vec<Value> {
    let now = attest_server::ingest::now_ms();
    (0..n)
        .map(|i| {
            with(
                event(&format!("{tag}-{i}"), tenant, now - (i as i64 % 5) * 100),
                json!({"outcome": "failure", "actor": {"id": actor, "ip": "203.0.113.9"}}),
            )
        })
        .collect()
}

/// Posts `events` through `server` and waits until ClickHouse holds them
/// all: with two processes, either writer may store them.
async fn post_and_wait(server: &common::TestServer, events: &[Value]) {
    post_all(server, events).await;
    let ids: Vec<String> = events
        .iter()
        .map(|e| format!("'{}'", e["event_id"].as_str().expect("an id")))
        .collect();
    let sql = format!(
        "SELECT uniqExact(event_id) FROM audit_events WHERE event_id IN ({})",
        ids.join(", ")
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n: usize = server.clickhouse(&sql).await.trim().parse().expect("count");
        if n == events.len() {
            return;
        }
        assert!(Instant::now() < deadline, "{n} of {} stored", events.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn rule_form<'a>(
    tenant: &'a str,
    name: &'a str,
    threshold: &'a str,
) -> Vec<(&'static str, &'a str)> {
    vec![
        ("tenant", tenant),
        ("name", name),
        ("query", "category:authentication outcome:failure"),
        ("group_by", "actor"),
        ("threshold", threshold),
        ("window_minutes", "5"),
        ("enabled", "on"),
    ]
}

async fn firing_rows(server: &common::TestServer) -> Vec<(String, String, String, u64)> {
    let text = server
        .clickhouse(
            "SELECT firing_id, rule_name, group_value, events FROM attest_detection_firings \
             ORDER BY firing_id FORMAT TSV",
        )
        .await;
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[0].to_owned(),
                f[1].to_owned(),
                f[2].to_owned(),
                f[3].parse().expect("events"),
            )
        })
        .collect()
}

/// Waits until `server` is the elected evaluator (or `timeout`).
async fn wait_elected(servers: &[&common::TestServer]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for (i, s) in servers.iter().enumerate() {
            if s.metrics_text()
                .await
                .lines()
                .any(|l| l == "attest_alert_evaluator 1")
            {
                return i;
            }
        }
        assert!(Instant::now() < deadline, "no evaluator elected in 60 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_fires_once_across_ticks_and_processes_and_one_below_never() {
    let hooks_stop = CancellationToken::new();
    let (receiver, hook) = Receiver::start(hooks_stop.clone()).await;
    let config = detecting_config(hook);
    let a = common::start(config.clone()).await;
    let mut second = config.clone();
    second.ingest.spool_dir =
        std::env::temp_dir().join(format!("attest-test-spool-{}", common::unique()));
    let b = common::start(second).await;
    let elected = wait_elected(&[&a, &b]).await;

    let console = Browser::new(&a.base_url);
    let (status, crossing) = console
        .call("detections/save", &rule_form("acme", "Brute force", "10"))
        .await;
    assert_eq!(status, 200, "{crossing}");
    let (status, _) = console
        .call("detections/save", &rule_form("acme", "Mass failure", "100"))
        .await;
    assert_eq!(status, 200);
    // The form's check, named by field, on the server too.
    let mut bad = rule_form("acme", "Broken", "0");
    let (status, answer) = console.call("detections/save", &bad).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.to_string().contains("threshold"), "{answer}");
    bad[2] = ("query", "outcome:(");
    bad[4] = ("threshold", "5");
    let (status, answer) = console.call("detections/save", &bad).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.to_string().contains("query"), "{answer}");

    // Part of the burst, below the threshold; ticks pass.
    post_and_wait(&a, &failed_logins("m1", "acme", "mallory", 6)).await;
    // And alice's few failures, which never reach it.
    post_and_wait(&a, &failed_logins("al", "acme", "alice", 9)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        firing_rows(&a).await.is_empty(),
        "fired below the threshold"
    );
    // The rest of it: 6 + 24 failures of mallory within the window.
    post_and_wait(&a, &failed_logins("m2", "acme", "mallory", 24)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while firing_rows(&a).await.is_empty() {
        assert!(Instant::now() < deadline, "the burst did not fire in 30 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Many more ticks of both processes; then the elected one stops and the
    // other takes over and evaluates the same window again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (stopping, staying) = if elected == 0 { (a, b) } else { (b, a) };
    stopping.running.shutdown().await;
    let _ = std::fs::remove_dir_all(&stopping.config.ingest.spool_dir);
    wait_elected(&[&staying]).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let rows = firing_rows(&staying).await;
    assert_eq!(rows.len(), 1, "stored once: {rows:?}");
    let (firing_id, rule, value, events) = rows[0].clone();
    assert_eq!((rule.as_str(), value.as_str()), ("Brute force", "mallory"));
    assert!((10..=30).contains(&events), "{events}");

    // One signed delivery, naming that firing.
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver.all().is_empty() {
        assert!(Instant::now() < deadline, "nothing delivered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got = receiver.all();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].signed, "the signature matches the body");
    assert_eq!(got[0].body["type"], "detection");
    assert_eq!(got[0].body["firing_id"], firing_id.as_str());
    assert_eq!(got[0].body["group_value"], "mallory");
    assert_eq!(got[0].body["tenant"], "acme");

    // The firing, with its link, and the delivery attempt on the page.
    let console = Browser::new(&staying.base_url);
    let deadline = Instant::now() + Duration::from_secs(15);
    let view = loop {
        let (status, view) = console.call("detections/view", &[]).await;
        assert_eq!(status, 200, "{view}");
        if !view["deliveries"].as_array().is_some_and(Vec::is_empty) {
            break view;
        }
        assert!(Instant::now() < deadline, "no delivery recorded: {view}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(view["firings"].as_array().map(Vec::len), Some(1), "{view}");
    assert_eq!(
        view["deliveries"][0]["subject"],
        format!("detection:{firing_id}")
    );
    assert_eq!(view["deliveries"][0]["status"], 200);
    assert_eq!(view["rules"].as_array().map(Vec::len), Some(2));

    // The firing's Search link finds exactly the events it counted.
    let firing: app::detections_model::Firing =
        serde_json::from_value(view["firings"][0].clone()).expect("a firing");
    assert_eq!(
        firing.search_query(),
        "category:authentication outcome:failure actor:\"mallory\""
    );
    let in_window = staying
        .clickhouse(&format!(
            "SELECT uniqExact(tenant_id, event_id, content_hash) FROM audit_events \
             WHERE tenant_id = 'acme' AND actor_id = 'mallory' AND outcome = 'failure' \
             AND occurred_at >= {} AND occurred_at <= {}",
            firing.window_from_ms, firing.window_to_ms
        ))
        .await;
    assert!(in_window.trim().parse::<u64>().expect("count") >= firing.events);

    // Both creations are in acme's trail, by the console's viewer.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = staying
            .clickhouse(
                "SELECT count() FROM audit_events WHERE tenant_id = 'acme' \
                 AND action = 'detection_rule.create' AND resource_type = 'detection_rule'",
            )
            .await;
        if n.trim() == "2" {
            break;
        }
        assert!(Instant::now() < deadline, "rule changes not recorded: {n}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    staying.stop().await;
    hooks_stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_of_one_tenant_cannot_see_or_touch_another_tenants_detections() {
    let mut config = detecting_config("127.0.0.1:9".parse().expect("addr"));
    config.detections.webhooks.clear();
    config.console.require_login = true;
    let server = common::start(config.clone()).await;
    wait_elected(&[&server]).await;
    let alice_key = grant(&config, &["--name", "alice@acme", "--tenant", "acme"]);
    let gus_key = grant(&config, &["--name", "gus@globex", "--tenant", "globex"]);
    let mut alice = Browser::new(&server.base_url);
    alice.sign_in(&alice_key, "/detections").await;
    let mut gus = Browser::new(&server.base_url);
    gus.sign_in(&gus_key, "/detections").await;

    let (status, answer) = Browser::new(&server.base_url)
        .call("detections/view", &[])
        .await;
    assert_eq!(status, 401, "signed out: nothing {answer}");

    let (status, gus_rule) = gus
        .call(
            "detections/save",
            &rule_form("globex", "Globex brute force", "3"),
        )
        .await;
    assert_eq!(status, 200, "{gus_rule}");
    let gus_rule = gus_rule.as_str().expect("an id").to_owned();
    let (status, alice_rule) = alice
        .call(
            "detections/save",
            &rule_form("acme", "Acme brute force", "3"),
        )
        .await;
    assert_eq!(status, 200, "{alice_rule}");
    seed(&server, &failed_logins("g", "globex", "gus-target", 5)).await;
    seed(&server, &failed_logins("a", "acme", "acme-target", 5)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while firing_rows(&server).await.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            firing_rows(&server).await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Alice sees her tenant's rule and firing, nothing of globex's.
    let (status, view) = alice.call("detections/view", &[]).await;
    assert_eq!(status, 200, "{view}");
    let text = view.to_string();
    assert!(
        text.contains("acme-target") && text.contains("Acme brute force"),
        "{text}"
    );
    for theirs in ["globex", "gus-target", gus_rule.as_str()] {
        assert!(!text.contains(theirs), "alice sees {theirs}: {text}");
    }
    let (status, firings) = alice.call("dashboard/detections", &[("range", "1h")]).await;
    assert_eq!(status, 200, "{firings}");
    assert_eq!(firings.as_array().map(Vec::len), Some(1), "{firings}");
    assert!(!firings.to_string().contains("globex"));
    // Asking for globex by name is refused, however it is asked.
    for (path, form) in [
        ("detections/view", vec![("tenant", "globex")]),
        ("detections/view", vec![("tenant", "acme,globex")]),
        ("dashboard/detections", vec![("tenant", "globex")]),
        ("detections/save", rule_form("globex", "Sneaky", "1")),
        (
            "detections/enable",
            vec![("rule_id", gus_rule.as_str()), ("enabled", "false")],
        ),
        ("detections/delete", vec![("rule_id", gus_rule.as_str())]),
    ] {
        let (status, answer) = alice.call(path, &form).await;
        assert_eq!(status, 403, "{path} {form:?}: {answer}");
    }
    // Editing gus's rule by id, moved to her tenant, is refused too.
    let mut edit = rule_form("acme", "Taken over", "1");
    edit.push(("rule_id", gus_rule.as_str()));
    let (status, answer) = alice.call("detections/save", &edit).await;
    assert_eq!(status, 403, "{answer}");
    // Gus's rule is untouched, and his view has only his tenant.
    let (status, view) = gus.call("detections/view", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(view["rules"][0]["name"], "Globex brute force");
    assert_eq!(view["rules"][0]["enabled"], 1);
    assert_eq!(view["rules"].as_array().map(Vec::len), Some(1));
    assert!(!view.to_string().contains("acme"), "{view}");

    // Gus pauses, resumes, edits and deletes his own rule.
    let (status, _) = gus
        .call(
            "detections/enable",
            &[("rule_id", gus_rule.as_str()), ("enabled", "false")],
        )
        .await;
    assert_eq!(status, 200);
    let (_, view) = gus.call("detections/view", &[]).await;
    assert_eq!(view["rules"][0]["enabled"], 0);
    let mut edit = rule_form("globex", "Globex renamed", "4");
    edit.push(("rule_id", gus_rule.as_str()));
    let (status, answer) = gus.call("detections/save", &edit).await;
    assert_eq!(status, 200, "{answer}");
    let (_, view) = gus.call("detections/view", &[]).await;
    assert_eq!(view["rules"][0]["name"], "Globex renamed");
    assert_eq!(view["rules"][0]["threshold"], 4);
    let (status, _) = gus
        .call("detections/delete", &[("rule_id", gus_rule.as_str())])
        .await;
    assert_eq!(status, 200);
    let (_, view) = gus.call("detections/view", &[]).await;
    assert_eq!(view["rules"].as_array().map(Vec::len), Some(0), "{view}");
    // Every change is in globex's trail: create, pause, update, delete.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let actions = server
            .clickhouse(
                "SELECT action FROM audit_events WHERE tenant_id = 'globex' \
                 AND resource_type = 'detection_rule' ORDER BY action FORMAT TSV",
            )
            .await;
        if actions
            == "detection_rule.create\ndetection_rule.delete\ndetection_rule.pause\ndetection_rule.update\n"
        {
            break;
        }
        assert!(Instant::now() < deadline, "{actions}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    server.stop().await;
}
