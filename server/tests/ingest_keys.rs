//! API keys at the front door, against the real stack: no key or a wrong one
//! is 401, a key only sends for its tenant, service and categories (403
//! otherwise, nothing stored), the key fills in what the body leaves out,
//! `attest keys` creates and revokes, and a revocation takes effect without
//! a restart. Key changes are themselves in the tenant's audit trail.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

async fn post(
    server: &common::TestServer,
    key: Option<&str>,
    body: &Value,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut request = server
        .http
        .post(format!("{}/api/v1/events", server.base_url))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let response = request.send().await.expect("attest reachable");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (
        status,
        response.json().await.unwrap_or(Value::Null),
        headers,
    )
}

fn event(id: &str, category: &str) -> Value {
    json!({
        "event_id": id,
        "occurred_at": attest_server::ingest::now_ms(),
        "category": category,
        "action": "user.login",
        "outcome": "success",
        "actor": {"id": "alice", "type": "user"},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_decide_who_may_send_what_and_revocation_needs_no_restart() {
    let mut config = common::test_config();
    config.ingest.require_api_key = true;
    config.ingest.key_refresh = Duration::from_millis(300);
    let server = common::start(config.clone()).await;

    // Created through the binary, as an operator would: the key is the only
    // line on stdout.
    let output = Command::new(env!("CARGO_BIN_EXE_attest"))
        .args([
            "keys",
            "create",
            "--tenant",
            "acme",
            "--service",
            "billing",
            "--by",
            "ops-1",
        ])
        .envs(common::child_env(&config))
        .output()
        .expect("attest keys create runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let key = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(
        key.starts_with("atk_") && key.len() == 4 + 16 + 1 + 64,
        "{key}"
    );
    let key_id = key[4..20].to_owned();

    // Without a valid key: 401 with a challenge, whatever the body.
    let good = event("k-1", "authentication");
    for presented in [
        None,
        Some("atk_nope"),
        Some(&format!("atk_{key_id}_{}", "0".repeat(64))[..]),
    ] {
        let (status, body, headers) = post(&server, presented, &good).await;
        assert_eq!(status, 401, "{presented:?}: {body}");
        assert_eq!(body["error"], "unauthorized");
        assert!(headers.contains_key("www-authenticate"));
    }

    // The key fills in tenant and service.
    let (status, body, _) = post(&server, Some(&key), &good).await;
    assert_eq!(status, 202, "{body}");
    // Naming them again is fine; naming others is 403, field by field.
    let mut same = event("k-2", "admin");
    same["tenant_id"] = json!("acme");
    same["source_service"] = json!("billing");
    assert_eq!(post(&server, Some(&key), &same).await.0, 202);
    let mut other = event("k-3", "admin");
    other["tenant_id"] = json!("globex");
    other["source_service"] = json!("payroll");
    let (status, body, _) = post(&server, Some(&key), &other).await;
    assert_eq!(status, 403, "{body}");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field_path"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["tenant_id", "source_service"]);

    // A key limited to one category.
    let admin = attest_server::open_keys(&config).await.expect("key admin");
    let narrow = admin
        .create(
            "acme",
            "sso",
            &["authentication".to_owned()],
            "login events only",
            "ops-1",
        )
        .await
        .expect("narrow key");
    assert_eq!(
        post(&server, Some(&narrow.key), &event("k-4", "authentication"))
            .await
            .0,
        202
    );
    let (status, body, _) = post(
        &server,
        Some(&narrow.key),
        &event("k-5", "permission_change"),
    )
    .await;
    assert_eq!(
        (status, body["errors"][0]["field_path"].as_str()),
        (403, Some("category")),
        "{body}"
    );

    // Listing never shows a secret or its hash.
    let listed = Command::new(env!("CARGO_BIN_EXE_attest"))
        .args(["keys", "list"])
        .envs(common::child_env(&config))
        .output()
        .expect("attest keys list runs");
    let listing = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listing.contains(&key_id) && listing.contains("login events only"),
        "{listing}"
    );
    assert!(
        !listing.contains(&key[21..]) && !listing.contains(&narrow.row.secret_sha256),
        "{listing}"
    );

    // Revoked: refused within a few refresh intervals, no restart.
    admin.revoke(&key_id, "ops-2").await.expect("revoked");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body, _) = post(&server, Some(&key), &event("k-6", "authentication")).await;
        if status == 401 {
            assert!(
                body["message"].as_str().unwrap().contains("revoked"),
                "{body}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "revoked key still accepted: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Exactly the accepted events, each with the key's tenant and service,
    // beside the audit trail of the key changes. (k-6 may have been accepted
    // before the revocation reached the server; it is not counted.)
    let deadline = Instant::now() + Duration::from_secs(30);
    let expected = "acme\tadmin\tapi_key.create\tattest\tops-1\n\
                    acme\tadmin\tapi_key.create\tattest\tops-1\n\
                    acme\tadmin\tapi_key.revoke\tattest\tops-2\n\
                    acme\tadmin\tuser.login\tbilling\talice\n\
                    acme\tauthentication\tuser.login\tbilling\talice\n\
                    acme\tauthentication\tuser.login\tsso\talice\n";
    loop {
        let rows = server
            .clickhouse(
                "SELECT tenant_id, category, action, source_service, actor_id FROM \
                 (SELECT * FROM audit_events WHERE event_id != 'k-6' LIMIT 1 BY event_id) \
                 ORDER BY action, category, source_service FORMAT TSV",
            )
            .await;
        if rows == expected {
            break;
        }
        assert!(Instant::now() < deadline, "got:\n{rows}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    server.stop().await;
}
