//! Console sign-in and tenant scoping against the real stack: without a
//! session nothing of the console answers; a viewer of one tenant sees that
//! tenant only, through every page, server function (the event page's seal
//! check included) and the export; sign-in, refusals and exports are in the
//! audit trail; a revocation ends sessions without a restart.

mod common;
mod console_support;
mod search_support;

use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::header::{LOCATION, SET_COOKIE};
use serde_json::Value;

use console_support::{grant, Browser};
use search_support::{event, seed, MINUTE};

fn ids(answer: &Value) -> Vec<String> {
    let mut ids: Vec<String> = answer["hits"]
        .as_array()
        .unwrap_or_else(|| panic!("hits in {answer}"))
        .iter()
        .map(|h| {
            format!(
                "{}/{}",
                h["tenant_id"].as_str().unwrap(),
                h["event_id"].as_str().unwrap()
            )
        })
        .collect();
    ids.sort();
    ids
}

/// The event page's seal check for one event, as the page asks for it.
async fn seal(browser: &Browser, tenant: &str, id: &str) -> (u16, Value) {
    browser
        .call("search/event/seal", &[("tenant", tenant), ("id", id)])
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_only_their_tenants_and_every_access_is_recorded() {
    let mut config = common::test_config();
    config.console.require_login = true;
    config.console.access_refresh = Duration::from_millis(200);
    let server = common::start(config.clone()).await;
    let now = attest_server::ingest::now_ms();
    seed(
        &server,
        &[
            event("a-1", "acme", now - MINUTE),
            event("a-2", "acme", now - 2 * MINUTE),
            event("g-1", "globex", now - MINUTE),
            event("i-1", "initech", now - MINUTE),
        ],
    )
    .await;

    let alice_key = grant(
        &config,
        &["--name", "alice@acme.example", "--tenant", "acme"],
    );
    assert!(alice_key.starts_with("atc_") && alice_key.len() == 4 + 16 + 1 + 64);
    let root_key = grant(&config, &["--name", "security-team", "--all-tenants"]);
    let pair_key = grant(
        &config,
        &[
            "--name",
            "msp-analyst",
            "--tenant",
            "acme",
            "--tenant",
            "globex",
        ],
    );

    // Without a session: pages send to sign-in, the API answers 401.
    let mut browser = Browser::new(&server.base_url);
    let page = browser.get("/search?q=user.login").await;
    assert_eq!(page.status().as_u16(), 303);
    assert_eq!(
        page.headers()[LOCATION],
        "/login?next=%2Fsearch%3Fq%3Duser.login"
    );
    for path in ["/", "/events/acme/a-1", "/no-such-page"] {
        assert_eq!(browser.get(path).await.status().as_u16(), 303, "{path}");
    }
    let (status, answer) = browser.call("search/page", &[("tenant", "acme")]).await;
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer["error"], "unauthorized");
    assert_eq!(
        browser
            .get("/api/v1/export?tenant=acme")
            .await
            .status()
            .as_u16(),
        401
    );
    let login = browser.get("/login?next=%2Fsearch").await;
    assert_eq!(login.status().as_u16(), 200);
    let html = login.text().await.unwrap();
    assert!(
        html.contains("name=\"key\"") && html.contains("action=\"/login\""),
        "{html}"
    );
    // Services still send events with their API keys, not sessions.
    let (status, _) = server
        .post_json(event("a-3", "acme", now).to_string())
        .await;
    assert_eq!(status, 202);

    // A wrong key signs no one in and sets no cookie.
    let wrong = format!("atc_{}_{}", "0".repeat(16), "0".repeat(64));
    for bad in [
        wrong.as_str(),
        "",
        "atk_not_a_console_key",
        &alice_key[..40],
    ] {
        let (location, cookie) = browser.sign_in(bad, "/search").await;
        assert!(location.starts_with("/login?error=invalid"), "{location}");
        assert_eq!(cookie, None);
    }

    // Another site cannot post the sign-in form for the browser.
    let cross = browser
        .http
        .post(format!("{}/login", server.base_url))
        .header("origin", "https://evil.example")
        .form(&[("key", alice_key.as_str()), ("next", "/search")])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status().as_u16(), 403);
    assert!(cross.headers().get(SET_COOKIE).is_none());

    // Alice signs in and lands where she was going; the cookie is HttpOnly.
    let (location, cookie) = browser.sign_in(&alice_key, "/search?q=x").await;
    assert_eq!(location, "/search?q=x");
    let cookie = cookie.expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(
        !cookie.contains(&alice_key[21..]),
        "the key is not the cookie"
    );
    assert_eq!(browser.get("/search").await.status().as_u16(), 200);
    let (_, viewer) = browser.call("session/viewer", &[]).await;
    assert_eq!(viewer["name"], "alice@acme.example");
    assert_eq!(viewer["tenants"], serde_json::json!(["acme"]));

    // Her tenant, asked for or not; never another. (acme's trail also
    // holds the grant, so the searches name the seeded action.)
    let logins = [("q", "action:user.login"), ("range", "24h")];
    let deadline = Instant::now() + Duration::from_secs(30);
    let own = loop {
        let (status, own) = browser
            .call("search/page", &[logins[0], logins[1], ("tenant", "acme")])
            .await;
        assert_eq!(status, 200, "{own}");
        if ids(&own).len() == 3 || Instant::now() > deadline {
            break own;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(ids(&own), ["acme/a-1", "acme/a-2", "acme/a-3"]);
    let (status, unnamed) = browser.call("search/page", &logins).await;
    assert_eq!(status, 200, "{unnamed}");
    assert_eq!(ids(&unnamed), ids(&own), "no tenant means hers");
    for endpoint in ["search/page", "search/facets", "search/newer"] {
        let (status, answer) = browser
            .call(
                endpoint,
                &[("tenant", "globex"), ("range", "24h"), ("snapshot", "1")],
            )
            .await;
        assert_eq!(status, 403, "{endpoint}: {answer}");
        assert!(
            answer.to_string().contains("choose one of: acme"),
            "{answer}"
        );
    }
    let (status, detail) = browser
        .call("search/event", &[("tenant", "globex"), ("id", "g-1")])
        .await;
    assert_eq!(
        (status, detail),
        (200, Value::Null),
        "as if it did not exist"
    );
    let (status, detail) = browser
        .call("search/event", &[("tenant", "acme"), ("id", "a-1")])
        .await;
    assert_eq!(status, 200);
    assert_eq!(detail["event_id"], "a-1");
    // The event page's seal check: another tenant's event, asked for in
    // its tenant or in hers, is answered exactly as an event that does not
    // exist: no seal, no status or error that says it is there.
    let unknown = seal(&browser, "acme", "no-such-event").await;
    assert_eq!(unknown, (200, Value::Null));
    for (tenant, id) in [
        ("globex", "no-such-event"),
        ("globex", "g-1"),
        ("acme", "g-1"),
    ] {
        assert_eq!(seal(&browser, tenant, id).await, unknown, "{tenant}/{id}");
    }
    // Her own event has a verdict (sealed or not): the answers above are
    // the refusal, not a check that never answers.
    let (status, own_seal) = seal(&browser, "acme", "a-1").await;
    assert_eq!(status, 200, "{own_seal}");
    assert!(own_seal["verdict"]["state"].is_string(), "{own_seal}");
    let refused = browser.get("/api/v1/export?tenant=globex&range=24h").await;
    assert_eq!(refused.status().as_u16(), 403);
    let export = browser
        .get("/api/v1/export?format=ndjson&range=24h&q=action%3Auser.login")
        .await;
    assert_eq!(export.status().as_u16(), 200);
    let exported: Vec<String> = export
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["tenant_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(exported, ["acme", "acme", "acme"]);

    // A cookie with its signature changed signs no one in.
    let genuine = browser.cookie.clone().unwrap();
    let mut forged = genuine.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    browser.cookie = Some(forged);
    assert_eq!(browser.call("search/page", &[]).await.0, 401);
    browser.cookie = Some(genuine);

    // The security team sees every tenant.
    let mut team = Browser::new(&server.base_url);
    team.sign_in(&root_key, "/").await;
    let (status, all) = team.call("search/page", &logins).await;
    assert_eq!(status, 200, "{all}");
    let all_ids = ids(&all);
    assert!(all_ids.contains(&"globex/g-1".to_owned()) && all_ids.contains(&"acme/a-1".to_owned()));

    // A viewer of two tenants sees both when naming none, never a third.
    let mut pair = Browser::new(&server.base_url);
    pair.sign_in(&pair_key, "/").await;
    let (status, both) = pair.call("search/page", &logins).await;
    assert_eq!(status, 200, "{both}");
    assert_eq!(
        ids(&both),
        ["acme/a-1", "acme/a-2", "acme/a-3", "globex/g-1"]
    );
    let (status, facets) = pair.call("search/facets", &logins).await;
    assert_eq!(status, 200, "{facets}");
    assert!(!facets.to_string().contains("initech"), "{facets}");
    let (status, _) = pair
        .call(
            "search/page",
            &[logins[0], logins[1], ("tenant", "initech")],
        )
        .await;
    assert_eq!(status, 403);
    let export = pair
        .get("/api/v1/export?format=ndjson&range=24h&q=action%3Auser.login")
        .await;
    assert_eq!(export.status().as_u16(), 200);
    let mut exported: Vec<String> = export
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["event_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    exported.sort();
    assert_eq!(exported, ["a-1", "a-2", "a-3", "g-1"]);

    // Everything above is in the trail: sign-ins (and the refused ones) in
    // Attest's own tenant, the grants and the export in their tenants'.
    // The writer batches, so each answer is awaited until it is whole.
    let trail = |sql: &'static str, expected: &'static str| {
        let server = &server;
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let got = server.clickhouse(sql).await;
                if got == expected || Instant::now() > deadline {
                    assert_eq!(got, expected, "{sql}");
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    trail(
        "SELECT outcome, actor_id, count() FROM audit_events WHERE tenant_id = 'attest' \
         AND action = 'console.sign_in' GROUP BY outcome, actor_id ORDER BY outcome, actor_id FORMAT TSV",
        "failure\tunknown\t4\nsuccess\talice@acme.example\t1\nsuccess\tmsp-analyst\t1\nsuccess\tsecurity-team\t1\n",
    )
    .await;
    trail(
        "SELECT tenant_id, actor_id, resource_type FROM audit_events \
         WHERE action = 'console_access.grant' ORDER BY tenant_id FORMAT TSV",
        "acme\tops-1\tconsole_access\nacme\tops-1\tconsole_access\n\
         attest\tops-1\tconsole_access\nglobex\tops-1\tconsole_access\n",
    )
    .await;
    trail(
        "SELECT tenant_id, actor_id, arrayElement(metadata.value, indexOf(metadata.key, 'rows')) \
         FROM audit_events WHERE action = 'data.export' ORDER BY actor_id, tenant_id FORMAT TSV",
        "acme\talice@acme.example\t3\nacme\tmsp-analyst\t4\nglobex\tmsp-analyst\t4\n",
    )
    .await;
    let keys_in_trail = server
        .clickhouse(&format!(
            "SELECT count() FROM audit_events WHERE has(metadata.value, '{}') FORMAT TSV",
            &alice_key[21..]
        ))
        .await;
    assert_eq!(keys_in_trail.trim(), "0", "no key is ever recorded");

    // Revoking alice ends her session within the refresh interval.
    let access_id = &alice_key[4..20];
    let revoked = Command::new(env!("CARGO_BIN_EXE_attest"))
        .args(["access", "revoke", access_id, "--by", "ops-1"])
        .envs(common::child_env(&config))
        .output()
        .unwrap();
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = browser.call("search/page", &[("tenant", "acme")]).await;
        if status == 401 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "revoked session still answered {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let page = browser.get("/search").await;
    assert_eq!(
        page.headers()[LOCATION],
        "/login?next=%2Fsearch&error=expired"
    );
    let (location, cookie) = browser.sign_in(&alice_key, "/search").await;
    assert!(location.starts_with("/login?error=invalid") && cookie.is_none());

    // Signing out clears the cookie.
    let response = team
        .with_cookie(team.http.post(format!("{}/logout", server.base_url)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()[LOCATION], "/login?signed_out=1");
    assert!(response.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    server.stop().await;
}
