//! Governed redaction on the real stack (README "Redaction", docs/INTEGRITY.md
//! section 14): a request by one admin, approved by another, rewrites the
//! events with the fields erased; the chain, the event page and an export
//! bundle (through `attest verify` and the independent verifier) verify
//! them as redacted; the rollups count the same and forget the erased actor;
//! every step is in the tenant's own trail. Refused: the requester's own
//! approval, execution without approval, events not sealed yet. Caught: a
//! redacted row changed afterwards, a forged record. A run stopped between
//! the insert of the redacted row and the delete of the original is
//! finished by running it again.

mod common;
mod console_support;

use std::path::Path;
use std::time::{Duration, Instant};

use attest_server::integrity::check::{Problem, Report};
use console_support::{grant, Browser};
use serde_json::{json, Value};

const TENANT: &str = "acme";
/// `audit_events`' written columns, in table order.
const COLUMNS: &str = "event_id, tenant_id, occurred_at, received_at, category, action, outcome, \
     actor_id, actor_type, actor_ip, actor_user_agent, resource_type, resource_id, source_service, \
     request_id, metadata.key, metadata.value, schema_id, kafka_partition, kafka_offset";
const SUBJECT: &str = "subject-7";

/// The subject's three events (two failed attempts and a success) and
/// twelve of others, in one minute-aligned window, all authentication
/// events (the trail's own events are in other categories).
fn events(now: i64) -> Vec<Value> {
    let base = now - now.rem_euclid(60_000) - 120_000;
    let mut out = Vec::new();
    for (i, outcome) in ["failure", "denied", "success"].iter().enumerate() {
        out.push(json!({
            "event_id": format!("sub-{i}"),
            "tenant_id": TENANT,
            "occurred_at": base + i as i64 * 1_000,
            "category": "authentication",
            "action": "user.login",
            "outcome": outcome,
            "actor": {"id": SUBJECT, "type": "user", "ip": "198.51.100.7", "user_agent": "Mozilla/5.0"},
            "resource": {"type": "account", "id": "acc-9"},
            "source_service": "sso",
            "metadata": {"email": "subject@example.com", "ticket": "T-1"},
        }));
    }
    for i in 0..12 {
        let outcome = ["success", "failure"][i % 2];
        out.push(json!({
            "event_id": format!("other-{i}"),
            "tenant_id": if i % 3 == 0 { "globex" } else { TENANT },
            "occurred_at": base + i as i64 * 500,
            "category": "authentication",
            "action": "user.login",
            "outcome": outcome,
            "actor": {"id": format!("user-{i}"), "type": "user", "ip": "203.0.113.9"},
            "source_service": "sso",
        }));
    }
    out
}

/// A console session of an admin of every tenant, granted as `name`.
async fn admin(
    server: &common::TestServer,
    config: &attest_server::config::Config,
    name: &str,
) -> Browser {
    let mut browser = Browser::new(&server.base_url);
    browser
        .sign_in(
            &grant(
                config,
                &["--name", name, "--all-tenants", "--role", "admin"],
            ),
            "/",
        )
        .await;
    browser
}

async fn seed(server: &common::TestServer, events: &[Value]) {
    for e in events {
        let (status, body) = server.post_json(e.to_string()).await;
        assert_eq!(status, 202, "{body}");
    }
    let n = events.len() as u64;
    assert_eq!(server.wait_for_rows(n, Duration::from_secs(60)).await, n);
    common::wait_sealed(server, n).await;
    common::wait_committed(&server.config, n as i64).await;
}

fn number(text: String) -> u64 {
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("a number: {text}"))
}

/// The dashboard's count (the rollup, as `activity` merges it) and
/// Search's (distinct identities in the raw table), of the tenant's
/// events of the seeded category (the trail's own events, grants and
/// redaction steps, are in others).
async fn counts(server: &common::TestServer) -> (u64, u64) {
    let rollup = server
        .clickhouse(&format!(
            "SELECT uniqExactMerge(events) FROM audit_counts_per_minute \
             WHERE tenant_id = '{TENANT}' AND category = 'authentication'"
        ))
        .await;
    let search = server
        .clickhouse(&format!(
            "SELECT uniqExact(event_id, content_hash) FROM audit_events \
             WHERE tenant_id = '{TENANT}' AND category = 'authentication'"
        ))
        .await;
    (number(rollup), number(search))
}

/// Failures per actor of the tenant, as the dashboard's list reads them.
async fn failing_actors(server: &common::TestServer) -> Vec<(String, u64)> {
    server
        .clickhouse(&format!(
            "SELECT actor_id, uniqExactMerge(events) FROM audit_failures_per_minute \
             WHERE tenant_id = '{TENANT}' GROUP BY actor_id ORDER BY actor_id FORMAT TabSeparated"
        ))
        .await
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(a, n)| (a.to_owned(), n.parse().unwrap()))
        .collect()
}

async fn post(browser: &Browser, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = browser.http.post(format!("{}{path}", browser.base));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = browser.with_cookie(request).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get(browser: &Browser, path: &str) -> (u16, Value) {
    let response = browser.get(path).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A problem as (kind, subject), the independent verifier's shape.
fn kind(p: &Problem) -> (String, String) {
    let (k, s) = p.kind_and_subject();
    (k.to_owned(), s)
}

/// `attest integrity check` and the independent verifier on the store:
/// they must agree on the problems and on the redacted events. Returns
/// the check's report.
async fn check_both(config: &attest_server::config::Config) -> Report {
    let report = common::integrity_report(config).await;
    let keys = config.integrity.key_dir.join("keys.json");
    let out = tokio::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/integrity_verifier.py"
        ))
        .args(["--clickhouse", &config.clickhouse.url])
        .args(["--database", &config.clickhouse.database])
        .arg("--keys")
        .arg(&keys)
        .args(["--brokers", &config.kafka.brokers])
        .args(["--group", &config.kafka.consumer_group])
        .output()
        .await
        .expect("python3 runs the verifier");
    let text = String::from_utf8_lossy(&out.stdout);
    let theirs: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "verifier output ({e}): {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let pairs = |v: &Value| -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p[0].as_str().unwrap().to_owned(),
                    p[1].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        out.sort();
        out.dedup();
        out
    };
    let mut ours: Vec<(String, String)> = report.problems.iter().map(|(_, _, p)| kind(p)).collect();
    ours.sort();
    ours.dedup();
    assert_eq!(
        pairs(&theirs["problems"]),
        ours,
        "problems: the verifiers disagree"
    );
    let mut redacted: Vec<(String, String)> = report
        .redacted
        .iter()
        .map(|r| (r.event_id.clone(), r.request_id.clone()))
        .collect();
    redacted.sort();
    redacted.dedup();
    assert_eq!(
        pairs(&theirs["redacted"]),
        redacted,
        "redacted: the verifiers disagree"
    );
    report
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("attest-redaction-{}", common::unique()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// (ok, first problem as (kind, subject), redacted event ids).
type BundleVerdict = (bool, Option<(String, String)>, Vec<String>);

/// `attest verify --json` and the independent verifier on one bundle:
/// (ok, first problem as (kind, subject), redacted event ids) of each.
fn verify_bundle(bundle: &[u8], keys: &Path) -> [BundleVerdict; 2] {
    let path = scratch("bundle.zip");
    std::fs::write(&path, bundle).unwrap();
    let ours = std::process::Command::new(env!("CARGO_BIN_EXE_attest"))
        .arg("verify")
        .arg(&path)
        .arg("--json")
        .arg("--keys")
        .arg(keys)
        .output()
        .expect("attest verify runs");
    let theirs = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/integrity_verifier.py"
        ))
        .arg("export")
        .arg(&path)
        .arg("--keys")
        .arg(keys)
        .output()
        .expect("python3 runs the verifier");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
    let read = |out: &std::process::Output, id_at: usize| {
        let text = String::from_utf8_lossy(&out.stdout);
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!(
                "verifier output ({e}): {text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let first = v["first"].as_array().map(|f| {
            (
                f[0].as_str().unwrap().to_owned(),
                f[1].as_str().unwrap().to_owned(),
            )
        });
        let mut redacted: Vec<String> = v["redacted"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                if id_at == 0 {
                    r["event_id"].as_str().unwrap().to_owned()
                } else {
                    r[id_at].as_str().unwrap().to_owned()
                }
            })
            .collect();
        redacted.sort();
        (v["ok"].as_bool().unwrap(), first, redacted)
    };
    [read(&ours, 0), read(&theirs, 1)]
}

async fn export_bundle(browser: &Browser, format: &str) -> Vec<u8> {
    let response = browser
        .get(&format!(
            "/api/v1/export?format={format}&range=7d&tenant={TENANT}&proofs=true"
        ))
        .await;
    assert_eq!(response.status().as_u16(), 200, "export with proofs");
    response.bytes().await.unwrap().to_vec()
}

/// Waits until the tenant's trail holds `n` events of `action`; returns
/// their actors.
async fn trail(server: &common::TestServer, action: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let actors: Vec<String> = server
            .clickhouse(&format!(
                "SELECT actor_id FROM audit_events WHERE tenant_id = '{TENANT}' \
                 AND source_service = 'attest' AND action = '{action}' ORDER BY occurred_at \
                 FORMAT TabSeparated"
            ))
            .await
            .lines()
            .map(str::to_owned)
            .collect();
        if actors.len() >= n || Instant::now() > deadline {
            return actors;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_admin_approves_and_the_redaction_verifies_as_redacted() {
    let mut config = common::test_config();
    config.kafka.partitions = 1;
    config.console.require_login = true;
    config.console.session_secret = "redaction-test-secret-0123456789abcdef".into();
    let server = common::start(config.clone()).await;
    let now = attest_server::ingest::now_ms();
    seed(&server, &events(now)).await;

    let alice = admin(&server, &config, "alice").await;
    let bob = admin(&server, &config, "bob").await;
    let mut carol = Browser::new(&server.base_url);
    carol
        .sign_in(
            &grant(&config, &["--name", "carol", "--tenant", TENANT]),
            "/",
        )
        .await;

    let before = counts(&server).await;
    assert_eq!(before, (11, 11), "the tenant's events, counted both ways");
    let failing = failing_actors(&server).await;
    assert!(failing.contains(&(SUBJECT.to_owned(), 2)), "{failing:?}");

    let request = json!({
        "tenant_id": TENANT,
        "actor_id": SUBJECT,
        "fields": ["actor.id", "actor.ip", "metadata.email"],
        "reason": "GDPR erasure request 2026-118",
    });
    // An analyst may not ask; a protected field is refused by name.
    let (status, _) = post(&carol, "/api/v1/redactions", Some(request.clone())).await;
    assert_eq!(status, 403);
    let mut outcome = request.clone();
    outcome["fields"] = json!(["actor.ip", "outcome"]);
    let (status, body) = post(&alice, "/api/v1/redactions", Some(outcome)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["field_path"], "fields", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("`outcome` cannot be redacted"),
        "{body}"
    );

    let (status, made) = post(&alice, "/api/v1/redactions", Some(request)).await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["state"], "pending");
    assert_eq!(made["event_ids"], json!(["sub-0", "sub-1", "sub-2"]));
    let id = made["request_id"].as_str().unwrap().to_owned();

    // Not by the requester; not before approval.
    let (status, body) = post(&alice, &format!("/api/v1/redactions/{id}/approve"), None).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("second admin"),
        "{body}"
    );
    let (status, body) = post(&bob, &format!("/api/v1/redactions/{id}/execute"), None).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("not approved"),
        "{body}"
    );
    let untouched = server
        .clickhouse(&format!(
            "SELECT count() FROM audit_events WHERE actor_id = '{SUBJECT}'"
        ))
        .await;
    assert_eq!(number(untouched), 3, "nothing ran");
    let (status, pending) = get(&bob, "/api/v1/redactions?state=pending").await;
    assert_eq!(status, 200);
    assert_eq!(
        pending["requests"][0]["request_id"],
        id.as_str(),
        "{pending}"
    );

    // The console page: admins see the request; only another admin may
    // approve it there; an analyst gets the 403 page.
    let page = alice.get("/redactions").await.text().await.unwrap();
    assert!(
        page.contains(&id) && page.contains("Your request"),
        "{page}"
    );
    let page = bob.get("/redactions").await.text().await.unwrap();
    assert!(
        page.contains(&id) && page.contains("Approve and execute"),
        "{page}"
    );
    assert_eq!(carol.get("/redactions").await.status().as_u16(), 403);
    let (status, body) = alice
        .call("redactions/approve", &[("request_id", id.as_str())])
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("second admin"), "{body}");

    let (status, done) = post(&bob, &format!("/api/v1/redactions/{id}/approve"), None).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["redacted"], 3, "{done}");
    assert_eq!(done["request"]["state"], "executed", "{done}");
    assert_eq!(done["request"]["approved_by"], "bob");
    assert_eq!(
        done["request"]["subject_actor_id"], "",
        "the subject is not kept"
    );
    let page = bob.get("/redactions").await.text().await.unwrap();
    assert!(page.contains("No request waits for approval"), "{page}");

    // Exactly one row per event, with the fields erased and the rest kept.
    let rows = server
        .clickhouse(
            "SELECT event_id, actor_id, actor_ip, actor_user_agent, \
             arrayStringConcat(arrayMap((k, v) -> concat(k, '=', v), metadata.key, metadata.value), ';') \
             FROM audit_events WHERE event_id LIKE 'sub-%' ORDER BY event_id FORMAT TabSeparated",
        )
        .await;
    let expected: String = (0..3)
        .map(|i| {
            format!("sub-{i}\t[redacted]\t[redacted]\tMozilla/5.0\temail=[redacted];ticket=T-1\n")
        })
        .collect();
    assert_eq!(rows, expected);
    let leftovers = server
        .clickhouse(&format!(
            "SELECT count() FROM audit_events WHERE actor_id = '{SUBJECT}' OR actor_ip = '198.51.100.7'"
        ))
        .await;
    assert_eq!(number(leftovers), 0, "the original rows are gone");

    // Counts unchanged; the subject gone from the failures rollup.
    assert_eq!(counts(&server).await, before);
    let failing = failing_actors(&server).await;
    assert!(failing.iter().all(|(a, _)| a != SUBJECT), "{failing:?}");
    assert!(
        failing.contains(&("[redacted]".to_owned(), 2)),
        "{failing:?}"
    );

    // The chain verifies, the three events as redacted, in both verifiers.
    let report = check_both(&config).await;
    assert!(report.problems.is_empty(), "{:#?}", report.problems);
    let mut redacted: Vec<&str> = report
        .redacted
        .iter()
        .map(|r| r.event_id.as_str())
        .collect();
    redacted.sort();
    assert_eq!(redacted, ["sub-0", "sub-1", "sub-2"]);
    assert!(report.redacted.iter().all(|r| r.request_id == id));

    // The event page's verdict names the redaction.
    let seals = common::event_seals(&config);
    use app::integrity_model::{EventSeals, SealVerdict};
    let seal = seals
        .event_seal(TENANT, "sub-1", None, None)
        .await
        .unwrap()
        .expect("the event");
    match &seal.verdict {
        SealVerdict::Redacted { redaction, .. } => {
            assert_eq!(redaction.request_id, id);
            assert_eq!(redaction.fields, ["actor.id", "actor.ip", "metadata.email"]);
            assert_eq!(
                (
                    redaction.requested_by.as_str(),
                    redaction.approved_by.as_str()
                ),
                ("alice", "bob")
            );
        }
        other => panic!("{other:?}"),
    }

    // An export bundle verifies, the rows reported redacted, both ways.
    let keys = scratch("keys.json");
    std::fs::copy(config.integrity.key_dir.join("keys.json"), &keys).unwrap();
    for format in ["ndjson", "csv"] {
        let bundle = export_bundle(&bob, format).await;
        for (ok, first, redacted) in verify_bundle(&bundle, &keys) {
            assert!(ok, "{format}: {first:?}");
            assert_eq!(redacted, ["sub-0", "sub-1", "sub-2"], "{format}");
        }
    }

    // The request, the approval and the execution are in the tenant's trail.
    assert_eq!(trail(&server, "redaction.request", 1).await, ["alice"]);
    assert_eq!(trail(&server, "redaction.approve", 1).await, ["bob"]);
    assert_eq!(trail(&server, "redaction.execute", 1).await, ["bob"]);
    let subject_in_trail = server
        .clickhouse(&format!(
            "SELECT count() FROM audit_events WHERE source_service = 'attest' \
             AND has(metadata.value, '{SUBJECT}')"
        ))
        .await;
    assert_eq!(
        number(subject_in_trail),
        0,
        "the trail does not repeat the subject"
    );

    // Tampering after the redaction is caught: a redacted row changed
    // (its content no longer matches its record), and a forged record
    // (its signature fails).
    let forged = server
        .clickhouse(&format!(
            "SELECT {} FROM audit_events WHERE event_id = 'sub-0' FORMAT TabSeparated",
            COLUMNS.replace("resource_id,", "'acc-1' AS resource_id,")
        ))
        .await;
    common::mutate(
        &server,
        "ALTER TABLE audit_events DELETE WHERE event_id = 'sub-0'",
    )
    .await;
    server
        .clickhouse(&format!(
            "INSERT INTO audit_events ({COLUMNS}) FORMAT TabSeparated\n{forged}"
        ))
        .await;
    common::mutate(
        &server,
        "ALTER TABLE attest_redaction_records UPDATE approved_by = 'alice' WHERE event_id = 'sub-1'",
    )
    .await;
    let report = check_both(&config).await;
    let mut found: Vec<(String, String)> =
        report.problems.iter().map(|(_, _, p)| kind(p)).collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("bad_redaction".to_owned(), "sub-1".to_owned()),
            ("event_altered".to_owned(), "sub-0".to_owned()),
        ]
    );
    let bundle = export_bundle(&bob, "ndjson").await;
    for (ok, first, _) in verify_bundle(&bundle, &keys) {
        assert!(!ok);
        let first = first.expect("a first problem");
        assert!(
            first == ("event_altered".into(), "sub-0".into())
                || first == ("bad_redaction".into(), "sub-1".into()),
            "{first:?}"
        );
    }
    let _ = std::fs::remove_dir_all(keys.parent().unwrap());
    server.stop().await;
}

/// The two events' rows, by their IP.
async fn ip_rows(server: &common::TestServer) -> String {
    server
        .clickhouse(
            "SELECT event_id, actor_ip FROM audit_events WHERE event_id IN ('sub-0', 'sub-1') \
             ORDER BY event_id, actor_ip FORMAT TabSeparated",
        )
        .await
}

/// `attest redaction …` as an operator runs it.
fn cli(config: &attest_server::config::Config, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_attest"))
        .arg("redaction")
        .args(args)
        .envs(common::child_env(config))
        .output()
        .expect("attest redaction runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_between_insert_and_delete_is_finished_by_running_it_again() {
    let mut config = common::test_config();
    config.kafka.partitions = 1;
    let server = common::start(config.clone()).await;
    let now = attest_server::ingest::now_ms();
    seed(&server, &events(now)).await;
    let before = counts(&server).await;

    // Rows the writer did not seal, or whose offsets it has not committed
    // (it could deliver them again), cannot be redacted.
    for (id, offset, why) in [
        ("loose-1", 999_999, "not committed by the writers yet"),
        ("loose-2", 0, "not sealed yet"),
    ] {
        server
            .clickhouse(&format!(
                "INSERT INTO audit_events ({COLUMNS}) VALUES ('{id}', 'loose', {now}, {now}, \
                 'authentication', 'user.login', 'success', 'x', 'user', '', '', '', '', 'sso', '', \
                 [], [], 1, 0, {offset})"
            ))
            .await;
        let refused = cli(
            &config,
            &[
                "request", "--tenant", "loose", "--event", id, "--field", "actor.ip", "--reason",
                "r", "--by", "ops-a",
            ],
        );
        assert!(!refused.status.success());
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains(why), "{id}: {stderr}");
    }
    common::mutate(
        &server,
        "ALTER TABLE audit_events DELETE WHERE tenant_id = 'loose'",
    )
    .await;

    let made = cli(
        &config,
        &[
            "request",
            "--tenant",
            TENANT,
            "--event",
            "sub-0",
            "--event",
            "sub-1",
            "--field",
            "actor.ip",
            "--field",
            "actor.id",
            "--reason",
            "erasure 5",
            "--by",
            "ops-a",
        ],
    );
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let id = String::from_utf8_lossy(&made.stdout).trim().to_owned();
    // Pending: it cannot run, and its requester cannot approve it.
    let early = cli(&config, &["execute", &id, "--by", "ops-b"]);
    assert!(!early.status.success());
    assert!(String::from_utf8_lossy(&early.stderr).contains("not approved"));
    let own = cli(&config, &["approve", &id, "--by", "ops-a"]);
    assert!(!own.status.success());
    assert!(String::from_utf8_lossy(&own.stderr).contains("cannot approve it too"));

    // The originals, as they are before the run.
    let columns = COLUMNS;
    let originals = server
        .clickhouse(&format!(
            "SELECT {columns} FROM audit_events WHERE event_id IN ('sub-0', 'sub-1') FORMAT TabSeparated"
        ))
        .await;
    let approved = cli(&config, &["approve", &id, "--by", "ops-b"]);
    assert!(
        approved.status.success(),
        "{}",
        String::from_utf8_lossy(&approved.stderr)
    );
    assert!(String::from_utf8_lossy(&approved.stdout).contains("2 rows redacted"));

    // Back to where a crash between the insert of the redacted rows and
    // the delete of the originals leaves it: records and redacted rows
    // stored, the originals still there (and counted again by the views),
    // the request approved but not executed.
    server
        .clickhouse(&format!(
            "INSERT INTO audit_events ({columns}) FORMAT TabSeparated\n{originals}"
        ))
        .await;
    server
        .clickhouse(&format!(
            "INSERT INTO attest_redaction_requests SELECT request_id, tenant_id, subject_actor_id, event_ids, \
             content_hashes, fields, reason, requested_by, requested_by_id, requested_at, approved_by, \
             approved_by_id, approved_at, 0, version + 1 FROM attest_redaction_requests FINAL \
             WHERE request_id = '{id}'"
        ))
        .await;
    assert_eq!(
        ip_rows(&server).await,
        "sub-0\t198.51.100.7\nsub-0\t[redacted]\nsub-1\t198.51.100.7\nsub-1\t[redacted]\n"
    );
    assert_ne!(
        counts(&server).await,
        before,
        "the views counted the originals again"
    );
    let listed = cli(&config, &["list", "--state", "approved", "--json"]);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["request_id"], id.as_str(), "{listed}");

    let again = cli(&config, &["execute", &id, "--by", "ops-b"]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(
        ip_rows(&server).await,
        "sub-0\t[redacted]\nsub-1\t[redacted]\n",
        "exactly one (redacted) row per event"
    );
    let records = server
        .clickhouse(&format!(
            "SELECT count() FROM (SELECT DISTINCT * FROM attest_redaction_records WHERE request_id = '{id}')"
        ))
        .await;
    assert_eq!(number(records), 2, "no second record signed");
    assert_eq!(
        counts(&server).await,
        before,
        "the rollups count each event once"
    );
    let report = check_both(&config).await;
    assert!(report.problems.is_empty(), "{:#?}", report.problems);
    assert_eq!(report.redacted.len(), 2);
    let listed = cli(&config, &["list", "--state", "executed", "--json"]);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["request_id"], id.as_str(), "{listed}");
    server.stop().await;
}

/// Two admins approve one request at the same moment, in two processes
/// (two `Redactions`, each with its own lock): both runs execute, and they
/// write one record per row, one execution event and one redacted row per
/// event, all naming the same approver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_approvals_at_once_execute_once() {
    use attest_server::redaction::{NewRequest, Who};
    let mut config = common::test_config();
    config.kafka.partitions = 1;
    let server = common::start(config.clone()).await;
    let now = attest_server::ingest::now_ms();
    seed(&server, &events(now)).await;
    let before = counts(&server).await;

    let one = attest_server::open_redactions(&config).await.unwrap();
    let other = attest_server::open_redactions(&config).await.unwrap();
    let made = one
        .request(
            &Who::operator("ops-a"),
            NewRequest {
                tenant_id: TENANT.into(),
                event_ids: vec!["sub-0".into(), "sub-1".into()],
                fields: vec!["actor.ip".into(), "metadata.email".into()],
                reason: "erasure 9".into(),
                ..NewRequest::default()
            },
        )
        .await
        .unwrap();
    let id = made.request_id.as_str();
    let (ops_b, ops_c) = (Who::operator("ops-b"), Who::operator("ops-c"));
    let (b, c) = tokio::join!(one.approve(id, &ops_b), other.approve(id, &ops_c));
    let (b, c) = (b.unwrap(), c.unwrap());
    assert_eq!(b.request.approved_by, c.request.approved_by);
    assert_eq!((b.redacted, c.redacted), (2, 2));
    let approver = b.request.approved_by.clone();
    assert!(approver == "ops-b" || approver == "ops-c", "{approver}");

    // Both approvals are in the trail (both admins did approve); one
    // execution, by the approval that counts.
    let mut approvers = trail(&server, "redaction.approve", 2).await;
    approvers.sort();
    assert_eq!(approvers, ["ops-b", "ops-c"]);
    trail(&server, "redaction.execute", 2).await;
    let executions = server
        .clickhouse(&format!(
            "SELECT DISTINCT event_id, actor_id, occurred_at FROM audit_events \
             WHERE tenant_id = '{TENANT}' AND action = 'redaction.execute' FORMAT TabSeparated"
        ))
        .await;
    assert_eq!(executions.lines().count(), 1, "{executions}");
    assert!(
        executions.contains(&format!("\t{approver}\t")),
        "{executions}"
    );

    // One record per row, byte for byte, naming that approver.
    let records = server
        .clickhouse(&format!(
            "SELECT event_id, approved_by FROM (SELECT DISTINCT * FROM attest_redaction_records \
             WHERE request_id = '{id}') ORDER BY event_id FORMAT TabSeparated"
        ))
        .await;
    assert_eq!(
        records,
        format!("sub-0\t{approver}\nsub-1\t{approver}\n"),
        "no second record signed"
    );

    // One redacted row per event: the two runs' inserts are the same row
    // (same identity and offset), which the table's merge collapses and
    // every read keeps once. The execution event: one identity.
    let rows = server
        .clickhouse(
            "SELECT DISTINCT event_id, content_hash, actor_ip, kafka_offset FROM audit_events \
             WHERE event_id IN ('sub-0', 'sub-1') ORDER BY event_id FORMAT TabSeparated",
        )
        .await;
    let rows: Vec<(&str, &str)> = rows
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Some((*f.first()?, *f.get(2)?))
        })
        .collect();
    assert_eq!(rows, [("sub-0", "[redacted]"), ("sub-1", "[redacted]")]);
    let stored = server
        .clickhouse(&format!(
            "SELECT uniqExact(event_id, content_hash) FROM audit_events \
             WHERE tenant_id = '{TENANT}' AND action = 'redaction.execute'"
        ))
        .await;
    assert_eq!(number(stored), 1, "one execution event");
    assert_eq!(counts(&server).await, before);
    // Both runs' execution events are sealed at their own offsets; once
    // the table merges them into one row, the check still finds each
    // (docs/INTEGRITY.md, section 8 step 5), whenever the merge happens.
    server.clickhouse("OPTIMIZE TABLE audit_events FINAL").await;
    let report = check_both(&config).await;
    assert!(report.problems.is_empty(), "{:#?}", report.problems);
    assert_eq!(report.redacted.len(), 2);

    // Executed: running it again from either process changes nothing.
    let (b, c) = tokio::join!(one.execute(id, &ops_b), other.execute(id, &ops_c));
    assert_eq!((b.unwrap().redacted, c.unwrap().redacted), (0, 0));
    server.stop().await;
}

/// Two admins approved at once in two processes, and a merge of the
/// request's versions ran before either run signed anything: the run still
/// counts the earliest approval, which the merge took from the request's
/// versions but not from the approvals (docs/INTEGRITY.md, section 14).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_before_the_run_keeps_the_earliest_approval() {
    use attest_server::redaction::{NewRequest, Who};
    let mut config = common::test_config();
    config.kafka.partitions = 1;
    let server = common::start(config.clone()).await;
    let now = attest_server::ingest::now_ms();
    seed(&server, &events(now)).await;

    let redactions = attest_server::open_redactions(&config).await.unwrap();
    let made = redactions
        .request(
            &Who::operator("ops-a"),
            NewRequest {
                tenant_id: TENANT.into(),
                event_ids: vec!["sub-0".into()],
                fields: vec!["actor.ip".into()],
                reason: "erasure 11".into(),
                ..NewRequest::default()
            },
        )
        .await
        .unwrap();
    let id = made.request_id.as_str();
    // What each approver's process stores: its approval, then the
    // request's approved version (whose version is the approval's time).
    let approved = attest_server::ingest::now_ms();
    for (who, at) in [("ops-c", approved), ("ops-b", approved + 5)] {
        server
            .clickhouse(&format!(
                "INSERT INTO attest_redaction_approvals (request_id, approved_at, approved_by_id, \
                 approved_by) VALUES ('{id}', {at}, 'cli:{who}', '{who}')"
            ))
            .await;
        server
            .clickhouse(&format!(
                "INSERT INTO attest_redaction_requests SELECT request_id, tenant_id, \
                 subject_actor_id, event_ids, content_hashes, fields, reason, requested_by, \
                 requested_by_id, requested_at, '{who}', 'cli:{who}', {at}, 0, {at} \
                 FROM attest_redaction_requests FINAL WHERE request_id = '{id}'"
            ))
            .await;
    }
    server
        .clickhouse("OPTIMIZE TABLE attest_redaction_requests FINAL")
        .await;
    let versions = server
        .clickhouse(&format!(
            "SELECT approved_by FROM attest_redaction_requests WHERE request_id = '{id}' \
             FORMAT TabSeparated"
        ))
        .await;
    assert_eq!(
        versions, "ops-b\n",
        "the merge kept the newest version only"
    );

    let run = redactions
        .execute(id, &Who::operator("ops-b"))
        .await
        .unwrap();
    assert_eq!(run.redacted, 1);
    assert_eq!(
        run.request.approved_by, "ops-c",
        "the earliest approval counts"
    );
    let records = server
        .clickhouse(&format!(
            "SELECT DISTINCT approved_by FROM attest_redaction_records WHERE request_id = '{id}' \
             FORMAT TabSeparated"
        ))
        .await;
    assert_eq!(records, "ops-c\n");
    server.stop().await;
}

/// A subject with thousands of events is redacted in a bounded number of
/// inserts: every row redacted, one record each, counts unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subject_with_thousands_of_events_is_redacted_in_few_inserts() {
    const N: usize = 2_500;
    let mut config = common::test_config();
    config.kafka.partitions = 1;
    config.console.require_login = true;
    config.console.session_secret = "redaction-test-secret-0123456789abcdef".into();
    let server = common::start(config.clone()).await;
    let now = attest_server::ingest::now_ms();
    let base = now - now.rem_euclid(60_000) - 600_000;
    let events: Vec<Value> = (0..N)
        .map(|i| {
            let outcome = ["success", "failure"][i % 2];
            json!({
                "event_id": format!("many-{i}"),
                "tenant_id": TENANT,
                "occurred_at": base + i as i64 * 100,
                "category": "authentication",
                "action": "user.login",
                "outcome": outcome,
                "actor": {"id": SUBJECT, "type": "user", "ip": "198.51.100.7"},
                "source_service": "sso",
            })
        })
        .collect();
    for chunk in events.chunks(500) {
        let response = server
            .http
            .post(format!("{}/api/v1/events/batch", server.base_url))
            .json(&chunk)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 202);
    }
    let n = N as u64;
    assert_eq!(server.wait_for_rows(n, Duration::from_secs(120)).await, n);
    common::wait_sealed(&server, n).await;
    common::wait_committed(&server.config, N as i64).await;
    let before = counts(&server).await;
    assert_eq!(before, (n, n));

    let alice = admin(&server, &config, "alice").await;
    let bob = admin(&server, &config, "bob").await;
    let request = json!({
        "tenant_id": TENANT,
        "actor_id": SUBJECT,
        "fields": ["actor.id", "actor.ip"],
        "reason": "GDPR erasure request 2026-200",
    });
    let (status, made) = post(&alice, "/api/v1/redactions", Some(request)).await;
    assert_eq!(status, 201, "{made}");
    let id = made["request_id"].as_str().unwrap().to_owned();
    let (status, done) = post(&bob, &format!("/api/v1/redactions/{id}/approve"), None).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["redacted"], N, "{done}");

    let rows = server
        .clickhouse(
            "SELECT count(), uniqExact(event_id), countIf(actor_id = '[redacted]' \
             AND actor_ip = '[redacted]') FROM audit_events WHERE event_id LIKE 'many-%' \
             FORMAT TabSeparated",
        )
        .await;
    assert_eq!(rows, format!("{N}\t{N}\t{N}\n"), "every row redacted, once");
    let records = server
        .clickhouse(&format!(
            "SELECT count(), uniqExact(event_id) FROM attest_redaction_records \
             WHERE request_id = '{id}' FORMAT TabSeparated"
        ))
        .await;
    assert_eq!(records, format!("{N}\t{N}\n"), "one record per row");
    // Each insert makes one part of level 0 (kept a few minutes after a
    // merge): one insert for all the records.
    let inserts = server
        .clickhouse(
            "SELECT count() FROM system.parts WHERE database = currentDatabase() \
             AND table = 'attest_redaction_records' AND level = 0",
        )
        .await;
    assert_eq!(number(inserts), 1, "the records in one insert");
    assert_eq!(counts(&server).await, before);
    let report = check_both(&config).await;
    assert!(report.problems.is_empty(), "{:#?}", report.problems);
    assert_eq!(report.redacted.len(), N);
    server.stop().await;
}
