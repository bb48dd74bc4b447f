//! Issue 11's hardening, against the real stack: hostile bodies in every
//! format get a clear error and leave the server running; hostile records
//! produced straight onto a topic become dead letters, not crashes or rows;
//! the console refuses cross-site state changes, sends security headers,
//! answers bad parameters with 4xx; sessions end on sign-out everywhere;
//! saved searches and export progress belong to their viewer; a broker's
//! permanent refusal is never a 202.

mod common;
mod console_support;
mod search_support;

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use reqwest::header::{CONTENT_SECURITY_POLICY, COOKIE, LOCATION};
use serde_json::{json, Value};

use console_support::{grant, Browser};
use search_support::{event, seed, MINUTE};

/// Zig-zag varint, as Avro writes ints, longs and lengths.
fn long(n: i64) -> Vec<u8> {
    let mut out = Vec::new();
    attest_server::registry::binary::put_long(&mut out, n);
    out
}

fn string(s: &str) -> Vec<u8> {
    [long(s.len() as i64), s.as_bytes().to_vec()].concat()
}

/// An audit event record of schema id 1, Confluent-framed, written by hand
/// (field by field, in the contract's order) so that it can lie: `tail` is
/// everything from the metadata map on.
fn framed(event_id: &str, tenant: &str, occurred_at: i64, metadata: &[u8]) -> Vec<u8> {
    let datum = [
        string(event_id),
        string(tenant),
        long(occurred_at),
        long(occurred_at),
        long(0), // category: authentication
        string("user.login"),
        long(0), // outcome: success
        string("alice"),
        string("user"),
        long(0), // actor.ip: null
        long(0), // actor.user_agent: null
        long(0), // resource: null
        string("sso"),
        long(0), // request_id: null
        metadata.to_vec(),
    ]
    .concat();
    [vec![0, 0, 0, 0, 1], datum].concat()
}

/// A map that declares 2^29 entries and holds one.
fn hostile_map() -> Vec<u8> {
    [long(1 << 29), string("k"), string("v"), long(0)].concat()
}

async fn post(
    server: &common::TestServer,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let response = server
        .http
        .post(format!("{}{path}", server.base_url))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn producer(config: &attest_server::config::Config) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.brokers)
        .create()
        .expect("producer")
}

async fn produce_raw(config: &attest_server::config::Config, payload: &[u8]) {
    let topic = format!("{}.authentication", config.kafka.topic_prefix);
    producer(config)
        .send(
            FutureRecord::to(&topic).key("acme").payload(payload),
            Duration::from_secs(10),
        )
        .await
        .expect("the broker takes the record");
}

async fn wait_for_metric(server: &common::TestServer, line: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = server.metrics_text().await;
        if text.lines().any(|l| l == line) {
            return;
        }
        assert!(Instant::now() < deadline, "no `{line}` in\n{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_and_records_are_refused_and_the_pipeline_goes_on() {
    let server = common::start(common::test_config()).await;
    let now = attest_server::ingest::now_ms();
    let avro = "application/vnd.attest.avro";

    // A ~100-byte Avro body whose map declares 2^29 entries: once enough to
    // abort the process asking for 87 GB.
    let body = framed("hostile-1", "acme", now, &hostile_map());
    assert!(body.len() < 200);
    for path in ["/api/v1/events", "/api/v1/events/batch"] {
        let (status, answer) = post(&server, path, avro, body.clone()).await;
        assert_eq!(status, 400, "{path}: {answer}");
        let problem = answer["errors"][0]["problem"].as_str().unwrap_or_default();
        assert!(problem.contains("declares 536870912 entries"), "{answer}");
    }
    // A string that claims more bytes than the body holds.
    let liar = [long(0), string("k"), long(1 << 40)].concat();
    let (status, answer) = post(
        &server,
        "/api/v1/events",
        avro,
        framed("h-2", "acme", now, &liar),
    )
    .await;
    assert_eq!(status, 400, "{answer}");

    // Ambiguous JSON: a key given twice is refused, naming it, in every
    // JSON shape.
    let twice = format!(
        r#"{{"tenant_id":"acme","tenant_id":"globex","occurred_at":{now},"category":"authentication","action":"a","outcome":"success","actor":{{"id":"x","type":"user"}},"source_service":"sso"}}"#
    );
    for (path, content_type, body, index) in [
        ("/api/v1/events", "application/json", twice.clone(), 0),
        (
            "/api/v1/events/batch",
            "application/json",
            format!("[{{}}, {twice}]"),
            1,
        ),
        (
            "/api/v1/events/batch",
            "application/x-ndjson",
            format!("{{}}\n{twice}\n"),
            1,
        ),
    ] {
        let (status, answer) = post(&server, path, content_type, body.into_bytes()).await;
        assert_eq!(status, 400, "{content_type}: {answer}");
        // In a batch the duplicate is the problem of its own event (the
        // empty event before it has its own).
        let errors = answer["errors"].as_array().expect("errors");
        let error = errors
            .iter()
            .find(|e| e["index"] == index)
            .unwrap_or_else(|| panic!("no error for event {index}: {answer}"));
        assert_eq!(error["field_path"], "tenant_id", "{answer}");
        assert!(error["problem"]
            .as_str()
            .unwrap()
            .contains("more than once"));
    }

    // Records produced straight onto the topic: the hostile one, and ones
    // that decode but break ingest's rules. None may become a row or stop
    // the writer.
    produce_raw(
        &server.config,
        &framed("hostile-3", "acme", now, &hostile_map()),
    )
    .await;
    for (id, tenant, at) in [
        ("", "acme", now),                       // empty id
        ("nul\u{0}id", "acme", now),             // control character
        ("too-early", "acme", 0),                // 1970
        ("too-late", "acme", 7_258_118_400_000), // the year 2200
        ("no-tenant", "", now),
    ] {
        produce_raw(&server.config, &framed(id, tenant, at, &[0])).await;
    }
    let good = "after-the-poison";
    produce_raw(&server.config, &framed(good, "acme", now, &[0])).await;
    server.wait_for_rows(1, Duration::from_secs(60)).await;
    wait_for_metric(
        &server,
        "attest_writer_dead_letters_total{reason=\"undecodable_payload\"} 1",
    )
    .await;
    wait_for_metric(
        &server,
        "attest_writer_dead_letters_total{reason=\"invalid_event\"} 5",
    )
    .await;
    let rows = server
        .clickhouse("SELECT event_id FROM audit_events FORMAT TSV")
        .await;
    assert_eq!(rows.trim(), good, "only the valid record is stored");

    // Still alive, and ready.
    let (status, ready) = server.get_json("/readyz").await;
    assert_eq!(status, 200, "{ready}");
    for check in ["kafka", "clickhouse", "writer", "spool"] {
        assert_eq!(ready["checks"][check]["ok"], true, "{check}: {ready}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_broker_refusal_is_not_a_202_and_not_spooled() {
    let config = common::test_config();
    // The topic exists before Attest starts (Attest leaves existing topics
    // alone), with a message size limit below a legitimate large event.
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.brokers)
        .create()
        .expect("admin client");
    let topic = format!("{}.authentication", config.kafka.topic_prefix);
    let small =
        NewTopic::new(&topic, 1, TopicReplication::Fixed(1)).set("max.message.bytes", "1024");
    for result in admin
        .create_topics([&small], &AdminOptions::new())
        .await
        .expect("create_topics answers")
    {
        result.expect("topic created");
    }
    let server = common::start(config).await;
    let now = attest_server::ingest::now_ms();
    // Random text, so that the producer's compression cannot shrink it
    // below the limit: 4 values of 8,000 hex digits.
    let noise = || (0..250).map(|_| common::unique()).collect::<String>();
    let mut big = event("big-1", "acme", now);
    big["metadata"] = json!({ "a": noise(), "b": noise(), "c": noise(), "d": noise() });
    let started = Instant::now();
    let (status, answer) = server.post_json(big.to_string()).await;
    assert_eq!(status, 413, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("broker"),
        "{answer}"
    );
    // Refused at once, not after the broker timeout and a spool append.
    assert!(started.elapsed() < server.config.ingest.broker_timeout);
    assert!(server
        .metrics_text()
        .await
        .lines()
        .any(|l| l == "attest_spool_pending_events 0"));
    // A small event still goes through.
    let (status, _) = server
        .post_json(event("small-1", "acme", now).to_string())
        .await;
    assert_eq!(status, 202);
    server.stop().await;
}

/// A browser's form post to a server function, with extra headers.
async fn call_with(
    browser: &Browser,
    path: &str,
    form: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut request =
        browser.with_cookie(browser.http.post(format!("{}/api/{path}", browser.base)));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.form(form).send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_guards_its_viewers_and_their_things() {
    let mut config = common::test_config();
    config.console.require_login = true;
    config.console.access_refresh = Duration::from_millis(200);
    config.console.session_secret = "s".repeat(32);
    let server = common::start(config.clone()).await;
    // A second server process behind the same address: same secret, same
    // database, its own port.
    let mut other_config = config.clone();
    other_config.ingest.spool_dir =
        std::env::temp_dir().join(format!("attest-test-spool-{}", common::unique()));
    other_config.writer.enabled = false;
    let other = common::start(other_config).await;
    let now = attest_server::ingest::now_ms();
    seed(
        &server,
        &[
            event("a-1", "acme", now - MINUTE),
            event("g-1", "globex", now - MINUTE),
        ],
    )
    .await;
    let alice_key = grant(&config, &["--name", "alice", "--tenant", "acme"]);
    let bob_key = grant(&config, &["--name", "bob", "--tenant", "acme"]);
    let mut alice = Browser::new(&server.base_url);
    alice.sign_in(&alice_key, "/").await;
    let mut bob = Browser::new(&server.base_url);
    bob.sign_in(&bob_key, "/").await;

    // The sign-in form carries where to go next in the page the server
    // renders, so a key pasted before the WASM has loaded still returns
    // there (a property set only after hydration lost it).
    let stranger = Browser::new(&server.base_url);
    let login = stranger.get("/login?next=%2Fsearch%3Fq%3Dx").await;
    let html = login.text().await.unwrap();
    assert!(
        html.contains(r#"name="next" value="/search?q=x""#),
        "{html}"
    );

    // Security headers; the page's scripts carry this request's nonce.
    let page = alice.get("/search").await;
    assert_eq!(page.status().as_u16(), 200);
    let headers = page.headers().clone();
    let policy = headers[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    let nonce = policy
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_else(|| panic!("a nonce in {policy}"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "same-origin");
    let html = page.text().await.unwrap();
    assert!(
        html.contains(&format!("nonce=\"{nonce}\"")),
        "the hydration script carries the nonce"
    );
    assert!(
        !html.contains("<script>"),
        "no inline script without the nonce"
    );

    // State-changing requests another site (or another port) started are
    // refused; the same request from the page itself is answered.
    let save = [
        ("name", "alices-private-search"),
        ("q", "actor:alice"),
        ("tenant", "acme"),
    ];
    for cross in [
        ("origin", "https://evil.example"),
        ("origin", "http://127.0.0.1:1"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let (status, answer) = call_with(&alice, "search/saved/save", &save, &[cross]).await;
        assert_eq!(status, 403, "{cross:?}: {answer}");
    }
    let (status, _) = call_with(
        &alice,
        "search/saved",
        &[],
        &[("sec-fetch-site", "cross-site")],
    )
    .await;
    assert_eq!(status, 403);
    let (status, saved) = call_with(
        &alice,
        "search/saved/save",
        &save,
        &[("sec-fetch-site", "same-origin")],
    )
    .await;
    assert_eq!(status, 200, "{saved}");
    let saved_id = saved["id"].as_str().unwrap().to_owned();

    // Saved searches are their owner's only, even for a viewer of the same
    // tenant; deleting someone else's is refused and changes nothing.
    let (_, bobs) = bob.call("search/saved", &[]).await;
    assert_eq!(bobs, json!([]), "bob lists nothing of alice's");
    let bob_page = bob.get("/search").await.text().await.unwrap();
    assert!(
        !bob_page.contains("alices-private-search"),
        "nor in the rendered page"
    );
    let (status, _) = bob.call("search/saved/delete", &[("id", &saved_id)]).await;
    assert_eq!(status, 403);
    let (_, mine) = alice.call("search/saved", &[]).await;
    assert_eq!(mine.as_array().map(Vec::len), Some(1), "{mine}");

    // Bad parameters are the caller's mistake: 400 and 403, not 500.
    let (status, answer) = alice
        .call("search/facets", &[("snapshot", "-9223372036854775808")])
        .await;
    assert_eq!(status, 400, "{answer}");
    // A well-formed page cursor whose snapshot is the most negative i64
    // (the overflow once reached arithmetic; now it is refused first).
    let cursor = app::search_state::Cursor {
        sort: Default::default(),
        value: None,
        snapshot_ms: i64::MIN,
        occurred_at: now,
        event_id: "a".into(),
        tenant_id: "a".into(),
        content_hash: "0".repeat(64),
    }
    .encode();
    let (status, answer) = alice
        .call("search/page", &[("cursor", cursor.as_str())])
        .await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = alice
        .call("search/page", &[("tenant", "acme"), ("tenant", "acme")])
        .await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = alice
        .call("events/list", &[("tenant", "globex"), ("range", "24h")])
        .await;
    assert_eq!(status, 403, "{answer}");
    let (status, answer) = alice
        .call("events/list", &[("tenant", "acme"), ("range", "24h")])
        .await;
    assert_eq!(status, 200, "{answer}");

    // Export progress is readable only by the viewer who started it.
    let token = "0123456789abcdef0123456789abcdef";
    let export = alice
        .get(&format!(
            "/api/v1/export?format=csv&tenant=acme&range=24h&progress={token}"
        ))
        .await;
    assert_eq!(export.status().as_u16(), 200);
    let _ = export.bytes().await.unwrap();
    // Compressed, as browsers ask for it: the stream must end cleanly (an
    // unfused body panicked when the compression layer polled it again).
    let compressed = alice
        .with_cookie(alice.http.get(format!(
            "{}/api/v1/export?format=ndjson&tenant=acme&range=24h",
            alice.base
        )))
        .header("accept-encoding", "br, gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(compressed.status().as_u16(), 200);
    assert_eq!(compressed.headers()["content-encoding"], "br");
    assert!(compressed.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment; filename=\"attest-events-acme-"));
    let body = compressed.bytes().await.expect("the whole compressed body");
    assert!(!body.is_empty());
    let (_, own) = alice
        .call("search/export_progress", &[("token", token)])
        .await;
    assert_eq!(own["state"], "Done", "{own}");
    let (_, others) = bob
        .call("search/export_progress", &[("token", token)])
        .await;
    assert_eq!(others, Value::Null, "{others}");

    // Sign-out ends the session on every process, not only in the browser.
    let copy = alice.cookie.clone().unwrap();
    let mut elsewhere = Browser::new(&other.base_url);
    elsewhere.cookie = Some(copy.clone());
    assert_eq!(
        elsewhere.call("search/saved", &[]).await.0,
        200,
        "the copy works before"
    );
    let response = alice
        .with_cookie(alice.http.post(format!("{}/logout", server.base_url)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()[LOCATION], "/login?signed_out=1");
    let replay = alice
        .http
        .post(format!("{}/api/search/saved", server.base_url))
        .header(COOKIE, format!("attest_session={copy}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status().as_u16(), 401, "at once on the same process");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = elsewhere.call("search/saved", &[]).await;
        if status == 401 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the copy still works elsewhere: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Bob's session is untouched.
    assert_eq!(bob.call("search/saved", &[]).await.0, 200);
    other.stop().await;
    server.stop().await;
}

/// Reads until the server has sent a response head or closed; what it
/// said, and when.
async fn read_until_closed(
    stream: &mut tokio::net::TcpStream,
    limit: Duration,
) -> (String, Duration) {
    use tokio::io::AsyncReadExt;
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout(
            limit.saturating_sub(started.elapsed()),
            stream.read(&mut buffer),
        )
        .await
        {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buffer[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
        }
    }
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off() {
    use tokio::io::AsyncWriteExt;
    let mut config = common::test_config();
    config.ingest.body_timeout = Duration::from_secs(1);
    let server = common::start(config).await;
    let addr = server.running.addr;

    // Headers that never end: the connection is closed after the header
    // deadline, not held.
    let mut slow_headers = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow_headers
        .write_all(b"POST /api/v1/events HTTP/1.1\r\nHost: attest\r\n")
        .await
        .unwrap();
    let limit = attest_server::http::serve::HEADER_TIMEOUT + Duration::from_secs(10);
    let (_, took) = read_until_closed(&mut slow_headers, limit).await;
    assert!(
        took < limit,
        "a connection with unfinished headers stayed open {took:?}"
    );

    // A body that stops half way: 408 after the body deadline.
    let mut slow_body = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow_body
        .write_all(
            b"POST /api/v1/events HTTP/1.1\r\nHost: attest\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"tenant_id\":",
        )
        .await
        .unwrap();
    let (answer, took) = read_until_closed(&mut slow_body, Duration::from_secs(20)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(took < Duration::from_secs(10), "{took:?}");

    // And the server still serves everyone else.
    let (status, _) = server.get_json("/readyz").await;
    assert_eq!(status, 200);
    server.stop().await;
}
